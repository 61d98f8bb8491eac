"""The NumPy backend (built in): the reference every other backend is tested against."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="numpy",
    adapter="convlab.backends.numpy.adapter:NumpyBackend",
    distribution="numpy",
    reference="convlab.backends.numpy.reference",
)

"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="mxnet",
    adapter="convlab.backends.mxnet.adapter:MXNetBackend",
    aliases=("mx",),
    modules=("mxnet",),
    extra="mxnet",
    install_hint=(
        'pip install --no-deps mxnet==1.9.1 beside NumPy 2 (pip install "convlab[mxnet]" makes an MXNet-only '
        "environment on NumPy 1.26)"
    ),
    reference="convlab.backends.mxnet.reference",
)

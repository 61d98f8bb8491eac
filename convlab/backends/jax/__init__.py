"""The JAX backend: ``jax.numpy`` tensors, Flax NNX layers, ``jax.jit``."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="jax",
    adapter="convlab.backends.jax.adapter:JaxBackend",
    modules=("jax", "jaxlib"),  # arrays are jaxlib._jax.ArrayImpl, tracers come from jax._src
    extra="jax",
)

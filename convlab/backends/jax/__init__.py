"""The JAX backend: ``jax.numpy`` tensors, Flax NNX layers, ``jax.jit``."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="jax",
    adapter="convlab.backends.jax.adapter:JaxBackend",
    modules=("jax", "jaxlib", "flax"),  # arrays: jaxlib._jax.ArrayImpl; tracers: jax._src; parameters: flax.nnx
    extra="jax",
    reference="convlab.backends.jax.reference",
)

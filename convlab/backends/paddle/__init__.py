"""The PaddlePaddle backend (the Chinese edition's fourth framework)."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="paddle",
    adapter="convlab.backends.paddle.adapter:PaddleBackend",
    aliases=("pd",),
    modules=("paddle",),
    distribution="paddlepaddle",
    extra="paddle",
    # Imported after TensorFlow, Paddle's native libraries crash the process (a segmentation fault).
    import_before=("tensorflow",),
    reference="convlab.backends.paddle.reference",
)

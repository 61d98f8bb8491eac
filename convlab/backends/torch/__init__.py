"""The PyTorch backend."""

from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec(
    name="torch",
    adapter="convlab.backends.torch.adapter:TorchBackend",
    aliases=("pytorch",),
    modules=("torch",),
    extra="torch",
    reference="convlab.backends.torch.reference",
)

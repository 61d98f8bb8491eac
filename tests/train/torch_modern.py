"""The anchor of ``test_modern_curves.py``: d2l §8's mini networks in plain PyTorch, trained by ``torch.optim.SGD``.

The networks are ``convlab.backends.torch.networks`` (``torch.nn`` layers and
the book's blocks, no convlab code). Only dropout differs from
``nn.Dropout``: to drop the same units as convlab's seeded layers,
:class:`SeededDropout` draws its masks with NumPy by convlab's documented rule
(``seeded_keep_mask``).
"""

from __future__ import annotations

import numpy as np
import pytest

# doctest collection (--doctest-modules) imports this file too, in the sessions that install no framework
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402, N812

from convlab.backends.torch.networks import NETWORKS  # noqa: E402


def layer_seed(model_seed: int, index: int) -> int:
    """The seed of the ``index``-th seeded layer (counting every Conv2d, Linear and Dropout in the order made).

    convlab's ``Seeds`` spawns one child of ``SeedSequence(model_seed)`` per
    layer; the n-th child is the sequence with ``spawn_key=(n,)``.
    """
    return int(np.random.SeedSequence(model_seed, spawn_key=(index,)).generate_state(1)[0])


class SeededDropout(nn.Module):
    """Inverted dropout whose training call number ``step`` keeps a unit where NumPy's ``(seed, step)`` draw >= p."""

    def __init__(self, p: float, seed: int) -> None:
        super().__init__()
        self.p, self.seed, self.step = p, seed, 0

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return X
        uniform = np.random.default_rng([self.seed, self.step]).random(tuple(X.shape))
        self.step += 1
        keep = torch.from_numpy(uniform >= self.p).to(X.dtype)
        return X * keep / (1 - self.p)


def build(name: str, seed: int, weights: dict[str, np.ndarray], dtype: torch.dtype) -> nn.Module:
    """The mini network ``name`` in PyTorch, with convlab's initial ``weights`` (by name), in ``dtype``."""
    net = NETWORKS[name](lambda p, index: SeededDropout(p, layer_seed(seed, index))).to(dtype)
    params = dict(net.named_parameters())
    if sorted(params) != sorted(weights):
        raise AssertionError(f"{name}: parameter names differ: {sorted(set(params) ^ set(weights))}")
    with torch.no_grad():
        for key, param in params.items():
            if tuple(param.shape) != tuple(weights[key].shape):
                raise AssertionError(f"{name}: {key} has shape {tuple(param.shape)}, convlab's {weights[key].shape}")
            param.copy_(torch.from_numpy(np.asarray(weights[key])))
    return net


def train(net: nn.Module, batches, lr: float) -> list[float]:
    """The book's loop: ``F.cross_entropy``, ``torch.optim.SGD``; the loss of every step."""
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for X, y in batches:
        loss = F.cross_entropy(net(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def running_statistics(net: nn.Module) -> dict[str, np.ndarray]:
    """Every batch norm's ``running_mean`` and ``running_var`` by name, as NumPy arrays."""
    return {
        key: value.detach().numpy().copy()
        for key, value in net.state_dict().items()
        if key.endswith(("running_mean", "running_var"))
    }

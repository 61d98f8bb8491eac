"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) written again in idiomatic PyTorch.

The anchor of ``test_modern_curves.py``: ``torch.nn`` layers (``nn.Conv2d``,
``nn.BatchNorm2d``, ``nn.MaxPool2d``, ...), blocks as the book's PyTorch tabs
write them, no convlab code. The attribute names and layer positions are the
ones convlab gives its parameters (``"3.0.conv1.weight"``), so convlab's
initial weights load by name. Only dropout differs from ``nn.Dropout``: to
drop the same units as convlab's seeded layers, :class:`SeededDropout` draws
its masks with NumPy by convlab's documented rule (``seeded_keep_mask``).
"""

from __future__ import annotations

import numpy as np
import pytest

# doctest collection (--doctest-modules) imports this file too, in the sessions that install no framework
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402, N812


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


class Inception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class Residual(nn.Module):
    def __init__(self, in_channels, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(channels)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.relu(Y + X)


def conv_block(in_channels, channels):
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, channels, 3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_channels, growth_rate):
        super().__init__()
        self.net = nn.Sequential(*(conv_block(in_channels + i * growth_rate, growth_rate) for i in range(num_convs)))

    def forward(self, X):
        for blk in self.net:
            X = torch.cat((X, blk(X)), dim=1)
        return X


def transition_block(in_channels, channels):
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, channels, 1), nn.AvgPool2d(2, stride=2)
    )


def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, stride=2))


def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
    )  # fmt: skip


def bn_lenet(seed):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def alexnet(seed):
    # seeded layers in order: five convolutions (0-4), Linear (5), Dropout (6), Linear (7), Dropout (8), Linear (9)
    return nn.Sequential(
        nn.Conv2d(1, 24, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(24, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2), nn.Flatten(),
        nn.Linear(64 * 2 * 2, 512), nn.ReLU(), SeededDropout(0.5, layer_seed(seed, 6)),
        nn.Linear(512, 512), nn.ReLU(), SeededDropout(0.5, layer_seed(seed, 8)),
        nn.Linear(512, 10),
    )  # fmt: skip


def vgg(seed):
    # seeded layers: four convolutions (0-3), Linear (4), Dropout (5), Linear (6), Dropout (7), Linear (8)
    blocks, channels = [], 1
    for num_convs, width in ((1, 16), (1, 32), (2, 64)):
        blocks.append(vgg_block(num_convs, channels, width))
        channels = width
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(64 * 3 * 3, 256), nn.ReLU(), SeededDropout(0.5, layer_seed(seed, 5)),
        nn.Linear(256, 256), nn.ReLU(), SeededDropout(0.5, layer_seed(seed, 7)),
        nn.Linear(256, 10),
    )  # fmt: skip


def nin(seed):
    # seeded layers: three NiN blocks of three convolutions (0-8), Dropout (9), the last block (10-12)
    return nn.Sequential(
        nin_block(1, 24, 5, 1, 2), nn.MaxPool2d(3, stride=2),
        nin_block(24, 64, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        nin_block(64, 96, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        SeededDropout(0.5, layer_seed(seed, 9)),
        nin_block(96, 10, 3, 1, 1),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
    )  # fmt: skip


def googlenet(seed):
    b1 = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    b2 = nn.Sequential(
        Inception(32, 16, (24, 32), (4, 8), 8),
        Inception(64, 32, (32, 48), (8, 24), 16),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    b3 = nn.Sequential(Inception(120, 48, (24, 52), (4, 12), 16), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, nn.Linear(128, 10))


def resnet18(seed):
    stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    stages, channels = [], 16
    for index, (num_residuals, width) in enumerate(((2, 16), (2, 32), (2, 64))):
        blocks = []
        for i in range(num_residuals):
            downsample = i == 0 and index > 0
            blocks.append(Residual(channels, width, use_1x1conv=downsample, strides=2 if downsample else 1))
            channels = width
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(stem, *stages, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, 10))


def densenet(seed):
    stem = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(2, stride=2))
    layers, channels, growth = [stem], 24, 12
    for index, num_convs in enumerate((2, 2, 2)):
        layers.append(DenseBlock(num_convs, channels, growth))
        channels += num_convs * growth
        if index < 2:
            layers.append(transition_block(channels, channels // 2))
            channels //= 2
    return nn.Sequential(
        *layers, nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.Linear(channels, 10),
    )  # fmt: skip


MODELS = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}


def build(name: str, seed: int, weights: dict[str, np.ndarray], dtype: torch.dtype) -> nn.Module:
    """The mini network ``name`` in PyTorch, with convlab's initial ``weights`` (by name), in ``dtype``."""
    net = MODELS[name](seed).to(dtype)
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

"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) in plain, idiomatic PyTorch.

``torch.nn`` layers (``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.MaxPool2d``, ...)
and blocks as the book's PyTorch tabs write them; no convlab code. The
attribute names and layer positions are the ones convlab gives its parameters
(``"3.0.conv1.weight"``), so convlab's initial weights load by name. ``convlab
bench`` times their training step against convlab's
(:func:`convlab.backends.torch.reference.idiomatic_modern_step`), and the test
suite trains them beside convlab's as the independent anchor of §8's curves.

Each network takes ``dropout(p, index)``, which makes its dropout layers:
``index`` counts the network's seeded layers (every Conv2d, Linear and
Dropout in the order made), so a test can drop the units convlab's seeded
layers drop; the idiomatic step passes ``nn.Dropout``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from torch import nn

DropoutFactory = Callable[[float, int], nn.Module]
"""``dropout(p, index)``: the dropout layer of probability ``p`` that is the network's ``index``-th seeded layer."""


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


def bn_lenet(dropout: DropoutFactory) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def alexnet(dropout: DropoutFactory) -> nn.Module:
    # seeded layers in order: five convolutions (0-4), Linear (5), Dropout (6), Linear (7), Dropout (8), Linear (9)
    return nn.Sequential(
        nn.Conv2d(1, 24, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(24, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2), nn.Flatten(),
        nn.Linear(64 * 2 * 2, 512), nn.ReLU(), dropout(0.5, 6),
        nn.Linear(512, 512), nn.ReLU(), dropout(0.5, 8),
        nn.Linear(512, 10),
    )  # fmt: skip


def vgg(dropout: DropoutFactory) -> nn.Module:
    # seeded layers: four convolutions (0-3), Linear (4), Dropout (5), Linear (6), Dropout (7), Linear (8)
    blocks, channels = [], 1
    for num_convs, width in ((1, 16), (1, 32), (2, 64)):
        blocks.append(vgg_block(num_convs, channels, width))
        channels = width
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(64 * 3 * 3, 256), nn.ReLU(), dropout(0.5, 5),
        nn.Linear(256, 256), nn.ReLU(), dropout(0.5, 7),
        nn.Linear(256, 10),
    )  # fmt: skip


def nin(dropout: DropoutFactory) -> nn.Module:
    # seeded layers: three NiN blocks of three convolutions (0-8), Dropout (9), the last block (10-12)
    return nn.Sequential(
        nin_block(1, 24, 5, 1, 2), nn.MaxPool2d(3, stride=2),
        nin_block(24, 64, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        nin_block(64, 96, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        dropout(0.5, 9),
        nin_block(96, 10, 3, 1, 1),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
    )  # fmt: skip


def googlenet(dropout: DropoutFactory) -> nn.Module:
    b1 = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    b2 = nn.Sequential(
        Inception(32, 16, (24, 32), (4, 8), 8),
        Inception(64, 32, (32, 48), (8, 24), 16),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    b3 = nn.Sequential(Inception(120, 48, (24, 52), (4, 12), 16), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, nn.Linear(128, 10))


def resnet18(dropout: DropoutFactory) -> nn.Module:
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


def densenet(dropout: DropoutFactory) -> nn.Module:
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


NETWORKS: dict[str, Callable[[DropoutFactory], nn.Module]] = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}

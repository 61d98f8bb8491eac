"""d2l §8's networks and their blocks, written once: BN-LeNet, AlexNet, VGG, NiN, GoogLeNet, ResNet-18, DenseNet.

Every model takes ``size="book"`` (the architecture the book trains, at the
book's input size) or ``size="mini"`` (the same ideas on 28x28 Fashion-MNIST
with fewer channels, trainable in minutes per epoch on a laptop CPU), one
input channel, and ``seed`` (NumPy draws every initial value, so every
backend starts from the same numbers; ``None`` keeps each framework's own
initialisers and dropout generator).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._api import export
from convlab.core.checks import check_choice, check_positive, check_seed
from convlab.core.ops import concat, relu
from convlab.core.registry import get_backend
from convlab.nn import layers as nn
from convlab.nn.blocks import Module
from convlab.nn.dropout import Dropout
from convlab.nn.normalization import BatchNorm1d, BatchNorm2d

SIZES = ("book", "mini")
INPUT_SIZE = {
    "bn_lenet": {"book": 28, "mini": 28},
    "alexnet": {"book": 224, "mini": 28},
    "vgg": {"book": 224, "mini": 28},
    "nin": {"book": 224, "mini": 28},
    "googlenet": {"book": 96, "mini": 28},
    "resnet18": {"book": 96, "mini": 28},
    "densenet": {"book": 96, "mini": 28},
}
"""The height and width of the images each model is built for, by size (the book resizes Fashion-MNIST)."""


class Seeds:
    """One independent seed per layer, in the order the layers are made, from one model seed (``None``: none)."""

    def __init__(self, seed: int | None) -> None:
        seed = check_seed(seed)
        self._sequence = None if seed is None else np.random.SeedSequence(seed)

    def __call__(self) -> int | None:
        if self._sequence is None:
            return None
        return int(self._sequence.spawn(1)[0].generate_state(1)[0])


def _setup(num_classes: int, size: str) -> int:
    check_choice(size, "size", SIZES)
    return int(check_positive(num_classes, "num_classes", integer=True))


# -- the blocks ---------------------------------------------------------------------------------------------


class Residual(Module):
    """d2l §8.6's residual block: two 3x3 convolutions with batch norm, plus the input (1x1-projected if asked)."""

    def __init__(
        self, in_channels: int, channels: int, use_1x1conv: bool = False, strides: int = 1, seeds: Seeds | None = None
    ) -> None:
        seeds = seeds or Seeds(None)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, stride=strides, seed=seeds())
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, seed=seeds())
        self.conv3 = nn.Conv2d(in_channels, channels, 1, stride=strides, seed=seeds()) if use_1x1conv else None
        self.bn1 = BatchNorm2d(channels)
        self.bn2 = BatchNorm2d(channels)

    def forward(self, X: Any) -> Any:
        Y = relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return relu(Y + X)


class Inception(Module):
    """d2l §8.4's Inception block: four parallel paths (1x1; 1x1-3x3; 1x1-5x5; pool-1x1) joined along channels."""

    def __init__(
        self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, seeds: Seeds | None = None
    ) -> None:
        seeds = seeds or Seeds(None)
        self.b1_1 = nn.Conv2d(in_channels, c1, 1, seed=seeds())
        self.b2_1 = nn.Conv2d(in_channels, c2[0], 1, seed=seeds())
        self.b2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1, seed=seeds())
        self.b3_1 = nn.Conv2d(in_channels, c3[0], 1, seed=seeds())
        self.b3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2, seed=seeds())
        self.b4_1 = nn.MaxPool2d(3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, 1, seed=seeds())

    def forward(self, X: Any) -> Any:
        b1 = relu(self.b1_1(X))
        b2 = relu(self.b2_2(relu(self.b2_1(X))))
        b3 = relu(self.b3_2(relu(self.b3_1(X))))
        b4 = relu(self.b4_2(self.b4_1(X)))
        return concat([b1, b2, b3, b4], axis=1)


def _conv_block(in_channels: int, channels: int, seeds: Seeds) -> Any:
    """DenseNet's batch norm, ReLU, 3x3 convolution."""
    return nn.Sequential(
        BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, channels, 3, padding=1, seed=seeds())
    )


class DenseBlock(Module):
    """d2l §8.7's dense block: each convolution block sees the concatenation of the input and all earlier outputs."""

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int, seeds: Seeds | None = None) -> None:
        seeds = seeds or Seeds(None)
        self.net = nn.Sequential(
            *(_conv_block(in_channels + i * growth_rate, growth_rate, seeds) for i in range(num_convs))
        )

    def forward(self, X: Any) -> Any:
        for block in get_backend().submodules(self.net):
            X = concat([X, block(X)], axis=1)
        return X


def transition_block(in_channels: int, channels: int, seeds: Seeds | None = None) -> Any:
    """d2l §8.7's transition: batch norm, ReLU, a 1x1 convolution to ``channels``, 2x2 average pooling."""
    seeds = seeds or Seeds(None)
    return nn.Sequential(
        BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, channels, 1, seed=seeds()), nn.AvgPool2d(2, 2)
    )


def vgg_block(num_convs: int, in_channels: int, channels: int, seeds: Seeds | None = None) -> Any:
    """d2l §8.2's VGG block: ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling."""
    seeds = seeds or Seeds(None)
    layers = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, seed=seeds()), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


def nin_block(
    in_channels: int, channels: int, kernel_size: int, strides: int, padding: int, seeds: Seeds | None = None
) -> Any:
    """d2l §8.3's NiN block: a convolution, then two 1x1 convolutions (a per-pixel MLP), each with ReLU."""
    seeds = seeds or Seeds(None)
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size, stride=strides, padding=padding, seed=seeds()), nn.ReLU(),
        nn.Conv2d(channels, channels, 1, seed=seeds()), nn.ReLU(),
        nn.Conv2d(channels, channels, 1, seed=seeds()), nn.ReLU(),
    )  # fmt: skip


# -- the models ---------------------------------------------------------------------------------------------


@export(pinned=True, namespace="models")
def bn_lenet(num_classes: int = 10, seed: int | None = None, *, size: str = "book") -> Any:
    """LeNet with batch norm after every convolution and hidden dense layer (d2l §8.5's ``BNLeNet``).

    The book trains it at its own setting (28x28, lr 0.1, batch 128), which
    is already small: ``"mini"`` is the same network.

    Examples
    --------
    >>> import convlab as cl
    >>> net = cl.models.bn_lenet(seed=0)
    >>> sum(p.size for p in cl.parameters(net).values())
    44878
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, seed=seeds()), BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5, seed=seeds()), BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(256, 120, seed=seeds()), BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84, seed=seeds()), BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, classes, seed=seeds()),
    )  # fmt: skip


@export(pinned=True, namespace="models")
def alexnet(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """AlexNet (d2l §8.1): five convolutions with ReLU and max pooling, two dropout-regularised dense layers.

    ``"book"`` takes 224x224 images (96-256-384-384-256 channels, 4096-wide
    dense layers); ``"mini"`` 28x28 at a quarter of the channels and
    512-wide dense layers.

    Examples
    --------
    >>> import convlab as cl
    >>> [shape for _, shape in cl.layer_summary(cl.models.alexnet(seed=0), (1, 1, 28, 28), verbose=False)][-1]
    (1, 10)
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    if size == "book":
        widths, stem, hidden, flat = (96, 256, 384, 384, 256), dict(kernel_size=11, stride=4, padding=1), 4096, 6400
    else:
        widths, stem, hidden, flat = (24, 64, 96, 96, 64), dict(kernel_size=3, padding=1), 512, 256
    c1, c2, c3, c4, c5 = widths
    return nn.Sequential(
        nn.Conv2d(1, c1, seed=seeds(), **stem), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(c1, c2, 5 if size == "book" else 3, padding=2 if size == "book" else 1, seed=seeds()), nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(c2, c3, 3, padding=1, seed=seeds()), nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, seed=seeds()), nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1, seed=seeds()), nn.ReLU(),
        nn.MaxPool2d(3, stride=2), nn.Flatten(),
        nn.Linear(flat, hidden, seed=seeds()), nn.ReLU(), Dropout(0.5, seed=seeds()),
        nn.Linear(hidden, hidden, seed=seeds()), nn.ReLU(), Dropout(0.5, seed=seeds()),
        nn.Linear(hidden, classes, seed=seeds()),
    )  # fmt: skip


@export(pinned=True, namespace="models")
def vgg(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """VGG (d2l §8.2): blocks of 3x3 convolutions and max pooling, then dropout-regularised dense layers.

    ``"book"`` is the reduced VGG the book trains, ``arch=((1, 16), (1, 32),
    (2, 64), (2, 128), (2, 128))`` on 224x224 images with 4096-wide dense
    layers (not VGG-11 at full width); ``"mini"`` its first three blocks on
    28x28 with 256-wide dense layers.

    Examples
    --------
    >>> import convlab as cl
    >>> [shape for _, shape in cl.layer_summary(cl.models.vgg(seed=0), (1, 1, 28, 28), verbose=False)][:3]
    [(1, 16, 14, 14), (1, 32, 7, 7), (1, 64, 3, 3)]
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    arch = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)) if size == "book" else ((1, 16), (1, 32), (2, 64))
    side, hidden = (224, 4096) if size == "book" else (28, 256)
    blocks, channels = [], 1
    for num_convs, width in arch:
        blocks.append(vgg_block(num_convs, channels, width, seeds))
        channels, side = width, side // 2
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(channels * side * side, hidden, seed=seeds()), nn.ReLU(), Dropout(0.5, seed=seeds()),
        nn.Linear(hidden, hidden, seed=seeds()), nn.ReLU(), Dropout(0.5, seed=seeds()),
        nn.Linear(hidden, classes, seed=seeds()),
    )  # fmt: skip


@export(pinned=True, namespace="models")
def nin(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """Network in Network (d2l §8.3): NiN blocks, no dense layer; global average pooling gives the logits.

    ``"book"`` takes 224x224 images (96-256-384 channels); ``"mini"`` 28x28
    at a quarter of the channels, with 5x5 and 3x3 first convolutions.

    Examples
    --------
    >>> import convlab as cl
    >>> [shape for _, shape in cl.layer_summary(cl.models.nin(seed=0), (1, 1, 28, 28), verbose=False)][-1]
    (1, 10)
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    if size == "book":
        first, second, third = (96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1)
    else:
        first, second, third = (24, 5, 1, 2), (64, 3, 1, 1), (96, 3, 1, 1)
    return nn.Sequential(
        nin_block(1, *first, seeds), nn.MaxPool2d(3, stride=2),
        nin_block(first[0], *second, seeds), nn.MaxPool2d(3, stride=2),
        nin_block(second[0], *third, seeds), nn.MaxPool2d(3, stride=2),
        Dropout(0.5, seed=seeds()),
        nin_block(third[0], classes, 3, 1, 1, seeds),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip


_GOOGLENET_BOOK = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64), (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64), (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)  # fmt: skip
_GOOGLENET_MINI = (
    ((16, (24, 32), (4, 8), 8), (32, (32, 48), (8, 24), 16)),
    ((48, (24, 52), (4, 12), 16),),
)


@export(pinned=True, namespace="models")
def googlenet(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """GoogLeNet (d2l §8.4): a convolutional stem, stages of Inception blocks, global average pooling.

    ``"book"`` takes 96x96 images (the book's nine Inception blocks, 1024
    channels before the classifier); ``"mini"`` 28x28 with a 3x3 stem and
    three Inception blocks at about a quarter of the channels.

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.layer_summary(cl.models.googlenet(seed=0), (1, 1, 28, 28), verbose=False)
    >>> [shape for _, shape in rows]
    [(1, 32, 14, 14), (1, 120, 7, 7), (1, 128), (1, 10)]
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    if size == "book":
        stem = [
            nn.Sequential(
                nn.Conv2d(1, 64, 7, stride=2, padding=3, seed=seeds()), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            ),
            nn.Sequential(
                nn.Conv2d(64, 64, 1, seed=seeds()), nn.ReLU(),
                nn.Conv2d(64, 192, 3, padding=1, seed=seeds()), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
            ),
        ]  # fmt: skip
        stages, channels = _GOOGLENET_BOOK, 192
    else:
        stem = [
            nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, seed=seeds()), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        ]
        stages, channels = _GOOGLENET_MINI, 32
    body: list[Any] = []
    for index, stage in enumerate(stages):  # one Sequential per stage, as the book's b3, b4 and b5
        blocks = []
        for c1, c2, c3, c4 in stage:
            blocks.append(Inception(channels, c1, c2, c3, c4, seeds))
            channels = c1 + c2[1] + c3[1] + c4
        last = index == len(stages) - 1
        ending = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if last else [nn.MaxPool2d(3, stride=2, padding=1)]
        body.append(nn.Sequential(*blocks, *ending))
    return nn.Sequential(*stem, *body, nn.Linear(channels, classes, seed=seeds()))


@export(pinned=True, namespace="models")
def resnet18(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """ResNet-18 (d2l §8.6): a stem, four stages of two residual blocks, global average pooling.

    ``"book"`` takes 96x96 images (a 7x7 stem with max pooling, 64-128-256-512
    channels); ``"mini"`` 28x28 with a 3x3 stem and three stages of
    16-32-64 channels.

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.layer_summary(cl.models.resnet18(seed=0), (1, 1, 28, 28), verbose=False)
    >>> [shape for _, shape in rows]
    [(1, 16, 28, 28), (1, 16, 28, 28), (1, 32, 14, 14), (1, 64, 7, 7), (1, 64, 1, 1), (1, 64), (1, 10)]
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    if size == "book":
        stem = nn.Sequential(
            nn.Conv2d(1, 64, 7, stride=2, padding=3, seed=seeds()), BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )  # fmt: skip
        arch, channels = ((2, 64), (2, 128), (2, 256), (2, 512)), 64
    else:
        stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, seed=seeds()), BatchNorm2d(16), nn.ReLU())
        arch, channels = ((2, 16), (2, 32), (2, 64)), 16
    stages = []
    for index, (num_residuals, width) in enumerate(arch):
        blocks = []
        for i in range(num_residuals):
            downsample = i == 0 and index > 0
            blocks.append(
                Residual(channels, width, use_1x1conv=downsample, strides=2 if downsample else 1, seeds=seeds)
            )
            channels = width
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(
        stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes, seed=seeds())
    )


@export(pinned=True, namespace="models")
def densenet(num_classes: int = 10, seed: int | None = None, *, size: str = "mini") -> Any:
    """DenseNet (d2l §8.7): dense blocks that concatenate, transition blocks that halve channels and size.

    ``"book"`` takes 96x96 images (a 7x7 stem of 64 channels, growth rate 32,
    four dense blocks of 4 convolutions); ``"mini"`` 28x28 with a 3x3 stem of
    24 channels, growth rate 12 and dense blocks of (2, 2, 2).

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.layer_summary(cl.models.densenet(seed=0), (1, 1, 28, 28), verbose=False)
    >>> rows[1]
    ('DenseBlock', (1, 48, 14, 14))
    """
    classes = _setup(num_classes, size)
    seeds = Seeds(seed)
    if size == "book":
        channels, growth, arch = 64, 32, (4, 4, 4, 4)
        stem = [nn.Conv2d(1, channels, 7, stride=2, padding=3, seed=seeds()), BatchNorm2d(channels), nn.ReLU()]
        stem.append(nn.MaxPool2d(3, stride=2, padding=1))
    else:
        channels, growth, arch = 24, 12, (2, 2, 2)
        stem = [nn.Conv2d(1, channels, 3, padding=1, seed=seeds()), BatchNorm2d(channels), nn.ReLU()]
        stem.append(nn.MaxPool2d(2, stride=2))
    body: list[Any] = []
    for index, num_convs in enumerate(arch):
        body.append(DenseBlock(num_convs, channels, growth, seeds))
        channels += num_convs * growth
        if index < len(arch) - 1:
            body.append(transition_block(channels, channels // 2, seeds))
            channels //= 2
    return nn.Sequential(
        nn.Sequential(*stem), *body, BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(channels, classes, seed=seeds()),
    )  # fmt: skip

"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) in plain, idiomatic Flax NNX.

``flax.nnx`` layers (``nnx.Conv``, ``nnx.BatchNorm``, ``nnx.Dropout``, ...),
``nnx.Sequential`` and ``nnx.Module`` blocks as an NNX user writes them, on
channels-last (NHWC) images; no convlab code. The layer positions and
attribute names are the ones convlab gives its parameters
(``"3.0.conv1.weight"`` is ``model.layers[3].layers[0].conv1.kernel``), so
convlab's weights load by name once converted to NNX's layouts
(:func:`convlab.backends.jax.reference.idiomatic_modern_step`); a stateless
step (``nnx.relu``, a pooling ``lambda``) keeps its place in an
``nnx.Sequential`` for that reason, as the PyTorch copy's ``nn.ReLU()``
(:mod:`convlab.backends.torch.networks`).

The architecture is exactly convlab's: every convolution states its padding
(``nnx.Conv`` defaults to ``'SAME'``, which pads a strided convolution
asymmetrically), and a padded max pooling pads with ``-inf`` (``nnx.max_pool``
hands its padding to ``lax.reduce_window``, which pads with the maximum's
initial value), so the padding is never picked, as in convlab. Batch norm
takes PyTorch's conventions, as convlab's: the batch's weight 0.1 is NNX's
``momentum=0.9`` (the old value's weight), ``epsilon=1e-5``.

Each network takes the ``nnx.Rngs`` its layers draw their initial values
from and its ``nnx.Dropout`` layers their masks from: the framework's own
generator, so its dropout layers drop other units than convlab's seeded ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from flax import nnx

BN_MOMENTUM = 0.9
"""NNX's ``momentum`` (the old running value's weight) for PyTorch's and convlab's 0.1 (the batch's weight)."""
BN_EPSILON = 1e-5
"""PyTorch's and convlab's ``eps``, which is also NNX's default."""


def batch_norm(num_features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """``nnx.BatchNorm`` over the last axis (channels, or a dense layer's features) with convlab's momentum.

    It is in training mode as made (``use_running_average=False``): it
    normalises by the batch's statistics and moves its running ones.
    """
    return nnx.BatchNorm(num_features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)


def max_pool(window: int, stride: int, padding: int = 0) -> Callable[[Any], Any]:
    """``nnx.max_pool`` as a layer of an ``nnx.Sequential``; its padding pads ``-inf``, never the maximum."""
    pads = ((padding, padding), (padding, padding))
    return lambda x: nnx.max_pool(x, window_shape=(window, window), strides=(stride, stride), padding=pads)


def avg_pool(window: int, stride: int) -> Callable[[Any], Any]:
    """``nnx.avg_pool`` without padding, as a layer of an ``nnx.Sequential``."""
    return lambda x: nnx.avg_pool(x, window_shape=(window, window), strides=(stride, stride))


def global_avg_pool(x: Any) -> Any:
    """PyTorch's ``nn.AdaptiveAvgPool2d((1, 1))`` on NHWC: the mean over height and width, kept as 1x1."""
    return x.mean(axis=(1, 2), keepdims=True)


def flatten(x: Any) -> Any:
    """Each example's features as one row, in NHWC's (height, width, channel) order."""
    return x.reshape(x.shape[0], -1)


class Inception(nnx.Module):
    """d2l §8.4's Inception block: four parallel paths joined along the channel axis (the last, in NHWC)."""

    def __init__(
        self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, *, rngs: nnx.Rngs
    ) -> None:
        self.b1_1 = nnx.Conv(in_channels, c1, kernel_size=(1, 1), padding=0, rngs=rngs)
        self.b2_1 = nnx.Conv(in_channels, c2[0], kernel_size=(1, 1), padding=0, rngs=rngs)
        self.b2_2 = nnx.Conv(c2[0], c2[1], kernel_size=(3, 3), padding=1, rngs=rngs)
        self.b3_1 = nnx.Conv(in_channels, c3[0], kernel_size=(1, 1), padding=0, rngs=rngs)
        self.b3_2 = nnx.Conv(c3[0], c3[1], kernel_size=(5, 5), padding=2, rngs=rngs)
        self.b4_1 = max_pool(3, 1, padding=1)
        self.b4_2 = nnx.Conv(in_channels, c4, kernel_size=(1, 1), padding=0, rngs=rngs)

    def __call__(self, x: Any) -> Any:
        b1 = nnx.relu(self.b1_1(x))
        b2 = nnx.relu(self.b2_2(nnx.relu(self.b2_1(x))))
        b3 = nnx.relu(self.b3_2(nnx.relu(self.b3_1(x))))
        b4 = nnx.relu(self.b4_2(self.b4_1(x)))
        return jnp.concatenate((b1, b2, b3, b4), axis=-1)


class Residual(nnx.Module):
    """d2l §8.6's residual block: two 3x3 convolutions with batch norm, plus the input (1x1-projected if asked)."""

    def __init__(
        self, in_channels: int, channels: int, use_1x1conv: bool = False, strides: int = 1, *, rngs: nnx.Rngs
    ) -> None:
        stride = (strides, strides)
        self.conv1 = nnx.Conv(in_channels, channels, kernel_size=(3, 3), strides=stride, padding=1, rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, kernel_size=(3, 3), padding=1, rngs=rngs)
        self.conv3 = (
            nnx.Conv(in_channels, channels, kernel_size=(1, 1), strides=stride, padding=0, rngs=rngs)
            if use_1x1conv
            else None
        )
        self.bn1 = batch_norm(channels, rngs)
        self.bn2 = batch_norm(channels, rngs)

    def __call__(self, x: Any) -> Any:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return nnx.relu(y + x)


def conv_block(in_channels: int, channels: int, rngs: nnx.Rngs) -> nnx.Sequential:
    """DenseNet's batch norm, ReLU, 3x3 convolution."""
    conv = nnx.Conv(in_channels, channels, kernel_size=(3, 3), padding=1, rngs=rngs)
    return nnx.Sequential(batch_norm(in_channels, rngs), nnx.relu, conv)


class DenseBlock(nnx.Module):
    """d2l §8.7's dense block: each convolution block sees the concatenation of the input and all earlier outputs."""

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int, *, rngs: nnx.Rngs) -> None:
        self.net = nnx.Sequential(
            *(conv_block(in_channels + i * growth_rate, growth_rate, rngs) for i in range(num_convs))
        )

    def __call__(self, x: Any) -> Any:
        for block in self.net.layers:
            x = jnp.concatenate((x, block(x)), axis=-1)
        return x


def transition_block(in_channels: int, channels: int, rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.7's transition: batch norm, ReLU, a 1x1 convolution to ``channels``, 2x2 average pooling."""
    return nnx.Sequential(
        batch_norm(in_channels, rngs), nnx.relu,
        nnx.Conv(in_channels, channels, kernel_size=(1, 1), padding=0, rngs=rngs), avg_pool(2, 2),
    )  # fmt: skip


def vgg_block(num_convs: int, in_channels: int, out_channels: int, rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.2's VGG block: ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling."""
    layers: list[Any] = []
    for i in range(num_convs):
        channels = in_channels if i == 0 else out_channels
        layers += [nnx.Conv(channels, out_channels, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu]
    return nnx.Sequential(*layers, max_pool(2, 2))


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, strides: int, padding: int, rngs: nnx.Rngs
) -> nnx.Sequential:
    """d2l §8.3's NiN block: a convolution, then two 1x1 convolutions (a per-pixel MLP), each with ReLU."""
    kernel, stride = (kernel_size, kernel_size), (strides, strides)
    return nnx.Sequential(
        nnx.Conv(in_channels, out_channels, kernel_size=kernel, strides=stride, padding=padding, rngs=rngs), nnx.relu,
        nnx.Conv(out_channels, out_channels, kernel_size=(1, 1), padding=0, rngs=rngs), nnx.relu,
        nnx.Conv(out_channels, out_channels, kernel_size=(1, 1), padding=0, rngs=rngs), nnx.relu,
    )  # fmt: skip


def bn_lenet(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.5's LeNet with batch norm after every convolution and hidden dense layer."""
    return nnx.Sequential(
        nnx.Conv(1, 6, kernel_size=(5, 5), padding=0, rngs=rngs), batch_norm(6, rngs), nnx.sigmoid, avg_pool(2, 2),
        nnx.Conv(6, 16, kernel_size=(5, 5), padding=0, rngs=rngs), batch_norm(16, rngs), nnx.sigmoid, avg_pool(2, 2),
        flatten,
        nnx.Linear(256, 120, rngs=rngs), batch_norm(120, rngs), nnx.sigmoid,
        nnx.Linear(120, 84, rngs=rngs), batch_norm(84, rngs), nnx.sigmoid,
        nnx.Linear(84, 10, rngs=rngs),
    )  # fmt: skip


def alexnet(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.1's AlexNet at convlab's mini size: five 3x3 convolutions, two 512-wide dropout-regularised layers."""
    return nnx.Sequential(
        nnx.Conv(1, 24, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu, max_pool(3, 2),
        nnx.Conv(24, 64, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu, max_pool(3, 2),
        nnx.Conv(64, 96, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu,
        nnx.Conv(96, 96, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu,
        nnx.Conv(96, 64, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu, max_pool(3, 2), flatten,
        nnx.Linear(64 * 2 * 2, 512, rngs=rngs), nnx.relu, nnx.Dropout(0.5, rngs=rngs),
        nnx.Linear(512, 512, rngs=rngs), nnx.relu, nnx.Dropout(0.5, rngs=rngs),
        nnx.Linear(512, 10, rngs=rngs),
    )  # fmt: skip


def vgg(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.2's VGG at convlab's mini size: blocks ``((1, 16), (1, 32), (2, 64))``, 256-wide dense layers."""
    blocks, channels = [], 1
    for num_convs, width in ((1, 16), (1, 32), (2, 64)):
        blocks.append(vgg_block(num_convs, channels, width, rngs))
        channels = width
    return nnx.Sequential(
        *blocks, flatten,
        nnx.Linear(64 * 3 * 3, 256, rngs=rngs), nnx.relu, nnx.Dropout(0.5, rngs=rngs),
        nnx.Linear(256, 256, rngs=rngs), nnx.relu, nnx.Dropout(0.5, rngs=rngs),
        nnx.Linear(256, 10, rngs=rngs),
    )  # fmt: skip


def nin(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.3's Network in Network at convlab's mini size: four NiN blocks, global average pooling as logits."""
    return nnx.Sequential(
        nin_block(1, 24, 5, 1, 2, rngs), max_pool(3, 2),
        nin_block(24, 64, 3, 1, 1, rngs), max_pool(3, 2),
        nin_block(64, 96, 3, 1, 1, rngs), max_pool(3, 2),
        nnx.Dropout(0.5, rngs=rngs),
        nin_block(96, 10, 3, 1, 1, rngs),
        global_avg_pool, flatten,
    )  # fmt: skip


def googlenet(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.4's GoogLeNet at convlab's mini size: a 3x3 stem, three Inception blocks, global average pooling."""
    b1 = nnx.Sequential(nnx.Conv(1, 32, kernel_size=(3, 3), padding=1, rngs=rngs), nnx.relu, max_pool(3, 2, padding=1))
    b2 = nnx.Sequential(
        Inception(32, 16, (24, 32), (4, 8), 8, rngs=rngs),
        Inception(64, 32, (32, 48), (8, 24), 16, rngs=rngs),
        max_pool(3, 2, padding=1),
    )
    b3 = nnx.Sequential(Inception(120, 48, (24, 52), (4, 12), 16, rngs=rngs), global_avg_pool, flatten)
    return nnx.Sequential(b1, b2, b3, nnx.Linear(128, 10, rngs=rngs))


def resnet18(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.6's ResNet-18 at convlab's mini size: a 3x3 stem, three stages of two residual blocks (16-32-64)."""
    stem = nnx.Sequential(nnx.Conv(1, 16, kernel_size=(3, 3), padding=1, rngs=rngs), batch_norm(16, rngs), nnx.relu)
    stages, channels = [], 16
    for index, (num_residuals, width) in enumerate(((2, 16), (2, 32), (2, 64))):
        blocks = []
        for i in range(num_residuals):
            downsample = i == 0 and index > 0
            blocks.append(Residual(channels, width, use_1x1conv=downsample, strides=2 if downsample else 1, rngs=rngs))
            channels = width
        stages.append(nnx.Sequential(*blocks))
    return nnx.Sequential(stem, *stages, global_avg_pool, flatten, nnx.Linear(64, 10, rngs=rngs))


def densenet(rngs: nnx.Rngs) -> nnx.Sequential:
    """d2l §8.7's DenseNet at convlab's mini size: a 3x3 stem of 24 channels, growth rate 12, blocks of (2, 2, 2)."""
    stem = nnx.Sequential(
        nnx.Conv(1, 24, kernel_size=(3, 3), padding=1, rngs=rngs), batch_norm(24, rngs), nnx.relu, max_pool(2, 2)
    )
    layers: list[Any] = [stem]
    channels, growth = 24, 12
    for index, num_convs in enumerate((2, 2, 2)):
        layers.append(DenseBlock(num_convs, channels, growth, rngs=rngs))
        channels += num_convs * growth
        if index < 2:
            layers.append(transition_block(channels, channels // 2, rngs))
            channels //= 2
    return nnx.Sequential(
        *layers, batch_norm(channels, rngs), nnx.relu, global_avg_pool, flatten, nnx.Linear(channels, 10, rngs=rngs)
    )


NETWORKS: dict[str, Callable[[nnx.Rngs], nnx.Module]] = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}
"""Each network by its :mod:`convlab.models` name, made from an ``nnx.Rngs``."""

FLATTENED_FEATURES: dict[str, dict[str, tuple[int, int, int]]] = {
    "bn_lenet": {"9.weight": (16, 4, 4)},
    "alexnet": {"14.weight": (64, 2, 2)},
    "vgg": {"4.weight": (64, 3, 3)},
}
"""The dense layers that follow a flatten of more than one pixel, by network: the ``(C, H, W)`` of what they see.

Their inputs come in NHWC's (height, width, channel) order, where convlab's
NCHW flatten gives (channel, height, width), so a loader permutes convlab's
weight rows; the other networks flatten 1x1 maps, where both orders agree.
"""

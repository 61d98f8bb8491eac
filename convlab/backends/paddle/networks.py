"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) in plain, idiomatic PaddlePaddle.

``paddle.nn`` layers (``nn.Conv2D``, ``nn.BatchNorm2D``, ``nn.MaxPool2D``, ...)
and ``nn.Layer`` blocks as the d2l-zh Paddle tabs write them, NCHW; no convlab
code. The attribute names and layer positions are the ones convlab gives its
parameters (``"3.0.conv1.weight"``), so convlab's initial weights load by name
(the tabs' GoogLeNet names its paths ``p1_1``..., convlab and the English
edition ``b1_1``...: the latter are kept). ``convlab bench`` times their
training step against convlab's
(:func:`convlab.backends.paddle.reference.idiomatic_modern_step`).

Every batch norm is made by :func:`batch_norm_2d` or :func:`batch_norm_1d`:
Paddle's ``momentum`` is the old running value's weight, the opposite of
convlab's (PyTorch's) convention, so convlab's 0.1 is Paddle's 0.9. The
d2l-zh BN-LeNet tab writes ``nn.BatchNorm2D(6, momentum=0.1)``, which in
Paddle's convention keeps only a tenth of the history, and pools with
``nn.MaxPool2D``: neither is copied, so that the network is convlab's (the
English edition's average pooling).

Each network takes ``dropout(p, index)``, which makes its dropout layers:
``index`` counts the network's seeded layers (every Conv2D, Linear and
Dropout in the order made, as convlab seeds them), so a test can drop the
units convlab's seeded layers drop; the idiomatic step passes ``nn.Dropout``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Paddle as the adapter imports it, under its warnings filter, whichever module is imported first.
from convlab.backends.paddle.adapter import F, nn, paddle

DropoutFactory = Callable[[float, int], nn.Layer]
"""``dropout(p, index)``: the dropout layer of probability ``p`` that is the network's ``index``-th seeded layer."""

BATCH_NORM_MOMENTUM = 0.9
"""Paddle's ``momentum`` (the old running value's weight) equal to convlab's ``momentum=0.1`` (the batch's weight)."""

BATCH_NORM_EPSILON = 1e-5
"""convlab's (and PyTorch's) ``eps``, which is also Paddle's default."""


def batch_norm_2d(num_features: int) -> nn.BatchNorm2D:
    """``nn.BatchNorm2D`` with convlab's running-average weights and ``eps``, spelt in Paddle's convention."""
    return nn.BatchNorm2D(num_features, momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON)


def batch_norm_1d(num_features: int) -> nn.BatchNorm1D:
    """``nn.BatchNorm1D`` (on ``(N, C)``) with convlab's running-average weights and ``eps``, in Paddle's convention."""
    return nn.BatchNorm1D(num_features, momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON)


# -- the blocks ---------------------------------------------------------------------------------------------


class Inception(nn.Layer):
    """d2l §8.4's Inception block: four parallel paths joined along channels.

    Parameters
    ----------
    in_channels : int
        The input's channels.
    c1 : int
        The 1x1 path's channels.
    c2, c3 : tuple of int
        The 1x1 then 3x3 (``c2``) and 1x1 then 5x5 (``c3``) paths' channels.
    c4 : int
        The max-pool then 1x1 path's channels.
    """

    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int) -> None:
        super().__init__()
        self.b1_1 = nn.Conv2D(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2D(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2D(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2D(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2D(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2D(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2D(in_channels, c4, kernel_size=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return paddle.concat(x=[b1, b2, b3, b4], axis=1)


class Residual(nn.Layer):
    """d2l §8.6's residual block: two 3x3 convolutions with batch norm, plus the input (1x1-projected if asked).

    Parameters
    ----------
    input_channels, num_channels : int
        The input's and output's channels.
    use_1x1conv : bool
        Whether the input passes a 1x1 convolution (needed where channels or size change).
    strides : int
        The first and the 1x1 convolution's stride.
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2D(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2D(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2D(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = batch_norm_2d(num_channels)
        self.bn2 = batch_norm_2d(num_channels)

    def forward(self, X: paddle.Tensor) -> paddle.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        # The tab's in-place ``Y += X`` is written out: an in-place add on batch norm's output only adds a version
        # check to the backward pass.
        return F.relu(Y + X)


def conv_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """DenseNet's batch norm, ReLU, 3x3 convolution."""
    return nn.Sequential(
        batch_norm_2d(input_channels), nn.ReLU(), nn.Conv2D(input_channels, num_channels, kernel_size=3, padding=1)
    )


class DenseBlock(nn.Layer):
    """d2l §8.7's dense block: each convolution block sees the input and all earlier outputs, concatenated.

    Parameters
    ----------
    num_convs : int
        The convolution blocks.
    input_channels : int
        The input's channels.
    num_channels : int
        The growth rate: each block's output channels.
    """

    def __init__(self, num_convs: int, input_channels: int, num_channels: int) -> None:
        super().__init__()
        layer = [conv_block(num_channels * i + input_channels, num_channels) for i in range(num_convs)]
        self.net = nn.Sequential(*layer)

    def forward(self, X: paddle.Tensor) -> paddle.Tensor:
        for blk in self.net:
            Y = blk(X)
            X = paddle.concat(x=[X, Y], axis=1)
        return X


def transition_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """d2l §8.7's transition: batch norm, ReLU, a 1x1 convolution to ``num_channels``, 2x2 average pooling."""
    return nn.Sequential(
        batch_norm_2d(input_channels), nn.ReLU(), nn.Conv2D(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2D(kernel_size=2, stride=2),
    )  # fmt: skip


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """d2l §8.2's VGG block: ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling."""
    layers: list[nn.Layer] = []
    for _ in range(num_convs):
        layers += [nn.Conv2D(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    return nn.Sequential(*layers, nn.MaxPool2D(kernel_size=2, stride=2))


def nin_block(in_channels: int, out_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Sequential:
    """d2l §8.3's NiN block: a convolution, then two 1x1 convolutions (a per-pixel MLP), each with ReLU."""
    return nn.Sequential(
        nn.Conv2D(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2D(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2D(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


# -- the networks -------------------------------------------------------------------------------------------
# Each returns the untrained network; ``dropout`` makes its dropout layers (see the module's text).


def bn_lenet(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.5's BN-LeNet (28x28): batch norm after every convolution and hidden dense layer."""
    return nn.Sequential(
        nn.Conv2D(1, 6, kernel_size=5), batch_norm_2d(6), nn.Sigmoid(), nn.AvgPool2D(kernel_size=2, stride=2),
        nn.Conv2D(6, 16, kernel_size=5), batch_norm_2d(16), nn.Sigmoid(), nn.AvgPool2D(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), batch_norm_1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), batch_norm_1d(84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def alexnet(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.1's AlexNet at convlab's mini size (28x28, 24-64-96-96-64 channels, 512-wide dense layers)."""
    # seeded layers in order: five convolutions (0-4), Linear (5), Dropout (6), Linear (7), Dropout (8), Linear (9)
    return nn.Sequential(
        nn.Conv2D(1, 24, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2D(kernel_size=3, stride=2),
        nn.Conv2D(24, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2D(kernel_size=3, stride=2),
        nn.Conv2D(64, 96, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2D(96, 96, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2D(96, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2D(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 512), nn.ReLU(), dropout(0.5, 6),
        nn.Linear(512, 512), nn.ReLU(), dropout(0.5, 8),
        nn.Linear(512, 10),
    )  # fmt: skip


def vgg(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.2's VGG at convlab's mini size: blocks ``((1, 16), (1, 32), (2, 64))`` on 28x28, 256-wide dense layers."""
    # seeded layers: four convolutions (0-3), Linear (4), Dropout (5), Linear (6), Dropout (7), Linear (8)
    conv_blks, in_channels = [], 1
    for num_convs, out_channels in ((1, 16), (1, 32), (2, 64)):
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(64 * 3 * 3, 256), nn.ReLU(), dropout(0.5, 5),
        nn.Linear(256, 256), nn.ReLU(), dropout(0.5, 7),
        nn.Linear(256, 10),
    )  # fmt: skip


def nin(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.3's NiN at convlab's mini size (28x28, 24-64-96 channels); global average pooling gives the logits."""
    # seeded layers: three NiN blocks of three convolutions (0-8), Dropout (9), the last block (10-12)
    return nn.Sequential(
        nin_block(1, 24, kernel_size=5, strides=1, padding=2), nn.MaxPool2D(kernel_size=3, stride=2),
        nin_block(24, 64, kernel_size=3, strides=1, padding=1), nn.MaxPool2D(kernel_size=3, stride=2),
        nin_block(64, 96, kernel_size=3, strides=1, padding=1), nn.MaxPool2D(kernel_size=3, stride=2),
        dropout(0.5, 9),
        nin_block(96, 10, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2D((1, 1)), nn.Flatten(),
    )  # fmt: skip


def googlenet(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.4's GoogLeNet at convlab's mini size: a 3x3 stem and three Inception blocks on 28x28."""
    b1 = nn.Sequential(
        nn.Conv2D(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
    )
    b2 = nn.Sequential(
        Inception(32, 16, (24, 32), (4, 8), 8),
        Inception(64, 32, (32, 48), (8, 24), 16),
        nn.MaxPool2D(kernel_size=3, stride=2, padding=1),
    )
    b3 = nn.Sequential(Inception(120, 48, (24, 52), (4, 12), 16), nn.AdaptiveAvgPool2D((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, nn.Linear(128, 10))


def resnet_block(
    input_channels: int, num_channels: int, num_residuals: int, first_block: bool = False
) -> list[Residual]:
    """d2l §8.6's stage of ``num_residuals`` residual blocks; all but the first stage halve the size."""
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def resnet18(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.6's ResNet at convlab's mini size: a 3x3 stem, stages of 16-32-64 channels on 28x28."""
    b1 = nn.Sequential(nn.Conv2D(1, 16, kernel_size=3, padding=1), batch_norm_2d(16), nn.ReLU())
    b2 = nn.Sequential(*resnet_block(16, 16, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(16, 32, 2))
    b4 = nn.Sequential(*resnet_block(32, 64, 2))
    return nn.Sequential(b1, b2, b3, b4, nn.AdaptiveAvgPool2D((1, 1)), nn.Flatten(), nn.Linear(64, 10))


def densenet(dropout: DropoutFactory) -> nn.Sequential:
    """d2l §8.7's DenseNet at convlab's mini size: a 3x3 stem of 24 channels, growth rate 12, blocks (2, 2, 2)."""
    b1 = nn.Sequential(
        nn.Conv2D(1, 24, kernel_size=3, padding=1), batch_norm_2d(24), nn.ReLU(), nn.MaxPool2D(kernel_size=2, stride=2)
    )
    num_channels, growth_rate = 24, 12
    num_convs_in_dense_blocks = [2, 2, 2]
    blks: list[nn.Layer] = []
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        blks.append(DenseBlock(num_convs, num_channels, growth_rate))
        num_channels += num_convs * growth_rate  # the block's output channels
        if i != len(num_convs_in_dense_blocks) - 1:  # a transition block halves the channels between dense blocks
            blks.append(transition_block(num_channels, num_channels // 2))
            num_channels = num_channels // 2
    return nn.Sequential(
        b1, *blks, batch_norm_2d(num_channels), nn.ReLU(), nn.AdaptiveAvgPool2D((1, 1)), nn.Flatten(),
        nn.Linear(num_channels, 10),
    )  # fmt: skip


NETWORKS: dict[str, Callable[[DropoutFactory], nn.Layer]] = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}
"""The networks by the name of their :mod:`convlab.models` function; each takes a :data:`DropoutFactory`."""

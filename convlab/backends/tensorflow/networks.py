"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) in plain, idiomatic Keras.

``keras.layers`` (``Conv2D``, ``BatchNormalization``, ``MaxPool2D``, ...) on
channels-last (NHWC) images, the activations fused into the layers where the
book's TensorFlow tabs fuse them, and ``keras.layers.Layer`` subclasses for the
blocks; no convlab code. The architecture is convlab's mini one, so each
network computes convlab's function: where the tabs' ``padding="same"`` would
pad differently (a stride of 2 pads one row and column, below and to the
right), an explicit ``ZeroPadding2D`` pads as convlab does.

Every layer with weights, and every container on its way, is named by its
position in convlab's model, so a Keras variable's path (``3/0/conv1/kernel``)
is convlab's parameter name (``3.0.conv1.weight``) and its weights load by
name (:func:`convlab.backends.tensorflow.reference.idiomatic_modern_step`).
The positions count convlab's activation layers, which Keras fuses: hence
AlexNet's dense layers ``"14"``, ``"17"`` and ``"20"``.

Each network takes ``dropout(p, index)``, which makes its dropout layers:
``index`` counts the network's seeded layers (every convolution, dense and
dropout layer in the order made), so a test can drop the units convlab's
seeded layers drop; by default, ``keras.layers.Dropout``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Keras as the whole backend imports it (its logging level set first, Keras' backend checked).
from convlab.backends.tensorflow.framework import keras

layers = keras.layers

DropoutFactory = Callable[[float, int], layers.Layer]
"""``dropout(p, index)``: the dropout layer of probability ``p`` that is the network's ``index``-th seeded layer."""

FLATTENED: dict[str, dict[str, tuple[int, int, int]]] = {
    "bn_lenet": {"9": (16, 4, 4)},
    "alexnet": {"14": (64, 2, 2)},
    "vgg": {"4": (64, 3, 3)},
}
"""The dense layers that read a ``Flatten`` of feature maps, by network, with convlab's ``(C, H, W)`` of those maps.

Keras flattens NHWC maps as ``(H, W, C)`` and convlab NCHW ones as ``(C, H,
W)``: these kernels' rows are reordered when convlab's weights load. The
other networks flatten globally pooled ``(C, 1, 1)`` maps, the same in either
order.
"""


def keras_dropout(p: float, index: int) -> layers.Layer:
    """Keras' own dropout, drawing from its own generator (``index`` is for a test's seeded replacement)."""
    return layers.Dropout(p)


def batch_norm(name: str | None = None) -> layers.Layer:
    """``BatchNormalization`` with convlab's (PyTorch's) settings, so that a training step matches convlab's.

    Keras' ``momentum`` is the old value's weight, convlab's the batch's:
    convlab's 0.1 is Keras' 0.9 (its default 0.99 averages ten times slower);
    convlab's ``eps=1e-5`` is Keras' ``epsilon`` (default 1e-3), which changes
    the normalised values themselves.
    """
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def padded_max_pool() -> list[layers.Layer]:
    """The stems' max pooling of window 3, stride 2, padding 1, after a ReLU.

    ``MaxPool2D(3, strides=2, padding="same")`` (the book's tabs) pads an even
    size only below and to the right, so its windows start a row and a column
    later than convlab's. Padding one zero on every side is exact here: the
    inputs are ReLU outputs, never below the zero, so a zero never wins where
    convlab's ``-inf`` padding would not.
    """
    return [layers.ZeroPadding2D(1), layers.MaxPool2D(pool_size=3, strides=2)]


class Inception(layers.Layer):
    """d2l §8.4's Inception block: four parallel paths (1x1; 1x1-3x3; 1x1-5x5; pool-1x1) joined along channels.

    Parameters
    ----------
    c1, c2, c3, c4 : int or tuple of int
        The output channels of each path (two numbers for the two-convolution paths).
    **kwargs
        Keras' layer arguments (``name``).
    """

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.b1_1 = layers.Conv2D(c1, 1, activation="relu", name="b1_1")
        self.b2_1 = layers.Conv2D(c2[0], 1, activation="relu", name="b2_1")
        self.b2_2 = layers.Conv2D(c2[1], 3, padding="same", activation="relu", name="b2_2")
        self.b3_1 = layers.Conv2D(c3[0], 1, activation="relu", name="b3_1")
        self.b3_2 = layers.Conv2D(c3[1], 5, padding="same", activation="relu", name="b3_2")
        # At stride 1 "same" pads one on every side, and TensorFlow's max pooling never picks the padding.
        self.b4_1 = layers.MaxPool2D(3, strides=1, padding="same")
        self.b4_2 = layers.Conv2D(c4, 1, activation="relu", name="b4_2")

    def call(self, X: Any) -> Any:
        b1 = self.b1_1(X)
        b2 = self.b2_2(self.b2_1(X))
        b3 = self.b3_2(self.b3_1(X))
        b4 = self.b4_2(self.b4_1(X))
        return keras.ops.concatenate([b1, b2, b3, b4], axis=-1)


class Residual(layers.Layer):
    """d2l §8.6's residual block: two 3x3 convolutions with batch norm, plus the input (1x1-projected if asked).

    Parameters
    ----------
    channels : int
        The output channels.
    use_1x1conv : bool
        Project the input with a 1x1 convolution (needed where the channels or the size change).
    strides : int
        The first convolution's (and the projection's) stride.
    **kwargs
        Keras' layer arguments (``name``).
    """

    def __init__(self, channels: int, use_1x1conv: bool = False, strides: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # "same" at stride 2 would pad below and to the right only: convlab pads one on every side.
        self.pad = layers.ZeroPadding2D(1) if strides > 1 else None
        self.conv1 = layers.Conv2D(
            channels, 3, strides=strides, padding="valid" if strides > 1 else "same", name="conv1"
        )
        self.conv2 = layers.Conv2D(channels, 3, padding="same", name="conv2")
        self.conv3 = layers.Conv2D(channels, 1, strides=strides, name="conv3") if use_1x1conv else None
        self.bn1 = batch_norm("bn1")
        self.bn2 = batch_norm("bn2")

    def call(self, X: Any) -> Any:
        Y = keras.activations.relu(self.bn1(self.conv1(X if self.pad is None else self.pad(X))))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return keras.activations.relu(Y + X)


def conv_block(channels: int, name: str) -> keras.Sequential:
    """DenseNet's batch norm, ReLU, 3x3 convolution."""
    return keras.Sequential(
        [batch_norm("0"), layers.ReLU(), layers.Conv2D(channels, 3, padding="same", name="2")], name=name
    )


class DenseBlock(layers.Layer):
    """d2l §8.7's dense block: each convolution block sees the concatenation of the input and all earlier outputs.

    Parameters
    ----------
    num_convs : int
        The number of convolution blocks.
    growth_rate : int
        The channels each block adds.
    **kwargs
        Keras' layer arguments (``name``).
    """

    def __init__(self, num_convs: int, growth_rate: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Named "net.i" as convlab's blocks, which sit in a Sequential attribute called net.
        self.net = [conv_block(growth_rate, f"net.{i}") for i in range(num_convs)]

    def call(self, X: Any) -> Any:
        for block in self.net:
            X = keras.ops.concatenate([X, block(X)], axis=-1)
        return X


def transition_block(channels: int, name: str) -> keras.Sequential:
    """d2l §8.7's transition: batch norm, ReLU, a 1x1 convolution to ``channels``, 2x2 average pooling."""
    return keras.Sequential(
        [batch_norm("0"), layers.ReLU(), layers.Conv2D(channels, 1, name="2"), layers.AvgPool2D(2, strides=2)],
        name=name,
    )


def vgg_block(num_convs: int, channels: int, name: str) -> keras.Sequential:
    """d2l §8.2's VGG block: ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling."""
    convs = [layers.Conv2D(channels, 3, padding="same", activation="relu", name=str(2 * i)) for i in range(num_convs)]
    return keras.Sequential([*convs, layers.MaxPool2D(2, strides=2)], name=name)


def nin_block(channels: int, kernel_size: int, name: str) -> keras.Sequential:
    """d2l §8.3's NiN block: a convolution, then two 1x1 convolutions (a per-pixel MLP), each with ReLU.

    The mini network's blocks all have stride 1 and pad ``(kernel_size - 1) / 2``: ``"same"``.
    """
    return keras.Sequential([
        layers.Conv2D(channels, kernel_size, padding="same", activation="relu", name="0"),
        layers.Conv2D(channels, 1, activation="relu", name="2"),
        layers.Conv2D(channels, 1, activation="relu", name="4"),
    ], name=name)  # fmt: skip


def bn_lenet(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """LeNet with batch norm after every convolution and hidden dense layer, as the book's TensorFlow tab."""
    return keras.Sequential([
        layers.Conv2D(6, 5, name="0"), batch_norm("1"), layers.Activation("sigmoid"), layers.AvgPool2D(2, strides=2),
        layers.Conv2D(16, 5, name="4"), batch_norm("5"), layers.Activation("sigmoid"), layers.AvgPool2D(2, strides=2),
        layers.Flatten(),
        layers.Dense(120, name="9"), batch_norm("10"), layers.Activation("sigmoid"),
        layers.Dense(84, name="12"), batch_norm("13"), layers.Activation("sigmoid"),
        layers.Dense(10, name="15"),
    ])  # fmt: skip


def alexnet(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """AlexNet at convlab's mini size; max pooling without padding is Keras' default ``"valid"``."""
    # seeded layers in order: five convolutions (0-4), Dense (5), Dropout (6), Dense (7), Dropout (8), Dense (9)
    return keras.Sequential([
        layers.Conv2D(24, 3, padding="same", activation="relu", name="0"), layers.MaxPool2D(3, strides=2),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="3"), layers.MaxPool2D(3, strides=2),
        layers.Conv2D(96, 3, padding="same", activation="relu", name="6"),
        layers.Conv2D(96, 3, padding="same", activation="relu", name="8"),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="10"), layers.MaxPool2D(3, strides=2),
        layers.Flatten(),
        layers.Dense(512, activation="relu", name="14"), dropout(0.5, 6),
        layers.Dense(512, activation="relu", name="17"), dropout(0.5, 8),
        layers.Dense(10, name="20"),
    ])  # fmt: skip


def vgg(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """VGG at convlab's mini size: the book's first three blocks, 256-wide dense layers."""
    # seeded layers: four convolutions (0-3), Dense (4), Dropout (5), Dense (6), Dropout (7), Dense (8)
    blocks = [vgg_block(num_convs, width, str(i)) for i, (num_convs, width) in enumerate(((1, 16), (1, 32), (2, 64)))]
    return keras.Sequential([
        *blocks, layers.Flatten(),
        layers.Dense(256, activation="relu", name="4"), dropout(0.5, 5),
        layers.Dense(256, activation="relu", name="7"), dropout(0.5, 7),
        layers.Dense(10, name="10"),
    ])  # fmt: skip


def nin(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """Network in Network at convlab's mini size; global average pooling of the last block gives the logits."""
    # seeded layers: three NiN blocks of three convolutions (0-8), Dropout (9), the last block (10-12)
    return keras.Sequential([
        nin_block(24, 5, "0"), layers.MaxPool2D(3, strides=2),
        nin_block(64, 3, "2"), layers.MaxPool2D(3, strides=2),
        nin_block(96, 3, "4"), layers.MaxPool2D(3, strides=2),
        dropout(0.5, 9),
        nin_block(10, 3, "7"),
        layers.GlobalAvgPool2D(),
    ])  # fmt: skip


def googlenet(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """GoogLeNet at convlab's mini size: a 3x3 stem and three Inception blocks."""
    b1 = keras.Sequential(
        [layers.Conv2D(32, 3, padding="same", activation="relu", name="0"), *padded_max_pool()], name="0"
    )
    b2 = keras.Sequential([
        Inception(16, (24, 32), (4, 8), 8, name="0"),
        Inception(32, (32, 48), (8, 24), 16, name="1"),
        *padded_max_pool(),
    ], name="1")  # fmt: skip
    b3 = keras.Sequential([Inception(48, (24, 52), (4, 12), 16, name="0"), layers.GlobalAvgPool2D()], name="2")
    return keras.Sequential([b1, b2, b3, layers.Dense(10, name="3")])


def resnet18(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """ResNet-18 at convlab's mini size: a 3x3 stem and three stages of two residual blocks (16-32-64)."""
    stem = keras.Sequential([layers.Conv2D(16, 3, padding="same", name="0"), batch_norm("1"), layers.ReLU()], name="0")
    stages = []
    for index, (num_residuals, width) in enumerate(((2, 16), (2, 32), (2, 64))):
        blocks = []
        for i in range(num_residuals):
            downsample = i == 0 and index > 0
            blocks.append(Residual(width, use_1x1conv=downsample, strides=2 if downsample else 1, name=str(i)))
        stages.append(keras.Sequential(blocks, name=str(index + 1)))
    return keras.Sequential([stem, *stages, layers.GlobalAvgPool2D(), layers.Dense(10, name="6")])


def densenet(dropout: DropoutFactory = keras_dropout) -> keras.Sequential:
    """DenseNet at convlab's mini size: a 3x3 stem of 24 channels, growth rate 12, dense blocks of (2, 2, 2)."""
    stem = keras.Sequential([
        layers.Conv2D(24, 3, padding="same", name="0"), batch_norm("1"), layers.ReLU(), layers.MaxPool2D(2, strides=2),
    ], name="0")  # fmt: skip
    body, channels, growth = [stem], 24, 12
    for index, num_convs in enumerate((2, 2, 2)):
        body.append(DenseBlock(num_convs, growth, name=str(len(body))))
        channels += num_convs * growth
        if index < 2:
            channels //= 2
            body.append(transition_block(channels, str(len(body))))
    return keras.Sequential([
        *body, batch_norm("6"), layers.ReLU(), layers.GlobalAvgPool2D(), layers.Dense(10, name="10"),
    ])  # fmt: skip


NETWORKS: dict[str, Callable[[DropoutFactory], keras.Sequential]] = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}

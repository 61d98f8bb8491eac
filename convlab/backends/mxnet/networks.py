"""d2l §8's mini networks (``size="mini"`` in ``convlab/nn/modern.py``) in plain, idiomatic Gluon.

Gluon's layers (``nn.Conv2D``, ``nn.BatchNorm``, ``nn.MaxPool2D``, ...) and
blocks as the book's MXNet tabs write them: ``nn.Sequential`` built with
``add``, activations folded into ``nn.Conv2D`` and ``nn.Dense`` where the tab
folds them, ``nn.Dense`` flattening its input, input sizes inferred on the
first call, NCHW; no convlab code. The widths and layer order are convlab's
mini ones, so each network computes the same function as convlab's model.
``convlab bench`` times their training step against convlab's
(:func:`convlab.backends.mxnet.reference.idiomatic_modern_step`).

Folding activations and dropping ``nn.Flatten`` moves layers in the
``nn.Sequential``: Gluon's ``"8.weight"`` of BN-LeNet is convlab's
``"9.weight"``. :data:`CORE_POSITIONS` records, per network, where each of
Gluon's layers with parameters sits in convlab's model, and :func:`core_name`
translates a parameter's name, so convlab's initial weights load by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# MXNet as the whole backend imports it (after making it importable on today's NumPy).
from convlab.backends.mxnet.framework import _np_mode, mnp, nn, npx


def batch_norm() -> nn.BatchNorm:
    """``nn.BatchNorm`` with convlab's (PyTorch's) momentum 0.1 and eps 1e-5, in Gluon's terms.

    Gluon's ``momentum`` is the old running value's weight, so convlab's 0.1
    (the batch's weight) is Gluon's 0.9. Both are Gluon's defaults; spelled out
    so that the correspondence is checked by reading, not by recalling defaults.
    Gluon's running variance averages the biased variance, convlab's the
    unbiased one: a training step, which normalises by the batch's own
    statistics, does not see the difference.

    Returns
    -------
    mxnet.gluon.nn.BatchNorm
        A batch norm over axis 1 (channels of NCHW, features of ``(N, F)``),
        its input size inferred on the first call.
    """
    return nn.BatchNorm(momentum=0.9, epsilon=1e-5)


class Inception(nn.Block):
    """d2l §8.4's Inception block (MXNet tab): four parallel paths joined along the channels.

    Parameters
    ----------
    c1 : int
        Channels of the 1x1 path.
    c2, c3 : tuple of int
        Channels of the 1x1 reduction and of the 3x3 (``c2``) or 5x5 (``c3``) convolution.
    c4 : int
        Channels of the 1x1 convolution after the 3x3 max pooling.
    """

    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.b1_1 = nn.Conv2D(c1, kernel_size=1, activation="relu")
        self.b2_1 = nn.Conv2D(c2[0], kernel_size=1, activation="relu")
        self.b2_2 = nn.Conv2D(c2[1], kernel_size=3, padding=1, activation="relu")
        self.b3_1 = nn.Conv2D(c3[0], kernel_size=1, activation="relu")
        self.b3_2 = nn.Conv2D(c3[1], kernel_size=5, padding=2, activation="relu")
        self.b4_1 = nn.MaxPool2D(pool_size=3, strides=1, padding=1)
        self.b4_2 = nn.Conv2D(c4, kernel_size=1, activation="relu")

    def forward(self, x: Any) -> Any:
        b1 = self.b1_1(x)
        b2 = self.b2_2(self.b2_1(x))
        b3 = self.b3_2(self.b3_1(x))
        b4 = self.b4_2(self.b4_1(x))
        return mnp.concatenate((b1, b2, b3, b4), axis=1)


class Residual(nn.Block):
    """d2l §8.6's residual block (MXNet tab): two 3x3 convolutions with batch norm, plus the input.

    Parameters
    ----------
    num_channels : int
        Output channels.
    use_1x1conv : bool
        Project the input with a 1x1 convolution (needed where channels or size change).
    strides : int
        Stride of the first convolution and of the projection.
    """

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides) if use_1x1conv else None
        self.bn1 = batch_norm()
        self.bn2 = batch_norm()

    def forward(self, X: Any) -> Any:
        Y = npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return npx.relu(Y + X)


def conv_block(num_channels: int) -> nn.Sequential:
    """DenseNet's batch norm, ReLU, 3x3 convolution (MXNet tab)."""
    blk = nn.Sequential()
    blk.add(batch_norm(), nn.Activation("relu"), nn.Conv2D(num_channels, kernel_size=3, padding=1))
    return blk


class DenseBlock(nn.Block):
    """d2l §8.7's dense block (MXNet tab): each block sees the input and all earlier outputs, concatenated.

    Parameters
    ----------
    num_convs : int
        Convolution blocks.
    num_channels : int
        Channels each adds (the growth rate).
    """

    def __init__(self, num_convs: int, num_channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net = nn.Sequential()
        for _ in range(num_convs):
            self.net.add(conv_block(num_channels))

    def forward(self, X: Any) -> Any:
        for blk in self.net:
            Y = blk(X)
            X = mnp.concatenate((X, Y), axis=1)
        return X


def transition_block(num_channels: int) -> nn.Sequential:
    """d2l §8.7's transition (MXNet tab): batch norm, ReLU, 1x1 convolution, 2x2 average pooling."""
    blk = nn.Sequential()
    blk.add(
        batch_norm(),
        nn.Activation("relu"),
        nn.Conv2D(num_channels, kernel_size=1),
        nn.AvgPool2D(pool_size=2, strides=2),
    )
    return blk


def vgg_block(num_convs: int, num_channels: int) -> nn.Sequential:
    """d2l §8.2's VGG block (MXNet tab): ``num_convs`` 3x3 convolutions with ReLU, then 2x2 max pooling."""
    blk = nn.Sequential()
    for _ in range(num_convs):
        blk.add(nn.Conv2D(num_channels, kernel_size=3, padding=1, activation="relu"))
    blk.add(nn.MaxPool2D(pool_size=2, strides=2))
    return blk


def nin_block(num_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Sequential:
    """d2l §8.3's NiN block (MXNet tab): a convolution, then two 1x1 convolutions, each with ReLU."""
    blk = nn.Sequential()
    blk.add(
        nn.Conv2D(num_channels, kernel_size, strides, padding, activation="relu"),
        nn.Conv2D(num_channels, kernel_size=1, activation="relu"),
        nn.Conv2D(num_channels, kernel_size=1, activation="relu"),
    )
    return blk


def bn_lenet() -> nn.Sequential:
    """d2l §8.5's ``BNLeNet`` (MXNet tab): batch norm after every convolution and hidden dense layer."""
    net = nn.Sequential()
    net.add(
        nn.Conv2D(6, kernel_size=5), batch_norm(), nn.Activation("sigmoid"),
        nn.AvgPool2D(pool_size=2, strides=2),
        nn.Conv2D(16, kernel_size=5), batch_norm(), nn.Activation("sigmoid"),
        nn.AvgPool2D(pool_size=2, strides=2),
        nn.Dense(120), batch_norm(), nn.Activation("sigmoid"),
        nn.Dense(84), batch_norm(), nn.Activation("sigmoid"),
        nn.Dense(10),
    )  # fmt: skip
    return net


def alexnet() -> nn.Sequential:
    """d2l §8.1's AlexNet (MXNet tab) at convlab's mini size: 3x3 stem, 24-64-96-96-64 channels, 512-wide dense."""
    net = nn.Sequential()
    net.add(
        nn.Conv2D(24, kernel_size=3, padding=1, activation="relu"), nn.MaxPool2D(pool_size=3, strides=2),
        nn.Conv2D(64, kernel_size=3, padding=1, activation="relu"), nn.MaxPool2D(pool_size=3, strides=2),
        nn.Conv2D(96, kernel_size=3, padding=1, activation="relu"),
        nn.Conv2D(96, kernel_size=3, padding=1, activation="relu"),
        nn.Conv2D(64, kernel_size=3, padding=1, activation="relu"),
        nn.MaxPool2D(pool_size=3, strides=2),
        nn.Dense(512, activation="relu"), nn.Dropout(0.5),
        nn.Dense(512, activation="relu"), nn.Dropout(0.5),
        nn.Dense(10),
    )  # fmt: skip
    return net


def vgg() -> nn.Sequential:
    """d2l §8.2's VGG (MXNet tab) at convlab's mini size: ``arch=((1, 16), (1, 32), (2, 64))``, 256-wide dense."""
    net = nn.Sequential()
    for num_convs, num_channels in ((1, 16), (1, 32), (2, 64)):
        net.add(vgg_block(num_convs, num_channels))
    net.add(
        nn.Dense(256, activation="relu"), nn.Dropout(0.5),
        nn.Dense(256, activation="relu"), nn.Dropout(0.5),
        nn.Dense(10),
    )  # fmt: skip
    return net


def nin() -> nn.Sequential:
    """d2l §8.3's NiN (MXNet tab) at convlab's mini size: 24-64-96 channels, 5x5 and 3x3 first convolutions."""
    net = nn.Sequential()
    net.add(
        nin_block(24, kernel_size=5, strides=1, padding=2), nn.MaxPool2D(pool_size=3, strides=2),
        nin_block(64, kernel_size=3, strides=1, padding=1), nn.MaxPool2D(pool_size=3, strides=2),
        nin_block(96, kernel_size=3, strides=1, padding=1), nn.MaxPool2D(pool_size=3, strides=2),
        nn.Dropout(0.5),
        nin_block(10, kernel_size=3, strides=1, padding=1),
        nn.GlobalAvgPool2D(), nn.Flatten(),
    )  # fmt: skip
    return net


def googlenet() -> nn.Sequential:
    """d2l §8.4's GoogLeNet (MXNet tab) at convlab's mini size: a 3x3 stem, three Inception blocks."""
    b1 = nn.Sequential()
    b1.add(nn.Conv2D(32, kernel_size=3, padding=1, activation="relu"), nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b2 = nn.Sequential()
    b2.add(
        Inception(16, (24, 32), (4, 8), 8),
        Inception(32, (32, 48), (8, 24), 16),
        nn.MaxPool2D(pool_size=3, strides=2, padding=1),
    )
    b3 = nn.Sequential()
    b3.add(Inception(48, (24, 52), (4, 12), 16), nn.GlobalAvgPool2D())
    net = nn.Sequential()
    net.add(b1, b2, b3, nn.Dense(10))
    return net


def resnet18() -> nn.Sequential:
    """d2l §8.6's ResNet-18 (MXNet tab) at convlab's mini size: a 3x3 stem, stages of 16-32-64 channels."""

    def resnet_block(num_channels: int, num_residuals: int, first_block: bool = False) -> nn.Sequential:
        blk = nn.Sequential()
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.add(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.add(Residual(num_channels))
        return blk

    b1 = nn.Sequential()
    b1.add(nn.Conv2D(16, kernel_size=3, padding=1), batch_norm(), nn.Activation("relu"))
    net = nn.Sequential()
    net.add(b1, resnet_block(16, 2, first_block=True), resnet_block(32, 2), resnet_block(64, 2))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


def densenet() -> nn.Sequential:
    """d2l §8.7's DenseNet (MXNet tab) at convlab's mini size: a 3x3 stem of 24, growth 12, blocks of (2, 2, 2)."""
    b1 = nn.Sequential()
    b1.add(
        nn.Conv2D(24, kernel_size=3, padding=1), batch_norm(), nn.Activation("relu"),
        nn.MaxPool2D(pool_size=2, strides=2),
    )  # fmt: skip
    net = nn.Sequential()
    net.add(b1)
    num_channels, growth_rate, arch = 24, 12, (2, 2, 2)
    for i, num_convs in enumerate(arch):
        net.add(DenseBlock(num_convs, growth_rate))
        num_channels += num_convs * growth_rate
        if i != len(arch) - 1:
            num_channels //= 2
            net.add(transition_block(num_channels))
    net.add(batch_norm(), nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


NETWORKS: dict[str, Callable[[], nn.Sequential]] = {
    "bn_lenet": bn_lenet,
    "alexnet": alexnet,
    "vgg": vgg,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}
"""Each network's builder, by the name of its :mod:`convlab.models` function."""

CORE_POSITIONS: dict[str, Mapping[str, str]] = {
    # Flatten (8) and every later layer one place further on in convlab's Sequential.
    "bn_lenet": {"8": "9", "9": "10", "11": "12", "12": "13", "14": "15"},
    # Each ReLU a layer of its own in convlab, and its Flatten (13) before the first Linear.
    "alexnet": {"2": "3", "4": "6", "5": "8", "6": "10", "8": "14", "10": "17", "12": "20"},
    # Inside the last block the ReLU after the first convolution; after the blocks, Flatten and the ReLUs.
    "vgg": {"2.1": "2.2", "3": "4", "5": "7", "7": "10"},
    # Inside each NiN block, a ReLU after each convolution; the blocks themselves are where convlab has them.
    "nin": {f"{block}.{i}": f"{block}.{2 * i}" for block in ("0", "2", "4", "7") for i in (1, 2)},
    # Every name is convlab's: the ReLUs are inside Inception and the stem's are at the end; Dense flattens.
    "googlenet": {},
    # Convlab flattens (5) before its Linear.
    "resnet18": {"5": "6"},
    # Convlab flattens (9) before its Linear.
    "densenet": {"9": "10"},
}
"""Per network, convlab's position of each of Gluon's layers with parameters that sits elsewhere in Gluon.

Keys and values are dotted layer paths (``"2.1"``: layer 1 of the block at
position 2); a layer not listed has the same path in both.
"""

_CORE_KINDS = {"gamma": "weight", "beta": "bias"}
"""Gluon's names of batch norm's scale and shift, and convlab's (PyTorch's)."""


def core_name(model: str, name: str) -> str:
    """Convlab's name of the parameter Gluon names ``name`` (structurally) in the network ``model``.

    Parameters
    ----------
    model : str
        A key of :data:`NETWORKS`.
    name : str
        A structural name, as ``save_parameters`` writes it: ``"8.weight"``, ``"1.0.bn1.gamma"``.

    Returns
    -------
    str
        The name ``cl.parameters`` gives the same parameter of ``getattr(cl.models, model)()``.

    Examples
    --------
    >>> core_name("bn_lenet", "9.gamma")
    '10.weight'
    >>> core_name("googlenet", "1.0.b2_2.bias")
    '1.0.b2_2.bias'
    """
    path, _, kind = name.rpartition(".")
    positions = CORE_POSITIONS[model]
    parts = path.split(".")
    # The longest listed prefix decides: "2.1" of VGG's last block before its block "2".
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        if prefix in positions:
            path = ".".join([positions[prefix], *parts[length:]])
            break
    return f"{path}.{_CORE_KINDS.get(kind, kind)}"


def build(model: str) -> nn.Sequential | None:
    """The network ``model`` as Gluon blocks, uninitialised; ``None`` for a name not in :data:`NETWORKS`.

    Parameters
    ----------
    model : str
        The name of a :mod:`convlab.models` function.

    Returns
    -------
    mxnet.gluon.nn.Sequential or None
        The network, in MXNet's NumPy mode (its parameters ``mxnet.np`` arrays).
    """
    if model not in NETWORKS:
        return None
    _np_mode()  # per thread: without it Gluon would make legacy NDArray parameters
    return NETWORKS[model]()

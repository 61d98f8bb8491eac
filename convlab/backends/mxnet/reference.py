"""The book's MXNet tabs and Gluon's idiomatic code, for ``convlab bench`` and the shape report.

See :mod:`convlab.backends.reference`; the core never imports this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from convlab.backends.base import Padding, Pair
from convlab.backends.mxnet import networks
from convlab.backends.mxnet.adapter import MXNetBackend, _gluon_parameters

# MXNet as the whole backend imports it (after making it importable on today's NumPy).
from convlab.backends.mxnet.framework import _np_mode, autograd, gluon, init, mnp, nn, npx
from convlab.backends.reference import BookTab, FrameworkRun

AUTOGRAD_OUTCOME = ("error", "Inplace operations")
"""What :func:`convlab.autograd_exercise` reports: MXNet refuses the loop's in-place assignment while recording."""

BOOK_TAB_SHAPES: dict[str, Pair] = {}
"""Every 7.3 tab gives convlab's shape: Gluon's padding is symmetric and of any width."""

BOOK_TAB_ZERO_PADDING: dict[str, Padding] = {}
"""No 7.5 tab pads zeros: Gluon's max pooling never picks its padding, so every tab gives convlab's values."""


BATCH_NORM_MOMENTUM = 0.1
"""Gluon's ``momentum=0.9`` is the old value's weight: convlab's (PyTorch's) 0.1."""

BATCH_NORM_RUNNING_VAR = "biased"
"""Gluon's ``BatchNorm`` averages the batch's biased variance into ``running_var``."""

BOOK_STEM_POOL_PADDING: Padding = (1, 1, 1, 1)
"""The stems' ``nn.MaxPool2D(pool_size=3, strides=2, padding=1)``: symmetric, never picked by the maximum."""


def book_stem_pool(backend: MXNetBackend, X: np.ndarray) -> BookTab:
    """The stem max pooling of d2l's MXNet GoogLeNet, ResNet and DenseNet tabs."""
    code = "nn.MaxPool2D(pool_size=3, strides=2, padding=1)"
    _np_mode()
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    output = layer(mnp.array(X, dtype=np.float32, ctx=backend.context))
    return BookTab(output.asnumpy(), code)


def framework_batch_norm(backend: MXNetBackend, batches: Sequence[np.ndarray]) -> FrameworkRun:
    """Gluon's ``nn.BatchNorm()``, a training step per batch: the forward pass under ``autograd.record()``, backward.

    Gluon moves the running statistics in the backward pass: after a forward
    pass alone, recorded or not, they are still 0 and 1.
    """
    code = "nn.BatchNorm()"
    _np_mode()
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    layer.initialize(ctx=backend.context)
    means, variances = [], []
    for X in batches:
        x = mnp.array(X, dtype=np.float32, ctx=backend.context)
        with autograd.record():
            y = layer(x)
        y.backward()
        means.append(layer.running_mean.data().asnumpy().copy())
        variances.append(layer.running_var.data().asnumpy().copy())
    note = (
        f"momentum={layer._kwargs['momentum']} is the old value's weight (running = momentum running + "
        f"(1 - momentum) batch), convlab's {1 - layer._kwargs['momentum']:.2g}; running_var averages the batch's "
        "biased variance; the statistics move in the backward pass, not the forward one"
    )
    return FrameworkRun(
        {"running_mean": np.stack(means), "running_var": np.stack(variances)},
        f"{code}; with autograd.record(): y = layer(X); y.backward()",
        note,
    )


def framework_dropout(backend: MXNetBackend, X: np.ndarray, p: float) -> FrameworkRun:
    """Gluon's ``nn.Dropout(p)`` under ``autograd.record()`` (training mode), then outside it (prediction mode)."""
    code = f"nn.Dropout({p})"
    _np_mode()
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    layer.initialize(ctx=backend.context)
    x = mnp.array(X, dtype=np.float32, ctx=backend.context)
    with autograd.record():
        training = layer(x).asnumpy()
    evaluation = layer(x).asnumpy()
    return FrameworkRun(
        {"training": training, "evaluation": evaluation}, f"{code}; inside autograd.record(), then outside it"
    )


def book_train_kernel(
    backend: MXNetBackend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    """The book's MXNet tab: Gluon ``nn.Conv2D``, ``autograd.record()``, ``l.backward()``, ``data()[:] -= ...``.

    The layer and data are placed in the backend's context, so that it is timed where ``train_kernel`` runs.
    """
    npx.set_np()
    conv2d = nn.Conv2D(1, kernel_size=kernel_size, use_bias=False)
    conv2d.initialize(init.Zero(), ctx=backend.context)
    X = mnp.array(X, ctx=backend.context).reshape(1, 1, *X.shape)
    Y = mnp.array(Y, ctx=backend.context).reshape(1, 1, *Y.shape)
    losses = []
    for _ in range(num_epochs):
        with autograd.record():
            Y_hat = conv2d(X)
            l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
        l.backward()
        conv2d.weight.data()[:] -= lr * conv2d.weight.grad()
        losses.append(float(l.sum()))
    return losses


def book_tab(backend: MXNetBackend, example: str, X: np.ndarray) -> BookTab:
    """d2l's MXNet tabs of 7.3 (``nn.Conv2D``, one output channel, ``initialize()``) and 7.5 (``nn.MaxPool2D``).

    Gluon's padding is symmetric and of any width, and its max pooling never
    picks its padding, so every tab gives convlab's shapes and values: no tab
    has a note.
    """
    calls = {
        "conv 3, padding 1": "nn.Conv2D(1, kernel_size=3, padding=1)",
        "conv (5, 3), padding (2, 1)": "nn.Conv2D(1, kernel_size=(5, 3), padding=(2, 1))",
        "conv 3, padding 1, stride 2": "nn.Conv2D(1, kernel_size=3, padding=1, strides=2)",
        "conv (3, 5), padding (0, 1), stride (3, 4)":
            "nn.Conv2D(1, kernel_size=(3, 5), padding=(0, 1), strides=(3, 4))",
        "max-pool 3": "nn.MaxPool2D(3)",
        "max-pool 3, padding 1, stride 2": "nn.MaxPool2D(3, padding=1, strides=2)",
        "max-pool (2, 3), padding (0, 1), stride (2, 3)": "nn.MaxPool2D((2, 3), padding=(0, 1), strides=(2, 3))",
    }  # fmt: skip
    code = calls[example]
    _np_mode()
    layer = eval(code, {"nn": nn})  # the quoted text is what runs: the report cannot show other code than it ran
    # The tab's comp_conv2d: Gluon's default initialiser, input channels inferred on the first call.
    # A pooling layer has no parameters to initialise.
    layer.initialize(ctx=backend.context)
    output = layer(mnp.array(X, dtype=np.float32, ctx=backend.context))
    return BookTab(output.asnumpy(), code)


def framework_conv2d_step(
    backend: MXNetBackend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
) -> Callable[[], list[Any]]:
    """Gluon's ``nn.Conv2D`` (bias, default initialiser), hybridized; a call returns its weight and bias grads.

    Hybridized with ``static_alloc`` and ``static_shape``, as Gluon's
    performance guide advises; a call waits for its result, as convlab's steps do.
    """
    _np_mode()
    layer = nn.Conv2D(out_channels, kernel_size, padding=padding, in_channels=in_channels)
    layer.initialize(ctx=backend.context)
    layer.hybridize(static_alloc=True, static_shape=True)  # what Gluon's guides advise for speed
    X = mnp.array(x, dtype=np.float32, ctx=backend.context)

    def step() -> list[Any]:
        with autograd.record():
            total = layer(X).sum()
        total.backward()
        return [backend.synchronize(p.grad()) for p in (layer.weight, layer.bias)]

    return step


IDIOMATIC_STEP_COMPILED = True
"""d2l's MXNet LeNet is hybridized, one ``CachedOp`` with ``static_alloc``: a compiled step is held to it (target n)."""


def idiomatic_lenet_step(
    backend: MXNetBackend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """d2l's MXNet LeNet: ``nn.HybridSequential`` hybridized, ``gluon.Trainer``, ``SoftmaxCrossEntropyLoss``.

    The activations are inside ``nn.Conv2D`` and ``nn.Dense`` (which flattens
    its input), as the book writes them. ``static_alloc`` is where this step
    gains: its cached graph runs on memory planned once, where an eager step
    allocates every intermediate; hybridized without it, it ran as slowly as
    eager Gluon, and convlab's ``Module`` is eager.
    """
    _np_mode()
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(channels=6, kernel_size=5, padding=2, activation="sigmoid"),
        nn.AvgPool2D(pool_size=2, strides=2),
        nn.Conv2D(channels=16, kernel_size=5, activation="sigmoid"),
        nn.AvgPool2D(pool_size=2, strides=2),
        nn.Dense(120, activation="sigmoid"),
        nn.Dense(84, activation="sigmoid"),
        nn.Dense(10),
    )
    # Gluon folds each activation into its layer and flattens inside Dense, so its layers 0, 2, 4, 5
    # and 6 are the core's 0, 3, 7, 9 and 11; the layouts (OIHW, (out, in)) are the same.
    core_index = {"0": "0", "2": "3", "4": "7", "5": "9", "6": "11"}

    def core_name(name: str) -> str:
        index, _, kind = name.partition(".")
        return f"{core_index[index]}.{kind}"

    return _gluon_sgd_step(backend, net, weights, core_name, lr, X, y, hybridize=True)


def idiomatic_modern_step(
    backend: MXNetBackend, model: str, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float] | None:
    """d2l's MXNet network (:mod:`convlab.backends.mxnet.networks`), ``gluon.Trainer``, ``SoftmaxCrossEntropyLoss``.

    The network is eager, as the book's tabs write it (``nn.Sequential`` and
    ``nn.Block`` subclasses, which ``hybridize()`` leaves eager) and as
    convlab's ``Module`` is. Its batch norm normalises by the batch's
    statistics and its dropout drops, because the forward pass runs under
    ``autograd.record()`` (Gluon's training mode).
    """
    net = networks.build(model)
    if net is None:
        return None
    return _gluon_sgd_step(backend, net, weights, functools.partial(networks.core_name, model), lr, X, y)


def _gluon_sgd_step(
    backend: MXNetBackend,
    net: nn.Block,
    weights: Mapping[str, np.ndarray],
    core_name: Callable[[str], str],
    lr: float,
    X: np.ndarray,
    y: np.ndarray,
    hybridize: bool = False,
) -> Callable[[], float]:
    """The book's training step of ``net`` from ``weights``: ``autograd.record()``, ``gluon.Trainer``'s SGD.

    Parameters
    ----------
    net : mxnet.gluon.nn.Block
        The network, uninitialised (Gluon infers its input sizes here, on ``X``).
    weights : mapping of str to numpy.ndarray
        Convlab's parameters, by convlab's names; Gluon's layouts (OIHW, ``(out, in)``) are the core's.
    core_name : callable
        Convlab's name of the parameter with Gluon's structural name (``"8.weight"``).
    hybridize : bool
        Hybridize with ``static_alloc`` and ``static_shape`` once the weights are set (a ``HybridBlock`` only).

    Returns
    -------
    callable
        A call trains one step on ``(X, y)`` and returns the batch's mean loss.

    Raises
    ------
    ValueError
        If ``weights`` and the network's parameters do not correspond one to one, with equal shapes.
    """
    net.initialize(ctx=backend.context)
    X, y = mnp.array(X, dtype=np.float32, ctx=backend.context), backend.labels(y)
    net(X)  # Gluon infers the input sizes on the first call; only then can the weights be set
    params = {core_name(name): param for name, param in _gluon_parameters(net).items()}
    if params.keys() != weights.keys():  # a mistranslated name would leave a layer at Gluon's random weights
        raise ValueError(f"Gluon's parameters {sorted(params)} are not convlab's {sorted(weights)}")
    for name, param in params.items():
        if param.shape != weights[name].shape:  # set_data would broadcast a mismatched value, not refuse it
            raise ValueError(f"{name}: Gluon's shape {param.shape}, convlab's {weights[name].shape}")
        param.set_data(mnp.array(weights[name], dtype=np.float32, ctx=backend.context))
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)  # what Gluon's guides advise for speed
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    batch_size = X.shape[0]

    def step() -> float:
        with autograd.record():
            l = loss(net(X), y)  # noqa: E741 - the book's name
        l.backward()
        trainer.step(batch_size)  # the gradient of the sum, over the batch size: that of the mean
        value = l.mean().item()
        npx.waitall()  # the update too, as convlab's step waits for its own: a timing counts the whole step
        return value

    return step

"""The d2l-zh Paddle tabs and Paddle's idiomatic code, for ``convlab bench`` and the shape report.

See :mod:`convlab.backends.reference`; the core never imports this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from convlab.backends.base import Padding, Pair

# Paddle as the adapter imports it, under its warnings filter, whichever module is imported first.
from convlab.backends.paddle.adapter import F, PaddleBackend, nn, paddle
from convlab.backends.paddle.networks import NETWORKS
from convlab.backends.reference import BookTab, FrameworkRun

AUTOGRAD_OUTCOME = ("gradient", "match the exact ones")
"""What :func:`convlab.autograd_exercise` reports: Paddle records the loop's item assignment (``set_value``)."""

BOOK_TAB_SHAPES: dict[str, Pair] = {}
"""Every 7.3 tab gives convlab's shape: ``nn.Conv2D`` pads symmetrically, by any width."""

BOOK_TAB_ZERO_PADDING: dict[str, Padding] = {}
"""No 7.5 tab pads zeros: ``nn.MaxPool2D``'s padding never wins the maximum, as convlab's ``-inf``."""


BATCH_NORM_MOMENTUM = 0.1
"""Paddle's ``momentum=0.9`` is the old value's weight: convlab's (PyTorch's) 0.1."""

BATCH_NORM_RUNNING_VAR = "biased"
"""``nn.BatchNorm2D`` averages the batch's biased variance into its running variance (``_variance``)."""

BOOK_STEM_POOL_PADDING: Padding = (1, 1, 1, 1)
"""The stems' ``nn.MaxPool2D(kernel_size=3, stride=2, padding=1)``: symmetric, never picked by the maximum."""


def book_stem_pool(backend: PaddleBackend, X: np.ndarray) -> BookTab:
    """The stem max pooling of the d2l-zh Paddle GoogLeNet, ResNet and DenseNet tabs."""
    code = "nn.MaxPool2D(kernel_size=3, stride=2, padding=1)"
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    with paddle.no_grad():
        output = layer(paddle.to_tensor(np.asarray(X, dtype=np.float32), place=backend.device_place))
    return BookTab(output.numpy(), code)


def framework_batch_norm(backend: PaddleBackend, batches: Sequence[np.ndarray]) -> FrameworkRun:
    """``nn.BatchNorm2D(C)`` in training mode (``layer.train()``, its default), one forward pass per batch."""
    code = f"nn.BatchNorm2D({batches[0].shape[1]})"
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    layer.to(device=backend.device_place)
    layer.train()
    means, variances = [], []
    with warnings.catch_warnings():  # "When training, we now always track global mean and variance."
        warnings.simplefilter("ignore", UserWarning)
        for X in batches:
            with paddle.no_grad():
                layer(paddle.to_tensor(np.asarray(X, dtype=np.float32), place=backend.device_place))
            means.append(layer._mean.numpy().copy())
            variances.append(layer._variance.numpy().copy())
    note = (
        f"momentum={layer._momentum} is the old value's weight (running = momentum running + (1 - momentum) "
        f"batch), convlab's {1 - layer._momentum:.2g}; the running variance averages the batch's biased variance"
    )
    return FrameworkRun({"running_mean": np.stack(means), "running_var": np.stack(variances)}, code, note)


def framework_dropout(backend: PaddleBackend, X: np.ndarray, p: float) -> FrameworkRun:
    """``nn.Dropout(p)`` (``mode="upscale_in_train"``, its default) after ``layer.train()``, then ``layer.eval()``."""
    code = f"nn.Dropout({p})"
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    x = paddle.to_tensor(np.asarray(X, dtype=np.float32), place=backend.device_place)
    with paddle.no_grad():
        layer.train()
        training = layer(x).numpy()
        layer.eval()
        evaluation = layer(x).numpy()
    return FrameworkRun(
        {"training": training, "evaluation": evaluation}, f"{code}  # mode={layer.mode!r}; .train(), then .eval()"
    )


def book_tab(backend: PaddleBackend, example: str, X: np.ndarray) -> BookTab:
    """The d2l-zh Paddle tabs of 7.3 (``nn.Conv2D``, one channel in and out) and 7.5 (``nn.MaxPool2D``)."""
    calls = {
        "conv 3, padding 1": "nn.Conv2D(in_channels=1, out_channels=1, kernel_size=3, padding=1)",
        "conv (5, 3), padding (2, 1)":
            "nn.Conv2D(in_channels=1, out_channels=1, kernel_size=(5, 3), padding=(2, 1))",
        "conv 3, padding 1, stride 2": "nn.Conv2D(1, 1, kernel_size=3, padding=1, stride=2)",
        "conv (3, 5), padding (0, 1), stride (3, 4)":
            "nn.Conv2D(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))",
        "max-pool 3": "nn.MaxPool2D(3, stride=3)",
        "max-pool 3, padding 1, stride 2": "nn.MaxPool2D(3, padding=1, stride=2)",
        "max-pool (2, 3), padding (0, 1), stride (2, 3)": "nn.MaxPool2D((2, 3), padding=(0, 1), stride=(2, 3))",
    }  # fmt: skip
    code = calls[example]
    layer = eval(code, {"nn": nn})  # the quoted text is what runs: the report cannot show other code than it ran
    layer.to(device=backend.device_place)
    with paddle.no_grad():
        output = layer(paddle.to_tensor(np.asarray(X, dtype=np.float32), place=backend.device_place))
    return BookTab(output.numpy(), code)


def framework_conv2d_step(
    backend: PaddleBackend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
) -> Callable[[], Any]:
    layer = nn.Conv2D(in_channels, out_channels, kernel_size, padding=padding)
    layer.to(device=backend.device_place)
    X = backend.tensor(x)

    def step() -> Any:
        layer.clear_gradients()
        layer(X).sum().backward()
        return backend.synchronize(layer.weight.grad)

    return step


def idiomatic_lenet_step(
    backend: PaddleBackend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """The d2l-zh Paddle LeNet: ``nn.Sequential``, ``F.cross_entropy``, ``paddle.optimizer.SGD``."""
    net = nn.Sequential(
        nn.Conv2D(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2D(kernel_size=2, stride=2),
        nn.Conv2D(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2D(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    return _sgd_step(backend, net, weights, lr, X, y)


def idiomatic_modern_step(
    backend: PaddleBackend, model: str, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float] | None:
    """A d2l-zh Paddle network (:mod:`~convlab.backends.paddle.networks`), ``F.cross_entropy``, ``optimizer.SGD``.

    The network is in training mode (``net.train()``): batch norm on the
    batch's statistics, ``nn.Dropout`` drawing from Paddle's generator.
    ``None`` for a ``model`` the module has no copy of.
    """
    if model not in NETWORKS:
        return None
    net = NETWORKS[model](lambda p, index: nn.Dropout(p))
    net.train()
    return _sgd_step(backend, net, weights, lr, X, y)


def _sgd_step(
    backend: PaddleBackend, net: nn.Layer, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """The d2l-zh training step of ``net`` from ``weights``: ``F.cross_entropy``, ``paddle.optimizer.SGD``.

    Parameters
    ----------
    backend : PaddleBackend
        The backend whose device and dtype the network, ``X`` and ``y`` take.
    net : paddle.nn.Layer
        The network, with its sublayers named as convlab's (``nn.Sequential`` numbers them as ``cl.nn`` does).
    weights : mapping of str to numpy.ndarray
        Every parameter of ``net`` by its dotted name, in the core's layouts.
    lr : float
        The learning rate.
    X, y : numpy.ndarray
        The batch (NCHW) and its int labels, converted once.

    Returns
    -------
    callable
        A call trains one step and returns its loss, as a float.
    """
    net.to(device=backend.device_place)
    if backend.dtype != np.float32:
        net.to(dtype=backend.dtype.name)  # the batch comes in the backend's dtype
    for name, param in net.named_parameters():
        if not param.trainable:
            # Batch norm's running statistics (``_mean``, ``_variance``): Paddle makes them parameters, convlab
            # buffers; both start at zeros and ones, and a training step reads the batch's statistics only.
            continue
        value = np.asarray(weights[name], dtype=backend.dtype)
        # Only linear weights are 2-D: the core's (out, in) is Paddle's (in, out). Convolutions are OIHW in both.
        param.set_value(value.T if value.ndim == 2 else value)
    optimizer = paddle.optimizer.SGD(learning_rate=lr, parameters=net.parameters())
    X, y = backend.tensor(X), backend.labels(y)

    def step() -> float:
        with warnings.catch_warnings():  # "When training, we now always track global mean and variance.", each call
            warnings.simplefilter("ignore", UserWarning)
            loss = F.cross_entropy(net(X), y)  # the mean over the batch, from the logits
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss.item()

    return step


def book_train_kernel(
    backend: PaddleBackend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    """The d2l-zh Paddle tab: ``nn.Conv2D``, ``clear_gradients``, ``weight[:] -= lr * grad`` under ``no_grad``.

    The tab's layer keeps Paddle's default bias, which its text says to
    ignore; here it has none, as in the other tabs, so that the losses are
    the book's. The layer and data are on the backend's device, where ``train_kernel`` runs.
    """
    conv2d = nn.Conv2D(1, 1, kernel_size=kernel_size, bias_attr=False)
    conv2d.to(device=backend.device_place)
    conv2d.weight.set_value(np.zeros(conv2d.weight.shape, np.float32))
    X = paddle.to_tensor(X, place=backend.device_place).reshape((1, 1, *X.shape))
    Y = paddle.to_tensor(Y, place=backend.device_place).reshape((1, 1, *Y.shape))
    losses = []
    for _ in range(num_epochs):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
        conv2d.clear_gradients()
        loss = l.sum()
        loss.backward()
        with paddle.no_grad():
            conv2d.weight[:] -= lr * conv2d.weight.grad
        losses.append(loss.item())
    return losses

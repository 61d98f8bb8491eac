"""The book's PyTorch tabs and PyTorch's idiomatic code, for ``convlab bench`` and the shape report.

See :mod:`convlab.backends.reference`; the core never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from torch import nn

from convlab.backends.base import Padding, Pair
from convlab.backends.reference import BookTab, FrameworkRun
from convlab.backends.torch.adapter import TorchBackend
from convlab.backends.torch.networks import NETWORKS

AUTOGRAD_OUTCOME = ("gradient", "match the exact ones")
"""What :func:`convlab.autograd_exercise` reports: autograd records the loop's item assignment (``CopySlices``)."""

BOOK_TAB_SHAPES: dict[str, Pair] = {}
"""Every 7.3 tab gives convlab's shape: ``nn.LazyConv2d`` pads symmetrically, by any width."""

BOOK_TAB_ZERO_PADDING: dict[str, Padding] = {}
"""No 7.5 tab pads zeros: ``nn.MaxPool2d``'s padding never wins the maximum, as convlab's ``-inf``."""


BATCH_NORM_MOMENTUM = 0.1
"""``nn.BatchNorm2d``'s ``momentum=0.1`` is the batch's weight, as in convlab (which takes PyTorch's convention)."""

BATCH_NORM_RUNNING_VAR = "unbiased"
"""``nn.BatchNorm2d`` normalises by the biased variance and averages the unbiased one into ``running_var``."""

BOOK_STEM_POOL_PADDING: Padding = (1, 1, 1, 1)
"""The stems' ``nn.MaxPool2d(kernel_size=3, stride=2, padding=1)``: one row and column on every side, never picked."""


def book_stem_pool(backend: TorchBackend, X: np.ndarray) -> BookTab:
    """The stem max pooling of d2l's PyTorch GoogLeNet, ResNet and DenseNet tabs."""
    code = "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)"
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    with torch.no_grad():
        output = layer(backend.tensor(X))
    return BookTab(output.cpu().numpy(), code)


def framework_batch_norm(backend: TorchBackend, batches: Sequence[np.ndarray]) -> FrameworkRun:
    """``nn.BatchNorm2d(C)`` in training mode (its default), one forward pass per batch."""
    code = f"nn.BatchNorm2d({batches[0].shape[1]})"
    layer = eval(code, {"nn": nn}).to(backend.device)  # the quoted text is what runs
    means, variances = [], []
    with torch.no_grad():
        for X in batches:
            layer(backend.tensor(X))
            means.append(layer.running_mean.cpu().numpy().copy())
            variances.append(layer.running_var.cpu().numpy().copy())
    note = (
        f"momentum={layer.momentum} is the batch's weight (running = (1 - momentum) running + momentum batch); "
        "running_var averages the batch's unbiased variance"
    )
    return FrameworkRun({"running_mean": np.stack(means), "running_var": np.stack(variances)}, code, note)


def framework_dropout(backend: TorchBackend, X: np.ndarray, p: float) -> FrameworkRun:
    """``nn.Dropout(p)`` in training mode (``layer.train()``), then in evaluation mode (``layer.eval()``)."""
    code = f"nn.Dropout({p})"
    layer = eval(code, {"nn": nn})  # the quoted text is what runs
    x = backend.tensor(X)
    with torch.no_grad():
        training = layer.train()(x).cpu().numpy()
        evaluation = layer.eval()(x).cpu().numpy()
    return FrameworkRun({"training": training, "evaluation": evaluation}, f"{code}; .train(), then .eval()")


def book_tab(backend: TorchBackend, example: str, X: np.ndarray) -> BookTab | None:
    """d2l's PyTorch tabs of 7.3 (``nn.LazyConv2d``, one output channel) and 7.5 (``nn.MaxPool2d``)."""
    calls = {
        "conv 3, padding 1": "nn.LazyConv2d(1, kernel_size=3, padding=1)",
        "conv (5, 3), padding (2, 1)": "nn.LazyConv2d(1, kernel_size=(5, 3), padding=(2, 1))",
        "conv 3, padding 1, stride 2": "nn.LazyConv2d(1, kernel_size=3, padding=1, stride=2)",
        "conv (3, 5), padding (0, 1), stride (3, 4)":
            "nn.LazyConv2d(1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4))",
        "max-pool 3": "nn.MaxPool2d(3)",
        "max-pool 3, padding 1, stride 2": "nn.MaxPool2d(3, padding=1, stride=2)",
        "max-pool (2, 3), padding (0, 1), stride (2, 3)": "nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))",
    }  # fmt: skip
    code = calls[example]
    layer = eval(code, {"nn": nn})  # the quoted text is what runs: the report cannot show other code than it ran
    with torch.no_grad():
        output = layer(torch.from_numpy(np.ascontiguousarray(X)))
    return BookTab(output.numpy(), code)


def framework_conv2d_step(
    backend: TorchBackend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
) -> Callable[[], Any]:
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding).to(backend.device)
    X = backend.tensor(x)

    def step() -> Any:
        layer.zero_grad()
        layer(X).sum().backward()
        return backend.synchronize(layer.weight.grad)

    return step


def idiomatic_lenet_step(
    backend: TorchBackend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """The book's PyTorch LeNet: ``nn.Sequential``, ``F.cross_entropy``, ``torch.optim.SGD``."""
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    return _sgd_step(backend, net, weights, lr, X, y)


def _sgd_step(
    backend: TorchBackend, net: nn.Module, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """The book's training step of ``net`` from ``weights``: ``F.cross_entropy``, ``torch.optim.SGD``."""
    net = net.to(backend.device)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(torch.from_numpy(np.asarray(weights[name])))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    X, y = backend.tensor(X), backend.labels(y)

    def step() -> float:
        loss = F.cross_entropy(net(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def idiomatic_modern_step(
    backend: TorchBackend, model: str, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float] | None:
    """The book's PyTorch network (:mod:`convlab.backends.torch.networks`), ``F.cross_entropy``, ``torch.optim.SGD``."""
    if model not in NETWORKS:
        return None
    return _sgd_step(backend, NETWORKS[model](lambda p, index: nn.Dropout(p)).train(), weights, lr, X, y)


def book_train_kernel(
    backend: TorchBackend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    """The book's PyTorch tab: ``nn.Conv2d``, ``l.sum().backward()``, ``weight.data[:] -= lr * grad``.

    The layer and data are moved to the backend's device, so that it is timed where ``train_kernel`` runs.
    """
    conv2d = nn.Conv2d(1, 1, kernel_size=kernel_size, bias=False).to(backend.device)
    nn.init.zeros_(conv2d.weight)
    X = torch.from_numpy(X).reshape((1, 1, *X.shape)).to(backend.device)
    Y = torch.from_numpy(Y).reshape((1, 1, *Y.shape)).to(backend.device)
    losses = []
    for _ in range(num_epochs):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
        conv2d.zero_grad()
        loss = l.sum()
        loss.backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(loss.item())
    return losses

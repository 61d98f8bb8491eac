"""The chapter's hand-written convolutional layer.

:func:`Conv2D` builds it as a real module of the active framework (an
``nn.Module`` in PyTorch, a Keras ``Layer``, ...). Its forward pass is
:func:`forward`, written once here; the adapters only wrap parameters around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab._checks import check_choice, check_kernel_size
from convlab._registry import get_backend
from convlab.backends.base import Backend, Forward, Loss, Tensor, weight_and_bias
from convlab.ops import METHODS, corr2d_on

INITS = ("normal", "zeros", "framework")


def initial_weights(
    kernel_size: tuple[int, int], use_bias: bool, init: str, seed: int | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Framework-independent initial ``(weight, bias)``, or ``(None, ...)`` for ``init="framework"``.

    ``"normal"`` draws the weight from a standard normal with NumPy's
    generator seeded by ``seed``, so every backend starts from the same
    numbers; ``"zeros"`` starts at zero. The bias always starts at zero, as
    in the book.
    """
    check_choice(init, "init", INITS)
    bias = np.zeros((1,), dtype=np.float32) if use_bias else None
    if init == "framework":
        return None, bias
    if init == "zeros":
        return np.zeros(kernel_size, dtype=np.float32), bias
    weight = np.random.default_rng(seed).standard_normal(kernel_size).astype(np.float32)
    return weight, bias


@dataclass(frozen=True)
class LayerForward:
    """The layer's forward pass ``corr2d(X, weight, method) + bias`` on ``backend``.

    The backend is fixed when the layer is made: a layer keeps computing with
    its own framework whatever backend is active when it is called. Equal
    forwards compare equal, so a framework that compiles the forward pass
    (``jax.jit``) reuses one compilation for every layer of the same kind.
    """

    method: str
    backend: Backend

    def __call__(self, X: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        Y = corr2d_on(self.backend, X, weight, self.method)
        return Y if bias is None else Y + bias


def make_forward(method: str, backend: Backend) -> Forward:
    """The forward pass of a layer computing with ``method`` on ``backend``."""
    return LayerForward(check_choice(method, "method", METHODS), backend)


@export(pinned=True)
def Conv2D(  # noqa: N802 - a factory that reads like the book's class
    kernel_size: Any,
    bias: bool = True,
    init: str = "normal",
    seed: int | None = None,
    method: str = "vectorized",
) -> Any:
    """The hand-written 2-D convolutional layer, as a module of the active framework.

    Parameters
    ----------
    kernel_size : (int, int) or int
        Height and width of the kernel.
    bias : bool
        Add a learned scalar bias (initialised to zero).
    init : {"normal", "zeros", "framework"}
        ``"normal"``: standard normal from ``numpy.random.default_rng(seed)``
        (identical on every backend); ``"zeros"``; ``"framework"``: the
        framework's own initialiser, as the book's tabs use (NumPy has none:
        there, unseeded uniform on ``[0, 1)``, as the book's PyTorch tab).
    seed : int, optional
        Seed for ``init="normal"``.
    method : str
        The :func:`corr2d` method of the forward pass. ``"loop"`` reproduces
        the book's layer (and its autograd problems, exercise 2).

    Returns
    -------
    layer
        Callable on a 2-D input; has ``weight`` and ``bias`` parameters that
        the framework's own optimisers see. On NumPy it is a
        :class:`ReferenceConv2D`.

    Examples
    --------
    >>> import convlab as cl
    >>> layer = cl.Conv2D(kernel_size=(1, 2), init="zeros")
    >>> layer([[1.0, 2.0, 3.0]])
    array([[0., 0.]], dtype=float32)
    """
    size = check_kernel_size(kernel_size)
    weight, bias_value = initial_weights(size, bool(bias), init, seed)
    backend = get_backend()
    return backend.conv2d_layer(size, weight, bias_value, make_forward(method, backend))


class ReferenceConv2D:
    """The layer for backends without autograd, with its backward pass written by hand.

    ``Y = corr2d(X, weight) + bias``. Each output element depends on
    ``weight[a, b]`` through ``X[i + a, j + b]``, so the gradient of a loss
    with output gradient ``dY`` is ``corr2d(X, dY)`` for the weight (a
    cross-correlation of the input with the output gradient) and
    ``sum(dY)`` for the bias.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> forward = make_forward("vectorized", cl.get_backend())
    >>> layer = ReferenceConv2D(np.array([[1.0, -1.0]]), None, forward)
    >>> layer.backward(np.array([[1.0, 2.0, 4.0]]), np.array([[1.0, 1.0]]))
    {'weight': array([[3., 6.]], dtype=float32)}
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, forward: Forward) -> None:
        self.weight = np.array(weight, dtype=np.float32)
        self.bias = None if bias is None else np.array(bias, dtype=np.float32)
        self._forward = forward

    def __call__(self, X: Any) -> np.ndarray:
        return self._forward(X, self.weight, self.bias)

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"weight": ..., "bias": ...}`` (no ``"bias"`` without one)."""
        return weight_and_bias(self)

    def backward(self, X: np.ndarray, dY: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the parameters given the output gradient ``dY``."""
        grads = {"weight": self._forward(X, dY, None)}
        if self.bias is not None:
            grads["bias"] = np.asarray(dY, dtype=np.float32).sum(keepdims=True).reshape(1)
        return grads

    def __repr__(self) -> str:
        return f"ReferenceConv2D(kernel_size={self.weight.shape}, bias={self.bias is not None})"


@dataclass(frozen=True)
class SquaredError(Loss):
    """The book's loss: squared error summed over all outputs.

    Compared by value, like :class:`LayerForward`, so compiled training steps are reused.
    """

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return self.backend.sum((Y_hat - Y) ** 2)

    def grad(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return 2 * (Y_hat - Y)

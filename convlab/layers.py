"""Layers, written once: parameter shapes, initial values and forward passes.

A layer is a :class:`LayerDef`: a frozen, comparable description that says
which parameters it has, how they start and how it computes. The active
backend's :meth:`~convlab.backends.base.Backend.module` turns it into a real
module of that framework (an ``nn.Module``, a Keras ``Layer``, an NNX
``Module``, a Gluon ``Block``, or NumPy's own), whose call runs
:meth:`LayerDef.forward` on that framework's tensors. Definitions compare by
value, so a framework that compiles the forward pass (``jax.jit``) reuses one
compilation for every layer of the same kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab._checks import check_choice, check_kernel_size
from convlab._registry import get_backend
from convlab.backends.base import Backend, Pair, Tensor
from convlab.ops import METHODS, corr2d_on

INITS = ("normal", "zeros", "framework")


@dataclass(frozen=True)
class LayerDef:
    """What a layer is, independent of any framework."""

    @property
    def title(self) -> str:
        """The layer's name in summaries: its class name without ``Def``."""
        return type(self).__name__.removesuffix("Def")

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Sequence[Callable[[Tensor], Tensor]] = (),
    ) -> Tensor:
        """The layer's output for input ``X`` given its own parameters and its submodules.

        ``params`` are native tensors of ``backend``; ``children`` are the
        submodules of a container, callable on a tensor (empty for a layer).
        """
        raise NotImplementedError


@dataclass(frozen=True)
class HandWrittenConv2D(LayerDef):
    """The chapter's layer: ``corr2d(X, weight, method) + bias`` on a 2-D input.

    The forward pass uses the backend it is given, which is the one the layer
    was made on: a layer keeps computing with its own framework whatever
    backend is active when it is called.
    """

    method: str = "vectorized"

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Sequence[Callable[[Tensor], Tensor]] = (),
    ) -> Tensor:
        Y = corr2d_on(backend, X, params["weight"], self.method)
        bias = params.get("bias")
        return Y if bias is None else Y + bias


def initial_weights(
    kernel_size: Pair, use_bias: bool, init: str, seed: int | None, backend: Backend, std: float = 1.0
) -> dict[str, np.ndarray]:
    """The layer's initial ``{"weight": ..., "bias": ...}`` (no ``"bias"`` without one).

    ``"normal"`` draws the weight from a normal of standard deviation ``std`` with NumPy's
    generator seeded by ``seed``, so every backend starts from the same
    numbers; ``"zeros"`` starts at zero; ``"framework"`` asks the backend for
    the initialiser its book tab uses. The bias always starts at zero, as in
    the book.
    """
    check_choice(init, "init", INITS)
    if init == "framework":
        weight = np.asarray(backend.framework_initial_weight(kernel_size), dtype=np.float32)
    elif init == "zeros":
        weight = np.zeros(kernel_size, dtype=np.float32)
    else:
        weight = (std * np.random.default_rng(seed).standard_normal(kernel_size)).astype(np.float32)
    return {"weight": weight, "bias": np.zeros((1,), dtype=np.float32)} if use_bias else {"weight": weight}


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
        initialiser the book's tab for that framework uses (NumPy has none:
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
        the framework's own optimisers see.

    Examples
    --------
    >>> import convlab as cl
    >>> layer = cl.Conv2D(kernel_size=(1, 2), init="zeros")
    >>> layer([[1.0, 2.0, 3.0]])
    array([[0., 0.]], dtype=float32)
    """
    size = check_kernel_size(kernel_size)
    definition = HandWrittenConv2D(check_choice(method, "method", METHODS))
    backend = get_backend()
    return backend.module(definition, initial_weights(size, bool(bias), init, seed, backend))


@dataclass(frozen=True)
class SquaredError:
    """The book's loss: squared error summed over all outputs.

    Compared by value, like :class:`LayerDef`, so compiled training steps are reused.
    """

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return self.backend.sum((Y_hat - Y) ** 2)


@dataclass(frozen=True)
class HalfMeanSquaredError:
    """The Java edition's loss, DJL's ``Loss.l2Loss()``: half the mean squared error."""

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return 0.5 * self.backend.mean((Y_hat - Y) ** 2)


@dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """The mean softmax cross-entropy of logits ``Y_hat`` ``(N, classes)`` against one-hot ``Y``, as d2l's classifiers.

    The labels come one-hot (float) so that the loss needs no gather: ``-sum(Y * log_softmax(Y_hat)) / N``.
    """

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return -self.backend.sum(Y * self.backend.log_softmax(Y_hat, axis=1)) / Y_hat.shape[0]

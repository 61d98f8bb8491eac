"""The chapter's hand-written ``Conv2D`` (d2l 7.2): ``corr2d(X, weight) + bias`` on one 2-D image.

It differs from :func:`convlab.nn.Conv2d` (the frameworks' batched NCHW layer) in
taking a single 2-D image and a single 2-D kernel, as the book's class does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, LayerCall, LayerDef, Pair, Tensor
from convlab.core.checks import check_choice, check_kernel_size
from convlab.core.ops import METHODS, corr2d_on
from convlab.core.registry import get_backend
from convlab.nn.layers import in_active_precision

INITS = ("normal", "zeros", "framework")


@dataclass(frozen=True)
class HandWrittenConv2dDef(LayerDef):
    """The chapter's layer: ``corr2d(X, weight, method) + bias`` on a 2-D input.

    The forward pass uses the backend it is given, which is the one the layer
    was made on: a layer keeps computing with its own framework whatever
    backend is active when it is called (in the dtype of a block of that
    framework and device, :func:`convlab.nn.layers.in_active_precision`).
    """

    method: str = "vectorized"

    @property
    def title(self) -> str:
        return "Conv2D"

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Sequence[Callable[[Tensor], Tensor]] = (),
        call: LayerCall | None = None,
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
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
        weight = np.asarray(backend.book_initial_kernel(kernel_size), dtype=np.float32)
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
    definition = HandWrittenConv2dDef(check_choice(method, "method", METHODS))
    backend = get_backend()
    return backend.module(definition, initial_weights(size, bool(bias), init, seed, backend))

"""The narrow protocol every backend adapter implements.

An adapter translates a handful of primitives into one framework; everything
the chapter *does* (validation, strict convolution, the layer's forward pass,
the loss, the training loop, divergence checks) lives in the core and is
written once in terms of these primitives.

A backend is one package in :mod:`convlab.backends`: its ``__init__`` holds
only a :class:`~convlab.backends.spec.BackendSpec` (read without importing
the framework), and the adapter module the spec names imports its framework
at its top and defines one subclass of :class:`Backend`. The registry imports
that module when the backend is first selected, so ``import convlab`` stays
free of deep-learning frameworks.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from convlab.backends.spec import BackendSpec

Tensor = Any
"""A native tensor of some backend (``np.ndarray``, ``torch.Tensor``, ...)."""

Forward = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]
"""``forward(X, weight, bias)``: the hand-written layer's forward pass (from the core)."""


class Loss(abc.ABC):
    """A loss written by the core in terms of native tensor operators."""

    @abc.abstractmethod
    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        """The scalar loss, differentiable by the framework's autograd."""

    @abc.abstractmethod
    def grad(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        """``d loss / d Y_hat``, for backends without autograd."""


class Backend(abc.ABC):
    """One framework behind convlab's API, on one device.

    The registry makes one instance per backend and device, from the
    backend's :class:`~convlab.backends.spec.BackendSpec`.
    """

    has_autograd: ClassVar[bool] = True
    """Whether gradients come from the framework's autograd (else a hand-written backward pass)."""

    def __init__(self, spec: BackendSpec, device: str | None = None) -> None:
        self.spec = spec
        self.device = self.resolve_device(device)
        """Where this backend's tensors live, in the framework's words (``"cpu"``, ``"cuda:0"``)."""

    @property
    def name(self) -> str:
        """Canonical name used by :func:`convlab.set_backend`."""
        return self.spec.name

    def __repr__(self) -> str:
        return f"<convlab backend {self.name!r} on {self.device!r}>"

    # -- facts -------------------------------------------------------------
    @abc.abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    def resolve_device(self, device: str | None) -> str:
        """The device to use for ``device`` (``None``: the framework's default); ``ValueError`` if unknown."""
        if device not in (None, "cpu"):
            raise ValueError(f"device: the {self.spec.name} backend computes on 'cpu' only, got {device!r}")
        return "cpu"

    # -- tensors -----------------------------------------------------------
    @property
    @abc.abstractmethod
    def tensor_types(self) -> tuple[type, ...]:
        """Types recognised as native tensors of this backend."""

    @abc.abstractmethod
    def tensor(self, data: np.ndarray | Tensor) -> Tensor:
        """A float32 native tensor from a NumPy array or a native tensor."""

    @abc.abstractmethod
    def to_numpy(self, x: Tensor) -> np.ndarray:
        """A NumPy copy (or view) of a native tensor."""

    def is_real(self, x: Tensor) -> bool:
        """Whether a native tensor holds real numbers (an int or float dtype, not bool or complex)."""
        return np.dtype(x.dtype).kind in "iuf"

    def sum(self, x: Tensor) -> Tensor:
        """Sum of all elements, as a native scalar."""
        return x.sum()

    def flip(self, K: Tensor) -> Tensor:
        """``K`` reversed along both axes."""
        return K[::-1, ::-1]

    # -- cross-correlation -------------------------------------------------
    @abc.abstractmethod
    def corr2d_loop(self, X: Tensor, K: Tensor) -> Tensor:
        """The book's double loop, written as the book's tab writes it."""

    def corr2d_vectorized(self, X: Tensor, K: Tensor) -> Tensor:
        """Shift-and-add: one scaled, shifted view of ``X`` per kernel element.

        Uses only slicing, ``*`` and ``+``, so it is differentiable wherever
        the framework's operators are, and it keeps one output-sized
        accumulator (plus one output-sized temporary) beside the input.
        """
        h, w = K.shape
        out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
        Y = X[0:out_h, 0:out_w] * K[0, 0]
        for a in range(h):
            for b in range(w):
                if a or b:
                    Y = Y + X[a : a + out_h, b : b + out_w] * K[a, b]
        return Y

    @abc.abstractmethod
    def corr2d_native(self, X: Tensor, K: Tensor) -> Tensor:
        """The framework's own convolution routine (valid mode, no flip)."""

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        """Which of ``"vectorized"`` / ``"native"`` ``method="auto"`` uses."""
        return "vectorized"

    # -- layers and training -----------------------------------------------
    @abc.abstractmethod
    def conv2d_layer(
        self,
        kernel_size: tuple[int, int],
        weight: np.ndarray | None,
        bias: np.ndarray | None,
        forward: Forward,
    ) -> Any:
        """The hand-written ``Conv2D`` as a module of this framework.

        ``weight`` and ``bias`` hold the initial values; ``weight=None``
        means "use this framework's own initialiser", ``bias=None`` means no
        bias. The module's forward pass calls ``forward(X, weight, bias)``
        with its parameters.
        """

    @abc.abstractmethod
    def builtin_layer(self, kernel_size: tuple[int, int], weight: np.ndarray | None) -> Any:
        """The framework's own conv layer: one channel in and out, no bias.

        Calling the returned object maps a 2-D input to a 2-D output (the
        adapter adds and removes the batch and channel axes).
        """

    @abc.abstractmethod
    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        """The layer's current parameters as NumPy arrays, e.g. ``{"weight": ...}``."""

    @abc.abstractmethod
    def value_and_grad(self, layer: Any, X: Tensor, Y: Tensor, loss: Loss) -> tuple[float, dict[str, Tensor | None]]:
        """``loss(layer(X), Y)`` and its gradient w.r.t. each parameter, by the framework's autograd.

        A gradient the framework reports as missing is ``None``; errors the
        framework raises while differentiating propagate unchanged.
        """

    @abc.abstractmethod
    def sgd_update(self, layer: Any, grads: dict[str, Tensor], lr: float) -> None:
        """``param -= lr * grad`` for every parameter of ``layer``, in place."""


def weight_and_bias(layer: Any) -> dict[str, Any]:
    """A layer's ``weight`` and ``bias`` attributes by name; no ``"bias"`` when it is ``None``.

    For layers that keep their parameters under these names (the core's
    reference layer, PyTorch's and Gluon's layers).
    """
    params = {"weight": layer.weight}
    if layer.bias is not None:
        params["bias"] = layer.bias
    return params

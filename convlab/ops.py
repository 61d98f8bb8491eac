"""Tensors and the cross-correlation family, dispatched to the active backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab._api import export
from convlab._checks import check_choice, check_fits, check_kernel_size, check_matrix
from convlab._convert import as_native, to_numpy
from convlab._registry import get_backend
from convlab.backends.base import Backend, Tensor

METHODS = ("auto", "loop", "vectorized", "native")


@export(pinned=True)
def tensor(data: Any) -> Tensor:
    """A float32 tensor of the active backend.

    Parameters
    ----------
    data : array_like
        A (nested) list, a NumPy array or a tensor of the active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.tensor([[0, 1], [2, 3]])
    array([[0., 1.],
           [2., 3.]], dtype=float32)
    """
    return as_native(data, "data")


def _operands(X: Any, K: Any, backend: Backend) -> tuple[Tensor, Tensor]:
    X, K = as_native(X, "X", backend), as_native(K, "K", backend)
    x_shape, k_shape = tuple(X.shape), tuple(K.shape)
    check_matrix(x_shape, "X")
    check_matrix(k_shape, "K")
    check_fits(x_shape, k_shape)
    return X, K


@export(pinned=True)
def corr2d(X: Any, K: Any, method: str = "auto") -> Tensor:
    """Two-dimensional cross-correlation of ``X`` with ``K`` (valid mode).

    ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``, so ``Y`` has shape
    ``(n_h - k_h + 1, n_w - k_w + 1)``.

    Parameters
    ----------
    X : array_like
        The 2-D input (list, NumPy array or tensor of the active backend).
    K : array_like
        The 2-D kernel, no larger than ``X``.
    method : {"auto", "loop", "vectorized", "native"}
        ``"loop"`` is the book's double loop over output pixels, written as
        the book writes it for the active framework; ``"vectorized"`` sums
        ``k_h * k_w`` shifted, scaled slices of ``X`` (no Python loop over
        pixels, differentiable, output-sized extra memory); ``"native"`` calls
        the framework's own convolution; ``"auto"`` picks the faster correct
        one of ``"vectorized"`` and ``"native"`` for these shapes.

    Returns
    -------
    Tensor
        A float32 tensor of the active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> X, K = cl.data.fig_correlation()
    >>> cl.corr2d(X, K)
    array([[19., 25.],
           [37., 43.]], dtype=float32)
    >>> cl.corr2d(X, K, method="loop")
    array([[19., 25.],
           [37., 43.]], dtype=float32)
    """
    return corr2d_on(get_backend(), X, K, method)


def corr2d_on(backend: Backend, X: Any, K: Any, method: str = "auto") -> Tensor:
    """:func:`corr2d` on a given backend rather than the active one."""
    check_choice(method, "method", METHODS)
    X, K = _operands(X, K, backend)
    if method == "auto":
        method = backend.auto_method(tuple(X.shape), tuple(K.shape))
    if method == "loop":
        return backend.corr2d_loop(X, K)
    if method == "vectorized":
        return backend.corr2d_vectorized(X, K)
    return _native(backend, X, K)


def _native(backend: Backend, X: Tensor, K: Tensor) -> Tensor:
    # The framework's own convolution: the batched primitive on one image and one channel.
    (h, w), (kh, kw) = X.shape, K.shape
    x, k = backend.reshape(X, (1, 1, h, w)), backend.reshape(K, (1, 1, kh, kw))
    return backend.reshape(backend.conv2d(x, k, (1, 1), (0, 0, 0, 0), 1), (h - kh + 1, w - kw + 1))


@export(pinned=True)
def conv2d(X: Any, K: Any, method: str = "auto") -> Tensor:
    """Strict two-dimensional convolution: cross-correlation with ``K`` flipped both ways.

    Parameters and methods are those of :func:`corr2d`.

    Examples
    --------
    >>> import convlab as cl
    >>> X, K = cl.data.fig_correlation()
    >>> cl.conv2d(X, K)
    array([[ 5., 11.],
           [23., 29.]], dtype=float32)
    """
    check_choice(method, "method", METHODS)
    backend = get_backend()
    X, K = _operands(X, K, backend)
    return corr2d_on(backend, X, backend.flip(K, (0, 1)), method)


@export(pinned=True)
def corr2d_matrix(K: Any, X_shape: Sequence[int]) -> Tensor:
    """The matrix ``W`` with ``W @ X.ravel() == corr2d(X, K).ravel()`` for every ``X`` of shape ``X_shape``.

    Cross-correlation is linear in ``X``: row ``i * out_w + j`` of ``W``
    holds the kernel, laid out at the flat positions of the window under
    output ``(i, j)``, and zeros elsewhere (the book's exercise 3).

    Parameters
    ----------
    K : array_like
        The 2-D kernel.
    X_shape : tuple of int
        ``(height, width)`` of the inputs.

    Returns
    -------
    Tensor
        Shape ``(out_h * out_w, height * width)``, on the active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.corr2d_matrix([[1, -1]], (1, 3))
    array([[ 1., -1.,  0.],
           [ 0.,  1., -1.]], dtype=float32)
    """
    kernel = to_numpy(as_native(K, "K", get_backend())).astype(np.float32, copy=False)
    check_matrix(kernel.shape, "K")
    height, width = check_kernel_size(X_shape, "X_shape")
    check_fits((height, width), kernel.shape)
    kh, kw = kernel.shape
    out_h, out_w = height - kh + 1, width - kw + 1
    W = np.zeros((out_h, out_w, height, width), dtype=np.float32)
    rows, cols = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    for a in range(kh):  # one diagonal band per kernel element, not one row per output
        for b in range(kw):
            W[rows, cols, rows + a, cols + b] = kernel[a, b]
    return tensor(W.reshape(out_h * out_w, height * width))


@export
def receptive_field(kernel_sizes: Sequence[Any]) -> tuple[int, int]:
    """The receptive field, on the input, of one output element of stacked conv layers.

    With stride 1 each ``k_h x k_w`` layer widens the field by ``k - 1``
    along each axis.

    Parameters
    ----------
    kernel_sizes : sequence of (int, int) or int
        The layers' kernel sizes, first layer first.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.receptive_field([(2, 2)])
    (2, 2)
    >>> cl.receptive_field([(2, 2), (2, 2)])
    (3, 3)
    """
    if isinstance(kernel_sizes, (str, bytes)) or not isinstance(kernel_sizes, Sequence):
        raise TypeError(f"kernel_sizes: expected a sequence of kernel sizes, got {kernel_sizes!r}")
    sizes = [check_kernel_size(size, f"kernel_sizes[{i}]") for i, size in enumerate(kernel_sizes)]
    return 1 + sum(h - 1 for h, _ in sizes), 1 + sum(w - 1 for _, w in sizes)

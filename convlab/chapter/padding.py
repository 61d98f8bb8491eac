"""Exercise 6 of "Padding and Stride" (d2l 7.3): what a stride of 1/2 would be.

A window cannot move by half a pixel over an image that has no values
between its pixels. Put zeros there (:func:`insert_zeros`) and move the
window by one pixel of the new grid, and each step is half a pixel of the
original one: the output is about twice as large. This is the *transposed
convolution* (:func:`conv_transpose2d`): the adjoint of a correlation with
stride 2, the upsampling layer of decoders and generators. Both are written
with convlab's own :func:`~convlab.pad` and :func:`~convlab.corr2d`, so they
run, and differentiate, on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.core.checks import check_choice, check_image, check_matrix, check_padding, check_stride
from convlab.core.convert import as_native
from convlab.core.memory import check_size
from convlab.core.ops import METHODS, corr2d_on
from convlab.core.padding import pad_on
from convlab.core.registry import get_backend


@export(pinned=True)
def insert_zeros(X: Any, stride: Any) -> Tensor:
    """``X`` with ``s_h - 1`` rows and ``s_w - 1`` columns of zeros between neighbouring pixels.

    The result ``Z`` has ``Z[s_h * i, s_w * j] == X[i, j]`` and zeros
    elsewhere: shape ``(s_h (h - 1) + 1, s_w (w - 1) + 1)``.

    Parameters
    ----------
    X : array_like
        2-D, 3-D ``(c, h, w)`` or 4-D NCHW; the last two axes are spread.
    stride : int or (s_h, s_w)
        The spacing of the original pixels in the result.

    Returns
    -------
    Tensor
        On the active backend; differentiable with respect to ``X``.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.insert_zeros([[1, 2], [3, 4]], 2)
    array([[1., 0., 2.],
           [0., 0., 0.],
           [3., 0., 4.]], dtype=float32)
    """
    backend = get_backend()
    stride = check_stride(stride)
    X = as_native(X, "X", backend)
    check_image(tuple(X.shape), "X")
    _check_spread_size("insert_zeros", tuple(X.shape), stride)
    return _spread(backend, X, stride)


def _check_spread_size(function: str, shape: tuple[int, ...], stride: tuple[int, int]) -> None:
    # Spreading pads every pixel to s_h x s_w before it trims the last row and column: that is the largest array.
    *leading, h, w = shape
    check_size(function, "stride", stride, (*leading, h * stride[0], w * stride[1]), "temporary")


def _spread(backend: Backend, X: Tensor, stride: tuple[int, int]) -> Tensor:
    (s_h, s_w), (*leading, h, w) = stride, X.shape
    rows = int(np.prod(leading, dtype=np.int64)) * h
    # Zero insertion is zero padding of each pixel on its own: padding the right of every pixel
    # (a 1x1 image of a batch) by s_w - 1 and flattening puts the zeros between the columns; the
    # same on every row puts them between the rows. No transpose or scatter is needed.
    spread = pad_on(backend, backend.reshape(X, (rows, 1, w, 1)), (0, 0, 0, s_w - 1))
    spread = pad_on(backend, backend.reshape(spread, (rows, 1, 1, w * s_w)), (0, s_h - 1, 0, 0))
    spread = backend.reshape(spread, (*leading, h * s_h, w * s_w))
    index = (slice(None),) * len(leading) + (slice(0, s_h * (h - 1) + 1), slice(0, s_w * (w - 1) + 1))
    return spread[index]


@export(pinned=True)
def conv_transpose2d(X: Any, K: Any, stride: Any = 1, padding: Any = 0, method: str = "auto") -> Tensor:
    """The transposed convolution of a 2-D ``X`` with ``K``: every input pixel stamps a scaled kernel.

    ``Y[s_h i + a, s_w j + b] += X[i, j] * K[a, b]`` for every input pixel
    ``(i, j)`` and kernel element ``(a, b)``, then ``padding`` rows and
    columns are cut from the border (as PyTorch's ``conv_transpose2d``),
    giving shape ``(s_h (h - 1) + k_h - top - bottom, s_w (w - 1) + k_w - left - right)``.

    It is computed as the book's reading of a fractional stride: zeros
    inserted between the pixels (:func:`insert_zeros`), zero padding of
    ``k - 1``, and a correlation (:func:`~convlab.corr2d`) with the kernel
    flipped both ways. It is the adjoint of ``corr2d(., K, padding=padding,
    stride=stride)``: ``<corr2d(Z, K, ...), X> == <Z, conv_transpose2d(X, K, ...)>``.

    Parameters
    ----------
    X : array_like
        The 2-D input.
    K : array_like
        The 2-D kernel.
    stride : int or (s_h, s_w)
        The stride of the correlation this one transposes: the output is
        about ``stride`` times larger than ``X``.
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Rows and columns removed from the border of the full result.
    method : {"auto", "loop", "vectorized", "native"}
        The :func:`~convlab.corr2d` method of the correlation.

    Returns
    -------
    Tensor
        On the active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.conv_transpose2d([[0, 1], [2, 3]], [[0, 1], [2, 3]])  # d2l 14.10's first example
    array([[ 0.,  0.,  1.],
           [ 0.,  4.,  6.],
           [ 4., 12.,  9.]], dtype=float32)
    >>> cl.conv_transpose2d([[1, 2]], [[1, 1], [1, 1]], stride=2)
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.]], dtype=float32)
    """
    check_choice(method, "method", METHODS)
    backend = get_backend()
    stride, cut = check_stride(stride), check_padding(padding)
    X, K = as_native(X, "X", backend), as_native(K, "K", backend)
    check_matrix(tuple(X.shape), "X")
    check_matrix(tuple(K.shape), "K")
    (h, w), (k_h, k_w) = X.shape, K.shape
    full_h, full_w = stride[0] * (h - 1) + k_h, stride[1] * (w - 1) + k_w
    top, bottom, left, right = cut
    if top + bottom >= full_h or left + right >= full_w:
        raise ValueError(
            f"padding: expected to cut fewer than {full_h} rows and {full_w} columns in all "
            f"(the full transposed output of X {(h, w)} with K {(k_h, k_w)} at stride {stride}), "
            f"got (top, bottom, left, right) = {cut}"
        )
    _check_spread_size("conv_transpose2d", (h, w), stride)
    check_size("conv_transpose2d", "stride", stride, (full_h + k_h - 1, full_w + k_w - 1), "padded input")
    spread = _spread(backend, X, stride)
    flipped = backend.flip(K, (0, 1))
    Y = corr2d_on(backend, spread, flipped, method, padding=(k_h - 1, k_w - 1))
    return Y[top : full_h - bottom, left : full_w - right]

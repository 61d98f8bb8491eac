"""Padding around the last two axes of an image, as ``numpy.pad`` adds it (d2l 7.3): zeros, a mirror, the edge."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.core.checks import check_choice, check_image, check_mirror_padding, check_padding
from convlab.core.convert import as_native
from convlab.core.memory import check_size
from convlab.core.registry import get_backend

PAD_MODES = ("zeros", "reflect", "edge")
NO_PADDING = (0, 0, 0, 0)


@export(pinned=True)
def pad(X: Any, padding: Any, mode: str = "zeros") -> Tensor:
    """``X`` with rows and columns added around its last two axes, as ``numpy.pad`` would add them.

    Parameters
    ----------
    X : array_like
        2-D ``(h, w)``, 3-D ``(c, h, w)`` or 4-D NCHW; every channel is padded alike.
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        As in :func:`corr2d`: a pair pads both sides of its axis.
    mode : {"zeros", "reflect", "edge"}
        ``"zeros"`` adds zeros (numpy's ``"constant"``, the padding
        :func:`corr2d` uses); ``"reflect"`` mirrors the input about its
        border row or column, without repeating it (so at most ``h - 1``
        rows and ``w - 1`` columns per side); ``"edge"`` repeats the border
        row or column.

    Returns
    -------
    Tensor
        Shape ``(..., h + top + bottom, w + left + right)``, on the active
        backend; differentiable with respect to ``X``.

    Examples
    --------
    >>> import convlab as cl
    >>> X = [[1, 2, 3], [4, 5, 6]]
    >>> cl.pad(X, (0, 2), mode="reflect")
    array([[3., 2., 1., 2., 3., 2., 1.],
           [6., 5., 4., 5., 6., 5., 4.]], dtype=float32)
    >>> cl.pad(X, (1, 0, 0, 1), mode="edge")
    array([[1., 2., 3., 3.],
           [1., 2., 3., 3.],
           [4., 5., 6., 6.]], dtype=float32)
    >>> cl.pad(X, 1).shape
    (4, 5)
    """
    return pad_on(get_backend(), X, padding, mode)


def pad_on(backend: Backend, X: Any, padding: Any, mode: str = "zeros") -> Tensor:
    """:func:`pad` on a given backend rather than the active one."""
    check_choice(mode, "mode", PAD_MODES)
    padding = check_padding(padding)
    X = as_native(X, "X", backend)
    shape = tuple(X.shape)
    check_image(shape, "X")
    check_mirror_padding(shape[-2:], padding, mode)
    top, bottom, left, right = padding
    check_size("pad", "padding", padding, (*shape[:-2], shape[-2] + top + bottom, shape[-1] + left + right))
    return _padded(backend, X, padding, mode)


def _padded(backend: Backend, X: Tensor, padding: tuple[int, int, int, int], mode: str) -> Tensor:
    # Every image of X becomes one (1, h, w) item of a batch, so one code path serves 2-, 3- and 4-D inputs.
    if padding == NO_PADDING:
        return X
    *leading, h, w = X.shape
    top, bottom, left, right = padding
    x = backend.reshape(X, (int(np.prod(leading, dtype=np.int64)), 1, h, w))
    if mode == "zeros":
        x = _zero_pad(backend, x, padding)
    else:  # one axis after the other, as numpy.pad, so the corners come from the already padded rows
        x = _extend(backend, x, 2, top, bottom, mode)
        x = _extend(backend, x, 3, left, right, mode)
    return backend.reshape(x, (*leading, h + top + bottom, w + left + right))


def _zero_pad(backend: Backend, x: Tensor, padding: tuple[int, int, int, int]) -> Tensor:
    # Zero padding from the conv2d primitive itself: a 1x1 kernel holding 1 copies every value
    # exactly (inf and nan included) and differentiably, so padding needs no primitive of its own.
    one = backend.tensor(np.ones((1, 1, 1, 1), np.float32))
    return backend.conv2d(x, one, (1, 1), padding, 1)


def _along(axis: int, before: int, after: int) -> tuple[int, int, int, int]:
    """Padding of ``before`` and ``after`` on the height (``axis=2``) or width (``axis=3``) axis only."""
    return (before, after, 0, 0) if axis == 2 else (0, 0, before, after)


def _rows(x: Tensor, axis: int, start: int, stop: int) -> Tensor:
    """``x[:, :, start:stop, :]`` (``axis=2``) or ``x[:, :, :, start:stop]`` (``axis=3``)."""
    return x[:, :, start:stop, :] if axis == 2 else x[:, :, :, start:stop]


def _border(backend: Backend, x: Tensor, axis: int, size: int, at_start: bool, mode: str) -> Tensor:
    """The ``size`` rows (or columns) that ``mode`` puts before (``at_start``) or after ``x`` along ``axis``."""
    n = x.shape[axis]
    if mode == "reflect":  # the rows next to the border row, in mirror order
        inner = _rows(x, axis, 1, size + 1) if at_start else _rows(x, axis, n - 1 - size, n - 1)
        return backend.flip(inner, (axis,))
    # "edge": the border row, broadcast `size` times by a product with ones (exact, differentiable).
    edge = _rows(x, axis, 0, 1) if at_start else _rows(x, axis, n - 1, n)
    ones = np.ones((1, 1, size, 1) if axis == 2 else (1, 1, 1, size), np.float32)
    return edge * backend.tensor(ones)


def _extend(backend: Backend, x: Tensor, axis: int, before: int, after: int, mode: str) -> Tensor:
    """``x`` with ``before`` and ``after`` border rows (or columns) of ``mode`` along ``axis``.

    Without a concatenation primitive, each piece (the input and its two
    borders) is zero-padded to the full size at its place, and the pieces are
    added: every output element is one value plus zeros, so the sum is exact.
    """
    if before == after == 0:
        return x
    n = x.shape[axis]
    out = _zero_pad(backend, x, _along(axis, before, after))
    if before:
        strip = _border(backend, x, axis, before, True, mode)
        out = out + _zero_pad(backend, strip, _along(axis, 0, n + after))
    if after:
        strip = _border(backend, x, axis, after, False, mode)
        out = out + _zero_pad(backend, strip, _along(axis, before + n, 0))
    return out

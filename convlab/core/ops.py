"""Tensors, the cross-correlation family, channels and pooling (d2l 7.2 to 7.5), on the active backend.

Shape arithmetic and argument checks live here, once; the backends only
run the primitives (``conv2d``, ``pool2d``, ``matmul``, ``reshape``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.core.checks import (
    check_choice,
    check_fits,
    check_kernel_size,
    check_matrix,
    check_padding,
    check_stride,
)
from convlab.core.convert import as_native, to_numpy
from convlab.core.memory import check_size
from convlab.core.padding import NO_PADDING, _padded
from convlab.core.registry import get_backend

METHODS = ("auto", "loop", "vectorized", "native")
POOL_MODES = ("max", "avg")


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


def _operands(
    X: Any, K: Any, backend: Backend, padding: tuple[int, int, int, int] = NO_PADDING
) -> tuple[Tensor, Tensor]:
    X, K = as_native(X, "X", backend), as_native(K, "K", backend)
    x_shape, k_shape = tuple(X.shape), tuple(K.shape)
    check_matrix(x_shape, "X")
    check_matrix(k_shape, "K")
    top, bottom, left, right = padding
    check_fits((x_shape[0] + top + bottom, x_shape[1] + left + right), k_shape, padded=padding != NO_PADDING)
    return X, K


@export
def conv_output_shape(input_hw: Any, kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The output's ``(height, width)``: the book's ``floor((n - k + p + s) / s)`` along each axis.

    Parameters
    ----------
    input_hw : (int, int)
        The input's height and width.
    kernel_size : (int, int) or int
        The kernel's (or pooling window's) height and width.
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Rows and columns added; ``p`` above is the total along the axis.
    stride : int or (s_h, s_w)

    Examples
    --------
    >>> import convlab as cl
    >>> cl.conv_output_shape((8, 8), 3, padding=1)
    (8, 8)
    >>> cl.conv_output_shape((8, 8), (3, 5), padding=(0, 1), stride=(3, 4))
    (2, 2)
    """
    n_h, n_w = check_kernel_size(input_hw, "input_hw")
    k_h, k_w = check_kernel_size(kernel_size)
    top, bottom, left, right = check_padding(padding)
    s_h, s_w = check_stride(stride)
    check_fits((n_h + top + bottom, n_w + left + right), (k_h, k_w), "kernel_size", padded=True)
    return (n_h - k_h + top + bottom + s_h) // s_h, (n_w - k_w + left + right + s_w) // s_w


@export(pinned=True)
def corr2d(X: Any, K: Any, method: str = "auto", *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Two-dimensional cross-correlation of ``X`` with ``K``.

    ``Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b]``, so without padding
    and stride ``Y`` has shape ``(n_h - k_h + 1, n_w - k_w + 1)``; in general
    :func:`conv_output_shape`. Padding adds zeros around ``X``; a stride
    moves the window by more than one pixel.

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
        the framework's own convolution (on a large image, where the backend
        finds it faster, with bands of rows as the channels of one depthwise
        convolution, which costs a copy of the input); ``"auto"`` picks the
        faster correct one of ``"vectorized"`` and ``"native"`` for these
        shapes (the native convolution whenever there is a stride: the
        others compute every position, then keep every ``s``-th).
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Rows and columns of zeros added around ``X``; a pair pads both sides.
    stride : int or (s_h, s_w)

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
    >>> cl.corr2d(X, K, padding=1, stride=2)
    array([[ 0.,  8.],
           [21., 43.]], dtype=float32)
    """
    return corr2d_on(get_backend(), X, K, method, padding=padding, stride=stride)


def corr2d_on(backend: Backend, X: Any, K: Any, method: str = "auto", *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """:func:`corr2d` on a given backend rather than the active one."""
    check_choice(method, "method", METHODS)
    padding, stride = check_padding(padding), check_stride(stride)
    X, K = _operands(X, K, backend, padding)
    _check_padded_size("corr2d", tuple(X.shape), padding)
    if method == "native" or (method == "auto" and stride != (1, 1)):
        return _native_corr2d(backend, X, K, padding, stride)
    X = _padded(backend, X, padding, "zeros")
    if method == "auto":
        method = backend.auto_method(tuple(X.shape), tuple(K.shape))
    if method == "native":
        return _native_corr2d(backend, X, K, NO_PADDING, stride)
    Y = backend.corr2d_loop(X, K) if method == "loop" else backend.corr2d_vectorized(X, K)
    return Y if stride == (1, 1) else Y[:: stride[0], :: stride[1]]


def _check_padded_size(function: str, shape: tuple[int, ...], padding: tuple[int, int, int, int]) -> None:
    top, bottom, left, right = padding
    check_size(
        function, "padding", padding, (*shape[:-2], shape[-2] + top + bottom, shape[-1] + left + right), "padded input"
    )


def _native_corr2d(
    backend: Backend, X: Tensor, K: Tensor, padding: tuple[int, int, int, int], stride: tuple[int, int]
) -> Tensor:
    # The framework's own convolution: the batched primitive on one image and one channel.
    (h, w), (kh, kw) = X.shape, K.shape
    out = conv_output_shape((h, w), (kh, kw), padding, stride)
    bands = min(backend.corr2d_bands((h, w), (kh, kw)), out[0])
    if bands > 1:
        return _banded_corr2d(backend, _padded(backend, X, padding, "zeros"), K, stride, bands, out)
    x, k = backend.reshape(X, (1, 1, h, w)), backend.reshape(K, (1, 1, kh, kw))
    return backend.reshape(backend.conv2d(x, k, stride, padding, 1), out)


def _banded_corr2d(
    backend: Backend, X: Tensor, K: Tensor, stride: tuple[int, int], bands: int, out: tuple[int, int]
) -> Tensor:
    # Bands of output rows as the channels of one depthwise convolution, each channel the band's input rows
    # (overlapping by the kernel's height less a stride) and the same kernel. The frameworks' CPU kernels
    # vectorise a depthwise convolution across channels, while one channel takes a slow generic path (8x to
    # 30x slower on 1024x1024). Costs one copy of the input, plus zero rows where the last band runs past it.
    (h, w), (kh, kw), (s_h, _) = X.shape, K.shape, stride
    rows = -(-out[0] // bands)  # output rows per band
    bands = -(-out[0] // rows)  # so that every band starts inside X
    span = (rows - 1) * s_h + kh  # input rows per band
    pieces = []
    for band in range(bands):
        start = band * rows * s_h
        pieces.append(X[start : min(start + span, h)])
        if start + span > h:
            pieces.append(backend.tensor(np.zeros((start + span - max(start, h), w), backend.dtype)))
    x = backend.reshape(backend.concat(pieces, 0), (1, bands, span, w))
    k = backend.concat([backend.reshape(K, (1, 1, kh, kw))] * bands, 0)
    y = backend.conv2d(x, k, stride, NO_PADDING, bands)
    return backend.reshape(y, (bands * rows, out[1]))[: out[0]]


@export(pinned=True)
def conv2d(X: Any, K: Any, method: str = "auto", *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Strict two-dimensional convolution: cross-correlation with ``K`` flipped both ways.

    Parameters, padding, stride and methods are those of :func:`corr2d`.

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
    X, K = _operands(X, K, backend, check_padding(padding))
    return corr2d_on(backend, X, backend.flip(K, (0, 1)), method, padding=padding, stride=stride)


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
    check_size("corr2d_matrix", "X_shape", (height, width), (out_h * out_w, height * width))
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


# -- channels (d2l 7.4) ---------------------------------------------------------------------------


def _channels(X: Any, K: Any, backend: Backend, k_ndim: int) -> tuple[Tensor, Tensor]:
    X, K = as_native(X, "X", backend), as_native(K, "K", backend)
    if len(X.shape) != 3:
        raise ValueError(f"X: expected a 3-D array (channels, height, width), got shape {tuple(X.shape)}")
    layout = "(channels, height, width)" if k_ndim == 3 else "(out_channels, in_channels, height, width)"
    if len(K.shape) != k_ndim:
        raise ValueError(f"K: expected a {k_ndim}-D array {layout}, got shape {tuple(K.shape)}")
    if K.shape[-3] != X.shape[0]:
        raise ValueError(
            f"K: expected {X.shape[0]} input channels, as X has, got {K.shape[-3]} (shape {tuple(K.shape)})"
        )
    check_fits(tuple(X.shape[1:]), tuple(K.shape[-2:]))
    return X, K


@export(pinned=True)
def corr2d_multi_in(X: Any, K: Any) -> Tensor:
    """Cross-correlation with several input channels: one kernel per channel, the results summed.

    Parameters
    ----------
    X : array_like
        Shape ``(c_i, h, w)``.
    K : array_like
        Shape ``(c_i, k_h, k_w)``.

    Returns
    -------
    Tensor
        Shape ``(h - k_h + 1, w - k_w + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    >>> K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    >>> cl.corr2d_multi_in(X, K)
    array([[ 56.,  72.],
           [104., 120.]], dtype=float32)
    """
    backend = get_backend()
    X, K = _channels(X, K, backend, 3)
    c, h, w = X.shape
    y = backend.conv2d(backend.reshape(X, (1, c, h, w)), backend.reshape(K, (1, *K.shape)), (1, 1), NO_PADDING, 1)
    return backend.reshape(y, tuple(y.shape[2:]))


@export(pinned=True)
def corr2d_multi_in_out(X: Any, K: Any) -> Tensor:
    """Several input and output channels: :func:`corr2d_multi_in` once per output channel's kernel.

    ``X`` has shape ``(c_i, h, w)`` and ``K`` ``(c_o, c_i, k_h, k_w)``; the
    result has shape ``(c_o, h - k_h + 1, w - k_w + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    >>> K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    >>> cl.corr2d_multi_in_out(X, np.stack([K, K + 1, K + 2]))[1]
    array([[ 76., 100.],
           [148., 172.]], dtype=float32)
    """
    backend = get_backend()
    X, K = _channels(X, K, backend, 4)
    c, h, w = X.shape
    y = backend.conv2d(backend.reshape(X, (1, c, h, w)), K, (1, 1), NO_PADDING, 1)
    return backend.reshape(y, tuple(y.shape[1:]))


@export(pinned=True)
def corr2d_multi_in_out_1x1(X: Any, K: Any) -> Tensor:
    """The 1x1 case of :func:`corr2d_multi_in_out` as one matrix product, as the book writes it.

    Each pixel's channels are mixed by the same ``(c_o, c_i)`` matrix: ``X``
    becomes ``(c_i, h * w)``, ``K`` ``(c_o, c_i)``, and ``Y = K @ X``.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> X = np.random.default_rng(0).normal(size=(3, 3, 3))
    >>> K = np.random.default_rng(1).normal(size=(2, 3, 1, 1))
    >>> bool(np.abs(cl.corr2d_multi_in_out_1x1(X, K) - cl.corr2d_multi_in_out(X, K)).max() < 1e-6)
    True
    """
    backend = get_backend()
    X, K = _channels(X, K, backend, 4)
    if tuple(K.shape[2:]) != (1, 1):
        raise ValueError(f"K: expected 1x1 kernels, shape (c_o, c_i, 1, 1), got shape {tuple(K.shape)}")
    (c_i, h, w), c_o = X.shape, K.shape[0]
    Y = backend.matmul(backend.reshape(K, (c_o, c_i)), backend.reshape(X, (c_i, h * w)))
    return backend.reshape(Y, (c_o, h, w))


# -- pooling (d2l 7.5) ----------------------------------------------------------------------------


@export(pinned=True)
def pool2d(X: Any, pool_size: Any, mode: str = "max", *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Maximum or average of every ``pool_size`` window, as the book's from-scratch ``pool2d``.

    Parameters
    ----------
    X : array_like
        2-D, or ``(c, h, w)``: each channel is pooled on its own.
    pool_size : (int, int) or int
        The window's height and width.
    mode : {"max", "avg"}
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Max pooling pads with ``-inf``, so padding never wins; average pooling
        pads with zeros and counts them in the window's size (PyTorch's default).
    stride : int or (s_h, s_w)
        1 by default, as the book's from-scratch function (the frameworks'
        layers default to the window's size).

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> X = np.arange(9.0).reshape(3, 3)
    >>> cl.pool2d(X, (2, 2))
    array([[4., 5.],
           [7., 8.]], dtype=float32)
    >>> cl.pool2d(X, (2, 2), "avg")
    array([[2., 3.],
           [5., 6.]], dtype=float32)
    """
    check_choice(mode, "mode", POOL_MODES)
    window = check_kernel_size(pool_size, "pool_size")
    padding, stride = check_padding(padding), check_stride(stride)
    backend = get_backend()
    X = as_native(X, "X", backend)
    if len(X.shape) not in (2, 3) or 0 in X.shape:
        raise ValueError(
            f"X: expected a non-empty 2-D or 3-D (channels, height, width) array, got shape {tuple(X.shape)}"
        )
    hw = tuple(X.shape[-2:])
    _check_padded_size("pool2d", tuple(X.shape), padding)
    top, bottom, left, right = padding
    check_fits((hw[0] + top + bottom, hw[1] + left + right), window, "pool_size", padded=True)
    out = conv_output_shape(hw, window, padding, stride)
    channels = 1 if len(X.shape) == 2 else X.shape[0]
    Y = backend.pool2d(backend.reshape(X, (1, channels, *hw)), window, stride, padding, mode)
    return backend.reshape(Y, out if len(X.shape) == 2 else (channels, *out))


# -- what a block's own forward pass needs (d2l 8) --------------------------------------------------


@export(pinned=True)
def relu(X: Any) -> Tensor:
    """``max(X, 0)``, elementwise, on the active backend: for a block's own ``forward``.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.relu([[-1.0, 2.0]])
    array([[0., 2.]], dtype=float32)
    """
    backend = get_backend()
    return backend.relu(as_native(X, "X", backend))


@export(pinned=True)
def concat(tensors: Sequence[Any], axis: int) -> Tensor:
    """The tensors joined along ``axis``, on the active backend: GoogLeNet's and DenseNet's channel concatenation.

    Parameters
    ----------
    tensors : sequence of array_like
        At least one; all with the same number of dimensions, equal in every
        dimension but ``axis``.
    axis : int
        The axis to join along (``1``: the channels of NCHW tensors);
        negative counts from the end.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> cl.concat([np.zeros((1, 2, 3, 3)), np.ones((1, 5, 3, 3))], axis=1).shape
    (1, 7, 3, 3)
    """
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"tensors: expected a non-empty list or tuple of tensors, got {tensors!r:.80}")
    backend = get_backend()
    natives = [as_native(t, f"tensors[{i}]", backend) for i, t in enumerate(tensors)]
    shapes = [tuple(int(n) for n in t.shape) for t in natives]
    ndim = len(shapes[0])
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"axis: expected an int in [{-ndim}, {ndim}) for {ndim}-D tensors, got {axis!r}")
    axis = int(axis) % ndim
    for index, shape in enumerate(shapes[1:], 1):
        others, first = shape[:axis] + shape[axis + 1 :], shapes[0][:axis] + shapes[0][axis + 1 :]
        if len(shape) != ndim or others != first:
            raise ValueError(
                f"tensors: every dimension but axis {axis} must agree, but tensors[0] has shape {shapes[0]} "
                f"and tensors[{index}] has shape {shape}"
            )
    return backend.concat(natives, axis)

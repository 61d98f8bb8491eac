"""The exercises of d2l 7.5 (pooling), answered in code.

What pooling costs (:func:`pool_cost`), average pooling as a convolution
(:func:`avg_pool2d_by_conv`), max pooling from convolutions and ReLUs
(:func:`max_pool2d_by_relu`) and a pooling between the two
(:func:`softmax_pool2d`), written once on the backend primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.chapter.channels import FLOAT32_BYTES
from convlab.core.checks import (
    check_choice,
    check_chw,
    check_count,
    check_fits,
    check_kernel_size,
    check_padding,
    check_positive,
    check_stride,
)
from convlab.core.convert import as_native
from convlab.core.ops import POOL_MODES, conv_output_shape
from convlab.core.registry import get_backend


def _pool_output_shape(
    hw: tuple[int, ...], window: tuple[int, int], padding: tuple[int, int, int, int], stride: tuple[int, int]
) -> tuple[int, int]:
    """The output's ``(h, w)``, once the window is known to fit the padded input (named ``pool_size``)."""
    top, bottom, left, right = padding
    check_fits((hw[0] + top + bottom, hw[1] + left + right), window, "pool_size", padded=padding != (0, 0, 0, 0))
    return conv_output_shape(hw, window, padding, stride)


def _check_windows_hold_input(
    hw: tuple[int, ...], window: tuple[int, int], padding: tuple[int, int, int, int], stride: tuple[int, int]
) -> None:
    """Every window must overlap ``X``: one that lies wholly in the padding has no element to weigh."""
    out = conv_output_shape(hw, window, padding, stride)
    for n, k, before, s, o, what in zip(hw, window, padding[::2], stride, out, ("rows", "columns"), strict=True):
        if k <= before or (o - 1) * s >= before + n:
            raise ValueError(
                f"padding: expected every window to hold an element of X, but with pool_size {window}, "
                f"padding {padding} and stride {stride} some {what} of windows lie wholly in the padding"
            )


# -- 7.5, exercise 4: what pooling costs ---------------------------------------------------------


@export
@dataclass(frozen=True, repr=False)
class PoolCost:
    """Operations and memory of one pooling layer's forward pass.

    Max pooling compares each window's elements (``p_h * p_w - 1``
    comparisons per output); average pooling adds them and divides once. The
    padded elements are included, as in :func:`convlab.pool2d`. There are no
    parameters.
    """

    input_shape: tuple[int, int, int, int]
    """``(batch, c, h, w)``."""
    pool_size: tuple[int, int]
    padding: tuple[int, int, int, int]
    stride: tuple[int, int]
    mode: str
    output_shape: tuple[int, int, int, int]
    comparisons: int
    additions: int
    divisions: int

    @property
    def operations(self) -> int:
        """Comparisons, additions and divisions together."""
        return self.comparisons + self.additions + self.divisions

    @property
    def input_elements(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_elements(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def memory(self) -> int:
        """Elements held by the forward pass: the input and the output."""
        return self.input_elements + self.output_elements

    @property
    def memory_bytes(self) -> int:
        return FLOAT32_BYTES * self.memory

    def __repr__(self) -> str:
        return (
            f"PoolCost({self.mode}, input {self.input_shape}, window {self.pool_size}, padding {self.padding}, "
            f"stride {self.stride} -> output {self.output_shape}; {self.comparisons:,} comparisons, "
            f"{self.additions:,} additions, {self.divisions:,} divisions; memory {self.memory:,} elements)"
        )


@export
def pool_cost(
    input_shape: Any, pool_size: Any, mode: str = "max", *, padding: Any = 0, stride: Any = 1, batch: int = 1
) -> PoolCost:
    """Operations and memory of max or average pooling (7.5, exercise 4).

    Each of the ``batch * c * h' * w'`` outputs reduces one ``p_h x p_w``
    window: ``p_h * p_w - 1`` comparisons for max pooling, as many additions
    and one division for average pooling. A convolution of the same window
    with ``c_o`` kernels multiplies ``c_o`` times as many values as pooling
    reduces (``c_i`` times as many per output element), and pooling has no
    weights.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(c, h, w)`` of one example.
    pool_size : int or (int, int)
    mode : {"max", "avg"}
    padding : int, (p_h, p_w) or (top, bottom, left, right)
    stride : int or (s_h, s_w)
        1 by default, as :func:`convlab.pool2d`.
    batch : int

    Returns
    -------
    PoolCost

    Examples
    --------
    >>> import convlab as cl
    >>> cost = cl.pool_cost((16, 32, 32), 2, stride=2)
    >>> cost.output_shape, cost.comparisons == 16 * 16 * 16 * 3
    ((1, 16, 16, 16), True)
    """
    c, h, w = check_chw(input_shape)
    check_choice(mode, "mode", POOL_MODES)
    batch = check_count(batch, "batch")
    p_h, p_w = check_kernel_size(pool_size, "pool_size")
    padding, stride = check_padding(padding), check_stride(stride)
    out_h, out_w = _pool_output_shape((h, w), (p_h, p_w), padding, stride)
    outputs = batch * c * out_h * out_w
    reductions = outputs * (p_h * p_w - 1)
    return PoolCost(
        input_shape=(batch, c, h, w),
        pool_size=(p_h, p_w),
        padding=padding,
        stride=stride,
        mode=mode,
        output_shape=(batch, c, out_h, out_w),
        comparisons=reductions if mode == "max" else 0,
        additions=reductions if mode == "avg" else 0,
        divisions=outputs if mode == "avg" else 0,
    )


# -- 7.5: pooling built from other operations ----------------------------------------------------


def _pool_operand(X: Any, backend: Backend) -> tuple[Tensor, tuple[int, ...]]:
    """``X`` (2-D, or ``(c, h, w)``) as an NCHW tensor of one example, and its own shape."""
    X = as_native(X, "X", backend)
    shape = tuple(X.shape)
    if len(shape) not in (2, 3) or 0 in shape:
        raise ValueError(f"X: expected a non-empty 2-D or 3-D (channels, height, width) array, got shape {shape}")
    return backend.reshape(X, (1, 1 if len(shape) == 2 else shape[0], *shape[-2:])), shape


def _unbatch(backend: Backend, Y: Tensor, shape: tuple[int, ...]) -> Tensor:
    out = tuple(Y.shape[-2:])
    return backend.reshape(Y, out if len(shape) == 2 else (shape[0], *out))


@export(pinned=True)
def avg_pool2d_by_conv(X: Any, pool_size: Any, *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Average pooling as a convolution (7.5, exercise 1): a kernel of ``1 / (p_h p_w)`` per channel.

    Each channel is convolved with its own ``p_h x p_w`` kernel whose weights
    are all ``1 / (p_h p_w)`` (a depthwise convolution: ``groups`` equal to the
    channels, so channels are not mixed). A convolution pads with zeros and
    the kernel divides by the whole window, so this is :func:`convlab.pool2d`
    with ``mode="avg"``, padding included.

    Parameters are those of :func:`convlab.pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> cl.avg_pool2d_by_conv(np.arange(9.0).reshape(3, 3), 2)
    array([[2., 3.],
           [5., 6.]], dtype=float32)
    """
    window = check_kernel_size(pool_size, "pool_size")
    padding, stride = check_padding(padding), check_stride(stride)
    backend = get_backend()
    x, shape = _pool_operand(X, backend)
    _pool_output_shape(shape[-2:], window, padding, stride)
    channels = x.shape[1]
    weight = backend.tensor(np.full((channels, 1, *window), 1.0 / (window[0] * window[1]), np.float32))
    return _unbatch(backend, backend.conv2d(x, weight, stride, padding, channels), shape)


PAIR_SUM = np.array([1.0, 1.0, -1.0], np.float32)
"""How a ReLU layer's channels ``relu(a - b), relu(b), relu(-b)`` add up to ``max(a, b)``."""


def _pair_taps(offset: int, axis: int) -> np.ndarray:
    """The kernels ``(3, 1, k_h, k_w)`` that make ``a - b``, ``b`` and ``-b`` from ``a = x[i]``, ``b = x[i + offset]``.

    ``axis`` 3 pairs elements along each row (kernels of height 1), 2 down each column.
    """
    taps = np.zeros((3, offset + 1), np.float32)
    taps[0, 0], taps[0, -1], taps[1, -1], taps[2, -1] = 1.0, -1.0, 1.0, -1.0
    return taps[:, None, None, :] if axis == 3 else taps[:, None, :, None]


def _relu_max_pool_offsets(size: int) -> list[int]:
    """The offsets of the pairwise maxima that widen a window from 1 to ``size``, one ReLU layer each.

    Combining two overlapping windows of width ``w``, ``offset`` apart, gives a
    window of ``w + offset``; doubling while possible takes ``ceil(log2(size))`` steps.

    >>> _relu_max_pool_offsets(3), _relu_max_pool_offsets(4), _relu_max_pool_offsets(5)
    ([1, 1], [1, 2], [1, 2, 1])
    """
    offsets, width = [], 1
    while width < size:
        offsets.append(min(width, size - width))
        width += offsets[-1]
    return offsets


@export(pinned=True)
def max_pool2d_by_relu(X: Any, pool_size: Any, *, stride: Any = 1) -> Tensor:
    """Max pooling from convolutions and ReLUs only (7.5, exercise 3).

    A convolution alone cannot compute a maximum (it is linear), but ReLUs
    can: ``max(a, b) = relu(a - b) + relu(b) - relu(-b)``. So a convolution
    that makes the three channels ``a - b``, ``b`` and ``-b`` from pairs of
    elements some offset apart, a ReLU, and a 1x1 convolution that adds the
    three as ``+, +, -`` take the maximum of each pair. Two overlapping
    windows of width ``w``, ``d <= w`` apart, cover a window of ``w + d``;
    widening the window along each row, then down each column, a
    ``p_h x p_w`` window takes ``ceil(log2 p_h) + ceil(log2 p_w)`` ReLU layers
    of three channels per input channel (2 for a 2x2 window, 4 for 3x3).
    Between two ReLU layers the 1x1 sum and the next layer's convolution are
    composed into one convolution (7.4, exercise 1), so the network is
    conv, ReLU, ..., conv, ReLU, and a last 1x1 conv that also takes the
    stride. There is no padding: a convolution pads zeros, and max pooling's
    padding must never win.

    Parameters
    ----------
    X : array_like
        2-D, or ``(c, h, w)``.
    pool_size : int or (int, int)
    stride : int or (s_h, s_w)

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> cl.max_pool2d_by_relu(np.arange(9.0).reshape(3, 3), 2)
    array([[4., 5.],
           [7., 8.]], dtype=float32)
    """
    window = check_kernel_size(pool_size, "pool_size")
    stride = check_stride(stride)
    backend = get_backend()
    x, shape = _pool_operand(X, backend)
    _pool_output_shape(shape[-2:], window, (0, 0, 0, 0), stride)
    channels, no_padding = x.shape[1], (0, 0, 0, 0)
    levels = [(offset, 3) for offset in _relu_max_pool_offsets(window[1])]
    levels += [(offset, 2) for offset in _relu_max_pool_offsets(window[0])]
    hidden, out_kernel = x, np.ones((1, 1, 1, 1), np.float32)  # a 1x1 window: just the stride
    for level, (offset, axis) in enumerate(levels):
        taps = _pair_taps(offset, axis)
        # After the first ReLU layer, fold the previous layer's 1x1 sum into this convolution.
        kernel = taps if level == 0 else taps * PAIR_SUM[None, :, None, None]
        weight = backend.tensor(np.tile(kernel, (channels, 1, 1, 1)))  # one group per input channel
        hidden = backend.relu(backend.conv2d(hidden, weight, (1, 1), no_padding, channels))
        out_kernel = PAIR_SUM.reshape(1, 3, 1, 1)
    weight = backend.tensor(np.tile(out_kernel, (channels, 1, 1, 1)))
    return _unbatch(backend, backend.conv2d(hidden, weight, stride, no_padding, channels), shape)


def _exp_nonpositive(backend: Backend, z: Tensor) -> Tensor:
    # The protocol has no exp. For z <= 0, sigmoid(z) / sigmoid(-z) is exactly e^z, stable (the
    # denominator lies in [1/2, 1]) and differentiable on every backend.
    return backend.sigmoid(z) / backend.sigmoid(-z)


@export(pinned=True)
def softmax_pool2d(X: Any, pool_size: Any, temperature: float = 1.0, *, padding: Any = 0, stride: Any = 1) -> Tensor:
    """Softmax pooling (7.5, the last exercise): each window's softmax-weighted average.

    ``sum_a x_a exp(x_a / T) / sum_a exp(x_a / T)`` over the window's elements.
    As the temperature ``T`` tends to 0 the largest element takes all the
    weight (max pooling); as it tends to infinity the weights become equal
    (average pooling). It is computed stably: each window's maximum is taken
    out of the exponent first.

    Parameters
    ----------
    X : array_like
        2-D, or ``(c, h, w)``.
    pool_size : int or (int, int)
    temperature : float
        Positive; ``math.inf`` gives the plain average.
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Padded positions get no weight (as max pooling's ``-inf``), so for a
        large ``T`` this averages the window's real elements only. Every
        window must hold at least one element of ``X``.
    stride : int or (s_h, s_w)

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> X = np.arange(9.0).reshape(3, 3)
    >>> cl.softmax_pool2d(X, 2, temperature=1e-3)
    array([[4., 5.],
           [7., 8.]], dtype=float32)
    >>> cl.softmax_pool2d(X, 2, temperature=float("inf"))
    array([[2., 3.],
           [5., 6.]], dtype=float32)
    """
    check_positive(temperature, "temperature")
    window = check_kernel_size(pool_size, "pool_size")
    padding, stride = check_padding(padding), check_stride(stride)
    backend = get_backend()
    x, shape = _pool_operand(X, backend)
    out_h, out_w = _pool_output_shape(shape[-2:], window, padding, stride)
    _check_windows_hold_input(shape[-2:], window, padding, stride)
    channels = x.shape[1]
    peak = backend.pool2d(x, window, stride, padding, "max")  # each window's maximum; padding never wins
    real = None
    if padding != (0, 0, 0, 0):
        # Zero padding from the conv primitive (a 1x1 kernel of ones), and a mask that gives it no weight.
        ones = backend.tensor(np.ones((channels, 1, 1, 1), np.float32))
        x = backend.conv2d(x, ones, (1, 1), padding, channels)
        top, bottom, left, right = padding
        mask = np.zeros((1, 1, *x.shape[-2:]), np.float32)
        mask[:, :, top : mask.shape[2] - bottom, left : mask.shape[3] - right] = 1.0
        real = backend.tensor(mask)
    total = weights = None
    for a in range(window[0]):
        for b in range(window[1]):
            index = (slice(None), slice(None))
            index += (slice(a, a + stride[0] * (out_h - 1) + 1, stride[0]),)
            index += (slice(b, b + stride[1] * (out_w - 1) + 1, stride[1]),)
            values = x[index]
            exponent = (values - peak) / temperature  # <= 0 for every element of X
            if real is not None:
                # A padded zero above a negative peak would overflow the exponent: clip it to 0
                # (-relu(-z) = min(z, 0)) before the mask takes its weight away.
                exponent = -backend.relu(-exponent)
            weight = _exp_nonpositive(backend, exponent)
            if real is not None:
                weight = weight * real[index]
            total = weight * values if total is None else total + weight * values
            weights = weight if weights is None else weights + weight
    return _unbatch(backend, total / weights, shape)

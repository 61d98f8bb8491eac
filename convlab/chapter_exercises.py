"""The exercises of d2l 7.4 (channels) and 7.5 (pooling), answered in code.

What each convolution or pooling costs (:func:`conv_cost`, :func:`pool_cost`),
two convolutions as one (:func:`compose_kernels`), average pooling as a
convolution (:func:`avg_pool2d_by_conv`), max pooling from convolutions and
ReLUs (:func:`max_pool2d_by_relu`) and a pooling between the two,
:func:`softmax_pool2d`. Like the rest of the core they are written once, on
the backend primitives; the adapters know nothing of them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab._checks import (
    check_choice,
    check_fits,
    check_kernel_size,
    check_padding,
    check_positive,
    check_stride,
)
from convlab._convert import as_native, to_numpy
from convlab._registry import get_backend
from convlab.backends.base import Backend, Tensor
from convlab.ops import POOL_MODES, conv_output_shape, tensor

FLOAT32_BYTES = 4
"""convlab computes in float32."""


def _count(value: Any, name: str) -> int:
    return int(check_positive(value, name, integer=True))


def _chw(input_shape: Any) -> tuple[int, int, int]:
    try:
        items = tuple(input_shape)
    except TypeError:
        items = ()
    if len(items) != 3 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in items):
        raise ValueError(f"input_shape: expected (channels, height, width), three positive ints, got {input_shape!r}")
    return int(items[0]), int(items[1]), int(items[2])


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


def _covered(out: int, kernel: int, stride: int) -> int:
    """How many rows (or columns) of the padded input at least one window touches."""
    return (out - 1) * min(stride, kernel) + kernel


# -- 7.4, exercises 2 to 4: what a convolution costs ---------------------------------------------


@export
@dataclass(frozen=True, repr=False)
class ConvCost:
    """Operations and memory of one multi-channel convolution, forward and backward.

    Counted as a dense implementation computes it: every product of a kernel
    weight with an input element, the padded zeros included (as im2col with a
    matrix product, and the frameworks' kernels, do). A sum of ``n`` products
    takes ``n - 1`` additions. Memory counts tensor elements (float32: 4 bytes each).
    """

    input_shape: tuple[int, int, int, int]
    """``(batch, c_i, h, w)``."""
    kernel_shape: tuple[int, int, int, int]
    """``(c_o, c_i / groups, k_h, k_w)``."""
    padding: tuple[int, int, int, int]
    stride: tuple[int, int]
    groups: int
    output_shape: tuple[int, int, int, int]
    """``(batch, c_o, h', w')``."""
    forward_multiplications: int
    forward_additions: int
    input_grad_multiplications: int
    """Products for the gradient with respect to the (padded) input."""
    input_grad_additions: int
    weight_grad_multiplications: int
    weight_grad_additions: int

    @property
    def forward_flops(self) -> int:
        """Multiplications plus additions of the forward pass."""
        return self.forward_multiplications + self.forward_additions

    @property
    def backward_flops(self) -> int:
        """Multiplications plus additions of both gradients: about twice the forward pass."""
        return (
            self.input_grad_multiplications
            + self.input_grad_additions
            + self.weight_grad_multiplications
            + self.weight_grad_additions
        )

    @property
    def input_elements(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def weight_elements(self) -> int:
        return int(np.prod(self.kernel_shape))

    @property
    def output_elements(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def forward_memory(self) -> int:
        """Elements held by the forward pass: the input, the weights and the output."""
        return self.input_elements + self.weight_elements + self.output_elements

    @property
    def backward_memory(self) -> int:
        """Elements held by the backward pass.

        The input and the weights, kept from the forward pass (each gradient
        needs the other operand), the output's gradient, and the two gradients
        it produces, shaped as the input and the weights. The output itself is
        not needed: the convolution is linear.
        """
        return 2 * (self.input_elements + self.weight_elements) + self.output_elements

    @property
    def forward_memory_bytes(self) -> int:
        return FLOAT32_BYTES * self.forward_memory

    @property
    def backward_memory_bytes(self) -> int:
        return FLOAT32_BYTES * self.backward_memory

    def __repr__(self) -> str:
        return (
            f"ConvCost(input {self.input_shape}, kernel {self.kernel_shape}, padding {self.padding}, "
            f"stride {self.stride}, groups {self.groups} -> output {self.output_shape}; "
            f"forward {self.forward_flops:,} FLOPs, backward {self.backward_flops:,} FLOPs; "
            f"memory: forward {self.forward_memory:,} elements, backward {self.backward_memory:,})"
        )

    def __str__(self) -> str:
        rows = [
            ("forward", self.forward_multiplications, self.forward_additions),
            ("input gradient", self.input_grad_multiplications, self.input_grad_additions),
            ("weight gradient", self.weight_grad_multiplications, self.weight_grad_additions),
        ]
        lines = [f"convolution {self.input_shape} * {self.kernel_shape} -> {self.output_shape}"]
        for label, mul, add in rows:
            lines.append(f"  {label:<16}{mul:>16,} mul {add:>16,} add {mul + add:>16,} FLOPs")
        lines.append(
            f"  memory: forward {self.forward_memory:,} elements ({self.forward_memory_bytes:,} bytes), "
            f"backward {self.backward_memory:,} elements ({self.backward_memory_bytes:,} bytes)"
        )
        return "\n".join(lines)


@export
def conv_cost(
    input_shape: Any,
    out_channels: int,
    kernel_size: Any,
    *,
    padding: Any = 0,
    stride: Any = 1,
    groups: int = 1,
    batch: int = 1,
) -> ConvCost:
    """Multiplications, additions and memory of a convolution and of its gradients (7.4, exercises 2 to 4).

    Every output element is a dot product of its window (``c_i / groups``
    channels of ``k_h x k_w``) with one kernel, so the forward pass takes
    ``batch * c_o * h' * w' * (c_i / groups) * k_h * k_w`` multiplications and
    one addition fewer per output element. Each gradient takes as many
    products again: the weight gradient correlates the input with the output's
    gradient, and the input gradient spreads each output's gradient back over
    its window; it adds what lands on the same input element.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(c_i, h, w)`` of one example.
    out_channels : int
        ``c_o``, the number of kernels.
    kernel_size : int or (int, int)
    padding : int, (p_h, p_w) or (top, bottom, left, right)
    stride : int or (s_h, s_w)
    groups : int
        Input and output channels split into this many groups, each convolved
        on its own (1: every output channel sees every input channel).
    batch : int
        Examples per call.

    Returns
    -------
    ConvCost

    Examples
    --------
    >>> import convlab as cl
    >>> cost = cl.conv_cost((3, 32, 32), 16, 3, padding=1)
    >>> cost.output_shape
    (1, 16, 32, 32)
    >>> cost.forward_multiplications == 16 * 32 * 32 * 3 * 3 * 3
    True
    >>> cl.conv_cost((6, 32, 32), 32, 3, padding=1).forward_multiplications // cost.forward_multiplications
    4
    """
    c_i, h, w = _chw(input_shape)
    c_o, groups, batch = _count(out_channels, "out_channels"), _count(groups, "groups"), _count(batch, "batch")
    if c_i % groups or c_o % groups:
        raise ValueError(
            f"groups: expected a divisor of both the input channels ({c_i}) and out_channels ({c_o}), got {groups}"
        )
    k_h, k_w = check_kernel_size(kernel_size)
    padding, stride = check_padding(padding), check_stride(stride)
    out_h, out_w = conv_output_shape((h, w), (k_h, k_w), padding, stride)
    window = (c_i // groups) * k_h * k_w
    outputs = batch * c_o * out_h * out_w
    products = outputs * window
    weights = c_o * window
    # Every padded-input element under some window receives one product per (output channel of its
    # group, window position covering it); the first one starts its sum, the others are additions.
    covered = batch * c_i * _covered(out_h, k_h, stride[0]) * _covered(out_w, k_w, stride[1])
    return ConvCost(
        input_shape=(batch, c_i, h, w),
        kernel_shape=(c_o, c_i // groups, k_h, k_w),
        padding=padding,
        stride=stride,
        groups=groups,
        output_shape=(batch, c_o, out_h, out_w),
        forward_multiplications=products,
        forward_additions=outputs * (window - 1),
        input_grad_multiplications=products,
        input_grad_additions=products - covered,
        weight_grad_multiplications=products,
        weight_grad_additions=weights * (batch * out_h * out_w - 1),
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
    c, h, w = _chw(input_shape)
    check_choice(mode, "mode", POOL_MODES)
    batch = _count(batch, "batch")
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


# -- 7.4, exercise 1: two convolutions as one ----------------------------------------------------


def _kernel(K: Any, name: str, backend: Backend) -> np.ndarray:
    kernel = to_numpy(as_native(K, name, backend)).astype(np.float64)
    if kernel.ndim not in (2, 4) or 0 in kernel.shape:
        raise ValueError(
            f"{name}: expected a non-empty 2-D kernel (height, width) or 4-D "
            f"(out_channels, in_channels, height, width), got shape {kernel.shape}"
        )
    return kernel


@export(pinned=True)
def compose_kernels(first: Any, second: Any, *, first_stride: Any = 1) -> Tensor:
    """The one kernel that cross-correlates as ``first`` followed by ``second`` (7.4, exercise 1).

    Cross-correlating with ``k_1`` and then with ``k_2`` (no nonlinearity in
    between) adds up products ``X[i + a + b] k_1[a] k_2[b]``, so it is one
    cross-correlation whose kernel at offset ``t`` sums ``k_1[a] k_2[b]`` over
    ``a + b = t``: the *full convolution* of the two kernels, of size
    ``k_1 + k_2 - 1``. With channels, the middle channels are summed over.
    When the first layer has stride ``s``, the second kernel's taps lie ``s``
    apart on the input (offset ``s b + a``) and the composite has stride
    ``s * s_2``. Without padding the two computations agree everywhere; with
    padding they differ at the borders, where the second layer pads the
    first one's output with zeros instead of seeing more of the input.

    Parameters
    ----------
    first : array_like
        2-D ``(k_h, k_w)``, or 4-D ``(c_mid, c_in, k_h, k_w)``.
    second : array_like
        The same number of dimensions; 4-D: ``(c_out, c_mid, k_h, k_w)``.
    first_stride : int or (s_h, s_w)
        The first layer's stride.

    Returns
    -------
    Tensor
        Shape ``((k2_h - 1) s_h + k1_h, (k2_w - 1) s_w + k1_w)``, with
        ``(c_out, c_in)`` in front for 4-D kernels; computed in float64 and
        rounded once.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.compose_kernels([[1, -1]], [[1, -1]])
    array([[ 1., -2.,  1.]], dtype=float32)
    >>> X = [[0, 1, 4, 9, 16, 25]]
    >>> cl.corr2d(cl.corr2d(X, [[1, -1]]), [[1, -1]])
    array([[2., 2., 2., 2.]], dtype=float32)
    >>> cl.corr2d(X, cl.compose_kernels([[1, -1]], [[1, -1]]))
    array([[2., 2., 2., 2.]], dtype=float32)
    """
    backend = get_backend()
    k1, k2 = _kernel(first, "first", backend), _kernel(second, "second", backend)
    s_h, s_w = check_stride(first_stride, "first_stride")
    if k1.ndim != k2.ndim:
        raise ValueError(
            f"second: expected a {k1.ndim}-D kernel, as first is, got shape {k2.shape} (first: {k1.shape})"
        )
    flat = k1.ndim == 2
    if flat:
        k1, k2 = k1[None, None], k2[None, None]
    if k2.shape[1] != k1.shape[0]:
        raise ValueError(
            f"second: expected {k1.shape[0]} input channels, as first has output channels, "
            f"got {k2.shape[1]} (shape {k2.shape})"
        )
    (_, c_in, h1, w1), (c_out, _, h2, w2) = k1.shape, k2.shape
    composite = np.zeros((c_out, c_in, (h2 - 1) * s_h + h1, (w2 - 1) * s_w + w1))
    for a in range(h2):
        for b in range(w2):
            rows, cols = slice(a * s_h, a * s_h + h1), slice(b * s_w, b * s_w + w1)
            composite[:, :, rows, cols] += np.einsum("om,mchw->ochw", k2[:, :, a, b], k1)
    return tensor(composite[0, 0] if flat else composite)


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

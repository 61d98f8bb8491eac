"""The exercises of d2l 7.4 (multiple input and output channels), answered in code.

What a convolution costs (:func:`conv_cost`) and two convolutions as one
(:func:`compose_kernels`), written once on the backend primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.core.checks import (
    check_chw,
    check_count,
    check_kernel_size,
    check_padding,
    check_stride,
)
from convlab.core.convert import as_native, to_numpy
from convlab.core.ops import conv_output_shape, tensor
from convlab.core.registry import get_backend

FLOAT32_BYTES = 4
"""convlab computes in float32."""


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
    c_i, h, w = check_chw(input_shape)
    c_o, groups, batch = (
        check_count(out_channels, "out_channels"),
        check_count(groups, "groups"),
        check_count(batch, "batch"),
    )
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

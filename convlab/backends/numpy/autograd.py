"""A small reverse-mode autograd over NumPy arrays: micrograd's idea, on whole arrays.

A :class:`Tensor` is an array that remembers how it was computed. Every
primitive below is one function with the same shape: compute the forward value
with NumPy on the raw arrays, then hand it to :func:`record` together with the
operands and a *backward rule*, a function from the output's gradient to one
gradient per operand. :meth:`Tensor.backward` walks that graph from the output
back to the leaves and adds the gradients up (the chain rule).

When no operand is a Tensor, :func:`record` returns the plain ndarray, so code
running on plain arrays gets plain arrays back and pays nothing for autograd.

Inside ``with reusing(workspace):`` the primitives take their large arrays from a
:class:`~.workspace.Workspace` that outlives the block, instead of fresh memory: a training
step run there again and again reuses the same pages (NumPy's compiled step).
The values are the same, bit for bit.

>>> w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()
>>> w.grad
array([2., 4., 6.])

The graph lives only inside Tensors. Writing a Tensor into a plain ndarray, as
the book's loop does with ``Y[i, j] = (X[i:i + h, j:j + w] * K).sum()``, keeps
the number and drops the graph: ``K`` then gets no gradient at all. That is the
real outcome of the book's loop layer on NumPy, not a bug to work around.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlab.backends.numpy import workspace
from convlab.backends.numpy.workspace import Workspace, reusing

__all__ = [
    "Tensor",
    "Workspace",
    "add",
    "argmax",
    "batch_norm",
    "conv2d",
    "corr2d",
    "divide",
    "exp",
    "getitem",
    "linear",
    "log",
    "log_softmax",
    "matmul",
    "mean",
    "multiply",
    "negative",
    "pad",
    "pool2d",
    "power",
    "record",
    "relu",
    "reshape",
    "reusing",
    "sigmoid",
    "subtract",
    "sum",
    "transpose",
    "unbroadcast",
    "value_and_grad",
    "value_of",
]

BackwardRule = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
"""Maps the gradient of an operation's output to one gradient per operand (None: no gradient)."""

_next_order = itertools.count().__next__
"""Numbers the Tensors in the order they are made, which is a topological order of the graph."""


class Tensor:
    """A float array that remembers how it was computed, for reverse-mode differentiation.

    Parameters
    ----------
    data
        The value. It is wrapped, not copied; integer and boolean data become float64.
    requires_grad
        Whether :meth:`backward` should fill :attr:`grad` for this Tensor. Set it on
        the leaves you differentiate with respect to (the parameters).

    Attributes
    ----------
    data : np.ndarray
        The value.
    grad : np.ndarray or None
        Filled by :meth:`backward` on a leaf: the gradient of the output it was called on
        (summed over calls), with this Tensor's shape and dtype. None until then, or when
        no output depends on it.
    requires_grad : bool
        True for leaves made with ``requires_grad=True`` and for everything computed from them.
    """

    __slots__ = ("_backward", "_order", "_parents", "data", "grad", "requires_grad")

    # NumPy's operators and ufuncs on a Tensor would turn it into a plain array and lose
    # the graph. None makes ``ndarray + Tensor`` hand over to Tensor.__radd__, and makes
    # ``np.exp(tensor)`` fail loudly instead of silently: use this module's exp.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        data = np.asarray(value_of(data))
        if data.dtype.kind in "biu":  # a gradient is not an integer
            data = data.astype(np.float64)
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._parents: tuple[Any, ...] = ()
        self._backward: BackwardRule | None = None
        self._order = _next_order()

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of :attr:`data`."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of :attr:`data`."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The dtype of :attr:`data` (and of :attr:`grad`)."""
        return self.data.dtype

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        # np.asarray(tensor), and ``Y[i:j] = tensor``, give the value and leave the graph behind.
        return np.array(self.data, dtype=dtype, copy=copy)

    def __float__(self) -> float:
        # NumPy stores a single element through float(): ``Y[i, j] = tensor`` lands here,
        # and keeps the number without the graph.
        return float(self.data.item())

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.dtype}{flag})"

    def __add__(self, other: Any) -> Any:
        return add(self, other)

    def __radd__(self, other: Any) -> Any:
        return add(other, self)

    def __sub__(self, other: Any) -> Any:
        return subtract(self, other)

    def __rsub__(self, other: Any) -> Any:
        return subtract(other, self)

    def __mul__(self, other: Any) -> Any:
        return multiply(self, other)

    def __rmul__(self, other: Any) -> Any:
        return multiply(other, self)

    def __truediv__(self, other: Any) -> Any:
        return divide(self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return divide(other, self)

    def __neg__(self) -> Any:
        return negative(self)

    def __pow__(self, exponent: float) -> Any:
        return power(self, exponent)

    def __matmul__(self, other: Any) -> Any:
        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return matmul(other, self)

    def __getitem__(self, index: Any) -> Any:
        return getitem(self, index)

    def reshape(self, *shape: Any) -> Any:
        """This Tensor with a new shape: ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``."""
        return reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Any:
        """The axes permuted: reversed without arguments, as ``ndarray.transpose``."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    @property
    def T(self) -> Any:  # noqa: N802 (NumPy's name)
        """The axes reversed."""
        return transpose(self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
        """The sum over ``axis`` (all axes by default); see :func:`sum`."""
        return sum(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
        """The mean over ``axis`` (all axes by default); see :func:`mean`."""
        return mean(self, axis, keepdims)

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Add the gradient of this Tensor to the :attr:`grad` of every leaf that requires it.

        Parameters
        ----------
        grad
            The gradient of the final result with respect to this Tensor. Leave it
            out for a scalar (size-1) Tensor: the seed is then 1.

        Notes
        -----
        Gradients add up across calls, as in PyTorch: reset ``leaf.grad = None``
        between steps. Only leaves keep their gradient; those of intermediate
        results are dropped as soon as they have been passed on.
        """
        if not self.requires_grad:
            return
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without a gradient needs a scalar, not a Tensor of shape {self.shape}")
            grad = np.array(1, dtype=self.data.dtype)  # np.ones costs more for one element
            if self.data.ndim:
                grad = grad.reshape(self.data.shape)
        else:
            grad = np.asarray(grad)
            if grad.shape != self.shape:
                raise ValueError(f"the gradient has shape {grad.shape}, the Tensor {self.shape}")

        # Every Tensor is numbered when it is made, after its operands: a node's number is larger
        # than its parents'. Taking the pending node with the largest number therefore reaches a
        # node only after every node computed from it, so all of its gradient has arrived; no
        # graph walk, no recursion (a graph of 10,000 steps is fine). A heap keeps that order.
        # Leaves skip the heap: nothing flows on from them, so each share is added at once.
        # (Tensors hash by identity, so they serve as dict keys.)
        if self._backward is None:
            self._accumulate(grad)
            return
        pending: dict[Tensor, np.ndarray] = {}  # node -> the gradient that has reached it so far
        heap: list[tuple[int, Tensor]] = []
        node, g = self, grad
        while True:
            # Every rule gives one gradient per operand (None where the operand needs none).
            for parent, parent_grad in zip(node._parents, node._backward(g), strict=False):
                if parent_grad is None or not isinstance(parent, Tensor) or not parent.requires_grad:
                    continue
                if parent._backward is None:
                    parent._accumulate(parent_grad)
                elif parent in pending:
                    pending[parent] = pending[parent] + parent_grad
                else:
                    pending[parent] = parent_grad
                    heappush(heap, (-parent._order, parent))
            if not heap:
                return
            node = heappop(heap)[1]
            g = pending.pop(node)  # pop: an intermediate gradient is freed once passed on

    def _accumulate(self, g: np.ndarray) -> None:
        # Add g to a leaf's gradient. A copy in the leaf's dtype: g may be shared with another
        # leaf (both operands of an addition get the same array) or be a view of the caller's.
        g = np.array(g, dtype=self.data.dtype)
        self.grad = g if self.grad is None else self.grad + g


def value_of(x: Any) -> Any:
    """The raw value of ``x``: a Tensor's data, an array as it is, anything else through ``np.asarray``.

    Python numbers are returned unchanged so that NumPy keeps treating them as
    weakly typed: ``float32_array * 2.0`` stays float32.
    """
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (np.ndarray, float, int)):
        return x
    return np.asarray(x)


def record(value: Any, parents: tuple[Any, ...], backward_rule: BackwardRule) -> Any:
    """The result of an operation: ``value`` as a plain ndarray, or as a Tensor joined to the graph.

    Parameters
    ----------
    value
        The forward value, computed on the raw arrays.
    parents
        The operands, Tensors or not, as a tuple in the order ``backward_rule`` returns
        their gradients.
    backward_rule
        Maps the output's gradient to one gradient per operand (None for "no gradient").

    Returns
    -------
    np.ndarray or Tensor
        The plain ndarray when no operand is a Tensor; a Tensor otherwise, part of the
        graph when some operand requires a gradient, a constant when none does.
    """
    if type(value) is not np.ndarray:
        value = np.asarray(value)  # NumPy returns scalars from full reductions; keep arrays throughout
    constant = False
    for parent in parents:
        if isinstance(parent, Tensor):
            if parent.requires_grad:
                # Operands that need no gradient stay in `parents` too: the rule gives them None,
                # and backward() walks only the Tensors that need one.
                return _tensor(value, parents, backward_rule)
            constant = True
    return Tensor(value) if constant else value


def _tensor(data: np.ndarray, parents: tuple[Any, ...], backward_rule: BackwardRule | None) -> Tensor:
    # A Tensor that requires a gradient, from an array as it is: __init__'s conversions are not needed.
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out.requires_grad = data, None, True
    out._parents, out._backward, out._order = parents, backward_rule, _next_order()
    return out


def _shape(v: Any) -> tuple[int, ...]:
    # np.shape, without its dispatch overhead for the common case of an array (it adds up on small images).
    return v.shape if type(v) is np.ndarray else np.shape(v)


def _tracks(x: Any) -> bool:
    # Whether x wants a gradient: lets a rule skip the work for an operand nobody differentiates.
    return isinstance(x, Tensor) and x.requires_grad


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    An operand broadcast along an axis was used once per position on that axis,
    so its gradient is the sum of the gradients at all those positions.

    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    >>> unbroadcast(np.ones((2, 3)), (2, 1))
    array([[3.],
           [3.]])
    """
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)  # axes that broadcasting added in front
    axes = tuple(range(leading)) + tuple(
        leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1
    )
    return np.sum(grad, axis=axes).reshape(shape)


# Arithmetic ------------------------------------------------------------------------------------------------------


def add(a: Any, b: Any) -> Any:
    """``a + b``, with broadcasting."""
    av, bv = value_of(a), value_of(b)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            unbroadcast(g, _shape(av)) if _tracks(a) else None,
            unbroadcast(g, _shape(bv)) if _tracks(b) else None,
        )

    return record(av + bv, (a, b), rule)


def subtract(a: Any, b: Any) -> Any:
    """``a - b``, with broadcasting."""
    av, bv = value_of(a), value_of(b)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            unbroadcast(g, _shape(av)) if _tracks(a) else None,
            unbroadcast(-g, _shape(bv)) if _tracks(b) else None,
        )

    return record(av - bv, (a, b), rule)


def multiply(a: Any, b: Any) -> Any:
    """``a * b`` elementwise, with broadcasting."""
    av, bv = value_of(a), value_of(b)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            unbroadcast(g * bv, _shape(av)) if _tracks(a) else None,
            unbroadcast(g * av, _shape(bv)) if _tracks(b) else None,
        )

    return record(av * bv, (a, b), rule)


def divide(a: Any, b: Any) -> Any:
    """``a / b`` elementwise, with broadcasting."""
    av, bv = value_of(a), value_of(b)
    out = av / bv

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        g_over_b = g / bv
        return (
            unbroadcast(g_over_b, _shape(av)) if _tracks(a) else None,
            unbroadcast(-g_over_b * out, _shape(bv)) if _tracks(b) else None,
        )

    return record(out, (a, b), rule)


def negative(a: Any) -> Any:
    """``-a``."""
    return record(-value_of(a), (a,), lambda g: (-g,))


def power(a: Any, exponent: float) -> Any:
    """``a ** exponent`` for a fixed Python number ``exponent``."""
    av = value_of(a)

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        if exponent == 2:
            # The squared error's case: two passes, not three; av + av rather than 2 * av, because
            # a Python scalar operand costs NumPy more than a second array (it shows on small images).
            return (g * (av + av),)
        return (g * exponent * av ** (exponent - 1),)

    return record(av**exponent, (a,), rule)


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``: matrix product, batched over leading axes, with NumPy's rules for 1-D operands."""
    av, bv = value_of(a), value_of(b)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        # Treat a 1-D operand as a matrix (a row on the left, a column on the right),
        # and put back in g the axis that matmul removed for it.
        a2 = av[np.newaxis, :] if av.ndim == 1 else av
        b2 = bv[:, np.newaxis] if bv.ndim == 1 else bv
        if bv.ndim == 1:
            g = g[..., np.newaxis]
        if av.ndim == 1:
            g = g[..., np.newaxis, :]
        ga = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(av.shape) if _tracks(a) else None
        gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(bv.shape) if _tracks(b) else None
        return ga, gb

    return record(av @ bv, (a, b), rule)


def _add_bias(y: np.ndarray, bias: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # y + bias.reshape(shape), in place when that keeps NumPy's result dtype: y is a fresh array
    # of our own, and one pass over it less matters for a conv's large output.
    b = bias.reshape(shape)
    if np.result_type(y, b) == y.dtype:
        y += b
        return y
    return y + b


def _check_bias(bias: np.ndarray, size: int, what: str) -> None:
    if _shape(bias) != (size,):
        raise ValueError(f"bias must have shape ({size},), one value per {what}, but has shape {_shape(bias)}")


def linear(x: Any, w: Any, bias: Any = None) -> Any:
    """A dense layer, ``x @ w.T + bias``, as one node of the graph.

    Parameters
    ----------
    x
        Inputs, shape (N, in_features).
    w
        Weights, shape (out_features, in_features), as ``torch.nn.Linear`` stores them.
    bias
        Shape (out_features,), or None for no bias.

    Returns
    -------
    np.ndarray or Tensor
        Shape (N, out_features).

    Notes
    -----
    With ``Y = X W^T + b`` and the output gradient ``G``: ``dX = G W``,
    ``dW = G^T X`` and ``db`` is ``G`` summed over the batch.

    >>> linear(np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [1.0, -1.0]]), np.array([0.5, 0.0]))
    array([[ 1.5, -1. ]])
    """
    xv, wv = value_of(x), value_of(w)
    out = xv @ wv.T
    if bias is None:
        parents: tuple[Any, ...] = (x, w)
    else:
        bv = value_of(bias)
        _check_bias(bv, wv.shape[0], "output feature")
        out = _add_bias(out, bv, (-1,))
        parents = (x, w, bias)
    need_x, need_w = _tracks(x), _tracks(w)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grads = (g @ wv if need_x else None, g.T @ xv if need_w else None)
        return grads if bias is None else (*grads, g.sum(axis=0) if _tracks(bias) else None)

    return record(out, parents, rule)


def batch_norm(x: Any, weight: Any, bias: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, np.ndarray, np.ndarray]:
    """Batch normalisation with the batch's statistics, as one node of the graph: ``(y, mean, variance)``.

    Parameters
    ----------
    x
        The batch, channels on axis 1: (N, C) or (N, C, H, W).
    weight, bias
        Shape (C,): the scale and shift of each channel.
    axes
        The axes the statistics are taken over: every axis but 1.
    eps
        Added to the variance, for stability.

    Returns
    -------
    y : np.ndarray or Tensor
        ``weight (x - mean) / sqrt(variance + eps) + bias``, computed as the formula's
        primitives compute it, so the same numbers.
    mean, variance : np.ndarray
        Shape (C,): the batch's mean and biased variance, plain arrays for the running
        statistics (no gradient flows through them).

    Notes
    -----
    With ``x_hat = (x - mean) / s``, ``s = sqrt(variance + eps)``, ``m`` the number of
    values per channel and the output gradient ``G``, summed over ``axes`` per channel:

    * ``d bias = sum G`` and ``d weight = sum G x_hat``;
    * ``dx = (weight / s) (G - sum G / m - x_hat sum(G x_hat) / m)``: the gradient
      through the mean and the variance folded into two per-channel numbers.

    Five passes over the batch instead of the dozen the formula's nodes take one by one,
    and no gradient of the same shape for the mean and the variance to allocate and add.

    >>> y, mean, variance = batch_norm(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1), (0,), 0.0)
    >>> y.ravel(), mean, variance
    (array([-1.,  1.]), array([2.]), array([1.]))
    """
    xv, wv, bv = value_of(x), value_of(weight), value_of(bias)
    per_channel = tuple(1 if axis in axes else n for axis, n in enumerate(xv.shape))
    count = xv.size // max(wv.size, 1)  # values per channel
    mean = np.add.reduce(xv, axis=axes) / count
    centered = xv - mean.reshape(per_channel)
    variance = np.add.reduce(centered * centered, axis=axes) / count
    root = (variance.reshape(per_channel) + eps) ** 0.5
    scale = wv.reshape(per_channel) / root
    y = _add_bias(centered * scale, bv, per_channel)
    need_x, need_w, need_b = _tracks(x), _tracks(weight), _tracks(bias)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        g_sum = np.add.reduce(g, axis=axes, keepdims=True) if need_x or need_b else None
        dx = dw = None
        if need_x or need_w:
            along = g * centered  # reused below as the buffer of the variance's share
            g_centered = np.add.reduce(along, axis=axes, keepdims=True)  # sum G (x - mean)
            if need_w:
                dw = (g_centered / root).reshape(wv.shape)
            if need_x:
                # dx = scale (G - sum G / m - (x - mean) sum G (x - mean) / (m s^2))
                np.multiply(centered, g_centered / (count * root * root), out=along)
                dx = g - g_sum / count
                dx -= along
                dx *= scale
        return dx, dw, g_sum.reshape(bv.shape) if need_b else None

    return record(y, (x, weight, bias), rule), mean, variance


# Elementwise functions -------------------------------------------------------------------------------------------


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``.

    For ``x`` below about -88 (float32) ``exp(-x)`` overflows to inf and the result is
    exactly 0, its correct limit; NumPy's overflow warning is silenced for that. The four
    passes run in place, on one array: on LeNet's activations this is the cost that shows.
    """
    xv = np.asarray(value_of(x))
    out = workspace.empty(xv.shape, dtype=xv.dtype if xv.dtype.kind == "f" else np.float64)  # an array even for 0-d x
    np.negative(xv, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        # g * out * (1 - out), in that order; the gradient's shape is out's
        dx = np.multiply(g, out, out=workspace.empty(out.shape, np.result_type(g, out)))
        dx *= np.subtract(1, out, out=workspace.scratch("elementwise", out.shape, out.dtype))
        return (dx,)

    return record(out, (x,), rule)


def relu(x: Any) -> Any:
    """``max(x, 0)``; its gradient at 0 is taken to be 0."""
    xv = value_of(x)
    if type(xv) is not np.ndarray or xv.dtype.kind != "f":
        return record(np.maximum(xv, 0), (x,), lambda g: (g * (xv > 0),))
    out = np.maximum(xv, 0, out=workspace.empty(xv.shape, xv.dtype))

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        positive = np.greater(xv, 0, out=workspace.scratch("mask", xv.shape, np.bool_))
        return (np.multiply(g, positive, out=workspace.empty(g.shape, np.result_type(g, positive))),)

    return record(out, (x,), rule)


def exp(x: Any) -> Any:
    """``e ** x``."""
    out = np.exp(value_of(x))
    return record(out, (x,), lambda g: (g * out,))


def log(x: Any) -> Any:
    """The natural logarithm."""
    xv = value_of(x)
    return record(np.log(xv), (x,), lambda g: (g / xv,))


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - log(sum(exp(x)))`` along ``axis``: log-probabilities from scores.

    The maximum is subtracted first (the result does not change), so ``exp``
    sees only numbers <= 0 and cannot overflow.
    """
    xv = value_of(x)
    shifted = xv - np.max(xv, axis=axis, keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        # d out_i / d x_j = [i == j] - softmax_j
        return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)

    return record(out, (x,), rule)


# Reductions and shapes -------------------------------------------------------------------------------------------


def _spread(g: np.ndarray, shape: tuple[int, ...], axis: int | tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    # The gradient of a reduction: every reduced element gets the gradient of its result.
    if axis is not None and not keepdims:  # put the reduced axes back, with size 1
        axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g  # broadcasts; a fresh array costs less than np.broadcast_to's bookkeeping
    return out


def sum(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """The sum over ``axis`` (all axes when None)."""
    xv = value_of(x)
    shape = _shape(xv)
    out = np.add.reduce(xv, axis, None, None, keepdims)  # np.sum, without its Python-level wrapper and keywords
    return record(out, (x,), lambda g: (_spread(g, shape, axis, keepdims),))


def mean(x: Any, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Any:
    """The mean over ``axis`` (all axes when None)."""
    xv = value_of(x)
    shape = _shape(xv)
    total = np.add.reduce(xv, axis=axis, keepdims=keepdims)
    count = max(np.size(xv) // max(np.size(total), 1), 1)  # elements averaged into each result
    out = total / count
    return record(out, (x,), lambda g: (_spread(g / count, shape, axis, keepdims),))


def reshape(x: Any, shape: int | tuple[int, ...]) -> Any:
    """``x`` with a new shape (one axis may be -1)."""
    xv = value_of(x)
    old = _shape(xv)
    return record(np.asarray(xv).reshape(shape), (x,), lambda g: (g.reshape(old),))


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """``x`` with its axes permuted by ``axes``, or reversed when None."""
    xv = value_of(x)
    if axes is None:
        return record(np.transpose(xv), (x,), lambda g: (np.transpose(g),))
    inverse = tuple(np.argsort([a % np.ndim(xv) for a in axes]))  # undoes the permutation
    return record(np.transpose(xv, axes), (x,), lambda g: (np.transpose(g, inverse),))


def _is_basic(index: Any) -> bool:
    # Slices and integers pick each element at most once; only index arrays can repeat one.
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``, for basic (slices, integers) and advanced (arrays, masks) indexing."""
    xv = value_of(x)

    def rule(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros(np.shape(xv), dtype=g.dtype)
        if _is_basic(index):
            grad[index] = g  # no element is picked twice: a plain write is enough, and faster
        else:
            np.add.at(grad, index, g)  # x[[0, 0]] uses x[0] twice: its gradient is the sum of both
        return (grad,)

    return record(xv[index], (x,), rule)


def concat(tensors: Sequence[Any], axis: int) -> Any:
    """The tensors joined along ``axis``; each one's gradient is its slice of the output's."""
    values = [value_of(t) for t in tensors]
    edges = np.cumsum([np.shape(v)[axis] for v in values])[:-1]
    return record(np.concatenate(values, axis), tuple(tensors), lambda g: tuple(np.split(g, edges, axis=axis)))


def pad(x: Any, pad_width: Any) -> Any:
    """``x`` surrounded by zeros; ``pad_width`` is as for ``np.pad`` (an int, a pair, or a pair per axis)."""
    xv = value_of(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (np.ndim(xv), 2))
    inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, np.shape(xv), strict=True))
    return record(np.pad(xv, widths), (x,), lambda g: (g[inner],))


def argmax(x: Any, axis: int | None = None) -> np.ndarray:
    """The index of the (first) maximum, as a plain integer array: an index has no gradient."""
    return np.asarray(np.argmax(value_of(x), axis=axis))


# Convolution and pooling -----------------------------------------------------------------------------------------


def _pad_hw(x: np.ndarray, padding: Sequence[int], fill: float) -> np.ndarray:
    # Pad the last two axes by (top, bottom, left, right) with `fill`; no copy when there is no padding.
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    N, C, H, W = x.shape
    out = workspace.empty((N, C, H + top + bottom, W + left + right), x.dtype)
    out.fill(fill)
    out[:, :, top : top + H, left : left + W] = x
    return out


def _output_size(Hp: int, Wp: int, kH: int, kW: int, s_h: int, s_w: int) -> tuple[int, int]:
    H_out, W_out = (Hp - kH) // s_h + 1, (Wp - kW) // s_w + 1
    if H_out < 1 or W_out < 1:
        raise ValueError(f"a {kH}x{kW} window does not fit in the (padded) {Hp}x{Wp} input")
    return H_out, W_out


def _offsets(kH: int, kW: int, s_h: int, s_w: int, H_out: int, W_out: int) -> list[tuple[slice, ...]]:
    """One index per position (a, b) inside the window, in row-major order.

    ``xp[index]`` is element (a, b) of every window at once, a (N, C, H_out, W_out) strided
    view: ``xp[n, c, i*s_h + a, j*s_w + b]`` at ``[n, c, i, j]``. Pooling and the input
    gradient of a convolution loop over these kH * kW offsets, never over pixels.
    """
    return [
        (slice(None), slice(None), slice(a, a + s_h * (H_out - 1) + 1, s_h), slice(b, b + s_w * (W_out - 1) + 1, s_w))
        for a in range(kH)
        for b in range(kW)
    ]


def _im2col(xp: np.ndarray, kH: int, kW: int, s_h: int, s_w: int) -> np.ndarray:
    """The windows of a padded NCHW array as one matrix, (C * kH * kW, N * H_out * W_out).

    Row (c, a, b) holds element (a, b) of every window of channel c; column (n, i, j) is the
    window of output pixel (i, j) of image n. Correlating with every kernel is then one
    matrix product, ``W.reshape(C_out, -1) @ cols``. The rows are filled from a strided view
    of ``xp`` whose last axes are the output pixels, so the copy moves whole runs of W_out
    neighbouring pixels at a time.
    """
    N, C, Hp, Wp = xp.shape
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    if not xp.flags.c_contiguous:
        xp = np.ascontiguousarray(xp)
    sN, sC, sH, sW = xp.strides
    # np.ndarray over xp's memory is what np.lib.stride_tricks.as_strided does, without its
    # few microseconds of bookkeeping (they matter on the chapter's 6x8 images).
    windows = np.ndarray((C, kH, kW, N, H_out, W_out), xp.dtype, xp, 0, (sC, sH, sW, sN, sH * s_h, sW * s_w))
    return windows.reshape(C * kH * kW, N * H_out * W_out)  # the copy is here


# A convolution's matrices are indexed (N, R, L): image, row (a channel, or a channel's window
# element), pixel. Their memory is in one of two orders, each the faster for some products:
#
# * batch-major, C-contiguous (N, R, L): each image's matrix on its own. np.matmul then makes
#   one BLAS call per image, and an NCHW image is such a matrix already, without a copy. This is
#   what a 1x1 convolution's input and output are: pointwise, it needs no window columns, and
#   copying its operands into one large matrix would cost more than the small products save.
# * channel-major, a transposed view of C-contiguous (R, N, L): all images side by side, so a
#   product is a single large BLAS call over N * L columns, several times faster than N small
#   ones on 7x7 or 14x14 images. Window columns are copied anyway, so they are copied into this
#   order; the outputs' copy back to NCHW is the pass that drops the junk columns below.
#
# _matmul_per_image computes A @ B[n] for every image in whichever order B is.


def _channel_major(matrices: np.ndarray) -> bool:
    # Whether (N, R, L)-indexed `matrices` are a transposed view of a C-contiguous (R, N, L).
    return matrices.transpose(1, 0, 2).flags.c_contiguous


def _matmul_per_image(a: np.ndarray, b: np.ndarray, buffer: np.ndarray | None = None) -> np.ndarray:
    """``a @ b[n]`` for every image n, (N, M, L)-indexed in the memory order of ``b``.

    ``a`` is (M, K), or (groups, M / groups, K / groups) to multiply group g of its rows
    with group g of the rows of ``b`` only (a grouped convolution). Channel-major, the
    product is written into the start of ``buffer`` when given (see :func:`.workspace.buffered`).
    """
    N, K, L = b.shape
    groups = 1 if a.ndim == 2 else a.shape[0]
    M = a.shape[-2] * groups
    if _channel_major(b):
        columns = b.transpose(1, 0, 2).reshape(groups, K // groups, N * L)
        out = None if buffer is None else workspace.buffered(buffer, (groups, M // groups, N * L))
        product = np.matmul(a if groups > 1 else a.reshape(1, M, K), columns, out=out)  # (groups, M / groups, N * L)
        return product.reshape(M, N, L).transpose(1, 0, 2)
    product = np.matmul(a, b if groups == 1 else b.reshape(N, groups, K // groups, L))
    return product.reshape(N, M, L)


def _strided(
    base: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...], offset: int = 0, writeable: bool = False
) -> np.ndarray:
    """``as_strided``: a view of ``base``'s memory from byte ``offset``, quicker where ``base`` is C-contiguous.

    np.ndarray over the memory takes 0.35 us, as_strided's bookkeeping 3.2; a convolution in
    small chunks makes a few of these views per chunk, 19 chunks a pass on LeNet's first layer.
    """
    if base.flags.c_contiguous:
        view = np.ndarray(shape, base.dtype, base, offset, strides)
        view.flags.writeable = writeable and base.flags.writeable
        return view
    if offset:
        raise ValueError("an offset needs a C-contiguous base")
    return as_strided(base, shape, strides, writeable=writeable)


def _window_columns(
    xp: np.ndarray, kH: int, kW: int, s_h: int, s_w: int, buffer: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """The windows of padded NCHW images as (N, C * kH * kW, L)-indexed columns, and the width of their rows.

    Row (c, a, b) of image n holds element (a, b) of every window of channel c; column p
    is the window of output pixel p. Correlating image n with every kernel is then the
    matrix product ``W.reshape(C_out, -1) @ cols[n]``.

    The output pixels come in rows of ``row`` columns, of which the first W_out are real:

    * stride 1: ``row = Wp``, the padded input's width. Element (a, b) of every window of
      one image and channel is then a single run of L = (H_out - 1) * Wp + W_out neighbouring
      pixels of ``xp``, from a * Wp + b, so the copy moves runs of L, not rows of W_out (on
      7x7 images about ten times faster). The Wp - W_out columns after each output row are
      junk: they read the end of one row and the start of the next. :func:`_pixels` drops
      them; they cost (kW - 1) / Wp more arithmetic, and no run leaves its image's plane.
    * other strides: ``row = W_out`` and L = H_out * W_out, copied from a strided view.

    The columns are copied channel-major, into the start of ``buffer`` when given (see
    :func:`.workspace.buffered`). A 1x1 kernel at stride 1 reads every pixel once, in order: its
    columns are ``xp`` itself, batch-major, without a copy.
    """
    N, C, Hp, Wp = xp.shape
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    if kH == kW == s_h == s_w == 1:
        return _blas_ready(xp.reshape(N, C, Hp * Wp)), Wp
    if (s_h, s_w) != (1, 1):
        sN, sC, sH, sW = xp.strides
        windows = _strided(xp, (C, kH, kW, N, H_out, W_out), (sC, sH, sW, sN, sH * s_h, sW * s_w))
        row, L = W_out, H_out * W_out
    else:
        if xp.strides[2] != Wp * xp.strides[3]:  # the runs need each plane's rows back to back
            xp = np.ascontiguousarray(xp)
        sN, sC, sH, sW = xp.strides
        row, L = Wp, (H_out - 1) * Wp + W_out
        windows = _strided(xp, (C, kH, kW, N, L), (sC, sH, sW, sN, sW))
    # The copy is here. (A reshape alone may not copy: with one image, or one row of windows, it can
    # merge the axes into a view of xp whose rows overlap, which BLAS cannot take.)
    if buffer is None:
        cols = np.ascontiguousarray(windows)
    else:
        cols = workspace.buffered(buffer, windows.shape)
        np.copyto(cols, windows)
    return cols.reshape(C * kH * kW, N, L).transpose(1, 0, 2), row


def _blas_ready(matrices: np.ndarray) -> np.ndarray:
    # np.matmul hands a stack of matrices to BLAS only when their rows are runs (the last
    # stride one element); otherwise it falls back to a slow loop of its own. Copy those.
    if matrices.strides[-1] != matrices.itemsize or matrices.strides[-2] % matrices.itemsize:
        return np.ascontiguousarray(matrices)
    return matrices


def _rows(g: np.ndarray, row: int, channel_major: bool, buffer: np.ndarray | None = None) -> np.ndarray:
    """NCHW ``g`` as (N, C, L)-indexed pixels in rows of ``row`` columns, channel-major or batch-major.

    The layout of :func:`_window_columns`' pixels, with zeros in the junk columns, so that
    products with the columns' junk add nothing; channel-major, copied into the start of
    ``buffer`` when given (see :func:`.workspace.buffered`).
    """
    N, C, H, W = g.shape
    if not channel_major:
        return _blas_ready(g.reshape(N, C, H * W))  # batch-major pixels have no junk (row == W)
    L = (H - 1) * row + W
    out = np.empty((C, N, L), dtype=g.dtype) if buffer is None else workspace.buffered(buffer, (C, N, L))
    sC, sN, sL = out.strides
    _strided(out, (N, C, H, W), (sN, sC, row * sL, sL), writeable=True)[...] = g
    if row > W:
        _strided(out, (N, C, H - 1, row - W), (sN, sC, row * sL, sL), W * sL, writeable=True)[...] = 0
    return out.transpose(1, 0, 2)


def _pixels(
    flat: np.ndarray, H: int, W: int, row: int, bias: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """(N, C, L)-indexed pixels in rows of ``row`` columns as C-contiguous (N, C, H, W), plus ``bias``.

    One pass that drops the junk columns of :func:`_window_columns`' layout, puts channel-major
    products in NCHW order and adds the bias per channel, into ``out`` when given (a chunk of a
    larger batch). A fresh batch-major product without junk is NCHW already: without ``out``,
    it is returned itself, the bias added in place.
    """
    N, C, _ = flat.shape
    if out is None and row == W and flat.flags.c_contiguous:
        pixels = flat.reshape(N, C, H, W)
        return pixels if bias is None else _add_bias(pixels, bias, (1, C, 1, 1))
    sN, sC, sL = flat.strides
    # Channel-major, flat is a transposed view of a C-contiguous array with the same first element.
    view = _strided(flat.transpose(1, 0, 2) if _channel_major(flat) else flat, (N, C, H, W), (sN, sC, row * sL, sL))
    if out is None:
        out = workspace.empty((N, C, H, W), dtype=flat.dtype if bias is None else np.result_type(flat, bias))
    if bias is None:
        np.copyto(out, view)
    else:
        np.add(view, bias.reshape(1, C, 1, 1), out=out)
    return out


def _gathers(
    shape: tuple[int, ...], C_out: int, padding: Sequence[int], kernel_size: tuple[int, int], stride: tuple[int, int]
) -> bool:
    """Whether a convolution's input gradient is best computed by :func:`_gathered_input_gradient`.

    Two ways, for the cheaper copy:

    * gather (stride 1, padding at most kernel - 1, at most as many outputs as inputs): the
      "full" correlation of the output gradient with the kernels flipped both ways, channels in
      and out swapped. That is a forward convolution of the output gradient, padded by
      kH - 1 - top (and likewise) on each side, with the same window columns and product,
      and its output is the unpadded input's gradient directly. Its columns have one row per
      output channel and window element.
    * scatter (:func:`_scattered_input_gradient`, otherwise): each window's share of the
      gradient, one row per input channel and window element, added back onto the pixels it
      was read from. Three passes over its shares rather than two over the gather's columns.
    """
    (kH, kW), (top, bottom, left, right) = kernel_size, padding
    return stride == (1, 1) and max(top, bottom) < kH and max(left, right) < kW and C_out <= shape[1]


def _gathered_input_gradient(
    kernels: np.ndarray,
    g: np.ndarray,
    g_rows: np.ndarray,
    shape: tuple[int, ...],
    padding: Sequence[int],
    kernel_size: tuple[int, int],
    row: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The gradient of a stride-1 convolution with respect to its unpadded input, (N, C, H, W), into ``out``.

    The convolution of the output gradient ``g`` (NCHW), padded by kH - 1 - top (and likewise)
    on each side, with the kernels flipped both ways, channels in and out swapped (see
    :func:`_gathers`). ``kernels`` is as in the forward product: (C_out, C * kH * kW), or
    (groups, C_out / groups, C / groups * kH * kW); ``g_rows`` is ``g`` as :func:`_rows` lays
    it out for the forward's window columns, in rows of ``row`` columns.
    """
    _, C, H, W = shape
    top, bottom, left, right = padding
    kH, kW = kernel_size
    groups = 1 if kernels.ndim == 2 else kernels.shape[0]
    C_out = g.shape[1]
    # flipped[g, c, (o, a, b)] = W[g * C_out / groups + o, c, kH - 1 - a, kW - 1 - b]
    flipped = kernels.reshape(groups, C_out // groups, C // groups, kH, kW)[..., ::-1, ::-1]
    flipped = flipped.transpose(0, 2, 1, 3, 4).reshape(groups, C // groups, -1)
    if kH == kW == 1 and not any(padding):
        g_cols, g_row = g_rows, row  # a 1x1 kernel's columns are the pixels themselves
    else:
        border = (kH - 1 - top, kH - 1 - bottom, kW - 1 - left, kW - 1 - right)
        g_cols, g_row = _window_columns(_pad_hw(g, border, 0), kH, kW, 1, 1)
    product = _matmul_per_image(flipped[0] if groups == 1 else flipped, g_cols)
    return _pixels(product, H, W, g_row, out=out)


def _scattered_input_gradient(
    kernels: np.ndarray,
    g_rows: np.ndarray,
    dxp: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    row: int,
) -> None:
    """Add the gradient of a convolution with respect to its padded input onto ``dxp``, (N, C, Hp, Wp).

    Each window's share of the gradient is ``kernels^T @ g_rows`` (``kernels`` and ``g_rows``
    as for :func:`_gathered_input_gradient`), laid out as the window columns; col2im adds
    every entry back onto the pixel it was read from, with one strided add per position
    (a, b) in the window, over all images and channels at once.
    """
    N, C, Hp, Wp = dxp.shape
    (kH, kW), (s_h, s_w) = kernel_size, stride
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    L = g_rows.shape[-1]
    buffer = workspace.chunk_buffer("shares", N * C * kH * kW * L, np.result_type(kernels, g_rows), chunked=False)
    shares = _matmul_per_image(np.swapaxes(kernels, -1, -2), g_rows, buffer).reshape(N, C, kH, kW, L)
    planes = dxp.reshape(N, C, Hp * Wp)
    for a in range(kH):
        for b in range(kW):
            if row == W_out:  # the pixels that window element (a, b) read, as (N, C, H_out, W_out)
                reached = dxp[:, :, a : a + s_h * (H_out - 1) + 1 : s_h, b : b + s_w * (W_out - 1) + 1 : s_w]
                reached += shares[:, :, a, b].reshape(N, C, H_out, W_out)
            else:  # rows of Wp (stride 1): one run per image and channel; the junk columns carry zeros
                planes[:, :, a * Wp + b : a * Wp + b + L] += shares[:, :, a, b]


def _sum_over_images(a: np.ndarray, b: np.ndarray, groups: int) -> np.ndarray:
    """``sum_n a[n] @ b[n]^T`` for (N, M, L)- and (N, K, L)-indexed ``a`` and ``b`` in the same memory order.

    Channel-major, that is one product over all N * L columns; batch-major, one per image,
    then their sum. With groups, group g of the rows of ``a`` meets group g of those of ``b``:
    (groups, M / groups, K / groups).

    The product is taken the other way round, ``(b[n] @ a[n]^T)^T``: with few rows in ``a``
    (a layer's output channels) and many in ``b`` (its window columns), OpenBLAS runs that
    order up to twice as fast, and the transpose is of the small result only.
    """
    N, M, L = a.shape
    K = b.shape[1]
    if _channel_major(a):
        left = a.transpose(1, 0, 2).reshape(groups, M // groups, N * L)
        right = b.transpose(1, 0, 2).reshape(groups, K // groups, N * L)
        return np.swapaxes(np.matmul(right, np.swapaxes(left, -1, -2)), -1, -2)
    left = a.reshape(N, groups, M // groups, L)
    right = b.reshape(N, groups, K // groups, L)
    return np.swapaxes(np.matmul(right, np.swapaxes(left, -1, -2)).sum(axis=0), -1, -2)


_CHUNK_BYTES = 16 << 20
"""Window columns copied per chunk of images: half the L3 cache, where they stay until their product reads them.

Smaller chunks are up to 15% faster on one core (2 MiB fit a core's L2), but every chunk is
a product of its own, and where BLAS runs threaded each product hands work to its threads
and waits for them: on a loaded machine, a scheduler's time slice each time. There 2 MiB
chunks made AlexNet's and VGG's steps twice as slow as one product per layer; 16 MiB
chunks (four per pass on ResNet's 28x28 layers, one on 7x7 images) were faster than both.
"""


_SMALL_PRODUCT = 1_000_000
"""Multiply-adds of a product small enough for OpenBLAS's small-matrix kernel (its threshold, M * N * K <= 100^3).

That kernel reads its operands as they are, on the calling thread: no packing copy, no
threads to wait for. A layer with few kernels of few weights (LeNet's first, 6 kernels of
1x5x5 on 28x28 images) makes a product as long and thin as 6 x 25 by 25 x 114,000, which
runs at 12 ns a column packed and 3 ns in pieces under the threshold (one core).
"""

_SMALL_IMAGES = 4
"""The fewest images per chunk worth taking in :data:`_SMALL_PRODUCT` pieces, which run on one core.

LeNet's first layer (7 images a piece, 19 products a pass) is faster that way on one core
and with two BLAS threads; its second (3 images a piece, 43 products) is faster on one core
(forward and backward 5.0 ms, not 9.3) but slower with two threads (7.7 ms, not 5.9), where
its single large product runs on both cores.
"""


def _image_chunks(N: int, bytes_per_image: int, macs_per_image: int) -> list[slice]:
    """The batch in chunks of whole images whose window columns take about :data:`_CHUNK_BYTES`.

    Copied in one piece, a batch's columns are tens of megabytes: written out to memory
    and read back by the product, whose speed they then set (a 16-channel 3x3 layer on
    28x28 images ran at half the speed). A chunk's columns are read from the cache, and
    none are kept for the backward pass, which copies them again, chunk by chunk.

    Where at least :data:`_SMALL_IMAGES` images make a product of at most
    :data:`_SMALL_PRODUCT` multiply-adds (``macs_per_image`` each), chunks are that size
    instead, if smaller.
    """
    images = max(1, min(N, _CHUNK_BYTES // max(bytes_per_image, 1)))
    small = _SMALL_PRODUCT // max(macs_per_image, 1)
    if small >= _SMALL_IMAGES:
        images = min(images, small)
    return [slice(first, min(first + images, N)) for first in range(0, N, images)]


def corr2d(x: Any, k: Any) -> Any:
    """The chapter's 2-D cross-correlation (valid mode) of a 2-D ``x`` with a 2-D kernel ``k``.

    The one-image, one-channel case of :func:`conv2d`, with the chapter's own
    backward rules and no batch or channel axes to add and remove:

    * the kernel's gradient is the cross-correlation of the input with the
      output gradient, ``dK = corr2d(X, dY)``;
    * the input's gradient is the output gradient, zero-padded by ``k - 1`` on
      every side, cross-correlated with the kernel flipped both ways.

    >>> corr2d(np.arange(9.0).reshape(3, 3), np.arange(4.0).reshape(2, 2))
    array([[19., 25.],
           [37., 43.]])
    """
    xv, kv = value_of(x), value_of(k)
    (kh, kw), (h, w) = kv.shape, xv.shape
    # conv2d's machinery: the windows as columns, then one matrix-vector product. (ndarray.dot
    # rather than @: the same BLAS call, reached in half the time, which shows on 6x8 images.)
    cols = _im2col(xv.reshape(1, 1, h, w), kh, kw, 1, 1)
    need_x, need_k = _tracks(x), _tracks(k)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        dk = cols.dot(g.reshape(-1)).reshape(kh, kw) if need_k else None  # corr2d(X, dY), as the chapter finds
        dx = None
        if need_x:
            padded = np.pad(g, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
            dx = kv[::-1, ::-1].reshape(-1).dot(_im2col(padded.reshape(1, 1, *padded.shape), kh, kw, 1, 1))
            dx = dx.reshape(h, w)
        return dx, dk

    return record(kv.reshape(-1).dot(cols).reshape(h - kh + 1, w - kw + 1), (x, k), rule)


def conv2d(
    x: Any,
    w: Any,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    bias: Any = None,
) -> Any:
    """2-D cross-correlation of NCHW images with OIHW kernels, as every deep-learning framework's "conv".

    Parameters
    ----------
    x
        Images, shape (N, C_in, H, W).
    w
        Kernels, shape (C_out, C_in // groups, kH, kW). Not flipped: this is cross-correlation.
    stride
        (s_h, s_w): the step between windows.
    padding
        (top, bottom, left, right): rows and columns of zeros added around each image.
    groups
        Input and output channels are split into this many groups; group g's outputs
        see only group g's inputs.
    bias
        Shape (C_out,): one number added to every pixel of each output channel, in the
        same node (its gradient is the output gradient summed over N, H and W). None
        for no bias.

    Returns
    -------
    np.ndarray or Tensor
        Shape (N, C_out, H_out, W_out) with ``H_out = (H + top + bottom - kH) // s_h + 1``
        (``W_out`` likewise), C-contiguous.

    Notes
    -----
    The forward pass copies every window of the padded input into the columns of a
    matrix (im2col, :func:`_window_columns`) and correlates them with all kernels in one
    matrix product (per group): ``Y = W X_cols``, with ``W`` the kernels as rows. No Python
    loop over pixels; the product is a single large BLAS call, or one per image for a 1x1
    kernel, whose columns are the image itself.

    The backward pass is two matrix products with the same matrices:

    * the weight gradient ``dW = dY X_cols^T`` is the cross-correlation of the
      (padded) input with the output gradient, as the chapter finds for its own layer:
      ``dW[o, c, a, b] = sum_{n,i,j} Xpad[n, g*C + c, i*s_h + a, j*s_w + b] * dY[n, o, i, j]``
      (C the channels per group);
    * the input gradient is the transposed convolution: the "full" correlation of the
      stride-dilated output gradient with the flipped kernels. At stride 1 it is computed
      as just that, a convolution of the padded output gradient (when that copies less);
      otherwise ``dX_cols = W^T dY`` gives each window's share, which is added back onto
      the pixels the window was read from (col2im: one strided add per position in the
      window), without multiplying the dilation's zeros. Padding is cropped away; pixels
      no window reached (when the stride does not divide the size) get 0.

    >>> X = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> K = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> conv2d(X, K)[0, 0]
    array([[19., 25.],
           [37., 43.]])
    >>> conv2d(X, K, bias=np.array([-19.0]))[0, 0]
    array([[ 0.,  6.],
           [18., 24.]])
    """
    xv, wv = value_of(x), value_of(w)
    N, C, H, W = xv.shape
    C_out, C_group, kH, kW = wv.shape
    if C != C_group * groups or C_out % groups:
        raise ValueError(
            f"with groups={groups}, x's {C} channels and w's {C_out} kernels must both split into "
            f"{groups} groups, and each kernel must have {C}/{groups} channels (it has {C_group})"
        )
    s_h, s_w = stride
    top, _, left, _ = padding
    xp = _pad_hw(xv, padding, 0)
    Hp, Wp = xp.shape[2:]
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    # Group g's kernels meet group g's block of rows; one group (the usual case) needs no groups axis.
    kernels = wv.reshape(C_out, -1) if groups == 1 else wv.reshape(groups, C_out // groups, -1)
    bv = None
    if bias is not None:
        bv = value_of(bias)
        _check_bias(bv, C_out, "output channel")
    if kH == kW == s_h == s_w == 1:
        chunks = [slice(0, N)]  # the columns are the images themselves: nothing copied, nothing to split
    else:
        # The columns of one image: the largest copy of every pass (the input gradient's gather
        # copies C_out <= C rows per window element, its scatter's shares have C).
        L = (H_out - 1) * Wp + W_out if (s_h, s_w) == (1, 1) else H_out * W_out
        chunks = _image_chunks(N, C * kH * kW * L * xv.itemsize, C_out * C_group * kH * kW * L)
    # Several chunks copy their columns and products into the same buffers, a chunk's worth each
    # (those of the backward pass are its own: the forward's are not kept). In a workspace one chunk
    # does too, and its product is then copied out like a chunk's: _pixels could hand it back as it is.
    chunked, columns = len(chunks) > 1, not kH == kW == s_h == s_w == 1
    col_buffer = (
        workspace.chunk_buffer("columns", C * kH * kW * chunks[0].stop * L, xp.dtype, chunked) if columns else None
    )
    out_buffer = None
    if chunked or (columns and workspace.in_use()):
        out_buffer = workspace.chunk_buffer("product", C_out * chunks[0].stop * L, np.result_type(kernels, xp), True)
    y = None
    for chunk in chunks:
        cols, row = _window_columns(xp[chunk], kH, kW, s_h, s_w, col_buffer)  # (n, C * kH * kW, L)-indexed
        product = _matmul_per_image(kernels, cols, out_buffer)  # (n, C_out, L)-indexed
        if not chunked and out_buffer is None:
            y = _pixels(product, H_out, W_out, row, bv)
        else:
            if y is None:
                y = workspace.empty(
                    (N, C_out, H_out, W_out), dtype=product.dtype if bv is None else np.result_type(product, bv)
                )
            _pixels(product, H_out, W_out, row, bv, out=y[chunk])
    channel_major = _channel_major(cols)
    parents: tuple[Any, ...] = (x, w) if bias is None else (x, w, bias)
    need_x, need_w, need_b = _tracks(x), _tracks(w), bias is not None and _tracks(bias)

    def rule(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        dx = dw = db = dxp = None
        gathers = need_x and _gathers(xv.shape, C_out, padding, (kH, kW), (s_h, s_w))
        if need_x and not gathers:
            dxp = workspace.zeros(xp.shape, dtype=np.result_type(g, wv))  # the padded input's, cropped below
        elif need_x and len(chunks) > 1:
            dx = workspace.empty(xv.shape, dtype=np.result_type(g, wv))
        rows_buffer = cols_buffer = None
        if (need_x or need_w) and columns:  # (a 1x1 kernel's columns and rows are the pixels themselves)
            if channel_major:
                rows_buffer = workspace.chunk_buffer("rows", C_out * chunks[0].stop * L, g.dtype, chunked)
            if need_w:
                cols_buffer = workspace.chunk_buffer("columns", C * kH * kW * chunks[0].stop * L, xp.dtype, chunked)
        for chunk in chunks if need_x or need_w else ():
            g_rows = _rows(g[chunk], row, channel_major, rows_buffer)  # laid out as the columns' pixels
            if need_w:
                cols, _ = _window_columns(xp[chunk], kH, kW, s_h, s_w, cols_buffer)  # copied again, not kept
                part = _sum_over_images(g_rows, cols, groups)  # dY X_cols^T
                dw = part if dw is None else dw + part
            if dxp is not None:
                _scattered_input_gradient(kernels, g_rows, dxp[chunk], (kH, kW), (s_h, s_w), row)
            elif need_x:
                shape = (g_rows.shape[0], *xv.shape[1:])
                part = _gathered_input_gradient(
                    kernels, g[chunk], g_rows, shape, padding, (kH, kW), row, None if dx is None else dx[chunk]
                )
                dx = part if dx is None else dx
        if dxp is not None:
            dx = dxp[:, :, top : top + H, left : left + W]
        if dw is not None:
            dw = dw.reshape(wv.shape)
        if need_b:
            # Each image's pixels first (a pairwise sum along a contiguous run), then the images.
            db = g.reshape(N, C_out, -1).sum(axis=2).sum(axis=0)
        return (dx, dw) if bias is None else (dx, dw, db)

    return record(y, parents, rule)


def _window_runs(xp: np.ndarray, kH: int, kW: int, s_h: int, s_w: int) -> tuple[list[np.ndarray], int | None]:
    """Element (a, b) of every window of padded NCHW images, one view per (a, b), and the width of their rows.

    At stride 1, element (a, b) of all windows of one plane is a single run of
    L = (H_out - 1) * Wp + W_out neighbouring pixels, as :func:`_window_columns` lays out a
    convolution's pixels: an (N, C, L) view whose innermost loop is the whole run, not a
    row of W_out pixels (on 14x14 images a pass then costs about half as much). The
    Wp - W_out entries after each output row are junk, windows that wrap from one row to
    the next; :func:`_pixels` drops them, and the width returned is Wp. At other strides
    the views are (N, C, H_out, W_out), and the width None: there a run would step over
    s_w - 1 pixels out of s_w and hold s_h times as many junk entries, which costs more
    than the short rows.
    """
    N, C, Hp, Wp = xp.shape
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    if (s_h, s_w) != (1, 1):
        return [xp[index] for index in _offsets(kH, kW, s_h, s_w, H_out, W_out)], None
    if xp.strides[2] != Wp * xp.strides[3]:  # the runs need each plane's rows back to back
        xp = np.ascontiguousarray(xp)
    sN, sC, _, sW = xp.strides
    shape, strides = (N, C, (H_out - 1) * Wp + W_out), (sN, sC, sW)
    return [as_strided(xp[:, :, a:, b:], shape, strides, writeable=False) for a in range(kH) for b in range(kW)], Wp


def pool2d(
    x: Any,
    window: tuple[int, int],
    stride: tuple[int, int] | None = None,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    mode: str = "max",
) -> Any:
    """Maximum or average of every window of NCHW images, channel by channel.

    Parameters
    ----------
    x
        Images, shape (N, C, H, W).
    window
        (kH, kW): the window's size.
    stride
        (s_h, s_w); by default the window's size, as in every framework.
    padding
        (top, bottom, left, right). For ``"max"`` the padding is -inf, so it never
        wins; for ``"avg"`` it is 0 and counts: the sum is always divided by kH * kW
        (PyTorch's default, ``count_include_pad=True``).
    mode
        ``"max"`` or ``"avg"``.

    Notes
    -----
    Both passes loop over the kH * kW positions inside the window, not over pixels:
    position (a, b) of every window at once is one strided view of the input (at stride
    1, one run along each flattened image, :func:`_window_runs`), and the result is their
    running maximum or sum.

    The gradient of a maximum goes to the position of the maximum (the first one on
    ties, as ``np.argmax``); that of an average is spread evenly over the window.
    Where windows overlap, the gradients from each add up.

    >>> X = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> pool2d(X, (2, 2), (1, 1))[0, 0]
    array([[4., 5.],
           [7., 8.]])
    >>> pool2d(X, (2, 2), (1, 1), mode="avg")[0, 0]
    array([[2., 3.],
           [5., 6.]])
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', not {mode!r}")
    xv = value_of(x)
    N, C, H, W = xv.shape
    kH, kW = window
    s_h, s_w = window if stride is None else stride
    top, _, left, _ = padding
    if mode == "max":
        fill = -np.inf if xv.dtype.kind == "f" else np.iinfo(xv.dtype).min
    else:
        fill = 0
    xp = _pad_hw(xv, padding, fill)
    Hp, Wp = xp.shape[2:]
    H_out, W_out = _output_size(Hp, Wp, kH, kW, s_h, s_w)
    offsets = _offsets(kH, kW, s_h, s_w, H_out, W_out)
    runs, row = _window_runs(xp, kH, kW, s_h, s_w)
    combine = np.maximum if mode == "max" else np.add
    combined = workspace.empty(runs[0].shape, runs[0].dtype)
    np.copyto(combined, runs[0])
    for run in runs[1:]:
        combine(combined, run, out=combined)
    out = combined if row is None else _pixels(combined, H_out, W_out, row)
    if mode == "avg":
        out = (
            np.divide(out, kH * kW, out=workspace.empty(out.shape, out.dtype))
            if out.dtype.kind == "f"
            else out / (kH * kW)
        )
    # Windows that tile the padded input (the frameworks' default stride, and a size the
    # window divides) write every input pixel's gradient exactly once: no zeros to add to.
    tiles = (s_h, s_w) == (kH, kW) and xp.shape[2:] == (kH * H_out, kW * W_out)

    def average_rule(g: np.ndarray) -> tuple[np.ndarray]:
        dxp = workspace.empty(xp.shape, dtype=g.dtype) if tiles else workspace.zeros(xp.shape, dtype=g.dtype)
        share = np.divide(g, kH * kW, out=workspace.scratch("elementwise", g.shape, g.dtype))
        for index in offsets:
            if tiles:
                dxp[index] = share
            else:
                dxp[index] += share
        return (dxp[:, :, top : top + H, left : left + W],)

    def maximum_rule(g: np.ndarray) -> tuple[np.ndarray]:
        # Each window's gradient goes to its first maximum, in the order of the offsets. Its
        # number in that order is how many offsets lead up to it: `unclaimed` is true while none
        # has matched yet, and adding it up offset by offset counts them (three light passes
        # per offset; a window whose maximum is NaN matches nowhere and counts len(offsets)).
        # (The flags are added as bytes: 0 or 1, the same values, without a cast per pass.)
        count = len(runs)
        unclaimed = np.not_equal(runs[0], combined).view(np.uint8)
        first = unclaimed.astype(np.min_scalar_type(count))
        differs = np.empty(combined.shape, dtype=bool)
        for run in runs[1:]:
            np.not_equal(run, combined, out=differs)
            unclaimed &= differs.view(np.uint8)
            first += unclaimed
        if row is not None:  # the real windows only
            sN, sC, sL = first.strides
            first = as_strided(first, (N, C, H_out, W_out), (sN, sC, row * sL, sL), writeable=False)
        # Then one scatter of every window's gradient onto its maximum's pixel, by flat index into
        # xp: the maximum's place in the window plus the window's first pixel. Overlapping windows
        # that share a maximum add up there (np.add.at adds repeated indices one by one).
        places = np.array([a * Wp + b for a in range(kH) for b in range(kW)] + [0], dtype=np.intp)
        flat = places[first]
        flat += np.arange(N * C, dtype=np.intp).reshape(N, C, 1, 1) * (Hp * Wp)
        flat += np.arange(H_out, dtype=np.intp).reshape(H_out, 1) * (s_h * Wp) + np.arange(W_out) * s_w
        if count in first:
            g = np.where(first == count, 0, g)  # NaN windows give no gradient
        dxp = workspace.zeros(xp.shape, dtype=g.dtype)
        np.add.at(dxp.reshape(-1), flat.reshape(-1), g.reshape(-1))
        return (dxp[:, :, top : top + H, left : left + W],)

    return record(out, (x,), maximum_rule if mode == "max" else average_rule)


# Differentiating a function --------------------------------------------------------------------------------------


def _leaf(value: Any) -> Tensor:
    # Tensor(value, requires_grad=True), without __init__'s conversions for the common float array.
    if type(value) is not np.ndarray or value.dtype.kind != "f":
        return Tensor(value, requires_grad=True)
    return _tensor(value, (), None)


def value_and_grad(f: Callable[..., Any], *args: Any) -> tuple[float, list[np.ndarray | None]]:
    """``f(*args)`` and its gradient with respect to each argument.

    Every ndarray, float or Tensor argument is passed to ``f`` as a fresh leaf
    ``Tensor(..., requires_grad=True)``; other arguments (ints, tuples, ...) are
    passed as they are and get no gradient.

    Returns
    -------
    value : float
        ``f(*args)``, which must be a scalar (size-1) Tensor.
    grads : list
        One gradient per argument, with its shape and dtype; None where the value does
        not depend on that argument (no path in the graph), which is not the same as zero.

    >>> value, (gx,) = value_and_grad(lambda x: (x**2).sum(), np.array([1.0, -2.0]))
    >>> value, gx
    (5.0, array([ 2., -4.]))
    """
    leaves = [_leaf(a) if isinstance(a, (np.ndarray, np.floating, float, Tensor)) else a for a in args]
    out = f(*leaves)
    if not isinstance(out, Tensor):
        hint = ""
        if isinstance(out, np.ndarray):
            hint = (
                ": the graph was lost on the way (was a Tensor written into a NumPy array,"
                " or passed through a NumPy function instead of this module's?)"
            )
        raise TypeError(f"f must return a scalar Tensor, but returned {type(out).__name__}{hint}")
    if out.data.size != 1:
        raise ValueError(f"f must return a scalar Tensor, but returned one of shape {out.shape}")
    out.backward()
    grads = [None if leaf is arg else leaf.grad for leaf, arg in zip(leaves, args, strict=True)]
    return float(out.data.item()), grads

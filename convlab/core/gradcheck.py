"""Checking a backend's gradients against central finite differences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Tensor
from convlab.core.checks import check_positive
from convlab.core.convert import as_real_array
from convlab.core.registry import get_backend


@export
class GradcheckError(AssertionError):
    """A backend's gradient disagrees with finite differences; says which input and element."""

    def __init__(self, message: str, result: GradcheckResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Mismatch:
    """The worst disagreement of one input."""

    input: int
    index: tuple[int, ...]
    analytic: float
    numeric: float

    def __str__(self) -> str:
        return (
            f"input {self.input}, element {self.index}: the backend's gradient is {self.analytic:.6g}, "
            f"finite differences give {self.numeric:.6g}"
        )


@export
@dataclass
class GradcheckResult:
    """What :func:`gradcheck` compared."""

    backend: str
    value: float
    """``f(*inputs)``."""
    analytic: list[np.ndarray | None]
    """The backend's gradient per input (``None``: it reported none)."""
    numeric: list[np.ndarray] = field(repr=False)
    """Central finite differences per input, in float64."""
    mismatches: list[Mismatch]
    """The worst element of every input outside the tolerance; empty when the check passed."""

    @property
    def passed(self) -> bool:
        return not self.mismatches


@export(pinned=True)
def gradcheck(
    f: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-3,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> GradcheckResult:
    """Compare the active backend's gradient of ``f`` with central finite differences.

    ``f`` takes one tensor of the active backend per input and returns a
    scalar tensor. Its gradient comes from the backend's autograd (convlab's
    own on NumPy); each element of each input is then nudged by ``±eps`` and
    ``(f(x + eps) - f(x - eps)) / (2 eps)`` is formed in float64. Inputs are
    passed to ``f`` in float64 where the framework has it (NumPy, PyTorch,
    TensorFlow, MXNet, and JAX with x64 switched on for the call), which makes
    the finite differences exact to about ``eps**2`` as long as ``f`` calls
    the backend's primitives directly. convlab's chapter functions
    (``cl.corr2d``...) make float32 tensors on the framework backends (NumPy
    keeps float64 while differentiating), so check them with a larger ``eps``
    and tolerances, as the defaults are.

    Parameters
    ----------
    f : callable
        ``f(*tensors) -> scalar tensor``, written with the backend's operators
        or convlab functions.
    *inputs : array_like
        The point at which to differentiate.
    eps : float
        The finite-difference step.
    atol, rtol : float
        An element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
    raise_exception : bool
        Raise :class:`GradcheckError` on a mismatch (default), or return the result.

    Returns
    -------
    GradcheckResult

    Raises
    ------
    GradcheckError
        A gradient element is outside the tolerance (or missing where
        finite differences are not zero); the message names the input and element.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> backend = cl.get_backend()
    >>> X, K = cl.data.fig_correlation()
    >>> loss = lambda x, k: backend.sum(backend.conv2d(x, k, (1, 1), (0, 0, 0, 0), 1) ** 2)
    >>> cl.gradcheck(loss, X[None, None], K[None, None]).passed
    True
    """
    check_positive(eps, "eps")
    for value, name in ((atol, "atol"), (rtol, "rtol")):
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
    if not callable(f):
        raise TypeError(f"f: expected a function of {len(inputs)} tensors, got {type(f).__name__}")
    if not inputs:
        raise ValueError("inputs: expected at least one array to differentiate with respect to, got none")
    backend = get_backend()
    points = [as_real_array(x, f"inputs[{i}]").astype(np.float64) for i, x in enumerate(inputs)]
    value, analytic = backend.grad(f, *points)
    numeric = []
    for i, point in enumerate(points):
        slope = np.zeros_like(point)
        for index in np.ndindex(point.shape):
            nudged = list(points)
            up, down = point.copy(), point.copy()
            up[index] += eps
            down[index] -= eps
            nudged[i] = up
            f_up = backend.grad(f, *nudged)[0]
            nudged[i] = down
            f_down = backend.grad(f, *nudged)[0]
            slope[index] = (f_up - f_down) / (2 * eps)
        numeric.append(slope)
    mismatches = []
    for i, (got, expected) in enumerate(zip(analytic, numeric, strict=True)):
        got64 = np.zeros_like(expected) if got is None else np.asarray(got, np.float64).reshape(expected.shape)
        excess = np.abs(got64 - expected) - (atol + rtol * np.abs(expected))
        if excess.size and excess.max() > 0:
            index = tuple(int(n) for n in np.unravel_index(int(excess.argmax()), expected.shape))
            mismatches.append(Mismatch(i, index, float(got64[index]), float(expected[index])))
    result = GradcheckResult(backend.name, float(value), analytic, numeric, mismatches)
    if mismatches and raise_exception:
        missing = [str(m.input) for m in mismatches if analytic[m.input] is None]
        note = f" (the backend returned no gradient for input {', '.join(missing)})" if missing else ""
        raise GradcheckError(
            f"gradcheck on {backend.name}: {'; '.join(map(str, mismatches))}{note} "
            f"(tolerance: atol={atol:g} + rtol={rtol:g} * |numeric|, eps={eps:g})",
            result,
        )
    return result

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
from convlab.core.registry import active_choice, get_backend, use_backend

DEFAULTS = {"float64": (1e-5, 1e-8, 1e-6), "float32": (1e-2, 1e-2, 1e-2)}
"""``(eps, atol, rtol)`` by the precision gradcheck computes in.

In float64, central differences err by about ``eps**2 |f'''| / 6`` (truncation)
plus ``1e-16 |f| / eps`` (rounding). On the chapter's functions (``corr2d``,
conv and pooling layers, ``Linear`` and ``Sigmoid``, a small LeNet, ``Conv2D``)
and every backend, ``eps = 1e-5`` kept the worst element within 1.4% of the
tolerance ``atol + rtol * |numeric|`` (absolute errors below 7e-10), where
``eps = 1e-6`` used up to 13% of it, its rounding term ten times larger. A
gradient 1% off exceeds that tolerance ten-thousandfold. In float32 (a
backend without float64) the rounding term is ``6e-8 |f| / eps``: the step
grows to 1e-2 and the tolerances to 1%.
"""


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
    precision: str = "float64"
    """The dtype ``f`` and the finite differences were computed in.

    ``"float64"``, or ``"float32"`` on a backend that cannot compute in float64,
    where the default step and tolerances are float32's (:data:`DEFAULTS`).

    Examples
    --------
    >>> import convlab as cl
    >>> cl.gradcheck(lambda x: cl.get_backend().sum(x * x), [1.0, 2.0]).precision
    'float64'
    """

    @property
    def passed(self) -> bool:
        return not self.mismatches


@export(pinned=True)
def gradcheck(
    f: Callable[..., Tensor],
    *inputs: Any,
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    raise_exception: bool = True,
) -> GradcheckResult:
    """Compare the active backend's gradient of ``f`` with central finite differences, in float64.

    ``f`` takes one tensor of the active backend per input and returns a
    scalar tensor. Its gradient comes from the backend's autograd (convlab's
    own on NumPy); each element of each input is then nudged by ``±eps`` and
    ``(f(x + eps) - f(x - eps)) / (2 eps)`` is formed. Both run inside
    ``use_backend(<active backend>, device=<its device>, dtype="float64")``
    with float64 inputs: tensors ``f`` closes over (``cl.tensor`` made
    earlier, in float32) are promoted where convlab's functions convert them,
    and ``cl.nn`` layers made in float32 compute in float64, so float32
    rounding neither raises false alarms nor hides a wrong gradient. A
    backend that cannot compute in float64 is checked in float32, with a
    step and tolerances to match, and the result says so (``precision``).
    A tensor made earlier that ``f`` uses with the framework's own operators
    stays float32: pass it through ``cl.tensor`` in ``f`` (TensorFlow
    refuses to mix float32 with float64).

    Parameters
    ----------
    f : callable
        ``f(*tensors) -> scalar tensor``, written with the backend's operators
        or convlab functions.
    *inputs : array_like
        The point at which to differentiate.
    eps : float, optional
        The finite-difference step; default 1e-5 in float64, 1e-2 in float32 (:data:`DEFAULTS`).
    atol, rtol : float, optional
        An element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``;
        default ``atol=1e-8, rtol=1e-6`` in float64, 1e-2 both in float32.
    raise_exception : bool
        Raise :class:`GradcheckError` on a mismatch (default), or return the result.

    Returns
    -------
    GradcheckResult
        What was compared; its ``precision`` names the dtype used.

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
    >>> conv = cl.nn.Conv2d(1, 1, 2, seed=0)  # float32 parameters, checked in float64
    >>> cl.gradcheck(lambda x: backend.sum(conv(x) ** 2), X[None, None]).precision
    'float64'
    """
    precision = "float64" if "float64" in get_backend().dtypes else "float32"
    given = (eps, atol, rtol)
    eps, atol, rtol = (DEFAULTS[precision][i] if given[i] is None else given[i] for i in range(3))
    check_positive(eps, "eps")
    for value, label in ((atol, "atol"), (rtol, "rtol")):
        if not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{label}: expected a non-negative number, got {value!r}")
    if not callable(f):
        raise TypeError(f"f: expected a function of {len(inputs)} tensors, got {type(f).__name__}")
    if not inputs:
        raise ValueError("inputs: expected at least one array to differentiate with respect to, got none")
    points = [as_real_array(x, f"inputs[{i}]", np.float64) for i, x in enumerate(inputs)]
    name, device, _ = active_choice()
    with use_backend(name, device, precision) as backend:
        return _compare(backend, f, points, (eps, atol, rtol), raise_exception, precision)


def _compare(
    backend: Any,
    f: Callable[..., Tensor],
    points: list[np.ndarray],
    steps: tuple[float, float, float],
    raise_exception: bool,
    precision: str,
) -> GradcheckResult:
    """:func:`gradcheck`'s comparison, on ``backend`` (already active), with ``(eps, atol, rtol)``."""
    eps, atol, rtol = steps
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
    result = GradcheckResult(backend.name, float(value), analytic, numeric, mismatches, precision)
    if mismatches and raise_exception:
        missing = [str(m.input) for m in mismatches if analytic[m.input] is None]
        note = f" (the backend returned no gradient for input {', '.join(missing)})" if missing else ""
        raise GradcheckError(
            f"gradcheck on {backend.name}: {'; '.join(map(str, mismatches))}{note} "
            f"(tolerance: atol={atol:g} + rtol={rtol:g} * |numeric|, eps={eps:g}, in {precision})",
            result,
        )
    return result

"""Exercise 2 of the chapter: what happens when autograd meets the book's loop layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convlab._api import export
from convlab.chapter.kernels import edge
from convlab.core.convert import to_numpy
from convlab.core.ops import corr2d_on
from convlab.core.registry import get_backend
from convlab.data import edge_image
from convlab.nn.handwritten import HandWrittenConv2dDef
from convlab.nn.losses import SquaredError
from convlab.train.kernel import design_matrix


@dataclass
class AutogradOutcome:
    """What the active framework did when asked to differentiate the loop layer."""

    backend: str
    outcome: str
    """``"gradient"`` (correct gradients came back), ``"no gradient"``
    (the framework silently returned none for some parameter) or ``"error"``."""
    detail: str
    """The error's type and message, or which gradients were missing or wrong."""
    gradients: dict[str, np.ndarray | None] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.backend}: {self.outcome}: {self.detail}"


@export(pinned=True)
def autograd_exercise() -> AutogradOutcome:
    """Differentiate a ``Conv2D`` whose forward pass is the book's loop ``corr2d``.

    Builds the hand-written layer with ``method="loop"`` on the edge image,
    asks the active framework for the gradient of the summed squared error
    and reports what really happens. Correct gradients are checked against
    the exact ones, ``2 A^T (A p - y)`` from the layer's design matrix.

    Examples
    --------
    >>> import convlab as cl
    >>> print(cl.autograd_exercise())
    numpy: no gradient: no gradient for weight (the framework returned None, without an error)
    """
    backend = get_backend()
    X = edge_image()
    Y = to_numpy(corr2d_on(backend, X, edge()))
    weight = np.array([[0.5, -0.25]], dtype=np.float32)
    bias = np.zeros((1,), dtype=np.float32)
    layer = backend.module(HandWrittenConv2dDef("loop"), {"weight": weight, "bias": bias})
    try:
        _, grads = backend.value_and_grad(layer, backend.tensor(X), backend.tensor(Y), SquaredError(backend))
    except Exception as exc:
        return AutogradOutcome(backend.name, "error", f"{type(exc).__name__}: {exc}".strip())

    gradients = {name: None if g is None else to_numpy(g).astype(np.float32) for name, g in grads.items()}
    missing = [name for name, g in gradients.items() if g is None]
    if missing:
        detail = f"no gradient for {', '.join(missing)} (the framework returned None, without an error)"
        return AutogradOutcome(backend.name, "no gradient", detail, gradients)

    A = design_matrix(X, (1, 2), bias=True)
    exact = 2 * A.T @ (A @ np.concatenate([weight.ravel(), bias]) - Y.ravel())
    got = np.concatenate([gradients["weight"].ravel(), gradients["bias"].ravel()])
    if not np.allclose(got, exact, rtol=1e-4, atol=1e-4):
        return AutogradOutcome(backend.name, "error", f"wrong gradients {got} (exact: {exact})", gradients)
    return AutogradOutcome(backend.name, "gradient", "gradients match the exact ones", gradients)

"""Learning a kernel from input/output pairs, as the chapter does."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlab._api import export
from convlab.core.checks import check_choice, check_fits, check_kernel_size, check_matrix, check_positive
from convlab.core.convert import as_native, to_numpy
from convlab.core.registry import get_backend
from convlab.errors import DivergenceError
from convlab.nn.handwritten import INITS, HandWrittenConv2dDef, initial_weights
from convlab.nn.losses import HalfMeanSquaredError, SquaredError

LAYERS = ("builtin", "custom")
LOSSES = {"squared": SquaredError, "l2": HalfMeanSquaredError}
"""``"squared"``: the book's squared error summed over all outputs; ``"l2"``: the Java edition's half mean."""


@export
@dataclass
class TrainResult:
    """What :func:`train_kernel` learned and how the loss went."""

    losses: list[float]
    """The loss of every iteration, computed before that iteration's update."""
    kernel: np.ndarray
    """The learned kernel, shape ``kernel_size``."""
    bias: float | None
    """The learned bias (``layer="custom"``), else ``None``."""
    max_stable_lr: float
    """``2 / lambda_max`` of the loss's Hessian; larger learning rates diverge."""
    backend: str
    """The backend that trained."""
    layer: Any = field(repr=False, default=None)
    """The trained layer (a module of the backend's framework)."""


def design_matrix(X: np.ndarray, kernel_size: tuple[int, int], bias: bool) -> np.ndarray:
    """``A`` with ``A @ params == (corr2d(X, weight) + bias).ravel()``, ``params = [weight.ravel(), bias]``."""
    kh, kw = kernel_size
    out_h, out_w = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    columns = [X[a : a + out_h, b : b + out_w].ravel() for a in range(kh) for b in range(kw)]
    if bias:
        columns.append(np.ones(out_h * out_w))
    return np.stack(columns, axis=1).astype(np.float64)


@export(pinned=True)
def max_stable_lr(X: Any, kernel_size: Any, bias: bool = False, loss: str = "squared") -> float:
    """The largest learning rate at which SGD on the chapter's loss converges.

    The summed squared error ``||A p - y||^2`` is quadratic in the parameters
    ``p``, with Hessian ``H = 2 A^T A``; plain gradient descent converges iff
    ``lr < 2 / lambda_max(H)``. The Java edition's ``loss="l2"``,
    ``||A p - y||^2 / (2 n)`` over ``n`` outputs, has ``H = A^T A / n``: the
    same step at ``2 n`` times the learning rate.

    Examples
    --------
    >>> import convlab as cl
    >>> round(cl.max_stable_lr(cl.data.edge_image(), (1, 2)), 4)
    0.0333
    """
    X = to_numpy(as_native(X, "X", get_backend())).astype(np.float32, copy=False)
    size = check_kernel_size(kernel_size)
    check_matrix(X.shape, "X")
    check_fits(X.shape, size, "kernel_size")
    check_choice(loss, "loss", tuple(LOSSES))
    outputs = (X.shape[0] - size[0] + 1) * (X.shape[1] - size[1] + 1)
    scale = 2.0 if loss == "squared" else 1.0 / outputs
    lambda_max = float(np.linalg.eigvalsh(scale * _gram(X, size, bias))[-1])
    return math.inf if lambda_max == 0 else 2 / lambda_max


def _gram(X: np.ndarray, kernel_size: tuple[int, int], bias: bool) -> np.ndarray:
    """``A^T A`` of :func:`design_matrix`, from dot products of shifted views (``A`` itself is never built)."""
    kh, kw = kernel_size
    out_h, out_w = X.shape[0] - kh + 1, X.shape[1] - kw + 1
    columns = [X[a : a + out_h, b : b + out_w] for a in range(kh) for b in range(kw)]
    if bias:
        columns.append(np.ones((out_h, out_w), np.float32))
    n = len(columns)
    G = np.empty((n, n))
    for p in range(n):
        for q in range(p, n):
            G[p, q] = G[q, p] = np.einsum("ij,ij->", columns[p], columns[q], dtype=np.float64)
    return G


def _diverging(losses: list[float]) -> bool:
    # Below the bound, gradient descent on a convex quadratic never raises the
    # loss, so a loss above its start that rose twice in a row has left it.
    if not math.isfinite(losses[-1]):
        return True
    return len(losses) >= 3 and losses[-1] > losses[-2] > losses[-3] and losses[-1] > losses[0]


@export(pinned=True)
def train_kernel(
    X: Any,
    Y: Any,
    kernel_size: Any = (1, 2),
    lr: float = 3e-2,
    num_epochs: int = 10,
    log_every: int = 2,
    layer: str = "builtin",
    init: str = "zeros",
    seed: int | None = None,
    verbose: bool = True,
    *,
    loss: str = "squared",
    init_std: float = 1.0,
) -> TrainResult:
    """Learn the kernel that maps ``X`` to ``Y`` by plain SGD, as the chapter does.

    Each iteration computes the squared error summed over all outputs,
    differentiates it with the active framework's autograd (convlab's own
    on NumPy) and takes one gradient step on the whole image.

    Parameters
    ----------
    X, Y : array_like
        Input image and target map, ``Y.shape == (n_h - k_h + 1, n_w - k_w + 1)``.
    kernel_size : (int, int)
        Shape of the kernel to learn.
    lr : float
        Learning rate, positive.
    num_epochs : int
        Number of iterations (each sees the whole image once).
    log_every : int
        Print ``epoch i, loss l`` every ``log_every`` iterations.
    layer : {"builtin", "custom"}
        ``"builtin"``: the framework's own conv layer without bias, as the
        book trains; ``"custom"``: the hand-written :func:`convlab.Conv2D`
        with bias.
    init : {"zeros", "normal", "framework"}
        Initial weights; ``"zeros"`` and ``"normal"`` (with ``seed``) are the
        same on every backend, ``"framework"`` is the framework's default.
    seed : int, optional
        Seed for ``init="normal"``.
    verbose : bool
        Print the log.
    loss : {"squared", "l2"}
        ``"squared"``: the book's squared error summed over all outputs;
        ``"l2"``: half the mean squared error, DJL's ``Loss.l2Loss()``, as the
        book's Java edition trains (with ``lr=0.4``: see :func:`max_stable_lr`
        for why that is a small step).
    init_std : float
        Standard deviation of ``init="normal"`` (the Java edition's
        ``NormalInitializer`` uses 0.01).

    Returns
    -------
    TrainResult

    Raises
    ------
    DivergenceError
        If the loss becomes non-finite or keeps growing; the message gives
        :func:`max_stable_lr`.

    Examples
    --------
    >>> import convlab as cl
    >>> X = cl.data.edge_image()
    >>> Y = cl.corr2d(X, cl.kernels.edge())
    >>> result = cl.train_kernel(X, Y, lr=3e-2, num_epochs=10)
    epoch 2, loss 4.915
    epoch 4, loss 0.825
    epoch 6, loss 0.138
    epoch 8, loss 0.023
    epoch 10, loss 0.004
    >>> result.kernel.round(3)
    array([[ 0.988, -0.988]], dtype=float32)
    """
    size = check_kernel_size(kernel_size)
    check_positive(lr, "lr")
    check_positive(num_epochs, "num_epochs", integer=True)
    check_positive(log_every, "log_every", integer=True)
    check_choice(layer, "layer", LAYERS)
    check_choice(init, "init", INITS)
    check_choice(loss, "loss", tuple(LOSSES))
    check_positive(init_std, "init_std")
    backend = get_backend()
    X_native, Y_native = as_native(X, "X", backend), as_native(Y, "Y", backend)
    x_shape, y_shape = tuple(X_native.shape), tuple(Y_native.shape)
    check_matrix(x_shape, "X")
    check_fits(x_shape, size, "kernel_size")
    expected = (x_shape[0] - size[0] + 1, x_shape[1] - size[1] + 1)
    if y_shape != expected:
        raise ValueError(
            f"Y: expected shape {expected} (X {x_shape} cross-correlated with a {size} kernel), got {y_shape}"
        )

    use_bias = layer == "custom"
    inputs, targets = X_native, Y_native
    if use_bias:
        initial = initial_weights(size, True, init, seed, backend, init_std)
        model = backend.module(HandWrittenConv2dDef("vectorized"), initial)
    else:  # the framework's own layer keeps its own initialiser for init="framework"
        initial = None if init == "framework" else initial_weights(size, False, init, seed, backend, init_std)
        model = backend.builtin_conv2d(size, None if initial is None else initial["weight"])
        # It takes one NCHW image of one channel: reshaped once, before the loop, as the book does.
        inputs, targets = backend.reshape(X_native, (1, 1, *x_shape)), backend.reshape(Y_native, (1, 1, *y_shape))
    bound = max_stable_lr(backend.to_numpy(X_native), size, bias=use_bias, loss=loss)
    objective = LOSSES[loss](backend)

    losses: list[float] = []
    for epoch in range(1, num_epochs + 1):
        value, grads = backend.value_and_grad(model, inputs, targets, objective)
        losses.append(value)
        if _diverging(losses):
            cause = (
                f"lr={lr:g} is above the largest stable learning rate {bound:.4g} "
                f"(2 / largest eigenvalue of the loss's Hessian) for this X and layer"
                if lr >= bound
                else f"lr={lr:g} is below the largest stable learning rate {bound:.4g}, so the data is to blame: "
                "non-finite values in X or Y, or values too large for float32"
            )
            raise DivergenceError(
                f"training diverged at epoch {epoch}: loss {value:.4g} (started at {losses[0]:.4g}); {cause}",
                lr=lr,
                max_stable_lr=bound,
            )
        missing = [name for name, grad in grads.items() if grad is None]
        if missing:
            raise RuntimeError(f"the {backend.name} backend returned no gradient for {', '.join(missing)}")
        backend.sgd_update(model, grads, lr)
        if verbose and epoch % log_every == 0:
            print(f"epoch {epoch}, loss {value:.3f}")

    params = {name: to_numpy(value) for name, value in backend.parameters(model).items()}
    kernel = params["weight"].astype(np.float32).reshape(size)
    learned_bias = float(params["bias"].reshape(-1)[0]) if "bias" in params else None
    return TrainResult(losses, kernel, learned_bias, bound, backend.name, model)

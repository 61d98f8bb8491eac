"""Parity: every installed backend computes what a float64 oracle, NumPy and every other backend compute.

Each *check* runs the same computation, from the same NumPy inputs, on every
backend and brings the result back to NumPy. Its *oracle* computes the same
thing independently of convlab's code, in float64 with plain NumPy (a sliding
window and a sum; gradient descent written out), so the NumPy backend is held
to something other than itself. A backend's deviation is its largest
difference from a result, scaled by the result's size
(``max|a - b| / max(1, max|b|)``; for loss traces, relative per iteration).
The check passes when the deviations from the oracle, from the NumPy backend
and from every other backend all stay within the check's tolerance.

Tolerances are float32-level: ``1e-5`` for one cross-correlation of
standard-normal data (sums of at most 25 products), ``1e-4`` for gradients,
loss traces and learned kernels, which accumulate rounding over iterations.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

import convlab as cl
from convlab._text import table
from convlab.core.checks import check_output_file
from convlab.core.registry import DEFAULT, backend_names, canonical_name, load_backend, use_backend
from convlab.errors import BackendLoadOrderError, BackendNotInstalledError
from convlab.nn.losses import SquaredError

REFERENCE = DEFAULT
"""The backend every other is compared with: the built-in NumPy one."""
SHAPES = [((5, 7), (2, 3)), ((9, 9), (3, 3)), ((6, 8), (1, 2)), ((12, 10), (5, 4)), ((4, 4), (4, 4))]
SEEDS = (0, 1, 2)


@dataclass
class Check:
    """One computation compared across backends."""

    name: str
    tolerance: float
    run: Callable[[], list[np.ndarray]]
    oracle: Callable[[], list[np.ndarray]]
    """The same results in float64, computed without convlab."""
    relative: bool = False
    """Compare element-wise relative to the reference (loss traces)."""


@dataclass
class Row:
    """A backend's result on one check."""

    backend: str
    check: str
    vs_numpy: float
    """For ``train framework init``: the learned kernel's distance from ``[1, -1]``."""
    vs_others: float | None
    """``None`` where backends are not meant to agree (their own initialisers)."""
    tolerance: float
    passed: bool
    vs_oracle: float | None = None
    """The deviation from the float64 oracle (``None`` where there is none: the frameworks' own initialisers)."""


def _random_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2024)
    return [(rng.standard_normal(x).astype(np.float32), rng.standard_normal(k).astype(np.float32)) for x, k in SHAPES]


def _corr2d_check(method: str, strict: bool = False) -> Callable[[], list[np.ndarray]]:
    operation = cl.conv2d if strict else cl.corr2d
    return lambda: [cl.to_numpy(operation(X, K, method=method)) for X, K in _random_pairs()]


def _correlate64(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The oracle's cross-correlation: every window of ``X``, times ``K``, summed, in float64."""
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(X, np.float64), K.shape)
    return np.einsum("ijab,ab->ij", windows, np.asarray(K, np.float64))


def _corr2d_oracle(strict: bool = False) -> Callable[[], list[np.ndarray]]:
    return lambda: [_correlate64(X, K[::-1, ::-1] if strict else K) for X, K in _random_pairs()]


def _layer_targets(seed: int, X: np.ndarray, K: np.ndarray) -> np.ndarray:
    shape = (X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)
    return np.random.default_rng(seed).standard_normal(shape)


def _layer_oracle() -> list[np.ndarray]:
    """The layer ``corr2d(X, W) + b`` (``W`` drawn as ``init="normal"`` draws it, ``b = 0``), its loss and gradients."""
    outputs = []
    for seed, (X, K) in enumerate(_random_pairs()):
        weight = np.random.default_rng(seed).standard_normal(K.shape).astype(np.float32).astype(np.float64)
        Y_hat = _correlate64(X, weight)
        residual = Y_hat - _layer_targets(seed, X, K).astype(np.float32)
        outputs += [
            Y_hat,
            np.array([np.sum(residual**2)]),
            _correlate64(X, 2 * residual),
            np.array([2 * residual.sum()]),
        ]
    return outputs


def _layer_check() -> list[np.ndarray]:
    backend = cl.get_backend()
    outputs = []
    for seed, (X, K) in enumerate(_random_pairs()):
        layer = cl.Conv2D(kernel_size=K.shape, bias=True, init="normal", seed=seed)
        Y = _layer_targets(seed, X, K)
        value, grads = backend.value_and_grad(layer, cl.tensor(X), cl.tensor(Y), SquaredError(backend))
        outputs += [
            cl.to_numpy(layer(cl.tensor(X))),
            np.array([value]),
            cl.to_numpy(grads["weight"]),
            cl.to_numpy(grads["bias"]).reshape(1),
        ]
    return outputs


def _training_setting(layer: str) -> tuple[np.ndarray, np.ndarray, float]:
    X = cl.data.edge_image()
    Y = np.asarray(_correlate64(X, cl.kernels.edge()), np.float32)
    # The custom layer (with bias) diverges at the book's lr; stay below its bound.
    lr = 3e-2 if layer == "builtin" else 0.9 * cl.max_stable_lr(X, (1, 2), bias=True)
    return X, Y, lr


def _training_check(layer: str, init: str) -> Callable[[], list[np.ndarray]]:
    def run() -> list[np.ndarray]:
        X, Y, lr = _training_setting(layer)
        outputs = []
        for seed in SEEDS if init == "normal" else (None,):
            result = cl.train_kernel(X, Y, lr=lr, num_epochs=10, layer=layer, init=init, seed=seed, verbose=False)
            outputs += [np.array(result.losses), result.kernel]
        return outputs

    return run


def _training_oracle(layer: str, init: str) -> Callable[[], list[np.ndarray]]:
    """Gradient descent on the summed squared error in float64: the loss before each step, and the kernel."""

    def run() -> list[np.ndarray]:
        X, Y, lr = _training_setting(layer)
        X, Y = X.astype(np.float64), Y.astype(np.float64)
        outputs = []
        for seed in SEEDS if init == "normal" else (None,):
            zero = np.zeros((1, 2))
            weight = zero if init == "zeros" else np.random.default_rng(seed).standard_normal((1, 2))
            weight, bias, losses = weight.astype(np.float32).astype(np.float64), 0.0, []
            for _ in range(10):
                residual = _correlate64(X, weight) + bias - Y
                losses.append(np.sum(residual**2))
                weight = weight - lr * _correlate64(X, 2 * residual)
                bias = bias - lr * 2 * residual.sum() if layer == "custom" else 0.0
            outputs += [np.array(losses), weight]
        return outputs

    return run


def _framework_init_check() -> list[np.ndarray]:
    """With each framework's own initialiser the runs differ, but all land near [1, -1]."""
    X = cl.data.edge_image()
    result = cl.train_kernel(X, cl.corr2d(X, cl.kernels.edge()), init="framework", num_epochs=60, verbose=False)
    return [result.kernel - np.array([[1.0, -1.0]], np.float32)]


def checks() -> list[Check]:
    """Every parity check, in report order."""
    methods = ("loop", "vectorized", "native", "auto")
    found = [Check(f"corr2d {m}", 1e-5, _corr2d_check(m), _corr2d_oracle()) for m in methods]
    found += [
        Check("conv2d auto", 1e-5, _corr2d_check("auto", strict=True), _corr2d_oracle(strict=True)),
        Check("Conv2D forward+grad", 1e-4, _layer_check, _layer_oracle),
    ]
    for layer, init in (("builtin", "zeros"), ("builtin", "normal"), ("custom", "normal")):
        train, oracle = _training_check(layer, init), _training_oracle(layer, init)
        found.append(Check(f"train {layer} {init}", 1e-4, train, oracle, relative=True))
    return found


def deviation(got: list[np.ndarray], want: list[np.ndarray], relative: bool) -> float:
    """The largest scaled difference between two lists of arrays."""
    worst = 0.0
    for a, b in zip(got, want, strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return float("inf")
        scale = np.maximum(np.abs(b), 1e-6) if relative else max(1.0, float(np.abs(b).max(initial=0)))
        worst = max(worst, float(np.max(np.abs(a - b) / scale, initial=0)))
    return worst


def installed(names: Iterable[str] | None = None) -> list[str]:
    """The requested (default: all) backends whose framework imports here."""
    found = []
    for name in names or backend_names():
        try:
            found.append(load_backend(name).name)
        except (BackendNotInstalledError, BackendLoadOrderError):
            continue
    return found


def run_parity(backends: Iterable[str] | None = None) -> list[Row]:
    """Run every check on every installed backend (NumPy always included) and compare."""
    names = installed(backends)
    if REFERENCE not in names:
        names.insert(0, REFERENCE)
    rows = []
    for check in checks():
        oracle = check.oracle()
        results = {}
        for name in names:
            with use_backend(name):
                results[name] = check.run()
        for name in names:
            vs_oracle = deviation(results[name], oracle, check.relative)
            vs_numpy = deviation(results[name], results[REFERENCE], check.relative)
            others = [deviation(results[name], results[o], check.relative) for o in names if o != name]
            vs_others = max(others, default=0.0)
            passed = max(vs_oracle, vs_numpy, vs_others) <= check.tolerance
            rows.append(Row(name, check.name, vs_numpy, vs_others, check.tolerance, passed, vs_oracle))
    for name in names:  # own initialisers: no common reference, each must learn the edge kernel
        with use_backend(name):
            offset = float(np.abs(_framework_init_check()[0]).max())
        rows.append(Row(name, "train framework init", offset, None, 2e-2, offset <= 2e-2))
    return rows


def format_table(rows: list[Row]) -> str:
    """Backend x check -> largest deviation (from the float64 oracle, NumPy or any other backend), ok or FAIL.

    For "train framework init" the number is the learned kernel's distance from ``[1, -1]``.
    """
    names = list(dict.fromkeys(row.backend for row in rows))
    check_names = list(dict.fromkeys(row.check for row in rows))
    cell = {(r.backend, r.check): r for r in rows}
    header = ["check", "tolerance", *names]
    lines = [header]
    for check in check_names:
        first = next(r for r in rows if r.check == check)
        line = [check, f"{first.tolerance:.0e}"]
        for name in names:
            r = cell[(name, check)]
            worst = r.vs_numpy if r.vs_others is None else max(r.vs_numpy, r.vs_others, r.vs_oracle or 0.0)
            line.append(f"{worst:.1e} {'ok' if r.passed else 'FAIL'}")
        lines.append(line)
    return table(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``convlab parity`` options."""
    parser.add_argument("--backends", nargs="+", default=None, help="backends to compare (default: all installed)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON ('-' for stdout only)")


def main(args: argparse.Namespace) -> int:
    """``convlab parity``: print the table; exit 1 if any check fails."""
    for name in args.backends or ():
        canonical_name(name)  # an unknown name is refused before any work, listing the known ones
    check_output_file(args.json, "--json")
    rows = run_parity(args.backends)
    if args.json == "-":
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print(format_table(rows))
        if args.json:
            with open(args.json, "w") as f:
                json.dump([asdict(r) for r in rows], f, indent=1)
    failed = [f"{r.backend}: {r.check}" for r in rows if not r.passed]
    if failed:
        print(f"parity FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0

"""What ``convlab bench`` measures, each measurement on the backends it is given.

* :func:`time_corr2d`: ``corr2d`` with each method on square images of
  several sizes and kernels, beside the memory floor (copying the NumPy input
  once). Every backend's ``vectorized``, ``native`` and ``auto`` and the floor
  at one image and kernel size are sampled side by side; the book's loop is
  timed alone, and only while one call stays within a time budget;
* :func:`time_training`: ``train_kernel`` per iteration, side by side with the
  book's loop for the same framework (the ``book_train_kernel`` of the
  backend's reference module,
  :meth:`ReferenceModule.book_train_kernel <convlab.backends.reference.ReferenceModule.book_train_kernel>`;
  "not provided" without one);
* :func:`time_imports`: ``import convlab`` against ``import numpy``, each in a
  fresh process;
* :func:`measure_memory`: the peak extra memory of NumPy's ``vectorized`` path.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab import data
from convlab.backends.base import Backend, Pair
from convlab.backends.reference import reference_function
from convlab.bench.limits import TARGETS
from convlab.bench.timing import Comparison, Progress, measure, measure_side_by_side
from convlab.chapter import kernels
from convlab.core.ops import corr2d_on
from convlab.core.registry import backend_names, canonical_name, load_backend, use_backend
from convlab.errors import BackendLoadOrderError, BackendNotInstalledError
from convlab.train.kernel import max_stable_lr, train_kernel

METHODS = ("loop", "vectorized", "native", "auto")
"""The ``corr2d`` methods timed, in the report's order."""

DEFAULT_SIZES = (32, 64, 128, 512, 1024, 2048)
"""Square image sizes ``n`` (``n x n``) for ``corr2d``."""

DEFAULT_KERNELS = (2, 3, 5)
"""Square kernel sizes for ``corr2d``."""


def load_backends(names: Sequence[str] | None, progress: Progress) -> tuple[dict[str, Backend], dict[str, str]]:
    """The backends to time, by name (default: every backend the registry knows), and those skipped.

    Returns
    -------
    (dict, dict)
        The loaded backends in the requested order, and the reason each one
        not installed was skipped.
    """
    requested = [canonical_name(name) for name in (names or backend_names())]
    loaded, skipped = {}, {}
    for name in requested:
        try:
            loaded[name] = load_backend(name)
        except BackendNotInstalledError as exc:
            skipped[name] = str(exc)
            progress(f"{name}: skipped, not installed")
        except BackendLoadOrderError as exc:
            skipped[name] = str(exc)
            progress(f"{name}: skipped, its framework must be imported before one already loaded")
    return {name: loaded[name] for name in requested if name in loaded}, skipped


# -- corr2d --------------------------------------------------------------------------------------------


def time_corr2d(
    backends: dict[str, Backend],
    sizes: Sequence[int],
    kernel_sizes: Sequence[int],
    repeats: int,
    loop_max: int,
    loop_budget: float,
    progress: Progress,
) -> list[dict[str, Any]]:
    """One row per backend, method, image size and kernel size, floor rows included.

    Each row is ``{"backend", "method", "size", "kernel"}`` and the timing
    (or ``"error"``); ``auto`` rows also say which method ``auto`` ``picks``.
    Each backend's three methods are timed side by side, apart from the other
    backends', until target (a) settles at each shape, each sample after an
    untimed call of the same function
    (:func:`~convlab.bench.timing.measure_side_by_side` with ``settle``);
    target (b), across backends, compares timings taken apart.
    """
    rng = np.random.default_rng(0)
    rows = []
    for k in kernel_sizes:
        K = rng.standard_normal((k, k), dtype=np.float32)
        last_loop: dict[str, tuple[int, float]] = {}  # backend: (size, seconds) of its loop's last call
        for n in (n for n in sizes if n >= k):
            progress(f"corr2d {n}x{n}, {k}x{k} kernel")
            X = rng.standard_normal((n, n), dtype=np.float32)
            operands = {name: (backend.tensor(X), backend.tensor(K)) for name, backend in backends.items()}
            timings = measure_side_by_side({("floor", "copy"): X.copy}, repeats, settle=True)
            for name, backend in backends.items():
                # One backend's methods side by side; other frameworks' threads, spinning a while after each of
                # their calls (Paddle's Intel OpenMP for 200 ms), would take a core from whichever call came next.
                fns: dict[tuple[str, str], Callable[[], Any]] = {
                    (name, method): functools.partial(_computed_corr2d, backend, *operands[name], method)
                    for method in ("vectorized", "native", "auto")
                }
                comparisons = [Comparison((name, "auto"), ((name, "native"), (name, "vectorized")), TARGETS["a"][1])]
                timings.update(measure_side_by_side(fns, repeats, comparisons, settle=True))
            for name, backend in backends.items():  # the book's loop: alone, within its budget
                # the loop grows with n^2: skip sizes whose call would pass the budget
                size, seconds = last_loop.get(name, (n, 0.0))
                if n > loop_max or seconds * (n / size) ** 2 > loop_budget:
                    continue
                progress(f"  {name} loop")
                fn = functools.partial(_computed_corr2d, backend, *operands[name], "loop")
                try:
                    timings[(name, "loop")] = measure(fn, repeats, budget_s=loop_budget)
                except Exception as exc:
                    timings[(name, "loop")] = {"error": f"{type(exc).__name__}: {exc}"}
                    continue
                last_loop[name] = (n, timings[(name, "loop")]["median_s"])
            for (name, method), timing in timings.items():
                if "error" in timing:
                    progress(f"  {name} {method} {n}x{n}: {timing['error']}")
                row = {"backend": name, "method": method, "size": n, "kernel": k, **timing}
                if method == "auto":
                    row["picks"] = backends[name].auto_method((n, n), (k, k))
                rows.append(row)
    return rows


def _computed_corr2d(backend: Backend, X: Any, K: Any, method: str) -> Any:
    return backend.synchronize(corr2d_on(backend, X, K, method))


def fastest_by_shape(rows: list[dict[str, Any]], stat: str) -> dict[tuple[int, int], dict[str, Any]]:
    """The fastest ``corr2d`` row per ``(size, kernel)`` by ``stat`` ("median", "min"), floor and errors aside."""
    best: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        if row["backend"] == "floor" or "error" in row:
            continue
        key = (row["size"], row["kernel"])
        if key not in best or row[f"{stat}_s"] < best[key][f"{stat}_s"]:
            best[key] = row
    return best


# -- train_kernel --------------------------------------------------------------------------------------


def train_workloads(quick: bool) -> list[dict[str, Any]]:
    """The kernels to learn: the book's edge detector and, unless ``quick``, a random 3x3 on a 128x128 image.

    Returns
    -------
    list of dict
        ``{"name", "X", "Y", "kernel_size", "lr"}`` each, ``Y`` the map the
        kernel makes of ``X``.
    """
    loads = [_workload("edge 6x8, 1x2", data.edge_image(), kernels.edge(), lr=3e-2)]
    if not quick:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((128, 128), dtype=np.float32)
        K = rng.standard_normal((3, 3), dtype=np.float32)
        loads.append(_workload("random 128x128, 3x3", X, K, lr=0.5 * max_stable_lr(X, K.shape)))
    return loads


def _workload(name: str, X: np.ndarray, K: np.ndarray, lr: float) -> dict[str, Any]:
    Y = np.asarray(corr2d_on(load_backend("numpy"), X, K, "vectorized"), dtype=np.float32)
    return {"name": name, "X": X, "Y": Y, "kernel_size": K.shape, "lr": lr}


def time_training(
    backends: dict[str, Backend], repeats: int, stat: str, quick: bool, progress: Progress
) -> list[dict[str, Any]]:
    """One row per backend and :func:`train_workloads` entry: seconds per iteration of both loops, or ``"error"``.

    Each row is ``{"backend", "workload", "epochs", "train_kernel_s",
    "reference_s", "losses_agree"}``; ``reference`` is the book's loop, and
    ``<label>_times_s`` hold each sample's seconds per iteration. For a
    backend whose reference module has no ``book_train_kernel``, only
    ``train_kernel`` is timed, and ``"not_provided": ["reference"]`` replaces
    ``reference_s`` and ``losses_agree``.
    """
    few, many = (1, 3) if quick else (5, 25)
    rows = []
    for load in train_workloads(quick):
        args = (load["X"], load["Y"], load["kernel_size"], load["lr"])
        for name, backend in backends.items():
            progress(f"{name} train_kernel vs the book's loop, {load['name']}")
            row: dict[str, Any] = {"backend": name, "workload": load["name"], "epochs": [few, many]}
            runs = {"train_kernel": functools.partial(_train_kernel_losses, name, *args)}
            book_loop = reference_function(backend, "book_train_kernel")
            if book_loop is None:
                row["not_provided"] = ["reference"]
            else:
                runs["reference"] = functools.partial(book_loop, *args)
            # per iteration: runs of `many` minus runs of `few` epochs (the setup cancels), all side by side
            fns = {
                (label, epochs): functools.partial(run, epochs) for label, run in runs.items() for epochs in (few, many)
            }
            timings = measure_side_by_side(fns, repeats)
            errors = [timing["error"] for timing in timings.values() if "error" in timing]
            if errors:
                row["error"] = errors[0]
                progress(f"  {name}: {row['error']}")
            else:
                for label in runs:
                    long, short = timings[(label, many)], timings[(label, few)]
                    row[f"{label}_s"] = max(long[f"{stat}_s"] - short[f"{stat}_s"], 0.0) / (many - few)
                    # sample i of each run was taken in the same turn: their differences pair up across labels
                    pairs = zip(long["times_s"], short["times_s"], strict=True)
                    row[f"{label}_times_s"] = [(a - b) / (many - few) for a, b in pairs]
                if "reference" in runs:
                    same = np.allclose(runs["reference"](many), runs["train_kernel"](many), rtol=1e-3, atol=1e-4)
                    row["losses_agree"] = bool(same)
            rows.append(row)
    return rows


def _train_kernel_losses(name: str, X: Any, Y: Any, kernel_size: Pair, lr: float, num_epochs: int) -> list[float]:
    with use_backend(name):
        return train_kernel(X, Y, kernel_size=kernel_size, lr=lr, num_epochs=num_epochs, verbose=False).losses


# -- import and memory ---------------------------------------------------------------------------------


def time_imports(repeats: int, stat: str, progress: Progress) -> dict[str, Any]:
    """Seconds to ``import numpy`` and ``import convlab`` in a fresh process, ``repeats`` times each, in turns.

    Returns ``{"numpy_s", "convlab_s", "extra_s", "samples"}``, the first three
    the ``stat`` (``"median"``, ``"min"``) of the samples.
    """
    progress(f"import convlab vs import numpy, {repeats} fresh processes each")
    env = dict(os.environ)
    # the child must import this convlab, installed or not
    root = str(Path(convlab.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"

    def once(module: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code.format(module)], env=env, capture_output=True, text=True, check=True
        )
        return float(out.stdout.strip().splitlines()[-1])

    times: dict[str, list[float]] = {"numpy": [], "convlab": []}
    for _ in range(max(1, repeats)):  # interleaved, so both see the same load
        for module, samples in times.items():
            samples.append(once(module))
    summary = statistics.median if stat == "median" else min
    numpy_s, convlab_s = summary(times["numpy"]), summary(times["convlab"])
    return {"numpy_s": numpy_s, "convlab_s": convlab_s, "extra_s": convlab_s - numpy_s, "samples": times}


def measure_memory(size: int, kernel: int, progress: Progress) -> dict[str, Any]:
    """Peak extra memory of NumPy's ``vectorized`` and ``auto`` ``corr2d`` on a ``size`` square input.

    Returns ``{"size", "kernel", "vectorized", "auto"}``, each method's entry
    ``{"peak_extra_bytes", "output_bytes", "ratio"}``.
    """
    progress(f"numpy vectorized peak memory, {size}x{size} input, {kernel}x{kernel} kernel")
    backend = load_backend("numpy")
    rng = np.random.default_rng(0)
    X, K = rng.standard_normal((size, size), dtype=np.float32), rng.standard_normal((kernel, kernel), dtype=np.float32)
    result: dict[str, Any] = {"size": size, "kernel": kernel}
    for method in ("vectorized", "auto"):
        corr2d_on(backend, X, K, method)  # warm-up: caches filled now are not the call's memory
        tracemalloc.start()  # sees NumPy's allocations (NumPy reports them to tracemalloc)
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            Y = corr2d_on(backend, X, K, method)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        result[method] = {"peak_extra_bytes": peak, "output_bytes": Y.nbytes, "ratio": peak / Y.nbytes}
    return result

"""Benchmarks: ``corr2d`` on every backend, ``train_kernel`` against the book's loops, ``import convlab``.

``convlab bench`` (or :func:`run_benchmark`) measures, on every installed
backend:

* ``corr2d`` with each method (``loop``, ``vectorized``, ``native``, ``auto``)
  on square images of several sizes and 2x2, 3x3 and 5x5 kernels, beside the
  memory floor (copying the NumPy input once) and the fastest implementation
  of the run;
* ``train_kernel`` per iteration against a reference loop written the way
  the book's tab for that framework writes it (the ``*_reference`` functions
  below are those baselines);
* ``import convlab`` against ``import numpy``, each in a fresh process;
* the peak extra memory of NumPy's ``vectorized`` path.

Every timing is the median (or, with ``stat="min"``, the minimum: steadier
on a loaded machine) of ``repeats`` samples taken after a warm-up call
(which also compiles jitted paths); a sample runs the call enough times to
last about a millisecond. Timings that are compared are sampled in turns
(:func:`measure_side_by_side`): every backend's ``vectorized``, ``native``
and ``auto`` and the floor at one image and kernel size, or ``train_kernel``
and its reference loop, so that a change in the machine's load hits them
alike. The book's loop is timed alone, and only while one call stays within
a time budget. A result counts only once it is computed: JAX and
MXNet dispatch asynchronously, so the timed call waits with
``block_until_ready()`` / ``wait_to_read()``, which copy nothing; PyTorch on
CPU, TensorFlow in eager mode and NumPy return finished results; on any other
device a 1x1 slice of the result is copied to NumPy, which waits for the
whole result at the cost of one element.

The targets are ratios measured side by side in the same run, printed with
PASS or FAIL; :data:`TARGETS` lists them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from convlab import data, kernels
from convlab._registry import backend_names, canonical_name, load_backend, use_backend
from convlab._text import table
from convlab.backends.base import Backend
from convlab.errors import BackendNotInstalledError
from convlab.ops import corr2d_on
from convlab.training import max_stable_lr, train_kernel

METHODS = ("loop", "vectorized", "native", "auto")
STATS = ("median", "min")
DEFAULT_SIZES = (32, 64, 128, 512, 1024, 2048)
DEFAULT_KERNELS = (2, 3, 5)
QUICK = {"sizes": (8, 16), "kernels": (2, 3), "repeats": 1, "loop_max": 16, "import_repeats": 1, "memory_size": 512}

TARGETS = {
    "a": ("auto <= 1.05x min(native, vectorized), every size", 1.05),
    "b": ("auto <= 3x fastest of the run, 1024 & 2048, 3x3", 3.0),
    "c": ("train_kernel <= 1.25x book loop, per iteration", 1.25),
    "d": ("import convlab - import numpy <= 0.1 s", 0.1),
    "e": ("vectorized peak extra memory <= 2x output", 2.0),
}
"""Target id: (what is compared, the limit on the ratio; for ``d`` on the difference in seconds)."""

SAMPLE_S = 1e-3
"""A timing sample repeats the call until it lasts about this long."""


# -- timing ----------------------------------------------------------------------------------------


def sync(backend: Backend, y: Any) -> Any:
    """Wait until ``y`` is computed, at (almost) no cost; return it."""
    for wait in ("block_until_ready", "wait_to_read"):  # JAX, MXNet: asynchronous dispatch
        method = getattr(y, wait, None)
        if callable(method):
            method()
            return y
    if backend.device != "cpu":  # e.g. a GPU: copying one element waits for the whole result
        backend.to_numpy(y[:1, :1])
    return y  # NumPy, PyTorch on CPU, TensorFlow eager: already finished


def measure(fn: Callable[[], Any], repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Median seconds per call of ``fn`` over ``repeats`` samples, after a warm-up call.

    If the warm-up call alone takes longer than ``budget_s``, it is the only
    sample. Returns ``{"median_s", "min_s", "samples", "number"}`` (``number``:
    calls per sample).
    """
    start = time.perf_counter()
    fn()  # warm-up: compiles jitted paths, fills caches
    first = time.perf_counter() - start
    if budget_s is not None and first > budget_s:
        return {"median_s": first, "min_s": first, "samples": 1, "number": 1}
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    number = max(1, min(10_000, int(SAMPLE_S / max(once, 1e-7))))
    samples = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return _summary(samples, number)


def measure_side_by_side(fns: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, dict[str, Any]]:
    """:func:`measure` for several functions at once, their samples taken in turns.

    Each function is warmed up and calibrated, then sample ``i`` of every
    function is taken before sample ``i + 1`` of any, so that changes in the
    machine's load hit all of them alike and their ratios stay fair. A
    function that raises while warming up gets ``{"error": ...}``.
    """
    results: dict[Any, dict[str, Any]] = {}
    plans = {}
    for key, fn in fns.items():
        try:
            fn()
            start = time.perf_counter()
            fn()
            once = time.perf_counter() - start
        except Exception as exc:  # a broken path is reported, not fatal
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        plans[key] = (fn, max(1, min(10_000, int(SAMPLE_S / max(once, 1e-7)))), [])
    for _ in range(max(1, repeats)):
        for fn, number, samples in plans.values():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number)
    for key, (_, number, samples) in plans.items():
        results[key] = _summary(samples, number)
    return results


def _summary(samples: list[float], number: int) -> dict[str, Any]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "samples": len(samples), "number": number}


class Progress:
    """Progress lines (to stderr by default), each with the time since the start."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.stream is not None:
            print(f"[bench {time.perf_counter() - self.start:6.1f}s] {message}", file=self.stream, flush=True)


# -- book-style reference training loops -------------------------------------------------------------
# Each trains a bias-free kernel by plain SGD on the summed squared error, written the way the book's
# tab for that framework writes it, and returns the loss of every iteration. The only change from the
# book: the kernel starts at zero (train_kernel's default init), so both runs compute the same losses.


def numpy_reference(X: np.ndarray, Y: np.ndarray, kernel_size: tuple[int, int], lr: float, num_epochs: int):
    """A plain NumPy loop: forward on sliding windows, the gradient by hand (the book has no NumPy tab)."""
    windows = np.lib.stride_tricks.sliding_window_view(X, kernel_size)
    weight = np.zeros(kernel_size, dtype=np.float32)
    losses = []
    for _ in range(num_epochs):
        diff = np.einsum("ijab,ab->ij", windows, weight) - Y
        losses.append(float((diff**2).sum()))
        weight -= lr * 2 * np.einsum("ijab,ij->ab", windows, diff)
    return losses


def torch_reference(X: np.ndarray, Y: np.ndarray, kernel_size: tuple[int, int], lr: float, num_epochs: int):
    """The book's PyTorch tab: ``nn.Conv2d``, ``l.sum().backward()``, ``weight.data[:] -= lr * grad``."""
    import torch
    from torch import nn

    conv2d = nn.Conv2d(1, 1, kernel_size=kernel_size, bias=False)
    nn.init.zeros_(conv2d.weight)
    X = torch.from_numpy(X).reshape((1, 1, *X.shape))
    Y = torch.from_numpy(Y).reshape((1, 1, *Y.shape))
    losses = []
    for _ in range(num_epochs):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
        conv2d.zero_grad()
        loss = l.sum()
        loss.backward()
        conv2d.weight.data[:] -= lr * conv2d.weight.grad
        losses.append(loss.item())
    return losses


def tensorflow_reference(X: np.ndarray, Y: np.ndarray, kernel_size: tuple[int, int], lr: float, num_epochs: int):
    """The book's TensorFlow tab: Keras ``Conv2D``, ``GradientTape``, then the kernel reassigned."""
    import tensorflow as tf

    conv2d = tf.keras.layers.Conv2D(1, kernel_size, use_bias=False, kernel_initializer="zeros")
    X = tf.reshape(tf.constant(X), (1, *X.shape, 1))
    Y = tf.reshape(tf.constant(Y), (1, *Y.shape, 1))
    conv2d(X)  # builds the kernel
    kernel = conv2d.weights[0]
    losses = []
    for _ in range(num_epochs):
        with tf.GradientTape() as g:
            Y_hat = conv2d(X)
            l = tf.reduce_sum((Y_hat - Y) ** 2)  # noqa: E741 - the book's name
        update = tf.multiply(lr, g.gradient(l, kernel))
        kernel.assign(kernel - update)  # the book: get_weights(), subtract, set_weights()
        losses.append(float(l))
    return losses


def jax_reference(X: np.ndarray, Y: np.ndarray, kernel_size: tuple[int, int], lr: float, num_epochs: int):
    """The book's JAX tab: Flax ``nn.Conv``, ``jax.value_and_grad`` (not jitted), a ``tree_map`` update."""
    import jax
    from flax import linen as nn

    conv2d = nn.Conv(1, kernel_size=kernel_size, use_bias=False, padding="VALID", kernel_init=nn.initializers.zeros)
    X = jax.numpy.asarray(X).reshape((1, *X.shape, 1))
    Y = jax.numpy.asarray(Y).reshape((1, *Y.shape, 1))
    params = conv2d.init(jax.random.PRNGKey(0), X)

    def loss(params, X, Y):
        Y_hat = conv2d.apply(params, X)
        return ((Y_hat - Y) ** 2).sum()

    losses = []
    for _ in range(num_epochs):
        l, grads = jax.value_and_grad(loss)(params, X, Y)  # noqa: E741 - the book's name
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        losses.append(float(l))
    return losses


def mxnet_reference(X: np.ndarray, Y: np.ndarray, kernel_size: tuple[int, int], lr: float, num_epochs: int):
    """The book's MXNet tab: Gluon ``nn.Conv2D``, ``autograd.record()``, ``l.backward()``, ``data()[:] -= ...``."""
    from mxnet import autograd, init, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn

    npx.set_np()
    conv2d = nn.Conv2D(1, kernel_size=kernel_size, use_bias=False)
    conv2d.initialize(init.Zero())
    X = mnp.array(X).reshape(1, 1, *X.shape)
    Y = mnp.array(Y).reshape(1, 1, *Y.shape)
    losses = []
    for _ in range(num_epochs):
        with autograd.record():
            Y_hat = conv2d(X)
            l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
        l.backward()
        conv2d.weight.data()[:] -= lr * conv2d.weight.grad()
        losses.append(float(l.sum()))
    return losses


REFERENCE_LOOPS: dict[str, Callable[..., list[float]]] = {
    "numpy": numpy_reference,
    "torch": torch_reference,
    "tensorflow": tensorflow_reference,
    "jax": jax_reference,
    "mxnet": mxnet_reference,
}


def train_workloads(quick: bool) -> list[dict[str, Any]]:
    """``[{"name", "X", "Y", "kernel_size", "lr"}]``: the book's edge image, and a larger random image."""
    X = data.edge_image()
    loads = [{"name": "edge 6x8, 1x2", "X": X, "Y": _corr(X, kernels.edge()), "kernel_size": (1, 2), "lr": 3e-2}]
    if not quick:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((128, 128), dtype=np.float32)
        Y = _corr(X, rng.standard_normal((3, 3), dtype=np.float32))
        loads.append(
            {"name": "random 128x128, 3x3", "X": X, "Y": Y, "kernel_size": (3, 3), "lr": 0.5 * max_stable_lr(X, (3, 3))}
        )
    return loads


def _corr(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    return np.asarray(corr2d_on(load_backend("numpy"), X, K, "vectorized"), dtype=np.float32)


# -- the parts of a run --------------------------------------------------------------------------------


def _load_backends(names: Sequence[str] | None, progress: Progress) -> tuple[dict[str, Backend], dict[str, str]]:
    requested = [canonical_name(name) for name in (names or backend_names())]
    loaded, skipped = {}, {}
    for name in requested:
        try:
            loaded[name] = load_backend(name)
        except BackendNotInstalledError as exc:
            skipped[name] = str(exc)
            progress(f"{name}: skipped, not installed")
    return {name: loaded[name] for name in requested if name in loaded}, skipped


def _bench_corr2d(backends, sizes, kernel_sizes, repeats, loop_max, loop_budget, progress) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for k in kernel_sizes:
        K = rng.standard_normal((k, k), dtype=np.float32)
        last_loop: dict[str, tuple[int, float]] = {}  # backend: (size, seconds) of its loop's last call
        for n in (n for n in sizes if n >= k):
            progress(f"corr2d {n}x{n}, {k}x{k} kernel")
            X = rng.standard_normal((n, n), dtype=np.float32)
            operands = {name: (backend.tensor(X), backend.tensor(K)) for name, backend in backends.items()}
            fns: dict[tuple[str, str], Callable[[], Any]] = {("floor", "copy"): X.copy}
            for name, backend in backends.items():
                for method in ("vectorized", "native", "auto"):
                    fns[(name, method)] = functools.partial(_corr2d_call, backend, *operands[name], method)
            timings = measure_side_by_side(fns, repeats)
            for name, backend in backends.items():  # the book's loop: alone, within its budget
                # the loop grows with n^2: skip sizes whose call would pass the budget
                size, seconds = last_loop.get(name, (n, 0.0))
                if n > loop_max or seconds * (n / size) ** 2 > loop_budget:
                    continue
                progress(f"  {name} loop")
                fn = functools.partial(_corr2d_call, backend, *operands[name], "loop")
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


def _corr2d_call(backend: Backend, X: Any, K: Any, method: str) -> Any:
    return sync(backend, corr2d_on(backend, X, K, method))


def _fastest(rows: list[dict[str, Any]], stat: str) -> dict[tuple[int, int], dict[str, Any]]:
    best: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        if row["backend"] == "floor" or "error" in row:
            continue
        key = (row["size"], row["kernel"])
        if key not in best or row[f"{stat}_s"] < best[key][f"{stat}_s"]:
            best[key] = row
    return best


def _bench_train(backends, repeats, stat, quick, progress) -> list[dict[str, Any]]:
    few, many = (1, 3) if quick else (5, 25)
    rows = []
    for load in train_workloads(quick):
        args = (load["X"], load["Y"], load["kernel_size"], load["lr"])
        for name in backends:
            progress(f"{name} train_kernel vs the book's loop, {load['name']}")
            row: dict[str, Any] = {"backend": name, "workload": load["name"], "epochs": [few, many]}
            runs = {"train_kernel": functools.partial(_train, name, *args)}
            if name in REFERENCE_LOOPS:
                runs["reference"] = functools.partial(REFERENCE_LOOPS[name], *args)
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
                    long, short = timings[(label, many)][f"{stat}_s"], timings[(label, few)][f"{stat}_s"]
                    row[f"{label}_s"] = max(long - short, 0.0) / (many - few)
                if "reference" in runs:
                    same = np.allclose(runs["reference"](many), runs["train_kernel"](many), rtol=1e-3, atol=1e-4)
                    row["losses_agree"] = bool(same)
            rows.append(row)
    return rows


def _train(name: str, X: Any, Y: Any, kernel_size: tuple[int, int], lr: float, num_epochs: int) -> list[float]:
    with use_backend(name):
        return train_kernel(X, Y, kernel_size=kernel_size, lr=lr, num_epochs=num_epochs, verbose=False).losses


def _bench_imports(repeats: int, stat: str, progress) -> dict[str, Any]:
    progress(f"import convlab vs import numpy, {repeats} fresh processes each")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
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


def _bench_memory(size: int, kernel: int, progress) -> dict[str, Any]:
    progress(f"numpy vectorized peak memory, {size}x{size} input, {kernel}x{kernel} kernel")
    backend = load_backend("numpy")
    rng = np.random.default_rng(0)
    X, K = rng.standard_normal((size, size), dtype=np.float32), rng.standard_normal((kernel, kernel), dtype=np.float32)
    result = {"size": size, "kernel": kernel}
    for method in ("vectorized", "auto"):
        corr2d_on(backend, X, K, method)
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


# -- targets -----------------------------------------------------------------------------------------


def _target(tid: str, subject: str, value: float | None, where: str) -> dict[str, Any]:
    what, limit = TARGETS[tid]
    passed = None if value is None or math.isnan(value) else bool(value <= limit)
    return {
        "target": tid,
        "what": what,
        "subject": subject,
        "value": value,
        "limit": limit,
        "passed": passed,
        "where": where,
    }


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The pass/fail list of :data:`TARGETS` for the results of :func:`run_benchmark`."""
    stat = results["config"]["stat"]
    rows = [row for row in results["corr2d"] if "error" not in row]
    times = {(r["backend"], r["method"], r["size"], r["kernel"]): r[f"{stat}_s"] for r in rows}
    fastest = {key: row[f"{stat}_s"] for key, row in _fastest(results["corr2d"], stat).items()}
    out = []
    picks = {(r["backend"], r["size"], r["kernel"]): r.get("picks") for r in rows if r["method"] == "auto"}
    for name in results["backends"]:
        worst, where, worst_pick = None, "not measured", 0.0
        for (b, m, n, k), auto in times.items():
            if b != name or m != "auto":
                continue
            rivals = [times.get((b, other, n, k)) for other in ("native", "vectorized")]
            if None in rivals:
                continue
            ratio = auto / min(rivals)
            if worst is None or ratio > worst:
                worst, where = ratio, f"{n}x{n}, {k}x{k}"
            # the time of the method auto dispatches to: tells a wrong pick from noise and dispatch cost
            worst_pick = max(worst_pick, times[(b, picks[(b, n, k)], n, k)] / min(rivals))
        if worst is not None:
            where += f"; auto's pick alone: worst {worst_pick:.2f}x"
        out.append(_target("a", name, worst, where))
    for name in results["backends"]:
        worst, where = None, "not measured (needs 1024 or 2048 with 3x3)"
        for n in (1024, 2048):
            auto, best = times.get((name, "auto", n, 3)), fastest.get((n, 3))
            if auto is not None and best:
                ratio = auto / best
                if worst is None or ratio > worst:
                    worst, where = ratio, f"{n}x{n}, 3x3"
        out.append(_target("b", name, worst, where))
    for name in results["backends"] if results.get("train") else []:
        worst, where = None, "not measured"
        for row in results["train"]:
            if row["backend"] == name and row.get("reference_s"):
                ratio = row["train_kernel_s"] / row["reference_s"]
                if worst is None or ratio > worst:
                    worst, where = ratio, row["workload"]
        out.append(_target("c", name, worst, where))
    if results.get("imports"):
        out.append(_target("d", "convlab", results["imports"]["extra_s"], f"fresh processes, {stat}"))
    if results.get("memory"):
        memory = results["memory"]
        out.append(
            _target("e", "numpy", memory["vectorized"]["ratio"], f"{memory['size']}x{memory['size']}, tracemalloc")
        )
    return out


# -- the whole run ---------------------------------------------------------------------------------


def run_benchmark(
    backends: Sequence[str] | None = None,
    sizes: Iterable[int] = DEFAULT_SIZES,
    kernel_sizes: Iterable[int] = DEFAULT_KERNELS,
    repeats: int = 5,
    stat: str = "median",
    loop_max: int = 64,
    loop_budget: float = 1.0,
    train: bool = True,
    imports: bool = True,
    import_repeats: int = 5,
    memory: bool = True,
    memory_size: int = 2048,
    quick: bool = False,
    progress: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Run the benchmark; returns everything measured, JSON-ready.

    Parameters
    ----------
    backends : sequence of str, optional
        Backend names (default: every backend convlab knows); those not
        installed are skipped and listed under ``"skipped"``.
    sizes, kernel_sizes : iterable of int
        Square image sizes and square kernel sizes for ``corr2d``.
    repeats : int
        Timing samples per measurement.
    stat : {"median", "min"}
        What the tables and targets use of each measurement's samples (the
        results hold both).
    loop_max, loop_budget : int, float
        The book's loop runs only on sizes up to ``loop_max``, and stops
        before a size where one call would take longer than ``loop_budget`` s.
    train, imports, memory : bool
        Also time ``train_kernel``, the imports, and NumPy's peak memory
        (on a ``memory_size`` square input with a 3x3 kernel).
    quick : bool
        A tiny configuration for tests: fewer training epochs and workloads.
    progress : file, optional
        Where progress lines go (``None``: nowhere).

    Returns
    -------
    dict
        ``config``, ``machine``, ``backends``, ``skipped``, ``corr2d`` (one
        row per backend, method, size and kernel, floor rows included),
        ``fastest``, ``train``, ``imports``, ``memory`` and ``targets``.
    """
    if stat not in STATS:
        raise ValueError(f"stat: expected one of {', '.join(map(repr, STATS))}, got {stat!r}")
    say = Progress(progress)
    sizes, kernel_sizes = sorted(set(sizes)), sorted(set(kernel_sizes))
    loaded, skipped = _load_backends(backends, say)
    config = {
        "backends": list(loaded),
        "sizes": sizes,
        "kernels": kernel_sizes,
        "repeats": repeats,
        "stat": stat,
        "loop_max": loop_max,
        "loop_budget_s": loop_budget,
        "quick": quick,
    }
    results: dict[str, Any] = {
        "config": config,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "versions": {name: backend.version() for name, backend in loaded.items()},
            "devices": {name: backend.device for name, backend in loaded.items()},
        },
        "backends": list(loaded),
        "skipped": skipped,
    }
    results["corr2d"] = _bench_corr2d(loaded, sizes, kernel_sizes, repeats, loop_max, loop_budget, say)
    results["fastest"] = [
        {"size": n, "kernel": k, "backend": row["backend"], "method": row["method"], "seconds": row[f"{stat}_s"]}
        for (n, k), row in sorted(_fastest(results["corr2d"], stat).items())
    ]
    results["train"] = _bench_train(loaded, repeats, stat, quick, say) if train else []
    results["imports"] = _bench_imports(import_repeats, stat, say) if imports else None
    results["memory"] = _bench_memory(memory_size, 3, say) if memory and "numpy" in loaded else None
    results["targets"] = evaluate_targets(results)
    say("done")
    return results


# -- report --------------------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def _table(rows: list[list[str]], left: int = 1) -> list[str]:
    return table(rows, left=left).splitlines()


def _last_line(message: str, width: int = 150) -> str:
    """The last non-blank line of an error message (frameworks put the cause there), shortened."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    last = lines[-1] if lines else message
    return last if len(last) <= width else last[: width - 3] + "..."


def format_report(results: dict[str, Any]) -> str:
    """The tables and the targets of a :func:`run_benchmark` result, as text."""
    lines = [
        f"convlab bench: {', '.join(f'{n} {v}' for n, v in results['machine']['versions'].items())}; "
        f"{results['machine']['cpus']} CPUs; {results['config']['stat']} of {results['config']['repeats']} samples"
    ]
    for name, reason in results["skipped"].items():
        lines.append(f"skipped {name}: {reason}")
    stat_name = results["config"]["stat"]
    stat = f"{stat_name}_s"
    times = {(r["backend"], r["method"], r["size"], r["kernel"]): r for r in results["corr2d"]}
    fastest = {key: {**row, "seconds": row[stat]} for key, row in _fastest(results["corr2d"], stat_name).items()}
    short = {"vectorized": "vec", "native": "native", "auto": "auto", "loop": "loop"}
    for k in results["config"]["kernels"]:
        sizes = [n for n in results["config"]["sizes"] if n >= k]
        lines += ["", f"corr2d, {k}x{k} kernel: milliseconds per call (n x n input)"]
        rows = [["", *(f"n={n}" for n in sizes)]]
        rows.append(["copy input (floor)", *(_ms(times.get(("floor", "copy", n, k), {}).get(stat)) for n in sizes)])
        for name in results["backends"]:
            for method in METHODS:
                cells = []
                for n in sizes:
                    row = times.get((name, method, n, k), {})
                    cells.append("error" if "error" in row else _ms(row.get(stat)))
                rows.append([f"{name} {method}", *cells])
        rows.append(["fastest", *(_ms(fastest.get((n, k), {}).get("seconds")) for n in sizes)])
        rows.append(
            ["  by", *(f"{f['backend']}/{short[f['method']]}" if (f := fastest.get((n, k))) else "-" for n in sizes)]
        )
        lines += _table(rows)
    errors: dict[tuple[str, str], str] = {}
    for row in results["corr2d"]:
        if "error" in row:
            errors.setdefault((row["backend"], row["method"]), row["error"])
    if errors:
        lines += ["", "errors (the first of each backend and method):"]
        for (name, method), message in errors.items():
            lines.append(f"  {name} {method}: {_last_line(message)}")
    if results.get("train"):
        lines += ["", "train_kernel vs the book's loop: milliseconds per iteration"]
        rows = [["backend", "workload", "train_kernel", "book loop", "ratio", "same losses"]]
        for row in results["train"]:
            ours, ref = row.get("train_kernel_s"), row.get("reference_s")
            ratio = f"{ours / ref:.2f}" if ours is not None and ref else "-"
            agree = {True: "yes", False: "NO"}.get(row.get("losses_agree"), "-")
            status = _last_line(row["error"]) if "error" in row else agree
            rows.append([row["backend"], row["workload"], _ms(ours), _ms(ref), ratio, status])
        lines += _table(rows, left=2)
    if results.get("imports"):
        imp = results["imports"]
        lines += [
            "",
            f"import (fresh process, {results['config']['stat']}): numpy {imp['numpy_s'] * 1e3:.0f} ms, "
            f"convlab {imp['convlab_s'] * 1e3:.0f} ms, convlab adds {imp['extra_s'] * 1e3:.0f} ms",
        ]
    if results.get("memory"):
        mem = results["memory"]
        lines += ["", f"numpy peak extra memory, {mem['size']}x{mem['size']} input, 3x3 kernel (output = 1.00):"]
        for method in ("vectorized", "auto"):
            extra = mem[method]
            lines.append(f"  {method}: {extra['peak_extra_bytes'] / 2**20:.1f} MiB = {extra['ratio']:.2f} x output")
    lines += ["", "targets (ratios measured side by side in this run)"]
    rows = []
    for t in results["targets"]:
        value = "-" if t["value"] is None else (f"{t['value']:+.3f} s" if t["target"] == "d" else f"{t['value']:.2f}x")
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["passed"]]
        rows.append([f"({t['target']}) {t['what']}", t["subject"], value, verdict, t["where"]])
    lines += [f"  {line}" for line in _table([[*r[:3], r[3], f" {r[4]}"] for r in rows], left=2)]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Time vs image size, log-log, one panel per kernel and one line per backend and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kernel_sizes, stat = results["config"]["kernels"], f"{results['config']['stat']}_s"
    colors = {name: f"C{i}" for i, name in enumerate(results["backends"])}  # a color per backend
    styles = {"loop": ":", "vectorized": "-", "native": "--", "auto": "-."}  # a line style per method
    fig, axes = plt.subplots(1, len(kernel_sizes), figsize=(6 * len(kernel_sizes), 5.5), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], kernel_sizes, strict=True):
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for row in results["corr2d"]:
            if row["kernel"] == k and "error" not in row:
                series.setdefault((row["backend"], row["method"]), []).append((row["size"], row[stat] * 1e3))
        for (name, method), points in sorted(series.items()):
            points.sort()
            if name == "floor":
                style = {"color": "black", "linestyle": "--", "linewidth": 2, "label": "copy input (floor)"}
            else:
                style = {"color": colors[name], "linestyle": styles[method], "marker": "o", "markersize": 3}
                style["label"] = f"{name} {method}"
            ax.plot([p[0] for p in points], [p[1] for p in points], **style)
        ax.set(xscale="log", yscale="log", xlabel="image size n (n x n)", title=f"corr2d, {k}x{k} kernel")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"milliseconds per call ({results['config']['stat']})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * math.ceil(len(labels) / 6), 1, 1))
    fig.savefig(path)
    plt.close(fig)


# -- command line ----------------------------------------------------------------------------------------


def _names(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``convlab bench``."""
    count, seconds = _positive(int), _positive(float)
    parser.add_argument("--backends", nargs="+", metavar="NAME", help="backends to time (default: all installed)")
    parser.add_argument("--sizes", nargs="+", type=count, metavar="N", help=f"image sizes (default: {DEFAULT_SIZES})")
    parser.add_argument(
        "--kernels", nargs="+", type=count, metavar="K", help=f"kernel sizes (default: {DEFAULT_KERNELS})"
    )
    parser.add_argument("--repeats", type=count, help="timing samples per measurement (default: 5)")
    parser.add_argument(
        "--stat",
        choices=STATS,
        default="median",
        help="median (default) or min of the samples: min is steadier on a busy machine",
    )
    parser.add_argument("--loop-max", type=count, help="largest image for the book's loop (default: 64)")
    parser.add_argument("--loop-budget", type=seconds, default=1.0, help="seconds one loop call may take (default: 1)")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (seconds, for a smoke test)")
    parser.add_argument("--no-train", action="store_true", help="skip train_kernel vs the book's loops")
    parser.add_argument("--no-imports", action="store_true", help="skip import convlab vs import numpy")
    parser.add_argument("--no-memory", action="store_true", help="skip NumPy's peak memory")
    parser.add_argument("--json", metavar="PATH", help="write every result to this JSON file")
    parser.add_argument("--plot", metavar="PATH", help="plot time vs size to this image file (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target fails")


def main(args: argparse.Namespace) -> int:
    """Run ``convlab bench`` with parsed ``args``; print the report. Returns the exit status."""
    quick = QUICK if args.quick else {}
    try:
        names = [canonical_name(name) for name in _names(args.backends) or backend_names()]
    except ValueError as exc:
        print(f"convlab bench: {exc}", file=sys.stderr)
        return 2
    results = run_benchmark(
        backends=names,
        sizes=args.sizes or quick.get("sizes", DEFAULT_SIZES),
        kernel_sizes=args.kernels or quick.get("kernels", DEFAULT_KERNELS),
        repeats=args.repeats or quick.get("repeats", 5),
        stat=args.stat,
        loop_max=args.loop_max or quick.get("loop_max", 64),
        loop_budget=args.loop_budget,
        train=not args.no_train,
        imports=not args.no_imports,
        import_repeats=quick.get("import_repeats", 5),
        memory=not args.no_memory,
        memory_size=quick.get("memory_size", 2048),
        quick=args.quick,
        progress=None if args.quiet else sys.stderr,
    )
    print(format_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.plot:
        plot(results, args.plot)
    failed = [t for t in results["targets"] if t["passed"] is False]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="convlab bench", description=__doc__.split("\n\n")[0])
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))

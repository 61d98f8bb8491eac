"""A whole ``convlab bench`` run: every measurement, then the targets, as one JSON-ready dict."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from convlab.bench.networks import (
    CONV_SHAPES,
    MODERN_MODELS,
    time_conv_layers,
    time_data_loading,
    time_lenet_steps,
    time_modern_steps,
)
from convlab.bench.stats import LEVEL
from convlab.bench.targets import evaluate_targets
from convlab.bench.timing import DEFAULT_BUDGET_S, STATS, Progress, sampling_budget
from convlab.bench.workloads import (
    DEFAULT_KERNELS,
    DEFAULT_SIZES,
    fastest_by_shape,
    load_backends,
    measure_memory,
    time_corr2d,
    time_imports,
    time_training,
)


def run_benchmark(
    backends: Sequence[str] | None = None,
    sizes: Iterable[int] = DEFAULT_SIZES,
    kernel_sizes: Iterable[int] = DEFAULT_KERNELS,
    repeats: int = 5,
    stat: str = "median",
    budget_s: float = DEFAULT_BUDGET_S,
    loop_max: int = 64,
    loop_budget: float = 1.0,
    train: bool = True,
    imports: bool = True,
    import_repeats: int = 5,
    memory: bool = True,
    memory_size: int = 2048,
    networks: bool = True,
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
        Timing samples per measurement; where a target compares the
        timings, the fewest (and at least 6, for a 95% interval).
    budget_s : float
        Seconds a measurement that a target compares may go on sampling past
        its first ``max(repeats, 6)`` samples, until the ratio's 95% interval
        clears the target's limit
        (:func:`~convlab.bench.timing.measure_side_by_side`; ``0``: no
        more samples than ``repeats`` and 6).
    stat : {"median", "min"}
        What the tables and targets use of each measurement's samples (the
        results hold both).
    loop_max, loop_budget : int, float
        The book's loop runs only on sizes up to ``loop_max``, and stops
        before a size where one call would take longer than ``loop_budget`` s.
    train, imports, memory : bool
        Also time ``train_kernel``, the imports, and NumPy's peak memory
        (on a ``memory_size`` square input with a 3x3 kernel).
    import_repeats : int
        Fresh processes per import timing.
    networks : bool
        Also time ``cl.nn.Conv2d``, LeNet's training step and d2l §8's
        networks' steps against each framework's own, and Fashion-MNIST
        batches against LeNet's step.
    quick : bool
        A tiny configuration for tests: fewer training epochs and workloads,
        LeNet's first convolution alone for ``cl.nn.Conv2d``, no compiled
        step, and of §8's networks BN-LeNet alone.
    progress : file, optional
        Where progress lines go (``None``: nowhere).

    Returns
    -------
    dict
        ``config``, ``machine``, ``backends``, ``skipped``, ``corr2d`` (one
        row per backend, method, size and kernel, floor rows included),
        ``fastest``, ``train``, ``imports``, ``memory``, ``conv_layers``,
        ``lenet``, ``modern``, ``data`` and ``targets``.
    """
    if stat not in STATS:
        raise ValueError(f"stat: expected one of {', '.join(map(repr, STATS))}, got {stat!r}")
    if not budget_s >= 0:
        raise ValueError(f"budget_s: expected seconds at or above 0, got {budget_s!r}")
    say = Progress(progress)
    sizes, kernel_sizes = sorted(set(sizes)), sorted(set(kernel_sizes))
    loaded, skipped = load_backends(backends, say)
    config = {
        "backends": list(loaded),
        "sizes": sizes,
        "kernels": kernel_sizes,
        "repeats": repeats,
        "stat": stat,
        "budget_s": budget_s,
        "level": LEVEL,
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
    with sampling_budget(budget_s):
        results["corr2d"] = time_corr2d(loaded, sizes, kernel_sizes, repeats, loop_max, loop_budget, say)
        results["fastest"] = [
            {"size": n, "kernel": k, "backend": row["backend"], "method": row["method"], "seconds": row[f"{stat}_s"]}
            for (n, k), row in sorted(fastest_by_shape(results["corr2d"], stat).items())
        ]
        results["train"] = time_training(loaded, repeats, stat, quick, say) if train else []
        results["imports"] = time_imports(import_repeats, stat, say) if imports else None
        results["memory"] = measure_memory(memory_size, 3, say) if memory and "numpy" in loaded else None
        shapes = CONV_SHAPES[:1] if quick else CONV_SHAPES
        results["conv_layers"] = time_conv_layers(loaded, repeats, stat, say, shapes) if networks else []
        results["lenet"] = time_lenet_steps(loaded, repeats, stat, say, compiled=not quick) if networks else []
        modern = ("bn_lenet",) if quick else MODERN_MODELS
        results["modern"] = time_modern_steps(loaded, repeats, stat, say, modern, not quick) if networks else []
        results["data"] = time_data_loading(loaded, results["lenet"], repeats, stat, say) if networks else []
    results["targets"] = evaluate_targets(results)
    say("done")
    return results

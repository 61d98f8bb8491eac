"""Benchmarks: ``corr2d`` on every backend, ``train_kernel`` against the book's loops, ``import convlab``.

``convlab bench`` (or :func:`run_benchmark`) measures every installed backend
and prints tables and targets (:func:`format_report`): ratios measured side
by side in the same run, each with a 95% interval and PASS, FAIL or WITHIN
NOISE (:data:`TARGETS`, :mod:`convlab.bench.stats`). The parts:

* :mod:`convlab.bench.run`: a whole run, as one JSON-ready dict;
* :mod:`convlab.bench.timing`: how a call is timed, and for how long;
* :mod:`convlab.bench.stats`: a ratio's interval and its verdict;
* :mod:`convlab.bench.workloads`: what is measured;
* :mod:`convlab.bench.targets`: the targets;
* :mod:`convlab.bench.report`: the text report and the figure;
* :mod:`convlab.bench.cli`: the command line.
"""

from convlab.bench.cli import add_arguments, main
from convlab.bench.limits import TARGETS
from convlab.bench.report import format_report, plot
from convlab.bench.run import run_benchmark
from convlab.bench.targets import evaluate_targets
from convlab.bench.timing import STATS, Comparison, measure, measure_side_by_side, sampling_budget
from convlab.bench.workloads import DEFAULT_KERNELS, DEFAULT_SIZES, METHODS

__all__ = [
    "DEFAULT_KERNELS",
    "DEFAULT_SIZES",
    "METHODS",
    "STATS",
    "TARGETS",
    "Comparison",
    "add_arguments",
    "evaluate_targets",
    "format_report",
    "main",
    "measure",
    "measure_side_by_side",
    "plot",
    "run_benchmark",
    "sampling_budget",
]

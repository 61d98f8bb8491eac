"""``convlab bench`` on the command line: its options (:func:`add_arguments`) and its run (:func:`main`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convlab.bench.report import format_report, plot
from convlab.bench.run import run_benchmark
from convlab.bench.timing import DEFAULT_BUDGET_S, STATS
from convlab.bench.workloads import DEFAULT_KERNELS, DEFAULT_SIZES
from convlab.core.checks import check_output_file
from convlab.core.registry import backend_names, canonical_name

QUICK = {
    "sizes": (8,),
    "kernels": (2, 3),
    "repeats": 1,
    "budget_s": 0.25,
    "loop_max": 8,
    "import_repeats": 1,
    "memory_size": 512,
}
"""``--quick``: the defaults of a run that takes seconds (options given explicitly still win)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``convlab bench`` to ``parser``."""
    count, seconds = _positive(int), _positive(float)
    parser.add_argument("--backends", nargs="+", metavar="NAME", help="backends to time (default: all installed)")
    parser.add_argument("--sizes", nargs="+", type=count, metavar="N", help=f"image sizes (default: {DEFAULT_SIZES})")
    parser.add_argument(
        "--kernels", nargs="+", type=count, metavar="K", help=f"kernel sizes (default: {DEFAULT_KERNELS})"
    )
    parser.add_argument(
        "--repeats", type=count, help="timing samples per measurement, the fewest where a target compares (default: 5)"
    )
    parser.add_argument(
        "--budget",
        type=_positive(float, zero=True),
        metavar="SECONDS",
        help="seconds a compared measurement may sample past its first 6 pairs until its target's verdict is clear "
        f"(default: {DEFAULT_BUDGET_S:g}; 0: --repeats samples, at least 6 where a target compares)",
    )
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
    parser.add_argument(
        "--no-networks", action="store_true", help="skip cl.nn.Conv2d, LeNet steps and data loading vs the frameworks"
    )
    parser.add_argument("--json", metavar="PATH", help="write every result to this JSON file")
    parser.add_argument("--plot", metavar="PATH", help="plot time vs size to this image file (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target fails (not when it is within noise)"
    )


def main(args: argparse.Namespace) -> int:
    """Run ``convlab bench`` with the parsed ``args`` and print the report.

    Returns
    -------
    int
        The exit status: 2 for an unknown backend, 1 with ``--check`` when a
        target fails, else 0.
    """
    quick = QUICK if args.quick else {}
    try:
        names = [canonical_name(name) for name in _names(args.backends) or backend_names()]
        check_output_file(args.json, "--json")
        check_output_file(args.plot, "--plot")
        if args.plot and importlib.util.find_spec("matplotlib") is None:
            raise ValueError('--plot: needs matplotlib (pip install "convlab[plot]")')
    except ValueError as exc:
        print(f"convlab bench: {exc}", file=sys.stderr)
        return 2
    results = run_benchmark(
        backends=names,
        sizes=args.sizes or quick.get("sizes", DEFAULT_SIZES),
        kernel_sizes=args.kernels or quick.get("kernels", DEFAULT_KERNELS),
        repeats=args.repeats or quick.get("repeats", 5),
        stat=args.stat,
        budget_s=quick.get("budget_s", DEFAULT_BUDGET_S) if args.budget is None else args.budget,
        loop_max=args.loop_max or quick.get("loop_max", 64),
        loop_budget=args.loop_budget,
        train=not args.no_train,
        imports=not args.no_imports,
        import_repeats=quick.get("import_repeats", 5),
        memory=not args.no_memory,
        networks=not args.no_networks,
        memory_size=quick.get("memory_size", 2048),
        quick=args.quick,
        progress=None if args.quiet else sys.stderr,
    )
    print(format_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(strict_json(results), indent=1, allow_nan=False) + "\n")
    if args.plot:
        plot(results, args.plot)
    failed = [t for t in results["targets"] if t["passed"] is False]  # WITHIN NOISE is not a failure
    return 1 if args.check and failed else 0


def _names(values: Sequence[str] | None) -> list[str] | None:
    # --backends takes names apart by spaces, commas or both ("numpy,torch jax")
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _positive(kind: type, zero: bool = False) -> Callable[[str], Any]:
    # An argparse type: `kind(text)`, rejected with a clear message unless above zero (or at it, with `zero`).
    expected = "a number at or above zero" if zero else "a positive number"

    def parse(text: str) -> Any:
        value = kind(text)
        if not (value >= 0 if zero else value > 0):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its errors
    return parse


def strict_json(value: Any) -> Any:
    """``value`` with every infinite or NaN float as ``None``: JSON has no such numbers, and strict readers refuse them.

    Examples
    --------
    >>> strict_json({"ratio": float("inf"), "samples": [1.0, float("nan")]})
    {'ratio': None, 'samples': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value

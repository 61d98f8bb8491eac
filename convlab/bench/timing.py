"""How ``convlab bench`` times a call.

Every timing is the median (or, with ``stat="min"``, the minimum: steadier on
a loaded machine) of ``repeats`` samples taken after a warm-up call (which
also compiles jitted paths); a sample runs the call enough times to last
about :data:`SAMPLE_S`. Timings that are compared are sampled in turns
(:func:`measure_side_by_side`), so that a change in the machine's load hits
them alike.

A result counts only once it is computed: the timed calls end with
:meth:`Backend.synchronize <convlab.backends.base.Backend.synchronize>`,
which waits for frameworks that dispatch asynchronously (JAX, MXNet, a GPU)
without copying the result.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, TextIO

STATS = ("median", "min")
"""What a measurement reports of its samples: ``median_s`` or ``min_s``."""

SAMPLE_S = 1e-3
"""A timing sample repeats the call until it lasts about this long."""

MAX_CALLS_PER_SAMPLE = 10_000
"""Bounds a sample of a call too fast for the clock to time once."""


def measure(fn: Callable[[], Any], repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Median seconds per call of ``fn`` over ``repeats`` samples, after a warm-up call.

    Parameters
    ----------
    fn : callable
        The call to time, without arguments; it returns once its result is computed.
    repeats : int
        Samples to take (at least one).
    budget_s : float, optional
        If the warm-up call alone takes longer, it is the only sample.

    Returns
    -------
    dict
        ``{"median_s", "min_s", "samples", "number"}``; ``number`` is the
        count of calls per sample.
    """
    start = time.perf_counter()
    fn()  # warm-up: compiles jitted paths, fills caches
    first = time.perf_counter() - start
    if budget_s is not None and first > budget_s:
        return summarize([first], 1)
    number = _calls_per_sample(fn)
    return summarize([_sample(fn, number) for _ in range(max(1, repeats))], number)


def measure_side_by_side(fns: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, dict[str, Any]]:
    """:func:`measure` for several functions at once, their samples taken in turns.

    Each function is warmed up and calibrated, then sample ``i`` of every
    function is taken before sample ``i + 1`` of any, so that changes in the
    machine's load hit all of them alike and their ratios stay fair.

    Parameters
    ----------
    fns : dict
        The calls to time, by any key.
    repeats : int
        Samples per call (at least one).

    Returns
    -------
    dict
        :func:`measure`'s result per key; ``{"error": "Type: message"}`` for a
        function that raised while warming up.
    """
    results: dict[Any, dict[str, Any]] = {}
    plans: dict[Any, tuple[Callable[[], Any], int, list[float]]] = {}
    for key, fn in fns.items():
        try:
            fn()
            plans[key] = (fn, _calls_per_sample(fn), [])
        except Exception as exc:  # a broken path is reported, not fatal
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
    for _ in range(max(1, repeats)):
        for fn, number, samples in plans.values():
            samples.append(_sample(fn, number))
    for key, (_, number, samples) in plans.items():
        results[key] = summarize(samples, number)
    return results


def summarize(samples: list[float], number: int) -> dict[str, Any]:
    """The JSON summary of a measurement: ``median_s``, ``min_s``, ``samples``, ``number`` (calls per sample)."""
    return {"median_s": statistics.median(samples), "min_s": min(samples), "samples": len(samples), "number": number}


def _calls_per_sample(fn: Callable[[], Any]) -> int:
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, min(MAX_CALLS_PER_SAMPLE, int(SAMPLE_S / max(once, 1e-7))))


def _sample(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


class Progress:
    """Progress lines (to stderr by default), each with the time since the start.

    Parameters
    ----------
    stream : file, optional
        Where the lines go; ``None``: nowhere.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.stream is not None:
            print(f"[bench {time.perf_counter() - self.start:6.1f}s] {message}", file=self.stream, flush=True)

"""How ``convlab bench`` times a call.

Every timing is the median (or, with ``stat="min"``, the minimum) of its
samples; a sample runs the call enough times to last about
:data:`SAMPLE_S`. Before sampling, each call is made twice untimed by the
samples: the first call compiles jitted paths and fills caches, and its time
minus a steady call's is reported as ``compile_s``; the second sets how many
calls a sample makes.

Timings that are compared are sampled in turns (:func:`measure_side_by_side`),
so that a change in the machine's load hits them alike, and sample ``i`` of
each forms a pair (:mod:`convlab.bench.stats`). Given the ratios a target
compares (:class:`Comparison`), sampling goes on past ``repeats`` until every
ratio's interval clears its limit (the verdict is then PASS or FAIL) or the
sampling budget (:func:`sampling_budget`) is spent (the verdict may be
WITHIN NOISE).

A result counts only once it is computed: the timed calls end with
:meth:`Backend.synchronize <convlab.backends.base.Backend.synchronize>`,
which waits for frameworks that dispatch asynchronously (JAX, MXNet, a GPU)
without copying the result.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import statistics
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from convlab.bench.stats import WITHIN_NOISE, median_interval, min_samples, paired_ratios, verdict

STATS = ("median", "min")
"""What a measurement reports of its samples: ``median_s`` or ``min_s``."""

SAMPLE_S = 1e-3
"""A timing sample repeats the call until it lasts about this long."""

MAX_CALLS_PER_SAMPLE = 10_000
"""Bounds a sample of a call too fast for the clock to time once."""

SETTLE_S = 5e-3
"""A settled sample follows untimed calls of the same function lasting at least this long (at least one call).

What one call leaves behind can outlast the next call: after TensorFlow's
1024x1024 convolution (3.5 ms), its shift-and-add (0.5 ms) ran 1.10-1.15x
slower for a call or two, while the framework's threads wound down. Calls
for 3 ms and more after the convolution brought it back to 1.00-1.02x.
"""

DEFAULT_BUDGET_S = 2.0
"""Seconds one side-by-side measurement may go on sampling, past its first samples, for its comparisons to settle."""

MAX_SAMPLES = 1000
"""Bounds the samples of one measurement, whatever its budget."""

Clock = Callable[[], float]

_budget_s: contextvars.ContextVar[float] = contextvars.ContextVar("budget_s", default=DEFAULT_BUDGET_S)


@contextlib.contextmanager
def sampling_budget(budget_s: float) -> Iterator[None]:
    """Within the block, :func:`measure_side_by_side` samples for up to ``budget_s`` s past its first samples.

    A context rather than an argument: every measurement of a run shares it,
    however deep the function that times it (``0``: no more samples than
    ``repeats`` and, where compared, the 6 of a 95% interval).
    """
    if not budget_s >= 0:
        raise ValueError(f"budget_s: expected seconds at or above 0, got {budget_s!r}")
    token = _budget_s.set(budget_s)
    try:
        yield
    finally:
        _budget_s.reset(token)


@dataclass(frozen=True)
class Comparison:
    """A ratio of two timed calls, and the limit a target holds it to.

    Parameters
    ----------
    numerator : hashable
        The key of the call on top.
    denominators : tuple of hashable
        Keys of the calls below; the ratio takes whichever has the lowest
        median so far (target (a) compares ``auto`` with the faster of
        ``native`` and ``vectorized``).
    limit : float
        The target's limit on the ratio.
    """

    numerator: Hashable
    denominators: tuple[Hashable, ...]
    limit: float

    def ratios(self, times: Mapping[Hashable, Sequence[float]]) -> list[float]:
        """The paired ratios of the samples ``times`` (per-call seconds by key, taken in turns)."""
        denominator = min(self.denominators, key=lambda key: statistics.median(times[key]))
        return paired_ratios(times[self.numerator], times[denominator])

    def settled(self, times: Mapping[Hashable, Sequence[float]]) -> bool:
        """Whether the ratios' interval lies wholly on one side of the limit (PASS or FAIL, not WITHIN NOISE)."""
        _, low, high = median_interval(self.ratios(times))
        return verdict(low, high, self.limit) != WITHIN_NOISE


def measure(
    fn: Callable[[], Any], repeats: int, budget_s: float | None = None, clock: Clock = time.perf_counter
) -> dict[str, Any]:
    """Median seconds per call of ``fn`` over ``repeats`` samples, after the warm-up calls.

    Parameters
    ----------
    fn : callable
        The call to time, without arguments; it returns once its result is computed.
    repeats : int
        Samples to take (at least one).
    budget_s : float, optional
        If the first call alone takes longer, it is the only sample.
    clock : callable
        Seconds, monotonic (tests pass a fake one).

    Returns
    -------
    dict
        :func:`summarize`'s summary.
    """
    start = clock()
    fn()  # warm-up: compiles jitted paths, fills caches
    first = clock() - start
    if budget_s is not None and first > budget_s:
        return summarize([first], 1)
    number = _calls_per_sample(fn, clock)
    return summarize([_sample(fn, number, clock) for _ in range(max(1, repeats))], number, first)


def measure_side_by_side(
    fns: Mapping[Any, Callable[[], Any]],
    repeats: int,
    until: Sequence[Comparison] = (),
    budget_s: float | None = None,
    clock: Clock = time.perf_counter,
    settle: bool = False,
) -> dict[Any, dict[str, Any]]:
    """:func:`measure` for several functions at once, their samples taken in turns.

    Each function is warmed up and calibrated, then sample ``i`` of every
    function is taken before sample ``i + 1`` of any, so that changes in the
    machine's load hit all of them alike and their ratios stay fair. The
    order within a round changes from round to round (the rows of a
    Williams design), so that over ``n`` rounds (``2 n`` for an odd ``n``
    of functions) each function goes first equally often and follows each
    other one equally often.

    Without comparisons, each function gets ``repeats`` samples. With them,
    sampling goes on until the interval of every comparison's paired ratios
    (:func:`~convlab.bench.stats.median_interval`) lies wholly on one side
    of its limit, or ``budget_s`` seconds of sampling past the first
    ``max(repeats, min_samples())`` are spent, or :data:`MAX_SAMPLES` are
    taken: it never stops before :func:`~convlab.bench.stats.min_samples`
    (6), the fewest pairs that make a 95% interval. The intervals are looked
    at after ``max(repeats, min_samples())`` rounds and then each time the
    count has doubled: looking after every round would, over many looks, let
    a ratio that sits on its limit cross the limit by chance.

    Parameters
    ----------
    fns : mapping
        The calls to time, by any key.
    repeats : int
        Samples per call (at least one): exactly these without ``until``,
        at least these (and at least 6) with it.
    until : sequence of Comparison
        Ratios of the keys to settle; one whose calls failed is left out.
    budget_s : float, optional
        Seconds of sampling past the first ``max(repeats, min_samples())``
        (default: :func:`sampling_budget`'s).
    clock : callable
        Seconds, monotonic (tests pass a fake one).
    settle : bool
        Call each function untimed before each of its samples, once and for
        at least :data:`SETTLE_S`, so that a sample times the function's
        repeated calls, as a user's loop makes them, not the state another
        function left behind. For calls whose output takes megabytes: a
        2048x2048 ``corr2d`` that follows another function maps its 16 MiB
        output afresh, page by page (Paddle's banded convolution took 27 ms
        after any other call, 17 ms after itself), and which call came
        before a sample then decides the verdict.

    Returns
    -------
    dict
        :func:`summarize`'s summary per key; ``{"error": "Type: message"}``
        for a function that raised while warming up.
    """
    budget_s = _budget_s.get() if budget_s is None else budget_s
    repeats = max(1, repeats)
    results: dict[Any, dict[str, Any]] = {}
    plans: dict[Any, tuple[Callable[[], Any], int, float]] = {}
    for key, fn in fns.items():
        try:
            start = clock()
            fn()  # warm-up: compiles jitted paths, fills caches
            first = clock() - start
            plans[key] = (fn, _calls_per_sample(fn, clock), first)
        except Exception as exc:  # a broken path is reported, not fatal
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
    comparisons = [c for c in until if all(key in plans for key in (c.numerator, *c.denominators))]
    times: dict[Any, list[float]] = {key: [] for key in plans}
    # fewer than min_samples() pairs make no 95% interval: compared timings take at least that many
    minimum = max(repeats, min_samples()) if comparisons else repeats
    start, look = None, minimum
    order = list(plans)
    while plans:
        for key in _round_order(order, len(next(iter(times.values())))):
            fn, number, _ = plans[key]
            if settle:
                _settle(fn, clock)
            times[key].append(_sample(fn, number, clock))
        taken = len(next(iter(times.values())))
        if taken < minimum:
            continue
        if not comparisons or taken >= MAX_SAMPLES:
            break
        start = clock() if start is None else start  # the budget runs past the minimum
        if taken >= look:
            look = 2 * taken
            if all(comparison.settled(times) for comparison in comparisons):
                break
        if clock() - start >= budget_s:
            break
    for key, (_, number, first) in plans.items():
        results[key] = summarize(times[key], number, first)
    return results


def summarize(samples: list[float], number: int, first_s: float | None = None) -> dict[str, Any]:
    """The JSON summary of a measurement.

    Parameters
    ----------
    samples : list of float
        Seconds per call of each sample, in the order taken.
    number : int
        Calls per sample.
    first_s : float, optional
        Seconds of the first (warm-up) call.

    Returns
    -------
    dict
        ``median_s``, ``min_s``, ``samples`` (their count), ``number``,
        ``times_s`` (the samples), and with ``first_s`` also ``first_s`` and
        ``compile_s``: the first call's time minus the median, what
        compiling and filling caches cost once.
    """
    median = statistics.median(samples)
    summary = {"median_s": median, "min_s": min(samples), "samples": len(samples), "number": number}
    summary["times_s"] = list(samples)
    if first_s is not None:
        summary["first_s"] = first_s
        summary["compile_s"] = max(first_s - median, 0.0)
    return summary


def _calls_per_sample(fn: Callable[[], Any], clock: Clock) -> int:
    start = clock()
    fn()
    once = clock() - start
    return max(1, min(MAX_CALLS_PER_SAMPLE, int(SAMPLE_S / max(once, 1e-7))))


def _round_order(order: list[Any], round_index: int) -> list[Any]:
    # A call can leave the next one a cost (memory to fault in again, threads spinning down). Rotating the start
    # from round to round alone keeps who follows whom; the rounds of a Williams design (a Latin square, with its
    # mirror image for an odd count) start each function once in every place and put it once after every other.
    rows = _williams_rows(len(order))
    return [order[i] for i in rows[round_index % len(rows)]]


@functools.cache
def _williams_rows(n: int) -> tuple[tuple[int, ...], ...]:
    first, low, high = [0], 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        if len(first) % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = tuple(tuple((i + shift) % n for i in first) for shift in range(n))
    return rows + tuple(row[::-1] for row in rows) if n % 2 else rows


def _settle(fn: Callable[[], Any], clock: Clock) -> None:
    start = clock()
    fn()
    while clock() - start < SETTLE_S:
        fn()


def _sample(fn: Callable[[], Any], number: int, clock: Clock) -> float:
    start = clock()
    for _ in range(number):
        fn()
    return (clock() - start) / number


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

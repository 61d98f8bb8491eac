"""The statistics behind ``convlab bench``'s verdicts: a ratio's median, its interval, and PASS, FAIL or WITHIN NOISE.

A target compares two timings, A over B. Their samples are taken in turns
(:func:`~convlab.bench.timing.measure_side_by_side`), so sample ``i`` of A and
sample ``i`` of B saw the same machine load, and ``A_i / B_i`` is one
*paired ratio*: the load that hit both cancels out of it. The figure
reported is the median of the paired ratios, and its spread is a
distribution-free interval for that median (:func:`median_interval`): the
sign test's interval, two order statistics of the sorted ratios chosen so
that the true median lies between them with probability at least
:data:`LEVEL`, whatever the distribution of the samples (no normality is
assumed: timing noise is skewed, with slow outliers).

A verdict (:func:`verdict`) is PASS when the whole interval is at or below
the limit, FAIL when all of it is above, and WITHIN NOISE when the interval
contains the limit: the run cannot tell, and another run could go either way.

Timings taken in separate measurements (NumPy's step against PyTorch's, say)
have no pairs; their ratio's interval (:func:`unpaired_ratio_interval`) is the
widest one the two medians' intervals allow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from fractions import Fraction

LEVEL = 0.95
"""The confidence of every interval :mod:`convlab.bench` reports."""

PASS, FAIL, WITHIN_NOISE = "PASS", "FAIL", "WITHIN NOISE"
"""The three verdicts of a measured target."""


def min_samples(level: float = LEVEL) -> int:
    """The fewest samples whose smallest-to-largest range covers the median with probability ``level``.

    Below this count :func:`median_interval` still returns the samples' range,
    which then covers the median less often (5 samples: 94%).

    Examples
    --------
    >>> min_samples(0.95), min_samples(0.99)
    (6, 8)
    """
    _check_level(level)
    n = 1
    while 1 - 2 * 0.5**n < level:
        n += 1
    return n


def median_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """The median of ``values`` and a distribution-free interval that holds their true median.

    The interval is the sign test's: sorted, the values ``x[k-1]`` and
    ``x[n-k]`` (0-based) with the largest ``k`` for which the true median
    falls outside with probability at most ``1 - level`` (each value lies
    below the median with probability 1/2, so the count below it is binomial).
    With fewer than :func:`min_samples` values no pair of order statistics
    reaches ``level``; the interval is then the whole range of the values.

    Parameters
    ----------
    values : sequence of float
        Independent samples (at least one), e.g. paired ratios.
    level : float
        The confidence, between 0 and 1.

    Returns
    -------
    (float, float, float)
        ``(median, low, high)``; ``low <= median <= high``.

    Examples
    --------
    >>> median_interval([1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.0])
    (1.0, 0.9, 1.2)
    >>> median_interval(list(range(20)))  # the 6th smallest to the 6th largest
    (9.5, 5, 14)
    """
    _check_level(level)
    if not values:
        raise ValueError("values: expected at least one sample, got none")
    ordered = sorted(values)
    n = len(ordered)
    k = _order_statistic(n, level)
    return statistics.median(ordered), ordered[k - 1], ordered[n - k]


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """``numerator[i] / denominator[i]`` for each pair of samples taken in the same turn.

    A denominator at or below zero (a difference of two timings that noise
    made negative) gives an infinite ratio, which counts as a slow sample.

    Examples
    --------
    >>> paired_ratios([2.0, 3.0], [1.0, 2.0])
    [2.0, 1.5]
    """
    if len(numerator) != len(denominator):
        raise ValueError(
            f"numerator, denominator: paired samples need equal counts, got {len(numerator)} and {len(denominator)}"
        )
    return [a / b if b > 0 else math.inf for a, b in zip(numerator, denominator, strict=True)]


def unpaired_ratio_interval(
    numerator: Sequence[float], denominator: Sequence[float], level: float = LEVEL
) -> tuple[float, float, float]:
    """The ratio of two medians measured apart, and the widest ratio their intervals allow.

    ``(median(A) / median(B), low(A) / high(B), high(A) / low(B))``, each
    median's interval from :func:`median_interval`; conservative (both
    medians at their extremes at once), as nothing ties A's noise to B's.

    Examples
    --------
    >>> unpaired_ratio_interval([2.0] * 6, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    (1.3333333333333333, 1.0, 2.0)
    """
    a, a_low, a_high = median_interval(numerator, level)
    b, b_low, b_high = median_interval(denominator, level)
    return _divide(a, b), _divide(a_low, b_high), _divide(a_high, b_low)


def verdict(low: float, high: float, limit: float) -> str:
    """PASS if the interval ``[low, high]`` lies at or below ``limit``, FAIL if above it, else WITHIN NOISE.

    Examples
    --------
    >>> verdict(0.9, 1.05, 1.1), verdict(1.2, 1.4, 1.1), verdict(1.0, 1.2, 1.1)
    ('PASS', 'FAIL', 'WITHIN NOISE')
    """
    if high <= limit:
        return PASS
    if low > limit:
        return FAIL
    return WITHIN_NOISE


def _order_statistic(n: int, level: float) -> int:
    # The largest k >= 1 with P(Binomial(n, 1/2) <= k - 1) <= (1 - level) / 2, in exact integers
    # (2**n overflows a float past n = 1023); 1 where even the range falls short of `level`.
    tail = (1 - Fraction(level).limit_denominator(10**6)) / 2 * 2**n
    k, below = 1, 1  # below: C(n, 0) + ... + C(n, k - 1), the chance (times 2**n) that x[k-1] is above the median
    while k < (n + 1) // 2 and below + math.comb(n, k) <= tail:
        below += math.comb(n, k)
        k += 1
    return k


def _divide(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level: expected a probability between 0 and 1, got {level!r}")

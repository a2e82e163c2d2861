"""Pure statistics of timing samples: no I/O, no rendering, no numpy.

Everything here takes a sequence of sample times (any unit) and returns numbers, so the
harness, the table and ``compare`` all share one definition of a median, a quartile or a
confidence interval. What the numbers say about a measurement (notes such as "unstable")
is decided in ``measure.py`` and written in ``notes.py``.

The confidence interval of the median is distribution-free: timing samples are skewed
(a floor set by the hardware, a long tail of interruptions), so a normal approximation
of the mean would be wrong exactly where it matters. For n samples, the j-th and
(n-j+1)-th order statistics bracket the population median with probability
``1 - 2·P(B <= j-1)``, ``B ~ Binomial(n, 1/2)``, whatever the distribution; we take the
narrowest such pair whose coverage is at least the confidence asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

CONFIDENCE = 0.95
DISPERSION_WARNING = 0.10
"""Dispersion worth a note: a measurement's middle half of samples spanning this fraction of
its median, or rounds whose medians lie this far apart."""


def mean(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("mean of no samples")
    return math.fsum(samples) / len(samples)


def stddev(samples: Sequence[float]) -> float:
    """Sample standard deviation (n-1 in the denominator); NaN for fewer than two samples."""
    n = len(samples)
    if n < 2:
        return math.nan
    m = mean(samples)
    return math.sqrt(math.fsum((x - m) ** 2 for x in samples) / (n - 1))


def quantile(sorted_samples: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, Hyndman-Fan type 7)."""
    n = len(sorted_samples)
    if n == 0:
        raise ValueError("quantile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile: q must be in [0, 1], got {q}")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return sorted_samples[lo] + (h - lo) * (sorted_samples[hi] - sorted_samples[lo])


def median(samples: Sequence[float]) -> float:
    return quantile(sorted(samples), 0.5)


def _log_binom_half_pmf(n: int, i: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0)


def binom_half_cdf(k: int, n: int) -> float:
    """``P(B <= k)`` for ``B ~ Binomial(n, 1/2)``.

    Sums the pmf downwards from k, in the lower tail where terms shrink geometrically, so
    the cost is about √n terms rather than n; the upper tail comes from symmetry.
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if 2 * k >= n:  # P(B <= k) = 1 - P(B >= k+1) = 1 - P(B <= n-k-1) by symmetry
        return 1.0 - binom_half_cdf(n - k - 1, n)
    term = math.exp(_log_binom_half_pmf(n, k))
    total = 0.0
    i = k
    while i >= 0:
        total += term
        if term <= total * 1e-17:
            break
        term *= i / (n - i + 1)  # pmf(i-1) / pmf(i)
        i -= 1
    return total


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks ``(j, n-j+1)`` of the order statistics bounding the median's CI.

    The largest j with ``2·P(B <= j-1) <= 1 - confidence``; None when even the extremes
    (j = 1, coverage ``1 - 2^(1-n)``) fall short, which for 95% means n < 6.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha_half = (1.0 - confidence) / 2.0
    if n < 1 or binom_half_cdf(0, n) > alpha_half:
        return None
    # Start near the normal approximation, then walk to the exact boundary.
    z = NormalDist().inv_cdf(1.0 - alpha_half)
    j = max(1, min(n // 2, int(n / 2.0 - z * math.sqrt(n) / 2.0)))
    while j > 1 and binom_half_cdf(j - 1, n) > alpha_half:
        j -= 1
    while j < (n + 1) // 2 and binom_half_cdf(j, n) <= alpha_half:
        j += 1
    return j, n - j + 1


def median_ci(
    sorted_samples: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median; None with too few samples."""
    ranks = median_ci_ranks(len(sorted_samples), confidence)
    if ranks is None:
        return None
    j, k = ranks
    return sorted_samples[j - 1], sorted_samples[k - 1]


def relative_halfwidth(ci: tuple[float, float] | None, center: float) -> float:
    """Half the interval's width over its center: ±x as a fraction; inf when unknown."""
    if ci is None or center <= 0.0 or not math.isfinite(center):
        return math.inf
    return (ci[1] - ci[0]) / 2.0 / center


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one set of samples (same unit as the samples)."""

    n: int
    median: float
    mean: float
    stddev: float
    min: float
    max: float
    q1: float
    q3: float
    ci_low: float | None
    ci_high: float | None

    @property
    def ci_rel_halfwidth(self) -> float:
        """Relative half-width of the median's 95% CI (inf when there is no CI)."""
        if self.ci_low is None or self.ci_high is None:
            return math.inf
        return relative_halfwidth((self.ci_low, self.ci_high), self.median)

    @property
    def relative_iqr(self) -> float:
        """The interquartile range over the median: how widely the middle half of the samples
        spreads (NaN for a zero median). Unlike the standard deviation, a few interrupted
        samples don't move it."""
        return (self.q3 - self.q1) / self.median if self.median > 0 else math.nan

    @property
    def cv(self) -> float:
        """Coefficient of variation: stddev / mean (NaN with fewer than two samples)."""
        return self.stddev / self.mean if self.mean > 0 else math.nan


def summarize(samples: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    if not samples:
        raise ValueError("summarize: no samples")
    s = sorted(samples)
    ci = median_ci(s, confidence)
    return Summary(
        n=len(s),
        median=quantile(s, 0.5),
        mean=mean(s),
        stddev=stddev(s),
        min=s[0],
        max=s[-1],
        q1=quantile(s, 0.25),
        q3=quantile(s, 0.75),
        ci_low=None if ci is None else ci[0],
        ci_high=None if ci is None else ci[1],
    )

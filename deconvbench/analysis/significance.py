"""Two-sample tests and intervals for ``compare``: pure functions over sample times.

Two levels of evidence, because timing noise has two levels:

- **within a run**: the samples of one measurement. :func:`mann_whitney_u` tests whether one
  set tends to be slower than the other and :func:`ratio_interval` bootstraps the ratio of a
  statistic. Both treat the samples as independent, which they are not across runs: a
  machine's speed drifts by several percent from one minute to the next (a neighbour on the
  host, the clock, the allocator's layout), so within-run tests call such drifts
  "significant" with tiny p-values.
- **between rounds**: ``run --rounds N`` measures every row N times, spread over the whole
  run. :func:`rounds_test` compares the fastest round of each file (interference only slows
  rounds down) with a t-test whose noise is the spread of the rounds interference spared,
  floored by what is typical of the file, so a drift that also moves rounds within a run
  can't pass for a change.

numpy only (scipy is a test extra); the t distribution comes from the regularised incomplete
beta function by its continued fraction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Statistic = Literal["median", "min", "mean"]

RESAMPLES = 2000
SEED = 20240501
_BLOCK = 1 << 22  # bootstrap draws held at once: bounds memory at 10 000 samples a row


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test: ``(U of x, p-value)``.

    Normal approximation with the tie correction of the variance and a continuity
    correction, as ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")``. With every
    value tied there is no evidence either way: p = 1.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u: both samples must be non-empty")
    values = np.concatenate([a, b])
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ties = np.diff(np.r_[starts, ordered.size])
    ranks = np.empty(ordered.size)
    ranks[order] = np.repeat(starts + (ties + 1) / 2.0, ties)  # 1-based midranks
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float((ties.astype(float) ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return u1, 1.0
    z = (max(u1, n1 * n2 - u1) - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return u1, min(1.0, math.erfc(z / math.sqrt(2.0)))  # 2 * P(Z > z)


_REDUCERS: dict[str, Callable[..., np.ndarray]] = dict(median=np.median, min=np.min, mean=np.mean)


def statistic_of(samples: Sequence[float], statistic: Statistic) -> float:
    return float(_REDUCERS[statistic](np.asarray(samples, dtype=float)))


def _bootstrap(samples: np.ndarray, statistic: Statistic, rng: np.random.Generator,
               resamples: int) -> np.ndarray:  # fmt: skip
    block = max(1, _BLOCK // samples.size)
    return np.concatenate([
        _REDUCERS[statistic](samples[rng.integers(0, samples.size, (k, samples.size))], axis=1)
        for k in (min(block, resamples - s) for s in range(0, resamples, block))
    ])  # fmt: skip


def ratio_interval(
    baseline: Sequence[float], candidate: Sequence[float], statistic: Statistic = "median",
    confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED,
) -> tuple[float, float]:  # fmt: skip
    """Percentile-bootstrap interval of ``statistic(candidate) / statistic(baseline)``.

    Seeded afresh on every call, so a row's interval depends only on its own samples. For
    ``min`` the bootstrap is crude (resampled minima stick to the sample minimum); it still
    brackets the ratio, and the Mann–Whitney test carries the significance.
    """
    rng = np.random.default_rng(seed)
    base = _bootstrap(np.asarray(baseline, dtype=float), statistic, rng, resamples)
    cand = _bootstrap(np.asarray(candidate, dtype=float), statistic, rng, resamples)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(cand / base, [tail, 1.0 - tail])
    return float(low), float(high)


def geomean(values: Iterable[float]) -> float:
    logs = [math.log(v) for v in values]
    return math.exp(math.fsum(logs) / len(logs)) if logs else math.nan


# --- Student's t distribution ---------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if not df > 0:
        raise ValueError(f"t_sf: df must be > 0, got {df}")
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (bisection on :func:`t_sf`; to about 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_sf(high, df) > 1.0 - p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if t_sf(mid, df) > 1.0 - p else (low, mid)
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


# --- the between-rounds test ------------------------------------------------------------------
#
# A row measured in rounds has one statistic per round (its median, say). Interference only
# ever slows a round down, often by a lot (a neighbour's burst: 1.3-2x on a shared machine),
# while the rounds it spares agree closely. So, as ``timeit`` advises for its repeats, a row's
# time is its *fastest* round's statistic, and the spread that matters is that of the
# fastest majority of its rounds, the ones interference spared.

MIN_VARIANCE = (1.0, 0.6817, 0.5595, 0.4917, 0.4475, 0.4159, 0.3919, 0.3729, 0.3574, 0.3443)
"""Variance of the minimum of n independent standard normal values, n = 1..10 (order
statistics tables); beyond 10 the last one, an overestimate."""


@dataclass(frozen=True)
class Drift:
    """A file's typical spread of spared rounds (variance of log times) and its degrees of
    freedom."""

    variance: float = 0.0
    df: float = 0.0


NO_DRIFT = Drift()
MAX_DRIFT_DF = 30.0
"""Cap on the typical drift's degrees of freedom: it is a median over rows, not a pooled
variance, and rows aren't independent; beyond 30 the t quantile barely moves anyway."""


@dataclass(frozen=True)
class RoundsTest:
    """Fastest round against fastest round, with the spared rounds' spread as the noise."""

    baseline: float
    candidate: float
    """The fastest round's statistic of each file."""
    ratio: float
    low: float
    high: float
    p_value: float
    df: float
    se: float
    """Standard error of log(ratio)."""


def _fastest_majority(rounds: Sequence[float]) -> np.ndarray:
    """Logs of the fastest ⌊n/2⌋ + 1 rounds (at least two), ascending."""
    logs = np.sort(np.log(np.asarray(rounds, dtype=float)))
    return logs[: max(2, logs.size // 2 + 1)]


def round_spread(rounds: Sequence[float]) -> float:
    """Variance (n - 1) of the log statistics of a row's fastest majority of rounds."""
    return float(_fastest_majority(rounds).var(ddof=1))


def typical_drift(rows: Iterable[Sequence[float]]) -> Drift:
    """The median over rows of :func:`round_spread`: a file's typical drift.

    The median, because a few rows whose rounds all disagree shouldn't set the floor for
    all. Its degrees of freedom are the rows' together, capped at :data:`MAX_DRIFT_DF`.
    """
    rounds = [list(r) for r in rows if len(r) >= 2]
    if not rounds:
        return NO_DRIFT
    variance = float(np.median([round_spread(r) for r in rounds]))
    df = sum(_fastest_majority(r).size - 1 for r in rounds)
    return Drift(variance, min(MAX_DRIFT_DF, float(df)))


def rounds_test(
    baseline: Sequence[float], candidate: Sequence[float], confidence: float = 0.95,
    floor_se: float = 0.0, typical: tuple[Drift, Drift] = (NO_DRIFT, NO_DRIFT),
) -> RoundsTest:  # fmt: skip
    """A t-test of log(fastest candidate round / fastest baseline round).

    ``baseline``/``candidate`` hold one statistic per round (at least two each). Each side's
    variance is the larger of its own :func:`round_spread` and its file's ``typical``
    drift, times the variance of a minimum (:data:`MIN_VARIANCE`); a variance from two or
    three rounds is itself very uncertain, and rounds agreeing by chance must not make a
    tiny shift significant. The degrees of freedom follow whichever variance was used
    (Welch–Satterthwaite across the two sides). ``floor_se`` bounds the standard error by
    the within-round uncertainty of the samples.
    """
    if len(baseline) < 2 or len(candidate) < 2:
        raise ValueError("rounds_test: needs at least two rounds on each side")
    sides = []
    for values, drift in ((baseline, typical[0]), (candidate, typical[1])):
        spared = _fastest_majority(values)
        own = float(spared.var(ddof=1))
        variance, df = (own, spared.size - 1.0) if own >= drift.variance else (
            drift.variance, max(1.0, drift.df))  # fmt: skip
        factor = MIN_VARIANCE[min(len(values), len(MIN_VARIANCE)) - 1]
        sides.append((float(np.exp(spared[0])), variance * factor, df))
    (b, vb, df_b), (c, vc, df_c) = sides
    between = math.sqrt(vb + vc)
    df = (vb + vc) ** 2 / (vb**2 / df_b + vc**2 / df_c) if between > 0 else df_b + df_c
    se = max(between, floor_se)
    ratio = c / b
    effect = math.log(ratio)
    if se == 0.0:
        return RoundsTest(b, c, ratio, ratio, ratio, 1.0 if effect == 0.0 else 0.0, df, 0.0)
    p = min(1.0, 2.0 * t_sf(abs(effect) / se, df))
    q = t_quantile(0.5 + confidence / 2.0, df)
    low, high = ratio * math.exp(-q * se), ratio * math.exp(q * se)
    return RoundsTest(b, c, ratio, low, high, p, df, se)


def split_rounds(samples: Sequence[float], sizes: Sequence[int]) -> list[list[float]]:
    """The pooled samples cut back into rounds of the given sizes (which must add up)."""
    if sum(sizes) != len(samples) or any(s < 1 for s in sizes):
        raise ValueError(f"round sizes {list(sizes)} don't partition {len(samples)} samples")
    out, start = [], 0
    for size in sizes:
        out.append(list(samples[start : start + size]))
        start += size
    return out

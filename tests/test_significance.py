"""Tests of the two-sample statistics behind ``compare`` (``deconvbench/significance.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconvbench.analysis import significance as sig


def noise(
    rng: np.random.Generator, n: int = 30, sigma: float = 0.02, scale: float = 1.0
) -> list[float]:
    return list(scale * rng.lognormal(0.0, sigma, n))


# --- Mann–Whitney U against scipy -----------------------------------------------------------


def test_mann_whitney_matches_scipy_asymptotic() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for _ in range(300):
        n1, n2 = (int(v) for v in rng.integers(1, 60, 2))
        decimals = int(rng.integers(0, 3))  # rounding makes ties, many with 0 decimals
        x = np.round(rng.lognormal(0, 0.3, n1), decimals)
        y = np.round(rng.lognormal(rng.normal(0, 0.2), 0.3, n2), decimals)
        u, p = sig.mann_whitney_u(x, y)
        ref = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        assert u == pytest.approx(float(ref.statistic), abs=1e-9)
        assert p == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-15)


def test_mann_whitney_edge_cases() -> None:
    assert sig.mann_whitney_u([1.0, 1.0, 1.0], [1.0, 1.0]) == (3.0, 1.0)  # every value tied
    u, p = sig.mann_whitney_u(list(range(10)), list(range(100, 110)))
    assert u == 0.0 and p < 1e-3  # completely separated
    with pytest.raises(ValueError):
        sig.mann_whitney_u([], [1.0])


def test_mann_whitney_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=20), rng.normal(0.5, size=25)
    (u1, p1), (u2, p2) = sig.mann_whitney_u(x, y), sig.mann_whitney_u(y, x)
    assert u1 + u2 == 20 * 25 and p1 == pytest.approx(p2)


# --- the bootstrap interval -------------------------------------------------------------------


def test_ratio_interval_is_deterministic_and_brackets_the_ratio() -> None:
    rng = np.random.default_rng(11)
    b, c = noise(rng, 40, 0.05), noise(rng, 40, 0.05, 1.2)
    low, high = sig.ratio_interval(b, c)
    assert (low, high) == sig.ratio_interval(b, c)  # fixed seed
    assert low < np.median(c) / np.median(b) < high
    assert 1.1 < low < high < 1.3


def test_ratio_interval_of_constant_samples_is_the_ratio() -> None:
    for statistic in ("median", "min", "mean"):
        assert sig.ratio_interval([2.0] * 8, [3.0] * 6, statistic) == (1.5, 1.5)


def test_ratio_interval_with_many_samples_stays_in_bounded_memory() -> None:
    rng = np.random.default_rng(0)
    low, high = sig.ratio_interval(noise(rng, 10_000), noise(rng, 10_000), resamples=500)
    assert low < 1.0 < high and high - low < 0.01


# --- Student's t ------------------------------------------------------------------------------


def test_t_distribution_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1.0, 1.5, 2.0, 3.77, 4.0, 10.0, 30.0, 200.0, 1e4):
        for t in (-50.0, -3.0, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 4.5, 10.0, 100.0):
            assert sig.t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), rel=1e-9, abs=1e-14)
        for p in (0.001, 0.025, 0.3, 0.5, 0.9, 0.975, 0.9999):
            assert sig.t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-9,
                                                          abs=1e-12)  # fmt: skip


@given(st.floats(-1e3, 1e3), st.floats(0.5, 1e3))
def test_t_sf_is_a_tail_probability(t: float, df: float) -> None:
    p = sig.t_sf(t, df)
    assert 0.0 <= p <= 1.0
    assert p + sig.t_sf(-t, df) == pytest.approx(1.0)


def test_t_rejects_impossible_arguments() -> None:
    with pytest.raises(ValueError):
        sig.t_sf(1.0, 0.0)
    with pytest.raises(ValueError):
        sig.t_quantile(1.0, 5.0)


# --- the between-rounds test --------------------------------------------------------------------


def test_rounds_test_compares_the_fastest_rounds() -> None:
    got = sig.rounds_test([1.00, 1.02, 1.90], [1.31, 1.30, 1.32])  # a burst hit one round
    assert (got.baseline, got.candidate) == (1.00, 1.30)
    assert got.ratio == pytest.approx(1.30)
    assert got.low < 1.30 < got.high and math.sqrt(got.low * got.high) == pytest.approx(1.30)


def test_rounds_test_is_a_t_test_with_the_spared_rounds_spread() -> None:
    stats = pytest.importorskip("scipy.stats")
    b, c = [1.00, 1.02, 1.5], [1.10, 1.13, 1.4]  # spared: the two fastest of each
    vb = np.var(np.log([1.00, 1.02]), ddof=1) * sig.MIN_VARIANCE[2]
    vc = np.var(np.log([1.10, 1.13]), ddof=1) * sig.MIN_VARIANCE[2]
    se = math.sqrt(vb + vc)
    df = (vb + vc) ** 2 / (vb**2 + vc**2)  # one degree of freedom a side
    got = sig.rounds_test(b, c)
    assert got.se == pytest.approx(se) and got.df == pytest.approx(df)
    assert got.p_value == pytest.approx(2 * float(stats.t.sf(math.log(1.10) / se, df)))
    q = float(stats.t.ppf(0.975, df))
    assert math.log(got.high / got.low) == pytest.approx(2 * q * se)


def test_min_variance_matches_order_statistics() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        draws = rng.standard_normal((200_000, n)).min(axis=1)
        assert draws.var() == pytest.approx(sig.MIN_VARIANCE[n - 1], rel=0.02)


def test_a_burst_in_one_round_does_not_make_noise() -> None:
    # both files: two spared rounds agreeing within 1%, one round hit by interference
    got = sig.rounds_test([1.0, 1.01, 1.8], [1.005, 1.5, 1.0], floor_se=0.005)
    assert got.ratio == pytest.approx(1.0) and got.p_value > 0.5


def test_the_typical_drift_floors_rounds_that_agree_by_chance() -> None:
    lucky = sig.rounds_test([1.0, 1.0, 1.0], [1.03, 1.03, 1.03])
    assert lucky.se == 0.0 and lucky.p_value == 0.0
    drift = sig.Drift(variance=0.02**2, df=30)
    floored = sig.rounds_test([1.0, 1.0, 1.0], [1.03, 1.03, 1.03], typical=(drift, drift))
    assert floored.se == pytest.approx(math.sqrt(2 * 0.02**2 * sig.MIN_VARIANCE[2]))
    assert floored.df == pytest.approx(60.0) and floored.p_value > 0.05
    same = sig.rounds_test([2.0, 2.0], [2.0, 2.0])
    assert same.p_value == 1.0 and (same.low, same.high) == (1.0, 1.0)


def test_typical_drift_is_the_median_spread_with_capped_df() -> None:
    rows = [[1.0, 1.01, 2.0], [1.0, 1.02, 1.02], [1.0, 1.0, 1.0], [5.0]]
    got = sig.typical_drift(rows)
    spreads = sorted(sig.round_spread(r) for r in rows[:3])
    assert got.variance == pytest.approx(spreads[1]) and got.df == 3.0
    assert sig.typical_drift([[1.0, 1.1]] * 100).df == sig.MAX_DRIFT_DF
    assert sig.typical_drift([[1.0]]) == sig.NO_DRIFT


def test_rounds_test_needs_two_rounds_each() -> None:
    with pytest.raises(ValueError):
        sig.rounds_test([1.0], [1.0, 1.1])


def test_split_rounds() -> None:
    assert sig.split_rounds([1.0, 2.0, 3.0, 4.0], [1, 3]) == [[1.0], [2.0, 3.0, 4.0]]
    for sizes in ([1, 2], [0, 4], [5]):
        with pytest.raises(ValueError):
            sig.split_rounds([1.0, 2.0, 3.0, 4.0], sizes)


def test_geomean() -> None:
    assert sig.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert math.isnan(sig.geomean([]))

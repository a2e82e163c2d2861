"""deconvbench.stats against numpy and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from deconvbench.harness import notes, stats
from deconvbench.harness.measure import PAGE_BYTES, quality_notes
from deconvbench.harness.notes import NoteKind

samples_st = st.lists(
    st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=200,
)


@given(samples_st)
def test_descriptive_statistics_match_numpy(samples: list[float]) -> None:
    s = stats.summarize(samples)
    arr = np.asarray(samples)
    assert s.n == len(samples)
    assert s.median == pytest.approx(np.median(arr), rel=1e-12)
    assert s.mean == pytest.approx(arr.mean(), rel=1e-12)
    assert s.min == arr.min() and s.max == arr.max()
    assert s.q1 == pytest.approx(np.percentile(arr, 25), rel=1e-12)
    assert s.q3 == pytest.approx(np.percentile(arr, 75), rel=1e-12)
    if len(samples) > 1:
        assert s.stddev == pytest.approx(arr.std(ddof=1), rel=1e-9, abs=1e-9 * arr.max())
    else:
        assert math.isnan(s.stddev)


def _scipy_ranks(n: int, confidence: float) -> tuple[int, int] | None:
    """The largest j with 2·P(B <= j-1) <= 1 - confidence, straight from scipy."""
    alpha_half = (1 - confidence) / 2
    valid = [j for j in range(1, (n + 1) // 2 + 1) if binom.cdf(j - 1, n, 0.5) <= alpha_half]
    return (max(valid), n - max(valid) + 1) if valid else None


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_median_ci_ranks_match_scipy_binomial(confidence: float) -> None:
    for n in [*range(1, 160), 333, 1000, 4001]:
        assert stats.median_ci_ranks(n, confidence) == _scipy_ranks(n, confidence), n


def test_ranks_need_six_samples_at_95_percent() -> None:
    assert stats.median_ci_ranks(5) is None
    assert stats.median_ci_ranks(6) == (1, 6)  # coverage 1 - 2/64 = 96.9%


def test_ranks_are_found_for_very_large_n() -> None:
    j, k = stats.median_ci_ranks(200_000)  # type: ignore[misc]
    assert binom.cdf(j - 1, 200_000, 0.5) <= 0.025 < binom.cdf(j, 200_000, 0.5)
    assert k == 200_000 - j + 1


@pytest.mark.parametrize("k, n", [(0, 1), (3, 10), (40, 100), (480, 1000), (700, 1000), (9, 9)])
def test_binomial_cdf_matches_scipy(k: int, n: int) -> None:
    assert stats.binom_half_cdf(k, n) == pytest.approx(binom.cdf(k, n, 0.5), rel=1e-10)


@given(st.lists(st.floats(0.1, 10.0), min_size=6, max_size=300))
def test_ci_brackets_the_sample_median(samples: list[float]) -> None:
    s = stats.summarize(samples)
    assert s.ci_low is not None and s.ci_high is not None
    assert s.ci_low <= s.median <= s.ci_high
    assert s.ci_rel_halfwidth == pytest.approx((s.ci_high - s.ci_low) / 2 / s.median)


def test_ci_coverage_is_at_least_95_percent_on_skewed_data() -> None:
    """Distribution-free: holds for a lognormal (skewed, like timings) with known median 1."""
    rng = np.random.default_rng(7)
    covered = 0
    trials = 2000
    for _ in range(trials):
        sample = sorted(rng.lognormal(0.0, 0.5, size=25))
        low, high = stats.median_ci(sample)  # type: ignore[misc]
        covered += low <= 1.0 <= high
    assert covered / trials >= 0.94  # exact coverage for n=25 is 95.7%


def test_no_ci_below_six_samples() -> None:
    s = stats.summarize([1.0, 2.0, 3.0])
    assert s.ci_low is None and s.ci_high is None
    assert s.ci_rel_halfwidth == math.inf


def test_quantile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        stats.quantile([], 0.5)
    with pytest.raises(ValueError):
        stats.quantile([1.0], 1.5)
    with pytest.raises(ValueError):
        stats.summarize([])


def test_relative_halfwidth() -> None:
    assert stats.relative_halfwidth((9.0, 11.0), 10.0) == pytest.approx(0.1)
    assert stats.relative_halfwidth(None, 10.0) == math.inf
    assert stats.relative_halfwidth((0.0, 0.0), 0.0) == math.inf


def test_no_notes_for_a_tight_measurement() -> None:
    s = stats.summarize([1.0 + 0.001 * (i % 3) for i in range(20)])
    assert quality_notes(s, precision=0.02, min_samples=5) == []


def test_notes_name_each_problem_and_know_their_kind() -> None:
    noisy = stats.summarize([1.0, 2.0, 1.0, 3.0, 1.0, 2.5, 1.2, 0.8])
    said = quality_notes(noisy, precision=0.02, min_samples=10, budget_exhausted=True)
    text = " | ".join(n.text for n in said)
    assert "only 8 samples (< 10)" in text
    assert "unstable: the middle half of the samples spans 102% of the median" in text
    assert "misses the ±2.0% target" in text
    assert "time budget exhausted" in text
    assert [n.kind for n in said] == [
        NoteKind.FEW_SAMPLES, NoteKind.UNSTABLE, NoteKind.WIDE_CI, NoteKind.BUDGET
    ]

    few = stats.summarize([1.0, 1.0, 1.0])
    said = quality_notes(few, precision=0.02, min_samples=3)
    assert [n.kind for n in said] == [NoteKind.NO_CI]
    assert said[0].text == "no 95% CI of the median from 3 samples (needs >= 6)"


def test_a_message_splits_back_into_the_notes_that_made_it() -> None:
    made = [
        notes.few_samples(3, 5), notes.unstable(0.15), notes.no_ci(3), notes.wide_ci(0.03, 0.02),
        notes.budget_exhausted(), notes.rounds_disagree(1.0, 1.3, 0.3),
        notes.memory_unknown("no memory probe for device 'tpu'"), notes.fresh_pages(13.6),
        notes.engine({"precision": "f32", "threads": 2, "compile_s": 0.0931}),
        notes.interference("4 of 30 samples at multiples of 4 ms", 1, 3, True),
    ]
    assert [n.kind for n in made] == [k for k in NoteKind if k != NoteKind.OTHER]
    assert notes.split(notes.join(made)) == tuple(made)
    assert notes.split("") == ()
    assert notes.split("something else; time budget exhausted") == (
        notes.Note(NoteKind.OTHER, "something else"), notes.budget_exhausted()
    )


def test_an_unstable_note_of_an_older_version_is_still_recognised() -> None:
    (note,) = notes.split("unstable: stddev is 15% of the mean")
    assert note.kind == NoteKind.UNSTABLE


def test_a_few_interrupted_samples_are_not_unstable_but_a_wide_middle_is() -> None:
    steady = [1.0] * 17 + [3.0, 4.0, 5.0]  # three interruptions: stddev 60% of the mean
    summary = stats.summarize(steady)
    assert summary.cv > 0.5 and summary.relative_iqr == 0.0
    assert quality_notes(summary, precision=0.5, min_samples=5) == []
    wide = stats.summarize([1.0, 1.2, 1.0, 1.2, 1.0, 1.2, 1.0, 1.2])
    kinds = [n.kind for n in quality_notes(wide, precision=0.5, min_samples=5)]
    assert kinds == [NoteKind.UNSTABLE]


def test_fresh_pages_are_noted_from_a_tenth_of_a_megabyte_a_call() -> None:
    summary = stats.summarize([1.0] * 10)
    pages = 0.1e6 / PAGE_BYTES
    assert quality_notes(summary, precision=0.5, min_samples=5, faults_per_call=pages * 0.9) == []
    (note,) = quality_notes(summary, precision=0.5, min_samples=5, faults_per_call=pages * 3)
    assert note.kind == NoteKind.FRESH_PAGES and note.text.startswith("fresh pages: 0.3 MB a call")


def test_an_engine_note_shows_its_facts_and_never_the_separator() -> None:
    note = notes.engine({"precision": "f32", "compile_s": 0.093142, "odd": "a;b"})
    assert note.text == "engine: precision=f32, compile_s=0.0931, odd=a,b"
    assert notes.split(note.text) == (note,)

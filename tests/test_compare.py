"""The comparison engine: matching, the Mann–Whitney test, intervals, verdicts, speedups.

Fixtures are written with the real ``ResultWriter`` and read back with ``read_results``, so
every test sees exactly what ``deconvbench compare`` would get from two CSV files.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deconvbench.analysis import compare as cmp
from deconvbench.cli.options import parse_threshold
from deconvbench.errors import InputError
from deconvbench.results.reader import read_results

from helpers import Row, drifting_pairs, drifting_rounds, frame, noise, row

FIVE = parse_threshold("5%")


def run(tmp_path: Path, base: list[Row], cand: list[Row], **kw: object) -> cmp.Comparison:
    b, c = frame(tmp_path, base, "base.csv"), frame(tmp_path, cand, "cand.csv")
    return cmp.compare_frames(b, c, kw.pop("threshold", FIVE), **kw)  # type: ignore[arg-type]


def grid(rng: np.random.Generator, shift: float = 1.0, n: int = 30) -> tuple[list[Row], list[Row]]:
    """Two files with the same 12 rows (3 strategies x 2 cases x 2 passes); the candidate's
    samples drawn independently and multiplied by ``shift``."""
    base, cand = [], []
    for impl in ("numpy/direct", "torch-cpu/native", "numba/tiled"):
        for case in ("2d-k4-s2", "1d-k25-s4"):
            for pass_ in ("forward", "backward"):
                scale = rng.uniform(0.05, 50.0)
                base.append(row(impl, case, pass_, noise(rng, n, scale=scale)))
                cand.append(row(impl, case, pass_, noise(rng, n, scale=scale * shift)))
    return base, cand


# --- threshold --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "statistic", "fraction"),
    [("5%", "median", 0.05), ("0.05", "median", 0.05), ("median:5%", "median", 0.05),
     ("min:3%", "min", 0.03), ("mean:0.02", "mean", 0.02), (" 12.5% ", "median", 0.125),
     ("0%", "median", 0.0), ("150%", "median", 1.5)],
)  # fmt: skip
def test_parse_threshold(text: str, statistic: str, fraction: float) -> None:
    t = parse_threshold(text)
    assert (t.statistic, t.fraction) == (statistic, pytest.approx(fraction))


@pytest.mark.parametrize(
    "text",
    ["", "5", "abc", "max:5%", "median:", "-5%", "5%%", "nan%", "inf", "2000%", "median:five"],
)
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(InputError, match="--threshold"):
        parse_threshold(text)


def test_a_bare_number_of_one_or_more_is_refused_with_a_hint() -> None:
    with pytest.raises(InputError, match="fraction below 1"):
        parse_threshold("5")


# --- verdicts -----------------------------------------------------------------------------


def test_identical_samples_are_unchanged(tmp_path: Path) -> None:
    base, _ = grid(np.random.default_rng(1))
    result = run(tmp_path, base, base)
    assert {r.verdict for r in result.rows} == {"unchanged"}
    assert not result.gate_failed
    assert result.geomean == (pytest.approx(1.0), 12)
    assert all(r.ratio == 1.0 and r.p_value == pytest.approx(1.0, abs=0.02) for r in result.rows)


def test_slowed_by_thirty_percent_is_regressed_everywhere(tmp_path: Path) -> None:
    base, cand = grid(np.random.default_rng(2), shift=1.3)
    result = run(tmp_path, base, cand)
    assert [r.verdict for r in result.rows] == ["regressed"] * 12
    assert result.gate_failed and result.counts["regressed"] == 12
    assert result.geomean is not None and result.geomean[0] == pytest.approx(1.3, rel=0.02)
    for r in result.rows:
        assert r.ratio_ci_low is not None and r.ratio_ci_high is not None
        assert 1.05 < r.ratio_ci_low < r.ratio < r.ratio_ci_high  # type: ignore[operator]
        assert r.p_value is not None and r.p_value < 1e-6
        assert "slower" in r.reason


def test_swapping_the_files_swaps_regressed_and_improved(tmp_path: Path) -> None:
    base, cand = grid(np.random.default_rng(2), shift=1.3)
    result = run(tmp_path, cand, base)
    assert [r.verdict for r in result.rows] == ["improved"] * 12
    assert not result.gate_failed
    for r in result.rows:  # "faster" in speed: 1 / ratio - 1, the mirror of "slower"
        assert r.ratio is not None
        assert r.reason.startswith(f"{1 / r.ratio - 1:.1%} faster (> 5.0%)")


def test_a_two_percent_shift_under_a_five_percent_threshold_is_not_flagged(tmp_path: Path) -> None:
    base, cand = grid(np.random.default_rng(4), shift=1.02, n=60)
    result = run(tmp_path, base, cand)
    assert [r.verdict for r in result.rows] == ["unchanged"] * 12
    # ... while a 1% threshold sees it, since the shift is real and the samples precise
    strict = run(tmp_path / "strict", base, cand, threshold=parse_threshold("1%"))
    assert Counter(r.verdict for r in strict.rows)["regressed"] >= 10


def harness_like_pair(rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Two independent draws of one row's samples, as the harness leaves them: noise between
    1% and 15%, rare slow outliers (interruptions), and as many samples as a ±2% CI of the
    median needs (5 to 200)."""
    sigma, scale = rng.uniform(0.01, 0.15), rng.uniform(0.05, 50.0)
    n = int(np.clip(math.ceil((1.96 * 1.2533 * sigma / 0.02) ** 2), 5, 200))

    def draw() -> list[float]:
        samples = scale * rng.lognormal(0.0, sigma, n)
        outliers = rng.random(n) < 0.03
        samples[outliers] *= rng.uniform(1.5, 4.0, int(outliers.sum()))
        return list(samples)

    return draw(), draw()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_alone_raises_false_alarms_in_under_one_percent_of_rows(
    seed: int, tmp_path: Path
) -> None:
    rng = np.random.default_rng(seed)
    pairs = [harness_like_pair(rng) for _ in range(200)]
    base = [row(f"numpy/s{i}", samples=b) for i, (b, _) in enumerate(pairs)]
    cand = [row(f"numpy/s{i}", samples=c) for i, (_, c) in enumerate(pairs)]
    result = run(tmp_path, base, cand)
    alarms = result.counts["regressed"] + result.counts["improved"]
    assert alarms < 0.01 * len(result.rows), result.counts
    assert result.counts["unchanged"] > 0.8 * len(result.rows), result.counts


# --- rounds: the between-run noise --------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_drift_between_rounds_fools_the_samples_but_not_the_rounds(
    seed: int, tmp_path: Path
) -> None:
    base, cand = drifting_pairs(seed, 200)
    result = run(tmp_path, base, cand)
    alarms = result.counts["regressed"] + result.counts["improved"]
    assert alarms < 0.01 * len(result.rows), result.counts
    assert {r.test for r in result.rows} == {"rounds 3+3"}
    # the same samples without their rounds: the within-run test cries wolf on the drift
    for r in base + cand:
        r["round_samples"] = None
    blind = run(tmp_path / "blind", base, cand)
    assert blind.counts["regressed"] + blind.counts["improved"] > 0.03 * len(blind.rows)
    assert {r.test for r in blind.rows} == {"mann-whitney"}


def test_rounds_still_catch_a_real_slowdown_through_the_drift(tmp_path: Path) -> None:
    base, cand = drifting_pairs(3, 100, scale=1.3)
    result = run(tmp_path, base, cand)
    # 86 here (85% on two real smoke runs): the rest had a burst in two of three rounds
    assert result.counts["regressed"] >= 80, result.counts
    assert result.counts["unchanged"] == 0  # what isn't caught is noisy, never "unchanged"
    assert result.gate_failed
    r = result.rows[0]
    assert r.reason.endswith("(rounds 3+3, fastest each)") and r.ratio_ci_low is not None


def test_rounds_are_used_only_when_both_files_have_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    b, sizes = drifting_rounds(rng)
    c, _ = drifting_rounds(rng)
    cases = [
        (dict(rounds=3, round_samples=sizes), dict(rounds=3, round_samples=sizes), "rounds 3+3"),
        (dict(rounds=1, round_samples="60"), dict(rounds=3, round_samples=sizes), "mann-whitney"),
        (dict(round_samples="20;20"), dict(round_samples=sizes), "mann-whitney"),  # 40 != 60
        (dict(round_samples="a;b;c"), dict(round_samples=sizes), "mann-whitney"),
        (dict(round_samples="30;0;30"), dict(round_samples=sizes), "mann-whitney"),
    ]
    for i, (b_extra, c_extra, test) in enumerate(cases):
        (r,) = run(tmp_path / str(i), [row(samples=b, **b_extra)], [row(samples=c, **c_extra)]).rows
        assert r.test == test, (b_extra, r.reason)


def test_round_sizes() -> None:
    assert cmp.round_sizes({"round_samples": "3;4"}, 7) == [3, 4]
    assert cmp.round_sizes({"round_samples": None}, 7) == [7]
    assert cmp.round_sizes({}, 7) == [7]
    assert cmp.round_sizes({"round_samples": "3;5"}, 7) == [7]


def test_too_few_samples_are_noisy_and_say_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    result = run(tmp_path, [row(samples=noise(rng, 4))], [row(samples=noise(rng, 30, scale=2))])
    (r,) = result.rows
    assert r.verdict == "noisy" and "too few samples: baseline 4, candidate 30" in r.reason
    assert r.ratio == pytest.approx(2.0, rel=0.05) and r.p_value is None


def test_wide_dispersion_is_noisy_and_says_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    b, c = noise(rng, 8, sigma=0.6), noise(rng, 8, sigma=0.6)
    (r,) = run(tmp_path, [row(samples=b)], [row(samples=c)]).rows
    assert r.verdict == "noisy" and r.reason.startswith("too dispersed")
    assert r.ratio_ci_low is not None and r.ratio_ci_high is not None
    assert r.ratio_ci_low < r.ratio / 1.05 and r.ratio_ci_high > r.ratio * 1.05  # type: ignore[operator]


def test_a_wide_interval_wholly_beyond_the_threshold_is_still_regressed(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    b, c = noise(rng, 40, sigma=0.3), noise(rng, 40, sigma=0.3, scale=3.0)
    (r,) = run(tmp_path, [row(samples=b)], [row(samples=c)]).rows
    assert r.verdict == "regressed" and r.ratio_ci_low is not None and r.ratio_ci_low > 1.05


def test_a_large_but_insignificant_ratio_is_noisy(tmp_path: Path) -> None:
    b = [1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0]
    c = [1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0]  # medians 1 and 5, samples mostly shared
    (r,) = run(tmp_path, [row(samples=b)], [row(samples=c)]).rows
    assert (r.verdict, r.ratio) == ("noisy", 5.0)
    assert r.reason == f"400.0% slower but p = {r.p_value:.2g} >= 0.05"


@pytest.mark.parametrize("status", ["mismatch", "error", "crashed", "timeout", "oom"])
def test_ok_to_anything_wrong_is_failed(status: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    result = run(tmp_path, [row(samples=noise(rng))], [row(status=status)])
    (r,) = result.rows
    assert r.verdict == "failed" and result.gate_failed
    assert r.reason == f"was ok, now {status}: {status} happened"
    assert (r.baseline_status, r.candidate_status) == ("ok", status)


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        ("ok", "unsupported", "failed"),
        ("ok", "unavailable", "failed"),
        ("ok", "skipped", "failed"),
        ("unsupported", "error", "failed"),
        ("unavailable", "mismatch", "failed"),
        ("mismatch", "mismatch", "unchanged"),
        ("error", "mismatch", "unchanged"),
        ("unsupported", "unsupported", "unchanged"),
        ("unsupported", "ok", "new"),
        ("mismatch", "ok", "new"),
    ],
)
def test_status_transitions(before: str, after: str, verdict: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    sample = {"ok": noise(rng)}
    base, cand = (
        row(status=before, samples=sample.get(before)),
        row(status=after, samples=sample.get(after)),
    )
    (r,) = run(tmp_path, [base], [cand]).rows
    assert r.verdict == verdict, r.reason


def test_verified_only_rows_are_unchanged_without_numbers(tmp_path: Path) -> None:
    (r,) = run(tmp_path, [row()], [row()]).rows
    assert r.verdict == "unchanged" and "not timed" in r.reason and r.ratio is None


def test_new_and_missing_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    keep = noise(rng)
    base = [row("numpy/direct", samples=keep), row("numpy/fft", samples=noise(rng))]
    cand = [row("numpy/direct", samples=keep), row("numba/tiled", samples=noise(rng))]
    result = run(tmp_path, base, cand)
    assert [(r.implementation, r.verdict) for r in result.rows] == [
        ("numpy/direct", "unchanged"),
        ("numpy/fft", "missing"),
        ("numba/tiled", "new"),
    ]
    assert not result.gate_failed
    missing, new = result.rows[1], result.rows[2]
    assert missing.reason == "not in candidate" and new.reason == "not in baseline"
    assert missing.baseline_status == "ok" and missing.candidate_status == ""


def test_rows_match_on_problem_parameters_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    samples = noise(rng)
    changed = row(samples=samples, padding=(2, 2))  # the suite's case was edited
    result = run(tmp_path, [row(samples=samples)], [changed])
    assert [r.verdict for r in result.rows] == ["missing", "new"]
    assert result.rows[1].padding == "2x2"


def test_row_identity_fields(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    (r,) = run(tmp_path, [row(samples=noise(rng))], [row(samples=noise(rng))]).rows
    assert (r.suite, r.case, r.implementation, r.backend, r.algorithm, r.pass_, r.dtype) == (
        "smoke",
        "2d-k4-s2",
        "numpy/direct",
        "numpy",
        "direct",
        "forward",
        "float32",
    )
    assert (r.batch, r.input, r.kernel, r.stride, r.bias) == ("2", "8x8", "4x4", "2x2", "true")
    record = r.record()
    assert record["pass"] == "forward" and "pass_" not in record
    for key in ("baseline_ms", "candidate_ms", "ratio", "p_value", "verdict"):
        assert key in record


def test_the_min_statistic(tmp_path: Path) -> None:
    """A slower tail leaves the minimum alone: min:3% does not flag it, the median does."""
    rng = np.random.default_rng(15)
    b = noise(rng, 60, 0.01)
    c = [v * (1.0 if i % 3 == 0 else 1.2) for i, v in enumerate(noise(rng, 60, 0.01))]
    (by_min,) = run(
        tmp_path, [row(samples=b)], [row(samples=c)], threshold=parse_threshold("min:3%")
    ).rows
    (by_median,) = run(tmp_path / "m", [row(samples=b)], [row(samples=c)]).rows
    assert by_min.verdict != "regressed" and by_min.baseline_ms == pytest.approx(min(b))
    assert by_median.verdict == "regressed"


def test_results_are_deterministic(tmp_path: Path) -> None:
    base, cand = grid(np.random.default_rng(16), shift=1.04, n=12)
    assert run(tmp_path, base, cand) == run(tmp_path / "again", base, cand)


def test_geomeans_overall_and_by_axis(tmp_path: Path) -> None:
    base = [
        row("numpy/direct", samples=[1.0] * 6),
        row("numpy/fft", samples=[1.0] * 6),
        row(
            "torch-cpu/native",
            "1d-k25-s4",
            samples=[1.0] * 6,
            kernel=(25,),
            stride=(4,),
            input=(16,),
            padding=(11,),
            output_padding=(1,),
            dilation=(1,),
            output=(76,),
        ),
    ]
    cand = [
        dict(base[0], samples_ms=[2.0] * 6),
        dict(base[1], samples_ms=[0.5] * 6),
        dict(base[2], samples_ms=[4.0] * 6),
    ]
    result = run(tmp_path, base, cand)
    assert result.geomean == (pytest.approx(4.0 ** (1 / 3)), 3)
    assert result.slices["backend"] == {
        "numpy": (pytest.approx(1.0), 2),
        "torch-cpu": (pytest.approx(4.0), 1),
    }
    assert list(result.slices["algorithm"]) == ["direct", "fft", "native"]
    assert list(result.slices["kernel"]) == ["4x4", "25"]  # natural order
    assert result.slices["pass"] == {"forward": (pytest.approx(4.0 ** (1 / 3)), 3)}
    assert set(result.slices) == set(cmp.SLICE_AXES)
    assert list(result.counts) == list(cmp.VERDICTS)


def test_worst_first_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    b = [row(f"x/{i}", samples=noise(rng)) for i in range(4)]
    c = [
        dict(b[0], samples_ms=noise(rng, scale=1.2)),
        dict(b[1], samples_ms=noise(rng, scale=1.6)),
        dict(b[2], status="error", samples_ms=None, samples=None),
        dict(b[3], samples_ms=noise(rng)),
    ]
    ordered = cmp.worst_first(run(tmp_path, b, c).rows)
    assert [r.implementation for r in ordered] == ["x/2", "x/1", "x/0", "x/3"]


# --- normalisation by peak -------------------------------------------------------------------


def test_normalize_peak_cancels_a_machine_twice_as_fast(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    base = [row(samples=noise(rng))]
    cand = [row(samples=noise(rng, scale=0.5))]
    plain = run(tmp_path, base, cand)
    assert plain.rows[0].verdict == "improved"
    fair = run(
        tmp_path / "p",
        base,
        cand,
        normalize="peak",
        baseline_peak={"cpu/float32": 100.0},
        candidate_peak={"cpu/float32": 200.0},
    )
    (r,) = fair.rows
    assert r.verdict == "unchanged" and r.ratio == pytest.approx(1.0, rel=0.03)
    assert r.candidate_ms == pytest.approx(2 * float(np.median(cand[0]["samples_ms"])))  # type: ignore[arg-type]
    scalar = run(
        tmp_path / "s", base, cand, normalize="peak", baseline_peak=100.0, candidate_peak=200.0
    )
    assert scalar.rows == fair.rows


def test_normalize_peak_without_a_rate_for_the_row_is_noisy(tmp_path: Path) -> None:
    rng = np.random.default_rng(19)
    result = run(
        tmp_path,
        [row(samples=noise(rng))],
        [row(samples=noise(rng))],
        normalize="peak",
        baseline_peak={"cuda/float32": 1e4},
        candidate_peak={"cpu/float32": 100.0},
    )
    (r,) = result.rows
    assert r.verdict == "noisy" and r.reason == "no calibrated cpu/float32 peak for the baseline"


def test_normalize_peak_needs_peaks(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--normalize peak"):
        run(tmp_path, [row()], [row()], normalize="peak", baseline_peak=100.0)
    with pytest.raises(InputError, match="--normalize"):
        run(tmp_path / "x", [row()], [row()], normalize="gemm")


def test_peaks_from_sidecar() -> None:
    facts = {"peaks": {"cpu/float32": 116.2, "cuda/float16": 700000}}
    assert cmp.peaks_from_sidecar(facts, "a.csv") == {"cpu/float32": 116.2, "cuda/float16": 7e5}
    for bad in (
        {},
        {"peaks": {}},
        {"peaks": [1]},
        {"peaks": {"cpu/float32": "fast"}},
        {"peaks": {"cpu/float32": -1}},
        {"peaks": {"cpu/float32": True}},
    ):
        with pytest.raises(InputError, match=re.escape("a.csv")):
            cmp.peaks_from_sidecar(bad, "a.csv")


# --- bad input --------------------------------------------------------------------------------


def test_alpha_must_be_a_probability(tmp_path: Path) -> None:
    for i, alpha in enumerate((0.0, 1.0, -0.1, 5.0, math.nan)):
        with pytest.raises(InputError, match="--alpha"):
            run(tmp_path / str(i), [row()], [row()], alpha=alpha)


def test_duplicated_rows_are_refused(tmp_path: Path) -> None:
    b = frame(tmp_path, [row()], "b.csv")
    doubled = pd.concat([b, b], ignore_index=True)
    with pytest.raises(
        InputError, match=re.escape("head.csv: more than one row for smoke 2d-k4-s2")
    ):
        cmp.compare_frames(b, doubled, FIVE, names=("base.csv", "head.csv"))


def test_missing_columns_are_refused(tmp_path: Path) -> None:
    b = frame(tmp_path, [row()])
    with pytest.raises(
        InputError, match=re.escape("base.csv: missing columns: kernel, samples_ms")
    ):
        cmp.compare_frames(
            b.drop(columns=["kernel", "samples_ms"]), b, FIVE, names=("base.csv", "head.csv")
        )


def test_garbage_files_never_reach_the_engine(tmp_path: Path) -> None:
    """What ``compare`` reads goes through ``read_results``: garbage is an InputError (exit 2)."""
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("this,is\nnot,results\n")
    with pytest.raises(InputError, match=re.escape("garbage.csv")):
        read_results(garbage)


def test_a_file_without_rows_is_refused(tmp_path: Path) -> None:
    """A candidate whose run died before its first row must not pass the gate."""
    empty = frame(tmp_path, [], "empty.csv")
    rng = np.random.default_rng(0)
    full = frame(tmp_path, [row(samples=noise(rng))], "full.csv")
    for base, cand, name in ((full, empty, "candidate"), (empty, full, "baseline")):
        with pytest.raises(InputError, match=f"{name}: no rows"):
            cmp.compare_frames(base, cand, FIVE)

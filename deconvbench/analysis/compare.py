"""Pure comparison of two results files: matched rows, statistics, verdicts.

No I/O, no printing: the CLI reads the files, calls :func:`compare_frames` (or
``speedups.speedups`` for one file) and hands the result to ``render/compare.py``. The CI
gate is decided here, once. Per pair of ok rows, on the raw samples: the ratio (candidate /
baseline) of the threshold's statistic; its interval at level 1 - alpha by a fixed-seed
percentile bootstrap (it bounds exactly the ratio reported, whatever the skew); a two-sided
Mann–Whitney U test (normal approximation with tie and continuity corrections, as scipy's
``method="asymptotic"``; numpy only, scipy is a dev extra). ``regressed`` needs ratio > 1 + t
*and* p < alpha; ``improved`` mirrors it (ratio < 1 / (1 + t)) so swapping the files swaps
the two; ``noisy`` when the data cannot decide: too few samples, an interval reaching past the
threshold on both sides of the ratio (unless wholly beyond it), or a ratio beyond the
threshold that is not significant. docs/ci.md says more.

When both rows were measured in rounds (``run --rounds N``, N >= 2), the times are each
file's fastest round's statistic and the interval and p-value come from the rounds
(``significance.rounds_test``): the rounds are spread over the whole run, so they see the
machine's drift that a single measurement's samples can't, and tell it from a change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, cast, get_args

import numpy as np
import pandas as pd

from ..errors import InputError
from ..results.fields import parse_samples
from ..results.schema import FAILED_STATUSES, MATCH_COLUMNS
from .matching import Geomean, as_record, cell, index_rows
from .significance import (
    NO_DRIFT,
    Drift,
    Statistic,
    geomean,
    mann_whitney_u,
    ratio_interval,
    rounds_test,
    split_rounds,
    statistic_of,
    typical_drift,
)

STATISTICS: dict[str, Statistic] = {"median": "median", "min": "min", "mean": "mean"}
Verdict = Literal["failed", "regressed", "noisy", "missing", "new", "improved", "unchanged"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
"""Every verdict, worst first (the order of tables and summaries)."""
GATING = frozenset({"failed", "regressed"})
"""Verdicts that make ``compare`` exit 1 (unless ``--no-fail``)."""
Normalize = Literal["none", "peak"]

SLICE_AXES = ("backend", "algorithm", "kernel", "stride", "pass")

MIN_SAMPLES = 5
"""Fewer samples than this in either file: ``noisy`` (no test or interval means much)."""


@dataclass(frozen=True)
class Threshold:
    """The effect size a verdict needs: ``fraction`` of the ``statistic`` (0.05: 5%)."""

    statistic: Statistic
    fraction: float

    def __str__(self) -> str:
        return f"{100 * self.fraction:g}% on the {self.statistic}"


def check_alpha(alpha: float) -> float:
    """``--alpha``: a significance level strictly between 0 and 1."""
    if not 0.0 < alpha < 1.0:
        raise InputError(f"--alpha: expected a significance level in (0, 1), got {alpha!r}")
    return alpha


def check_normalize(text: str) -> Normalize:
    """``--normalize``: ``none`` or ``peak``."""
    if text not in get_args(Normalize):
        raise InputError(f"--normalize: expected none or peak, got {text!r}")
    return cast(Normalize, text)


@dataclass(frozen=True)
class RowComparison:
    """One row's verdict. Times are the threshold's statistic in ms; under ``--normalize
    peak`` the candidate's are scaled to what they would be at the baseline's peak."""

    suite: str
    case: str
    implementation: str
    backend: str
    algorithm: str
    device: str
    pass_: str
    dtype: str
    batch: str
    in_channels: str
    out_channels: str
    groups: str
    input: str
    kernel: str
    stride: str
    padding: str
    output_padding: str
    dilation: str
    bias: str
    baseline_status: str
    candidate_status: str
    baseline_samples: int
    candidate_samples: int
    baseline_ms: float | None
    candidate_ms: float | None
    ratio: float | None
    ratio_ci_low: float | None
    ratio_ci_high: float | None
    p_value: float | None
    verdict: Verdict
    reason: str
    test: str | None = None
    """What gave the interval and p-value: ``mann-whitney`` (the samples) or ``rounds B+C``."""

    record = as_record


Timing = dict[str, float | str | None]
TIMING = (
    "baseline_ms", "candidate_ms", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value", "test",
)  # fmt: skip
DESCRIBE = ("backend", "algorithm", "device")


@dataclass(frozen=True)
class _Evidence:
    baseline_ms: float
    candidate_ms: float
    ratio: float
    low: float
    high: float
    p: float
    test: str


def _evidence(
    base: list[float], cand: list[float], threshold: Threshold, alpha: float,
    rounds: tuple[list[int], list[int]], typical: tuple[Drift, Drift],
) -> _Evidence:  # fmt: skip
    """The times, ratio, interval and p-value behind a verdict on two ok rows' samples.

    With rounds on both sides: the fastest round of each (``significance.rounds_test``);
    else every sample (bootstrap interval, Mann–Whitney U).
    """
    stat = threshold.statistic
    b_sizes, c_sizes = rounds
    if len(b_sizes) < 2 or len(c_sizes) < 2:
        b_ms, c_ms = statistic_of(base, stat), statistic_of(cand, stat)
        _, p = mann_whitney_u(base, cand)
        low, high = ratio_interval(base, cand, stat, 1.0 - alpha)
        return _Evidence(b_ms, c_ms, c_ms / b_ms, low, high, p, "mann-whitney")
    b_rounds, c_rounds = split_rounds(base, b_sizes), split_rounds(cand, c_sizes)
    b_stats = [statistic_of(r, stat) for r in b_rounds]
    c_stats = [statistic_of(r, stat) for r in c_rounds]
    # the fastest rounds' own sampling uncertainty, as a standard error of log(ratio): a floor
    b_fast, c_fast = b_rounds[int(np.argmin(b_stats))], c_rounds[int(np.argmin(c_stats))]
    low, high = ratio_interval(b_fast, c_fast, stat, 1.0 - alpha)
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    floor = math.log(high / low) / (2.0 * z) if low > 0 else 0.0
    t = rounds_test(b_stats, c_stats, 1.0 - alpha, floor, typical)
    name = f"rounds {len(b_sizes)}+{len(c_sizes)}"
    return _Evidence(t.baseline, t.candidate, t.ratio, t.low, t.high, t.p_value, name)


def judge_times(
    base: list[float], cand: list[float], threshold: Threshold, alpha: float,
    rounds: tuple[list[int], list[int]] = ([], []),
    typical: tuple[Drift, Drift] = (NO_DRIFT, NO_DRIFT),
) -> tuple[Verdict, str, Timing]:  # fmt: skip
    """The verdict on two ok rows' samples, why, and the numbers behind it.

    ``rounds`` gives each file's round sizes (``round_samples``); with at least two rounds on
    each side a row's time is its fastest round's statistic and the noise is the spread of
    the rounds interference spared, floored by each file's ``typical`` drift.
    """
    timing: Timing = {"baseline_ms": None, "candidate_ms": None, "ratio": None}
    if not base and not cand:
        return "unchanged", "not timed in either file (verified only)", timing
    if base and cand:
        timing.update(baseline_ms=statistic_of(base, threshold.statistic),
                      candidate_ms=statistic_of(cand, threshold.statistic))  # fmt: skip
        timing["ratio"] = timing["candidate_ms"] / timing["baseline_ms"]  # type: ignore[operator]
    if min(len(base), len(cand)) < MIN_SAMPLES:
        return "noisy", (f"too few samples: baseline {len(base)}, candidate {len(cand)} "
                         f"(need {MIN_SAMPLES} in each)"), timing  # fmt: skip
    e = _evidence(base, cand, threshold, alpha, rounds, typical)
    ratio, low, high, p = e.ratio, e.low, e.high, e.p
    timing.update(baseline_ms=e.baseline_ms, candidate_ms=e.candidate_ms, ratio=ratio,
                  ratio_ci_low=low, ratio_ci_high=high, p_value=p, test=e.test)  # fmt: skip
    up, down, t = 1.0 + threshold.fraction, 1.0 / (1.0 + threshold.fraction), threshold.fraction
    wide = low < ratio / up and high > ratio * up
    by = "" if e.test == "mann-whitney" else f" ({e.test}, fastest each)"
    if ratio > up and p < alpha and (not wide or low > up):
        return "regressed", f"{ratio - 1:.1%} slower (> {t:.1%}), p = {p:.2g}{by}", timing
    if ratio < down and p < alpha and (not wide or high < down):
        return "improved", f"{1 / ratio - 1:.1%} faster (> {t:.1%}), p = {p:.2g}{by}", timing
    ci = f"{1 - alpha:.0%} CI {low:.3f}-{high:.3f}{by}"
    if wide:
        return "noisy", f"too dispersed: {ci} reaches past {t:.1%} on both sides", timing
    if not down <= ratio <= up:
        change = f"{ratio - 1:.1%} slower" if ratio > up else f"{1 / ratio - 1:.1%} faster"
        return "noisy", f"{change} but p = {p:.2g} >= {alpha:g}{by}", timing
    return "unchanged", f"within {t:.1%} either way ({ci})", timing


def _judge_status(base: Mapping[str, object], cand: Mapping[str, object]) -> tuple[Verdict, str]:
    """The verdict on a pair that is not ok in both files."""
    b, c = cell(base.get("status")), cell(cand.get("status"))
    message = f": {cell(cand.get('message'))}" if cell(cand.get("message")) else ""
    if b == "ok" or (c in FAILED_STATUSES and b not in FAILED_STATUSES):
        return "failed", f"was {b}, now {c}{message}"
    if c == "ok":
        return "new", f"measured now (was {b})"
    return "unchanged", f"not measured in either ({b}, then {c})"


Peaks = float | Mapping[str, float] | None


def _peak(peaks: Peaks, row: Mapping[str, object]) -> float | None:
    if not isinstance(peaks, Mapping):
        return None if peaks is None else float(peaks)
    value = peaks.get(f"{cell(row.get('device'))}/{cell(row.get('dtype'))}")
    return float(value) if value is not None and value > 0 else None


def peaks_from_sidecar(facts: Mapping[str, object], name: str) -> dict[str, float]:
    """A sidecar's calibrated GEMM rates (``peaks``: ``device/dtype`` → GFLOP/s)."""
    peaks = facts.get("peaks")
    if not isinstance(peaks, Mapping) or not peaks:
        raise InputError(f"{name}: its sidecar has no calibrated peaks (--normalize peak)")
    for key, value in peaks.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InputError(f"{name}: peak {key!r} is not a positive number: {value!r}")
    return {str(k): float(v) for k, v in peaks.items()}


@dataclass(frozen=True)
class Comparison:
    rows: tuple[RowComparison, ...]
    threshold: Threshold
    alpha: float
    normalize: Normalize
    counts: dict[str, int]
    """Every verdict (zeros included), in :data:`VERDICTS` order."""
    geomean: Geomean | None
    """Of every row with a ratio; None when no row has one."""
    slices: dict[str, dict[str, Geomean]]
    """axis (:data:`SLICE_AXES`) → value → geomean ratio over that value's rows."""
    gating: frozenset[str] = GATING
    """The verdicts that fail the gate: :data:`GATING`, and ``missing`` with
    ``compare --fail-on-missing``."""

    @property
    def gate_failed(self) -> bool:
        return any(self.counts[v] for v in self.gating)


def _row(base: Mapping[str, object], cand: Mapping[str, object], verdict: Verdict, reason: str,
         n: tuple[int, int] = (0, 0), timing: Timing | None = None) -> RowComparison:  # fmt: skip
    ident = cand or base
    values: dict[str, object] = {c: cell(ident.get(c)) for c in (*MATCH_COLUMNS, *DESCRIBE)}
    values["pass_"] = values.pop("pass")
    values.update(dict.fromkeys(TIMING), **(timing or {}), verdict=verdict, reason=reason)
    values.update(baseline_status=cell(base.get("status")), baseline_samples=n[0],
                  candidate_status=cell(cand.get("status")), candidate_samples=n[1])  # fmt: skip
    return RowComparison(**values)  # type: ignore[arg-type]  # every field, checked by tests


def _compare_pair(
    base: Mapping[str, object], cand: Mapping[str, object], threshold: Threshold, alpha: float,
    normalize: Normalize, peaks: tuple[Peaks, Peaks], typical: tuple[Drift, Drift],
) -> RowComparison:  # fmt: skip
    if not cell(base.get("status")) == "ok" == cell(cand.get("status")):
        return _row(base, cand, *_judge_status(base, cand))
    b_samples, c_samples = parse_samples(base["samples_ms"]), parse_samples(cand["samples_ms"])
    n = (len(b_samples), len(c_samples))
    if normalize == "peak":
        b_peak, c_peak = _peak(peaks[0], base), _peak(peaks[1], cand)
        if b_peak is None or c_peak is None:
            key = f"{cell(cand.get('device'))}/{cell(cand.get('dtype'))}"
            which = "baseline" if b_peak is None else "candidate"
            return _row(base, cand, "noisy", f"no calibrated {key} peak for the {which}", n)
        # time x rate is the work in GEMM-equivalent FLOPs; / the baseline's rate: its time
        c_samples = [s * c_peak / b_peak for s in c_samples]
    rounds = (round_sizes(base, n[0]), round_sizes(cand, n[1]))
    verdict, reason, timing = judge_times(b_samples, c_samples, threshold, alpha, rounds, typical)
    return _row(base, cand, verdict, reason, n, timing)


def round_sizes(row: Mapping[str, object], samples: int) -> list[int]:
    """The row's ``round_samples`` as sizes; ``[samples]`` (one round) when absent or unusable.

    Unusable (sizes that don't add up to the samples) falls back to one round rather than
    failing: the row's samples are still good, only their grouping is lost.
    """
    text = cell(row.get("round_samples"))
    try:
        sizes = [int(v) for v in text.split(";")] if text else []
    except ValueError:
        sizes = []
    return sizes if sizes and sum(sizes) == samples and min(sizes) > 0 else [samples]


def _round_statistics(row: Mapping[str, object], statistic: Statistic) -> list[float]:
    """One ok row's per-round statistic (empty without at least two rounds)."""
    samples = parse_samples(row.get("samples_ms")) if cell(row.get("status")) == "ok" else []
    sizes = round_sizes(row, len(samples))
    if len(sizes) < 2 or min(samples) <= 0:
        return []
    return [statistic_of(r, statistic) for r in split_rounds(samples, sizes)]


def typical_of(rows: Mapping[tuple[str, ...], Mapping[str, object]], statistic: Statistic) -> Drift:
    """A file's typical drift between rounds (``significance.typical_drift``) over its rows."""
    return typical_drift(_round_statistics(r, statistic) for r in rows.values())


def _sort_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: ``3x3`` before ``11x11``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in value.split("x"))


def _slices(rows: Sequence[RowComparison]) -> dict[str, dict[str, Geomean]]:
    out: dict[str, dict[str, Geomean]] = {}
    for axis in SLICE_AXES:
        groups: dict[str, list[float]] = {}
        for r in rows:
            if r.ratio is not None:
                groups.setdefault(as_record(r)[axis], []).append(r.ratio)  # type: ignore[arg-type]
        out[axis] = {v: (geomean(groups[v]), len(groups[v]))
                     for v in sorted(groups, key=_sort_key)}  # fmt: skip
    return out


def compare_frames(
    baseline: pd.DataFrame, candidate: pd.DataFrame, threshold: Threshold, alpha: float = 0.05,
    normalize: Normalize = "none", baseline_peak: Peaks = None, candidate_peak: Peaks = None,
    names: tuple[str, str] = ("baseline", "candidate"), fail_on_missing: bool = False,
) -> Comparison:  # fmt: skip
    """Match the rows of two results frames (``read_results``) and judge each pair.

    Rows come in the baseline's order, then the candidate's new ones. A peak is one GEMM rate
    (GFLOP/s) for a whole file, or a sidecar's ``peaks`` (:func:`peaks_from_sidecar`).
    ``names`` label the files in messages. ``fail_on_missing``: a baseline row that the
    candidate lacks fails the gate too.
    """
    check_alpha(alpha)
    check_normalize(normalize)
    if normalize == "peak" and (baseline_peak is None or candidate_peak is None):
        raise InputError("--normalize peak: both files need calibrated peaks (their sidecars)")
    for data, name in ((baseline, names[0]), (candidate, names[1])):
        if data.empty:  # a gate that passes on a run that died before its first row is wrong
            raise InputError(f"{name}: no rows (did its run stop before the first one?)")
    base_rows, cand_rows = index_rows(baseline, names[0]), index_rows(candidate, names[1])
    stat = threshold.statistic
    typical = (typical_of(base_rows, stat), typical_of(cand_rows, stat))
    rows: list[RowComparison] = []
    for key, base in base_rows.items():
        if (cand := cand_rows.get(key)) is None:
            rows.append(_row(base, {}, "missing", f"not in {names[1]}"))
        else:
            pair = (baseline_peak, candidate_peak)
            rows.append(_compare_pair(base, cand, threshold, alpha, normalize, pair, typical))
    rows += [_row({}, c, "new", f"not in {names[0]}") for k, c in cand_rows.items()
             if k not in base_rows]  # fmt: skip
    counts: dict[str, int] = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    ratios = [r.ratio for r in rows if r.ratio is not None]
    overall = (geomean(ratios), len(ratios)) if ratios else None
    gating = GATING | {"missing"} if fail_on_missing else GATING
    return Comparison(
        tuple(rows), threshold, alpha, normalize, counts, overall, _slices(rows), gating
    )


def worst_first(rows: Iterable[RowComparison]) -> list[RowComparison]:
    """Failed, regressed, noisy, missing, new, improved, unchanged; slowest first in each."""
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return sorted(rows, key=lambda r: (rank[r.verdict], -(r.ratio or 0.0)))

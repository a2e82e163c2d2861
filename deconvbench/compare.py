"""Pure comparison of two results files: matched rows, statistics, verdicts (DESIGN §4, §6).

No I/O, no printing: the CLI reads the files, calls :func:`compare_frames` or :func:`speedups`
and hands the result to ``render/compare.py``. The CI gate is decided here, once. Per pair of
ok rows, on the raw samples: the ratio (candidate / baseline) of the threshold's statistic; its
interval at level 1 - alpha by a fixed-seed percentile bootstrap (it bounds exactly the ratio
reported, whatever the skew); a two-sided Mann–Whitney U test (normal approximation with tie
and continuity corrections, as scipy's ``method="asymptotic"``; numpy only, scipy is a dev
extra). ``regressed`` needs ratio > 1 + t *and* p < alpha; ``improved`` mirrors it (ratio <
1 / (1 + t)) so swapping the files swaps the two; ``noisy`` when the data cannot decide: too
few samples, an interval reaching past the threshold on both sides of the ratio (unless wholly
beyond it), or a ratio beyond the threshold that is not significant. docs/ci.md says more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal, get_args

import numpy as np
import pandas as pd

from .errors import InputError
from .results import parse_samples

Statistic = Literal["median", "min", "mean"]
STATISTICS: dict[str, Statistic] = {"median": "median", "min": "min", "mean": "mean"}
Verdict = Literal["failed", "regressed", "noisy", "missing", "new", "improved", "unchanged"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
"""Every verdict, worst first (the order of tables and summaries)."""
GATING = frozenset({"failed", "regressed"})
"""Verdicts that make ``compare`` exit 1 (unless ``--no-fail``)."""
Normalize = Literal["none", "peak"]

IDENTITY = ("suite", "case", "implementation", "pass", "dtype")
PROBLEM = (
    "batch", "in_channels", "out_channels", "groups", "input", "kernel", "stride", "padding",
    "output_padding", "dilation", "bias",
)  # fmt: skip
MATCH = IDENTITY + PROBLEM
"""Two rows are the same measurement when all of these agree."""
SLICE_AXES = ("backend", "algorithm", "kernel", "stride", "pass")
WRONG = frozenset({"mismatch", "error", "crashed", "timeout", "oom"})
"""Statuses that say something went wrong (rather than: not run, on purpose or not)."""

MIN_SAMPLES = 5
"""Fewer samples than this in either file: ``noisy`` (no test or interval means much)."""
RESAMPLES = 2000
SEED = 20240501
_BLOCK = 1 << 22  # bootstrap draws held at once: bounds memory at 10 000 samples a row


@dataclass(frozen=True)
class Threshold:
    """The effect size a verdict needs: ``fraction`` of the ``statistic`` (0.05: 5%)."""

    statistic: Statistic
    fraction: float

    def __str__(self) -> str:
        return f"{100 * self.fraction:g}% on the {self.statistic}"


def parse_threshold(text: str) -> Threshold:
    """``5%``, ``0.05``, ``median:5%``, ``min:3%``, ``mean:0.02`` → :class:`Threshold`."""
    name, sep, amount = text.strip().rpartition(":")
    statistic = STATISTICS.get(name.strip() if sep else "median")
    if statistic is None:
        raise InputError(f"--threshold: unknown statistic {name!r} in {text!r} (use median, "
                         "min or mean, e.g. median:5%)")  # fmt: skip
    amount = amount.strip()
    percent = amount.endswith("%")
    try:
        value = float(amount[:-1] if percent else amount)
    except ValueError:
        value = math.nan
    fraction = value / 100 if percent else value
    if not 0 <= fraction <= 10 or (fraction >= 1 and not percent):  # NaN fails too
        raise InputError(f"--threshold: expected a percentage (5%, median:5%) or a fraction "
                         f"below 1 (0.05), got {text!r}")  # fmt: skip
    return Threshold(statistic, fraction)


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


def _record(item: object) -> dict[str, object]:
    """A dataclass as a flat record, ``pass_`` written ``pass``: what csv and json write."""
    return {("pass" if f.name == "pass_" else f.name): getattr(item, f.name)
            for f in fields(item)}  # type: ignore[arg-type]  # fmt: skip


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

    record = _record


def _cell(value: object) -> str:
    """A cell as text, whatever pandas made of it (Int64, bool, str, NA)."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):  # type: ignore[call-overload]
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


Timing = dict[str, float | None]
Geomean = tuple[float, int]
"""A geometric mean of ratios and how many rows it is over."""
TIMING = ("baseline_ms", "candidate_ms", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value")
DESCRIBE = ("backend", "algorithm", "device")


def _judge_times(
    base: list[float], cand: list[float], threshold: Threshold, alpha: float
) -> tuple[Verdict, str, Timing]:
    """The verdict on two ok rows' samples, why, and the numbers behind it."""
    b_ms = statistic_of(base, threshold.statistic) if base else None
    c_ms = statistic_of(cand, threshold.statistic) if cand else None
    ratio = c_ms / b_ms if b_ms and c_ms is not None else None
    timing: Timing = {"baseline_ms": b_ms, "candidate_ms": c_ms, "ratio": ratio}
    if not base and not cand:
        return "unchanged", "not timed in either file (verified only)", timing
    if min(len(base), len(cand)) < MIN_SAMPLES or ratio is None:
        return "noisy", (f"too few samples: baseline {len(base)}, candidate {len(cand)} "
                         f"(need {MIN_SAMPLES} in each)"), timing  # fmt: skip
    _, p = mann_whitney_u(base, cand)
    low, high = ratio_interval(base, cand, threshold.statistic, 1.0 - alpha)
    timing.update(ratio_ci_low=low, ratio_ci_high=high, p_value=p)
    up, down, t = 1.0 + threshold.fraction, 1.0 / (1.0 + threshold.fraction), threshold.fraction
    wide = low < ratio / up and high > ratio * up
    if ratio > up and p < alpha and (not wide or low > up):
        return "regressed", f"{ratio - 1:.1%} slower (> {t:.1%}), p = {p:.2g}", timing
    if ratio < down and p < alpha and (not wide or high < down):
        return "improved", f"{1 / ratio - 1:.1%} faster (> {t:.1%}), p = {p:.2g}", timing
    ci = f"{1 - alpha:.0%} CI {low:.3f}-{high:.3f}"
    if wide:
        return "noisy", f"too dispersed: {ci} reaches past {t:.1%} on both sides", timing
    if not down <= ratio <= up:
        change = f"{ratio - 1:.1%} slower" if ratio > up else f"{1 / ratio - 1:.1%} faster"
        return "noisy", f"{change} but p = {p:.2g} >= {alpha:g}", timing
    return "unchanged", f"within {t:.1%} either way ({ci})", timing


def _judge_status(base: Mapping[str, object], cand: Mapping[str, object]) -> tuple[Verdict, str]:
    """The verdict on a pair that is not ok in both files."""
    b, c = _cell(base.get("status")), _cell(cand.get("status"))
    message = f": {_cell(cand.get('message'))}" if _cell(cand.get("message")) else ""
    if b == "ok" or (c in WRONG and b not in WRONG):
        return "failed", f"was {b}, now {c}{message}"
    if c == "ok":
        return "new", f"measured now (was {b})"
    return "unchanged", f"not measured in either ({b}, then {c})"


Peaks = float | Mapping[str, float] | None


def _peak(peaks: Peaks, row: Mapping[str, object]) -> float | None:
    if not isinstance(peaks, Mapping):
        return None if peaks is None else float(peaks)
    value = peaks.get(f"{_cell(row.get('device'))}/{_cell(row.get('dtype'))}")
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

    @property
    def gate_failed(self) -> bool:
        return any(self.counts[v] for v in GATING)


def _index(frame: pd.DataFrame, name: str) -> dict[tuple[str, ...], dict[str, object]]:
    missing = [c for c in (*MATCH, "status", "samples_ms") if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: missing columns: {', '.join(missing)}")
    index: dict[tuple[str, ...], dict[str, object]] = {}
    for record in frame.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        key = tuple(_cell(row[c]) for c in MATCH)
        if key in index:
            raise InputError(f"{name}: more than one row for {' '.join(key[:5])} (merge shards?)")
        index[key] = row
    return index


def _row(base: Mapping[str, object], cand: Mapping[str, object], verdict: Verdict, reason: str,
         n: tuple[int, int] = (0, 0), timing: Timing | None = None) -> RowComparison:  # fmt: skip
    ident = cand or base
    values: dict[str, object] = {c: _cell(ident.get(c)) for c in (*MATCH, *DESCRIBE)}
    values["pass_"] = values.pop("pass")
    values.update(dict.fromkeys(TIMING), **(timing or {}), verdict=verdict, reason=reason)
    values.update(baseline_status=_cell(base.get("status")), baseline_samples=n[0],
                  candidate_status=_cell(cand.get("status")), candidate_samples=n[1])  # fmt: skip
    return RowComparison(**values)  # type: ignore[arg-type]  # every field, checked by tests


def _compare_pair(
    base: Mapping[str, object], cand: Mapping[str, object], threshold: Threshold, alpha: float,
    normalize: Normalize, peaks: tuple[Peaks, Peaks],
) -> RowComparison:  # fmt: skip
    if not _cell(base.get("status")) == "ok" == _cell(cand.get("status")):
        return _row(base, cand, *_judge_status(base, cand))
    b_samples, c_samples = parse_samples(base["samples_ms"]), parse_samples(cand["samples_ms"])
    n = (len(b_samples), len(c_samples))
    if normalize == "peak":
        b_peak, c_peak = _peak(peaks[0], base), _peak(peaks[1], cand)
        if b_peak is None or c_peak is None:
            key = f"{_cell(cand.get('device'))}/{_cell(cand.get('dtype'))}"
            which = "baseline" if b_peak is None else "candidate"
            return _row(base, cand, "noisy", f"no calibrated {key} peak for the {which}", n)
        # time x rate is the work in GEMM-equivalent FLOPs; / the baseline's rate: its time
        c_samples = [s * c_peak / b_peak for s in c_samples]
    verdict, reason, timing = _judge_times(b_samples, c_samples, threshold, alpha)
    return _row(base, cand, verdict, reason, n, timing)


def _sort_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order: ``3x3`` before ``11x11``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in value.split("x"))


def _slices(rows: Sequence[RowComparison]) -> dict[str, dict[str, Geomean]]:
    out: dict[str, dict[str, Geomean]] = {}
    for axis in SLICE_AXES:
        groups: dict[str, list[float]] = {}
        for r in rows:
            if r.ratio is not None:
                groups.setdefault(_record(r)[axis], []).append(r.ratio)  # type: ignore[arg-type]
        out[axis] = {v: (geomean(groups[v]), len(groups[v]))
                     for v in sorted(groups, key=_sort_key)}  # fmt: skip
    return out


def compare_frames(
    baseline: pd.DataFrame, candidate: pd.DataFrame, threshold: Threshold, alpha: float = 0.05,
    normalize: Normalize = "none", baseline_peak: Peaks = None, candidate_peak: Peaks = None,
    names: tuple[str, str] = ("baseline", "candidate"),
) -> Comparison:  # fmt: skip
    """Match the rows of two results frames (``read_results``) and judge each pair.

    Rows come in the baseline's order, then the candidate's new ones. A peak is one GEMM rate
    (GFLOP/s) for a whole file, or a sidecar's ``peaks`` (:func:`peaks_from_sidecar`).
    ``names`` label the files in messages.
    """
    if not 0.0 < alpha < 1.0:
        raise InputError(f"--alpha: expected a significance level in (0, 1), got {alpha!r}")
    if normalize not in ("none", "peak"):
        raise InputError(f"--normalize: expected none or peak, got {normalize!r}")
    if normalize == "peak" and (baseline_peak is None or candidate_peak is None):
        raise InputError("--normalize peak: both files need calibrated peaks (their sidecars)")
    base_rows, cand_rows = _index(baseline, names[0]), _index(candidate, names[1])
    rows: list[RowComparison] = []
    for key, base in base_rows.items():
        if (cand := cand_rows.get(key)) is None:
            rows.append(_row(base, {}, "missing", f"not in {names[1]}"))
        else:
            pair = (baseline_peak, candidate_peak)
            rows.append(_compare_pair(base, cand, threshold, alpha, normalize, pair))
    rows += [_row({}, c, "new", f"not in {names[0]}") for k, c in cand_rows.items()
             if k not in base_rows]  # fmt: skip
    counts: dict[str, int] = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    ratios = [r.ratio for r in rows if r.ratio is not None]
    overall = (geomean(ratios), len(ratios)) if ratios else None
    return Comparison(tuple(rows), threshold, alpha, normalize, counts, overall, _slices(rows))


def worst_first(rows: Iterable[RowComparison]) -> list[RowComparison]:
    """Failed, regressed, noisy, missing, new, improved, unchanged; slowest first in each."""
    rank = {v: i for i, v in enumerate(VERDICTS)}
    return sorted(rows, key=lambda r: (rank[r.verdict], -(r.ratio or 0.0)))


@dataclass(frozen=True)
class Speedup:
    """One strategy on one case (and pass, dtype): baseline median / its median."""

    suite: str
    case: str
    pass_: str
    dtype: str
    implementation: str
    median_ms: float
    baseline_ms: float
    speedup: float

    record = _record


@dataclass(frozen=True)
class SpeedupTable:
    baseline_impl: str
    rows: tuple[Speedup, ...]
    geomeans: dict[str, Geomean]
    """implementation → geomean speedup over the cases both measured (every pass)."""
    cases_without_baseline: tuple[str, ...]


def speedups(results: pd.DataFrame, baseline_impl: str) -> SpeedupTable:
    """Every ok strategy's speedup over ``baseline_impl`` in each case that also measured it.

    Medians are the harness's ``median_ms`` (the same definition as the samples' median).
    """
    _index(results, "results")  # the same column and duplicate checks as compare
    case = [c for c in MATCH if c != "implementation"]
    keys = [tuple(_cell(v) for v in k) for k in results[case].itertuples(index=False)]
    impls = [_cell(v) for v in results["implementation"]]
    if baseline_impl not in impls:
        present = ", ".join(sorted(set(impls)))
        raise InputError(f"--baseline-impl: no {baseline_impl} rows; present: {present}")
    medians = [float(v) for v in pd.to_numeric(results["median_ms"], errors="coerce")]
    ok = [i for i, st in enumerate(results["status"]) if _cell(st) == "ok" and medians[i] > 0]
    ref = {keys[i]: medians[i] for i in ok if impls[i] == baseline_impl}
    rows = tuple(
        Speedup(k[0], k[1], k[2], k[3], impls[i], medians[i], ref[k], ref[k] / medians[i])
        for i in ok if (k := keys[i]) in ref
    )  # fmt: skip
    by_impl: dict[str, list[float]] = {}
    for s in rows:
        by_impl.setdefault(s.implementation, []).append(s.speedup)
    geomeans = {k: (geomean(v), len(v)) for k, v in sorted(by_impl.items())}
    lacking = dict.fromkeys(f"{k[0]}/{k[1]} {k[2]} {k[3]}" for k in keys if k not in ref)
    return SpeedupTable(baseline_impl, rows, geomeans, tuple(lacking))

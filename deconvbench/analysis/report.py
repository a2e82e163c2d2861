"""What a results file says, in numbers: pure functions from the results frame (no I/O).

- the best strategy per (case, pass), with its time, GFLOP/s and % of peak;
- a speedup matrix: every strategy's speed relative to a baseline strategy, per case and pass
  (``speedups``: the strategy named, else the native strategy of each row's device);
- the rows whose timing is unstable (an instability warning, or a CI wider than asked);
- the points of a roofline: arithmetic intensity (useful FLOPs per byte of minimum traffic,
  from the problem model) against achieved GFLOP/s;
- the strategies in order of speed (geomean speedup), for the heat map;
- the panels of the time plots: rows that differ along one parameter only (``sweep_panels``).
Rendering lives in ``render/report.py`` and ``render/plots.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..harness.notes import NoteKind, split
from ..problem import Pass
from ..results.row import problem_of
from ..results.schema import PROBLEM_COLUMNS
from .matching import cell
from .significance import geomean
from .speedups import default_baseline, row_speedups

CASE = ["suite", "case", "pass", "dtype"]


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows with a timing: status ok (a mismatch is never a result)."""
    return results[(results["status"] == "ok") & (results["median_ms"] > 0)]


def best_per_case(results: pd.DataFrame) -> pd.DataFrame:
    """The fastest strategy of every (suite, case, pass, dtype), in file order."""
    ok = ok_rows(results)
    if ok.empty:
        return ok
    fastest = ok.loc[ok.groupby(CASE, sort=False)["median_ms"].idxmin()]
    columns = [*CASE, "implementation", "median_ms", "gflops", "peak_fraction"]
    return fastest[columns].reset_index(drop=True)


def speedup_matrix(results: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Strategies × "case pass" columns; cells are baseline time / strategy time (>1: faster).

    Each row is compared with its baseline in the same case, pass and dtype, chosen among all
    the file's rows as the run's own tables choose it; cells without a measured baseline are
    left empty (NaN), and a strategy without any is left out.
    """
    ok = ok_rows(results)
    if baseline is not None and baseline not in set(ok["implementation"]):
        raise InputError(f"--baseline-impl: no ok rows of {baseline} in this file")
    records = [{str(k): v for k, v in r.items()} for r in results.to_dict("records")]
    found = row_speedups(records, baseline)
    speedup = [float("nan") if s.speedup is None else s.speedup for s in found]
    cells = pd.DataFrame(
        {
            "implementation": ok["implementation"].to_list(),
            "column": (ok["case"] + " " + ok["pass"]).to_list(),
            "speedup": [speedup[results.index.get_loc(i)] for i in ok.index],
        }
    )
    return cells.pivot_table(
        index="implementation", columns="column", values="speedup", aggfunc="first", sort=False
    )


def unstable_rows(results: pd.DataFrame, precision: float = 0.02) -> pd.DataFrame:
    """Ok rows with an instability warning or a CI half-width above ``precision``."""
    ok = ok_rows(results)
    half = (ok["ci_high_ms"] - ok["ci_low_ms"]) / 2 / ok["median_ms"]
    unstable = [
        any(n.kind == NoteKind.UNSTABLE for n in split(str(m))) if isinstance(m, str) else False
        for m in ok["message"]
    ]
    flagged = pd.Series(unstable, index=ok.index, dtype=bool) | (half > precision)
    out = ok.loc[flagged, [*CASE, "implementation", "median_ms", "message"]].copy()
    out["ci_rel_halfwidth"] = half[flagged]
    return out.reset_index(drop=True)


def by_speed(matrix: pd.DataFrame) -> pd.DataFrame:
    """The speedup matrix's strategies, fastest first: by the geomean of each one's speedups
    over the cells it has (a strategy without any goes last)."""
    logs = pd.DataFrame(np.log(matrix.to_numpy(dtype=float)), index=matrix.index)
    order = logs.mean(axis=1, skipna=True).fillna(-math.inf)
    return matrix.loc[order.sort_values(ascending=False, kind="stable").index]


@dataclass(frozen=True)
class RooflinePoint:
    implementation: str
    label: str
    intensity: float  # useful FLOPs per byte of minimum traffic
    gflops: float


def roofline(results: pd.DataFrame) -> list[RooflinePoint]:
    """A point per ok row with a positive GFLOP/s (the only ones a log axis can show)."""
    points = []
    for _, row in ok_rows(results).iterrows():
        if not float(row["gflops"]) > 0:  # NaN too: a file written by hand may lack it
            continue
        pass_: Pass = row["pass"]
        problem = problem_of({str(k): v for k, v in row.items()})
        points.append(
            RooflinePoint(
                row["implementation"], f"{row['case']} {pass_}",
                problem.arithmetic_intensity(pass_), float(row["gflops"]),
            )
        )  # fmt: skip
    return points


AXES = (
    "batch", "in_channels", "out_channels", "groups", "input", "kernel", "stride", "padding",
    "output_padding", "dilation",
)  # fmt: skip
"""The problem parameters a time plot may run along (``bias`` has only two values)."""
FIXED = (*PROBLEM_COLUMNS, "dtype", "pass", "device", "threads")
"""What a panel holds fixed, less its axis: the problem, and what else sets a row's time."""
MIN_POINTS = 3
"""Fewest axis values for a panel: two points give one ratio, which the heat map shows
already; a trend (a crossover, a knee) needs three."""
MAX_LINES = 8


@dataclass(frozen=True)
class Line:
    """One strategy in a panel: its median time at each axis value it was measured at."""

    implementation: str
    points: tuple[tuple[str, float], ...]  # (axis value as the file writes it, median ms)
    score: float  # geomean of its time over the panel's fastest at each of its points (>= 1)


@dataclass(frozen=True)
class Panel:
    """Rows that differ only along ``axis``: one subplot of ``time-vs-<axis>.png``."""

    axis: str
    fixed: tuple[tuple[str, str], ...]  # (column, value) of everything in FIXED but the axis
    values: tuple[str, ...]  # the axis values, in axis order
    lines: tuple[Line, ...]  # the fastest first; the baseline always among them
    baseline: str | None
    left_out: int  # strategies measured in the panel and not drawn


def axis_position(value: object) -> float:
    """Where a parameter's value sits on its axis: the geometric mean of its dimensions
    (``8x8`` → 8, ``8x32`` → 16), so a square and a 1-D value read as their side."""
    dims = [float(v) for v in str(value).split("x")]
    return float(math.prod(dims) ** (1 / len(dims)))


def sweep_panels(
    results: pd.DataFrame,
    baseline: str | None = None,
    min_points: int = MIN_POINTS,
    max_lines: int = MAX_LINES,
) -> list[Panel]:
    """The panels of the time plots: per axis in ``AXES``, the ok rows grouped by everything
    else in ``FIXED``; a group whose axis takes at least ``min_points`` values is a panel.

    Rows of cases that differ in more than one parameter never share a panel, so a suite of
    unrelated layers (dcgan) gives none. Each panel draws at most ``max_lines`` strategies:
    the fastest (:func:`_ranked`) and the baseline (the strategy named, else the device's
    native strategy as the speedups choose it), whatever its rank.
    """
    ok = ok_rows(results)
    text = pd.DataFrame({c: [cell(v) for v in ok[c]] for c in FIXED}, index=ok.index)
    rows = text.assign(implementation=ok["implementation"], algorithm=ok["algorithm"],
                       median_ms=ok["median_ms"])  # fmt: skip
    panels = []
    for axis in AXES:
        others = [c for c in FIXED if c != axis]
        for key, group in rows.groupby(others, sort=False):
            values = sorted(set(group[axis]), key=axis_position)
            if len(values) >= min_points:
                fixed = tuple((c, str(v)) for c, v in zip(others, key, strict=True))
                panels.append(_panel(axis, fixed, values, group, baseline, max_lines))
    return panels


def _ranked(group: pd.DataFrame, axis: str, values: list[str]) -> list[Line]:
    """Every strategy of a panel, fastest first: by the geomean, over the points it has, of
    its time over the fastest time at each point (the geomean of its times when every
    strategy has every point, and fair to one that misses some). Two rows of one strategy
    at one value (a merged file) count as their median."""
    times = group.groupby(["implementation", axis])["median_ms"].median()
    fastest = times.groupby(level=axis).min()
    lines = []
    for impl, series in times.groupby(level="implementation"):
        mine = series.droplevel("implementation")
        score = geomean(float(mine[v] / fastest[v]) for v in mine.index)
        points = tuple((v, float(mine[v])) for v in values if v in mine.index)
        lines.append(Line(str(impl), points, score))
    return sorted(lines, key=lambda line: (line.score, line.implementation))


def _panel(
    axis: str, fixed: tuple[tuple[str, str], ...], values: list[str], group: pd.DataFrame,
    baseline: str | None, max_lines: int,
) -> Panel:  # fmt: skip
    lines = _ranked(group, axis, values)
    device = dict(fixed).get("device", "")
    records = [
        {"implementation": i, "algorithm": a, "device": device}
        for i, a in zip(group["implementation"], group["algorithm"], strict=True)
    ]
    base = baseline or default_baseline(device, records)
    kept = lines[:max_lines]
    if base is not None and base not in {line.implementation for line in kept}:
        kept = [*lines[: max_lines - 1], *(line for line in lines if line.implementation == base)]
    present = base if base in {line.implementation for line in lines} else None
    return Panel(axis, fixed, tuple(values), tuple(kept), present, len(lines) - len(kept))

"""What a results file says, in numbers: pure functions from the results frame (no I/O).

- the best strategy per (case, pass), with its time, GFLOP/s and % of peak;
- a speedup matrix: every strategy's speed relative to a baseline strategy, per case and pass
  (``speedups``: the strategy named, else the native strategy of each row's device);
- the rows whose timing is unstable (an instability warning, or a CI wider than asked);
- the points of a roofline: arithmetic intensity (useful FLOPs per byte of minimum traffic,
  from the problem model) against achieved GFLOP/s.
Rendering lives in ``render/report.py`` and ``render/plots.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import InputError
from ..harness.notes import NoteKind, split
from ..problem import Pass
from ..results.row import problem_of
from .speedups import row_speedups

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


@dataclass(frozen=True)
class RooflinePoint:
    implementation: str
    label: str
    intensity: float  # useful FLOPs per byte of minimum traffic
    gflops: float


def roofline(results: pd.DataFrame) -> list[RooflinePoint]:
    points = []
    for _, row in ok_rows(results).iterrows():
        pass_: Pass = row["pass"]
        problem = problem_of({str(k): v for k, v in row.items()})
        points.append(
            RooflinePoint(
                row["implementation"], f"{row['case']} {pass_}",
                problem.arithmetic_intensity(pass_), float(row["gflops"]),
            )
        )  # fmt: skip
    return points


SWEPT = ("kernel", "stride", "in_channels", "out_channels", "batch", "input")


def swept_parameters(results: pd.DataFrame) -> list[str]:
    """The problem parameters that take more than one value among the ok rows."""
    ok = ok_rows(results)
    return [p for p in SWEPT if ok[p].astype(str).nunique() > 1]

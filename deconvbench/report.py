"""What a results file says, in numbers: pure functions from the results frame (no I/O).

- the best strategy per (case, pass), with its time, GFLOP/s and % of peak;
- a speedup matrix: every strategy's speed relative to a baseline strategy, per case and pass
  (the baseline being, per device, its ``native`` strategy unless one is named);
- the rows whose timing is unstable (an instability warning, or a CI wider than asked);
- the points of a roofline: arithmetic intensity (useful FLOPs per byte of minimum traffic,
  from the problem model) against achieved GFLOP/s.
Rendering lives in ``render/report.py`` and ``render/plots.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .errors import InputError
from .problem import Pass, Problem

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


def baseline_for(device: str, implementations: set[str], named: str | None) -> str | None:
    """The named baseline, else the ``native`` strategy of the device (``torch-cpu/native``)."""
    if named is not None:
        return named
    native = f"torch-{device}/native" if device in ("cpu", "cuda") else None
    return native if native in implementations else None


def speedup_matrix(results: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Strategies × "case pass" columns; cells are baseline time / strategy time (>1: faster).

    Each row is compared with the baseline of its own device, in the same case, pass and
    dtype; cells without a measured baseline are left empty (NaN).
    """
    ok = ok_rows(results)[[*CASE, "device", "implementation", "median_ms"]].copy()
    if baseline is not None and baseline not in set(ok["implementation"]):
        raise InputError(f"--baseline-impl: no ok rows of {baseline} in this file")
    impls = set(ok["implementation"])
    ok["baseline"] = [baseline_for(str(d), impls, baseline) for d in ok["device"]]
    ref = ok[[*CASE, "implementation", "median_ms"]].rename(
        columns={"implementation": "baseline", "median_ms": "baseline_ms"}
    )
    ok = ok.merge(ref, on=[*CASE, "baseline"], how="left")
    ok["speedup"] = ok["baseline_ms"] / ok["median_ms"]
    ok["column"] = ok["case"] + " " + ok["pass"]
    matrix = ok.pivot_table(
        index="implementation", columns="column", values="speedup", aggfunc="first", sort=False
    )
    return matrix


def unstable_rows(results: pd.DataFrame, precision: float = 0.02) -> pd.DataFrame:
    """Ok rows with an instability warning or a CI half-width above ``precision``."""
    ok = ok_rows(results)
    half = (ok["ci_high_ms"] - ok["ci_low_ms"]) / 2 / ok["median_ms"]
    flagged = ok["message"].str.contains("unstable", na=False) | (half > precision)
    out = ok.loc[flagged, [*CASE, "implementation", "median_ms", "message"]].copy()
    out["ci_rel_halfwidth"] = half[flagged]
    return out.reset_index(drop=True)


def problem_of(row: pd.Series) -> Problem:
    """The problem a results row measured (tuples written ``4x4``)."""

    def tup(text: object) -> tuple[int, ...]:
        return tuple(int(v) for v in str(text).split("x"))

    return Problem.create(
        batch=int(row["batch"]), in_channels=int(row["in_channels"]),
        out_channels=int(row["out_channels"]), input=tup(row["input"]),
        kernel=tup(row["kernel"]), stride=tup(row["stride"]), padding=tup(row["padding"]),
        output_padding=tup(row["output_padding"]), dilation=tup(row["dilation"]),
        groups=int(row["groups"]), bias=bool(row["bias"]), dtype=str(row["dtype"]),
    )  # fmt: skip


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
        problem = problem_of(row)
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

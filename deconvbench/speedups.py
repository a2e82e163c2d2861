"""Speedups inside one results file: every strategy against a baseline strategy, per case.

``compare RESULTS --baseline-impl X`` (and ``report``). Pure: the CLI reads the file and
``render/compare.py`` shows the table. Rows are matched on the problem exactly as
``compare`` matches two files (``compare.MATCH`` less the implementation).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .compare import MATCH, Geomean, as_record, cell, index_rows
from .errors import InputError
from .significance import geomean


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

    record = as_record


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
    index_rows(results, "results")  # the same column and duplicate checks as compare
    case = [c for c in MATCH if c != "implementation"]
    keys = [tuple(cell(v) for v in k) for k in results[case].itertuples(index=False)]
    impls = [cell(v) for v in results["implementation"]]
    if baseline_impl not in impls:
        present = ", ".join(sorted(set(impls)))
        raise InputError(f"--baseline-impl: no {baseline_impl} rows; present: {present}")
    medians = [float(v) for v in pd.to_numeric(results["median_ms"], errors="coerce")]
    ok = [i for i, st in enumerate(results["status"]) if cell(st) == "ok" and medians[i] > 0]
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

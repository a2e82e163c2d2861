"""Speedups of strategies over a baseline strategy, inside one set of rows.

Every speedup deconvbench shows comes from here: the run's tables, ``report``'s matrix and
``compare RESULTS --baseline-impl``. A row's speedup is its baseline's median over its own,
both ok rows of the same measurement (case, problem, pass and dtype: the match key less the
implementation). The baseline is the strategy named (``--baseline-impl``), else the native
strategy of the row's device measured for that case (:func:`default_baseline`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from ..errors import InputError
from ..results.fields import number
from ..results.schema import MATCH_COLUMNS, RowLike
from .matching import Geomean, as_record, cell, index_rows
from .significance import geomean

_GROUP = [c for c in MATCH_COLUMNS if c != "implementation"]


def group_key(row: RowLike) -> tuple[str, ...]:
    """The measurement a row belongs to, whichever strategy made it."""
    return tuple(cell(row.get(c)) for c in _GROUP)


def default_baseline(device: str, rows: Iterable[RowLike]) -> str | None:
    """The native strategy on ``device`` among ``rows``' strategies: torch's
    (``torch-cpu/native``, ``torch-cuda/native``) when measured, else the first by name of
    the ``*/native`` strategies on that device, else None.

    Per device, because a speedup across devices mostly measures the device; torch's first,
    because it is what a user's model runs unless told otherwise, whatever engines with a
    ``native`` strategy of their own are installed.
    """
    natives = sorted(
        {
            cell(r.get("implementation"))
            for r in rows
            if cell(r.get("algorithm")) == "native" and cell(r.get("device")) == device
        }
    )
    preferred = f"torch-{device}/native"
    return preferred if preferred in natives else (natives[0] if natives else None)


def _median(row: RowLike) -> float | None:
    """An ok row's positive median; None for anything else (a mismatch is never a result)."""
    median = number(row.get("median_ms"))
    ok = cell(row.get("status")) == "ok" and median is not None and 0 < median < math.inf
    return median if ok else None


@dataclass(frozen=True)
class RowSpeedup:
    """One row's baseline (the strategy it is compared with) and its speedup over it."""

    baseline: str | None
    baseline_ms: float | None
    speedup: float | None


def row_speedups(rows: Sequence[RowLike], named: str | None = None) -> list[RowSpeedup]:
    """Each row's baseline and speedup, in the order of ``rows``; the speedup is None when
    the row or its baseline has no ok time."""
    groups: dict[tuple[str, ...], list[RowLike]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    out = []
    for row in rows:
        group = groups[group_key(row)]
        name = named or default_baseline(cell(row.get("device")), group)
        reference = next(
            (m for r in group if cell(r.get("implementation")) == name and (m := _median(r))),
            None,
        )
        median = _median(row)
        ratio = reference / median if reference is not None and median is not None else None
        out.append(RowSpeedup(name, reference, ratio))
    return out


# --- compare RESULTS --baseline-impl --------------------------------------------------------


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
    records = list(index_rows(results, "results").values())  # compare's checks
    impls = {cell(r.get("implementation")) for r in records}
    if baseline_impl not in impls:
        present = ", ".join(sorted(impls))
        raise InputError(f"--baseline-impl: no {baseline_impl} rows; present: {present}")
    found = row_speedups(records, baseline_impl)
    rows = tuple(
        Speedup(
            cell(r.get("suite")), cell(r.get("case")), cell(r.get("pass")), cell(r.get("dtype")),
            cell(r.get("implementation")), median, s.baseline_ms, s.speedup,
        )
        for r, s in zip(records, found, strict=True)
        if s.speedup is not None and s.baseline_ms is not None and (median := _median(r))
    )  # fmt: skip
    by_impl: dict[str, list[float]] = {}
    for speedup in rows:
        by_impl.setdefault(speedup.implementation, []).append(speedup.speedup)
    geomeans = {k: (geomean(v), len(v)) for k, v in sorted(by_impl.items())}
    lacking = dict.fromkeys(
        f"{cell(r.get('suite'))}/{cell(r.get('case'))} {cell(r.get('pass'))} {cell(r.get('dtype'))}"
        for r, s in zip(records, found, strict=True)
        if s.baseline_ms is None
    )
    return SpeedupTable(baseline_impl, rows, geomeans, tuple(lacking))

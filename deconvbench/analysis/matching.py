"""Rows of results files as comparable records: one text per cell, one key per measurement.

``compare`` (two files) and ``speedups`` (strategies inside one) both match rows on
:data:`~deconvbench.results.schema.MATCH_COLUMNS` and read cells through :func:`cell`, so a
row means the same to both whether it came from a run or from a file pandas wrote.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from ..errors import InputError
from ..results.schema import MATCH_COLUMNS, RowLike

Geomean = tuple[float, int]
"""A geometric mean of ratios and how many rows it is over."""
Record = dict[str, object]


def cell(value: object) -> str:
    """A cell as text, whatever pandas made of it (Int64, bool, str, NA)."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):  # type: ignore[call-overload]
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def match_key(row: RowLike) -> tuple[str, ...]:
    """What makes two rows the same measurement (:data:`MATCH_COLUMNS`), as text."""
    return tuple(cell(row.get(c)) for c in MATCH_COLUMNS)


def as_record(item: object) -> dict[str, object]:
    """A dataclass as a flat record, ``pass_`` written ``pass``: what csv and json write."""
    return {("pass" if f.name == "pass_" else f.name): getattr(item, f.name)
            for f in fields(item)}  # type: ignore[arg-type]  # fmt: skip


def index_rows(frame: pd.DataFrame, name: str) -> dict[tuple[str, ...], Record]:
    """A file's rows by :func:`match_key`; a key twice (unmerged shards) is bad input."""
    missing = [c for c in (*MATCH_COLUMNS, "status", "samples_ms") if c not in frame.columns]
    if missing:
        raise InputError(f"{name}: missing columns: {', '.join(missing)}")
    index: dict[tuple[str, ...], Record] = {}
    for record in frame.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        key = match_key(row)
        if key in index:
            raise InputError(f"{name}: more than one row for {' '.join(key[:5])} (merge shards?)")
        index[key] = row
    return index

"""The validating reader of a results CSV: every problem an :class:`InputError` naming it.

It reads the tool's own files and what pandas makes of them
(``pd.read_csv(f).to_csv(g, index=False)``, see :mod:`.fields`): both give the same frame.
"""

from __future__ import annotations

import io
import math
from functools import partial
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .fields import integral_list, is_missing, parse_bool, parse_int, restore
from .schema import (
    BOOL_COLUMNS,
    CONTRACT_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    SCHEMA_VERSION,
    STATUSES,
)

OPTIONAL_TEXT_COLUMNS = frozenset(
    {"message", "samples_ms", "stop_reason", "clock", "round_samples"}
)
"""Text columns that are empty where there is no value: a NaN spelled out there is empty too."""
INTEGER_LIST_COLUMNS = frozenset({"round_samples"})
"""Text columns of ``;``-joined integers, kept in plain digits (pandas may write ``5.0``)."""


def _number(text: str, integer: bool) -> int | float | None:
    """One numeric field. Python's own parsers: pandas' fast float parser may round the
    last digit, and the file promises full precision."""
    if is_missing(text):
        return None
    return parse_int(text) if integer else float(text)


def _numeric_column(values: pd.Series, column: str, path: Path) -> pd.Series:
    integer = column in INT_COLUMNS
    parsed: list[int | float | None] = []
    for line, text in enumerate(values, start=2):
        try:
            parsed.append(_number(text, integer))
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise InputError(
                f"{path}: line {line}: column {column} is not {kind}: {text!r}"
            ) from None
    if integer:
        return pd.Series(parsed, index=values.index, dtype="Int64")
    return pd.Series(
        [math.nan if v is None else v for v in parsed], index=values.index, dtype="float64"
    )


def _bool_column(values: pd.Series, column: str, path: Path) -> pd.Series:
    parsed = values.map(parse_bool)
    bad = values[parsed.isna()]
    if len(bad):
        line = int(bad.index[0]) + 2
        raise InputError(
            f"{path}: line {line}: column {column} must be true or false, got {bad.iloc[0]!r}"
        )
    return parsed.astype(bool)


def _text(text: str, column: str) -> str:
    if column in OPTIONAL_TEXT_COLUMNS and is_missing(text):
        return ""
    text = restore(text)
    return integral_list(text) if column in INTEGER_LIST_COLUMNS and text else text


def _convert(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    for column in frame.columns:
        values = frame[column]
        if column in INT_COLUMNS or column in FLOAT_COLUMNS:
            frame[column] = _numeric_column(values, column, path)
        elif column in BOOL_COLUMNS:
            frame[column] = _bool_column(values, column, path)
        else:
            frame[column] = values.map(partial(_text, column=column))
    return frame


def read_results(path: Path) -> pd.DataFrame:
    """Read and validate a results CSV; every problem is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.endswith(b"\n") and b"\n" in data:
        # The writer ends every row with a newline, so a last line without one is a row torn
        # by a crash (kill -9, power cut): parsed, it would be a bogus row or break the file.
        data = data[: data.rfind(b"\n") + 1]
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable results CSV ({exc})") from None
    columns = tuple(frame.columns)
    if "schema_version" not in columns:
        raise InputError(f"{path}: not a deconvbench results file (no schema_version column)")
    versions = set(frame["schema_version"])
    if versions - {str(SCHEMA_VERSION)}:
        found = ", ".join(sorted(versions - {str(SCHEMA_VERSION)}))
        raise InputError(
            f"{path}: schema_version {found} is not supported (this version reads {SCHEMA_VERSION})"
        )
    missing = [c for c in CONTRACT_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path}: missing columns: {', '.join(missing)}")
    if columns[: len(CONTRACT_COLUMNS)] != CONTRACT_COLUMNS:
        raise InputError(f"{path}: columns are not in the schema's order")
    bad_status = frame.loc[~frame["status"].isin(STATUSES), "status"]
    if len(bad_status):
        line = int(bad_status.index[0]) + 2
        raise InputError(f"{path}: line {line}: unknown status {bad_status.iloc[0]!r}")
    return _convert(frame, path)



"""How one value of a results row is written as text, and read back.

Tuples are written with ``x`` (``4x4``), floats with ``repr`` (the shortest string that
reads back to the same double), ``None`` and NaN as an empty field, booleans as
``true``/``false``, ``samples_ms`` as ``;``-joined floats. A text field that a spreadsheet
would run as a formula (starting with ``= + - @``, a tab or a carriage return) is prefixed
with ``'``; so is one that already starts with ``'``, which makes the reader's undoing exact.

Reading back also takes what pandas writes when a user rewrites a file with
``pd.read_csv(f).to_csv(g, index=False)``: booleans as ``True``/``False``, an integer column
with a missing cell as floats (``3.0``), and NaN spelled ``nan`` when the user asks for it
(``na_rep``); pandas' floats are ``repr`` too, so they read back bit for bit.
"""

from __future__ import annotations

import math

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(text: str) -> str:
    """Keep spreadsheets from running a field as a formula (undone by :func:`restore`)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def restore(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def format_float(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def format_value(value: object) -> str:
    """One field's text, by the conventions in this module's docstring."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, tuple | list):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "x".join(str(v) for v in value)
        return ";".join(format_float(float(v)) for v in value)  # type: ignore[arg-type]
    return neutralise(str(value))


def parse_samples(text: object) -> list[float]:
    """``samples_ms`` back to floats (empty field: no samples)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
        return []
    return [float(v) for v in str(text).split(";")]


def number(value: object) -> float | None:
    """A cell as a float, from a run's row or a file's; None when missing, empty, NaN or not
    a number (infinities pass)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        result = float(value)  # type: ignore[arg-type]  # str/int/float/numpy scalars
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def parse_tuple(text: object) -> tuple[int, ...]:
    """``4x4`` (a tuple column) back to integers."""
    return tuple(int(v) for v in str(text).split("x"))


def is_missing(text: str) -> bool:
    """An empty cell, or NaN as pandas spells it (``nan``, ``NaN``): no value."""
    return text == "" or text.lower() == "nan"


def parse_int(text: str) -> int:
    """An integer field: digits, or a float whose value is integral (``3.0``: pandas writes an
    integer column with a missing cell as floats). ValueError for anything else (``3.5``)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # ValueError when not a number at all
        if not value.is_integer():  # 3.5, inf and nan are not integers
            raise ValueError(f"not an integer: {text!r}") from None
        return int(value)


def parse_bool(text: str) -> bool | None:
    """``true``/``false`` in any case (pandas writes ``True``/``False``); None otherwise."""
    return {"true": True, "false": False}.get(text.lower())


def integral_list(text: str) -> str:
    """A ``;``-joined list of integers (``round_samples``) in plain digits: ``5.0`` becomes
    ``5``, as pandas writes a column of single numbers with a missing cell as floats. Parts
    that are not integral numbers are left as they are (their reader decides)."""

    def plain(part: str) -> str:
        try:
            return str(parse_int(part))
        except ValueError:
            return part

    return ";".join(plain(p) for p in text.split(";"))

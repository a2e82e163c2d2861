"""How one value of a results row is written as text, and read back.

Tuples are written with ``x`` (``4x4``), floats with ``repr`` (the shortest string that
reads back to the same double), ``None`` and NaN as an empty field, booleans as
``true``/``false``, ``samples_ms`` as ``;``-joined floats. A text field that a spreadsheet
would run as a formula (starting with ``= + - @``, a tab or a carriage return) is prefixed
with ``'``; so is one that already starts with ``'``, which makes the reader's undoing exact.
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

"""Reading result rows and writing their numbers as text, shared by every renderer.

Rows come either straight from a run (``ResultRow``: Python numbers, ``None``) or back from a CSV
(strings, ``NaN`` for empty cells); the accessors here accept both, so no renderer has to
care where a row came from. Nothing here computes statistics: it only formats the ones
the harness put in the row.
"""

from __future__ import annotations

import math

from ..errors import ProblemError
from ..results import fields
from ..results.row import problem_of
from ..results.schema import FAILED_STATUSES, RowLike

OK = "ok"


def text(row: RowLike, key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def number(row: RowLike, key: str) -> float | None:
    """The value as a finite-or-infinite float; None when missing, empty or NaN."""
    return fields.number(row.get(key))


def status(row: RowLike) -> str:
    return text(row, "status") or "?"


def is_failed(row: RowLike) -> bool:
    """A row that went wrong (``results.schema.FAILED_STATUSES``)."""
    return status(row) in FAILED_STATUSES


def is_ok(row: RowLike) -> bool:
    """A row that is a result: measured (or verified) and correct."""
    return status(row) == OK


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in scientific notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}" if not math.isfinite(value) else "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def ms(value: float | None) -> str:
    return "" if value is None else significant(value, 4)


def gflops(value: float | None) -> str:
    return "" if value is None else significant(value, 3)


def percent(fraction: float | None, digits: int = 1) -> str:
    return "" if fraction is None else f"{100 * fraction:.{digits}f}%"


def error(value: float | None) -> str:
    """An error magnitude: scientific notation, since it spans many decades."""
    if value is None:
        return ""
    return "0" if value == 0 else f"{value:.1e}"


def ci_half_width(row: RowLike) -> float | None:
    """Half-width of the median's confidence interval, relative to the median.

    The harness records it (``ci_rel_halfwidth``); rows without that column (other tools,
    older files) fall back to the interval's bounds.
    """
    recorded = number(row, "ci_rel_halfwidth")
    if recorded is not None:
        return recorded
    low, high, median = (
        number(row, "ci_low_ms"),
        number(row, "ci_high_ms"),
        number(row, "median_ms"),
    )
    if low is None or high is None or not median:
        return None
    return (high - low) / 2 / median


def speedup(value: float | None, times: str = "×") -> str:
    return "" if value is None else f"{significant(value, 3)}{times}"


def megabytes(value: float | None) -> str:
    return "" if value is None else significant(value, 3)


def case_label(row: RowLike) -> str:
    return f"{text(row, 'suite')}/{text(row, 'case')}"


def problem_label(row: RowLike) -> str:
    """The problem of a row in the compact form of ``Problem.__str__``, and its output size."""
    try:
        label = str(problem_of(row))
    except (KeyError, ValueError, ProblemError):  # a row without a valid problem: say so
        label = "(problem unknown)"
    return f"{label} -> {text(row, 'output')}" if text(row, "output") else label


def one_line(row: RowLike, plus_minus: str = "±") -> str:
    """A finished row as one line (progress logs; plain output passes an ASCII ``plus_minus``)."""
    head = f"{case_label(row)} {text(row, 'implementation')} {text(row, 'pass')}"
    st = status(row)
    if st != OK:
        return f"{head}: {st}" + (f" ({text(row, 'message')})" if text(row, "message") else "")
    median = number(row, "median_ms")
    if median is None:  # verified only
        return f"{head}: ok (max rel err {error(number(row, 'max_rel_err'))})"
    parts = [f"{head}: ok {ms(median)} ms"]
    half = ci_half_width(row)
    if half is not None:
        parts.append(f"{plus_minus}{percent(half)}")
    g = number(row, "gflops")
    if g is not None:
        parts.append(f"{gflops(g)} GFLOP/s")
    peak = number(row, "peak_fraction")
    if peak is not None:
        parts.append(f"{percent(peak)} of peak")
    if text(row, "message"):
        parts.append(f"[{text(row, 'message')}]")
    return " ".join(parts)

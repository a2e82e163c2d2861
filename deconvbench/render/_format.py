"""Reading result rows and writing their numbers as text, shared by every renderer.

Rows come either straight from the runner (Python numbers, ``None``) or back from a CSV
(strings, ``NaN`` for empty cells); the accessors here accept both, so no renderer has to
care where a row came from. Nothing here computes statistics: it only formats the ones
the harness put in the row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

RowLike = Mapping[str, object]

OK = "ok"
FAILED = frozenset({"mismatch", "error", "crashed", "timeout", "oom"})
"""Statuses that make ``run`` and ``verify`` exit 1 (oom too: the user asked for that row)."""
NOT_RUN = frozenset({"unsupported", "unavailable", "skipped"})


def text(row: RowLike, key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def number(row: RowLike, key: str) -> float | None:
    """The value as a finite-or-infinite float; None when missing, empty or NaN."""
    value = row.get(key)
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        result = float(value)  # type: ignore[arg-type]  # str/int/float/numpy scalars
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def status(row: RowLike) -> str:
    return text(row, "status") or "?"


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
    """The problem of a row in the compact form of ``Problem.__str__``."""
    parts = [
        f"N{text(row, 'batch')} {text(row, 'in_channels')}->{text(row, 'out_channels')}",
        f"in {text(row, 'input')}",
        f"k{text(row, 'kernel')} s{text(row, 'stride')} p{text(row, 'padding')}",
    ]
    if any(v not in ("0", "") for v in text(row, "output_padding").split("x")):
        parts.append(f"op{text(row, 'output_padding')}")
    if any(v not in ("1", "") for v in text(row, "dilation").split("x")):
        parts.append(f"d{text(row, 'dilation')}")
    if text(row, "groups") not in ("1", ""):
        parts.append(f"g{text(row, 'groups')}")
    if text(row, "bias").lower() in ("true", "1"):
        parts.append("+bias")
    parts.append(text(row, "dtype"))
    if text(row, "output"):
        parts.append(f"-> {text(row, 'output')}")
    return " ".join(parts)


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

"""``export``'s formats: series (``analysis/export.py``) as the JSON a tracker reads.

- ``github-action-benchmark``: the action's ``customSmallerIsBetter`` input, a list of
  ``{name, unit, value, range, extra}``; ``unit`` is ``ms``, ``range`` is ``± h`` with h half
  the 95% interval's width (left out without an interval), ``extra`` says what the value is.
- ``bencher``: Bencher Metric Format, ``{benchmark: {"latency": {value, lower_value,
  upper_value}}}``; the built-in ``latency`` measure is in nanoseconds, so the times are
  too, and the bounds are the 95% interval (left out without one).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..analysis.export import Point, Series

FORMATS = ("github-action-benchmark", "bencher")

NS_PER_MS = 1e6


def _halfwidth(p: Point) -> float | None:
    if p.low_ms is None or p.high_ms is None:
        return None
    return (p.high_ms - p.low_ms) / 2.0


def _extra(p: Point) -> str:
    interval = "" if p.low_ms is None else f", 95% CI {p.low_ms:.6g}-{p.high_ms:.6g} ms"
    return (f"{p.statistic} of {p.samples} samples{interval}; "
            f"device {p.device}, {p.threads} threads")  # fmt: skip


def github_action_benchmark(s: Series) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for p in s.points:
        entry: dict[str, object] = {"name": p.name, "unit": "ms", "value": p.value_ms}
        half = _halfwidth(p)
        if half is not None:
            entry["range"] = f"± {half:.6g}"
        entry["extra"] = _extra(p)
        out.append(entry)
    return out


def bencher(s: Series) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for p in s.points:
        latency = {"value": p.value_ms * NS_PER_MS}
        if p.low_ms is not None and p.high_ms is not None:
            latency.update(lower_value=p.low_ms * NS_PER_MS, upper_value=p.high_ms * NS_PER_MS)
        out[p.name] = {"latency": latency}
    return out


_RENDER: dict[str, Callable[[Series], object]] = {
    "github-action-benchmark": github_action_benchmark,
    "bencher": bencher,
}


def export(s: Series, format: str) -> str:
    """The series in ``format`` (one of :data:`FORMATS`), as JSON text ending in a newline."""
    return json.dumps(_RENDER[format](s), indent=2, ensure_ascii=False) + "\n"


def left_out_line(s: Series) -> str | None:
    """What was left out, for stderr (None when nothing was)."""
    if not s.left_out:
        return None
    total = sum(s.left_out.values())
    parts = ", ".join(f"{n} {status}" for status, n in s.left_out.items())
    rows = "row" if total == 1 else "rows"
    return f"left out {total} {rows} without a time ({parts})"

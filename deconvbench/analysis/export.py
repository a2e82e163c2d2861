"""A run's rows as series for benchmark trackers: one point per timed ``ok`` row, as pure data.

A series is one (suite, case, strategy, pass, dtype), the identity of a row
(``results.schema.KEY_COLUMNS``), named ``suite/case strategy pass dtype``. Its value is the
time ``compare`` judges a row by with its default statistic (the median): for a row measured
in rounds (``run --rounds N``, N >= 2) the fastest round's median, otherwise the median of
every sample; its interval is the distribution-free 95% interval of that median
(``harness.stats.median_ci``) over the same samples. A row without samples but with its
summary columns (a file written by hand or trimmed) gives ``median_ms`` and its
``ci_low_ms``/``ci_high_ms``. Rows that are not ``ok``, or ``ok`` but not timed
(``verify -o``), are left out and counted. ``render/export.py`` writes the formats.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import pandas as pd

from ..errors import InputError
from ..harness.stats import median_ci
from ..results.fields import number, parse_samples
from ..results.schema import KEY_COLUMNS
from .compare import round_sizes
from .matching import cell
from .significance import split_rounds, statistic_of

NOT_TIMED = "not timed"
"""The reason counted for an ``ok`` row that has no time (verified only)."""


@dataclass(frozen=True)
class Point:
    """One series' value from one row, in milliseconds."""

    name: str
    """``suite/case strategy pass dtype``: unique in a file."""
    value_ms: float
    low_ms: float | None
    """The 95% interval of the value; None with too few samples for one."""
    high_ms: float | None
    samples: int
    """The samples the value is the median of (the fastest round's, with rounds)."""
    rounds: int
    """The rounds the row was measured in (1 without rounds)."""
    device: str
    threads: str

    @property
    def statistic(self) -> str:
        """What the value is, in words."""
        if self.rounds > 1:
            return f"fastest of {self.rounds} rounds' medians"
        return "median"


@dataclass(frozen=True)
class Series:
    points: tuple[Point, ...]
    left_out: dict[str, int]
    """Rows left out, by status (``not timed`` for an ok row without a time)."""


def series_name(row: Mapping[str, object]) -> str:
    suite, case, implementation, pass_, dtype = (cell(row.get(c)) for c in KEY_COLUMNS)
    return f"{suite}/{case} {implementation} {pass_} {dtype}"


def _interval(samples: list[float]) -> tuple[float | None, float | None]:
    ci = median_ci(sorted(samples))
    return (None, None) if ci is None else ci


def point(row: Mapping[str, object]) -> Point | None:
    """The row's point, or None when it has no time."""
    samples = [s for s in parse_samples(row.get("samples_ms")) if math.isfinite(s)]
    sizes = round_sizes(row, len(samples))
    common = {"name": series_name(row), "device": cell(row.get("device")),
              "threads": cell(row.get("threads"))}  # fmt: skip
    if samples and len(sizes) >= 2:
        rounds = split_rounds(samples, sizes)
        medians = [statistic_of(r, "median") for r in rounds]
        fastest = rounds[medians.index(min(medians))]
        low, high = _interval(fastest)
        return Point(value_ms=min(medians), low_ms=low, high_ms=high, samples=len(fastest),
                     rounds=len(sizes), **common)  # fmt: skip
    if samples:
        low, high = _interval(samples)
        return Point(value_ms=statistic_of(samples, "median"), low_ms=low, high_ms=high,
                     samples=len(samples), rounds=1, **common)  # fmt: skip
    median = number(row.get("median_ms"))
    if median is None or not math.isfinite(median):
        return None
    low, high = number(row.get("ci_low_ms")), number(row.get("ci_high_ms"))
    if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
        low = high = None
    count = number(row.get("samples"))
    return Point(value_ms=median, low_ms=low, high_ms=high, rounds=1,
                 samples=int(count) if count is not None and math.isfinite(count) else 0,
                 **common)  # fmt: skip


def series(rows: Iterable[Mapping[str, object]]) -> Series:
    """Every timed ok row's point, in file order; the other rows counted by status.

    Two rows with one identity (a file joined by hand) are bad input: a tracker would get
    two values for one series.
    """
    points: list[Point] = []
    left_out: Counter[str] = Counter()
    seen: set[str] = set()
    for row in rows:
        status = cell(row.get("status"))
        if status != "ok":
            left_out[status] += 1
            continue
        p = point(row)
        if p is None:
            left_out[NOT_TIMED] += 1
            continue
        if p.name in seen:
            raise InputError(f"two rows for {p.name!r}: one row per series (deconvbench merge)")
        seen.add(p.name)
        points.append(p)
    return Series(tuple(points), dict(sorted(left_out.items())))


def series_of_frame(frame: pd.DataFrame) -> Series:
    """:func:`series` over a frame from ``results.reader.read_results``."""
    return series(cast(list[dict[str, object]], frame.to_dict("records")))

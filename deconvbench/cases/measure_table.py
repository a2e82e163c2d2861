"""A suite's ``[measure]`` table: the timing settings its author asks for.

A quick check such as the shipped ``smoke`` suite asks for a looser precision and a shorter
warm-up than a run's defaults, because it is run to see every strategy work, often, and its
calls last microseconds; a suite of long layers may ask for a larger budget. The run
combines every request with its own options (``run.measure_settings``): an option given on
the command line wins, and the sidecar records where each setting came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

from .values import Bad, check_keys, got, is_int

MEASURE_KEYS = ("precision", "budget", "warmup", "min_samples")


@dataclass(frozen=True)
class MeasureRequest:
    """Timing settings asked for; None leaves a setting to the run's default."""

    precision: float | None = None
    """Target half-width of the median's 95% CI, relative (0.05 = ±5%)."""
    budget_s: float | None = None
    """Seconds of sampling a measurement may spend."""
    warmup_s: float | None = None
    """Seconds of warm-up before a measurement's calibration."""
    min_samples: int | None = None
    """Fewest samples."""


def phrase(name: str, value: float) -> str:
    """One setting as a reader says it: ``precision ±5%``, ``budget 0.3 s``."""
    if name == "precision":
        return f"precision ±{value * 100:g}%"
    if name == "min_samples":
        return f"at least {value:g} samples"
    return f"{'budget' if name == 'budget_s' else 'warm-up'} {value:g} s"


def describe(request: MeasureRequest) -> list[str]:
    """The settings a request sets, as phrases (empty when it sets none)."""
    return [
        phrase(f.name, value)
        for f in dataclasses.fields(request)
        if (value := getattr(request, f.name)) is not None
    ]


def _seconds(key: str, value: object, *, zero_ok: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"{key}: must be a number of seconds, {got(value)}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise Bad(f"{key}: must be {'>= 0' if zero_ok else '> 0'} seconds, {got(value)}")
    return float(value)


def _precision(value: object) -> float:
    """``"5%"`` or ``0.05``: the CLI's ``--precision`` spellings."""
    number = math.nan
    if isinstance(value, str) and value.strip().endswith("%"):
        with contextlib.suppress(ValueError):
            number = float(value.strip()[:-1]) / 100
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not 0 < number < 1:  # NaN fails too
        raise Bad(f'precision: must be a fraction like 0.05 or a string like "5%", {got(value)}')
    return number


def parse_measure(table: object) -> MeasureRequest:
    """The ``[measure]`` table, checked; raises :class:`Bad` naming the key."""
    if not isinstance(table, dict):
        raise Bad(f"must be a table, {got(table)}")
    check_keys(table, MEASURE_KEYS)
    min_samples = table.get("min_samples")
    if min_samples is not None and not (is_int(min_samples) and min_samples >= 1):
        raise Bad(f"min_samples: must be an integer >= 1, {got(min_samples)}")
    return MeasureRequest(
        precision=_precision(table["precision"]) if "precision" in table else None,
        budget_s=_seconds("budget", table["budget"], zero_ok=False) if "budget" in table else None,
        warmup_s=_seconds("warmup", table["warmup"], zero_ok=True) if "warmup" in table else None,
        min_samples=min_samples,
    )

"""The run's timing settings from its options and what its suites ask (``[measure]``).

Pure. Per setting: an option given on the command line wins; otherwise every source of cases
(each suite, and ``--case`` strings, which ask for the defaults) gets what it asks for by
taking the most demanding request: the smallest precision, the largest budget, warm-up and
minimum of samples. A suite without a ``[measure]`` table asks for the defaults, so a quick
suite run together with another suite is measured as carefully as the other one needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from ..cases.measure_table import MeasureRequest, phrase
from .types import RunOptions

_DEFAULTS = RunOptions()
DEFAULTS = MeasureRequest(
    precision=_DEFAULTS.precision,
    budget_s=_DEFAULTS.budget_s,
    warmup_s=_DEFAULTS.warmup_s,
    min_samples=_DEFAULTS.min_samples,
)
"""The run's own defaults (``RunOptions``'s)."""
OPTION_NAMES = {
    "precision": "--precision",
    "budget_s": "--budget",
    "warmup_s": "--warmup",
    "min_samples": "--min-samples",
}


@dataclass(frozen=True)
class MeasureSettings:
    """The settings a run uses, and for each where it came from: ``--budget``, ``suite
    'smoke'``, or ``default``."""

    values: MeasureRequest
    sources: dict[str, str]

    def facts(self) -> dict[str, object]:
        """For the sidecar: each setting's value and source."""
        return {
            name: {"value": getattr(self.values, name), "from": source}
            for name, source in self.sources.items()
        }

    def apply(self, options: RunOptions) -> RunOptions:
        """``options`` with these timing settings (every one is set after :func:`resolve`)."""
        v = self.values
        assert v.precision is not None and v.budget_s is not None
        assert v.warmup_s is not None and v.min_samples is not None
        return replace(
            options,
            precision=v.precision,
            budget_s=v.budget_s,
            warmup_s=v.warmup_s,
            min_samples=v.min_samples,
        )

    def from_suites(self) -> list[str]:
        """``precision ±5%``-style phrases for the settings a suite chose (for a note)."""
        return [
            phrase(name, getattr(self.values, name)) + f" ({source})"
            for name, source in self.sources.items()
            if source.startswith("suite ")
        ]


def _most_demanding(name: str, values: list[float]) -> float:
    return min(values) if name == "precision" else max(values)


def resolve(
    explicit: MeasureRequest, requests: Sequence[tuple[str, MeasureRequest]]
) -> MeasureSettings:
    """The settings of a run: ``explicit`` (the options given), else the most demanding of
    the ``requests`` (label, request), each request's missing settings being the defaults."""
    values: dict[str, float | int] = {}
    sources: dict[str, str] = {}
    for field in fields(MeasureRequest):
        name = field.name
        given = getattr(explicit, name)
        if given is not None:
            values[name], sources[name] = given, OPTION_NAMES[name]
            continue
        default = getattr(DEFAULTS, name)
        asked = [(label, getattr(r, name)) for label, r in requests]
        wanted = [(label, default if v is None else v) for label, v in asked]
        if not wanted:
            values[name], sources[name] = default, "default"
            continue
        chosen = _most_demanding(name, [v for _, v in wanted])
        values[name] = chosen
        own = [label for label, v in asked if v is not None and v == chosen]
        sources[name] = "default" if chosen == default or not own else ", ".join(own)
    return MeasureSettings(MeasureRequest(**values), sources)  # type: ignore[arg-type]

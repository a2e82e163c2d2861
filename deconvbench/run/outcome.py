"""What one task's round produced, before it is a row: :class:`Outcome`.

A round's outcome carries its measurement as the object the harness made, so rounds are
merged by joining measurements (``rounds.merge_rounds``), never by re-reading rows. An
outcome also travels as JSON (the rounds journal) and by pickle (from an isolated worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from ..harness.measure import Faults, Measurement, Settings, StopReason
from ..harness.notes import Note, NoteKind


@dataclass(frozen=True)
class Outcome:
    """A status and what was learnt: the reference check, the memory, the measurements.

    ``measurements`` holds one per round measured, in round order (none when nothing was
    timed); ``notes`` are the task's own (the memory probe's), not the measurements'.
    """

    status: str
    reason: str = ""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    peak_mem_mb: float | None = None
    notes: tuple[Note, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    traceback: str = ""
    """The traceback of the exception that ended the task (shown with ``--debug``; not in
    the journal: only finished, ok rounds are journaled)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def measurement_json(m: Measurement) -> dict[str, object]:
    return {
        "samples_ms": list(m.samples_ms),
        "number": m.number,
        "stop": m.stop,
        "warmup_calls": m.warmup_calls,
        "elapsed_s": m.elapsed_s,
        "clock": m.clock,
        "faults": None if m.faults is None else [m.faults.minor, m.faults.major, m.faults.calls],
        "cpu_s": m.cpu_s,
        "attempts": m.attempts,
    }


def measurement_from_json(data: dict[str, object], settings: Settings) -> Measurement:
    stop = str(data["stop"])
    faults = cast(list[int] | None, data["faults"])
    if stop not in ("precision", "budget", "max-samples"):
        raise ValueError(f"unknown stop reason {stop!r}")
    return Measurement(
        samples_ms=tuple(float(v) for v in cast(list[float], data["samples_ms"])),
        number=int(cast(int, data["number"])),
        stop=cast(StopReason, stop),
        warmup_calls=int(cast(int, data["warmup_calls"])),
        elapsed_s=float(cast(float, data["elapsed_s"])),
        clock=str(data["clock"]),
        settings=settings,
        faults=None if faults is None else Faults(*(int(v) for v in faults)),
        cpu_s=_optional_float(data.get("cpu_s")),  # absent in journals of older versions
        attempts=int(cast(int, data.get("attempts", 1))),
    )


def outcome_json(outcome: Outcome) -> dict[str, object]:
    return {
        "status": outcome.status,
        "reason": outcome.reason,
        "max_abs_err": outcome.max_abs_err,
        "max_rel_err": outcome.max_rel_err,
        "peak_mem_mb": outcome.peak_mem_mb,
        "notes": [[n.kind.value, n.text] for n in outcome.notes],
        "measurements": [measurement_json(m) for m in outcome.measurements],
    }


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def outcome_from_json(data: dict[str, object], settings: Settings) -> Outcome:
    """An outcome written by :func:`outcome_json`; ``settings`` are the round's (they are not
    stored: every round of a run has the same). Raises on anything malformed."""
    notes = cast(list[list[str]], data["notes"])
    measurements = cast(list[dict[str, object]], data["measurements"])
    return Outcome(
        status=str(data["status"]),
        reason=str(data["reason"]),
        max_abs_err=_optional_float(data["max_abs_err"]),
        max_rel_err=_optional_float(data["max_rel_err"]),
        peak_mem_mb=_optional_float(data["peak_mem_mb"]),
        notes=tuple(Note(NoteKind(kind), str(text)) for kind, text in notes),
        measurements=tuple(measurement_from_json(m, settings) for m in measurements),
    )

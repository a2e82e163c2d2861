"""``run --rounds N``: every row measured N times, each time in its own pass over the run.

Why: a machine's speed drifts. Two runs of the same code minutes apart differ by 5-15% on
many rows (a neighbour on the host, frequency, memory placement), and a single measurement's
samples, taken within a second or two, can't see that: their confidence interval is narrow
and ``compare`` would call the drift a change. Measuring each row in N rounds spread over
the whole run samples the drift; ``compare`` then judges a change against the spread of the
rounds (``significance.rounds_test``), and the median pools every round's samples.

Round r measures every task once more (fresh preparation, warm-up and calibration), with
1/N of the time budget. Verification and the memory reading happen in the first round
only. A task that is not ok in some round is final at once with that status; its earlier
rounds are dropped.

A row is written when its last round is done. Until then its finished rounds live in a
journal beside the results (``results.csv.rounds``, JSON lines, each flushed and fsynced),
so a crash or Ctrl-C loses at most the round in flight and ``--resume`` picks up the rest.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from .harness.measure import Measurement, Settings, StopReason
from .results import Row, parse_samples, row_key
from .stats import DISPERSION_WARNING, median

JOURNAL_SUFFIX = ".rounds"


def round_settings(settings: Settings, rounds: int) -> Settings:
    """One round's share: the budget split evenly, enough samples that N rounds reach
    ``min_samples`` together (at least two a round, so every round has a median)."""
    if rounds <= 1:
        return settings
    return replace(
        settings,
        budget_s=settings.budget_s / rounds,
        min_samples=max(2, math.ceil(settings.min_samples / rounds)),
    )


def round_label(round_: int, rounds: int) -> str:
    return f"round {round_ + 1}/{rounds}" if rounds > 1 else ""


def samples_of(row: Row) -> list[float]:
    value = row.get("samples_ms")
    if isinstance(value, list | tuple):
        return [float(v) for v in value]
    return parse_samples(value)


def measurement_of(row: Row, settings: Settings) -> Measurement:
    """A round's row back as the measurement it came from (enough for its statistics and
    warnings: warm-up counts and elapsed time are not kept in rows)."""
    stop = str(row.get("stop_reason") or "precision")
    return Measurement(
        samples_ms=tuple(samples_of(row)),
        number=int(str(row.get("inner_loops") or 1)),
        stop=stop if stop in ("precision", "budget", "max-samples") else "precision",  # type: ignore[arg-type]
        warmup_calls=0,
        elapsed_s=0.0,
        clock=str(row.get("clock") or ""),
        settings=settings,
    )


def pooled_measurement(rows: Sequence[Row], settings: Settings) -> tuple[Measurement, list[int]]:
    """Every round as one measurement (the rounds' samples one after the other, judged by the
    whole run's settings), and how many samples each round gave.

    ``number`` is the largest round's calibration; the stop is ``budget`` when any round ran
    out of time (that is the warning worth giving), else the last round's.
    """
    rounds = [measurement_of(r, settings) for r in rows]
    stops: list[StopReason] = [m.stop for m in rounds]
    pooled = replace(
        rounds[-1],
        samples_ms=tuple(s for m in rounds for s in m.samples_ms),
        number=max(m.number for m in rounds),
        stop="budget" if "budget" in stops else stops[-1],
    )
    return pooled, [len(m.samples_ms) for m in rounds]


def disagreement(rows: Sequence[Row]) -> str | None:
    """A note when the rounds' medians are further apart than a measurement's usual spread.

    Not an error: it says this machine drifted during the run, by how much, so a reader
    knows that differences of that size between runs mean nothing.
    """
    medians = [median(s) for s in (samples_of(r) for r in rows) if s]
    if len(medians) < 2 or min(medians) <= 0:
        return None
    spread = max(medians) / min(medians) - 1.0
    if spread < DISPERSION_WARNING:
        return None
    return (
        f"rounds disagree: medians {min(medians):.4g}-{max(medians):.4g} ms "
        f"({spread:.0%} apart; the machine drifted)"
    )


def merged_notes(rows: Sequence[Row]) -> list[str]:
    """Each distinct note of the rounds' messages, first seen first."""
    notes: dict[str, None] = {}
    for r in rows:
        for note in str(r.get("message") or "").split("; "):
            if note:
                notes.setdefault(note, None)
    return list(notes)


def stop_reasons(rows: Sequence[Row]) -> str:
    """The rounds' distinct stop reasons, ``+``-joined (``precision+budget``)."""
    return "+".join(dict.fromkeys(str(r.get("stop_reason")) for r in rows if r.get("stop_reason")))


class Journal:
    """The finished rounds of rows not yet written, beside the results file.

    ``mode`` is the results writer's: ``resume`` keeps (and reads) an existing journal, the
    others start afresh (a journal without its results file is stale).
    """

    def __init__(self, results: Path, mode: str) -> None:
        self.path = Path(str(results) + JOURNAL_SUFFIX)
        if mode != "resume":
            self.path.unlink(missing_ok=True)

    def load(self) -> dict[tuple[str, ...], dict[int, Row]]:
        """key → round → row. A torn last line (a crash mid-write) is ignored."""
        done: dict[tuple[str, ...], dict[int, Row]] = {}
        for round_, row in self._entries():
            done.setdefault(row_key(row), {})[round_] = row
        return done

    def _entries(self) -> Iterator[tuple[int, Row]]:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a crash: that round runs again
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("row"), dict)
                and isinstance(entry.get("round"), int)
            ):
                yield entry["round"], entry["row"]

    def add(self, round_: int, row: Row) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"round": round_, "row": row}, default=list) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        """Once every row is written the journal says nothing more."""
        self.path.unlink(missing_ok=True)

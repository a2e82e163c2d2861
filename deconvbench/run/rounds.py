"""``run --rounds N``: every row measured N times, each time in its own pass over the run.

Why: a machine's speed drifts. Two runs of the same code minutes apart differ by 5-15% on
many rows (a neighbour on the host, frequency, memory placement), and a single measurement's
samples, taken within a second or two, can't see that: their confidence interval is narrow
and ``compare`` would call the drift a change. Measuring each row in N rounds spread over
the whole run samples the drift; ``compare`` then judges a change against the spread of the
rounds (``analysis.significance.rounds_test``), and the median pools every round's samples.

Round r measures every task once more (fresh preparation, warm-up and calibration), with
1/N of the time budget. Verification and the memory reading happen in the first round
only. A task that is not ok in some round is final at once with that status; its earlier
rounds are dropped.

A row is written when its last round is done. Until then its finished rounds live in the
journal beside the results (``results.journal``), so a crash or Ctrl-C loses at most the
round in flight and ``--resume`` picks up the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ..harness import notes
from ..harness.measure import Measurement, Settings, StopReason
from ..harness.notes import Note
from ..harness.stats import DISPERSION_WARNING, median
from ..results.journal import Journal
from ..results.schema import RowKey
from .outcome import Outcome, outcome_from_json, outcome_json


def round_settings(settings: Settings, rounds: int) -> Settings:
    """One round's share: the budget split evenly, enough samples that N rounds reach
    ``min_samples`` together (at least two a round, so every round has a median). The
    precision stays the run's: each round's median is what ``compare`` tests, and a looser
    one made the smoke suite 35% faster but left twice as many rows wider than asked."""
    if rounds <= 1:
        return settings
    return replace(
        settings,
        budget_s=settings.budget_s / rounds,
        min_samples=max(2, math.ceil(settings.min_samples / rounds)),
    )


def merge_rounds(parts: Sequence[Outcome]) -> Outcome:
    """The ok outcomes of a task's rounds, in round order, as one: the first round's check,
    memory and notes, and every round's measurement."""
    return replace(parts[0], measurements=tuple(m for p in parts for m in p.measurements))


def pooled(measurements: Sequence[Measurement], settings: Settings) -> Measurement:
    """Every round as one measurement: the rounds' samples one after the other, judged by
    the whole run's ``settings``.

    ``number`` is the largest round's calibration; the stop is ``budget`` when any round ran
    out of time (that is the warning worth giving), else the last round's. Page faults add
    up, with the calls they happened over (unknown when any round's are).
    """
    stops: list[StopReason] = [m.stop for m in measurements]
    counted = [m.faults for m in measurements if m.faults is not None]
    return replace(
        measurements[-1],
        samples_ms=tuple(s for m in measurements for s in m.samples_ms),
        number=max(m.number for m in measurements),
        stop="budget" if "budget" in stops else stops[-1],
        settings=settings,
        faults=sum(counted[1:], counted[0]) if len(counted) == len(measurements) else None,
    )


def disagreement(measurements: Sequence[Measurement]) -> Note | None:
    """A note when the rounds' medians are further apart than a measurement's usual spread.

    Not an error: it says this machine drifted during the run, by how much, so a reader
    knows that differences of that size between runs mean nothing.
    """
    medians = [median(m.samples_ms) for m in measurements if m.samples_ms]
    if len(medians) < 2 or min(medians) <= 0:
        return None
    spread = max(medians) / min(medians) - 1.0
    if spread < DISPERSION_WARNING:
        return None
    return notes.rounds_disagree(min(medians), max(medians), spread)


def disturbed(outcome: Outcome) -> bool:
    """Whether an ok round's measurement shows other work taking the CPU: such a round is
    measured once more (``loop.execute``), so a burst of load costs a row one repeat, not its
    numbers."""
    return outcome.ok and any(m.interference() is not None for m in outcome.measurements)


def repeated(first: Outcome, again: Outcome) -> Outcome:
    """The round's outcome after measuring it again: the repeat's measurements (marked as
    second attempts), unless the repeat failed, when the first stands."""
    if not again.ok or not again.measurements:
        return first
    return replace(again, measurements=tuple(replace(m, attempts=2) for m in again.measurements))


def interference_note(measurements: Sequence[Measurement]) -> Note | None:
    """A note when some round's samples or CPU time show interference: how many rounds, the
    first one's evidence, and whether it survived measuring again."""
    found = [(m, m.interference()) for m in measurements]
    hit = [(m, f) for m, f in found if f is not None]
    if not hit:
        return None
    evidence = hit[0][1].describe()
    again = any(m.attempts > 1 for m, _ in hit)
    return notes.interference(evidence, len(hit), len(measurements), again)


def cpu_use(measurements: Sequence[Measurement], threads: int) -> tuple[float | None, float | None]:
    """(CPU ms per timed call, CPU time over wall time x threads) over every round's sampling;
    (None, None) when a round's CPU time is unknown (a device's clock)."""
    if not measurements or any(m.cpu_s is None for m in measurements):
        return None, None
    cpu = sum(m.cpu_s or 0.0 for m in measurements)
    wall = sum(m.elapsed_s for m in measurements)
    calls = sum(len(m.samples_ms) * m.number for m in measurements)
    per_call = cpu / calls * 1e3 if calls else None
    ratio = cpu / (wall * max(threads, 1)) if wall > 0 else None
    return per_call, ratio


def stop_reasons(measurements: Sequence[Measurement]) -> str:
    """The rounds' distinct stop reasons, ``+``-joined (``precision+budget``)."""
    return "+".join(dict.fromkeys(m.stop for m in measurements))


# --- the journal of rounds not yet written ------------------------------------------------------


def save_round(journal: Journal, key: RowKey, round_: int, outcome: Outcome) -> None:
    journal.add({"key": list(key), "round": round_, "outcome": outcome_json(outcome)})


def load_rounds(journal: Journal, settings: Settings) -> dict[RowKey, dict[int, Outcome]]:
    """key → round → outcome, from the journal's entries. An entry that can't be read (torn,
    or written by another version) is skipped: its round runs again."""
    done: dict[RowKey, dict[int, Outcome]] = {}
    for entry in journal.entries():
        key, round_, data = entry.get("key"), entry.get("round"), entry.get("outcome")
        if not (isinstance(key, list) and len(key) == len(RowKey._fields)):
            continue
        if not (isinstance(round_, int) and isinstance(data, dict)):
            continue
        try:
            outcome = outcome_from_json(data, settings)
        except (KeyError, TypeError, ValueError):
            continue
        done.setdefault(RowKey(*map(str, key)), {})[round_] = outcome
    return done

"""Notes: what a row says about how far to trust it, as typed values with one text each.

The harness, the rounds and the memory probe make notes; a results row carries them, in
order, and its CSV ``message`` column holds their texts joined by ``"; "``. Every text is
written here, and :func:`split` reads a message back into notes by the same templates, so
a note's kind is decided in this one module (what ``report`` calls unstable, what a pooled
row drops) and never by searching for words in a message elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

SEPARATOR = "; "
"""Between the notes of one message (the CSV ``message`` column)."""


class NoteKind(StrEnum):
    FEW_SAMPLES = "few-samples"
    UNSTABLE = "unstable"
    NO_CI = "no-ci"
    WIDE_CI = "wide-ci"
    BUDGET = "budget"
    ROUNDS_DISAGREE = "rounds-disagree"
    MEMORY_UNKNOWN = "memory-unknown"
    FRESH_PAGES = "fresh-pages"
    ENGINE = "engine"
    INTERFERENCE = "interference"
    OTHER = "other"
    """A text none of the templates made (a file written by another version, say)."""


@dataclass(frozen=True)
class Note:
    kind: NoteKind
    text: str

    def __str__(self) -> str:
        return self.text


# --- the templates: one function per kind, and the pattern that recognises its text ----------


def few_samples(samples: int, min_samples: int) -> Note:
    return Note(
        NoteKind.FEW_SAMPLES, f"only {samples} samples (< {min_samples}): raise the time budget"
    )


def unstable(spread: float) -> Note:
    text = f"unstable: the middle half of the samples spans {spread:.0%} of the median"
    return Note(NoteKind.UNSTABLE, text)


def no_ci(samples: int) -> Note:
    return Note(NoteKind.NO_CI, f"no 95% CI of the median from {samples} samples (needs >= 6)")


def wide_ci(halfwidth: float, precision: float) -> Note:
    return Note(NoteKind.WIDE_CI, f"95% CI ±{halfwidth:.1%} misses the ±{precision:.1%} target")


def budget_exhausted() -> Note:
    return Note(NoteKind.BUDGET, "time budget exhausted")


def rounds_disagree(fastest_ms: float, slowest_ms: float, spread: float) -> Note:
    return Note(
        NoteKind.ROUNDS_DISAGREE,
        f"rounds disagree: medians {fastest_ms:.4g}-{slowest_ms:.4g} ms "
        f"({spread:.0%} apart; the machine drifted)",
    )


def memory_unknown(reason: str) -> Note:
    return Note(NoteKind.MEMORY_UNKNOWN, f"peak memory unknown: {reason}")


def fresh_pages(mb_per_call: float) -> Note:
    return Note(
        NoteKind.FRESH_PAGES,
        f"fresh pages: {mb_per_call:.3g} MB a call (page faults while timing)",
    )


def interference(evidence: str, disturbed: int, rounds: int, repeated: bool) -> Note:
    """Other work took the CPU while ``disturbed`` of ``rounds`` rounds sampled; ``evidence``
    says how it shows (``Interference.describe``); ``repeated``: those rounds were measured
    again and still showed it."""
    where = "" if rounds <= 1 else f" in {disturbed} of {rounds} rounds"
    again = ", still after measuring again" if repeated else ""
    return Note(
        NoteKind.INTERFERENCE,
        f"interference: other work took the CPU{where} ({evidence}){again}",
    )


def engine(facts: Mapping[str, object]) -> Note:
    """What an engine reported about its preparation (``Prepared.facts``)."""
    shown = ", ".join(f"{k}={_fact(v)}" for k, v in facts.items())
    return Note(NoteKind.ENGINE, f"engine: {shown}")


def _fact(value: object) -> str:
    text = f"{value:.3g}" if isinstance(value, float) else str(value)
    return text.replace(";", ",")  # the separator never appears inside a note


_PATTERNS: dict[NoteKind, re.Pattern[str]] = {
    NoteKind.FEW_SAMPLES: re.compile(r"only \d+ samples \(< \d+\): raise the time budget"),
    NoteKind.UNSTABLE: re.compile(r"unstable: [^;]*"),  # older versions: "stddev is 12% of..."
    NoteKind.NO_CI: re.compile(r"no 95% CI of the median from \d+ samples \(needs >= 6\)"),
    NoteKind.WIDE_CI: re.compile(r"95% CI ±[\d.]+% misses the ±[\d.]+% target"),
    NoteKind.BUDGET: re.compile(r"time budget exhausted"),
    NoteKind.ROUNDS_DISAGREE: re.compile(
        r"rounds disagree: medians [^;]* ms \(\d+% apart; the machine drifted\)"
    ),
    NoteKind.MEMORY_UNKNOWN: re.compile(r"peak memory unknown: [^;]*"),
    NoteKind.FRESH_PAGES: re.compile(r"fresh pages: \S+ MB a call \(page faults while timing\)"),
    NoteKind.ENGINE: re.compile(r"engine: [^;]*"),
    NoteKind.INTERFERENCE: re.compile(r"interference: [^;]*"),
}
"""Each kind's texts, exactly: free text never spans the separator, so :func:`split` can
tell where one note ends even when a template itself contains ``"; "``."""


def kind_of(text: str) -> NoteKind:
    """The kind whose template made ``text`` (``OTHER`` when none did)."""
    for kind, pattern in _PATTERNS.items():
        if pattern.fullmatch(text):
            return kind
    return NoteKind.OTHER


# --- messages ----------------------------------------------------------------------------------


def join(notes: Iterable[Note]) -> str:
    """The ``message`` column of an ok row: the notes' texts in order."""
    return SEPARATOR.join(n.text for n in notes)


def split(message: str) -> tuple[Note, ...]:
    """A ``message`` back into its notes (empty parts dropped).

    The message is cut at each separator, and at each place the longest run of parts that
    one template made is one note; a part no template made is a note of kind ``OTHER``.
    """
    parts = [p for p in message.split(SEPARATOR) if p]
    out: list[Note] = []
    start = 0
    while start < len(parts):
        for end in range(len(parts), start, -1):
            text = SEPARATOR.join(parts[start:end])
            kind = kind_of(text)
            if kind != NoteKind.OTHER or end == start + 1:
                out.append(Note(kind, text))
                start = end
                break
    return tuple(out)

"""Interference: did other work on the machine take the CPU away while a measurement sampled?

Two signs, each a pure function of a measurement's numbers:

- **Descheduled.** The process's CPU time while sampling (every thread's, user and system)
  over the sampling's wall time is the average number of its threads on a CPU. A call on the
  CPU keeps at least its calling thread busy (or a worker it waits for), so on a quiet
  machine this is about 1 or more (``threads`` when every thread computes). Below
  ``DESCHEDULED_BUSY`` the process spent most of the sampling waiting for a core: another
  process had it.
- **Scheduler ticks.** A process that loses its core gets it back at a scheduler tick or at
  the end of another's time slice, so a disturbed sample lasts its work plus a whole number
  of periods (4 ms ticks at HZ=250, 8 ms here under a CPU hog). Then the samples' excesses
  over the fastest sample cluster at multiples of one period of at least 1 ms. Clean noise
  spreads continuously instead: it is not flagged.

A row either sign marks gets a note (``notes.interference``); ``run`` measures such a round
once more (``run/loop.py``). Samples are the durations of whole samples (a sample's calls
together, ms): a tick delays a sample, not a call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DESCHEDULED_BUSY = 0.5
"""Average threads on a CPU while sampling below which the process was descheduled: the
calling thread alone keeps it near 1 on a quiet machine (measured: 0.9 or more on every row of
a quiet smoke run), so under a half it waited for a core most of the time."""
MIN_PERIOD_MS = 1.0
"""The shortest period taken for a scheduler's: HZ=1000's tick."""
TOLERANCE = 0.08
"""How near (relative to the period) an excess must be to a multiple: the work of a disturbed
sample varies too (measured: 4.04-4.31 ms excesses for a 4 ms tick)."""
MIN_DISTURBED = 3
"""Fewest samples at a multiple for a period to count: two could be coincidence."""
MIN_DELAYED_SHARE = 0.05
"""... and at least this share of all samples: a few outliers are not a pattern."""
MIN_PERIOD_OF_FASTEST = 2.0
"""The period is at least this times the fastest sample: a tick that delays a sample by a
small part of its work is noise the statistics already carry (and slow calls' noise, spread
over milliseconds, can look periodic by chance)."""
MIN_SHARE = 0.75
"""Share of the samples delayed by half a period or more that must sit at a multiple."""
MAX_MULTIPLE = 3
"""A period is looked for among the excesses divided by 1..this."""
MIN_SAMPLES = 6
MAX_CANDIDATES = 24
"""The most populated excesses that periods are tried from (bounds the work on big rows)."""


@dataclass(frozen=True)
class Interference:
    """What a measurement shows of other work taking the CPU."""

    busy: float | None
    """Average threads on a CPU while sampling (CPU time / wall time); None when unknown."""
    period_ms: float | None
    """The period the delayed samples sit at multiples of; None when they don't."""
    delayed: int = 0
    """Samples at a positive multiple of ``period_ms``."""
    samples: int = 0

    @property
    def descheduled(self) -> bool:
        return self.busy is not None and self.busy < DESCHEDULED_BUSY

    def describe(self) -> str:
        """The evidence, in words: ``on a CPU 3% of the sampling time; 9/40 samples delayed
        by multiples of 4.02 ms``."""
        parts = []
        if self.descheduled and self.busy is not None:
            parts.append(f"on a CPU {self.busy:.0%} of the sampling time")
        if self.period_ms is not None:
            parts.append(
                f"{self.delayed}/{self.samples} samples delayed by multiples of "
                f"{self.period_ms:.3g} ms"
            )
        return ", ".join(parts)


def busy_threads(cpu_s: float | None, wall_s: float) -> float | None:
    """The process's CPU time over wall time: how many of its threads ran, on average."""
    if cpu_s is None or not wall_s > 0:
        return None
    return max(cpu_s, 0.0) / wall_s


def tick_period(durations_ms: Sequence[float]) -> tuple[float, int] | None:
    """(period, samples delayed by a multiple of it) when the samples' excesses over the
    fastest sample cluster at multiples of one period of at least ``MIN_PERIOD_MS``.

    A period counts when at least ``MIN_DISTURBED`` samples sit within ``TOLERANCE`` of a
    positive multiple of it, and they are at least ``MIN_SHARE`` of the samples delayed by half
    a period or more (so a continuous spread, clean noise, does not count). Periods are tried
    from the most frequent excesses divided by 1 to ``MAX_MULTIPLE``; the one that explains
    most samples wins (the longer one on a tie).
    """
    d = np.asarray(durations_ms, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < MIN_SAMPLES:
        return None
    fastest = float(d.min())
    shortest = max(MIN_PERIOD_MS, MIN_PERIOD_OF_FASTEST * fastest)
    excess = d - fastest
    long = excess[excess >= shortest]
    if long.size < MIN_DISTURBED:
        return None
    values, counts = np.unique(np.round(long, 2), return_counts=True)
    seeds = values[np.argsort(-counts, kind="stable")[:MAX_CANDIDATES]]
    best: tuple[float, int] | None = None
    for seed in seeds:
        for k in range(1, MAX_MULTIPLE + 1):
            period = float(seed) / k
            if period < shortest:
                break
            delayed = excess[excess >= period / 2]
            off = np.abs(delayed - np.round(delayed / period) * period)
            on = int(np.count_nonzero(off <= TOLERANCE * period))
            if on < max(MIN_DISTURBED, MIN_DELAYED_SHARE * d.size):
                continue
            if on < MIN_SHARE * delayed.size:
                continue
            if best is None or on > best[1] or (on == best[1] and period > best[0]):
                best = (period, on)
    return best


def detect(
    durations_ms: Sequence[float], cpu_s: float | None, wall_s: float
) -> Interference | None:
    """The interference a measurement shows (None when it shows none).

    ``durations_ms``: each sample's whole duration (per-call time x calls per sample);
    ``cpu_s``/``wall_s``: the process's CPU time and the wall time while sampling (CPU time
    unknown: None, only the ticks are looked at).
    """
    busy = busy_threads(cpu_s, wall_s)
    found = tick_period(durations_ms)
    result = Interference(
        busy,
        None if found is None else found[0],
        0 if found is None else found[1],
        len(durations_ms),
    )
    return result if result.descheduled or found is not None else None

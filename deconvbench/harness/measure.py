"""Timing one prepared call: warm-up, calibration, adaptive sampling.

1. **Warm-up** by time: the call runs (each call timed alone) until ``warmup_s`` has passed,
   at least once, so caches, allocator pools and lazy initialisation settle.
2. **Calibration**: the inner repetition count ``number`` grows until one sample of
   ``number`` back-to-back calls lasts at least the clock's ``min_sample_s`` (1 ms on the CPU),
   so the timer's resolution and overhead are negligible. These calls are warm-up too.
3. **Sampling**: samples are taken, garbage collection paused, until the 95% confidence
   interval of the median is within ``precision`` of it (relative), or the budget is spent.
   At least ``min_samples`` are taken unless that would overrun the budget ``OVERRUN`` times.

Each sample is stored as the time of one call (sample time / ``number``), in milliseconds.
The process's page faults while sampling are counted too (``getrusage``): a call that meets
fresh pages pays for zeroing them, and how many it met says which memory state it ran in.
So is its CPU time (the clock's ``cpu``): far below the wall time, the process waited for a
core that other work had (``harness/interference.py``).
"""

from __future__ import annotations

import gc
import math
import resource
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from . import notes, stats
from .clocks import Clock
from .interference import Interference, detect
from .notes import Note

StopReason = Literal["precision", "budget", "max-samples"]
Progress = Callable[[int, float], None]
"""Called between samples with (samples so far, seconds spent sampling)."""

OVERRUN = 5.0
"""Sampling stops at ``OVERRUN x budget`` even short of ``min_samples`` (slow calls)."""
MAX_WARMUP_CALLS = 10_000
MAX_NUMBER = 10_000_000


@dataclass(frozen=True)
class Settings:
    """How hard to try for one measurement (the run options' timing part)."""

    budget_s: float = 1.0
    precision: float = 0.02
    min_samples: int = 5
    warmup_s: float = 0.05
    max_samples: int = 10_000
    confidence: float = stats.CONFIDENCE

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s}")
        if not self.precision > 0:
            raise ValueError(f"precision must be > 0, got {self.precision}")
        if self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ValueError(
                f"need 1 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}"
            )
        if self.warmup_s < 0:
            raise ValueError(f"warmup_s must be >= 0, got {self.warmup_s}")


@dataclass(frozen=True)
class Faults:
    """Page faults of the whole process (every thread) while ``calls`` calls ran: minor ones
    map a fresh page (which the kernel zeroes), major ones wait for a disk read."""

    minor: int
    major: int
    calls: int = 0

    def __add__(self, other: Faults) -> Faults:
        return Faults(
            self.minor + other.minor, self.major + other.major, self.calls + other.calls
        )

    @property
    def per_call(self) -> tuple[float, float] | None:
        """(minor, major) faults per call; None without calls."""
        return (self.minor / self.calls, self.major / self.calls) if self.calls else None


def process_faults() -> tuple[int, int]:
    """The process's (minor, major) page faults so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_majflt


@dataclass(frozen=True)
class Measurement:
    """Raw samples of one measurement; statistics are derived on first use."""

    samples_ms: tuple[float, ...]
    number: int
    stop: StopReason
    warmup_calls: int
    elapsed_s: float
    clock: str
    settings: Settings
    faults: Faults | None = None
    """Page faults while sampling; None when not counted (a device's clock)."""
    cpu_s: float | None = None
    """The process's CPU seconds while sampling (over ``elapsed_s`` of wall time); None when
    not counted (a device's clock: the host waits for the device)."""
    attempts: int = 1
    """2 when the first attempt showed interference and this is the repeat (``run/loop.py``)."""

    @cached_property
    def summary(self) -> stats.Summary:
        return stats.summarize(self.samples_ms, self.settings.confidence)

    @property
    def median_ms(self) -> float:
        return self.summary.median

    @property
    def durations_ms(self) -> tuple[float, ...]:
        """Each sample's whole duration (its ``number`` calls together), in ms."""
        return tuple(s * self.number for s in self.samples_ms)

    def interference(self) -> Interference | None:
        """What the samples and the CPU time show of other work taking the CPU."""
        return detect(self.durations_ms, self.cpu_s, self.elapsed_s)

    @property
    def met_precision(self) -> bool:
        return self.summary.ci_rel_halfwidth <= self.settings.precision

    @property
    def warnings(self) -> list[Note]:
        per_call = None if self.faults is None else self.faults.per_call
        return quality_notes(
            self.summary,
            precision=self.settings.precision,
            min_samples=self.settings.min_samples,
            budget_exhausted=self.stop == "budget",
            faults_per_call=None if per_call is None else per_call[0],
        )


FRESH_PAGES_NOTE_MB = 0.1
"""Fresh pages a call may meet before its row says so: 25 pages of 4 KiB, well above what
the interpreter itself faults in while sampling."""
PAGE_BYTES = resource.getpagesize()


def quality_notes(
    summary: stats.Summary,
    *,
    precision: float,
    min_samples: int,
    budget_exhausted: bool = False,
    spread: float | None = None,
    faults_per_call: float | None = None,
) -> list[Note]:
    """Short, actionable notes on a measurement's samples (empty when they look trustworthy).

    ``spread`` is the samples' relative interquartile range (the summary's own by default;
    for rounds, their typical one, so drift between rounds is not counted twice: it has a
    note of its own). ``faults_per_call``: the minor page faults of one timed call.
    """
    out: list[Note] = []
    if summary.n < min_samples:
        out.append(notes.few_samples(summary.n, min_samples))
    spread = summary.relative_iqr if spread is None else spread
    if math.isfinite(spread) and spread >= stats.DISPERSION_WARNING:
        out.append(notes.unstable(spread))
    hw = summary.ci_rel_halfwidth
    if not math.isfinite(hw):
        out.append(notes.no_ci(summary.n))
    elif hw > precision:
        out.append(notes.wide_ci(hw, precision))
    if budget_exhausted and (summary.n < min_samples or hw > precision):
        out.append(notes.budget_exhausted())
    if faults_per_call is not None and faults_per_call * PAGE_BYTES / 1e6 >= FRESH_PAGES_NOTE_MB:
        out.append(notes.fresh_pages(faults_per_call * PAGE_BYTES / 1e6))
    return out


def _no_sync() -> None:
    return None


def warm_up(
    call: Callable[[], object],
    synchronize: Callable[[], None],
    clock: Clock,
    warmup_s: float,
) -> tuple[int, float]:
    """Run the call until ``warmup_s`` passes (at least once); return (calls, fastest s)."""
    start = clock.wall()
    calls = 0
    fastest = math.inf
    while True:
        fastest = min(fastest, clock.time_calls(call, 1, synchronize))
        calls += 1
        if clock.wall() - start >= warmup_s or calls >= MAX_WARMUP_CALLS:
            return calls, fastest


def calibrate(
    call: Callable[[], object],
    synchronize: Callable[[], None],
    clock: Clock,
    per_call_s: float,
) -> tuple[int, int]:
    """The inner count for one sample to last ``clock.min_sample_s``; returns (number, calls).

    Starts from the warm-up's per-call estimate and checks it, growing the count until a
    sample is long enough (timing single calls overestimates fast ones, and a clock's tick
    can make a fast call read as zero). A call that alone lasts long enough is not re-run.
    """
    target = clock.min_sample_s
    slack = 1.0 - 1e-9  # float round-off must not cost an extra call or an extra round
    if per_call_s >= slack * target:
        return 1, 0  # one call already makes a long enough sample: no need to re-check
    number = math.ceil(slack * target / max(per_call_s, 1e-12))
    number = min(number, MAX_NUMBER)
    calls = 0
    while number < MAX_NUMBER:
        elapsed = clock.time_calls(call, number, synchronize)
        calls += number
        if elapsed >= slack * target:
            break
        grow = 10.0 if elapsed <= 0 else min(10.0, 1.2 * target / elapsed)
        number = min(MAX_NUMBER, max(number + 1, math.ceil(number * grow)))
    return number, calls


def _should_stop(samples_ms: list[float], elapsed: float, s: Settings) -> StopReason | None:
    n = len(samples_ms)
    if n >= s.max_samples:
        return "max-samples"
    if n >= s.min_samples:
        ordered = sorted(samples_ms)
        ci = stats.median_ci(ordered, s.confidence)
        if stats.relative_halfwidth(ci, stats.quantile(ordered, 0.5)) <= s.precision:
            return "precision"
        if elapsed >= s.budget_s:
            return "budget"
    elif elapsed >= s.budget_s * OVERRUN:
        return "budget"
    return None


FLUSHED_BATCH = 8
"""Flushed samples are taken this many at a time (one wait for the device per batch)."""


def _batch_size(samples_ms: list[float], spent: float, s: Settings) -> int:
    """How many flushed samples to queue next: a batch, unless that would overrun the budget."""
    if not samples_ms:
        return 1
    per_sample_s = max(samples_ms[-1] / 1e3, 1e-9)
    left = max(s.budget_s - spent, 0.0)
    return max(1, min(FLUSHED_BATCH, int(left / per_sample_s)))


def sample(
    call: Callable[[], object],
    synchronize: Callable[[], None],
    clock: Clock,
    number: int,
    settings: Settings,
    progress: Progress | None = None,
    flush: Callable[[], None] | None = None,
) -> tuple[list[float], StopReason, float, Faults, float]:
    """Collect samples (ms per call) with GC paused; returns (samples, stop, seconds, the
    process's page faults meanwhile, its CPU seconds meanwhile).

    With ``flush``, each sample is one call preceded by a flush outside the timed region.
    """
    samples: list[float] = []
    was_enabled = gc.isenabled()
    # Young generations only: a full collection costs ~0.1 s once torch is imported, per
    # measurement, and nothing is collected while sampling anyway.
    gc.collect(1)
    gc.disable()
    try:
        start, before, cpu_start = clock.wall(), process_faults(), clock.cpu()
        spent = 0.0
        while True:
            if flush is None:
                times = [clock.time_calls(call, number, synchronize)]
            else:
                count = _batch_size(samples, spent, settings)
                times = clock.time_flushed(call, flush, count, synchronize)
            samples.extend(t / number * 1e3 for t in times)
            spent = clock.wall() - start
            if progress is not None:
                progress(len(samples), spent)
            stop = _should_stop(samples, spent, settings)
            if stop is not None:
                (minor, major), calls = process_faults(), len(samples) * number
                faults = Faults(minor - before[0], major - before[1], calls)
                return samples, stop, spent, faults, clock.cpu() - cpu_start
    finally:
        if was_enabled:
            gc.enable()


def measure(
    call: Callable[[], object],
    clock: Clock,
    settings: Settings | None = None,
    *,
    synchronize: Callable[[], None] = _no_sync,
    progress: Progress | None = None,
    flush: Callable[[], None] | None = None,
    count_faults: bool = True,
) -> Measurement:
    """Warm up, calibrate and sample one prepared call.

    With ``flush`` (an L2 flush between samples) every sample is a single call, since a
    flush can only precede the first call of a sample; otherwise the later calls would run
    with a warm cache. ``count_faults`` off (a device's call, whose host faults say nothing
    of its memory, whose host CPU time says nothing of its work) leaves the measurement's
    faults and CPU time unknown.
    """
    settings = settings or Settings()
    warm_calls, per_call = warm_up(call, synchronize, clock, settings.warmup_s)
    if flush is None:
        number, cal_calls = calibrate(call, synchronize, clock, per_call)
    else:
        number, cal_calls = 1, 0
    samples, stop, spent, faults, cpu_s = sample(
        call, synchronize, clock, number, settings, progress, flush
    )
    return Measurement(
        samples_ms=tuple(samples),
        number=number,
        stop=stop,
        warmup_calls=warm_calls + cal_calls,
        elapsed_s=spent,
        clock=clock.name,
        settings=settings,
        faults=faults if count_faults else None,
        cpu_s=cpu_s if count_faults else None,
    )


FLUSH_MIN_BYTES = 256 * 2**20
"""Smallest L2 flush: triton's ``do_bench`` size, about 4x an H200's 60 MB L2."""


def make_l2_flush(device: str) -> Callable[[], None] | None:
    """A function that evicts the GPU's L2 cache: overwrites max(4x L2, 256 MiB).

    Why that much: on an H200, flushing with 1-2x its L2 left the next small kernel up to
    1.5x slower than with 4x L2 or 256 MiB, and unstable from sample to sample (the
    flush's dirty lines still being written back, we believe); from 4x L2 up the reading
    no longer moves and matches triton's ``do_bench``.

    None on the CPU: caches there are shared with everything else the machine does, so a
    flush would mostly measure the flush, not the layer.
    """
    if not device.startswith("cuda"):
        return None
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2_bytes = int(getattr(props, "L2_cache_size", 0))
    size = max(4 * l2_bytes, FLUSH_MIN_BYTES)
    buffer = torch.empty(size // 4, dtype=torch.int32, device="cuda")

    def flush() -> None:
        buffer.zero_()

    return flush

"""The run's types: what the user asked (:class:`RunOptions`), one unit of work (:class:`Task`),
what the rows of a run share (:class:`RunFacts`) and who is told of progress
(:class:`ProgressSink`)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ..backends.strategy import Strategy
from ..cases.case import Case
from ..errors import InputError
from ..harness.measure import Settings
from ..harness.process import MemoryState, check_memory_state
from ..problem import PASSES, Pass
from ..results.row import ResultRow
from ..results.schema import RowKey
from ..version import VERSION

MAX_ROUNDS = 100


@dataclass(frozen=True)
class RunOptions:
    """What the user asked of a run (the CLI's options, validated)."""

    passes: tuple[Pass, ...] | None = None  # None: each case's own passes
    threads: int | None = None  # None: all cores
    seed: int = 0
    budget_s: float = 1.0  # max time sampling one measurement
    precision: float = 0.02  # target 95% CI half-width of the median, relative
    min_samples: int = 5
    warmup_s: float = 0.05
    verify_only: bool = False
    l2_flush: bool = False  # CUDA
    isolate: bool = False  # tasks in a worker process, replaced after a crash (isolate.py)
    timeout_s: float = 600.0  # with isolate: a worker silent this long is killed
    max_memory_bytes: int | None = None  # host memory a task may need (None: no limit)
    max_gpu_memory_bytes: int | None = None  # GPU memory a CUDA task may need
    rounds: int = 1  # each task measured this many times, in passes over the run (rounds.py)
    memory_state: MemoryState = "warm"  # the allocator's thresholds (harness/process.py)
    allocator: str | None = None  # jemalloc or tcmalloc: preloaded in isolated workers

    def __post_init__(self) -> None:
        if self.passes is not None:
            for p in self.passes:
                if p not in PASSES:
                    raise InputError(f"pass: must be forward or backward, got {p!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise InputError(f"threads: must be >= 1, got {self.threads}")
        if not self.budget_s > 0:
            raise InputError(f"budget: must be > 0 seconds, got {self.budget_s}")
        if not 0 < self.precision < 1:
            raise InputError(
                f"precision: must be between 0 and 1 (0.02 = ±2%), got {self.precision}"
            )
        if self.min_samples < 1:
            raise InputError(f"min_samples: must be >= 1, got {self.min_samples}")
        if self.warmup_s < 0:
            raise InputError(f"warmup: must be >= 0 seconds, got {self.warmup_s}")
        if not self.timeout_s > 0:
            raise InputError(f"timeout: must be > 0 seconds, got {self.timeout_s}")
        for name in ("max_memory_bytes", "max_gpu_memory_bytes"):
            limit = getattr(self, name)
            if limit is not None and (isinstance(limit, bool) or limit < 1):
                raise InputError(f"max_memory: must be a positive number of bytes, got {limit}")
        if isinstance(self.rounds, bool) or not 1 <= self.rounds <= MAX_ROUNDS:
            raise InputError(f"rounds: must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
        check_memory_state(self.memory_state)
        if self.allocator is not None and not self.isolate:
            raise InputError("--allocator: needs --isolate (the allocator loads with a worker)")

    @property
    def effective_rounds(self) -> int:
        """Rounds actually run: one when nothing is timed."""
        return 1 if self.verify_only else self.rounds

    def settings(self) -> Settings:
        """The whole run's timing settings (a round's share: ``rounds.round_settings``)."""
        return Settings(
            budget_s=self.budget_s,
            precision=self.precision,
            min_samples=self.min_samples,
            warmup_s=self.warmup_s,
            max_samples=max(10_000, self.min_samples),
        )


def round_label(round_: int, rounds: int) -> str:
    """``round 2/3`` (empty when there is only one round)."""
    return f"round {round_ + 1}/{rounds}" if rounds > 1 else ""


@dataclass(frozen=True)
class Task:
    """One (case, strategy, pass) to verify and measure, in one round."""

    index: int
    case: Case
    strategy: Strategy
    pass_: Pass
    round: int = 0  # 0-based; only the first round verifies and reads memory
    rounds: int = 1

    @property
    def round_label(self) -> str:
        return round_label(self.round, self.rounds)

    @property
    def key(self) -> RowKey:
        """The identity of the row this task produces."""
        c = self.case
        return RowKey(c.suite, c.name, self.strategy.name, self.pass_, c.problem.dtype)


class ProgressSink(Protocol):
    """Told what the run is doing; called from the main thread only, between samples."""

    def started(self, total: int) -> None: ...
    def task_started(self, task: Task) -> None: ...
    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None: ...
    def task_finished(self, task: Task, row: ResultRow | None) -> None:
        """A task's round is done; ``row`` is its final row, or None when more rounds follow
        (or an earlier round already finished it)."""

    def finished(self) -> None: ...


class NullSink:
    """A sink that shows nothing (library use, tests, workers)."""

    def started(self, total: int) -> None:
        pass

    def task_started(self, task: Task) -> None:
        pass

    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None:
        pass

    def task_finished(self, task: Task, row: ResultRow | None) -> None:
        pass

    def finished(self) -> None:
        pass


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunFacts:
    """What every row of one run shares; ``now`` is the timestamp source (swappable in tests)."""

    run_id: str
    host: str
    tool_version: str
    peaks: Mapping[tuple[str, str], float] = field(default_factory=dict)
    now: Callable[[], str] = utc_now

    @classmethod
    def create(cls, peaks: Mapping[tuple[str, str], float] | None = None) -> RunFacts:
        """A fresh run: random id, this host's name, this package's version."""
        return cls(new_run_id(), socket.gethostname(), VERSION, dict(peaks or {}))


def new_run_id() -> str:
    """12 random hex digits, at least one of them a letter other than ``e``: an id of only
    digits (with at most an ``e``) would be read back as a number by pandas and spreadsheets,
    losing leading zeros or becoming ``1.2e+45``."""
    while True:
        run_id = uuid.uuid4().hex[:12]
        if any(c in "abcdf" for c in run_id):
            return run_id

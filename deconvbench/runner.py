"""The run loop: (case × strategy × pass) tasks → verified, measured result rows.

``plan`` lists the tasks in a fixed order; ``execute`` runs them one by one (in rounds, with
``--rounds``), each through the same small steps (``steps.run_task``: support → memory →
inputs → prepare → verify → measure → row), writes every row as soon as it exists, and never
lets one strategy's failure stop the run: its exception becomes the row's status and message.
"""

from __future__ import annotations

import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from . import __version__
from .backends.base import Strategy
from .case import Case
from .errors import InputError
from .harness.clocks import Clock
from .harness.measure import Settings
from .harness.threads import limit_threads
from .problem import PASSES, Pass
from .results import ResultWriter, Row, row_key
from .rounds import Journal, round_label
from .steps import RunContext, merge_rounds, run_task

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

    @property
    def effective_rounds(self) -> int:
        """Rounds actually run: one when nothing is timed."""
        return 1 if self.verify_only else self.rounds

    def settings(self) -> Settings:
        return Settings(
            budget_s=self.budget_s,
            precision=self.precision,
            min_samples=self.min_samples,
            warmup_s=self.warmup_s,
            max_samples=max(10_000, self.min_samples),
        )


@dataclass(frozen=True)
class Task:
    """One (case, strategy, pass) to verify and measure."""

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
    def key(self) -> tuple[str, ...]:
        """The results-row identity this task produces (``results.row_key``)."""
        c = self.case
        return (c.suite, c.name, self.strategy.name, self.pass_, c.problem.dtype)


class ProgressSink(Protocol):
    """Told what the run is doing; called from the main thread only, between samples."""

    def started(self, total: int) -> None: ...
    def task_started(self, task: Task) -> None: ...
    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None: ...
    def task_finished(self, task: Task, row: Row | None) -> None:
        """A task's round is done; ``row`` is its final row, or None when more rounds follow
        (or an earlier round already finished it)."""

    def finished(self) -> None: ...


class NullSink:
    """A sink that shows nothing (library use, tests)."""

    def started(self, total: int) -> None:
        pass

    def task_started(self, task: Task) -> None:
        pass

    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None:
        pass

    def task_finished(self, task: Task, row: Row | None) -> None:
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
        return cls(uuid.uuid4().hex[:12], socket.gethostname(), __version__, dict(peaks or {}))


def plan(
    cases: list[Case],
    strategies: list[Strategy],
    options: RunOptions,
    skip: AbstractSet[tuple[str, ...]] = frozenset(),
) -> list[Task]:
    """Every (case, strategy, pass) in that nesting order, minus the keys in ``skip``."""
    tasks: list[Task] = []
    for case in cases:
        passes = options.passes if options.passes is not None else case.passes
        for strategy in strategies:
            for pass_ in passes:
                task = Task(len(tasks), case, strategy, pass_)
                if task.key not in skip:
                    tasks.append(task)
    return [Task(i, t.case, t.strategy, t.pass_) for i, t in enumerate(tasks)]


def shard(cases: list[Case], index: int, count: int) -> list[Case]:
    """Part ``index`` (1-based) of ``count`` of the cases: every ``count``-th case from ``index``.

    Whole cases go to one shard, so every strategy of a case is timed on the same machine in
    the same run (within-run ratios stay meaningful); round-robin over the suite order keeps
    the parts balanced when cases grow along a sweep. The same inputs always give the same
    parts, on every machine, and the parts are disjoint and cover every case.
    """
    return [case for i, case in enumerate(cases) if i % count == index - 1]


def execute(
    tasks: list[Task],
    options: RunOptions,
    sink: ProgressSink,
    writer: ResultWriter | None,
    run_facts: RunFacts,
    *,
    clock: Clock | None = None,
    journal: Journal | None = None,
) -> list[Row]:
    """Run every task, in rounds (``options.rounds``); each row is written (and flushed) as
    soon as its last round is done, or at once when it is not ok.

    Round r runs every task still open, in plan order, so a row's rounds are spread over
    the whole run (rounds.py says why). ``journal`` keeps the finished rounds of rows not yet
    written, and gives back those of an interrupted run. ``clock`` replaces the per-device
    clock (tests use a fake one). A KeyboardInterrupt propagates once the rows finished so
    far are written; the round it interrupted has no trace, so ``--resume`` runs it again.
    """
    count = options.effective_rounds
    parts = journal.load() if journal is not None and count > 1 else {}
    units = [
        replace(task, round=r, rounds=count)
        for r in range(count)
        for task in tasks
        if r not in parts.get(task.key, {})
    ]
    rows: list[Row] = []
    final: set[tuple[str, ...]] = set()

    def finish(unit: Task, row: Row) -> None:
        with _no_interrupt():  # a row in the file is a row counted, and shown
            if writer is not None:
                writer.write(row)
            rows.append(row)
            final.add(unit.key)
            sink.task_finished(unit, row)

    with limit_threads(options.threads) as threads, ExitStack() as stack:
        ctx = RunContext(options, run_facts, threads, clock)
        isolated = None
        if options.isolate:
            from .isolate import IsolatedRunner  # imported here: isolate imports runner

            isolated = stack.enter_context(IsolatedRunner(options, run_facts))
        sink.started(len(units))
        try:
            # a resumed run whose journal already holds every round of a task (an earlier
            # run with more rounds): nothing to run, only the row to write
            for task in tasks:
                done = parts.get(task.key, {})
                if count > 1 and all(r in done for r in range(count)):
                    unit = replace(task, round=count - 1, rounds=count)
                    finish(unit, merge_rounds(unit, [done[r] for r in range(count)], ctx))
            for unit in units:
                if unit.key in final:  # not ok in an earlier round: nothing more to time
                    sink.task_finished(unit, None)
                    continue
                sink.task_started(unit)
                row = isolated.run(unit) if isolated is not None else run_task(unit, ctx, sink)
                done = parts.setdefault(unit.key, {})
                if row["status"] == "ok" and unit.round < count - 1:
                    done[unit.round] = row
                    if journal is not None:
                        journal.add(unit.round, row)
                    sink.task_finished(unit, None)
                    continue
                if count > 1 and row["status"] == "ok":
                    row = merge_rounds(unit, [*(done[r] for r in range(unit.round)), row], ctx)
                elif count > 1 and unit.round > 0:
                    row["message"] = f"{unit.round_label}: {row['message']}"
                finish(unit, row)
        finally:
            sink.finished()
    if journal is not None:
        journal.remove()  # reached only when every round finished: nothing is pending
    return rows


@contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration: it arrives just after, at a clean point.

    Only on the main thread (the only one signals are delivered to in Python); elsewhere a
    no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


__all__ = [
    "NullSink",
    "ProgressSink",
    "RunFacts",
    "RunOptions",
    "Task",
    "execute",
    "plan",
    "row_key",
]

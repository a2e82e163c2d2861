"""The run loop: (case × strategy × pass) tasks → verified, measured result rows.

``plan`` lists the tasks in a fixed order; ``execute`` runs them one by one, each through
the same small steps (support → inputs → prepare → verify → memory → measure → row), writes
every row as soon as it exists, and never lets one strategy's failure stop the run: its
exception becomes the row's status and message.
"""

from __future__ import annotations

import math
import socket
import uuid
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from . import __version__
from .backends.base import Prepared, Strategy
from .case import Case
from .data import Inputs, make_inputs
from .errors import InputError, Unavailable, Unsupported
from .harness.clocks import Clock, clock_for
from .harness.measure import Measurement, Settings, make_l2_flush, measure
from .harness.memory import peak_memory
from .harness.peak import peak_fraction
from .harness.threads import ThreadSettings, limit_threads
from .problem import PASSES, Pass, Problem, format_tuple
from .results import COLUMNS, SCHEMA_VERSION, ResultWriter, Row, row_key
from .verify import Verification, compare_results, expected, prepare

MESSAGE_LIMIT = 500
"""Longest message kept in a row (a traceback's last line is enough to act on)."""


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
    isolate: bool = False  # each task in a worker process (see isolate.py)
    timeout_s: float = 600.0  # with isolate: a worker silent this long is killed

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
    def task_finished(self, task: Task, row: Row) -> None: ...
    def finished(self) -> None: ...


class NullSink:
    """A sink that shows nothing (library use, tests)."""

    def started(self, total: int) -> None:
        pass

    def task_started(self, task: Task) -> None:
        pass

    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None:
        pass

    def task_finished(self, task: Task, row: Row) -> None:
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


# --- per-run state -----------------------------------------------------------------------


class _Context:
    """State shared by the tasks of one run: options, facts, threads and caches.

    Tasks arrive grouped by case, so the caches keep only the current problem: every
    strategy and pass of a case shares one set of inputs and one reference result per pass,
    which is computed once (the float64 reference is the slowest thing in a run).
    """

    def __init__(
        self, options: RunOptions, facts: RunFacts, threads: ThreadSettings, clock: Clock | None
    ) -> None:
        self.options = options
        self.settings = options.settings()
        self.facts = facts
        self.threads = threads
        self.clock = clock
        self._problem: Problem | None = None
        self._inputs: Inputs | None = None
        self._expected: dict[Pass, tuple[object, ...]] = {}
        self._flush: dict[str, Callable[[], None] | None] = {}

    def _switch(self, problem: Problem) -> None:
        if problem != self._problem:
            self._problem, self._inputs, self._expected = problem, None, {}

    def inputs(self, problem: Problem) -> Inputs:
        self._switch(problem)
        if self._inputs is None:
            self._inputs = make_inputs(problem, self.options.seed)
        return self._inputs

    def expected(self, problem: Problem, pass_: Pass) -> tuple[object, ...]:
        inputs = self.inputs(problem)
        if pass_ not in self._expected:
            self._expected[pass_] = expected(problem, pass_, inputs)
        return self._expected[pass_]

    def clock_for(self, device: str) -> Clock:
        return self.clock if self.clock is not None else clock_for(device)

    def flush_for(self, device: str) -> Callable[[], None] | None:
        if not self.options.l2_flush:
            return None
        if device not in self._flush:
            self._flush[device] = make_l2_flush(device)
        return self._flush[device]


# --- the steps of one task -----------------------------------------------------------------


def base_row(task: Task, ctx: _Context) -> Row:
    """A row with the task's identity and problem filled in, every result column empty."""
    p, s = task.case.problem, task.strategy
    row: Row = dict.fromkeys(COLUMNS)
    row.update(
        schema_version=SCHEMA_VERSION,
        run_id=ctx.facts.run_id,
        host=ctx.facts.host,
        tool_version=ctx.facts.tool_version,
        suite=task.case.suite,
        case=task.case.name,
        implementation=s.name,
        backend=s.backend,
        algorithm=s.algorithm,
        device=s.device,
        dtype=p.dtype,
        batch=p.batch,
        in_channels=p.in_channels,
        out_channels=p.out_channels,
        groups=p.groups,
        input=format_tuple(p.input),
        kernel=format_tuple(p.kernel),
        stride=format_tuple(p.stride),
        padding=format_tuple(p.padding),
        output_padding=format_tuple(p.output_padding),
        dilation=format_tuple(p.dilation),
        bias=p.bias,
        output=format_tuple(p.output),
        flops=p.flops(task.pass_),
        threads=ctx.threads.count,
        seed=ctx.options.seed,
        message="",
    )
    row["pass"] = task.pass_
    return row


def support(task: Task) -> tuple[str, str] | None:
    """(status, reason) when the strategy cannot run this task, from its declared limits."""
    reason = task.strategy.unavailable_reason()
    if reason is not None:
        return "unavailable", reason
    reason = task.strategy.unsupported_reason(task.case.problem, task.pass_)
    if reason is not None:
        return "unsupported", reason
    return None


def prepare_task(task: Task, ctx: _Context) -> Prepared:
    """The strategy's prepared call, on private copies of the shared inputs.

    Copies, because a strategy that wrote into its inputs would otherwise corrupt them for
    every strategy after it (and the blame would land on those).
    """
    shared = ctx.inputs(task.case.problem)
    own = Inputs(
        shared.x.copy(),
        shared.weight.copy(),
        None if shared.bias is None else shared.bias.copy(),
        shared.grad_output.copy(),
    )
    return prepare(task.strategy, task.case.problem, task.pass_, own)


def verify_task(task: Task, prepared: Prepared, ctx: _Context) -> Verification:
    """One call checked against the (cached) float64 reference; also the first warm-up."""
    result = prepared.call()
    prepared.synchronize()
    got = prepared.fetch(result)
    want = ctx.expected(task.case.problem, task.pass_)
    problem = task.case.problem
    return compare_results(problem, task.pass_, got, want, ctx.inputs(problem))  # type: ignore[arg-type]


def measure_task(task: Task, prepared: Prepared, ctx: _Context, sink: ProgressSink) -> Measurement:
    device = task.strategy.device

    def progress(samples: int, elapsed_s: float) -> None:
        sink.task_progress(task, samples, elapsed_s)

    return measure(
        prepared.call,
        ctx.clock_for(device),
        ctx.settings,
        synchronize=prepared.synchronize,
        progress=progress,
        flush=ctx.flush_for(device),
    )


def timing_columns(task: Task, m: Measurement, ctx: _Context) -> Row:
    """The row's statistics, rates and sampling details from one measurement."""
    s = m.summary
    flops = task.case.problem.flops(task.pass_)
    gflops = flops / (s.median * 1e-3) / 1e9 if s.median > 0 else None
    peak = ctx.facts.peaks.get((task.strategy.device, task.case.problem.dtype))
    return {
        "samples": s.n,
        "median_ms": s.median,
        "mean_ms": s.mean,
        "stddev_ms": s.stddev,
        "min_ms": s.min,
        "max_ms": s.max,
        "q1_ms": s.q1,
        "q3_ms": s.q3,
        "ci_low_ms": s.ci_low,
        "ci_high_ms": s.ci_high,
        "gflops": gflops,
        "peak_fraction": peak_fraction(gflops, peak),
        "samples_ms": m.samples_ms,
        "ci_rel_halfwidth": s.ci_rel_halfwidth if math.isfinite(s.ci_rel_halfwidth) else None,
        "inner_loops": m.number,
        "stop_reason": m.stop,
        "clock": m.clock,
    }


def failure(exc: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised by a strategy."""
    text = " ".join(str(exc).split())
    if isinstance(exc, Unsupported):
        return "unsupported", text
    if isinstance(exc, Unavailable):
        return "unavailable", text
    status = (
        "oom" if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ else "error"
    )
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return status, message


def run_task(task: Task, ctx: _Context, sink: ProgressSink) -> Row:
    """Every step of one task; the row says how far it got and why it stopped."""
    row = base_row(task, ctx)
    notes: list[str] = []
    try:
        refused = support(task)
        if refused is not None:
            row["status"], row["message"] = refused
            return row
        prepared = prepare_task(task, ctx)
        checked = verify_task(task, prepared, ctx)
        row["max_abs_err"], row["max_rel_err"] = checked.max_abs_err, checked.max_rel_err
        if not checked.ok:
            row["status"], row["message"] = "mismatch", checked.message
            return row
        if not ctx.options.verify_only:
            memory = peak_memory(prepared.call, prepared.synchronize, task.strategy.device)
            row["peak_mem_mb"] = memory.mb
            if memory.mb is None:
                notes.append(f"peak memory unknown: {memory.reason}")
            measurement = measure_task(task, prepared, ctx, sink)
            row.update(timing_columns(task, measurement, ctx))
            notes = measurement.warnings + notes
        row["status"], row["message"] = "ok", "; ".join(notes)
    except Exception as exc:  # the strategy's fault: recorded, and the run goes on
        row["status"], row["message"] = failure(exc)
    finally:
        row["timestamp"] = ctx.facts.now()
    return row


def execute(
    tasks: list[Task],
    options: RunOptions,
    sink: ProgressSink,
    writer: ResultWriter | None,
    run_facts: RunFacts,
    *,
    clock: Clock | None = None,
) -> list[Row]:
    """Run every task in order; each row is written (and flushed) as soon as it exists.

    ``clock`` replaces the per-device clock (tests use a fake one). A KeyboardInterrupt
    propagates once the rows finished so far are written; the task it interrupted has no
    row, so ``--resume`` runs it again.
    """
    rows: list[Row] = []
    with limit_threads(options.threads) as threads:
        ctx = _Context(options, run_facts, threads, clock)
        sink.started(len(tasks))
        try:
            for task in tasks:
                sink.task_started(task)
                if options.isolate:
                    from .isolate import run_isolated  # imported here: isolate imports runner

                    row = run_isolated(task, options, run_facts, options.timeout_s)
                else:
                    row = run_task(task, ctx, sink)
                if writer is not None:
                    writer.write(row)
                rows.append(row)
                sink.task_finished(task, row)
        finally:
            sink.finished()
    return rows


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

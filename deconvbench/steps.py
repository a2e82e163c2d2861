"""The steps of one task: support → memory → inputs → prepare → verify → measure → row.

``run_task`` runs them for one (case, strategy, pass, round) and never raises for a
strategy's fault: the exception becomes the row's status and message. ``RunContext`` holds
what the tasks of one run share (options, facts, threads, the current case's inputs and
reference). ``runner.execute`` drives these; ``isolate`` runs ``run_task`` in a worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from . import footprint
from .backends.base import Prepared
from .data import Inputs, make_inputs
from .errors import Unavailable, Unsupported
from .harness.clocks import Clock, clock_for
from .harness.measure import Measurement, make_l2_flush, measure
from .harness.memory import peak_memory
from .harness.peak import peak_fraction
from .harness.threads import ThreadSettings
from .problem import Pass, Problem, format_tuple
from .results import COLUMNS, SCHEMA_VERSION, Row
from .rounds import (
    disagreement,
    measurement_of,
    merged_notes,
    pooled_measurement,
    round_settings,
    stop_reasons,
)
from .verify import Verification, compare_results, expected, prepare

if TYPE_CHECKING:  # the runner imports this module: its types are for annotations only
    from .runner import ProgressSink, RunFacts, RunOptions, Task

MESSAGE_LIMIT = 500
"""Longest message kept in a row (a traceback's last line is enough to act on)."""


# --- per-run state -----------------------------------------------------------------------


class RunContext:
    """State shared by the tasks of one run: options, facts, threads and caches.

    Tasks arrive grouped by case, so the caches keep only the current problem: every
    strategy and pass of a case shares one set of inputs and one reference result per pass,
    which is computed once (the float64 reference is the slowest thing in a run).
    """

    def __init__(
        self, options: RunOptions, facts: RunFacts, threads: ThreadSettings, clock: Clock | None
    ) -> None:
        self.options = options
        self.settings = round_settings(options.settings(), options.effective_rounds)
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


def base_row(task: Task, ctx: RunContext) -> Row:
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


def memory_guard(task: Task, ctx: RunContext) -> tuple[str, str] | None:
    """("skipped", the estimate and the limit) when the task would need more memory than
    ``--max-memory`` allows; decided from the problem's shapes, before anything is made."""
    options = ctx.options
    if options.max_memory_bytes is None and options.max_gpu_memory_bytes is None:
        return None
    passes = options.passes if options.passes is not None else task.case.passes
    need = footprint.estimate(task.strategy, task.case.problem, task.pass_, passes)
    reason = footprint.over_limit(need, options.max_memory_bytes, options.max_gpu_memory_bytes)
    return None if reason is None else ("skipped", reason)


def prepare_task(task: Task, ctx: RunContext) -> Prepared:
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


def verify_task(task: Task, prepared: Prepared, ctx: RunContext) -> Verification:
    """One call checked against the (cached) float64 reference; also the first warm-up."""
    result = prepared.call()
    prepared.synchronize()
    got = prepared.fetch(result)
    want = ctx.expected(task.case.problem, task.pass_)
    problem = task.case.problem
    return compare_results(problem, task.pass_, got, want, ctx.inputs(problem))  # type: ignore[arg-type]


def measure_task(
    task: Task, prepared: Prepared, ctx: RunContext, sink: ProgressSink
) -> Measurement:
    device = task.strategy.device

    def progress(samples: int, elapsed_s: float) -> None:
        sink.task_progress(task, samples, elapsed_s)

    settings = ctx.settings
    if task.round > 0 and not ctx.options.isolate:
        # the process is warm (JIT, libraries, lazy set-up): only the new buffers need it;
        # an isolated round runs in a fresh worker, which needs the full warm-up
        settings = replace(settings, warmup_s=settings.warmup_s / task.rounds)
    return measure(
        prepared.call,
        ctx.clock_for(device),
        settings,
        synchronize=prepared.synchronize,
        progress=progress,
        flush=ctx.flush_for(device),
    )


def timing_columns(task: Task, m: Measurement, ctx: RunContext) -> Row:
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
        "rounds": 1,
        "round_samples": str(s.n),
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


def run_task(task: Task, ctx: RunContext, sink: ProgressSink) -> Row:
    """Every step of one task; the row says how far it got and why it stopped."""
    row = base_row(task, ctx)
    notes: list[str] = []
    try:
        refused = support(task) or memory_guard(task, ctx)
        if refused is not None:
            row["status"], row["message"] = refused
            return row
        prepared = prepare_task(task, ctx)
        first = task.round == 0  # later rounds only time: the first checked and read memory
        if first:
            checked = verify_task(task, prepared, ctx)
            row["max_abs_err"], row["max_rel_err"] = checked.max_abs_err, checked.max_rel_err
            if not checked.ok:
                row["status"], row["message"] = "mismatch", checked.message
                return row
        if not ctx.options.verify_only:
            if first:
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


def merge_rounds(task: Task, parts: list[Row], ctx: RunContext) -> Row:
    """One row from the ok rows of every round of a task, in round order.

    Statistics are over the pooled samples, judged against the whole run's settings; the
    first round's own notes (peak memory) are kept, its sampling warnings replaced by the
    pooled ones, and a note is added when the rounds' medians disagree (it then replaces the
    pooled "unstable" warning, which the disagreement explains).
    """
    first = parts[0]
    pooled, sizes = pooled_measurement(parts, ctx.options.settings())
    own = [
        n for n in merged_notes([first]) if n not in measurement_of(first, ctx.settings).warnings
    ]
    drift = disagreement(parts)
    # rounds that disagree make the pooled samples dispersed: say why once, not twice
    warnings = [w for w in pooled.warnings if not (drift and w.startswith("unstable:"))]
    row = dict(first)
    row.update(timing_columns(task, pooled, ctx))
    row.update(
        stop_reason=stop_reasons(parts),
        rounds=len(parts),
        round_samples=";".join(str(n) for n in sizes),
        timestamp=ctx.facts.now(),
        message="; ".join([*warnings, *([drift] if drift else []), *own]),
    )
    return row

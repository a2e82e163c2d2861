"""A task's outcome as its results row: identity, problem, status, timing and notes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..harness.measure import Measurement, quality_notes
from ..harness.notes import Note
from ..harness.peak import peak_fraction
from ..results.row import ResultRow, Timing
from .context import RunContext
from .outcome import Outcome
from .rounds import cpu_use, disagreement, interference_note, pooled, stop_reasons
from .types import Task


def timing(task: Task, measurements: Sequence[Measurement], ctx: RunContext) -> Timing:
    """The row's statistics, rates and sampling details: every round's samples pooled."""
    m = pooled(measurements, ctx.run_settings)
    s = m.summary
    flops = task.case.problem.flops(task.pass_)
    gflops = flops / (s.median * 1e-3) / 1e9 if s.median > 0 else None
    reaching = task.case.problem.flops_reaching(task.pass_)
    reaching_gflops = reaching / (s.median * 1e-3) / 1e9 if s.median > 0 else None
    peak = ctx.facts.peaks.get((task.strategy.device, task.case.problem.dtype))
    cpu_ms_per_call, cpu_time_ratio = cpu_use(measurements, ctx.threads.count)
    return Timing(
        samples_ms=m.samples_ms,
        median_ms=s.median,
        mean_ms=s.mean,
        stddev_ms=s.stddev,
        min_ms=s.min,
        max_ms=s.max,
        q1_ms=s.q1,
        q3_ms=s.q3,
        ci_low_ms=s.ci_low,
        ci_high_ms=s.ci_high,
        ci_rel_halfwidth=s.ci_rel_halfwidth if math.isfinite(s.ci_rel_halfwidth) else None,
        gflops=gflops,
        peak_fraction=peak_fraction(reaching_gflops, peak),
        peak_fraction_all_products=peak_fraction(gflops, peak),
        inner_loops=m.number,
        stop_reason=stop_reasons(measurements),
        clock=m.clock,
        round_samples=tuple(len(r.samples_ms) for r in measurements),
        faults_per_call=None if m.faults is None else m.faults.per_call,
        cpu_ms_per_call=cpu_ms_per_call,
        cpu_time_ratio=cpu_time_ratio,
    )


def timing_notes(measurements: Sequence[Measurement], ctx: RunContext) -> list[Note]:
    """What the pooled samples say about themselves, and whether the rounds disagree.

    A measurement is unstable when its samples spread widely *within* a round (the typical
    round's relative interquartile range); drift *between* rounds has its own note, so that
    one cause is never reported as the other; so has other work taking the CPU while a round
    sampled (``harness/interference.py``).
    """
    m = pooled(measurements, ctx.run_settings)
    per_call = None if m.faults is None else m.faults.per_call
    said = quality_notes(
        m.summary,
        precision=m.settings.precision,
        min_samples=m.settings.min_samples,
        budget_exhausted=m.stop == "budget",
        spread=statistics.median(r.summary.relative_iqr for r in measurements),
        faults_per_call=None if per_call is None else per_call[0],
    )
    extra = [interference_note(measurements), disagreement(measurements)]
    return [*said, *(n for n in extra if n is not None)]


def build_row(task: Task, outcome: Outcome, ctx: RunContext) -> ResultRow:
    """The results row of a task's final outcome, stamped now."""
    s = task.strategy
    measured = outcome.ok and bool(outcome.measurements)
    notes = [*timing_notes(outcome.measurements, ctx), *outcome.notes] if measured else []
    return ResultRow(
        run_id=ctx.facts.run_id,
        timestamp=ctx.facts.now(),
        host=ctx.facts.host,
        tool_version=ctx.facts.tool_version,
        suite=task.case.suite,
        case=task.case.name,
        implementation=s.name,
        backend=s.backend,
        algorithm=s.algorithm,
        device=s.device,
        pass_=task.pass_,
        problem=task.case.problem,
        status=outcome.status,
        threads=ctx.threads.count,
        seed=ctx.options.seed,
        reason=outcome.reason,
        notes=tuple(notes) if measured else outcome.notes,
        max_abs_err=outcome.max_abs_err,
        max_rel_err=outcome.max_rel_err,
        peak_mem_mb=outcome.peak_mem_mb,
        timing=timing(task, outcome.measurements, ctx) if measured else None,
        count=task.case.count,
        traceback=outcome.traceback,
    )

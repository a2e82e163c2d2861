"""The steps of one task: support → memory → inputs → prepare → verify → measure.

``run_task`` runs them for one (case, strategy, pass, round) and never raises for a
strategy's fault: the exception becomes the outcome's status and reason. ``run.loop``
drives these; ``run.isolate`` runs ``run_task`` in a worker process.
"""

from __future__ import annotations

import traceback
from dataclasses import replace

from ..backends.strategy import Prepared
from ..errors import Unavailable, Unsupported
from ..harness import notes
from ..harness.inputs import Inputs
from ..harness.measure import Measurement, measure
from ..harness.memory import peak_memory
from ..harness.process import settle_thread_pools
from ..harness.verify import (
    Verification,
    check_inputs_unchanged,
    compare_results,
    copy_inputs,
    prepare,
)
from . import footprint
from .context import RunContext
from .outcome import Outcome
from .types import ProgressSink, Task

MESSAGE_LIMIT = 500
"""Longest reason kept in a row (a traceback's last line is enough to act on)."""


def support(task: Task) -> Outcome | None:
    """An ``unavailable`` or ``unsupported`` outcome when the strategy cannot run this task,
    from its declared limits."""
    reason = task.strategy.unavailable_reason()
    if reason is not None:
        return Outcome("unavailable", reason)
    reason = task.strategy.unsupported_reason(task.case.problem, task.pass_)
    if reason is not None:
        return Outcome("unsupported", reason)
    return None


def memory_guard(task: Task, ctx: RunContext) -> Outcome | None:
    """A ``skipped`` outcome (the estimate and the limit) when the task would need more memory
    than ``--max-memory`` allows; decided from the problem's shapes, before anything is made."""
    options = ctx.options
    if options.max_memory_bytes is None and options.max_gpu_memory_bytes is None:
        return None
    passes = options.passes if options.passes is not None else task.case.passes
    need = footprint.estimate(task.strategy, task.case.problem, task.pass_, passes)
    reason = footprint.over_limit(need, options.max_memory_bytes, options.max_gpu_memory_bytes)
    return None if reason is None else Outcome("skipped", reason)


def prepare_task(task: Task, ctx: RunContext) -> tuple[Prepared, Inputs]:
    """The strategy's prepared call, on private copies of the shared inputs (returned too).

    Copies, because a strategy that wrote into its inputs would otherwise corrupt them for
    every strategy after it (and the blame would land on those); the shared ones stay the
    saved originals that :func:`inputs_unchanged` compares the copies with.
    """
    own = copy_inputs(ctx.inputs(task.case.problem))
    return prepare(task.strategy, task.case.problem, task.pass_, own), own


def inputs_unchanged(task: Task, own: Inputs, ctx: RunContext, when: str) -> None:
    """Raise ``InputsModified`` (an ``error`` row) when the strategy wrote into the inputs
    it was handed: its result was checked, or its calls timed, on other values. A strategy
    may write into them through routes a read-only flag would not stop (``torch.from_numpy``,
    ctypes, compiled code), so the arrays are compared with the shared originals instead:
    one pass over the inputs, after the check and after the timing."""
    check_inputs_unchanged(task.strategy, task.pass_, own, ctx.inputs(task.case.problem), when)


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

    settle_thread_pools()  # no other strategy's spinning workers share the cores
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
        count_faults=device == "cpu",
    )


def failure(exc: BaseException) -> Outcome:
    """The outcome of an exception raised by a strategy, its traceback kept for ``--debug``
    (the row's message is one line)."""
    text = " ".join(str(exc).split())
    trace = "".join(traceback.format_exception(exc))
    if isinstance(exc, Unsupported):
        return Outcome("unsupported", text, traceback=trace)
    if isinstance(exc, Unavailable):
        return Outcome("unavailable", text, traceback=trace)
    status = (
        "oom" if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__ else "error"
    )
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return Outcome(status, message, traceback=trace)


def run_task(task: Task, ctx: RunContext, sink: ProgressSink) -> Outcome:
    """Every step of one task; the outcome says how far it got and why it stopped (keeping
    what the steps before learnt: the reference check's errors, the peak memory)."""
    checked: Verification | None = None
    memory_mb: float | None = None
    try:
        refused = support(task) or memory_guard(task, ctx)
        if refused is not None:
            return refused
        prepared, own_inputs = prepare_task(task, ctx)
        first = task.round == 0  # later rounds only time: the first checked and read memory
        if first:
            checked = verify_task(task, prepared, ctx)
            inputs_unchanged(task, own_inputs, ctx, "during verification")
            if not checked.ok:
                return _with_errors(Outcome("mismatch", checked.message), checked)
        if ctx.options.verify_only:
            return _with_errors(Outcome("ok"), checked)
        own: tuple[notes.Note, ...] = ()
        if first:
            memory = peak_memory(prepared.call, prepared.synchronize, task.strategy.device)
            memory_mb = memory.mb
            if memory.mb is None:
                own = (notes.memory_unknown(memory.reason),)
            if prepared.facts:
                own = (*own, notes.engine(prepared.facts))
        measurement = measure_task(task, prepared, ctx, sink)
        inputs_unchanged(task, own_inputs, ctx, "while it was timed")
        measured = Outcome("ok", peak_mem_mb=memory_mb, notes=own, measurements=(measurement,))
        return _with_errors(measured, checked)
    except Exception as exc:  # the strategy's fault: recorded, and the run goes on
        return _with_errors(replace(failure(exc), peak_mem_mb=memory_mb), checked)


def _with_errors(outcome: Outcome, checked: Verification | None) -> Outcome:
    """The outcome with the reference check's largest errors (when this round checked)."""
    if checked is None:
        return outcome
    return replace(outcome, max_abs_err=checked.max_abs_err, max_rel_err=checked.max_rel_err)

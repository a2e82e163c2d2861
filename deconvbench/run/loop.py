"""The run loop: (case × strategy × pass) tasks → verified, measured result rows.

``plan`` lists the tasks in a fixed order; ``execute`` runs them one by one (in rounds, with
``--rounds``), each through the same small steps (``steps.run_task``), turns each final
outcome into its row (``rows.build_row``), writes every row as soon as it exists, and never
lets one strategy's failure stop the run: its exception becomes the row's status and reason.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import ExitStack, contextmanager
from dataclasses import replace

from ..backends.strategy import Strategy
from ..cases.case import Case
from ..harness.clocks import Clock
from ..harness.process import set_memory_state
from ..harness.threads import limit_threads
from ..results.journal import Journal
from ..results.row import ResultRow
from ..results.schema import RowKey
from ..results.writer import ResultWriter
from .context import RunContext
from .isolate import IsolatedRunner
from .outcome import Outcome
from .rounds import disturbed, load_rounds, merge_rounds, repeated, save_round
from .rows import build_row
from .steps import run_task
from .types import ProgressSink, RunFacts, RunOptions, Task


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
) -> list[ResultRow]:
    """Run every task, in rounds (``options.rounds``); each row is written (and flushed) as
    soon as its last round is done, or at once when it is not ok.

    Round r runs every task still open, in plan order, so a row's rounds are spread over
    the whole run (rounds.py says why). ``journal`` keeps the finished rounds of rows not yet
    written, and gives back those of an interrupted run. ``clock`` replaces the per-device
    clock (tests use a fake one). A KeyboardInterrupt propagates once the rows finished so
    far are written; the round it interrupted has no trace, so ``--resume`` runs it again.
    """
    count = options.effective_rounds
    rows: list[ResultRow] = []
    final: set[RowKey] = set()
    set_memory_state(options.memory_state)
    with limit_threads(options.threads) as threads, ExitStack() as stack:
        ctx = RunContext(options, run_facts, threads, clock)
        parts = load_rounds(journal, ctx.settings) if journal is not None and count > 1 else {}
        units = [
            replace(task, round=r, rounds=count)
            for r in range(count)
            for task in tasks
            if r not in parts.get(task.key, {})
        ]

        def finish(unit: Task, outcome: Outcome) -> None:
            row = build_row(unit, outcome, ctx)
            with _no_interrupt():  # a row in the file is a row counted, and shown
                if writer is not None:
                    writer.write(row)
                rows.append(row)
                final.add(unit.key)
                sink.task_finished(unit, row)

        isolated = None
        if options.isolate:
            isolated = stack.enter_context(IsolatedRunner(options, run_facts))

        def attempt(unit: Task) -> Outcome:
            return isolated.run(unit) if isolated is not None else run_task(unit, ctx, sink)

        sink.started(len(units))
        try:
            # a resumed run whose journal already holds every round of a task (an earlier
            # run with more rounds): nothing to run, only the row to write
            for task in tasks:
                done = parts.get(task.key, {})
                if count > 1 and all(r in done for r in range(count)):
                    unit = replace(task, round=count - 1, rounds=count)
                    finish(unit, merge_rounds([done[r] for r in range(count)]))
            for unit in units:
                if unit.key in final:  # not ok in an earlier round: nothing more to time
                    sink.task_finished(unit, None)
                    continue
                sink.task_started(unit)
                outcome = attempt(unit)
                if disturbed(outcome):  # other work took the CPU: one more attempt, no more
                    outcome = repeated(outcome, attempt(unit))
                done = parts.setdefault(unit.key, {})
                if outcome.ok and unit.round < count - 1:
                    done[unit.round] = outcome
                    if journal is not None:
                        save_round(journal, unit.key, unit.round, outcome)
                    sink.task_finished(unit, None)
                    continue
                if count > 1 and outcome.ok:
                    outcome = merge_rounds([*(done[r] for r in range(unit.round)), outcome])
                elif count > 1 and unit.round > 0:
                    outcome = replace(outcome, reason=f"{unit.round_label}: {outcome.reason}")
                finish(unit, outcome)
        finally:
            sink.finished()
    if journal is not None:
        journal.remove()  # reached only when every round finished: nothing is pending
    return rows


@contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration: it arrives just after, at a clean point.

    A handler that only notes the signal replaces Python's for the duration; a signal that
    came is raised again once the previous handler is back. Masking the signal would not do:
    the kernel hands a process signal to any thread that does not block it (a BLAS or
    OpenMP worker), and Python then raises it in the main thread all the same. Only on the
    main thread (the only one Python runs handlers in); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is None  # a handler set outside Python: left alone
    ):
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    except BaseException:
        signal.signal(signal.SIGINT, previous)
        raise  # the run stops on this error already; it is the one to report
    signal.signal(signal.SIGINT, previous)
    if received:
        signal.raise_signal(signal.SIGINT)

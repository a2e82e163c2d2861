"""``deconvbench run`` and ``deconvbench verify``: cases × strategies, verified (and timed)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import typer

from .. import env
from ..analysis.model_totals import model_totals
from ..backends.strategy import Strategy
from ..cases.case import Case
from ..cases.gather import cases_for, measure_requests
from ..cases.measure_table import MeasureRequest
from ..env import load
from ..errors import InputError
from ..harness.peak import Calibration, calibrate_peaks_with_reasons, theoretical_peaks
from ..harness.process import allocator_library, check_memory_state, set_memory_state
from ..harness.threads import limit_threads
from ..render import Screen
from ..render import table as tables
from ..render.model_table import model_total_table
from ..render.plain import PlainProgress
from ..render.progress import LiveProgress
from ..results.journal import Journal
from ..results.schema import FAILED_STATUSES, RowLike
from ..results.sidecar import read_sidecar, write_sidecar
from ..results.writer import ResultWriter
from ..run import footprint, loop, measure_settings
from ..run.types import RunFacts, RunOptions, Task, utc_now
from .app import command, exit_code, show_tracebacks
from .options import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_ROUNDS,
    AllocatorOpt,
    BaselineImplOpt,
    BudgetOpt,
    CaseOpt,
    DtypeOpt,
    ImplOpt,
    IsolateOpt,
    L2FlushOpt,
    MaxMemoryOpt,
    MemoryStateOpt,
    MinSamplesOpt,
    OutputOpt,
    OverwriteOpt,
    PassOpt,
    PrecisionOpt,
    ResumeOpt,
    RoundsOpt,
    SeedOpt,
    ShardOpt,
    SuiteOpt,
    ThreadsOpt,
    TimeoutOpt,
    VerifyOutputOpt,
    WarmupOpt,
    default_output,
    note_oversubscription,
    parse_dtype,
    parse_passes,
    parse_precision,
    parse_shard,
    plural,
    select_strategies,
    with_memory_limits,
)


def _execute(
    tasks: list[Task],
    options: RunOptions,
    writer: ResultWriter | None,
    facts: RunFacts,
    screen: Screen,
    journal: Journal | None = None,
) -> tuple[Sequence[RowLike], bool]:
    """Run the tasks with a progress display; (rows, interrupted)."""
    display = (
        PlainProgress(screen.err.file, tasks) if screen.plain else LiveProgress(screen.err, tasks)
    )
    try:
        return loop.execute(tasks, options, display, writer, facts, journal=journal), False
    except KeyboardInterrupt:
        return display.rows, True  # the display saw every finished row
    finally:
        display.close()


def _cases_and_strategies(
    suites: list[str] | None,
    case_specs: list[str] | None,
    dtype: str | None,
    impls: list[str] | None,
    baseline: str | None,
    screen: Screen,
) -> tuple[list[Case], list[Strategy]]:
    """The cases and strategies a command names; bad input raises before anything runs."""
    dtype = parse_dtype(dtype)
    if not suites and not case_specs:
        raise InputError(
            "nothing to run: give --suite NAME (e.g. --suite smoke; `deconvbench suites` "
            "lists them) or --case SPEC"
        )
    cases = cases_for(suites or [], case_specs or [], dtype)
    return cases, select_strategies(impls or [], baseline, screen.note)


def _open_writer(path: Path, mode: str) -> ResultWriter:
    try:
        return ResultWriter(path, mode)  # type: ignore[arg-type]  # mode is one of the three
    except OSError as e:
        raise InputError(f"--output {path}: {e.strerror or e}") from None


def _earlier_facts(path: Path) -> dict[str, object] | None:
    """The sidecar of the run being resumed (kept inside the new one), if readable."""
    try:
        return read_sidecar(path)
    except InputError:
        return None


def _calibrate(
    strategies: Sequence[Strategy],
    tasks: Sequence[Task],
    threads: int | None,
    screen: Screen,
) -> tuple[dict[tuple[str, str], float], dict[str, object]]:
    """The peak rate of every (device, dtype) the run uses, theoretical or measured
    (``harness.peak.Calibration``); (the denominators of peak_fraction, sidecar facts).

    No spinner while it runs: rich animates one from a thread, which would slow the very
    matrix products being timed.
    """
    devices = {s.device for s in strategies}
    dtypes = {t.case.problem.dtype for t in tasks}
    screen.note(
        f"calibrating the peak GEMM rate ({', '.join(sorted(devices))}: "
        f"{', '.join(sorted(dtypes))})",
        "dim",
    )
    measured, failures = calibrate_peaks_with_reasons(devices, dtypes, threads)
    calibration = Calibration(measured, theoretical_peaks(devices, dtypes, threads), failures)
    return calibration.peaks, calibration.as_facts()


def _memory_facts(options: RunOptions) -> dict[str, object]:
    """Set the memory state for this process and say what the measurements run in (isolated
    workers set the same, under ``--allocator``'s library if one is asked for: bad input
    now when it is not installed)."""
    facts = set_memory_state(options.memory_state).facts()
    if options.allocator is not None:
        facts.update(
            allocator=options.allocator,
            preloaded=allocator_library(options.allocator),
            applied={},
            note=f"{options.allocator} preloaded in the workers: its own settings apply",
        )
    return facts


def _show_results(screen: Screen, rows: Sequence[RowLike], baseline: str | None) -> None:
    groups = tables.group_by_case(rows)
    for group in groups:
        screen.show(tables.case_table(group, baseline, screen.glyphs))
    if len(groups) > 1:
        screen.show(tables.summary_table(rows, baseline, screen.glyphs))
    for totals in model_totals(rows, baseline):
        screen.show(model_total_table(totals, screen.glyphs))


@command("run")
def run(
    suites: SuiteOpt = None,
    cases: CaseOpt = None,
    impls: ImplOpt = None,
    pass_: PassOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    budget: BudgetOpt = None,
    precision: PrecisionOpt = None,
    min_samples: MinSamplesOpt = None,
    warmup: WarmupOpt = None,
    rounds: RoundsOpt = DEFAULT_ROUNDS,
    seed: SeedOpt = 0,
    baseline_impl: BaselineImplOpt = None,
    l2_flush: L2FlushOpt = False,
    shard: ShardOpt = None,
    isolate: IsolateOpt = False,
    timeout: TimeoutOpt = 600.0,
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    memory_state: MemoryStateOpt = "warm",
    allocator: AllocatorOpt = None,
) -> None:
    """Verify, then time, every strategy on every case; write the CSV and its sidecar.

    Exit codes: 0 ok, 1 a mismatch/error/crash/timeout/oom row, 2 bad input, 130 Ctrl-C.
    """
    if overwrite and resume:
        raise InputError("--overwrite and --resume exclude each other: choose one")
    given = MeasureRequest(
        precision=None if precision is None else parse_precision(precision),
        budget_s=budget,
        warmup_s=warmup,
        min_samples=min_samples,
    )
    timing = measure_settings.resolve(given, measure_requests(suites or [], cases or []))
    options = RunOptions(
        passes=parse_passes(pass_),
        threads=threads,
        seed=seed,
        l2_flush=l2_flush,
        isolate=isolate or allocator is not None,  # the allocator loads with a worker
        rounds=rounds,
        timeout_s=timeout,
        memory_state=check_memory_state(memory_state),
        allocator=allocator,
    )
    options = timing.apply(options)
    memory = _memory_facts(options)  # before the peak calibration, which allocates too
    screen = Screen.for_streams()
    note_oversubscription(threads, screen.note)
    if chosen := timing.from_suites():
        screen.note(f"timing as the suites ask: {'; '.join(chosen)}; options override", "dim")
    part = parse_shard(shard)
    case_list, strategies = _cases_and_strategies(
        suites, cases, dtype, impls, baseline_impl, screen
    )
    footprint.refuse_impossible(case_list, options.passes)  # before any file or array exists
    options = with_memory_limits(options, max_memory, strategies)
    if part is not None:
        case_list = loop.shard(case_list, *part)
    path = output or default_output()
    mode = "overwrite" if overwrite else "resume" if resume else "new"
    earlier = _earlier_facts(path) if resume else None
    with _open_writer(path, mode) as writer:
        tasks = loop.plan(case_list, strategies, options, writer.done_keys())
        if not tasks:
            screen.note(f"nothing left to run: every row is already in {path}")
            return
        n_cases = len({(c.suite, c.name) for c in case_list})
        screen.note(
            f"{plural(len(tasks), 'measurement')}: {plural(n_cases, 'case')} × "
            f"{plural(len(strategies), 'strategy', 'strategies')} → {path}"
        )
        machine = env.collect()
        screen.note(env.summary(machine), "dim")
        loads = {"before": load.snapshot()}  # other processes' use, before anything is timed
        peaks, peak_facts = _calibrate(strategies, tasks, threads, screen)
        with limit_threads(threads) as applied_threads:
            thread_facts = applied_threads.facts()
        facts = RunFacts.create(peaks)
        sidecar_facts: dict[str, object] = {
            **_started(facts, options, suites, cases, strategies, baseline_impl, len(tasks)),
            "shard": shard,
            "threads": thread_facts,
            "memory": memory,
            "timing": timing.facts(),
            "load": loads,
            **peak_facts,
            "env": machine,
            **({"resumed_from": earlier} if earlier is not None else {}),
        }
        sidecar = write_sidecar(path, sidecar_facts)
        journal = Journal(path, mode)
        rows, interrupted = _execute(tasks, options, writer, facts, screen, journal)
        loads["after"] = load.snapshot()
        sidecar_facts.update(finished_at=utc_now(), rows=len(rows), interrupted=interrupted)
        write_sidecar(path, sidecar_facts)
    _show_results(screen, rows, baseline_impl)
    show_tracebacks(rows)
    screen.note(f"results: {path} ({len(rows)} rows); run facts: {sidecar}")
    if interrupted:
        pending = " (and the finished rounds of the others)" if options.rounds > 1 else ""
        screen.note(
            f"interrupted: the {len(rows)} finished rows{pending} are kept; --resume continues"
        )
        raise typer.Exit(130)
    raise typer.Exit(exit_code(rows))


def _started(
    facts: RunFacts,
    options: RunOptions,
    suites: list[str] | None,
    cases: list[str] | None,
    strategies: list[Strategy],
    baseline_impl: str | None,
    tasks: int,
) -> dict[str, object]:
    """The sidecar's facts known when a run or verification starts."""
    return {
        "run_id": facts.run_id,
        "started_at": utc_now(),
        "host": facts.host,
        "tool_version": facts.tool_version,
        "command": shlex.join(sys.argv),
        "options": asdict(options),
        "suites": suites or [],
        "cases": cases or [],
        "strategies": [s.name for s in strategies],
        "baseline_impl": baseline_impl,
        "tasks": tasks,
    }


@command("verify")
def verify(
    suites: SuiteOpt = None,
    cases: CaseOpt = None,
    impls: ImplOpt = None,
    pass_: PassOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    output: VerifyOutputOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Check every strategy against the float64 reference (no timing); exit 1 on any mismatch.

    With -o, the rows go to a results CSV (timing columns empty) and its sidecar.
    """
    options = RunOptions(passes=parse_passes(pass_), threads=threads, seed=seed, verify_only=True)
    screen = Screen.for_streams()
    note_oversubscription(threads, screen.note)
    case_list, strategies = _cases_and_strategies(suites, cases, dtype, impls, None, screen)
    footprint.refuse_impossible(case_list, options.passes)
    options = with_memory_limits(options, max_memory, strategies)
    tasks = loop.plan(case_list, strategies, options)
    facts = RunFacts.create()
    if output is None:
        rows, interrupted = _execute(tasks, options, None, facts, screen)
    else:
        with _open_writer(output, "overwrite" if overwrite else "new") as writer:
            sidecar_facts: dict[str, object] = {
                **_started(facts, options, suites, cases, strategies, None, len(tasks)),
                "env": env.collect(),
            }
            write_sidecar(output, sidecar_facts)
            rows, interrupted = _execute(tasks, options, writer, facts, screen)
            sidecar_facts.update(finished_at=utc_now(), rows=len(rows), interrupted=interrupted)
            write_sidecar(output, sidecar_facts)
    screen.show(tables.verification_table(rows, screen.glyphs))
    show_tracebacks(rows)
    if interrupted:
        raise typer.Exit(130)
    statuses = [str(r.get("status")) for r in rows]
    failed = sum(1 for st in statuses if st in FAILED_STATUSES)
    ok = statuses.count("ok")
    screen.note(f"{ok} correct, {failed} wrong or failed, {len(rows) - ok - failed} not run")
    if output is not None:
        screen.note(f"results: {output} ({plural(len(rows), 'row')})")
    raise typer.Exit(exit_code(rows))

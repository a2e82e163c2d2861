"""The command line: thin typer commands over the library (DESIGN §4).

Every command parses and checks its options first, so bad input exits 2 with one line on
stderr before any file is touched; the work is done by the library (suite, registry,
runner, results), and what is shown comes from ``render``. Exit codes: 0 success, 1 a
wrong/errored/crashed/timed-out row, 2 bad input, 130 interrupted (rows so far kept).
"""

from __future__ import annotations

import functools
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import RenderableType

from . import api, env, footprint, runner, suite
from .backends.base import Strategy
from .case import Case
from .cli_options import (
    check_format,
    default_output,
    exit_code,
    parse_dtype,
    parse_passes,
    parse_precision,
    parse_shard,
    select_strategies,
    with_memory_limits,
)
from .cli_params import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_ROUNDS,
    BaselineImplOpt,
    BudgetOpt,
    CaseOpt,
    DebugOpt,
    DtypeOpt,
    FormatOpt,
    ImplOpt,
    IsolateOpt,
    L2FlushOpt,
    MaxMemoryOpt,
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
)
from .errors import InputError, Unavailable
from .harness.peak import calibrate_peaks_with_reasons, peaks_as_facts
from .harness.threads import limit_threads
from .render import Glyphs, Screen, info
from .render import table as tables
from .render._format import FAILED, RowLike
from .render.plain import PlainProgress
from .render.progress import LiveProgress
from .results import ResultWriter, read_sidecar, write_sidecar
from .rounds import Journal

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Benchmark and verify transposed-convolution (deconvolution) strategies.",
)

P = ParamSpec("P")
R = TypeVar("R")


class _State:
    debug = False


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then the exit code: the contract of DESIGN §4."""
    line = " ".join(message.split())
    sys.stderr.write(f"deconvbench: error: {line}\n")
    raise typer.Exit(code)


def _guard(command: Callable[P, R]) -> Callable[P, R]:
    """Map exceptions to exit codes; a traceback only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            sys.stderr.write("deconvbench: interrupted\n")
            raise typer.Exit(130) from None
        except (InputError, Unavailable) as e:
            if _State.debug or kwargs.get("debug"):
                traceback.print_exc()
            _fail(str(e), 2)
        except Exception as e:
            if _State.debug or kwargs.get("debug"):
                traceback.print_exc()
                _fail(f"{type(e).__name__}: {e}", 1)
            _fail(f"{type(e).__name__}: {e} (run with --debug for the traceback)", 1)

    return wrapper


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """Benchmark and verify transposed-convolution strategies, forward and backward."""
    _State.debug = debug


# --- commands ----------------------------------------------------------------------------


def _execute(
    tasks: list[runner.Task],
    options: runner.RunOptions,
    writer: ResultWriter | None,
    facts: runner.RunFacts,
    screen: Screen,
    journal: Journal | None = None,
) -> tuple[Sequence[RowLike], bool]:
    """Run the tasks with a progress display; (rows, interrupted)."""
    display = (
        PlainProgress(screen.err.file, tasks) if screen.plain else LiveProgress(screen.err, tasks)
    )
    try:
        return runner.execute(tasks, options, display, writer, facts, journal=journal), False
    except KeyboardInterrupt:
        return display.rows, True  # the display saw every finished row
    finally:
        display.close()


def _plan(
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
    cases = suite.cases_for(suites or [], case_specs or [], dtype)
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
    tasks: Sequence[runner.Task],
    threads: int | None,
    screen: Screen,
) -> tuple[dict[tuple[str, str], float], dict[str, object]]:
    """The peak GEMM rate of every (device, dtype) the run uses; (peaks, sidecar facts).

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
    peaks, failures = calibrate_peaks_with_reasons(devices, dtypes, threads)
    return peaks, {
        "peaks": peaks_as_facts(peaks),
        "peak_failures": {f"{d}/{t}": why for (d, t), why in failures.items()},
    }


def _show_results(screen: Screen, rows: Sequence[RowLike], baseline: str | None) -> None:
    groups = tables.group_by_case(rows)
    for group in groups:
        screen.show(tables.case_table(group, baseline, screen.glyphs))
    if len(groups) > 1:
        screen.show(tables.summary_table(rows, baseline, screen.glyphs))


@app.command("run")
@_guard
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
    budget: BudgetOpt = 1.0,
    precision: PrecisionOpt = "2%",
    min_samples: MinSamplesOpt = 5,
    rounds: RoundsOpt = DEFAULT_ROUNDS,
    seed: SeedOpt = 0,
    baseline_impl: BaselineImplOpt = None,
    l2_flush: L2FlushOpt = False,
    shard: ShardOpt = None,
    isolate: IsolateOpt = False,
    timeout: TimeoutOpt = 600.0,
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    debug: DebugOpt = False,
) -> None:
    """Verify, then time, every strategy on every case; write the CSV and its sidecar.

    Exit codes: 0 ok, 1 a mismatch/error/crash/timeout/oom row, 2 bad input, 130 Ctrl-C.
    """
    if overwrite and resume:
        raise InputError("--overwrite and --resume exclude each other: choose one")
    options = runner.RunOptions(
        passes=parse_passes(pass_),
        threads=threads,
        seed=seed,
        budget_s=budget,
        precision=parse_precision(precision),
        min_samples=min_samples,
        l2_flush=l2_flush,
        isolate=isolate,
        rounds=rounds,
        timeout_s=timeout,
    )
    screen = Screen.for_streams()
    part = parse_shard(shard)
    case_list, strategies = _plan(suites, cases, dtype, impls, baseline_impl, screen)
    footprint.refuse_impossible(case_list, options.passes)  # before any file or array exists
    options = with_memory_limits(options, max_memory, strategies)
    if part is not None:
        case_list = runner.shard(case_list, *part)
    path = output or default_output()
    mode = "overwrite" if overwrite else "resume" if resume else "new"
    earlier = _earlier_facts(path) if resume else None
    with _open_writer(path, mode) as writer:
        tasks = runner.plan(case_list, strategies, options, writer.done_keys())
        if not tasks:
            screen.note(f"nothing left to run: every row is already in {path}")
            return
        n_cases = len({(c.suite, c.name) for c in case_list})
        screen.note(
            f"{len(tasks)} measurements: {n_cases} cases × {len(strategies)} strategies → {path}"
        )
        machine = env.collect()
        screen.note(env.summary(machine), "dim")
        peaks, peak_facts = _calibrate(strategies, tasks, threads, screen)
        with limit_threads(threads) as applied_threads:
            thread_facts = applied_threads.facts()
        facts = runner.RunFacts.create(peaks)
        sidecar_facts: dict[str, object] = {
            "run_id": facts.run_id,
            "started_at": runner.utc_now(),
            "host": facts.host,
            "tool_version": facts.tool_version,
            "command": shlex.join(sys.argv),
            "options": asdict(options),
            "suites": suites or [],
            "cases": cases or [],
            "strategies": [s.name for s in strategies],
            "baseline_impl": baseline_impl,
            "tasks": len(tasks),
            "shard": shard,
            "threads": thread_facts,
            **peak_facts,
            "env": machine,
            **({"resumed_from": earlier} if earlier is not None else {}),
        }
        sidecar = write_sidecar(path, sidecar_facts)
        journal = Journal(path, mode)
        rows, interrupted = _execute(tasks, options, writer, facts, screen, journal)
        sidecar_facts.update(finished_at=runner.utc_now(), rows=len(rows), interrupted=interrupted)
        write_sidecar(path, sidecar_facts)
    _show_results(screen, rows, baseline_impl)
    screen.note(f"results: {path} ({len(rows)} rows); run facts: {sidecar}")
    if interrupted:
        pending = " (and the finished rounds of the others)" if options.rounds > 1 else ""
        screen.note(
            f"interrupted: the {len(rows)} finished rows{pending} are kept; --resume continues"
        )
        raise typer.Exit(130)
    raise typer.Exit(exit_code(rows))


@app.command("verify")
@_guard
def verify(
    suites: SuiteOpt = None,
    cases: CaseOpt = None,
    impls: ImplOpt = None,
    pass_: PassOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    seed: SeedOpt = 0,
    max_memory: MaxMemoryOpt = DEFAULT_MAX_MEMORY,
    debug: DebugOpt = False,
) -> None:
    """Check every strategy against the float64 reference (no timing); exit 1 on any mismatch."""
    options = runner.RunOptions(
        passes=parse_passes(pass_), threads=threads, seed=seed, verify_only=True
    )
    screen = Screen.for_streams()
    case_list, strategies = _plan(suites, cases, dtype, impls, None, screen)
    footprint.refuse_impossible(case_list, options.passes)
    options = with_memory_limits(options, max_memory, strategies)
    tasks = runner.plan(case_list, strategies, options)
    rows, interrupted = _execute(tasks, options, None, runner.RunFacts.create(), screen)
    screen.show(tables.verification_table(rows, screen.glyphs))
    if interrupted:
        raise typer.Exit(130)
    failed = sum(1 for r in rows if str(r.get("status")) in FAILED)
    ok = sum(1 for r in rows if r.get("status") == "ok")
    screen.note(f"{ok} correct, {failed} wrong or failed, {len(rows) - ok - failed} not run")
    raise typer.Exit(exit_code(rows))


def _show_info(
    format: str,
    records: Callable[[], object],
    table: Callable[[Any, Glyphs], RenderableType],
    data: Any,
) -> None:
    """The shape of list/suites/env: JSON records on stdout, or a table on the screen."""
    check_format(format, ("table", "json"))
    if format == "json":
        typer.echo(info.to_json(records()))
        return
    screen = Screen.for_streams()
    screen.show(table(data, screen.glyphs))


@app.command("list")
@_guard
def list_(format: FormatOpt = "table") -> None:
    """Every strategy, available or not, and why not."""
    rows = api.implementations()
    _show_info(format, lambda: [asdict(r) for r in rows], info.implementations_table, rows)


@app.command("suites")
@_guard
def suites_(format: FormatOpt = "table") -> None:
    """The shipped suites, with their descriptions and case counts."""
    shipped = suite.shipped_suites()
    _show_info(format, lambda: info.suite_records(shipped), info.suites_table, shipped)


@app.command("env")
@_guard
def env_(format: FormatOpt = "table") -> None:
    """The machine and library facts a run records in its sidecar."""
    facts = env.collect()
    _show_info(format, lambda: facts, info.env_table, facts)


# Commands kept in their own modules register themselves on `app` when imported.
from . import cli_compare, cli_merge, cli_report  # noqa: E402, F401


def main() -> None:
    """The console script and ``python -m deconvbench``.

    Runs typer outside its standalone mode so that its own usage errors (an unknown option,
    a value that is not a number) also come out as one line and exit 2, like ours.
    """
    if not sys.argv[1:]:
        app()  # no arguments: typer shows the help
        return
    try:
        result = app(standalone_mode=False)
    except Exception as e:
        # typer's usage errors follow click's interface (format_message, exit_code, ctx);
        # their classes live in a private module, so they are recognised by that interface.
        format_message = getattr(e, "format_message", None)
        if not callable(format_message) or not isinstance(getattr(e, "exit_code", None), int):
            raise
        ctx = getattr(e, "ctx", None)
        command = getattr(ctx, "command_path", None) or "deconvbench"
        sys.stderr.write(f"deconvbench: error: {format_message()} (see `{command} --help`)\n")
        sys.exit(e.exit_code)  # type: ignore[attr-defined]
    sys.exit(result if isinstance(result, int) else 0)

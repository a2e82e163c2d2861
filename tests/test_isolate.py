"""Fault injection: every kind of misbehaving strategy gives its status, the run goes on, and
the other rows are intact (`run --isolate`)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from deconvbench import registry
from deconvbench.cases.case import Case
from deconvbench.problem import Problem
from deconvbench.results.reader import read_results
from deconvbench.results.writer import ResultWriter
from deconvbench.run.loop import execute, plan
from deconvbench.run.types import NullSink, RunFacts, RunOptions

from faulty_backend import FAULTS, Faulty

TIMEOUT_S = 30.0  # well above a worker's start-up (a spawned Python importing numpy)


@pytest.fixture(scope="module")
def isolated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path, float]:
    problem = Problem.create(batch=1, in_channels=2, out_channels=2, input=(4, 4), kernel=3,
                             stride=2, padding=1, bias=True)  # fmt: skip
    case = Case("faults", "small", problem, ("forward",))
    good = registry.get("numpy/direct")
    strategies = [good, *(Faulty(f) for f in FAULTS), good]
    options = RunOptions(budget_s=0.02, min_samples=3, isolate=True,
                                timeout_s=TIMEOUT_S, threads=1)  # fmt: skip
    # the same good strategy twice: the second copy is a different case so keys stay unique
    cases = [case, Case("faults", "again", problem, ("forward",))]
    tasks = plan(cases[:1], strategies[:-1], options) + plan(
        cases[1:], [good], options
    )
    path = tmp_path_factory.mktemp("iso") / "faults.csv"
    start = time.perf_counter()
    with ResultWriter(path, "new") as writer:
        rows = execute(tasks, options, NullSink(), writer, RunFacts.create())
    return rows, path, time.perf_counter() - start


EXPECTED = {
    "numpy/direct": "ok",
    "faulty/raises": "error",
    "faulty/aborts": "crashed",
    "faulty/hangs": "timeout",
    "faulty/exhausts-memory": "oom",
    "faulty/wrong-numbers": "mismatch",
    "faulty/wrong-shape": "mismatch",
}


def test_every_fault_gets_its_status(isolated_run: tuple[list[dict], Path, float]) -> None:
    rows, _, _ = isolated_run
    got = {(r["case"], r["implementation"]): r["status"] for r in rows}
    for impl, status in EXPECTED.items():
        assert got[("small", impl)] == status, (impl, got)
    assert got[("again", "numpy/direct")] == "ok"  # the run went on after every fault
    raised = next(r for r in rows if r["implementation"] == "faulty/raises")
    assert "_misbehave" in raised.traceback  # it came back from the worker, for --debug
    messages = {r["implementation"]: r["message"] for r in rows if r["case"] == "small"}
    assert "SIGABRT" in messages["faulty/aborts"]
    assert "killed" in messages["faulty/hangs"]
    assert "injected failure" in messages["faulty/raises"]
    assert "shape" in messages["faulty/wrong-shape"]


def test_no_row_is_lost_and_good_rows_are_timed(
    isolated_run: tuple[list[dict], Path, float],
) -> None:
    rows, path, elapsed = isolated_run
    on_disk = read_results(path)
    assert len(on_disk) == len(rows) == 8
    good = on_disk[on_disk["implementation"] == "numpy/direct"]
    assert (good["median_ms"] > 0).all() and (good["status"] == "ok").all()
    # the hang costs one timeout, nothing else waits that long
    assert elapsed < TIMEOUT_S + 60


def test_in_process_run_survives_python_faults() -> None:
    """Without --isolate, exceptions still become rows and the run goes on."""
    problem = Problem.create(batch=1, in_channels=2, out_channels=2, input=(4,), kernel=3)
    case = Case("faults", "inproc", problem, ("forward",))
    options = RunOptions(budget_s=0.02, min_samples=3, threads=1)
    strategies = [Faulty(f) for f in ("raises", "exhausts-memory", "wrong-numbers")]
    strategies.append(registry.get("numpy/direct"))
    rows = execute(plan([case], strategies, options), options,
                          NullSink(), None, RunFacts.create())  # fmt: skip
    assert [r["status"] for r in rows] == ["error", "oom", "mismatch", "ok"]
    # the failure's traceback, in the strategy's own code, for --debug (never a column)
    assert "RuntimeError: injected failure" in rows[0].traceback
    assert "faulty_backend.py" in rows[0].traceback and "_misbehave" in rows[0].traceback
    assert rows[3].traceback == "" and "traceback" not in rows[0].record


def test_debug_shows_the_tracebacks_of_failed_rows(capsys: pytest.CaptureFixture[str]) -> None:
    cli_app = importlib.import_module("deconvbench.cli.app")  # cli.app is also the Typer app

    problem = Problem.create(batch=1, in_channels=2, out_channels=2, input=(4,), kernel=3)
    options = RunOptions(budget_s=0.02, min_samples=3, threads=1)
    rows = execute(plan([Case("faults", "debug", problem, ("forward",))], [Faulty("raises")],
                        options), options, NullSink(), None, RunFacts.create())  # fmt: skip
    cli_app.show_tracebacks(rows)
    assert capsys.readouterr().err == ""
    monkey = pytest.MonkeyPatch()
    monkey.setattr(cli_app._State, "debug", True)
    try:
        cli_app.show_tracebacks(rows)
    finally:
        monkey.undo()
    err = capsys.readouterr().err
    assert "--- faults/debug faulty/raises forward: error" in err
    assert "_misbehave" in err and "RuntimeError: injected failure" in err


def test_cli_isolate_and_timeout_options(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deconvbench import cli

    spec = "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1"
    out = tmp_path / "iso.csv"
    args = ["run", "--case", spec, "--impl", "numpy/direct", "--budget", "0.02", "-o", str(out)]
    result = CliRunner().invoke(cli.app, [*args, "--isolate", "--timeout", "60"])
    assert result.exit_code == 0, result.stderr
    assert set(read_results(out)["status"]) == {"ok"}
    bad = CliRunner().invoke(cli.app, [*args, "--isolate", "--timeout", "0", "--overwrite"])
    assert bad.exit_code == 2 and "timeout" in bad.stderr


def test_one_worker_serves_until_a_crash_then_a_fresh_one() -> None:
    from deconvbench.run.isolate import IsolatedRunner

    problem = Problem.create(batch=1, in_channels=2, out_channels=2, input=(4,), kernel=3)
    good = registry.get("numpy/direct")
    options = RunOptions(budget_s=0.01, min_samples=3, isolate=True, timeout_s=TIMEOUT_S,
                                threads=1, passes=("forward",))  # fmt: skip
    cases = [Case("reuse", f"c{i}", problem, ("forward",)) for i in range(3)]
    tasks = plan(cases[:2], [good], options) + plan(
        cases[2:], [Faulty("aborts"), good], options
    )
    with IsolatedRunner(options, RunFacts.create()) as isolated:
        statuses = [isolated.run(t).status for t in tasks]
        assert statuses == ["ok", "ok", "crashed", "ok"]
        assert isolated.starts == 2  # the two good rows shared one; the crash cost one more
        from dataclasses import replace

        assert isolated.run(replace(tasks[0], round=1, rounds=2)).status == "ok"
        assert isolated.starts == 3  # a new round, a new process

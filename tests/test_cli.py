"""Every command through typer's CliRunner: output, files written, exit codes (the command
line of docs/design.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deconvbench import cli, registry
from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.cli import run as cli_run
from deconvbench.cli.options import parse_precision
from deconvbench.errors import InputError
from deconvbench.problem import Problem
from deconvbench.results.reader import read_results

CASE = "batch=1,in_channels=2,out_channels=2,input=5x5,kernel=3,stride=2,padding=1"
FAST = ["--budget", "0.02", "--min-samples", "3"]


class Fake(Strategy):
    """A test strategy: right (delegating to numpy/direct), wrong, or misbehaving."""

    def __init__(self, algorithm: str, backend: str = "fake") -> None:
        self.backend = backend
        self.algorithm = algorithm
        self._direct = registry.get("numpy/direct")

    def _wrap(self, prepared: Prepared) -> Prepared:
        def call() -> object:
            if self.algorithm == "interrupt":
                raise KeyboardInterrupt
            if self.algorithm == "explode":
                raise RuntimeError("kaboom")
            result = prepared.call()
            if self.algorithm == "wrong":
                return tuple(None if r is None else np.asarray(r) + 1.0 for r in result)  # type: ignore[attr-defined]
            return result

        return Prepared(call, numpy_fetch)

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        inner = self._direct.prepare_forward(problem, x, weight, bias)
        return self._wrap(Prepared(lambda: (inner.call(),), numpy_fetch))

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return self._wrap(self._direct.prepare_backward(problem, grad_output, x, weight))


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register fake/{right,wrong,explode} and zzz/interrupt (sorted last); a fixed peak."""
    real = registry.strategies()
    extra = (*(Fake(a) for a in ("right", "wrong", "explode")), Fake("interrupt", "zzz"))
    monkeypatch.setattr(registry, "strategies", lambda: (*real, *extra))
    monkeypatch.setattr(
        cli_run, "calibrate_peaks_with_reasons", lambda d, t, n: ({("cpu", "float32"): 10.0}, {})
    )
    monkeypatch.setattr(cli_run, "theoretical_peaks", lambda d, t, n: {})
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")  # tables must not be cut by the runner's width
    yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_bad_input(code: int, stderr: str, *words: str) -> None:
    """Exit 2, one line on stderr naming the culprit, no traceback."""
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("deconvbench: error: ")
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# --- list / suites / env ------------------------------------------------------------------


def test_list_json_has_every_strategy_with_its_availability(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "list", "--format", "json")
    assert code == 0
    records = {r["name"]: r for r in json.loads(out)}
    for key in ("name", "backend", "algorithm", "device", "available", "reason", "capabilities"):
        assert key in records["numpy/direct"]
    assert records["numpy/direct"]["available"] is True
    assert records["numpy/direct"]["reason"] == ""
    unavailable = [r for r in records.values() if not r["available"]]
    assert all(r["reason"] for r in unavailable)


def test_list_table_groups_by_backend(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "list")
    assert code == 0
    first_words = [line.split()[0] for line in out.splitlines() if line.strip()]
    names = [w for w in first_words if "/" in w]
    assert "numpy/direct" in names and "fake/wrong" in names
    assert names.index("fake/wrong") < names.index("numpy/direct")  # sorted by backend


def test_list_rejects_an_unknown_format(runner: CliRunner) -> None:
    code, _, err = invoke(runner, "list", "--format", "xml")
    assert_bad_input(code, err, "--format", "xml")


def test_suites_lists_the_shipped_suites_with_case_counts(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "suites", "--format", "json")
    assert code == 0
    suites = {s["name"]: s for s in json.loads(out)}
    assert suites["smoke"]["cases"] >= 1 and suites["smoke"]["description"]
    code, out, _ = invoke(runner, "suites")
    assert code == 0
    (line,) = [ln for ln in out.splitlines() if ln.split()[:1] == ["dcgan"]]
    assert str(suites["dcgan"]["cases"]) in line.split()
    # what a suite's [measure] table asks for shows in both forms; a suite without one, none
    assert suites["smoke"]["measure"]["precision"] == 0.05 and suites["dcgan"]["measure"] == {}
    assert "timing: precision ±5%" in " ".join(out.split())


def test_env_json_has_every_section(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "env", "--format", "json")
    assert code == 0
    facts = json.loads(out)
    for section in ("deconvbench", "python", "os", "cpu", "memory", "numpy", "torch", "cuda"):
        assert section in facts
    code, out, _ = invoke(runner, "env")
    assert code == 0 and "cpu" in out and "torch" in out


# --- run ------------------------------------------------------------------------------------


def test_run_writes_csv_and_sidecar_and_shows_a_table(runner: CliRunner, tmp_path: Path) -> None:
    out_csv = tmp_path / "r.csv"
    code, out, err = invoke(
        runner, "run", "--case", CASE, "--impl", "numpy/direct", "--impl", "fake/right",
        "--baseline-impl", "fake/right", "-o", str(out_csv), *FAST, "--rounds", "1",
    )  # fmt: skip
    assert code == 0, err
    frame = read_results(out_csv)
    assert len(frame) == 4 and set(frame["status"]) == {"ok"} and set(frame["rounds"]) == {1}
    assert set(frame["pass"]) == {"forward", "backward"}
    assert (frame["peak_fraction"] > 0).all()
    sidecar = json.loads(Path(f"{out_csv}.json").read_text())
    assert sidecar["peaks"] == {"cpu/float32": 10.0}
    assert sidecar["strategies"] == ["fake/right", "numpy/direct"]
    assert sidecar["env"]["python"]["version"] and sidecar["interrupted"] is False
    assert sidecar["rows"] == 4 and sidecar["options"]["budget_s"] == 0.02
    assert "numpy/direct" in out and "speedup vs fake/right" in out
    # NO_COLOR: plain output, ASCII marks (messages may still hold any character)
    assert "★" not in out and "×" not in out and "\x1b[" not in out
    assert "[4/4]" in err and f"results: {out_csv}" in err


def test_run_refuses_an_existing_output_and_leaves_it_alone(
    runner: CliRunner, tmp_path: Path
) -> None:
    existing = tmp_path / "r.csv"
    existing.write_text("precious\n")
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "-o",
                          str(existing), *FAST)  # fmt: skip
    assert_bad_input(code, err, str(existing), "--overwrite", "--resume")
    assert existing.read_text() == "precious\n"
    assert not Path(f"{existing}.json").exists()


def test_run_overwrite_then_resume_skips_finished_rows(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("old\n")
    args = ["run", "--case", CASE, "--impl", "numpy/direct", "--pass", "forward", "-o", str(path)]
    code, _, err = invoke(runner, *args, "--overwrite", *FAST)
    assert code == 0, err
    assert len(read_results(path)) == 1
    code, _, err = invoke(runner, *args, "--resume", "--pass", "all", *FAST)
    assert code == 0, err
    frame = read_results(path)
    assert sorted(frame["pass"]) == ["backward", "forward"]  # only the missing row ran
    assert "resumed_from" in json.loads(Path(f"{path}.json").read_text())
    code, _, err = invoke(runner, *args, "--resume", "--pass", "all", *FAST)
    assert code == 0 and "nothing left to run" in err
    assert len(read_results(path)) == 2


def test_run_exits_1_on_a_mismatch_and_never_times_it(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    code, out, err = invoke(runner, "run", "--case", CASE, "--impl", "fake/[erw]*", "--impl",
                            "numpy/direct", "-o", str(path), *FAST)  # fmt: skip
    assert code == 1, err
    frame = read_results(path).set_index(["implementation", "pass"])
    assert frame.loc[("fake/wrong", "forward"), "status"] == "mismatch"
    assert np.isnan(frame.loc[("fake/wrong", "forward"), "median_ms"])
    assert frame.loc[("fake/explode", "forward"), "status"] == "error"
    assert "kaboom" in frame.loc[("fake/explode", "forward"), "message"]
    assert "MISMATCH" in out and "ERROR" in out and "RuntimeError: kaboom" in out
    assert len(frame) == 8 and (frame["status"] == "ok").sum() == 4  # the run went on


def test_run_in_rounds_pools_them_and_an_interrupted_run_resumes_its_rounds(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "r.csv"
    journal = Path(f"{path}.rounds")
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "-o",
                          str(path), *FAST)  # fmt: skip  (the default: 3 rounds)
    assert code == 0, err
    frame = read_results(path)
    assert set(frame["rounds"]) == {3} and "[6/6]" in err and "round 3/3" in err
    for sizes, n in zip(frame["round_samples"], frame["samples"], strict=True):
        assert sum(int(v) for v in sizes.split(";")) == n
    assert not journal.exists()  # gone once every row is written
    # interrupted in round 1, after numpy/direct's first round: no row yet, its rounds kept
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "--impl",
                          "zzz/interrupt", "-o", str(path), "--overwrite", *FAST,
                          "--rounds", "2")  # fmt: skip
    assert code == 130 and "(and the finished rounds of the others) are kept" in err
    assert read_results(path).empty and len(journal.read_text().splitlines()) == 2
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "-o",
                          str(path), "--resume", *FAST, "--rounds", "2")  # fmt: skip
    assert code == 0, err
    frame = read_results(path)
    assert len(frame) == 2 and set(frame["rounds"]) == {2} and "[2/2]" in err
    assert not journal.exists()


def test_ctrl_c_keeps_the_finished_rows_and_exits_130(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    code, out, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "--impl",
                            "zzz/interrupt", "-o", str(path), *FAST, "--rounds", "1")  # fmt: skip
    assert code == 130, err
    # numpy/direct ran (both passes) before zzz/interrupt's first call was interrupted
    frame = read_results(path)
    assert list(frame["implementation"]) == ["numpy/direct"] * 2
    assert set(frame["status"]) == {"ok"}
    sidecar = json.loads(Path(f"{path}.json").read_text())
    assert sidecar["interrupted"] is True and sidecar["rows"] == 2
    assert "interrupted: the 2 finished rows are kept" in err
    assert "numpy/direct" in out  # the table of what finished is still shown
    # --resume runs only what is missing (and is interrupted again here)
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "--impl",
                          "zzz/interrupt", "-o", str(path), "--resume", *FAST)  # fmt: skip
    assert code == 130 and "2 measurements" in err
    assert len(read_results(path)) == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--precision", "two"], ["--precision", "two"]),
        (["--precision", "150%"], ["--precision"]),
        (["--pass", "sideways"], ["--pass", "sideways"]),
        (["--dtype", "int8"], ["--dtype", "int8"]),
        (["--impl", "nothing/*"], ["--impl", "nothing/*"]),
        (["--baseline-impl", "numpy/directt"], ["numpy/directt"]),
        (["--suite", "no-such-suite"], ["no-such-suite"]),
        (["--case", "batch=1,kernel=banana"], ["--case", "kernel"]),
        (["--budget", "0"], ["budget"]),
        (["--overwrite", "--resume"], ["--overwrite", "--resume"]),
    ],
)
def test_run_bad_input_exits_2_with_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str], words: list[str]
) -> None:
    base = ["run", "-o", str(tmp_path / "r.csv"), *FAST]
    if "--case" not in args and "--suite" not in args:
        base += ["--case", CASE]
    code, _, err = invoke(runner, *base, *args)
    assert_bad_input(code, err, *words)
    assert not (tmp_path / "r.csv").exists()


def test_an_unavailable_strategy_named_exactly_is_bad_input(
    runner: CliRunner, tmp_path: Path
) -> None:
    unavailable = [s.name for s in registry.strategies() if s.unavailable_reason() is not None]
    if not unavailable:
        pytest.skip("every strategy can run here")
    out_csv = tmp_path / "r.csv"
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", unavailable[0], "-o",
                          str(out_csv))  # fmt: skip
    assert_bad_input(code, err, unavailable[0])
    assert not out_csv.exists()


def test_a_wildcard_skips_what_cannot_run_here(runner: CliRunner, tmp_path: Path) -> None:
    code, _, err = invoke(runner, "verify", "--case", CASE, "--impl", "*/native")
    assert code == 0, err
    if any(s.unavailable_reason() for s in registry.select(["*/native"])):
        assert "skipping unavailable" in err


def test_run_with_nothing_to_run_says_how(runner: CliRunner) -> None:
    code, _, err = invoke(runner, "run")
    assert_bad_input(code, err, "--suite", "--case")


def test_unexpected_errors_exit_1_with_a_traceback_only_under_debug(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("surprise")

    monkeypatch.setattr(cli_run.loop, "plan", broken)
    args = ["run", "--case", CASE, "--impl", "numpy/direct", "-o", str(tmp_path / "a.csv")]
    code, _, err = invoke(runner, *args)
    assert code == 1 and "ZeroDivisionError: surprise" in err and "Traceback" not in err
    assert "--debug" in err
    code, _, err = invoke(runner, "--debug", *args[:-1], str(tmp_path / "b.csv"))
    assert code == 1 and "Traceback" in err
    code, _, err = invoke(runner, *args[:-1], str(tmp_path / "c.csv"), "--debug")
    assert code == 1 and "Traceback" in err


def test_unwritable_output_is_bad_input(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = invoke(runner, "run", "--case", CASE, "--impl", "numpy/direct", "-o",
                          str(blocker / "r.csv"), *FAST)  # fmt: skip
    assert_bad_input(code, err, str(blocker / "r.csv"))


# --- verify ----------------------------------------------------------------------------------


def test_verify_reports_errors_and_exits_0_when_all_are_right(runner: CliRunner) -> None:
    code, out, err = invoke(runner, "verify", "--case", CASE, "--impl", "numpy/direct")
    assert code == 0, err
    assert "verification" in out and "numpy/direct" in out and " ok " in out
    assert "2 correct, 0 wrong or failed" in err


def test_verify_exits_1_on_a_mismatch(runner: CliRunner) -> None:
    code, out, err = invoke(runner, "verify", "--case", CASE, "--impl", "fake/wrong",
                            "--pass", "forward")  # fmt: skip
    assert code == 1
    assert "mismatch" in out and "0 correct, 1 wrong or failed" in err


def test_verify_writes_no_file(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                               ) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code, _, _ = invoke(runner, "verify", "--case", CASE, "--impl", "numpy/direct")
    assert code == 0 and list(tmp_path.iterdir()) == []


# --- options and entry points ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("2%", 0.02), ("0.05", 0.05), (" 10% ", 0.1)])
def test_parse_precision(text: str, value: float) -> None:
    assert parse_precision(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "1", "100%", "-2%", "nan", "", "%"])
def test_parse_precision_rejects(text: str) -> None:
    with pytest.raises(InputError, match="--precision"):
        parse_precision(text)


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deconvbench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "run" in done.stdout and "verify" in done.stdout


@pytest.mark.parametrize(
    ("args", "word"),
    [(["run", "--bogus"], "--bogus"), (["run", "--threads", "x"], "--threads"), (["nope"], "nope")],
)
def test_usage_errors_from_the_console_script_are_one_line(args: list[str], word: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deconvbench", *args], capture_output=True, text=True, timeout=60
    )
    assert_bad_input(done.returncode, done.stderr, word)

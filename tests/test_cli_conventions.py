"""Command-line conventions (docs/design.md, command line): --version, -h, shell completion,
plain metavars and real flags, quiet broken pipes, suite lookup in the working directory,
help that matches behaviour, plurals, NO_COLOR, oversubscribed threads, plain help in a pipe,
and compare's missing rows."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from deconvbench import cli, registry
from deconvbench.backends import Prepared, Strategy
from deconvbench.cases.suite_file import load_suite
from deconvbench.cli import conventions
from deconvbench.cli import run as cli_run
from deconvbench.cli.options import note_oversubscription, plural, select_strategies
from deconvbench.errors import Unavailable
from deconvbench.results.reader import read_results
from deconvbench.results.sidecar import read_sidecar
from deconvbench.results.writer import ResultWriter
from deconvbench.version import VERSION

from helpers import Row, row

GOOD = "in_channels=2,out_channels=2,input=5x5,kernel=3,stride=2,padding=1"
FAST = ["--budget", "0.02", "--min-samples", "3", "--rounds", "1"]
COMMANDS = [
    "run",
    "verify",
    "list",
    "suites",
    "env",
    "compare",
    "merge",
    "export",
    "report",
    "conformance",
    "import",
    "plan",
]
SUITE = 'name = "mine"\ndescription = "a local suite"\n[[case]]\nname = "c1"\n' + (
    "in_channels = 2\nout_channels = 2\ninput = [5, 5]\nkernel = 3\n"
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(
        cli_run, "calibrate_peaks_with_reasons", lambda d, t, n: ({("cpu", "float32"): 10.0}, {})
    )
    yield


def main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``deconvbench ARGS`` through the console script's entry; (code, out, err)."""
    saved = sys.argv
    sys.argv = ["deconvbench", *args]
    try:
        with pytest.raises(SystemExit) as ended:
            cli.main()
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out, err


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), env={"NO_COLOR": "1", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def real(*args: str) -> list[str]:
    """The argv of a real ``python -m deconvbench ARGS`` process."""
    return [sys.executable, "-m", "deconvbench", *args]


# --- --version, -h, completion ----------------------------------------------------------------


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main(["--version"], capsys)
    assert (code, out, err) == (0, f"deconvbench {VERSION}\n", "")


@pytest.mark.parametrize("args", [["-h"], ["run", "-h"], ["compare", "-h"]])
def test_dash_h_is_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = main(args, capsys)
    assert code == 0 and out.startswith("Usage: ") and err == ""


def test_shell_completion_is_offered_and_completes() -> None:
    code, out, _ = invoke("--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out
    script = Path(sys.executable).parent / "deconvbench"  # the console script: its own name
    if not script.exists():
        pytest.skip("no deconvbench console script beside this python")
    env = {**os.environ, "_DECONVBENCH_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    done = subprocess.run(
        [str(script)],
        env={**env, "COMP_WORDS": "deconvbench run --thr"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.split() == ["--threads"], done


# --- metavars and flags -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_plain_metavars_and_flags_without_values(command: str) -> None:
    code, out, _ = invoke(*([command] if command else []), "--help")
    assert code == 0
    python_type = re.search(r"<(list|str|int|float|bool|path|Path)|list\[|\{\w+\}", out)
    assert python_type is None, f"{python_type} in {command} --help:\n{out}"
    for line in out.splitlines():
        flag = re.match(r"\s+(--overwrite|--resume|--isolate|--no-fail|--debug|-h, --help)\s", line)
        if flag:  # the help text follows the flag directly: no value is shown
            assert re.match(rf"\s+{flag.group(1)}\s+[A-Z]", line), line


def test_run_help_names_values_by_metavar() -> None:
    _, out, _ = invoke("run", "--help")
    for shown in (
        "--suite NAME|FILE",
        "--case SPEC",
        "--impl GLOB",
        "--threads N",
        "-o, --output FILE",
    ):
        assert shown in out, shown
    _, out, _ = invoke("merge", "--help")
    assert "Usage: root merge [OPTIONS] FILE..." in out or "merge [OPTIONS] FILE..." in out


def test_a_value_after_a_flag_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = main(
        ["merge", str(tmp_path / "a.csv"), "--overwrite", "true", "-o", str(tmp_path / "m.csv")],
        capsys,
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--overwrite is a flag and takes no value" in err, err
    assert "'true'" in err and "no such file" not in err
    code, _, err = main(["run", "--case", GOOD, "--isolate=yes"], capsys)
    assert code == 2 and "--isolate" in err and err.count("\n") == 1


def test_a_file_named_like_a_word_after_a_value_option_is_not_a_flag_value() -> None:
    group = get_command(cli.app)
    assert conventions.stray_flag_value(group, ["merge", "a.csv", "-o", "true"]) is None
    assert conventions.stray_flag_value(group, ["merge", "--overwrite", "--", "true"]) is None
    assert conventions.stray_flag_value(group, ["--debug", "no"]) is not None


# --- a closed pipe ----------------------------------------------------------------------------


def test_a_closed_stdout_ends_the_run_quietly_and_keeps_the_csv(tmp_path: Path) -> None:
    """The reader of stdout is gone before the tables are written: exit 141, no message."""
    out = tmp_path / "r.csv"
    args = ["run", "--case", GOOD, "--impl", "numpy/direct", "-o", str(out), *FAST]
    process = subprocess.Popen(
        real(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=tmp_path,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # what `head` does once it has its lines
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == conventions.BROKEN_PIPE == 141, err
    assert "error" not in err.lower() and "Broken pipe" not in err and "Traceback" not in err
    assert len(read_results(out)) == 2  # forward and backward, complete and readable
    assert read_sidecar(out)["rows"] == 2


def test_run_piped_into_head_says_nothing_about_the_pipe(tmp_path: Path) -> None:
    args = " ".join(real("run", "--case", GOOD, "--impl", "numpy/*", "-o", "r.csv", *FAST))
    done = subprocess.run(
        ["bash", "-c", f'{args} | head -3; echo "codes ${{PIPESTATUS[*]}}" >&2'],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=tmp_path,
        timeout=120,
    )
    assert len(done.stdout.splitlines()) == 3
    code = done.stderr.splitlines()[-1].split()[1]
    assert code in ("0", "141"), done.stderr
    assert "deconvbench: error" not in done.stderr and "BrokenPipe" not in done.stderr
    assert len(read_results(tmp_path / "r.csv")) > 0


def test_help_into_a_closed_pipe_is_quiet() -> None:
    process = subprocess.Popen(
        real("run", "--help"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141) and err == ""


# --- suite lookup -----------------------------------------------------------------------------


def test_a_bare_suite_name_is_tried_as_name_dot_toml_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text(SUITE)
    assert [c.name for c in load_suite("mine").cases] == ["c1"]
    code, _, err = invoke("verify", "--suite", "mine", "--impl", "numpy/direct")
    assert code == 0 and "unknown suite" not in err


def test_a_shipped_suite_name_wins_over_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke.toml").write_text(SUITE.replace('"mine"', '"smoke"'))
    assert len(load_suite("smoke").cases) == 4  # the shipped one
    assert [c.name for c in load_suite("./smoke.toml").cases] == ["c1"]  # the local one


# --- help that matches behaviour --------------------------------------------------------------


def test_compare_alpha_help_names_both_tests() -> None:
    _, out, _ = invoke("compare", "--help")
    text = " ".join(out.split())
    assert "t-test over the rounds" in text and "Mann-Whitney" in text


def test_the_case_example_is_not_cut_in_rich_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conventions, "plain_help", lambda stream=None: False)
    code, out, _ = invoke("run", "--help", env={"COLUMNS": "80", "NO_COLOR": ""})
    assert code == 0 and "╭" in out  # drawn by rich, at 80 columns
    assert "…" not in out and "padding=1'" in out


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "rich"])
def test_the_list_of_commands_shows_each_summary_whole(
    plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conventions, "plain_help", lambda stream=None: plain)
    code, out, _ = invoke("--help", env={"COLUMNS": "80", "NO_COLOR": ""})
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())
    assert code == 0 and "…" not in out
    for command in get_command(cli.app).commands.values():  # type: ignore[attr-defined]
        summary = " ".join((command.help or "").split("\n\n")[0].split())
        assert summary in text, f"{command.name}: {summary!r} cut"


def test_verify_writes_its_rows_with_o(tmp_path: Path) -> None:
    out = tmp_path / "v.csv"
    code, _, err = invoke("verify", "--case", GOOD, "--impl", "numpy/direct", "-o", str(out))
    assert code == 0, err
    frame = read_results(out)
    assert list(frame["status"]) == ["ok", "ok"] and frame["median_ms"].isna().all()
    assert read_sidecar(out)["options"]["verify_only"] is True
    code, _, err = invoke("verify", "--case", GOOD, "--impl", "numpy/direct", "-o", str(out))
    assert code == 2 and "exists" in err
    code, _, _ = invoke(
        "verify", "--case", GOOD, "--impl", "numpy/direct", "-o", str(out), "--overwrite"
    )
    assert code == 0


# --- small things -----------------------------------------------------------------------------


class _Missing(Strategy):
    backend = "nogpu"

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def unavailable_reason(self) -> str | None:
        return "this machine has no GPU, and the reason is long " * 3

    def prepare_forward(self, *args: object) -> Prepared:
        raise NotImplementedError

    def prepare_backward(self, *args: object) -> Prepared:
        raise NotImplementedError


def test_one_shared_reason_is_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = tuple(_Missing(a) for a in ("a", "b", "c", "d", "e", "f", "g"))
    everything = registry.strategies()
    monkeypatch.setattr(registry, "strategies", lambda: (*everything, *fakes))
    with pytest.raises(Unavailable) as raised:
        select_strategies(["nogpu/*"], None)
    message = str(raised.value)
    assert message.count("this machine has no GPU") == 3  # the reason once (it says it 3 times)
    assert "nogpu/a, nogpu/b" in message and len(message) < 300


def test_counts_are_pluralised(tmp_path: Path) -> None:
    assert [plural(1, "case"), plural(2, "case")] == ["1 case", "2 cases"]
    assert plural(1, "strategy", "strategies") == "1 strategy"
    code, _, err = invoke(
        "run", "--case", GOOD, "--impl", "numpy/direct", "--pass", "forward",
        "-o", str(tmp_path / "r.csv"), *FAST,
    )  # fmt: skip
    assert code == 0 and "1 measurement: 1 case × 1 strategy →" in err, err
    code, _, err = invoke("compare", str(tmp_path / "r.csv"))
    assert code == 2 and "got 1 file" in err and "1 files" not in err


def test_no_color_or_a_pipe_gives_plain_help(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("TERM", raising=False)
    assert conventions.plain_help(Tty()) is False
    assert conventions.plain_help(io.StringIO()) is True  # a pipe or a file
    monkeypatch.setenv("NO_COLOR", "1")
    assert conventions.plain_help(Tty()) is True
    done = subprocess.run(
        ["script", "-qec", " ".join([*real("run", "--help")]), "/dev/null"],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    ) if _has_script() else None  # fmt: skip
    if done is not None:  # a real terminal: no ANSI escape at all, no boxes
        assert done.returncode == 0 and "Usage:" in done.stdout
        assert "\x1b[" not in done.stdout and "╭" not in done.stdout


def _has_script() -> bool:
    from shutil import which

    return which("script") is not None


def test_oversubscribed_threads_get_one_note(tmp_path: Path) -> None:
    notes: list[str] = []
    note_oversubscription(4, notes.append, cores=2)
    note_oversubscription(2, notes.append, cores=2)
    note_oversubscription(None, notes.append, cores=2)
    assert notes == [
        "--threads 4 oversubscribes the 2 available cores: threads will compete, and timings "
        "include that"
    ]
    code, _, err = invoke("verify", "--case", GOOD, "--impl", "numpy/direct", "--threads", "999")
    assert code == 0 and "--threads 999 oversubscribes" in err


def test_help_in_a_pipe_is_plain_ascii() -> None:
    for command in ["", *COMMANDS]:
        done = subprocess.run(
            real(*([command] if command else []), "--help"),
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "NO_COLOR"},
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.isascii(), done.stdout


# --- compare: missing rows --------------------------------------------------------------------


def _write(path: Path, rows: list[Row]) -> Path:
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    return path


def _rows(impls: tuple[str, ...]) -> list[Row]:
    samples = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01]
    return [row(i, pass_=p, samples=samples) for i in impls for p in ("forward", "backward")]


def test_missing_rows_warn_and_fail_the_gate_on_request(tmp_path: Path) -> None:
    base = _write(tmp_path / "base.csv", _rows(("numpy/direct", "numpy/subpixel")))
    part = _write(tmp_path / "part.csv", _rows(("numpy/direct",)))
    code, _, err = invoke("compare", str(base), str(part))
    assert code == 0
    assert f"warning: 2 of 4 baseline rows are missing from {part}" in err
    code, out, err = invoke(
        "compare", str(base), str(part), "--fail-on-missing", "--format", "json"
    )
    assert code == 1 and json.loads(out)["gate_failed"] is True and "fail the gate" in err
    code, _, _ = invoke("compare", str(base), str(part), "--fail-on-missing", "--no-fail")
    assert code == 0
    code, _, err = invoke("compare", str(base), str(base), "--fail-on-missing")
    assert code == 0 and "missing" not in err
    code, out, _ = invoke("compare", str(base), str(part), "--fail-on-missing")
    assert code == 1 and "2 missing (gate fails)" in out and "gate passes" not in out


def test_no_color_on_a_terminal_writes_no_escape_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from deconvbench.render import Screen

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    out, err = Terminal(), Terminal()
    screen = Screen.for_streams(out, err)
    screen.note("[bold]bold[/bold] [italic]italic[/italic] [dim]dim[/dim]")
    screen.err.print("[bold]again[/bold]")
    assert "\x1b[" not in out.getvalue() + err.getvalue()
    assert "again" in err.getvalue()

"""Results survive a real ``kill -9`` and a Ctrl-C.

A real ``python -m deconvbench run`` in a subprocess, over 30 quick rows (the numpy strategies
on three tiny cases, both passes), is killed with SIGKILL after 2 rows and again, after
``--resume``, at a seeded random row count, then interrupted with SIGINT, then resumed to the
end. After every stop the file must read (pandas, and the validating reader) with every
finished row whole; each resume must only append; the end must hold exactly the rows of an
uninterrupted run, none twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from deconvbench import registry
from deconvbench.results.fields import parse_samples
from deconvbench.results.reader import read_results
from deconvbench.results.schema import KEY_COLUMNS

CASES = (
    "in_channels=2,out_channels=2,input=5x5,kernel=3,stride=2,padding=1",
    "in_channels=2,out_channels=3,input=6,kernel=4,stride=2",
    "in_channels=3,out_channels=2,input=3x3,kernel=2",
)
ARGS = [
    "run", "--impl", "numpy/*", *(a for c in CASES for a in ("--case", c)),
    "--budget", "0.01", "--min-samples", "3", "--threads", "1",
]  # fmt: skip
TOTAL = len(registry.select(["numpy/*"])) * len(CASES) * 2  # every numpy strategy, both passes
SEED = 20240607


def start(output: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = output.with_suffix(".log").open("ab")  # the child's stderr, for a failure's message
    return subprocess.Popen(
        [sys.executable, "-m", "deconvbench", *ARGS, "-o", str(output), *extra],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "NO_COLOR": "1"},
    )


def finished_rows(path: Path) -> int:
    """Complete lines after the header (no finished row's text holds a newline here)."""
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def wait_for_rows(path: Path, process: subprocess.Popen[bytes], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = finished_rows(path)
        if rows >= at_least:
            return rows
        if process.poll() is not None:
            log = path.with_suffix(".log").read_text(errors="replace")
            pytest.fail(f"the run ended (exit {process.returncode}) at {rows} rows:\n{log}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no {at_least} rows within 60 s")


def stop(process: subprocess.Popen[bytes], signum: int) -> int:
    process.send_signal(signum)
    return process.wait(timeout=60)


def keys(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return [tuple(map(str, r)) for r in frame[list(KEY_COLUMNS)].itertuples(index=False)]


def assert_intact(path: Path, at_least: int) -> pd.DataFrame:
    """Every finished row reads back whole; returns the validated frame."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"a torn last line survived:\n{data[-300:]!r}"
    raw = pd.read_csv(path)  # plain pandas, as a user would read it
    frame = read_results(path)  # schema, statuses and every number
    assert len(raw) == len(frame) >= at_least
    assert len(set(keys(frame))) == len(frame), "a row is duplicated"
    assert set(frame["status"]) == {"ok"}
    for samples, text, median in zip(
        frame["samples"], frame["samples_ms"], frame["median_ms"], strict=True
    ):
        values = parse_samples(text)
        assert len(values) == samples >= 3 and min(values) <= median <= max(values)
    assert json.loads(Path(f"{path}.json").read_text())["tasks"] >= 1  # the sidecar is whole
    return frame


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run left alone: the rows every interrupted-and-resumed run must end with."""
    path = tmp_path_factory.mktemp("whole") / "r.csv"
    process = start(path)
    assert process.wait(timeout=120) == 0, path.with_suffix(".log").read_text()
    assert len(assert_intact(path, TOTAL)) == TOTAL
    return path


def test_kill_9_then_ctrl_c_then_resume(uninterrupted: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    kept = b""
    rng = random.Random(SEED)

    def stopped(process: subprocess.Popen[bytes], at: int, signum: int) -> pd.DataFrame:
        nonlocal kept
        wait_for_rows(path, process, at)
        code = stop(process, signum)
        expected = -signal.SIGKILL if signum == signal.SIGKILL else 130
        assert code == expected, path.with_suffix(".log").read_text()
        frame = assert_intact(path, at)
        data = path.read_bytes()
        assert data.startswith(kept), "a resumed run changed rows it had been given"
        kept = data
        return frame

    first = stopped(start(path), 2, signal.SIGKILL)
    at = rng.randint(len(first) + 3, TOTAL - 8)
    second = stopped(start(path, "--resume"), at, signal.SIGKILL)
    stopped(start(path, "--resume"), len(second) + 2, signal.SIGINT)
    sidecar = json.loads(Path(f"{path}.json").read_text())
    assert sidecar["interrupted"] is True  # its row count: see the test after this one
    assert "interrupted" in path.with_suffix(".log").read_text()

    last = start(path, "--resume")
    assert last.wait(timeout=120) == 0, path.with_suffix(".log").read_text()
    final = assert_intact(path, TOTAL)
    assert path.read_bytes().startswith(kept)
    assert sorted(keys(final)) == sorted(keys(read_results(uninterrupted)))


def test_a_torn_last_row_is_not_read_as_a_row(uninterrupted: Path, tmp_path: Path) -> None:
    """The state a kill in the middle of writing a long row leaves: no final newline."""
    data = uninterrupted.read_bytes()
    cut = data.rindex(b";", 0, len(data) - 1)  # inside the last row's samples_ms
    torn = tmp_path / "torn.csv"
    torn.write_bytes(data[:cut])
    frame = read_results(torn)
    assert len(frame) == TOTAL - 1


def test_ctrl_c_during_a_rows_fsync_counts_the_row_the_file_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from deconvbench import cli
    from deconvbench.cli import run as cli_run
    from deconvbench.results.writer import ResultWriter

    real_sync = ResultWriter._sync
    calls = {"n": 0}

    def sync_then_interrupt(self: ResultWriter) -> None:
        real_sync(self)
        calls["n"] += 1
        if calls["n"] == 3:  # the header's sync, the first row's, then the second row's
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of the write

    monkeypatch.setattr(ResultWriter, "_sync", sync_then_interrupt)
    monkeypatch.setattr(cli_run, "calibrate_peaks_with_reasons", lambda d, t, n: ({}, {}))
    path = tmp_path / "r.csv"
    args = [*ARGS[:3], "--case", CASES[0], "--pass", "forward", *ARGS[-6:], "-o", str(path)]
    result = CliRunner().invoke(cli.app, args, env={"NO_COLOR": "1"})
    assert result.exit_code == 130, result.output
    assert len(read_results(path)) == 2
    assert json.loads(Path(f"{path}.json").read_text())["rows"] == 2

"""Speedups inside one set of rows (``analysis/speedups.py``): the baseline rule, and
``compare RESULTS --baseline-impl``."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvbench.analysis.report import speedup_matrix
from deconvbench.analysis.speedups import default_baseline, row_speedups, speedups
from deconvbench.errors import InputError

from helpers import frame, row


def test_speedups_over_a_baseline_strategy(tmp_path: Path) -> None:
    rows = [
        row("torch-cpu/native", samples=[2.0] * 5),
        row("numpy/direct", samples=[4.0] * 5),
        row("numpy/subpixel", samples=[1.0] * 5),
        row("torch-cpu/native", pass_="backward", samples=[6.0] * 5),
        row("numpy/direct", pass_="backward", samples=[3.0] * 5),
        row("numpy/fft", status="mismatch"),
        row("numpy/direct", case="other", samples=[1.0] * 5),
    ]
    table = speedups(frame(tmp_path, rows), "torch-cpu/native")
    got = {(s.implementation, s.pass_): s.speedup for s in table.rows}
    assert got == {
        ("torch-cpu/native", "forward"): 1.0,
        ("numpy/direct", "forward"): 0.5,
        ("numpy/subpixel", "forward"): 2.0,
        ("torch-cpu/native", "backward"): 1.0,
        ("numpy/direct", "backward"): 2.0,
    }
    assert table.geomeans["numpy/direct"] == (pytest.approx(1.0), 2)
    assert table.geomeans["numpy/subpixel"] == (2.0, 1)
    assert table.cases_without_baseline == ("smoke/other forward float32",)
    assert table.rows[1].record()["pass"] == "forward"


def test_speedups_name_the_strategies_present_when_the_baseline_is_absent(tmp_path: Path) -> None:
    data = frame(tmp_path, [row("numpy/direct", samples=[1.0] * 5)])
    with pytest.raises(InputError, match="no torch-cpu/native rows; present: numpy/direct"):
        speedups(data, "torch-cpu/native")


def test_one_default_baseline_rule_for_the_run_table_and_the_report(tmp_path: Path) -> None:
    """A plugin's ``foo/native`` on the CPU sorts before ``torch-cpu/native``; torch's stays
    the default baseline, the same in the run's table (rows from the run) and in ``report``
    (rows from the file), even in a case where torch's native failed."""
    rows = [
        row("torch-cpu/native", samples=[2.0] * 5),
        row("foo/native", samples=[4.0] * 5),
        row("numpy/direct", samples=[1.0] * 5),
        row("torch-cpu/native", case="broken", status="error"),
        row("foo/native", case="broken", samples=[4.0] * 5),
        row("numpy/direct", case="broken", samples=[1.0] * 5),
    ]
    assert default_baseline("cpu", rows) == "torch-cpu/native"
    assert default_baseline("cpu", rows[1:2]) == "foo/native"  # without torch's: the first
    assert default_baseline("cuda", rows) is None
    in_run = {
        (r["case"], r["implementation"]): (s.baseline, s.speedup)
        for r, s in zip(rows, row_speedups(rows), strict=True)
    }
    assert in_run["2d-k4-s2", "numpy/direct"] == ("torch-cpu/native", 2.0)
    assert in_run["broken", "numpy/direct"] == ("torch-cpu/native", None)
    matrix = speedup_matrix(frame(tmp_path, rows))
    assert matrix.loc["numpy/direct", "2d-k4-s2 forward"] == 2.0
    assert matrix.loc["foo/native", "2d-k4-s2 forward"] == 0.5
    assert "broken forward" not in matrix.columns  # no torch-cpu/native result there


def test_a_speedup_needs_both_times_positive_and_finite() -> None:
    rows = [
        row("torch-cpu/native", samples=[2.0] * 5, median_ms=0.0),
        row("numpy/direct", samples=[1.0] * 5),
    ]
    assert [s.speedup for s in row_speedups(rows)] == [None, None]
    assert [s.baseline for s in row_speedups(rows)] == ["torch-cpu/native"] * 2

"""Speedups inside one results file (``deconvbench/speedups.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_compare import frame, row

from deconvbench.errors import InputError
from deconvbench.speedups import speedups


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

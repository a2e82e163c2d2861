"""`report`: best per case, speedup matrix, unstable rows, roofline points and PNG plots."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.analysis import report
from deconvbench.errors import InputError
from deconvbench.results.reader import read_results
from deconvbench.results.writer import ResultWriter

from helpers import row


def _file(tmp_path: Path) -> Path:
    rows = [
        row("torch-cpu/native", case="a", samples=[2.0] * 8, gflops=10.0, peak_fraction=0.1),
        row("numpy/subpixel", case="a", samples=[1.0] * 8, gflops=20.0, peak_fraction=0.2),
        row("numpy/direct", case="a", samples=[0.5] * 8, status="mismatch"),  # never a result
        row("torch-cpu/native", case="b", kernel=(2, 2), samples=[1.0] * 8, gflops=5.0),
        row("numpy/subpixel", case="b", kernel=(2, 2), samples=[4.0] * 8, gflops=1.0,
            message="unstable: stddev is 30% of the mean"),
    ]  # fmt: skip
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as writer:
        for r in rows:
            r.update(ci_low_ms=r["median_ms"], ci_high_ms=r["median_ms"])
            writer.write(r)
    return path


def test_best_per_case_ignores_mismatches(tmp_path: Path) -> None:
    best = report.best_per_case(read_results(_file(tmp_path)))
    assert list(best["implementation"]) == ["numpy/subpixel", "torch-cpu/native"]
    assert list(best["case"]) == ["a", "b"]


def test_speedup_matrix_against_native(tmp_path: Path) -> None:
    frame = read_results(_file(tmp_path))
    matrix = report.speedup_matrix(frame)
    assert matrix.loc["numpy/subpixel", "a forward"] == pytest.approx(2.0)
    assert matrix.loc["numpy/subpixel", "b forward"] == pytest.approx(0.25)
    assert matrix.loc["torch-cpu/native", "a forward"] == pytest.approx(1.0)
    assert "numpy/direct" not in matrix.index
    named = report.speedup_matrix(frame, "numpy/subpixel")
    assert named.loc["torch-cpu/native", "b forward"] == pytest.approx(4.0)
    with pytest.raises(InputError, match="no ok rows"):
        report.speedup_matrix(frame, "numba/tiled")


def test_unstable_rows(tmp_path: Path) -> None:
    unstable = report.unstable_rows(read_results(_file(tmp_path)))
    assert list(unstable["implementation"]) == ["numpy/subpixel"]
    assert list(unstable["case"]) == ["b"]


def test_roofline_points_use_the_problem_model(tmp_path: Path) -> None:
    frame = read_results(_file(tmp_path))
    points = report.roofline(frame)
    assert len(points) == 4
    first = points[0]
    # 2·N·Cin·Cout·∏I·∏K over 4 bytes × (x + w + b + y) elements
    flops = 2 * 2 * 8 * 8 * 64 * 16
    elements = 2 * 8 * 64 + 8 * 8 * 16 + 8 + 2 * 8 * 256
    assert math.isclose(first.intensity, flops / (4 * elements))
    assert report.swept_parameters(frame) == ["kernel"]


def test_report_command_and_plots(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        cli.app, ["report", str(_file(tmp_path)), "--plot", str(plots)],
        env={"NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "fastest per case" in result.stdout and "unstable rows" in result.stdout
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["roofline.png", "speedup-heatmap.png", "time-vs-kernel.png"]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


def test_plots_without_matplotlib_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(
        cli.app, ["report", str(_file(tmp_path)), "--plot", str(tmp_path / "p")]
    )
    assert result.exit_code == 2 and "deconvbench[plot]" in result.stderr


def test_bad_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["report", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "no such file" in result.stderr

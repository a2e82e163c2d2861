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

from helpers import Row, frame, row


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


def test_report_command_and_plots(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    result = CliRunner().invoke(
        cli.app, ["report", str(_file(tmp_path)), "--plot", str(plots)],
        env={"NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "fastest per case" in result.stdout and "unstable rows" in result.stdout
    _assert_pngs(plots, ["roofline.png", "speedup-heatmap.png"])  # two kernels: no sweep


def _assert_pngs(folder: Path, names: list[str]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == names
    for p in folder.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000


def test_report_plots_a_sweep_along_its_axis(tmp_path: Path) -> None:
    rows = _stride_sweep(["torch-cpu/native", "numpy/subpixel", "numpy/direct"])
    path = tmp_path / "sweep.csv"
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    plots = tmp_path / "plots"
    result = CliRunner().invoke(cli.app, ["report", str(path), "--plot", str(plots)])
    assert result.exit_code == 0, result.stderr
    _assert_pngs(plots, ["roofline.png", "speedup-heatmap.png", "time-vs-stride.png"])


# --- the panels of the time plots ------------------------------------------------------------


def _stride_sweep(impls: list[str], strides: tuple[int, ...] = (1, 2, 3)) -> list[Row]:
    """Kernels 3 and 4 × ``strides``: strategy i takes (i + 1) · stride ms."""
    return [
        row(impl, case=f"k{k}-s{s}", kernel=(k, k), stride=(s, s), padding=(0, 0),
            samples=[(i + 1.0) * s] * 5)
        for k in (3, 4) for s in strides for i, impl in enumerate(impls)
    ]  # fmt: skip


def test_a_stride_sweep_gives_one_panel_per_fixed_group(tmp_path: Path) -> None:
    impls = ["numpy/subpixel", "numpy/direct", "torch-cpu/native"]
    panels = report.sweep_panels(frame(tmp_path, _stride_sweep(impls)))
    assert [p.axis for p in panels] == ["stride", "stride"]  # kernel takes 2 values: no panel
    assert [dict(p.fixed)["kernel"] for p in panels] == ["3x3", "4x4"]
    assert all(dict(p.fixed)["in_channels"] == "8" and "stride" not in dict(p.fixed)
               for p in panels)  # fmt: skip
    first = panels[0]
    assert first.values == ("1x1", "2x2", "3x3")
    assert [line.implementation for line in first.lines] == impls  # fastest first
    assert first.lines[1].points == (("1x1", 2.0), ("2x2", 4.0), ("3x3", 6.0))
    assert first.lines[1].score == pytest.approx(2.0)
    assert first.baseline == "torch-cpu/native" and first.left_out == 0
    two = report.sweep_panels(frame(tmp_path, _stride_sweep(impls, (1, 2)), "two.csv"))
    assert two == []  # two points give one ratio, not a trend


def test_passes_and_dtypes_get_panels_of_their_own(tmp_path: Path) -> None:
    rows = _stride_sweep(["numpy/direct"]) + [
        {**r, "pass": "backward"} for r in _stride_sweep(["numpy/direct"])
    ]
    panels = report.sweep_panels(frame(tmp_path, rows))
    assert [(dict(p.fixed)["kernel"], dict(p.fixed)["pass"]) for p in panels] == [
        ("3x3", "forward"), ("4x4", "forward"), ("3x3", "backward"), ("4x4", "backward"),
    ]  # fmt: skip


def test_layers_that_differ_in_everything_give_no_panel(tmp_path: Path) -> None:
    layers = [  # the dcgan generator: every case changes channels, input and more
        dict(in_channels=100, out_channels=512, input=(1, 1), stride=(1, 1), padding=(0, 0)),
        dict(in_channels=512, out_channels=256, input=(4, 4)),
        dict(in_channels=256, out_channels=128, input=(8, 8)),
        dict(in_channels=128, out_channels=64, input=(16, 16)),
        dict(in_channels=64, out_channels=3, input=(32, 32)),
    ]
    rows = [
        row(impl, case=f"g{n}", samples=[1.0 + n] * 5, **layer)
        for n, layer in enumerate(layers)
        for impl in ("numpy/direct", "torch-cpu/native")
    ]
    assert report.sweep_panels(frame(tmp_path, rows)) == []


def test_a_panel_draws_the_fastest_few_and_the_native(tmp_path: Path) -> None:
    impls = [f"numpy/s{i:02d}" for i in range(11)] + ["torch-cpu/native"]  # native slowest
    rows = _stride_sweep(impls)
    (panel, _) = report.sweep_panels(frame(tmp_path, rows))
    drawn = [line.implementation for line in panel.lines]
    assert drawn == [*impls[:7], "torch-cpu/native"] and panel.left_out == 4
    assert panel.baseline == "torch-cpu/native"
    (named, _) = report.sweep_panels(frame(tmp_path, rows, "n.csv"), "numpy/s09", max_lines=3)
    assert [line.implementation for line in named.lines] == [*impls[:2], "numpy/s09"]
    (fast, _) = report.sweep_panels(frame(tmp_path, rows, "f.csv"), "numpy/s00", max_lines=3)
    assert [line.implementation for line in fast.lines] == impls[:3]  # no slot wasted


def test_a_strategy_missing_points_is_ranked_on_the_ones_it_has(tmp_path: Path) -> None:
    rows = _stride_sweep(["numpy/direct", "numpy/subpixel"])
    rows = [r for r in rows if r["implementation"] == "numpy/direct" or r["case"] == "k3-s3"]
    rows.append(row("numpy/subpixel", case="k3-s3b", kernel=(3, 3), stride=(3, 3),
                    padding=(0, 0), samples=[4.0] * 5))  # fmt: skip
    panel = report.sweep_panels(frame(tmp_path, rows))[0]
    # subpixel: 6 and 4 ms at stride 3 (two rows: their median, 5) against direct's 3 ms
    assert [line.implementation for line in panel.lines] == ["numpy/direct", "numpy/subpixel"]
    assert panel.lines[1].points == (("3x3", 5.0),)
    assert panel.lines[1].score == pytest.approx(5.0 / 3.0)
    assert panel.baseline is None  # no native measured


def test_axis_positions_and_speed_order(tmp_path: Path) -> None:
    assert report.axis_position("8x8") == pytest.approx(8.0)
    assert report.axis_position("8x32") == pytest.approx(16.0)
    assert report.axis_position(64) == 64.0
    matrix = report.speedup_matrix(read_results(_file(tmp_path)))
    # subpixel: 2 and 0.25 (geomean 0.71) < native: 1 and 1
    assert list(report.by_speed(matrix).index) == ["torch-cpu/native", "numpy/subpixel"]


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


def test_the_roofline_has_a_roof_per_peak(tmp_path: Path) -> None:
    from deconvbench.cli.report import _peaks
    from deconvbench.results.sidecar import write_sidecar

    path = _file(tmp_path)
    assert _peaks(path) == {}  # no sidecar
    write_sidecar(path, {"peaks": {"cpu/float32": 204.0}})  # an older sidecar
    assert _peaks(path) == {"measured peak cpu/float32": 204.0}
    write_sidecar(path, {
        "peaks": {"cpu/float32": 215.0}, "peaks_measured": {"cpu/float32": 215.0},
        "peaks_theoretical": {"cpu/float32": {"gflops": 166.0}, "cpu/float16": {"gflops": None}},
    })  # fmt: skip
    assert _peaks(path) == {
        "measured peak cpu/float32": 215.0, "theoretical peak cpu/float32": 166.0
    }  # fmt: skip
    plots = tmp_path / "plots"
    result = CliRunner().invoke(cli.app, ["report", str(path), "--plot", str(plots)])
    assert result.exit_code == 0, result.stderr
    assert (plots / "roofline.png").exists()

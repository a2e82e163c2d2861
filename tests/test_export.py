"""``deconvbench export``: a run's rows as series for github-action-benchmark and Bencher, in the
shapes their documentation gives (docs/ci.md, history tracking)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.analysis.compare import Threshold, compare_frames
from deconvbench.analysis.export import series_of_frame
from deconvbench.cli import export as _export  # noqa: F401  # registers the command
from deconvbench.results.writer import ResultWriter

from helpers import drifting_rounds, frame, noise, row

GAB_KEYS = {"name", "unit", "value", "range", "extra"}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli.app, list(args), catch_exceptions=False, env={"NO_COLOR": "1", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def _rows() -> list[dict[str, object]]:
    rng = np.random.default_rng(7)
    rounds, sizes = drifting_rounds(rng, rounds=3, n=12)
    return [
        row("numpy/direct", samples=noise(rng, 30), rounds=1),
        row("numpy/direct", pass_="backward", samples=rounds, rounds=3, round_samples=sizes),
        row("numpy/fft", samples=[1.0, 1.1, 1.2]),  # too few samples for an interval
        row("numpy/subpixel", status="mismatch"),
        row("numpy/gemm-col2im", status="unsupported"),
        row("torch-cpu/native", status="unsupported"),
    ]


def _write(tmp_path: Path, rows: list[dict[str, object]], name: str = "r.csv") -> Path:
    path = tmp_path / name
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    return path


def test_github_action_benchmark_is_the_custom_smaller_is_better_shape(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows())
    code, out, err = invoke("export", str(path), "--format", "github-action-benchmark")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 3
    for entry in data:
        assert {"name", "unit", "value"} <= set(entry) <= GAB_KEYS
        assert isinstance(entry["name"], str) and entry["unit"] == "ms"
        assert isinstance(entry["value"], float) and entry["value"] > 0
        assert isinstance(entry.get("range", ""), str) and isinstance(entry["extra"], str)
    names = [e["name"] for e in data]
    assert names == [
        "smoke/2d-k4-s2 numpy/direct forward float32",
        "smoke/2d-k4-s2 numpy/direct backward float32",
        "smoke/2d-k4-s2 numpy/fft forward float32",
    ]
    assert data[0]["range"].startswith("± ") and "range" not in data[2]
    assert "fastest of 3 rounds' medians" in data[1]["extra"]
    assert data[2]["value"] == pytest.approx(1.1)
    # non-ok rows: left out and counted on stderr
    assert "left out 3 rows without a time (1 mismatch, 2 unsupported)" in " ".join(err.split())


def test_bencher_is_the_bencher_metric_format(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows())
    code, out, err = invoke("export", str(path), "--format", "bencher")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict) and len(data) == 3
    for name, measures in data.items():
        assert isinstance(name, str) and set(measures) == {"latency"}
        latency = measures["latency"]
        assert {"value"} <= set(latency) <= {"value", "lower_value", "upper_value"}
        assert all(isinstance(v, float) and math.isfinite(v) for v in latency.values())
        if "lower_value" in latency:
            assert latency["lower_value"] <= latency["value"] <= latency["upper_value"]
    # the latency measure is in nanoseconds
    fft = data["smoke/2d-k4-s2 numpy/fft forward float32"]["latency"]
    assert fft == {"value": pytest.approx(1.1e6)}  # 3 samples: no 95% interval
    gab = json.loads(invoke("export", str(path), "--format", "github-action-benchmark")[1])
    for entry in gab:
        assert data[entry["name"]]["latency"]["value"] == pytest.approx(entry["value"] * 1e6)


def test_the_value_is_the_time_compare_judges_a_row_by(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(6):
        samples, sizes = drifting_rounds(rng, rounds=3, n=10, burst=0.5)
        rows.append(row(f"numpy/s{i}", samples=samples, rounds=3, round_samples=sizes))
    rows.append(row("numpy/flat", samples=noise(rng, 20)))
    data = frame(tmp_path, rows)
    points = {p.name: p for p in series_of_frame(data).points}
    judged = compare_frames(data, data, Threshold("median", 0.05)).rows
    assert len(judged) == len(points) == 7
    for r in judged:
        p = points[f"{r.suite}/{r.case} {r.implementation} {r.pass_} {r.dtype}"]
        assert p.value_ms == pytest.approx(r.baseline_ms)
        assert p.low_ms is not None and p.high_ms is not None
        assert p.low_ms <= p.value_ms <= p.high_ms
    # with rounds, the fastest round's median, not the median of every sample
    first = rows[0]
    pooled = float(np.median(first["samples_ms"]))  # type: ignore[arg-type]
    fastest = min(
        float(np.median(first["samples_ms"][k : k + 10]))  # type: ignore[index]
        for k in (0, 10, 20)
    )
    assert points["smoke/2d-k4-s2 numpy/s0 forward float32"].value_ms == pytest.approx(fastest)
    assert fastest <= pooled


def test_output_file_is_written_and_never_clobbered(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows())
    out = tmp_path / "bench.json"
    code, stdout, err = invoke("export", str(path), "--format", "bencher", "-o", str(out))
    assert code == 0 and stdout == "", err
    assert len(json.loads(out.read_text())) == 3
    out.write_text("keep")
    code, _, err = invoke("export", str(path), "--format", "bencher", "-o", str(out))
    assert code == 2 and "--overwrite" in err and out.read_text() == "keep"
    code, _, err = invoke("export", str(path), "--format", "bencher", "-o", str(out), "--overwrite")
    assert code == 0 and len(json.loads(out.read_text())) == 3


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        ("missing", ["--format", "bencher"], "no such file"),
        ("text", ["--format", "bencher"], "not a deconvbench results file"),
        ("ok", ["--format", "junit"], "--format: expected one of github-action-benchmark"),
        ("duplicated", ["--format", "bencher"], "two rows for"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, setup: str, args: list[str], fragment: str
) -> None:
    path = tmp_path / "r.csv"
    if setup == "text":
        path.write_text("a,b\n1,2\n")
    elif setup == "ok":
        _write(tmp_path, _rows())
    elif setup == "duplicated":
        first = _write(tmp_path, [row(samples=[1.0] * 5)], "a.csv").read_text()
        path.write_text(first + first.split("\n", 1)[1])
    out = tmp_path / "out.json"
    code, _, err = invoke("export", str(path), *args, "-o", str(out))
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_missing_format_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _rows())
    monkeypatch.setattr("sys.argv", ["deconvbench", "export", str(path)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Missing option '--format'" in err and len(err.strip().splitlines()) == 1, err

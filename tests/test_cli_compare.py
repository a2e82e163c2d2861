"""`deconvbench compare` through typer's CliRunner on real results files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.results.writer import ResultWriter

from helpers import Row, noise, row


def write(path: Path, rows: list[Row]) -> Path:
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    return path


def rows(seed: int, scale: float = 1.0, status: str = "ok") -> list[Row]:
    rng = np.random.default_rng(seed)
    out = []
    for impl in ("numpy/direct", "numpy/subpixel", "torch-cpu/native"):
        for pass_ in ("forward", "backward"):
            s = status if impl == "numpy/direct" else "ok"
            samples = noise(rng, 30, 0.01, scale) if s == "ok" else None
            out.append(row(impl, pass_=pass_, samples=samples, status=s))
    return out


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "base": write(tmp_path / "base.csv", rows(1)),
        "same": write(tmp_path / "same.csv", rows(1)),
        "slow": write(tmp_path / "slow.csv", rows(2, 1.3)),
        "broken": write(tmp_path / "broken.csv", rows(3, status="mismatch")),
    }


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli.app, list(args), catch_exceptions=False, env={"NO_COLOR": "1", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def test_identical_files_pass(files: dict[str, Path]) -> None:
    code, out, _ = invoke("compare", str(files["base"]), str(files["same"]))
    assert code == 0 and "regressed" not in out.split("unchanged")[0].lower()


def test_slowdown_fails_the_gate_unless_no_fail(files: dict[str, Path]) -> None:
    code, out, _ = invoke("compare", str(files["base"]), str(files["slow"]), "--format", "json")
    assert code == 1
    verdicts = {r["verdict"] for r in json.loads(out)["rows"]}
    assert verdicts == {"regressed"}
    code, _, _ = invoke("compare", str(files["base"]), str(files["slow"]), "--no-fail")
    assert code == 0


def test_ok_to_mismatch_is_failed(files: dict[str, Path]) -> None:
    code, out, _ = invoke("compare", str(files["base"]), str(files["broken"]), "--format", "csv")
    assert code == 1 and "failed" in out


def test_markdown_for_pull_requests(files: dict[str, Path]) -> None:
    code, out, _ = invoke("compare", str(files["base"]), str(files["same"]), "--format", "markdown")
    assert code == 0 and out.lstrip().startswith("#") and "|" in out


def test_speedups_inside_one_run(files: dict[str, Path]) -> None:
    code, out, _ = invoke("compare", str(files["base"]), "--baseline-impl", "torch-cpu/native")
    assert code == 0 and "numpy/subpixel" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--threshold", "5"], "threshold"),
        (["--alpha", "2"], "alpha"),
        (["--format", "xml"], "format"),
        (["--normalize", "max"], "normalize"),
    ],
)
def test_bad_options_exit_2(files: dict[str, Path], args: list[str], fragment: str) -> None:
    code, _, err = invoke("compare", str(files["base"]), str(files["same"]), *args)
    assert code == 2 and fragment in err and "Traceback" not in err


def test_bad_files_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("not,a,results\nfile\n")
    for args in (
        [str(files["base"]), str(tmp_path / "missing.csv")],
        [str(files["base"]), str(garbage)],
        [str(files["base"])],
    ):
        code, _, err = invoke("compare", *args)
        assert code == 2 and err.startswith("deconvbench: error:"), (args, err)
    assert garbage.read_text() == "not,a,results\nfile\n"

"""``deconvbench conformance``: the shipped conformance suite, on built-in strategies and on a
plugin with bugs, whose minimal ``--case`` reproduces the failure under ``verify``."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconvbench import cli, registry
from deconvbench.cli import conformance as cli_conformance  # registers the command
from deconvbench.conformance.engine import candidates, check, run_suite
from deconvbench.conformance.space import (
    EDGE_CASES,
    REDUCED_PRECISION,
    sample_problems,
    suite_problems,
)

TESTS = Path(__file__).resolve().parent
CASE_LINE = re.compile(r"^FAIL (\S+) (forward|backward) (\w+) .*\n.*\n  --case (\S+)$", re.M)


def main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``deconvbench ARGS`` through the console script's entry (typer's usage errors as one
    line); (code, out, err)."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(sys, "argv", ["deconvbench", *args])
    try:
        with pytest.raises(SystemExit) as ended:
            cli.main()
    finally:
        monkeypatch.undo()
    out, err = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out, err


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli.app, list(args), catch_exceptions=False, env={"NO_COLOR": "1", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def buggy_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``tests/buggy_backend.py`` installed as a plugin distribution's entry point ``buggy``."""
    site = tmp_path / "site"
    dist = site / "buggy_backend-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: buggy-backend\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{registry.GROUP}]\nbuggy = buggy_backend:strategies\n"
    )
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.syspath_prepend(str(site))
    registry.strategies.cache_clear()
    yield
    registry.strategies.cache_clear()


def test_the_command_is_registered_by_its_module() -> None:
    assert cli_conformance.conformance.__name__ == "conformance"
    code, out, _ = invoke("conformance", "--help")
    assert code == 0 and "GLOB..." in out and "--examples N" in out and "--seed S" in out


def test_builtin_strategies_pass_and_each_is_summarised() -> None:
    code, out, err = invoke("conformance", "numpy/direct", "numpy/sub*", "--examples", "3")
    assert code == 0, out + err
    problems = len(suite_problems(3, 0))
    for name in ("numpy/direct", "numpy/subpixel", "numpy/subpixel-fused"):
        assert (
            f"{name}: {problems} problems × 2 passes × 2 dtypes (float32, float64): "
            f"{problems * 4} checked, all correct"
        ) in out, out
    assert "FAIL" not in out
    assert "3 strategies checked, all correct" in err


def test_every_declared_dtype_is_checked() -> None:
    code, out, err = invoke("conformance", "torch-cpu/native", "-n", "2", "--seed", "7")
    assert code == 0, out + err
    assert "× 4 dtypes (float32, float64, float16, bfloat16)" in out


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["nothing/*"], "GLOB 'nothing/*'"),
        (["numpy/direct", "--examples", "-1"], "--examples"),
        (["numpy/direct", "--examples", "many"], "--examples"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = main(["conformance", *args], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("deconvbench: error: ") and word in err, err


def test_nothing_is_written_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, _ = invoke("conformance", "numpy/direct", "-n", "2")
    assert code == 0 and list(here.iterdir()) == []


def test_a_buggy_plugin_fails_with_minimal_cases_that_verify_reproduces(
    buggy_plugin: None,
) -> None:
    code, out, err = invoke("conformance", "buggy/*", "--examples", "5")
    assert code == 1, out + err
    assert "buggy/correct: " in out and re.search(r"buggy/correct: .* all correct", out)
    assert re.search(r"buggy/groups: .* \d+ FAILED", out)
    assert "2 failed (buggy/groups, buggy/output-padding)" in err
    found = CASE_LINE.findall(out)
    assert {(name, pass_) for name, pass_, _, _ in found} == {
        (name, pass_)
        for name in ("buggy/groups", "buggy/output-padding")
        for pass_ in ("forward", "backward")
    }, out
    for name, pass_, dtype, case in found:
        assert f"reproduce: deconvbench verify --case {case} -i {name} --pass {pass_}" in out
        assert (dtype == "float32") == ("dtype=" not in case)
        code, shown, err = invoke("verify", "--case", case, "-i", name, "--pass", pass_)
        assert code == 1 and "mismatch" in shown.lower(), (case, shown, err)
        code, shown, err = invoke("verify", "--case", case, "-i", "numpy/direct", "--pass", pass_)
        assert code == 0, (case, shown, err)  # the case is right, the strategy is not
    groups = {case for name, _, _, case in found if name == "buggy/groups"}
    # groups=2 of one channel each: the smallest problem where the first group's weights
    # differ from the second's
    assert "in_channels=2,out_channels=2,input=1x1,kernel=1,groups=2" in groups, groups
    padding = {case for name, _, _, case in found if name == "buggy/output-padding"}
    assert all("output_padding=" in case and "batch=" not in case for case in padding), padding


def test_a_shrunk_failure_is_minimal_one_parameter_at_a_time(buggy_plugin: None) -> None:
    strategy = registry.get("buggy/output-padding")
    report = run_suite(strategy, examples=5, seed=3)
    assert not report.ok and report.failed >= len(report.failures) > 0
    for failure in report.failures:
        assert not check(strategy, failure.minimal, failure.pass_).ok
        for smaller in candidates(failure.minimal):
            outcome = check(strategy, smaller, failure.pass_)
            assert outcome.ok or outcome.kind != "mismatch", (failure.case, smaller)


def test_the_random_problems_are_seeded_and_cover_the_space() -> None:
    assert sample_problems(30, seed=5) == sample_problems(30, seed=5)
    assert sample_problems(30, seed=5) != sample_problems(30, seed=6)
    sample = sample_problems(200)
    assert {p.ndim for p in sample} == {1, 2, 3}
    assert {p.dtype for p in sample} == {"float32", "float64"}
    assert any(p.groups > 1 for p in sample) and any(p.bias for p in sample)
    assert any(any(op > 0 for op in p.output_padding) for p in sample)
    items = suite_problems(10, 0, dims=(2,))
    assert all(i.problem.ndim == 2 and i.problem.dtype == "float32" for i in items)
    assert items[0].label == "edge case '1x1-input'"
    labels = [i.label for i in items]
    assert "edge case 'reduced-precision'" in labels and "random problem 1" in labels
    assert REDUCED_PRECISION not in EDGE_CASES.values()

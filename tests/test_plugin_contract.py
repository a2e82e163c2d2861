"""The plugin contract, enforced (docs/plugins.md): plugins installed through real entry points
(fake distributions on sys.path) that break a rule get a row or a placeholder that says so.

The fixture plugins are in ``faulty_backend.py``: ``contract/*`` (results and inputs),
``impostor``, ``misnamed``, ``dup`` and ``good`` (the registry's rules).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import deconvbench as db
from deconvbench import cli, env, registry
from deconvbench.cases.case import Case
from deconvbench.cli import run as cli_run
from deconvbench.env import plugins as env_plugins
from deconvbench.harness.inputs import Inputs, make_inputs
from deconvbench.harness.verify import (
    InputsModified,
    check_inputs_unchanged,
    compare_results,
    copy_inputs,
    expected,
    verify,
)
from deconvbench.problem import Pass, Problem
from deconvbench.results.row import ResultRow
from deconvbench.run.loop import execute, plan
from deconvbench.run.types import NullSink, RunFacts, RunOptions

PROBLEM = Problem.create(
    batch=1, in_channels=2, out_channels=3, input=(4, 5), kernel=3, stride=2, padding=1, bias=True
)
CASE_SPEC = "batch=1,in_channels=2,out_channels=2,input=5x5,kernel=3,stride=2,padding=1"


def install(where: Path, name: str, entry_points: dict[str, str], version: str = "0.1.0") -> Path:
    """What `pip install` leaves behind that importlib.metadata reads: a dist-info folder."""
    dist = where / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}")
    return dist


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every fixture plugin installed (its modules are importable: tests/ is on sys.path)."""
    install(tmp_path, "deconvbench-contract", {"contract": "faulty_backend:contract_strategies"})
    install(tmp_path, "deconvbench-good", {"good": "faulty_backend:good_strategies"}, "2.3.4")
    install(
        tmp_path,
        "deconvbench-rogues",
        {
            "impostor": "faulty_backend:impostor_strategies",
            "misnamed": "faulty_backend:misnamed_strategies",
            "dup": "faulty_backend:duplicate_strategies",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # before deconvbench's own metadata
    registry.strategies.cache_clear()
    yield tmp_path
    registry.strategies.cache_clear()  # the next user rediscovers without these plugins


def rows_of(impl: str, passes: tuple[Pass, ...], verify_only: bool) -> list[ResultRow]:
    options = RunOptions(budget_s=0.02, min_samples=3, threads=1, verify_only=verify_only)
    tasks = plan([Case("contract", "small", PROBLEM, passes)], [registry.get(impl)], options)
    return execute(tasks, options, NullSink(), None, RunFacts.create())


# --- results: the problem's dtype, a tuple --------------------------------------------------


def test_float64_results_for_a_float32_problem_are_a_mismatch(plugins: Path) -> None:
    strategy = registry.get("contract/float64-results")
    for pass_ in ("forward", "backward"):
        checked = verify(strategy, PROBLEM, pass_)
        assert not checked.ok, pass_
        assert "dtype float64, expected float32" in checked.message
    rows = rows_of("contract/float64-results", ("forward", "backward"), verify_only=True)
    assert [r["status"] for r in rows] == ["mismatch", "mismatch"]
    assert "output: dtype float64, expected float32" in str(rows[0]["message"])
    assert "grad_input: dtype float64, expected float32" in str(rows[1]["message"])


def test_bfloat16_results_are_float32_and_nothing_else() -> None:
    problem = Problem.create(
        batch=1, in_channels=2, out_channels=2, input=3, kernel=2, stride=2, dtype="bfloat16"
    )
    inputs = make_inputs(problem)
    want = expected(problem, "forward", inputs)
    assert want[0] is not None
    stored = (want[0].astype(np.float32),)
    assert compare_results(problem, "forward", stored, want, inputs).ok
    wide = compare_results(problem, "forward", (want[0],), want, inputs)
    assert not wide.ok
    assert "dtype float64, expected float32 (the problem's dtype, bfloat16's storage" in (
        wide.message
    )


def test_a_bare_array_from_fetch_is_a_mismatch_that_says_so(plugins: Path) -> None:
    checked = verify(registry.get("contract/bare-fetch"), PROBLEM, "forward")
    assert not checked.ok
    assert "fetch returned a ndarray of shape (1, 3, 7, 9), not a tuple of 1 (output)" in (
        checked.message
    )


# --- inputs are not written into -------------------------------------------------------------


def test_writing_into_inputs_fails_verify(plugins: Path) -> None:
    strategy = registry.get("contract/writes-inputs")
    with pytest.raises(InputsModified, match=r"x, weight changed during one call"):
        verify(strategy, PROBLEM, "forward")
    with pytest.raises(InputsModified, match=r"grad_output, x changed during one call"):
        verify(strategy, PROBLEM, "backward")


def test_writing_into_inputs_is_an_error_row_not_a_time(plugins: Path) -> None:
    for verify_only in (True, False):
        rows = rows_of("contract/writes-inputs", ("forward", "backward"), verify_only)
        assert [r["status"] for r in rows] == ["error", "error"]
        message = str(rows[0]["message"])
        assert message.startswith("InputsModified: contract/writes-inputs wrote into its inputs")
        assert "(x, weight changed during verification)" in message
        assert rows[0]["median_ms"] is None


def test_writing_into_inputs_only_while_timed_is_caught_after_timing(plugins: Path) -> None:
    (verified,) = rows_of("contract/writes-inputs-when-timed", ("forward",), verify_only=True)
    assert verified["status"] == "ok"  # one call: nothing written yet
    (timed,) = rows_of("contract/writes-inputs-when-timed", ("forward",), verify_only=False)
    assert timed["status"] == "error"
    assert "(x, weight changed while it was timed)" in str(timed["message"])
    assert timed["median_ms"] is None


def test_the_input_check_sees_one_element_anywhere_and_a_new_shape(plugins: Path) -> None:
    strategy = registry.get("contract/writes-inputs")
    big = np.zeros((1, 1, 1000, 2101), np.float32)  # past the comparison's first chunks
    bias, gy = np.zeros(3, np.float32), np.zeros(3, np.float32)  # shapes do not matter here
    original = Inputs(big, np.zeros((1, 1, 2, 2), np.float32), bias, gy)
    given = copy_inputs(original)
    check_inputs_unchanged(strategy, "forward", given, original, "here")
    given.x[0, 0, -1, -1] = 1e-30
    with pytest.raises(InputsModified, match=r"\(x changed here\)"):
        check_inputs_unchanged(strategy, "forward", given, original, "here")
    given = copy_inputs(original)
    given.weight.shape = (4,)
    with pytest.raises(InputsModified, match=r"\(weight changed here\)"):
        check_inputs_unchanged(strategy, "forward", given, original, "here")
    given = copy_inputs(original)
    assert given.bias is not None
    given.bias[0] = 1.0
    with pytest.raises(InputsModified, match=r"\(bias changed here\)"):
        check_inputs_unchanged(strategy, "forward", given, original, "here")
    check_inputs_unchanged(strategy, "backward", given, original, "here")  # bias: not handed


def test_the_builtins_meet_the_input_rule() -> None:
    """Every available built-in leaves its inputs alone (verify() would raise), both passes:
    so the rule costs the built-ins nothing, and the check is not a read-only flag that
    torch.from_numpy would warn about."""
    for strategy in registry.strategies():
        if strategy.unavailable_reason() is not None or strategy.name.endswith("compiled"):
            continue
        for pass_ in ("forward", "backward"):
            if strategy.unsupported_reason(PROBLEM, pass_) is None:
                assert verify(strategy, PROBLEM, pass_).ok, (strategy.name, pass_)


# --- the worst element's place ---------------------------------------------------------------


def test_a_mismatch_names_the_worst_element() -> None:
    inputs = make_inputs(PROBLEM)
    want = expected(PROBLEM, "forward", inputs)
    assert want[0] is not None
    got = want[0].astype(np.float32)
    got[0, 2, 5, 3] += 0.5
    checked = compare_results(PROBLEM, "forward", (got,), want, inputs)
    assert not checked.ok
    assert "output: relative error" in checked.message
    assert "max abs err 0.5 at y[0, 2, 5, 3]" in checked.message
    got[0, 1, 1, 1] = np.nan
    checked = compare_results(PROBLEM, "forward", (got,), want, inputs)
    assert "output: non-finite values (first at y[0, 1, 1, 1]: nan)" in checked.message


def test_a_backward_mismatch_names_the_tensor_and_element() -> None:
    inputs = make_inputs(PROBLEM)
    want = expected(PROBLEM, "backward", inputs)
    got = [None if w is None else w.astype(np.float32) for w in want]
    assert got[1] is not None
    got[1][1, 2, 0, 2] -= 1.0
    checked = compare_results(PROBLEM, "backward", tuple(got), want, inputs)
    assert "grad_weight: relative error" in checked.message
    assert "max abs err 1 at grad_weight[1, 2, 0, 2]" in checked.message


# --- the registry: built-ins win, nothing is replaced or dropped silently --------------------


def test_a_plugin_cannot_replace_a_builtin(plugins: Path) -> None:
    info = {i.name: i for i in db.implementations()}
    builtin = registry.get("numpy/direct")
    assert type(builtin).__module__.startswith("deconvbench.backends.numpy_")
    assert info["numpy/direct"].description != "an impostor"
    placeholder = info["impostor/*"]
    assert not placeholder.available
    assert "plugin 'deconvbench-rogues' (entry point impostor" in placeholder.reason
    assert "numpy/direct (Named) declares the built-in backend 'numpy'" in placeholder.reason
    assert info["impostor/direct"].available  # its well-named strategy is kept


def test_builtins_load_first_whatever_the_path_order(plugins: Path) -> None:
    sources = registry._entry_points()
    builtin = [s.builtin for s in sources]
    assert builtin == sorted(builtin, reverse=True) and builtin[0]
    assert any(s.distribution == "deconvbench-rogues" for s in sources)


def test_a_backend_other_than_the_entry_point_name_is_refused(plugins: Path) -> None:
    info = {i.name: i for i in db.implementations()}
    assert "elsewhere/direct" not in info
    assert "declares backend 'elsewhere', but its entry point is named 'misnamed'" in (
        info["misnamed/*"].reason
    )


def test_duplicate_names_in_one_plugin_are_refused(plugins: Path) -> None:
    info = {i.name: i for i in db.implementations()}
    assert "dup/direct" not in info
    assert "dup/direct is returned 2 times; none of them is registered" in info["dup/*"].reason
    assert info["dup/ok"].available
    with pytest.raises(db.Unavailable, match="dup/direct is returned 2 times"):
        db.conv_transpose("dup/*", *_tiny())


def test_a_name_another_distribution_registered_is_refused(
    plugins: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    install(other, "deconvbench-good-fork", {"good": "faulty_backend:good_fork_strategies"})
    monkeypatch.setattr(sys, "path", [*sys.path, str(other)])  # after the first one
    registry.strategies.cache_clear()
    info = {i.name: i for i in db.implementations()}
    assert info["good/direct"].description == "a well-behaved plugin"  # the first one's
    reason = info["good/*"].reason
    assert "plugin 'deconvbench-good-fork'" in reason
    assert "good/direct is already registered by plugin 'deconvbench-good'" in reason


def _tiny() -> tuple[object, object]:
    return np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.float32)


# --- provenance ------------------------------------------------------------------------------


def test_env_records_each_plugin_distribution(plugins: Path) -> None:
    assert env_plugins.GROUP == registry.GROUP
    records = {d["name"]: d for d in env.SECTIONS["plugins"]()["distributions"]}  # type: ignore[attr-defined]
    assert "deconvbench" not in records  # the built-ins are deconvbench's own version
    good = records["deconvbench-good"]
    assert good["version"] == "2.3.4"
    assert good["location"] == str(plugins.resolve())
    assert good["entry_points"] == {"good": "faulty_backend:good_strategies"}
    assert set(records["deconvbench-rogues"]["entry_points"]) == {"impostor", "misnamed", "dup"}


def test_the_sidecar_records_the_plugins(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        cli_run, "calibrate_peaks_with_reasons", lambda d, t, n: ({("cpu", "float32"): 10.0}, {})
    )
    monkeypatch.setenv("NO_COLOR", "1")
    out = tmp_path / "out" / "r.csv"
    result = CliRunner().invoke(
        cli.app,
        ["run", "--case", CASE_SPEC, "--impl", "good/direct", "--pass", "forward", "-o", str(out),
         "--budget", "0.02", "--min-samples", "3", "--rounds", "1"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sidecar = json.loads(Path(f"{out}.json").read_text())
    records = {d["name"]: d for d in sidecar["env"]["plugins"]["distributions"]}
    assert records["deconvbench-good"]["version"] == "2.3.4"
    assert records["deconvbench-good"]["location"] == str(plugins.resolve())

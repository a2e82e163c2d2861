"""``deconvbench plan``: choosing per (problem, device, pass), the plan file, ``plan show``.

The choice is compare's verdict inside one measured case: a strategy replaces torch's native
one only when *improved* against it (beyond the threshold, significant by the rounds test).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.analysis.compare import Threshold
from deconvbench.analysis.plan import PlanSource, make_plan, source_fingerprint
from deconvbench.env.fingerprint import current, differences, fingerprint, for_backends
from deconvbench.errors import InputError
from deconvbench.problem import Problem
from deconvbench.results.plan_file import (
    PLAN_FORMAT_VERSION,
    Plan,
    PlanEntry,
    parse_plan,
    plan_json,
    read_plan,
    write_plan,
)
from deconvbench.results.sidecar import write_sidecar
from deconvbench.results.writer import ResultWriter
from deconvbench.version import VERSION

from helpers import Row, drifting_rounds, frame, row

NATIVE = "torch-cpu/native"
RULE = Threshold("median", 0.05)
ENV: dict[str, object] = {
    "cpu": {"model": "Test CPU", "logical_cores": 4, "vendor": "V", "family": "1",
            "model_number": "2", "stepping": "3"},
    "numpy": {"version": "2.0", "blas": "openblas 0.3"},
    "torch": {"version": "2.13.0+cpu"},
    "numba": {"version": "0.60"},
    "cuda": {"available": False, "devices": None},
    "engines": {"onnx": "1.0", "onnxruntime": "1.32", "jax": None, "jaxlib": None,
                "openvino": "2026.4"},
}  # fmt: skip
FACTS: dict[str, object] = {"env": ENV, "threads": {"threads": 2}, "tool_version": VERSION}


def rounds(seed: int, scale: float) -> dict[str, object]:
    """Samples in 3 rounds that drift like the development VM's, at ``scale`` ms."""
    samples, sizes = drifting_rounds(np.random.default_rng(seed), scale=scale, burst=0.0)
    return {"samples": samples, "rounds": 3, "round_samples": sizes}


def measured(impl: str, scale: float, seed: int, case: str = "c1", **values: object) -> Row:
    r = rounds(seed, scale)
    return row(impl, case=case, samples=r.pop("samples"), **r, **values)  # type: ignore[arg-type]


def source(tmp_path: Path, rows: list[Row], name: str = "r.csv",
           facts: dict[str, object] | None = None) -> PlanSource:  # fmt: skip
    return PlanSource(name, frame(tmp_path, rows, name), FACTS if facts is None else facts)


def plan_of(tmp_path: Path, rows: list[Row]) -> Plan:
    return make_plan([source(tmp_path, rows)], RULE, 0.05, "now", VERSION).plan


# --- the choice ---------------------------------------------------------------------------------


def test_a_clear_win_is_taken_and_its_evidence_recorded(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, [measured(NATIVE, 10.0, 1), measured("numpy/gemm-col2im", 6.0, 2)])
    (entry,) = plan.entries
    assert entry.strategy == "numpy/gemm-col2im" and entry.replaces_native
    assert entry.native == NATIVE
    assert entry.speedup == pytest.approx(10 / 6, rel=0.05)
    assert entry.ci_low is not None and entry.ci_high is not None
    assert entry.ci_low < entry.speedup < entry.ci_high
    assert entry.p_value is not None and entry.p_value < 0.05
    assert "faster" in entry.reason and entry.source == "r.csv: smoke/c1"


def test_noise_keeps_native(tmp_path: Path) -> None:
    """2% faster is inside the 5% threshold: native stays, and the entry says why."""
    plan = plan_of(tmp_path, [measured(NATIVE, 10.0, 1), measured("numpy/direct", 9.8, 2)])
    (entry,) = plan.entries
    assert entry.strategy == NATIVE and not entry.replaces_native
    assert entry.contender == "numpy/direct"
    assert entry.reason.startswith(f"kept {NATIVE}: numpy/direct ")


def test_native_fastest_needs_no_test(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, [measured(NATIVE, 5.0, 1), measured("numpy/direct", 9.0, 2)])
    (entry,) = plan.entries
    assert (entry.strategy, entry.speedup, entry.p_value) == (NATIVE, 1.0, None)
    assert entry.reason == f"{NATIVE} is the fastest measured"


@pytest.mark.parametrize("status", ["mismatch", "error", "crashed", "unsupported"])
def test_a_row_that_is_not_ok_is_never_chosen(tmp_path: Path, status: str) -> None:
    wrong = measured("numpy/fast-but-wrong", 1.0, 2, status=status)
    plan = plan_of(tmp_path, [measured(NATIVE, 10.0, 1), wrong, measured("numpy/direct", 7.0, 3)])
    (entry,) = plan.entries
    assert entry.strategy == "numpy/direct"


def test_the_fastest_significant_winner_is_taken(tmp_path: Path) -> None:
    rows = [measured(NATIVE, 10.0, 1), measured("numpy/a", 8.0, 2), measured("numpy/b", 5.0, 3)]
    (entry,) = plan_of(tmp_path, rows).entries
    assert entry.strategy == "numpy/b"


@pytest.mark.parametrize(
    ("include", "exclude", "chosen"),
    [
        ((), (), "numpy/b"),
        (("torch-*",), (), "torch-cpu/a"),
        ((), ("numpy/*",), "torch-cpu/a"),
        (("numpy/*",), ("numpy/b",), NATIVE),  # numpy/c is not faster beyond the noise
    ],
)
def test_globs_limit_the_contenders(
    tmp_path: Path, include: tuple[str, ...], exclude: tuple[str, ...], chosen: str
) -> None:
    rows = [measured(NATIVE, 10.0, 1), measured("torch-cpu/a", 7.0, 2),
            measured("numpy/b", 5.0, 3), measured("numpy/c", 9.9, 4)]  # fmt: skip
    planned = make_plan([source(tmp_path, rows)], RULE, 0.05, "now", VERSION, include, exclude)
    (entry,) = planned.plan.entries
    assert entry.strategy == chosen
    assert planned.plan.rule["impl"] == list(include)
    assert planned.plan.rule["exclude"] == list(exclude)


def test_a_backward_entry_records_its_strategys_forward_time(tmp_path: Path) -> None:
    rows = [
        measured(NATIVE, 10.0, 1), measured("torch-cpu/a", 14.0, 2),
        measured(NATIVE, 20.0, 3, pass_="backward"),
        measured("torch-cpu/a", 8.0, 4, pass_="backward"),
    ]  # fmt: skip
    plan = plan_of(tmp_path, rows)
    by_pass = {e.pass_: e for e in plan.entries}
    assert by_pass["forward"].strategy == NATIVE and by_pass["forward"].forward_ms is None
    assert by_pass["backward"].strategy == "torch-cpu/a"
    assert by_pass["backward"].forward_ms == pytest.approx(14.0, rel=0.1)
    path = tmp_path / "plan.json"
    write_plan(plan, path)
    assert read_plan(path).entries == plan.entries


def test_passes_are_chosen_independently(tmp_path: Path) -> None:
    rows = [
        measured(NATIVE, 10.0, 1), measured("numpy/a", 5.0, 2),
        measured(NATIVE, 10.0, 3, pass_="backward"), measured("numpy/a", 20.0, 4, pass_="backward"),
    ]  # fmt: skip
    by_pass = {e.pass_: e.strategy for e in plan_of(tmp_path, rows).entries}
    assert by_pass == {"forward": "numpy/a", "backward": NATIVE}


def test_a_problem_without_its_native_row_is_skipped_with_the_reason(tmp_path: Path) -> None:
    rows = [measured("numpy/a", 5.0, 2), measured(NATIVE, 10.0, 1, case="c2", status="error")]
    rows[1]["input"] = (4, 4)  # another problem
    planned = make_plan([source(tmp_path, rows)], RULE, 0.05, "now", VERSION)
    assert planned.plan.entries == ()
    reasons = sorted(s.reason for s in planned.skipped)
    assert reasons == [f"{NATIVE} is error (r.csv: smoke/c2)",
                       f"{NATIVE} was not measured (r.csv: smoke/c1)"]  # fmt: skip


def test_the_same_problem_in_two_cases_is_decided_by_the_first(tmp_path: Path) -> None:
    rows = [
        measured(NATIVE, 10.0, 1), measured("numpy/a", 5.0, 2),
        measured(NATIVE, 10.0, 3, case="again"), measured("numpy/b", 4.0, 4, case="again"),
    ]  # fmt: skip
    (entry,) = plan_of(tmp_path, rows).entries
    assert (entry.strategy, entry.source) == ("numpy/a", "r.csv: smoke/c1")


def test_files_from_different_machines_are_refused(tmp_path: Path) -> None:
    other_env = {**ENV, "cpu": {**ENV["cpu"], "model": "Other CPU"}}  # type: ignore[dict-item]
    a = source(tmp_path, [measured(NATIVE, 10.0, 1)], "a.csv")
    b = source(tmp_path, [measured(NATIVE, 10.0, 1)], "b.csv", {**FACTS, "env": other_env})
    with pytest.raises(InputError, match=r"different conditions.*cpu: 'Test CPU' -> 'Other CPU'"):
        make_plan([a, b], RULE, 0.05, "now", VERSION)


def test_a_merged_files_machine_comes_from_its_sources(tmp_path: Path) -> None:
    merged = {"merged_from": [{"path": "a.csv", "facts": FACTS}, {"path": "b.csv", "facts": FACTS}]}
    assert source_fingerprint(source(tmp_path, [], facts=merged)) == fingerprint(ENV, 2, VERSION)
    other = {**FACTS, "threads": {"threads": 1}}
    merged["merged_from"].append({"path": "c.csv", "facts": other})  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="merged from runs under different conditions"):
        source_fingerprint(source(tmp_path, [], "m.csv", facts=merged))


def test_a_sidecar_without_env_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no 'env' facts"):
        make_plan([source(tmp_path, [measured(NATIVE, 1.0, 1)], facts={})], RULE, 0.05, "", "")


def test_the_plans_fingerprint_keeps_only_the_engines_it_uses(tmp_path: Path) -> None:
    rows = [measured(NATIVE, 10.0, 1), measured("onnxruntime/native", 5.0, 2)]
    fp = plan_of(tmp_path, rows).fingerprint
    assert fp["onnxruntime"] == "1.32" and fp["onnx"] == "1.0" and "openvino" not in fp
    assert fp["threads"] == 2 and fp["cpu_id"] == "V/1/2/3"


# --- the fingerprint ------------------------------------------------------------------------------


def test_fingerprint_leaves_out_what_is_unknown_and_compares_the_plans_keys() -> None:
    old = fingerprint({"cpu": {"model": "X", "logical_cores": 2}}, 2, "0.1")
    assert "cpu_id" not in old and "torch" not in old
    here = {**old, "cpu_id": "A/1/2/3", "torch": "2.13"}
    assert differences(old, here) == []
    assert differences(old, {**here, "threads": 1}) == ["threads: 2 -> 1"]
    assert for_backends({"jax": "1", "jaxlib": "1", "torch": "2"}, {"numpy"}) == {"torch": "2"}


def test_current_fingerprint_has_the_machines_facts() -> None:
    here = current(3)
    assert here["threads"] == 3 and here["deconvbench"] == VERSION
    assert isinstance(here["logical_cores"], int) and here["torch"]


# --- the plan file ------------------------------------------------------------------------------


def _entry(**values: object) -> PlanEntry:
    base: dict[str, object] = dict(
        problem=Problem.create(batch=2, in_channels=3, out_channels=4, input=(5, 6), kernel=3,
                               stride=2, padding=1, output_padding=1, bias=True),
        device="cpu", pass_="forward", strategy="numpy/gemm-col2im", native=NATIVE,
        native_ms=2.0, strategy_ms=1.0, speedup=2.0, ci_low=1.9, ci_high=2.1, p_value=0.001,
        contender="numpy/gemm-col2im", reason="100% faster", source="r.csv: s/c",
    )  # fmt: skip
    base.update(values)
    return PlanEntry(**base)  # type: ignore[arg-type]


def test_a_plan_survives_its_file(tmp_path: Path) -> None:
    plan = Plan({"cpu": "X", "threads": 2}, {"statistic": "median"},
                (_entry(), _entry(pass_="backward", ci_low=None, ci_high=None, p_value=None)),
                ({"path": "r.csv", "run_id": "abc"},), "now", VERSION)  # fmt: skip
    write_plan(plan, tmp_path / "p.json")
    again = read_plan(tmp_path / "p.json")
    assert again == plan
    assert again.lookup(plan.entries[1].problem, "cpu", "backward") == plan.entries[1]
    assert again.lookup(plan.entries[0].problem, "cuda", "forward") is None


def _problem_json() -> dict[str, object]:
    return plan_json(Plan({}, {}, (_entry(),)))["entries"][0]["problem"]  # type: ignore[index,no-any-return]


def _broken(change: dict[str, object], entry: dict[str, object] | None = None) -> object:
    data = plan_json(Plan({}, {}, (_entry(),)))
    data.update(change)
    if entry is not None:
        data["entries"][0].update(entry)  # type: ignore[index]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a deconvbench plan"),
        (_broken({"format": "other"}), "not a deconvbench plan"),
        (_broken({"format_version": PLAN_FORMAT_VERSION + 1}), "format version 2 is not supported"),
        (_broken({"entries": {}}), "'entries' has the wrong type"),
        (_broken({}, {"pass": "sideways"}), "entry 1: 'pass' must be forward or backward"),
        (_broken({}, {"native_ms": -1}), "entry 1: 'native_ms' must be a finite number >= 0"),
        (_broken({}, {"speedup": True}), "entry 1: 'speedup' must be a number"),
        (_broken({}, {"strategy": None}), "entry 1: 'strategy' has the wrong type"),
        (_broken({}, {"problem": {**_problem_json(), "batch": 0}}), "entry 1: batch"),
        (_broken({}, {"problem": {"batch": 2}}), "missing problem keys"),
        (_broken({}, {"problem": {"color": 1}}), "unknown problem keys"),
        (_broken({"entries": [plan_json(Plan({}, {}, (_entry(),)))["entries"][0]] * 2}),  # type: ignore[index]
         "entries 1 and 2 are the same"),
    ],
)  # fmt: skip
def test_a_bad_plan_is_one_line_naming_the_problem(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_plan(data, "p.json")
    assert "\n" not in str(info.value)


def test_unreadable_plan_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe")
    for name, message in [("bad.json", "not valid JSON"), ("bin.json", "not UTF-8"),
                          ("none.json", "cannot read the plan")]:  # fmt: skip
        with pytest.raises(InputError, match=message):
            read_plan(tmp_path / name)


# --- the command ----------------------------------------------------------------------------------


def _results(tmp_path: Path, rows: list[Row], name: str = "run.csv") -> Path:
    path = tmp_path / name
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    write_sidecar(path, FACTS)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), env={"NO_COLOR": "1", "COLUMNS": "240"})
    return result.exit_code, result.stdout, result.stderr


def test_plan_writes_the_file_and_shows_it(tmp_path: Path) -> None:
    results = _results(tmp_path, [measured(NATIVE, 10.0, 1), measured("numpy/a", 5.0, 2)])
    out = tmp_path / "plan.json"
    code, stdout, stderr = invoke("plan", str(results), "-o", str(out))
    assert code == 0, stderr
    assert "numpy/a" in stdout and "1 of 1 (problem, pass) entries" in stderr
    assert "numpy/a: runs on a thread pool of its own" in stderr
    assert json.loads(out.read_text())["format_version"] == PLAN_FORMAT_VERSION
    code, _, stderr = invoke("plan", str(results), "-o", str(out))
    assert code == 2 and "exists; use --overwrite" in stderr
    code, shown, _ = invoke("plan", "show", str(out))
    assert code == 0 and "numpy/a" in shown
    code, stdout, stderr = invoke("plan", str(results), "-o", str(out), "--overwrite", "-i",
                                  "torch-*")  # fmt: skip
    assert code == 0 and "0 of 1" in stderr and "only torch-*" in stdout
    assert "this machine differs" in shown and "cpu: 'Test CPU' -> " in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "show"], "expected one plan file"),
        (["plan", "show", "missing.json"], "cannot read the plan"),
        (["plan", "missing.csv"], "missing.csv: no such file"),
        (["plan", "RESULTS", "--threshold", "lots"], "threshold"),
        (["plan", "RESULTS", "--alpha", "2"], "alpha"),
    ],
)
def test_plan_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    results = _results(tmp_path, [measured(NATIVE, 10.0, 1)])
    args = [str(results) if a == "RESULTS" else a for a in args]
    code, _, stderr = invoke(*args, "-o", str(tmp_path / "p.json")) if args[1] != "show" else (
        invoke(*args))  # fmt: skip
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()


def test_plan_on_a_real_run_matches_this_machine(tmp_path: Path) -> None:
    """End to end: a tiny real run → a plan whose fingerprint is this machine's."""
    results = tmp_path / "run.csv"
    case = "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1"
    code, _, stderr = invoke("run", "--case", case, "--impl", "numpy/direct", "--impl", NATIVE,
                             "-o", str(results), "--budget", "0.01", "--min-samples", "5",
                             "--rounds", "2")  # fmt: skip
    assert code == 0, stderr
    code, _, stderr = invoke("plan", str(results), "-o", str(tmp_path / "p.json"))
    assert code == 0, stderr
    plan = read_plan(tmp_path / "p.json")
    assert len(plan.entries) == 2 and {e.native for e in plan.entries} == {NATIVE}
    code, shown, _ = invoke("plan", "show", str(tmp_path / "p.json"))
    assert "this machine matches the plan's fingerprint" in shown

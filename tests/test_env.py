"""Environment facts: every section present, JSON-ready, and never an exception."""

from __future__ import annotations

import importlib
import json
import platform
import sys
from types import ModuleType

import numpy as np
import pytest

from deconvbench import __version__, env


def test_collect_has_every_section_and_is_json() -> None:
    facts = env.collect()
    assert set(env.SECTIONS) <= set(facts)
    json.dumps(facts)  # the sidecar must be able to hold it as is
    assert facts["deconvbench"]["version"] == __version__  # type: ignore[index]
    assert facts["python"]["version"] == platform.python_version()  # type: ignore[index]
    assert facts["numpy"]["version"] == np.__version__  # type: ignore[index]
    cpu = facts["cpu"]
    assert isinstance(cpu, dict) and cpu["logical_cores"] >= 1
    assert facts["memory"]["total_gb"] > 0  # type: ignore[index]


def test_torch_section_records_version_threads_and_build() -> None:
    torch = pytest.importorskip("torch")
    facts = env.collect()["torch"]
    assert isinstance(facts, dict)
    assert facts["version"] == torch.__version__
    assert facts["num_threads"] == torch.get_num_threads()
    assert isinstance(facts["build"], dict)


def test_cuda_section_says_why_when_there_is_no_gpu() -> None:
    torch = pytest.importorskip("torch")
    cuda = env.collect()["cuda"]
    assert isinstance(cuda, dict)
    if torch.cuda.is_available():
        assert cuda["available"] is True and cuda["devices"]
    else:
        assert cuda["available"] is False and cuda["reason"]


def test_a_failing_probe_becomes_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(env.SECTIONS, "cpu", broken)
    facts = env.collect()
    assert facts["cpu"] == {"reason": "could not be probed: RuntimeError: probe exploded"}
    assert facts["python"]["version"]  # type: ignore[index]  # the others are unaffected


def test_a_missing_library_gives_none_and_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_numba(name: str, package: str | None = None) -> ModuleType:
        if name == "numba":
            raise ImportError("No module named 'numba'")
        return real(name, package)

    monkeypatch.setattr(env.importlib, "import_module", without_numba)
    numba = env.collect()["numba"]
    assert numba == {"version": None, "reason": "not installed (pip install 'deconvbench[numba]')"}


def test_outside_a_git_checkout_the_revision_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "_run", lambda args, cwd=None: None)
    facts = env.collect()["deconvbench"]
    assert isinstance(facts, dict)
    assert facts["git_revision"] is None and facts["reason"] == "not a git checkout"


def test_thread_variables_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    variables = env.collect()["variables"]
    assert isinstance(variables, dict)
    assert variables["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in variables


def test_run_helper_survives_missing_and_failing_commands() -> None:
    assert env._run(["deconvbench-no-such-command-xyz"]) is None
    assert env._run([sys.executable, "-c", "import sys; sys.exit(3)"]) is None
    assert env._run([sys.executable, "-c", "print(' hi ')"]) == "hi"


def test_summary_is_one_line() -> None:
    line = env.summary(env.collect())
    assert "\n" not in line and "cores" in line
    assert env.summary({}) == "unknown CPU"

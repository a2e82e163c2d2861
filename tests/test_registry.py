"""Entry-point discovery: built-ins, a third-party plugin end to end, broken plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import deconvbench as db
from deconvbench import registry
from deconvbench.errors import Unavailable
from deconvbench.harness.verify import verify

from problems import EDGE_CASES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "deconvbench-example-backend"


def _fake_distribution(where: Path, name: str, entry_points: dict[str, str]) -> None:
    """What `pip install` leaves behind that importlib.metadata reads: a dist-info folder."""
    dist = where / f"{name.replace('-', '_')}-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{registry.GROUP}]\n{lines}")


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.strategies.cache_clear()
    yield
    registry.strategies.cache_clear()  # the next user rediscovers without the test's plugins


def test_pyproject_declares_the_builtin_backends() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = meta["project"]["entry-points"][registry.GROUP]
    assert declared == registry.BUILTIN_BACKENDS


def test_builtins_are_registered() -> None:
    names = {s.name for s in registry.strategies()}
    assert "numpy/direct" in names
    backends = {s.backend for s in registry.strategies()}
    assert {"numpy", "torch-cpu", "torch-cuda", "numba"} <= backends


def test_example_plugin_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    _fake_distribution(
        tmp_path, meta["project"]["name"], meta["project"]["entry-points"][registry.GROUP]
    )
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))
    info = {i.name: i for i in db.implementations()}
    assert info["example/einsum-taps"].available
    strategy = registry.get("example/einsum-taps")
    for case in ("asymmetric", "depthwise", "3d", "1d"):
        for pass_ in ("forward", "backward"):
            assert verify(strategy, EDGE_CASES[case], pass_).ok
    assert "numpy/direct" in info  # built-ins still there beside the plugin


def test_broken_plugin_is_listed_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    pkg = tmp_path / "broken_backend.py"
    pkg.write_text("raise ImportError('needs libfoo 3')\n")
    _fake_distribution(
        tmp_path,
        "broken-backend",
        {"broken": "broken_backend:strategies", "nocall": "deconvbench.problem"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    info = {i.name: i for i in db.implementations()}
    assert not info["broken/*"].available
    assert "needs libfoo 3" in info["broken/*"].reason
    assert not info["nocall/*"].available
    assert "module:function" in info["nocall/*"].reason
    with pytest.raises(Unavailable, match="needs libfoo 3"):
        db.conv_transpose("broken/*", *_tiny())
    assert info["numpy/direct"].available


def test_factory_returning_non_strategies_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    (tmp_path / "odd_backend.py").write_text("def strategies():\n    return ['not a strategy']\n")
    _fake_distribution(tmp_path, "odd-backend", {"odd": "odd_backend:strategies"})
    monkeypatch.syspath_prepend(str(tmp_path))
    info = {i.name: i for i in db.implementations()}
    assert "not a Strategy" in info["odd/*"].reason


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(Unavailable, match="did you mean numpy/direct"):
        registry.get("numpy/directt")


def test_select_globs() -> None:
    assert [s.name for s in registry.select(["numpy/dir*"])] == ["numpy/direct"]
    assert registry.select(["nothing/*"]) == []


def _tiny() -> tuple[object, object]:
    import numpy as np

    return np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.float32)


def test_the_example_plugin_uses_the_current_interface_and_is_correct() -> None:
    """examples/deconvbench-example-backend, imported as its entry point names it: no
    deprecated import path, and its strategies meet the reference."""
    source = Path(__file__).parents[1] / "examples" / "deconvbench-example-backend" / "src"
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "from deconvbench import registry\n"
        "from deconvbench.harness.verify import verify\n"
        "from deconvbench.problem import Problem\n"
        "[strategy] = registry._load_entry_point('example', 'deconvbench_example:strategies')\n"
        "p = Problem.create(batch=2, in_channels=4, out_channels=6, input=(5, 5), kernel=3,\n"
        "                   stride=2, padding=1, groups=2, bias=True)\n"
        "for pass_ in ('forward', 'backward'):\n"
        "    assert verify(strategy, p, pass_).ok, pass_\n"
        "print(strategy.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(source)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "example/einsum-taps"

"""The jax backend: registration, correctness, one compilation per preparation, waiting for
asynchronous results, XLA's thread pool, and its unavailability without jax."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from deconvbench import registry
from deconvbench.backends import Strategy
from deconvbench.backends.jax_ import INSTALL_HINT, JaxPrepared, Native, pool
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.threads import limit_threads
from deconvbench.harness.verify import verify
from deconvbench.problem import Pass, Problem

from problems import EDGE_CASES
from problems import small_problem as _p

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax not installed")

PASSES: tuple[Pass, ...] = ("forward", "backward")


PROBLEMS: dict[str, Problem] = {
    "plain": _p(input=(4, 4), kernel=4, padding=1, bias=True),
    "groups": _p(in_channels=6, out_channels=9, groups=3, bias=True),
    "depthwise": _p(in_channels=6, out_channels=6, groups=6),
    "dilation": _p(kernel=3, stride=3, dilation=2, padding=2, output_padding=1),
    "output-padding": _p(kernel=3, stride=4, padding=1, output_padding=3, bias=True),
    "negative-xla-padding": _p(kernel=2, stride=2, dilation=2, padding=3, output_padding=1),
    "asymmetric": EDGE_CASES["asymmetric"],
    "1d": _p(input=(11,), kernel=25, stride=4, padding=11, output_padding=1, bias=True),
    "3d": _p(input=(3, 4, 2), kernel=(3, 2, 3), stride=(2, 1, 3), padding=(1, 0, 1), bias=True),
    "3d-groups": _p(input=(3, 3, 3), kernel=2, stride=2, padding=0, groups=2, dilation=2),
    "float64": _p(dtype="float64", bias=True, groups=2, in_channels=4, out_channels=6),
    "float16": _p(in_channels=8, out_channels=4, input=(6, 6), kernel=4, dtype="float16"),
    "bfloat16": _p(in_channels=8, out_channels=4, input=(6, 6), kernel=4, dtype="bfloat16"),
}


@pytest.fixture(scope="module")
def native() -> Native:
    return Native()


def _prepare(strategy: Native, problem: Problem, pass_: Pass) -> JaxPrepared:
    inputs = make_inputs(problem)
    if pass_ == "forward":
        prepared = strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    else:
        prepared = strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    assert isinstance(prepared, JaxPrepared)
    return prepared


# --- registration ----------------------------------------------------------------------


def test_unavailable_without_jax(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] in {"jax", "jaxlib"} else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reason = Native().unavailable_reason()
    assert reason is not None and "pip install 'deconvbench[jax]'" in reason
    assert INSTALL_HINT in reason
    jax_rows = [s for s in registry.strategies() if s.backend == "jax"]
    assert [s.name for s in jax_rows] == ["jax/native"]
    assert jax_rows[0].unavailable_reason() == reason
    with limit_threads(1) as applied:  # and the harness leaves XLA alone
        assert "xla" not in applied.applied


def test_loading_the_registry_does_not_import_jax() -> None:
    code = textwrap.dedent(
        """
        import sys
        from deconvbench import registry
        names = [s.name for s in registry.strategies()]
        assert "jax/native" in names, names
        assert "jax" not in sys.modules, "registry load imported jax"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@needs_jax
def test_registered_and_available() -> None:
    by_name = {s.name: s for s in registry.strategies()}
    strategy = by_name["jax/native"]
    assert strategy.unavailable_reason() is None
    assert strategy.device == "cpu" and strategy.description
    caps = strategy.capabilities
    assert caps.dims == {1, 2, 3} and caps.backward and caps.groups and caps.dilation
    assert {"float16", "bfloat16", "float32", "float64"} <= caps.dtypes


# --- correctness -----------------------------------------------------------------------


@needs_jax
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_matches_the_reference(native: Strategy, case: str, pass_: Pass) -> None:
    problem = PROBLEMS[case]
    assert native.unsupported_reason(problem, pass_) is None
    result = verify(native, problem, pass_)
    assert result.ok, f"{case} {pass_}: {result.message}"


@needs_jax
def test_results_are_numpy_in_the_problems_storage_dtype(native: Native) -> None:
    for dtype, storage in [("bfloat16", np.float32), ("float16", np.float16)]:
        problem = replace(PROBLEMS["plain"], dtype=dtype)
        prepared = _prepare(native, problem, "backward")
        gx, gw, gb = prepared.fetch(prepared.call())
        assert gx is not None and gw is not None and gb is not None
        assert {gx.dtype, gw.dtype, gb.dtype} == {np.dtype(storage)}
    no_bias = Problem.create(batch=1, in_channels=2, out_channels=2, input=4, kernel=2)
    prepared = _prepare(native, no_bias, "backward")
    assert prepared.fetch(prepared.call())[2] is None


@needs_jax
def test_float64_leaves_the_global_x64_flag_alone(native: Native) -> None:
    import jax

    before = jax.config.jax_enable_x64
    prepared = _prepare(native, PROBLEMS["float64"], "forward")
    (y,) = prepared.fetch(prepared.call())
    assert y is not None and y.dtype == np.float64
    assert jax.config.jax_enable_x64 == before


# --- compilation -----------------------------------------------------------------------


@needs_jax
def test_compiled_once_in_preparation_never_in_a_call(native: Native) -> None:
    import jax.monitoring

    compiles: list[float] = []

    def listen(event: str, duration: float, **_: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        problem = replace(PROBLEMS["groups"], batch=3)  # a shape no other test compiles
        for pass_ in PASSES:
            compiles.clear()
            prepared = _prepare(native, problem, pass_)
            assert len(compiles) == 1, pass_
            for _ in range(5):
                prepared.call()
            prepared.synchronize()
            assert len(compiles) == 1, f"{pass_}: a call compiled"
            record = prepared.compilation
            assert record is not None and record.pass_ == pass_
            assert record.compile_s > 0 and record.lower_s > 0
            assert record.problem == problem.spec()
            assert "compiled in" in record.describe()
            assert prepared.facts["compile_s"] == round(record.compile_s, 3)
            assert prepared.facts["precision"] == "f32"
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


@needs_jax
def test_synchronize_waits_for_every_call_since_the_last(
    native: Native, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jax

    waited: list[list[object]] = []
    real = jax.block_until_ready

    def block_until_ready(x: Any) -> Any:
        waited.append(list(x))
        return real(x)

    monkeypatch.setattr(jax, "block_until_ready", block_until_ready)
    prepared = _prepare(native, PROBLEMS["plain"], "backward")
    results = [prepared.call() for _ in range(3)]
    prepared.synchronize()
    assert len(waited) == 1 and len(waited[0]) == 3
    for result in results:
        assert all(r.is_ready() for r in result if r is not None)  # type: ignore[attr-defined]
    prepared.synchronize()  # nothing pending: waits for nothing
    assert waited[1] == []


@needs_jax
def test_workspace_covers_xla_buffers(native: Native) -> None:
    for case in ("plain", "groups", "dilation", "3d", "float16", "float64"):
        problem = PROBLEMS[case]
        for pass_ in PASSES:
            compiled = _prepare(native, problem, pass_).call.__self__._compiled  # type: ignore[attr-defined]
            m = compiled.memory_analysis()
            xla = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            assert native.workspace_bytes(problem, pass_) >= xla, (case, pass_)


# --- threads ---------------------------------------------------------------------------


@needs_jax
def test_a_problem_is_compiled_once_per_process_and_pass(native: Native) -> None:
    from deconvbench.backends.jax_ import native as module

    first = _prepare(native, PROBLEMS["groups"], "backward")
    executable = module._executables[(PROBLEMS["groups"].spec(), "backward")][0]
    again = _prepare(native, PROBLEMS["groups"], "backward")
    assert module._executables[(PROBLEMS["groups"].spec(), "backward")][0] is executable
    assert first.compilation is not None and again.compilation is not None
    assert again.compilation.compile_s == first.compilation.compile_s  # the first compile's
    for a, b in zip(first.fetch(first.call()), again.fetch(again.call()), strict=True):
        assert (a is None) == (b is None)


@needs_jax
def test_thread_count_in_use_is_recorded(native: Native) -> None:
    prepared = _prepare(native, PROBLEMS["plain"], "forward")  # JAX is initialised now
    used = pool.threads_in_use()
    assert used is not None and used >= 1
    record = prepared.compilation
    assert record is not None and record.xla_threads == used
    assert prepared.facts["threads"] == used
    with limit_threads(used) as applied:
        assert applied.applied["xla"] == used
        assert not any(n.startswith("xla") for n in applied.notes)
        again = _prepare(native, PROBLEMS["plain"], "forward").compilation
        assert again is not None and again.requested_threads == used and again.note is None
    with limit_threads(used + 1) as applied:
        assert applied.applied["xla"] == used
        assert any("fixed at" in n and "--isolate" in n for n in applied.notes)
        late = _prepare(native, PROBLEMS["plain"], "forward").compilation
        assert late is not None and late.xla_threads == used and late.note is not None


@pytest.fixture
def uninitialised(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pool's bookkeeping as in a process where JAX has not initialised yet."""
    monkeypatch.setattr(pool, "initialized", lambda: False)
    for name in pool.POOL_ENVS:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.mark.usefixtures("uninitialised")
def test_pool_size_is_set_before_initialisation_and_restored() -> None:
    with pool.pool_size(3) as outer:
        assert os.environ[pool.POOL_ENV] == "3" and outer.threads == 3 and outer.note is None
        with pool.pool_size(1) as inner:  # a nested count replaces ours, not the user's
            assert os.environ[pool.POOL_ENV] == "1" and inner.threads == 1
        assert os.environ[pool.POOL_ENV] == "3"
    assert pool.POOL_ENV not in os.environ


@pytest.mark.usefixtures("uninitialised")
@pytest.mark.parametrize("name", pool.POOL_ENVS)
def test_the_users_pool_size_wins_and_is_noted(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "5")
    with pool.pool_size(2) as state:
        assert os.environ[name] == "5" and state.threads == 5
        assert state.note is not None and f"{name}=5" in state.note
    assert os.environ[name] == "5"
    with pool.pool_size(5) as state:
        assert state.threads == 5 and state.note is None


@pytest.mark.usefixtures("uninitialised")
def test_limit_threads_records_what_xla_will_use() -> None:
    if not HAS_JAX:
        pytest.skip("jax not installed")
    with limit_threads(2) as applied:
        assert applied.applied["xla"] == 2
        assert os.environ[pool.POOL_ENV] == "2"
    assert pool.POOL_ENV not in os.environ


@needs_jax
def test_a_fresh_process_initialises_xla_with_the_runs_threads() -> None:
    code = textwrap.dedent(
        """
        import os
        from deconvbench.backends.jax_ import Native, pool
        from deconvbench.harness.inputs import make_inputs
        from deconvbench.harness.threads import limit_threads
        from deconvbench.problem import Problem

        problem = Problem.create(batch=1, in_channels=2, out_channels=2, input=4, kernel=3)
        inputs = make_inputs(problem)
        with limit_threads(1) as applied:
            assert applied.applied["xla"] == 1, applied
            prepared = Native().prepare_forward(problem, inputs.x, inputs.weight, None)
            record = prepared.compilation
            assert record.xla_threads == 1 and record.requested_threads == 1, record
            assert record.note is None, record
            assert pool.threads_in_use() == 1
        assert pool.POOL_ENV not in os.environ
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in pool.POOL_ENVS}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=180, env=env)

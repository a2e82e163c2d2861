"""The OpenVINO backend beyond the conformance suite.

* Registered, and available where openvino is installed; without it, listed unavailable
  with the install hint (the package imports without openvino).
* Forward and backward against the reference on hand-picked problems: groups (depthwise
  too), dilation, output_padding at and above the stride, bias, 1-D and 3-D, and the shape
  that meets an OpenVINO convolution bug worked around in ``_graphs._conv``.
* The compiled model computes in f32 (the property and every runtime node), and a model
  that OpenVINO would lower to bf16 is refused, not timed.
* Its thread count is the run's (``run_threads()``), and every core outside a run.
* The timed call is repeatable and reads the caller's arrays in place.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import numpy as np
import pytest

from deconvbench import registry
from deconvbench.backends import Strategy, run_threads
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.threads import available_cores, limit_threads
from deconvbench.harness.verify import prepare, verify
from deconvbench.problem import Pass, Problem

from problems import EDGE_CASES
from problems import small_problem as _p

PKG = "deconvbench.backends.openvino_"
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")


def _strategy() -> Strategy:
    return next(s for s in registry.strategies() if s.name == "openvino/native")


PROBLEMS: dict[str, Problem] = {
    # grad_weight's convolution has one input channel (batch 1), a one-position output and a
    # stride (the dilation) of 2 along the last axis: OpenVINO's CPU plugin gets that wrong
    # unless the stride is set to 1 there (``_graphs._conv``).
    "one-channel-strided-one-position": _p(
        batch=1,
        in_channels=2,
        out_channels=3,
        input=(1, 4),
        kernel=(4, 1),
        stride=1,
        padding=0,
        output_padding=(0, 1),
        dilation=(1, 2),
    ),
    "plain-bias": _p(input=(4, 4), kernel=4, padding=1, bias=True),
    "groups": _p(in_channels=6, out_channels=9, groups=3, bias=True),
    "depthwise": _p(in_channels=6, out_channels=6, groups=6),
    "dilation": _p(kernel=3, stride=2, dilation=3, padding=2),
    "output-padding": _p(kernel=3, stride=3, padding=1, output_padding=2),
    "output-padding-over-stride": _p(kernel=3, stride=1, dilation=3, padding=1, output_padding=2),
    "asymmetric": EDGE_CASES["asymmetric"],
    "padding-crops-taps": _p(kernel=3, stride=1, padding=2),
    "output-padding-only": _p(input=(1, 1), kernel=1, stride=2, padding=0, output_padding=1),
    "1d": _p(input=(11,), kernel=25, stride=4, padding=11, output_padding=1, bias=True),
    "1d-groups-dilation": _p(input=(9,), kernel=4, stride=2, dilation=2, groups=2, padding=3),
    "3d": _p(input=(3, 4, 2), kernel=(3, 2, 3), stride=(2, 1, 3), padding=(1, 0, 1), bias=True),
    "3d-groups-op": _p(
        input=(3, 3, 3),
        kernel=2,
        stride=2,
        groups=2,
        output_padding=1,
        in_channels=4,
        out_channels=4,
    ),
}


# --- registration and availability ---------------------------------------------------------


def test_registered_with_its_capabilities() -> None:
    strategy = _strategy()
    assert strategy.backend == "openvino" and strategy.device == "cpu"
    caps = strategy.capabilities
    assert caps.dims == {1, 2, 3} and caps.dtypes == {"float32"}
    assert caps.backward and caps.groups and caps.dilation
    assert strategy.description


@needs_openvino
def test_available_where_openvino_is_installed() -> None:
    assert _strategy().unavailable_reason() is None


def test_unavailable_with_the_install_hint_when_openvino_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "openvino" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reason = _strategy().unavailable_reason()
    assert reason is not None and "pip install 'deconvbench[openvino]'" in reason


def test_the_package_imports_without_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module(PKG)
    assert [s.name for s in fresh.strategies()] == ["openvino/native"]


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_declines_every_dtype_but_float32_saying_why(dtype: str) -> None:
    reason = _strategy().unsupported_reason(_p(dtype=dtype), "forward")
    assert reason is not None and "OpenVINO" in reason and dtype in reason


# --- correctness ---------------------------------------------------------------------------


@needs_openvino
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_matches_the_reference(case: str, pass_: Pass) -> None:
    strategy, problem = _strategy(), PROBLEMS[case]
    assert strategy.unsupported_reason(problem, pass_) is None
    result = verify(strategy, problem, pass_, seed=3)
    assert result.ok, result.message


@needs_openvino
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_calling_twice_gives_the_same_result(pass_: Pass) -> None:
    problem = PROBLEMS["groups"]
    prepared = prepare(_strategy(), problem, pass_, make_inputs(problem, 1))
    first = prepared.fetch(prepared.call())
    second = prepared.fetch(prepared.call())
    assert len(first) == 3 if pass_ == "backward" else len(first) == 1
    for a, b in zip(first, second, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)  # type: ignore[arg-type]


@needs_openvino
def test_backward_without_bias_returns_no_grad_bias() -> None:
    problem = PROBLEMS["depthwise"]
    prepared = prepare(_strategy(), problem, "backward", make_inputs(problem))
    gi, gw, gb = prepared.fetch(prepared.call())
    assert gb is None and gi is not None and gw is not None
    assert gi.shape == problem.x_shape and gw.shape == problem.weight_shape


@needs_openvino
def test_inputs_are_bound_in_place_not_copied() -> None:
    problem = PROBLEMS["plain-bias"]
    inputs = make_inputs(problem)
    infer: Any = prepare(_strategy(), problem, "forward", inputs).call
    assert np.shares_memory(infer.request.get_input_tensor(0).data, inputs.x)
    assert np.shares_memory(infer.request.get_input_tensor(1).data, inputs.weight)


# --- precision and threads -----------------------------------------------------------------


@needs_openvino
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_compiled_in_f32_on_the_runs_thread_count(pass_: Pass) -> None:
    problem = _p(in_channels=32, out_channels=32, input=(8, 8), kernel=4, padding=1, bias=True)
    with limit_threads(1):
        assert run_threads() == 1
        infer: Any = prepare(_strategy(), problem, pass_, make_inputs(problem)).call
    assert infer.precision == "f32"
    floats = {p for p in infer.node_precisions.values() if p.startswith(("f", "bf"))}
    assert floats == {"f32"}, infer.node_precisions
    assert infer.threads == 1


@needs_openvino
def test_every_core_outside_a_run() -> None:
    assert run_threads() is None
    problem = PROBLEMS["plain-bias"]
    infer: Any = prepare(_strategy(), problem, "forward", make_inputs(problem)).call
    assert infer.threads == available_cores()


@needs_openvino
def test_a_model_lowered_below_f32_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import openvino.properties.hint as hints

    from deconvbench.backends.openvino_ import _runtime

    default = _runtime.core().get_property("CPU", hints.inference_precision).to_string()
    if default == "f32":
        pytest.skip("this CPU's OpenVINO default precision is f32: nothing to lower")
    config = _runtime.config

    def without_hint(threads: int) -> dict[str, Any]:
        wanted = config(threads)
        del wanted[hints.inference_precision]
        return wanted

    monkeypatch.setattr(_runtime, "config", without_hint)
    problem = _p(in_channels=16, out_channels=16, input=(8, 8), kernel=4, padding=1)
    with pytest.raises(_runtime.PrecisionLowered, match=default):
        prepare(_strategy(), problem, "backward", make_inputs(problem))


# --- memory estimate -----------------------------------------------------------------------


@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_workspace_covers_the_results_and_more_with_groups(pass_: Pass) -> None:
    strategy = _strategy()
    dense = _p(in_channels=8, out_channels=8, batch=4, input=(16, 16))
    depthwise = _p(in_channels=8, out_channels=8, batch=4, input=(16, 16), groups=8)
    for problem in (dense, depthwise):
        assert strategy.workspace_bytes(problem, pass_) > 2 * problem.result_elements(pass_) * 4
    if pass_ == "backward":
        assert strategy.workspace_bytes(depthwise, pass_) > strategy.workspace_bytes(dense, pass_)

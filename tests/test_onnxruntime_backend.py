"""The ONNX Runtime backend: registration, results against the reference, the bound call,
threads, and its availability without the packages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from deconvbench import registry
from deconvbench.backends import Strategy
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.threads import limit_threads
from deconvbench.harness.verify import verify
from deconvbench.problem import Pass, Problem

from problems import EDGE_CASES
from problems import small_problem as _p

NAME = "onnxruntime/native"

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx and onnxruntime not installed",
)


PROBLEMS: dict[str, Problem] = {
    "plain": _p(kernel=4, input=(4, 4), bias=True),
    "groups": _p(in_channels=6, out_channels=9, groups=3, bias=True),
    "depthwise": _p(in_channels=6, out_channels=6, groups=6),
    "dilation-stride": _p(kernel=3, stride=3, dilation=2, padding=2, output_padding=1),
    # output_padding >= stride (allowed as dilation > stride): moved into the pads
    "op-ge-stride-pads": _p(kernel=3, stride=1, dilation=3, padding=2, output_padding=2),
    # ... into output_padding past the end pad, and appended with Pad (+ bias after it)
    "op-ge-stride-adjust": _p(kernel=2, stride=2, dilation=4, padding=1, output_padding=2),
    "op-ge-stride-tail": _p(kernel=2, stride=1, dilation=4, padding=0, output_padding=3, bias=True),
    "output-padding": _p(kernel=3, stride=4, padding=1, output_padding=3, bias=True),
    "asymmetric": EDGE_CASES["asymmetric"],
    "padding-crops-kernel": _p(kernel=2, stride=1, padding=2, dilation=1, input=(6, 6)),
    "1d": _p(input=(11,), kernel=25, stride=4, padding=11, output_padding=1, bias=True),
    "1d-groups-dilation": _p(
        input=(9,),
        kernel=4,
        stride=2,
        dilation=3,
        padding=3,
        output_padding=2,
        in_channels=4,
        out_channels=6,
        groups=2,
    ),
    "3d": _p(input=(3, 4, 2), kernel=(3, 2, 3), stride=(2, 1, 3), padding=(1, 0, 1), bias=True),
    "3d-groups": _p(
        input=(3, 3, 3),
        kernel=2,
        stride=2,
        in_channels=4,
        out_channels=4,
        groups=2,
        output_padding=1,
        padding=0,
    ),
}


@pytest.fixture(scope="module")
def strategy() -> Strategy:
    return registry.get(NAME)


def test_registered_with_its_capabilities(strategy: Strategy) -> None:
    assert strategy.name in {s.name for s in registry.strategies()}
    assert strategy.capabilities.dims == frozenset({1, 2, 3})
    assert strategy.capabilities.dtypes == frozenset({"float32"})
    assert strategy.capabilities.backward and strategy.capabilities.groups
    assert strategy.description


@needs_ort
def test_available(strategy: Strategy) -> None:
    assert strategy.unavailable_reason() is None


@needs_ort
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_matches_the_reference(strategy: Strategy, case: str, pass_: Pass) -> None:
    problem = PROBLEMS[case]
    assert strategy.unsupported_reason(problem, pass_) is None
    result = verify(strategy, problem, pass_)
    assert result.ok, result.message


def test_declines_what_it_cannot_take(strategy: Strategy) -> None:
    assert "float64" in (strategy.unsupported_reason(_p(dtype="float64")) or "")
    # the whole output in output_padding past the input's reach: an empty ConvTranspose
    empty = Problem.create(
        batch=1,
        in_channels=1,
        out_channels=1,
        input=(1,),
        kernel=1,
        stride=1,
        padding=1,
        output_padding=2,
        dilation=3,
    )
    assert "output_padding" in (strategy.unsupported_reason(empty, "forward") or "")
    assert strategy.unsupported_reason(empty, "backward") is None


@needs_ort
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_the_call_writes_into_the_same_bound_outputs(strategy: Strategy, pass_: Pass) -> None:
    problem = PROBLEMS["groups"]
    inputs = make_inputs(problem, 0)
    if pass_ == "forward":
        prepared = strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    else:
        prepared = strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    bound = prepared.fetch.__self__  # type: ignore[attr-defined]
    pointers = [v.data_ptr() for v in bound.outputs]

    first = prepared.fetch(prepared.call())
    second = prepared.fetch(prepared.call())

    assert [v.data_ptr() for v in bound.outputs] == pointers
    assert [v.data_ptr() for v in bound.binding.get_outputs()] == pointers
    for a, b in zip(first, second, strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a, b)
        assert a.ctypes.data not in pointers  # fetch copies out of the bound buffer
    assert len(first) == (1 if pass_ == "forward" else 3)


@needs_ort
def test_inputs_are_bound_without_copies(strategy: Strategy) -> None:
    problem = PROBLEMS["plain"]
    inputs = make_inputs(problem, 0)
    prepared = strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    bound = prepared.fetch.__self__  # type: ignore[attr-defined]
    got = [v.data_ptr() for v in bound.inputs]
    assert got == [a.ctypes.data for a in (inputs.grad_output, inputs.x, inputs.weight)]


@needs_ort
def test_session_threads_follow_the_run(strategy: Strategy) -> None:
    from deconvbench.backends.onnxruntime_ import _session

    problem = PROBLEMS["plain"]
    inputs = make_inputs(problem, 0)
    with limit_threads(1):
        assert _session.session_options().intra_op_num_threads == 1
        prepared = strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    options = prepared.fetch.__self__.session.get_session_options()  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    outside = _session.session_options()
    assert outside.intra_op_num_threads == _session.default_threads()
    import onnxruntime as ort

    assert outside.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert outside.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_unavailable_without_onnxruntime(
    strategy: Strategy, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "onnxruntime" else real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reason = strategy.unavailable_reason()
    assert reason is not None
    assert "onnxruntime" in reason
    assert "pip install 'deconvbench[onnxruntime]'" in reason


def test_loading_the_backend_does_not_import_onnx() -> None:
    code = (
        "import sys; from deconvbench.backends import onnxruntime_; "
        "s = onnxruntime_.strategies(); s[0].unavailable_reason(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

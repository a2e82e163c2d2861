"""The float64 reference against torch in float64, and the tolerance rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given

from deconvbench import reference
from deconvbench.harness.inputs import make_inputs
from deconvbench.problem import Problem

from problems import EDGE_CASES, problems


def torch_forward_backward(problem: Problem, seed: int) -> tuple[np.ndarray, ...]:
    inputs = make_inputs(problem, seed)
    x = torch.tensor(inputs.x, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(inputs.weight, dtype=torch.float64, requires_grad=True)
    b = (
        torch.tensor(inputs.bias, dtype=torch.float64, requires_grad=True)
        if inputs.bias is not None
        else None
    )
    conv = {
        1: torch.nn.functional.conv_transpose1d,
        2: torch.nn.functional.conv_transpose2d,
        3: torch.nn.functional.conv_transpose3d,
    }[problem.ndim]
    y = conv(
        x,
        w,
        b,
        problem.stride,
        problem.padding,
        problem.output_padding,
        problem.groups,
        problem.dilation,
    )
    y.backward(torch.tensor(inputs.grad_output, dtype=torch.float64))
    grads = [x.grad, w.grad] + ([b.grad] if b is not None else [])
    return (y.detach().numpy(), *(g.numpy() for g in grads if g is not None))


def _check_against_torch(problem: Problem) -> None:
    problem = Problem.create(**{**_fields(problem), "dtype": "float64"})
    inputs = make_inputs(problem, 7)
    want = torch_forward_backward(problem, 7)
    y = reference.forward(problem, inputs.x, inputs.weight, inputs.bias)
    gx, gw, gb = reference.backward(
        problem, inputs.grad_output, inputs.x, inputs.weight, problem.bias
    )
    got = (y, gx, gw) + ((gb,) if problem.bias else ())
    assert gb is None or problem.bias
    for a, b in zip(got, want, strict=True):
        assert a is not None
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _fields(problem: Problem) -> dict[str, object]:
    return {f: getattr(problem, f) for f in problem.__dataclass_fields__}


@given(problems(dtypes=("float64",)))
def test_reference_matches_torch_float64(problem: Problem) -> None:
    _check_against_torch(problem)


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_reference_edge_cases(case: str) -> None:
    _check_against_torch(EDGE_CASES[case])


def test_tolerance_rule() -> None:
    u32 = 2.0**-24
    assert reference.tolerance("float32", 16) == pytest.approx(16 * u32 * 8)
    assert reference.tolerance("float64", 1) < reference.tolerance("float32", 1)
    assert reference.tolerance("float16", 100) < reference.tolerance("bfloat16", 100)
    assert reference.tolerance("float32", 10_000) > reference.tolerance("float32", 100)


def test_compare_catches_errors() -> None:
    ref = np.linspace(-1, 1, 50)
    ok = reference.compare("y", ref.astype(np.float32), ref, "float32", 10)
    assert ok.ok and ok.max_rel_err < 1e-7
    bad = ref.copy()
    bad[3] += 1e-3
    check = reference.compare("y", bad, ref, "float32", 10)
    assert not check.ok and "relative error" in check.message
    assert check.max_abs_err == pytest.approx(1e-3)
    shape = reference.compare("y", ref[:-1], ref, "float32", 10)
    assert not shape.ok and "shape" in shape.message
    nan = reference.compare("y", np.full_like(ref, math.nan), ref, "float32", 10)
    assert not nan.ok and "non-finite" in nan.message
    assert not reference.compare("gb", None, ref, "float32", 1).ok
    assert not reference.compare("gb", ref, None, "float32", 1).ok
    assert reference.compare("gb", None, None, "float32", 1).ok
    zeros = np.zeros(5)
    assert reference.compare("y", zeros + 1e-12, zeros, "float32", 4).ok  # rounding noise
    assert not reference.compare("y", zeros + 1e-3, zeros, "float32", 4).ok


def test_cancelling_sums_are_judged_by_their_partial_sums() -> None:
    """grad_bias of 92 units of |terms| summing to -0.064 (found by hypothesis, float64)."""
    ref = np.array([-0.064])
    got = ref + 5.2e-14  # a correct result in another summation order
    floor = reference.magnitude_floor(1.0, 1.0, 144)
    assert not reference.compare("gb", got, ref, "float64", 144).ok  # max|ref| alone: too strict
    assert reference.compare("gb", got, ref, "float64", 144, floor).ok
    assert not reference.compare("gb", ref + 1e-9, ref, "float64", 144, floor).ok


def test_float32_rounding_of_reference_passes_its_own_tolerance() -> None:
    """The rule must accept a correct float32 result: the reference itself rounded."""
    problem = EDGE_CASES["large-kernel"]
    inputs = make_inputs(problem, 0)
    y = reference.forward(problem, inputs.x, inputs.weight, inputs.bias)
    check = reference.compare("y", y.astype(np.float32), y, "float32", problem.reduction_forward)
    assert check.ok

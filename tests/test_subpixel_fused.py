"""``subpixel-fused`` (numpy, torch, and numba when installed): the fused geometry, the
wasted-products share, the fused weight, and the strategies against torch's own transposed
convolution.

The conformance suite checks both strategies against the float64 reference over random
problems and the edge cases; these tests pin the pieces that suite cannot see.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from deconvbench import registry
from deconvbench.backends.numba_ import numba_unavailable_reason
from deconvbench.backends.numpy_ import subpixel_fused as np_fused
from deconvbench.backends.numpy_._fused import fused_axes, fused_macs, wasted_fraction
from deconvbench.backends.torch_ import subpixel_fused as torch_fused
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import prepare, verify
from deconvbench.problem import Problem

from problems import EDGE_CASES, problems, small_problem

NAMES = ("numpy/subpixel-fused", "torch-cpu/subpixel-fused") + (
    ("numba/subpixel-fused",) if numba_unavailable_reason() is None else ()
)


def _p1(kernel: int, stride: int, dilation: int = 1, padding: int = 0) -> Problem:
    return Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(7,), kernel=kernel, stride=stride,
        padding=padding, dilation=dilation,
    )  # fmt: skip


# --- the wasted products ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "wasted"),
    [
        (small_problem(kernel=4, stride=2, padding=1), 0.0),  # s | k: nothing wasted
        (small_problem(kernel=3, stride=2), 1 - 9 / 16),  # phases of 2 and 1 taps, padded to 2
        (_p1(3, 2), 1 - 3 / 4),
        (_p1(2, 5), 1 - 2 / 5),  # s > k: three phases have no tap at all
        (_p1(3, 1, dilation=2), 0.0),  # one phase, dilation 2: the window's step is 2
        (_p1(4, 2, dilation=2), 0.5),  # every tap in phase 0: phase 1's channels are zeros
        (_p1(3, 2, dilation=3), 1 - 3 / 8),  # offsets 0, 1, 3: step 1, 4 slots per phase
        (small_problem(kernel=(3, 4), stride=(2, 2)), 1 - 12 / 16),
        (small_problem(kernel=1, stride=1, padding=0), 0.0),
    ],
)
def test_wasted_fraction(problem: Problem, wasted: float) -> None:
    assert wasted_fraction(problem) == pytest.approx(wasted)


@settings(max_examples=200)
@given(problems())
def test_wasted_fraction_counts_the_zero_slots(problem: Problem) -> None:
    """``fused_macs · (1 − wasted)`` are exactly the products with a real weight, and with
    dilation 1 nothing is wasted iff s divides k in every dimension."""
    wasted = wasted_fraction(problem)
    assert 0.0 <= wasted < 1.0
    axes = fused_axes(problem)
    useful = (
        problem.batch * problem.out_channels * (problem.in_channels // problem.groups)
        * math.prod(problem.kernel) * math.prod(a.count for a in axes)
    )  # fmt: skip
    assert fused_macs(problem) * (1 - wasted) == pytest.approx(useful)
    if all(d == 1 for d in problem.dilation):
        divides = all(k % s == 0 for k, s in zip(problem.kernel, problem.stride, strict=True))
        assert (wasted == 0) == divides


@settings(max_examples=200)
@given(problems())
def test_the_interleaved_buffer_covers_the_output(problem: Problem) -> None:
    for a, size_out in zip(fused_axes(problem), problem.output, strict=True):
        assert 0 <= a.crop < a.stride
        assert a.crop + size_out <= a.count * a.stride
        # every output position belongs to exactly one phase
        owned = sorted(
            o
            for rho in range(a.stride)
            if (part := a.phase_out(rho)) is not None
            for o in range(size_out)[part[1]]
        )
        assert owned == list(range(size_out))


def test_the_note_and_description_report_the_waste() -> None:
    problem = small_problem(kernel=3, stride=2)
    inputs = make_inputs(problem, 0)
    for name in NAMES:
        strategy = registry.get(name)
        assert "wastes" in strategy.description
        for pass_ in ("forward", "backward"):
            facts = prepare(strategy, problem, pass_, inputs).facts
            assert facts["wasted_products"] == pytest.approx(1 - 9 / 16, abs=1e-4)


# --- the fused weight ------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["asymmetric", "3d", "groups-2", "dilation-and-stride", "1d"])
def test_fused_weight_holds_every_tap_once(case: str) -> None:
    problem = EDGE_CASES[case]
    w = np.random.default_rng(0).standard_normal(problem.weight_shape)
    fused = np_fused.fused_weight(problem, w)
    axes = fused_axes(problem)
    assert fused.size == math.prod(problem.weight_shape) * math.prod(
        a.stride * a.slots for a in axes
    ) // math.prod(problem.kernel)
    assert np.count_nonzero(fused) == np.count_nonzero(w)
    assert np.sort(fused[fused != 0]) == pytest.approx(np.sort(w.ravel()))
    # torch lays it out the same way (channels (group, co, *rho), then Cin/g, *L)
    t = torch_fused.fused_weight(problem, torch.from_numpy(w)).numpy()
    assert t.reshape(fused.shape) == pytest.approx(fused)


# --- against torch ---------------------------------------------------------------------------

CONV_T = {
    1: torch.nn.functional.conv_transpose1d,
    2: torch.nn.functional.conv_transpose2d,
    3: torch.nn.functional.conv_transpose3d,
}

TORCH_CASES = {
    "dcgan": Problem.create(batch=2, in_channels=8, out_channels=4, input=(4, 4), kernel=4,
                            stride=2, padding=1, bias=True, dtype="float64"),
    "k3-s2-op1": Problem.create(batch=2, in_channels=4, out_channels=6, input=(5, 3), kernel=3,
                                stride=2, padding=1, output_padding=1, dtype="float64"),
    "s3-d2-g2": Problem.create(batch=1, in_channels=4, out_channels=6, input=(4, 5), kernel=3,
                               stride=3, padding=2, dilation=2, output_padding=1, groups=2,
                               bias=True, dtype="float64"),
    "s5-k2-op3": Problem.create(batch=1, in_channels=2, out_channels=3, input=(1,), kernel=2,
                                stride=5, padding=1, output_padding=3, bias=True,
                                dtype="float64"),
    # the one tap lands at o = -1: the output is the bias alone, every gradient but its 0
    "bias-only": Problem.create(batch=2, in_channels=2, out_channels=3, input=(1,), kernel=1,
                                stride=3, padding=1, output_padding=2, bias=True,
                                dtype="float64"),
    "3d-s2-k3": Problem.create(batch=1, in_channels=2, out_channels=2, input=(3, 2, 3),
                               kernel=3, stride=(2, 1, 3), padding=(1, 0, 2), bias=True,
                               dtype="float64"),
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_conv_transpose(name: str, case: str) -> None:
    problem = TORCH_CASES[case]
    inputs = make_inputs(problem, 1)
    x, w = torch.from_numpy(inputs.x), torch.from_numpy(inputs.weight)
    b = None if inputs.bias is None else torch.from_numpy(inputs.bias)
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = CONV_T[problem.ndim](
        x, w, b, problem.stride, problem.padding, problem.output_padding, problem.groups,
        problem.dilation,
    )  # fmt: skip
    gy = torch.from_numpy(inputs.grad_output)
    gx, gw = torch.autograd.grad(y, (x, w), gy)
    strategy = registry.get(name)
    ready = prepare(strategy, problem, "forward", inputs)
    (got,) = ready.fetch(ready.call())
    ready = prepare(strategy, problem, "backward", inputs)
    grads = ready.fetch(ready.call())
    assert got == pytest.approx(y.detach().numpy(), abs=1e-10)
    assert grads[0] == pytest.approx(gx.numpy(), abs=1e-10)
    assert grads[1] == pytest.approx(gw.numpy(), abs=1e-10)
    if problem.bias:
        assert grads[2] == pytest.approx(gy.sum((0, *range(2, gy.dim()))).numpy(), abs=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_verified_on_the_dcgan_shape_in_float32(name: str) -> None:
    problem = Problem.create(batch=4, in_channels=32, out_channels=16, input=(8, 8), kernel=4,
                             stride=2, padding=1, bias=True)  # fmt: skip
    for pass_ in ("forward", "backward"):
        result = verify(registry.get(name), problem, pass_, seed=zlib.crc32(name.encode()))
        assert result.ok, result.message


@pytest.mark.parametrize("name", NAMES)
def test_takes_every_problem(name: str) -> None:
    """No refusals: dilation, groups, output_padding and 1-D to 3-D all have a fused form."""
    strategy = registry.get(name)
    for problem in EDGE_CASES.values():
        for pass_ in ("forward", "backward"):
            assert strategy.unsupported_reason(problem, pass_) is None

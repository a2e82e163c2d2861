"""``numpy/fft``: its helpers (sizes, tiling, folding, tap DFTs) and its conformance.

The conformance part runs the shared hypothesis problems and edge cases on ``FFT()``
directly, so the strategy is checked whether or not the registry lists it yet.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvbench.backends.numpy_ import fft
from deconvbench.backends.numpy_._layout import weight_grouped
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import verify
from deconvbench.problem import Pass, Problem

from problems import EDGE_CASES, problems

STRATEGY = fft.FFT()


def _smooth(value: int, primes: tuple[int, ...]) -> bool:
    for p in primes:
        while value % p == 0:
            value //= p
    return value == 1


# --- next_fast_len -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [(1, 1), (2, 2), (7, 8), (11, 12), (13, 15), (17, 18), (31, 32), (33, 36), (97, 100)],
)
def test_next_fast_len_known_values(target: int, expected: int) -> None:
    assert fft.next_fast_len(target) == expected


@given(st.integers(1, 5000))
def test_next_fast_len_is_the_smallest_smooth_length(target: int) -> None:
    found = fft.next_fast_len(target)
    assert found >= target and _smooth(found, (2, 3, 5))
    assert not any(_smooth(v, (2, 3, 5)) for v in range(target, found))


def test_next_fast_len_other_primes_and_bad_target() -> None:
    assert fft.next_fast_len(13, (2, 3, 5, 7, 11)) == 14
    with pytest.raises(ValueError, match="target"):
        fft.next_fast_len(0)


# --- plan --------------------------------------------------------------------------------


@settings(max_examples=50)
@given(problems())
def test_plan_grid_is_large_enough_and_fast(problem: Problem) -> None:
    plan = fft.make_plan(problem)
    for i, o, p, s, m, n in zip(
        problem.input, problem.output, problem.padding, problem.stride, plan.m, plan.n, strict=True
    ):
        assert m >= i and n == s * m and n >= o + p
        assert _smooth(m, fft.FAST_PRIMES)
        # M is the smallest fast length meeting both bounds.
        assert fft.next_fast_len(max(i, -(-(o + p) // s))) == m


# --- the tiling and folding identities ----------------------------------------------------


@given(st.integers(1, 12), st.integers(1, 4), st.integers(0, 3))
def test_zero_inserted_spectrum_is_the_tiled_small_spectrum(size: int, s: int, extra: int) -> None:
    m = size + extra
    x = np.random.default_rng(size * 31 + s).standard_normal(size)
    up = np.zeros(s * m)
    up[::s][:size] = x
    small = np.fft.fft(x, m)
    assert np.allclose(np.fft.fft(up), np.tile(small, s))


def _problem_1d_2d(draw_dims: tuple[int, ...] = (1, 2, 3)) -> st.SearchStrategy[Problem]:
    return problems(dtypes=("float64",), dims=draw_dims)


@settings(max_examples=30)
@given(_problem_1d_2d())
def test_input_spectrum_matches_fft_of_the_zero_inserted_input(problem: Problem) -> None:
    plan = fft.make_plan(problem)
    x = make_inputs(problem, 1).x
    up = np.zeros((*x.shape[:2], *plan.n))
    up[(..., *(slice(0, i * s, s) for i, s in zip(plan.input, plan.stride, strict=True)))] = x
    want = np.fft.rfftn(up, axes=tuple(range(2, 2 + problem.ndim)))
    g = problem.groups
    got = fft.input_spectrum(x, plan, g, conj=False, batch_rows=True)  # (g, *S, N, Cin_g)
    got = np.moveaxis(got, (-2, -1), (0, 2)).reshape(want.shape)
    assert np.allclose(got, want)
    conj = fft.input_spectrum(x, plan, g, conj=True, batch_rows=False)  # (g, *S, Cin_g, N)
    conj = np.moveaxis(conj, (-1, -2), (0, 2)).reshape(want.shape)
    assert np.allclose(conj, np.conj(want))


@settings(max_examples=30)
@given(_problem_1d_2d())
def test_fold_keeps_every_stride_th_sample(problem: Problem) -> None:
    plan = fft.make_plan(problem)
    rng = np.random.default_rng(2)
    signal = rng.standard_normal((2, problem.groups * 3, *plan.n))
    spec = np.fft.rfftn(signal, axes=tuple(range(2, 2 + problem.ndim)))
    grouped = spec.reshape(2, problem.groups, 3, *plan.spectrum)
    grouped = np.ascontiguousarray(np.moveaxis(grouped, (0, 2), (-2, -1)))
    got = fft.fold_to_input(grouped, plan, np.dtype(np.float64))
    index = tuple(slice(0, i * s, s) for i, s in zip(plan.input, plan.stride, strict=True))
    assert np.allclose(got, signal[(..., *index)])


# --- the kernel-side DFTs ----------------------------------------------------------------


def _placed_kernel(problem: Problem, plan: fft.Plan, w: np.ndarray) -> np.ndarray:
    """The kernel written out on the n grid at its (wrapped) tap positions."""
    placed = np.zeros((*w.shape[: -problem.ndim], *plan.n))
    for tap in np.ndindex(*problem.kernel):
        where = tuple(plan.taps[axis][k] for axis, k in enumerate(tap))
        placed[(..., *where)] += w[(..., *tap)]
    return placed


@settings(max_examples=30)
@given(_problem_1d_2d())
def test_kernel_spectrum_is_the_dft_of_the_placed_kernel(problem: Problem) -> None:
    plan = fft.make_plan(problem)
    w = weight_grouped(make_inputs(problem, 3).weight, problem.groups)
    axes = tuple(range(3, 3 + problem.ndim))
    want = np.fft.rfftn(_placed_kernel(problem, plan, w), axes=axes)
    for sign, expected in ((-1, want), (+1, np.conj(want))):
        got = np.moveaxis(fft.kernel_spectrum(w, plan, sign), (-2, -1), (1, 2))
        assert np.allclose(got, expected)


@settings(max_examples=30)
@given(_problem_1d_2d())
def test_sample_taps_inverts_at_the_tap_positions(problem: Problem) -> None:
    plan = fft.make_plan(problem)
    rng = np.random.default_rng(4)
    signal = rng.standard_normal((problem.groups, 2, 3, *plan.n))
    spec = np.fft.rfftn(signal, axes=tuple(range(3, 3 + problem.ndim)))
    got = fft.sample_taps(np.moveaxis(spec, (1, 2), (-2, -1)), plan, np.dtype(np.float64))
    want = signal[(..., *np.ix_(*(np.asarray(t) for t in plan.taps)))]
    assert np.allclose(got, want)


# --- conformance against the reference ---------------------------------------------------


def _check(problem: Problem, pass_: Pass) -> None:
    assert STRATEGY.unsupported_reason(problem, pass_) is None
    result = verify(STRATEGY, problem, pass_, seed=zlib.crc32(problem.spec().encode()))
    assert result.ok, f"numpy/fft {pass_} {problem}: {result.message}"


@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_random_problems(pass_: Pass) -> None:
    @settings(max_examples=60)
    @given(problem=problems())
    def run(problem: Problem) -> None:
        _check(problem, pass_)

    run()


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_edge_cases(pass_: Pass, case: str) -> None:
    _check(EDGE_CASES[case], pass_)


@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_float32_with_long_transforms(pass_: Pass) -> None:
    """FFT rounding grows with log n: a 1-D grid of ~1000 points still meets the tolerance."""
    problem = Problem.create(
        batch=2,
        in_channels=8,
        out_channels=4,
        input=(240,),
        kernel=63,
        stride=4,
        padding=5,
        dilation=2,
        bias=True,
    )
    assert fft.make_plan(problem).n[0] >= 1000
    _check(problem, pass_)


def test_results_keep_the_problem_dtype_and_layout() -> None:
    problem = EDGE_CASES["groups-2"]
    inputs = make_inputs(problem, 0)
    forward = STRATEGY.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    (y,) = forward.fetch(forward.call())
    assert y is not None and y.dtype == np.float32 and y.flags.c_contiguous
    backward = STRATEGY.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    gx, gw, gb = backward.fetch(backward.call())
    assert gx is not None and gw is not None and gb is not None
    assert gx.dtype == gw.dtype == gb.dtype == np.float32
    assert gx.shape == problem.x_shape and gw.shape == problem.weight_shape
    assert gx.flags.c_contiguous and gw.flags.c_contiguous


def test_absurd_problem_is_refused_with_its_memory_need() -> None:
    huge = Problem.create(
        batch=4096, in_channels=4096, out_channels=4096, input=(256, 256), kernel=4, stride=2
    )
    reason = STRATEGY.unsupported_reason(huge, "forward")
    assert reason is not None and "GiB" in reason
    assert STRATEGY.unsupported_reason(EDGE_CASES["3d"], "backward") is None


def test_cropped_away_products_give_exact_zeros() -> None:
    """Padding that crops every product: exact zeros (the tolerance has no scale to use)."""
    problem = Problem.create(
        batch=1,
        in_channels=1,
        out_channels=1,
        input=(1, 1),
        kernel=1,
        stride=(1, 4),
        padding=(0, 1),
        output_padding=(0, 2),
        bias=True,
    )
    assert not fft.reaches_output(problem)
    assert fft.reaches_output(EDGE_CASES["padding-crops-taps"])
    for pass_ in ("forward", "backward"):
        _check(problem, pass_)

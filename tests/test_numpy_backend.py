"""Unit tests of the numpy backend's helpers: index maps, padding, im2col, phase decomposition.

End-to-end correctness of every strategy is the conformance suite's job; these tests pin
the building blocks against naive loops, so a failure points at the helper, not at a
whole strategy. They also force each lowering of ``numpy/subpixel``, which the automatic
choice would otherwise exercise only on the shapes that happen to favour it.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvbench import reference, registry
from deconvbench.backends.numpy_ import (
    _batch_split,
    _single_pixel,
    gemm_col2im,
    subpixel,
    zero_insert,
)
from deconvbench.backends.numpy_._conv import (
    correlate,
    embed,
    grad_output_cols,
    grad_output_cols_batch_last,
    grouped_view,
    im2col,
    placement,
    windows,
)
from deconvbench.backends.numpy_._layout import phase_tap_slices, phases, phases_1d
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import verify
from deconvbench.problem import Problem

from problems import EDGE_CASES, problems

MINE = ("numpy/zero-insert", "numpy/gemm-col2im", "numpy/subpixel")


# --- placement and embed ---------------------------------------------------------------


@given(
    size=st.integers(1, 12),
    length=st.integers(1, 30),
    offset=st.integers(-20, 20),
    step=st.integers(1, 5),
)
def test_placement_matches_a_loop(size: int, length: int, offset: int, step: int) -> None:
    pairs = [(i, offset + i * step) for i in range(size) if 0 <= offset + i * step < length]
    sl = placement(size, length, offset, step)
    if not pairs:
        assert sl is None
        return
    assert sl is not None
    src, dst = sl
    assert list(range(size)[src]) == [i for i, _ in pairs]
    assert list(range(length)[dst]) == [o for _, o in pairs]


@pytest.mark.parametrize("batch_last", [False, True])
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=2),
    data=st.data(),
)
def test_embed_matches_a_loop(batch_last: bool, shape: list[int], data: st.DataObject) -> None:
    nd = len(shape)
    lengths = [data.draw(st.integers(1, 14)) for _ in shape]
    offsets = [data.draw(st.integers(-6, 6)) for _ in shape]
    steps = [data.draw(st.integers(1, 3)) for _ in shape]
    g, c, n = 2, 3, 2
    full = (g, c, *shape, n) if batch_last else (g, c, n, *shape)
    src = np.arange(np.prod(full), dtype=np.float64).reshape(full) + 1
    got = embed(src, lengths, offsets, steps, batch_last=batch_last)
    axes = list(range(2, 2 + nd)) if batch_last else list(range(3, 3 + nd))
    want_shape = list(full)
    for a, length in zip(axes, lengths, strict=True):
        want_shape[a] = length
    want = np.zeros(want_shape)
    for idx in itertools.product(*(range(s) for s in shape)):
        dst = [off + i * s for i, off, s in zip(idx, offsets, steps, strict=True)]
        if all(0 <= d < length for d, length in zip(dst, lengths, strict=True)):
            lead: tuple[Any, ...] = (slice(None), slice(None)) if batch_last else (...,)
            at: tuple[Any, ...] = (*lead, *dst)
            frm: tuple[Any, ...] = (*lead, *idx)
            want[at] = src[frm]
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_grouped_view_writes_through() -> None:
    a = np.zeros((2, 6, 3))
    v = grouped_view(a, 3)
    assert v.shape == (3, 2, 2, 3)
    v[1, 0, 1, 2] = 7.0  # group 1, channel 0 of the group = channel 2, batch 1
    assert a[1, 2, 2] == 7.0
    assert grouped_view(a, 3, batch_last=True).shape == (3, 2, 3, 2)


# --- windows / im2col / correlate ------------------------------------------------------


@st.composite
def window_cases(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], list[int], bool]:
    nd = draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 3)) for _ in range(nd)]
    dilation = [draw(st.integers(1, 3)) for _ in range(nd)]
    stride = [draw(st.integers(1, 3)) for _ in range(nd)]
    out = [draw(st.integers(1, 4)) for _ in range(nd)]
    return kernel, dilation, stride, out, draw(st.booleans())


@given(case=window_cases())
def test_im2col_matches_a_loop(
    case: tuple[list[int], list[int], list[int], list[int], bool],
) -> None:
    kernel, dilation, stride, out, batch_last = case
    # one spare element per dimension: windows must ignore what lies beyond the last one
    size = [
        (q - 1) * s + d * (k - 1) + 2
        for q, s, d, k in zip(out, stride, dilation, kernel, strict=True)
    ]
    g, c, n = 2, 2, 3
    shape = (g, c, *size, n) if batch_last else (g, c, n, *size)
    rng = np.random.default_rng(0)
    src = rng.standard_normal(shape)
    cols = im2col(src, kernel, dilation, stride, out, batch_last)
    taps = list(itertools.product(*(range(k) for k in kernel)))
    positions = list(itertools.product(*(range(q) for q in out)))
    want = np.empty((g, c * len(taps), n * len(positions)))
    for ci, (ti, tap) in itertools.product(range(c), enumerate(taps)):
        row = ci * len(taps) + ti
        for nn, (pi, q) in itertools.product(range(n), enumerate(positions)):
            col = pi * n + nn if batch_last else nn * len(positions) + pi
            at = [qq * s + k * d for qq, s, k, d in zip(q, stride, tap, dilation, strict=True)]
            frm: tuple[Any, ...] = (
                (slice(None), ci, *at, nn) if batch_last else (slice(None), ci, nn, *at)
            )
            want[:, row, col] = src[frm]
    assert cols.shape == want.shape
    np.testing.assert_array_equal(cols, want)


@settings(max_examples=60)
@given(problem=problems())
def test_batch_last_grad_output_cols_are_the_columns_reordered(problem: Problem) -> None:
    """The phase-plane im2col gives the strided gather's columns, ``(n, *i)`` → ``(*i, n)``."""
    gy = make_inputs(problem, 2).grad_output
    want = grad_output_cols(problem, gy)
    g, rows = want.shape[:2]
    want = want.reshape(g, rows, problem.batch, -1).transpose(0, 1, 3, 2).reshape(g, rows, -1)
    np.testing.assert_array_equal(grad_output_cols_batch_last(problem, gy), want)


def test_windows_refuses_a_too_small_input() -> None:
    src = np.zeros((1, 1, 1, 4))
    with pytest.raises(ValueError, match="too small"):
        windows(src, [3], [1], [2], [2])  # needs (2-1)*2 + 3 = 5 samples


def test_correlate_matches_a_loop() -> None:
    rng = np.random.default_rng(1)
    src = rng.standard_normal((1, 3, 2, 9))  # (g, C, N, S)
    w = rng.standard_normal((1, 4, 3 * 2))  # (g, Co, C·K), K = 2
    got = correlate(src, w, [2], [3], [2], [2])  # dilation 3, stride 2, two outputs
    wk = w.reshape(1, 4, 3, 2)
    want = np.zeros((1, 4, 2, 2))
    for co, n, q in itertools.product(range(4), range(2), range(2)):
        want[0, co, n, q] = sum(
            wk[0, co, c, k] * src[0, c, n, q * 2 + k * 3] for c in range(3) for k in range(2)
        )
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --- phase decomposition ---------------------------------------------------------------


@given(
    size_out=st.integers(1, 20),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 5),
    padding=st.integers(0, 8),
    dilation=st.integers(1, 4),
)
def test_phases_cover_every_output_once_with_the_right_taps(
    size_out: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    dim = phases_1d(size_out, kernel, stride, padding, dilation)
    assert [ph.rho for ph in dim] == list(range(stride))
    covered: list[int] = []
    for ph in dim:
        outputs = list(range(size_out)[ph.out_slice]) if ph.count else []
        assert len(outputs) == ph.count
        covered += outputs
        taps = list(range(kernel)[ph.kernel_slice]) if ph.taps else []
        assert taps == [k for k in range(kernel) if (k * dilation) % stride == ph.rho]
        for o, (j, k) in itertools.product(outputs, enumerate(taps)):
            assert (o + padding) % stride == ph.rho
            m = (o + padding - ph.rho) // stride
            i = m - (ph.t0 + j * ph.tstep)  # the input this tap links to o
            assert o == i * stride - padding + k * dilation
    assert sorted(covered) == list(range(size_out))


@given(
    size_in=st.integers(1, 8),
    kernel=st.integers(1, 6),
    stride=st.integers(1, 4),
    padding=st.integers(0, 6),
    dilation=st.integers(1, 3),
)
def test_phase_tap_slices_match_the_definition(
    size_in: int, kernel: int, stride: int, padding: int, dilation: int
) -> None:
    size_out = (size_in - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1
    if size_out < 1:
        return
    for ph in phases_1d(size_out, kernel, stride, padding, dilation):
        for j in range(ph.taps):
            k = ph.k0 + j * ph.kstep
            want = [
                (i, (i * stride - padding + k * dilation + padding - ph.rho) // stride - ph.m_lo)
                for i in range(size_in)
                if 0 <= i * stride - padding + k * dilation < size_out
            ]
            sl = phase_tap_slices(ph, j, size_in)
            got = (
                []
                if sl is None
                else list(zip(range(size_in)[sl[0]], range(ph.count)[sl[1]], strict=True))
            )
            assert got == want


# --- strategies ------------------------------------------------------------------------


@pytest.mark.parametrize("lowering", ["im2col", "shifted"])
@settings(max_examples=40)
@given(problem=problems())
def test_subpixel_each_lowering_matches_the_reference(
    lowering: subpixel.Lowering, problem: Problem
) -> None:
    inputs = make_inputs(problem, 3)
    got = subpixel.forward(problem, inputs.x, inputs.weight, inputs.bias, lowering)
    want = reference.forward(problem, inputs.x, inputs.weight, inputs.bias)
    check = reference.compare("output", got, want, problem.dtype, problem.reduction_forward)
    assert check.ok, check.message


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("lowering", ["im2col", "shifted"])
def test_subpixel_each_lowering_on_edge_cases(lowering: subpixel.Lowering, case: str) -> None:
    problem = EDGE_CASES[case]
    inputs = make_inputs(problem, 4)
    got = subpixel.forward(problem, inputs.x, inputs.weight, inputs.bias, lowering)
    want = reference.forward(problem, inputs.x, inputs.weight, inputs.bias)
    check = reference.compare("output", got, want, problem.dtype, problem.reduction_forward)
    assert check.ok, check.message


def _verify_both_passes(name: str, problem: Problem) -> None:
    strategy = registry.get(name)
    for pass_ in ("forward", "backward"):
        result = verify(strategy, problem, pass_, seed=5)
        assert result.ok, (pass_, [c.message for c in result.checks if not c.ok])


@pytest.mark.parametrize("columns", [1, 10**9])  # every problem per image / every one folded
@pytest.mark.parametrize("stacked", [True, False])
@pytest.mark.parametrize("parts", [1, 3])
@settings(max_examples=30)
@given(problem=problems())
def test_gemm_col2im_each_layout_matches_the_reference(
    columns: int, stacked: bool, parts: int, problem: Problem
) -> None:
    """The layout depends on the image size, which the random problems rarely reach: force
    each, each way of summing the weight gradient, and the batch whole or in parts (the
    folded layout's threads)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gemm_col2im, "PER_IMAGE_COLUMNS", columns)
        mp.setattr(gemm_col2im, "_stacked_grad_weight", lambda _problem: stacked)
        mp.setattr(_batch_split, "parts", lambda batch, _columns: min(parts, batch))
        _verify_both_passes("numpy/gemm-col2im", problem)


def test_batch_bounds_split_the_batch_in_order_and_nearly_evenly() -> None:
    for batch, count in [(1, 1), (7, 3), (16, 2), (5, 5)]:
        ranges = _batch_split.bounds(batch, count)
        assert [lo for lo, _ in ranges] == [0, *(hi for _, hi in ranges[:-1])]
        assert ranges[-1][1] == batch
        assert max(hi - lo for lo, hi in ranges) - min(hi - lo for lo, hi in ranges) <= 1


def test_batch_parts_follow_the_blas_threads_and_keep_wide_gemms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_batch_split, "blas_threads", lambda: 4)
    wide = _batch_split.SPLIT_COLUMNS
    assert _batch_split.parts(16, wide) == 4  # one per thread
    assert _batch_split.parts(3, wide) == 3  # at most one entry a part
    assert _batch_split.parts(16, wide // 8) == 2  # each part keeps SPLIT_COLUMNS columns
    assert _batch_split.parts(16, 1) == 1
    monkeypatch.setattr(_batch_split, "blas_threads", lambda: 1)
    assert _batch_split.parts(16, wide) == 1


def test_parts_run_in_their_own_threads_on_a_single_threaded_blas() -> None:
    """Results in order; the first part in the calling thread and the others in the pool's;
    the BLAS on one thread inside each part; its count restored."""
    import threading

    before = _batch_split.blas_threads()
    seen = _batch_split.in_parts(
        3, lambda i: (i, threading.get_ident(), _batch_split.blas_threads())
    )
    assert [i for i, _, _ in seen] == [0, 1, 2]
    here = threading.get_ident()
    assert seen[0][1] == here and all(ident != here for _, ident, _ in seen[1:])
    assert all(threads == 1 for _, _, threads in seen)
    assert _batch_split.blas_threads() == before


def test_a_failing_part_leaves_the_blas_threads_as_they_were() -> None:
    before = _batch_split.blas_threads()

    def work(i: int) -> int:
        if i == 0:
            raise ValueError("part 0")
        return i

    with pytest.raises(ValueError, match="part 0"):
        _batch_split.in_parts(2, work)
    assert _batch_split.blas_threads() == before


@pytest.mark.parametrize(
    "geometry",
    [
        {"kernel": 4},  # the output is the kernel: the GEMM alone
        {"kernel": 3, "padding": 1},  # cropped taps
        {"kernel": 3, "dilation": 2, "output_padding": 1},  # gaps and a tail no tap reaches
        {"kernel": 1, "padding": 1, "dilation": 3, "output_padding": 2},  # no tap lands: 0
        {"kernel": 3, "groups": 2},
    ],
)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_single_pixel_inputs_match_the_reference(geometry: dict[str, Any], ndim: int) -> None:
    problem = Problem.create(
        batch=3, in_channels=4, out_channels=6, input=(1,) * ndim, bias=True, **geometry
    )
    assert _single_pixel.applies(problem)
    _verify_both_passes("numpy/gemm-col2im", problem)


def _dcgan(cin: int, cout: int, size: int, stride: int, padding: int) -> Problem:
    return Problem.create(
        batch=16,
        in_channels=cin,
        out_channels=cout,
        input=(size, size),
        kernel=4,
        stride=stride,
        padding=padding,
    )


def test_subpixel_lowering_choice_follows_the_channel_ratio() -> None:
    """Few output channels make im2col's input copies dominate; many favour one big GEMM."""

    def shifted(problem: Problem) -> bool:
        combo = next(iter(itertools.product(*phases(problem))))
        padded = (1, problem.in_channels, problem.input[0] + 2, problem.input[1] + 2, 16)
        return subpixel._shifted_is_cheaper(
            combo, padded, problem.in_channels, problem.out_channels, problem.input
        )

    assert shifted(_dcgan(64, 3, 32, 2, 1))
    assert not shifted(_dcgan(512, 256, 4, 2, 1))


def test_sparse_input_is_the_zero_dilated_padded_input() -> None:
    problem = Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(3,), kernel=3, stride=2, padding=1
    )
    x = np.array([[[1.0, 2.0, 3.0]]])
    xs = zero_insert.sparse_input(problem, x)
    # pad d(K-1)-p = 1 each side, stride 2 zeros between: 0 1 0 2 0 3 0
    np.testing.assert_array_equal(xs[0, 0, 0], [0, 1, 0, 2, 0, 3, 0])


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_keep_the_problem_dtype(name: str, dtype: str) -> None:
    problem = Problem.create(
        batch=2,
        in_channels=4,
        out_channels=6,
        input=(5, 4),
        kernel=3,
        stride=2,
        padding=1,
        groups=2,
        bias=True,
        dtype=dtype,
    )
    inputs = make_inputs(problem, 0)
    strategy = registry.get(name)
    prepared = strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    (y,) = prepared.fetch(prepared.call())
    assert y is not None and y.dtype == np.dtype(dtype) and y.shape == problem.y_shape
    prepared = strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    grads = prepared.fetch(prepared.call())
    shapes = (problem.x_shape, problem.weight_shape, problem.bias_shape)
    for grad, shape in zip(grads, shapes, strict=True):
        assert grad is not None and grad.dtype == np.dtype(dtype) and grad.shape == shape

"""``numba/subpixel-fused`` beyond the conformance suite and ``test_subpixel_fused.py``
(which check it against the reference and against torch): the fused geometry it maps the
real weight into, and its pixel shuffle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from deconvbench.backends.numba_ import _fused_geometry as fgeom
from deconvbench.backends.numba_._common import numba_unavailable_reason
from deconvbench.backends.numpy_._fused import fused_axes, wasted_fraction
from deconvbench.problem import Problem

from problems import EDGE_CASES, problems

needs_numba = pytest.mark.skipif(
    numba_unavailable_reason() is not None, reason="numba is not installed"
)


@settings(max_examples=200)
@given(problems())
def test_every_real_tap_has_its_own_fused_slot(problem: Problem) -> None:
    """The taps land in distinct (phase, slot) pairs of the fused kernel, and the empty ones
    are exactly the wasted share."""
    fg = fgeom.fused_geometry(problem)
    slots = math.prod(fg.geo.kernel)
    assert fg.phases == math.prod(problem.stride)
    assert fg.geo.cout_g == fg.phases * fg.cout_g
    pairs = set(zip(fg.rho.tolist(), fg.slot.tolist(), strict=True))
    assert len(pairs) == math.prod(problem.kernel)
    assert all(0 <= r < fg.phases and 0 <= q < slots for r, q in pairs)
    assert 1 - len(pairs) / (fg.phases * slots) == pytest.approx(wasted_fraction(problem))
    dest, row, full = fgeom.forward_pack(fg)
    assert len(set(dest.tolist())) == dest.size  # no two taps share a packed place
    assert full == (len(pairs) == fg.phases * slots)
    assert int(dest.max()) < fg.cout_g * row * fg.phases


@settings(max_examples=200)
@given(problems())
def test_the_fused_problem_is_a_stride_1_transposed_convolution(problem: Problem) -> None:
    """Real tap k feeds output ``i·s − p + k·d`` from input i; in the fused problem it is
    phase ``rho`` of entry ``z = i − M0 + k'·D``, i.e. output ``(M0 + z)·s + rho − p``."""
    axes = fused_axes(problem)
    fg = fgeom.fused_geometry(problem)
    nd = problem.ndim
    for dim, a in enumerate(axes):
        g = 3 - nd + dim
        first, dilation = fg.geo.padding[g], fg.geo.dilation[g]
        assert fg.geo.stride[g] == 1
        for k in range(problem.kernel[dim]):
            k_prime = a.slots - 1 - a.slot[k]
            for i in range(problem.input[dim]):
                z = i - first + k_prime * dilation
                o = (first + z) * a.stride + a.rho[k] - problem.padding[dim]
                assert o == i * a.stride - problem.padding[dim] + k * problem.dilation[dim]


@needs_numba
@pytest.mark.parametrize("case", ["asymmetric", "3d", "groups-2", "dilation-and-stride", "1d"])
def test_the_pixel_shuffle_and_its_inverse(case: str) -> None:
    """Space-to-depth then depth-to-space gives grad_output back; space-to-depth fills the
    entries the crop drops with zeros."""
    from deconvbench.backends.numba_ import _fused_kernels as fk

    problem = EDGE_CASES[case]
    fg = fgeom.fused_geometry(problem)
    geo = fg.geo
    out = (1,) * (3 - problem.ndim) + tuple(problem.output)
    out3 = (out[0], out[1], out[2])
    y = np.random.default_rng(0).uniform(1, 2, math.prod(problem.y_shape))
    z = np.full(geo.batch * geo.groups * geo.cout_g * math.prod(geo.output), np.nan)
    args = (geo.batch, geo.groups, fg.cout_g, geo.output, fg.stride, out3, fg.crop)
    fk.pixel_shuffle(z, y, *args, False)
    assert not np.isnan(z).any()
    assert np.count_nonzero(z) == y.size  # every output once, zeros elsewhere
    back = np.full_like(y, np.nan)
    fk.pixel_shuffle(z, back, *args, True)
    assert np.array_equal(back, y)

"""``numba/direct``: the definition as parallel loops over NC(D)HW arrays.

The baseline of the numba backend: no layout change, no blocking, no fast-math; each
output plane, input plane or weight pair is one parallel iteration (see
``_direct_kernels``). What ``numba/tiled`` gains over it is the gain of layout, blocking
and SIMD alone.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._common import Call, NumbaStrategy, bias_or_zeros, flat
from ._geometry import Geometry, tap_slices


def _tables(geo: Geometry) -> list[Array]:
    return [tap_slices(*axis) for axis in geo.axes()]


class Direct(NumbaStrategy):
    algorithm = "direct"
    description = (
        "the definition in parallel loops: scatter per output plane, gather per input "
        "plane, one reduction per weight; NC(D)HW, no blocking"
    )

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The results and a zero bias: the kernels write straight into them, no scratch."""
        return (problem.result_elements(pass_) + problem.out_channels) * problem.itemsize

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        from . import _direct_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        xf, wf = flat(x, dtype), flat(weight, dtype)
        bf = bias_or_zeros(bias, problem.out_channels, dtype)
        tabs = _tables(geo)
        size = math.prod(problem.y_shape)
        shape = problem.y_shape
        args = (geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input, geo.output)
        kernel, stride = geo.kernel, geo.stride

        def call() -> Array:
            y = np.empty(size, dtype=dtype)
            kern.forward(xf, wf, bf, y, *args, kernel, stride, *tabs)
            return y.reshape(shape)

        return call

    def backward_call(self, problem: Problem, grad_output: Array, x: Array, weight: Array) -> Call:
        from . import _direct_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        gyf, xf, wf = flat(grad_output, dtype), flat(x, dtype), flat(weight, dtype)
        tabs = _tables(geo)
        args = (geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input, geo.output)
        kernel, stride = geo.kernel, geo.stride
        cout, osize = problem.out_channels, math.prod(problem.output)
        has_bias = problem.bias

        def call() -> tuple[Array, Array, Array | None]:
            gx = np.empty(xf.size, dtype=dtype)
            gw = np.empty(wf.size, dtype=dtype)
            kern.grad_input(gyf, wf, gx, *args, kernel, stride, *tabs)
            kern.grad_weight(gyf, xf, gw, *args, kernel, stride, *tabs)
            gb = None
            if has_bias:
                gb = np.empty(cout, dtype=dtype)
                kern.channel_sums(gyf, gb, geo.batch, cout, osize)
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call

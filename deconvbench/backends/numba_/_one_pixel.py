"""A one-pixel input (a latent vector's projection: padding 0, output = kernel): no phases
and no layout, ``numba/tiled``'s forward and grad_weight are GEMMs of the NC(D)HW arrays
as they are (``_axpy_kernels.dense_rows``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...problem import Problem
from ..strategy import Array
from ._common import Call, bias_or_zeros, flat
from ._geometry import Geometry


def one_pixel(geo: Geometry) -> bool:
    """Whether the input is one pixel whose taps are the output itself (a latent vector's
    projection: padding 0, output = kernel): then forward and grad_weight are GEMMs of the
    NC(D)HW arrays as they are (``_axpy_kernels.dense_rows``)."""
    return all(
        i == 1 and p == 0 and o == k and (d == 1 or k == 1) for i, o, k, _, p, d in geo.axes()
    )


def dense_forward(
    problem: Problem, geo: Geometry, x: Array, weight: Array, bias: Array | None
) -> Call:
    """A one-pixel input's forward: ``y[n] = x[n] · w`` per group, straight from NC(D)HW."""
    from . import _axpy_kernels as axpy

    dtype = np.dtype(problem.dtype)
    xf, wf = flat(x, dtype), flat(weight, dtype)
    bf = bias_or_zeros(bias, problem.out_channels, dtype)
    G, cin_g, taps = geo.groups, geo.cin_g, math.prod(geo.kernel)
    J = geo.cout_g * taps  # one group's outputs of one batch entry
    strides = ((cin_g, G * cin_g, 1), (cin_g * J, J, 0), (J, G * J, 0))

    def call() -> Array:
        y = np.empty(geo.batch * G * J, dtype=dtype)
        axpy.dense_rows(xf, wf, y, bf, G, geo.batch, cin_g, J, taps, *strides)
        return y.reshape(problem.y_shape)

    return call


def dense_weight_grad(
    geo: Geometry, dtype: np.dtype[np.generic]
) -> Callable[[Array, Array, Array], None]:
    """A one-pixel input's grad_weight: ``gw[ci] = Σ_n x[n, ci] · grad_output[n]`` per
    group, with no scratch."""
    from . import _axpy_kernels as axpy

    G, cin_g, taps = geo.groups, geo.cin_g, math.prod(geo.kernel)
    J = geo.cout_g * taps
    zeros = np.zeros(G * geo.cout_g, dtype=dtype)
    strides = ((cin_g, 1, G * cin_g), (J, G * J, 0), (cin_g * J, J, 0))

    def step(xf: Array, gyf: Array, gw: Array) -> None:
        axpy.dense_rows(xf, gyf, gw, zeros, G, cin_g, geo.batch, J, taps, *strides)

    return step

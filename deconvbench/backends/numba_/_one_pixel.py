"""A one-pixel input (a latent vector's projection: padding 0, output = kernel): no phases,
``numba/tiled``'s forward and gradients are GEMMs. The forward and grad_weight take the
NC(D)HW arrays as they are (grad_weight on GEMM tiles where its rows are whole tile rows,
``_one_pixel_kernels``, else ``_axpy_kernels.dense_rows``); grad_input reads grad_output
batch-innermost, its batch entries the tiles' lanes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...problem import Problem
from ..strategy import Array
from ._common import Call, bias_or_zeros, flat
from ._geometry import VECTOR_BYTES, Geometry
from ._grad_operands import lane_vectors, tile_width


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
    group, with no scratch: on GEMM tiles (``_one_pixel_kernels.dense_weight_tiles``)
    where a group's ``J = Cout_g·taps`` outputs are whole tile rows, else by rows."""
    from . import _axpy_kernels as axpy

    G, cin_g, taps = geo.groups, geo.cin_g, math.prod(geo.kernel)
    J = geo.cout_g * taps
    vectors = lane_vectors(J, dtype.itemsize)
    if J % tile_width(dtype.itemsize, vectors) == 0:
        from . import _one_pixel_kernels as dense

        def tiles(xf: Array, gyf: Array, gw: Array) -> None:
            dense.dense_weight_tiles(xf, gyf, gw, geo.batch, G, cin_g, J, vectors)

        return tiles
    zeros = np.zeros(G * geo.cout_g, dtype=dtype)
    strides = ((cin_g, 1, G * cin_g), (J, G * J, 0), (cin_g * J, J, 0))

    def step(xf: Array, gyf: Array, gw: Array) -> None:
        axpy.dense_rows(xf, gyf, gw, zeros, G, cin_g, geo.batch, J, taps, *strides)

    return step


def _padded_batch(geo: Geometry, itemsize: int) -> int:
    """The batch rounded up to whole SIMD vectors: the lanes of :func:`dense_input_grad`."""
    lanes = VECTOR_BYTES // itemsize
    return -(-geo.batch // lanes) * lanes


def dense_input_bytes(geo: Geometry, itemsize: int) -> int:
    """:func:`dense_input_grad`'s scratch: grad_output batch-innermost."""
    return geo.groups * geo.cout_g * math.prod(geo.kernel) * _padded_batch(geo, itemsize) * itemsize


def dense_input_grad(geo: Geometry, dtype: np.dtype[np.generic]) -> Callable[[Array, Array], Array]:
    """A one-pixel input's grad_input: ``gx[n] = grad_output[n] · wᵀ`` per group, on GEMM
    tiles whose lanes are batch entries (``_one_pixel_kernels.dense_input_tiles``: each
    weight row is read once); grad_output is laid batch-innermost first, into scratch
    allocated here (its padding lanes stay zero)."""
    from . import _layout_kernels as lay
    from . import _one_pixel_kernels as dense

    N, G, cin_g = geo.batch, geo.groups, geo.cin_g
    J = geo.cout_g * math.prod(geo.kernel)
    Np = _padded_batch(geo, dtype.itemsize)
    gyt = np.zeros(G * J * Np, dtype=dtype)

    def step(gyf: Array, wf: Array) -> Array:
        lay.to_batch_inner(gyf, gyt, N, G * J, (1, 1, 1), Np)
        gx = np.empty(N * G * cin_g, dtype=dtype)
        dense.dense_input_tiles(gyt, wf, gx, N, G, cin_g, J, Np)
        return gx

    return step

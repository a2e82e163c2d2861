"""``numba/subpixel-fused``: sub-pixel in the ESPCN form, one convolution for every phase.

Where ``numba/tiled`` gathers each output phase with its own taps, this one pads every
phase's sub-kernel with zeros to a common window (the geometry of ``numpy_/_fused.py``,
shared with ``numpy/subpixel-fused`` and ``torch-*/subpixel-fused``) and stacks them as the
``P·Cout`` output channels (P = ∏s) of *one* stride-1 correlation over the input; a pixel
shuffle (depth-to-space, cropping to ``[0, O)``) then writes phase ``rho``'s channels to the
outputs ``m·s + rho − p``. That correlation is a stride-1 transposed convolution
(:mod:`._fused_geometry`), so it runs on ``numba/tiled``'s kernels: its GEMM tiles where
they fit, else channels-last input, packed weights (packed straight from the real weight,
the zero slots zeroed) and the 4×4 register-blocked gather; the bias rides in it,
repeated per phase.

Backward in the same fused form: grad_output's space-to-depth ``gz`` (positions the crop
dropped are zeros) is the fused correlation's output gradient, and the real weight laid
out as the fused kernel (zero slots) its weight; ``numba/tiled``'s backward
(``tiled.backward_step``: GEMM tiles, gathers or tap planes, as the fused shape suits)
computes grad_input and the fused kernel's gradient, whose real taps are then picked out.

**Wasted products.** When s does not divide k the padding zeros are multiplied like any
weight: a fraction ``1 − ∏k / ∏(s·L)`` (``numpy_._fused.wasted_fraction``; k3 s2 in 2-D:
44%). The row's note says it (``engine: wasted_products=…``). Every option is taken:
groups, dilation, output_padding, bias, 1-D to 3-D, float32/float64.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..numpy_._fused import ReportsWaste
from ..strategy import Array
from . import tiled
from ._common import Call, NumbaStrategy, flat
from ._fused_forward import fused_forward, fused_forward_bytes, three_out
from ._fused_geometry import fused_geometry, unpack_offsets


class SubpixelFused(ReportsWaste, NumbaStrategy):
    algorithm = "subpixel-fused"
    description = (
        "ESPCN sub-pixel: one correlation with s^d·Cout channels (phase sub-kernels "
        "zero-padded to one size) on tiled's kernels + pixel shuffle; wastes "
        "1 − ∏k/∏(s·⌈k/s⌉) of its products when s ∤ k"
    )

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Forward: :func:`fused_forward_bytes`. Backward: ``gz``, the fused weight and its
        gradient, ``numba/tiled``'s backward scratch on the fused problem, and the
        results."""
        if pass_ == "forward":
            return fused_forward_bytes(problem)
        geo = fused_geometry(problem).geo
        x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
        fused_w = geo.groups * geo.cout_g * geo.cin_g * math.prod(geo.kernel)
        z = geo.batch * geo.groups * geo.cout_g * math.prod(geo.output)
        results = x + w + (problem.out_channels if problem.bias else 0)
        own = (z + 2 * fused_w + results) * problem.itemsize
        return own + tiled.backward_scratch(geo, problem.itemsize)

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        return fused_forward(problem, x, weight, bias, tiled.columns, tiled.forward_on_tiles)

    def backward_call(self, problem: Problem, grad_output: Array, x: Array, weight: Array) -> Call:
        from . import _axpy_kernels as axpy
        from . import _fused_kernels as fk

        fg = fused_geometry(problem)
        geo = fg.geo
        dtype = np.dtype(problem.dtype)
        N, G, cout_g = geo.batch, geo.groups, fg.cout_g
        gyf, xf, wf = flat(grad_output, dtype), flat(x, dtype), flat(weight, dtype)
        out3 = three_out(problem)
        gz = np.empty(N * G * geo.cout_g * math.prod(geo.output), dtype=dtype)
        cin, slots = problem.in_channels, math.prod(geo.kernel)
        # the real weight in the fused layout (its zero slots stay zero), and back
        fused_w = np.zeros(cin * geo.cout_g * slots, dtype=dtype)
        unpack = unpack_offsets(fg)
        gradients = tiled.backward_step(geo, dtype)

        def call() -> tuple[Array, Array, Array | None]:
            fk.pixel_shuffle(gz, gyf, N, G, cout_g, geo.output, fg.stride, out3, fg.crop, False)
            fk.unpack_taps(fused_w, wf, cin, cout_g, slots, unpack, True)
            gx, gwf = gradients(gz, xf, fused_w)
            gw = np.empty(wf.size, dtype=dtype)
            fk.unpack_taps(gwf, gw, cin, cout_g, slots, unpack, False)
            gb = None
            if problem.bias:
                gb = np.empty(problem.out_channels, dtype=dtype)
                axpy.channel_sums(gyf, gb, N, problem.out_channels, math.prod(problem.output))
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call

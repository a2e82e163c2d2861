"""``numba/subpixel-fused``: sub-pixel in the ESPCN form, one convolution for every phase.

Where ``numba/tiled`` gathers each output phase with its own taps, this one pads every
phase's sub-kernel with zeros to a common window (the geometry of ``numpy_/_fused.py``,
shared with ``numpy/subpixel-fused`` and ``torch-*/subpixel-fused``) and stacks them as the
``P·Cout`` output channels (P = ∏s) of *one* stride-1 correlation over the input; a pixel
shuffle (depth-to-space, cropping to ``[0, O)``) then writes phase ``rho``'s channels to the
outputs ``m·s + rho − p``. That correlation is a stride-1 transposed convolution
(:mod:`._fused_geometry`), so it runs on ``numba/tiled``'s kernels: channels-last input,
packed weights (packed straight from the real weight, the zero slots zeroed), the 4×4
register-blocked gather; the bias rides in it, repeated per phase.

Backward in the same fused form: grad_output's space-to-depth ``gz`` (positions the crop
dropped are zeros) is the fused correlation's output gradient. grad_input is the fused
problem's grad_input (the gather from channels-last ``gz`` with the fused kernel, or as
``numba/tiled`` does when those dot products would be short, SIMD over space);
grad_weight its grad_weight (the input batch-innermost, ``gz`` in per-tap planes), whose
real taps are then picked out of the fused kernel's gradient.

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
from ._fused_geometry import fused_geometry, gather_tables, grad_input_pack, unpack_offsets
from ._geometry import skewed, source_stride
from ._tap_planes import TapPlanes, tap_planes_scratch


class SubpixelFused(ReportsWaste, NumbaStrategy):
    algorithm = "subpixel-fused"
    description = (
        "ESPCN sub-pixel: one correlation with s^d·Cout channels (phase sub-kernels "
        "zero-padded to one size) on tiled's 4x4 SIMD gathers + pixel shuffle; wastes "
        "1 − ∏k/∏(s·⌈k/s⌉) of its products when s ∤ k"
    )

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Forward: channels-last x, the packed fused weight, the fused result ``z``, y and
        the repeated bias. Backward: ``gz`` twice (NC(D)HW, and channels-last or grad_input
        batch-innermost), the per-tap planes (x batch-innermost, ``gz`` split), the fused
        weight (packed or whole), its gradient and the results."""
        geo = fused_geometry(problem).geo
        x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
        fused_w = geo.groups * geo.cout_g * geo.cin_g * math.prod(geo.kernel)
        z = geo.batch * geo.groups * geo.cout_g * math.prod(geo.output)
        if pass_ == "forward":
            return fused_forward_bytes(problem)
        results = x + w + (problem.out_channels if problem.bias else 0)
        own = max(z, x)  # channels-last gz, or grad_input batch-innermost
        return (z + own + tap_planes_scratch(geo) + 2 * fused_w + results) * problem.itemsize

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        return fused_forward(problem, x, weight, bias, tiled.columns, tiled.forward_on_tiles)

    def backward_call(self, problem: Problem, grad_output: Array, x: Array, weight: Array) -> Call:
        from . import _axpy_kernels as axpy
        from . import _fused_kernels as fk
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        fg = fused_geometry(problem)
        geo = fg.geo
        dtype = np.dtype(problem.dtype)
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, fg.cout_g
        fused_c = G * geo.cout_g  # P·Cout fused channels
        gyf, xf, wf = flat(grad_output, dtype), flat(x, dtype), flat(weight, dtype)
        out3 = three_out(problem)
        z_pixels = math.prod(geo.output)
        gz = np.empty(N * fused_c * z_pixels, dtype=dtype)

        cin, slots = problem.in_channels, math.prod(geo.kernel)
        # grad_weight: the fused problem's, its real taps then picked out
        planes = TapPlanes(geo, dtype)
        gwf = np.empty(cin * geo.cout_g * slots, dtype=dtype)
        unpack = unpack_offsets(fg)

        # grad_input: the fused problem's, as tiled chooses it: a gather from channels-last
        # gz, or when its dot products would be short, SIMD over space on the tap planes
        # with the fused weight laid out whole (its zero slots stay zero)
        if geo.cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1) < tiled.SHORT_DOT:
            fused_w = np.zeros(cin * geo.cout_g * slots, dtype=dtype)

            def grad_input() -> Array:
                fk.unpack_taps(fused_w, wf, cin, cout_g, slots, unpack, True)
                return planes.grad_input(fused_w)

        else:
            gi_dest, gi_row, gi_full = skewed(grad_input_pack(fg), cin_g)
            gi_d, gi_h, gi_w = gather_tables(fg, backward=True)
            sn = source_stride(z_pixels, geo.cout_g)
            gzs = np.empty(G * N * sn, dtype=dtype)
            wpi = np.empty(G * cin_g * gi_row, dtype=dtype)
            no_bias = np.zeros(cin, dtype=dtype)
            cols = tiled.columns(G * -(-N // 4) * geo.input[0] * geo.input[1], geo.input[2])

            def grad_input() -> Array:
                lay.to_channels_last(gz, gzs, N, G, geo.cout_g, z_pixels, sn)
                lay.pack_weights(wf, wpi, G, cin_g, cout_g, gi_dest, gi_row, gi_full, False)
                gx = np.empty(xf.size, dtype=dtype)
                kern.gather(
                    gzs, wpi, no_bias, gx, N, G, geo.cout_g, cin_g, geo.output, geo.input,
                    (1, 1, 1), geo.kernel, geo.dilation, gi_d, gi_h, gi_w, cols, (sn, gi_row),
                )  # fmt: skip
                return gx

        def call() -> tuple[Array, Array, Array | None]:
            fk.pixel_shuffle(gz, gyf, N, G, cout_g, geo.output, fg.stride, out3, fg.crop, False)
            planes.fill(xf, gz)
            planes.grad_weight(gwf)
            gw = np.empty(wf.size, dtype=dtype)
            fk.unpack_taps(gwf, gw, cin, cout_g, slots, unpack, False)
            gx = grad_input()
            gb = None
            if problem.bias:
                gb = np.empty(problem.out_channels, dtype=dtype)
                axpy.channel_sums(gyf, gb, N, problem.out_channels, math.prod(problem.output))
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call

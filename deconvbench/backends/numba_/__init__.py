"""The numba backend: JIT-compiled, parallel CPU kernels, forward and backward.

* ``numba/direct``: the definition as parallel loops over NC(D)HW (the baseline);
* ``numba/tiled``: phase-decomposed gathers on channels-last tiles with register-blocked
  SIMD dot products (the fast one);
* ``numba/subpixel-fused``: the ESPCN form, one stride-1 convolution with s^d·Cout
  channels (the phase sub-kernels zero-padded to one size) on tiled's kernels, then a
  pixel shuffle; its rows report the share of products that meet padding zeros.

All three take 1-D, 2-D and 3-D problems (as 3-D with unit dimensions), float32 and float64,
groups, dilation, output_padding and bias. Every parallel loop gives each result element
to exactly one iteration: no atomics, no races. Kernels are compiled (or loaded from
numba's on-disk cache) during preparation, never in a timed call; they run on
``numba.get_num_threads()`` threads.

numba is an optional extra (``pip install 'deconvbench[numba]'``): this package imports
without it, and its strategies are then listed unavailable with that hint.
"""

from __future__ import annotations

from ..strategy import Strategy
from ._common import INSTALL_HINT, numba_unavailable_reason
from .direct import Direct
from .subpixel_fused import SubpixelFused
from .tiled import Tiled


def strategies() -> list[Strategy]:
    """Entry point of the ``numba`` backend (group ``deconvbench.backends``)."""
    return [Direct(), Tiled(), SubpixelFused()]


__all__ = [
    "INSTALL_HINT",
    "Direct",
    "SubpixelFused",
    "Tiled",
    "numba_unavailable_reason",
    "strategies",
]

"""The numpy backend: six algorithms, forward and backward, 1-D to 3-D, BLAS underneath."""

from __future__ import annotations

from ..strategy import Strategy
from .direct import Direct
from .fft import FFT
from .gemm_col2im import GemmCol2im
from .subpixel import Subpixel
from .subpixel_fused import SubpixelFused
from .zero_insert import ZeroInsert


def strategies() -> list[Strategy]:
    """Entry point of the ``numpy`` backend (group ``deconvbench.backends``)."""
    return [Direct(), ZeroInsert(), GemmCol2im(), Subpixel(), SubpixelFused(), FFT()]

"""The torch backends: ``torch-cpu`` and ``torch-cuda``, the same strategies on each device.

* ``native`` (and ``native-channels-last``; ``native-cudnn-benchmark`` on CUDA): torch's own
  kernels, backward through ``aten.convolution_backward``.
* ``zero-insert``, ``gemm-col2im``, ``subpixel``, ``subpixel-fused``: the algorithms written in
  torch ops; their backward autograd over their own forward graph (the forward run in
  preparation), except the two sub-pixel ones, whose backward is written out.
* ``compiled``: ``torch.compile`` of the native forward and backward.

Without a CUDA build or device every ``torch-cuda`` strategy is listed, unavailable, with
the reason.
"""

from __future__ import annotations

from ._common import CPU, CUDA, Device
from ._strategy import TorchStrategy
from .compiled import Compiled
from .gemm_col2im import GemmCol2im
from .native import strategies as native_strategies
from .subpixel import Subpixel
from .subpixel_fused import SubpixelFused
from .zero_insert import ZeroInsert


def _strategies(device: Device) -> list[TorchStrategy]:
    return [
        *native_strategies(device),
        ZeroInsert(device),
        GemmCol2im(device),
        Subpixel(device),
        SubpixelFused(device),
        Compiled(device),
    ]


def cpu_strategies() -> list[TorchStrategy]:
    """Entry point of the ``torch-cpu`` backend (group ``deconvbench.backends``)."""
    return _strategies(CPU)


def cuda_strategies() -> list[TorchStrategy]:
    """Entry point of the ``torch-cuda`` backend (group ``deconvbench.backends``)."""
    return _strategies(CUDA)


__all__ = ["cpu_strategies", "cuda_strategies"]

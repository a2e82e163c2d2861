"""``native``: torch's own transposed convolution (oneDNN on CPU, cuDNN on CUDA).

Forward is ``F.conv_transpose{1,2,3}d``. Backward calls torch's convolution backward
directly, ``aten.convolution_backward(..., transposed=True, ...)``, the kernel autograd
itself would run, so it is timed without its forward and without autograd's bookkeeping;
``output_mask`` asks for grad_bias only when the problem has a bias.

Variants:

* ``native-channels-last``: inputs, weight and grad_output in ``channels_last`` (2-D) or
  ``channels_last_3d`` (3-D) memory format, converted in preparation; oneDNN and cuDNN then
  take their NHWC paths and return channels-last results (fetch reads them as they are).
* ``native-cudnn-benchmark`` (CUDA): ``torch.backends.cudnn.benchmark`` on, and the call run
  once during preparation so cuDNN's algorithm search happens there, never when timed.

cuDNN's plan cache (per thread) is keyed by the problem, dtype, layout, alignment and the
TF32/deterministic flags, but *not* by the benchmark flag: within one process, whichever of
``native`` and ``native-cudnn-benchmark`` first meets a shape fixes the plan both then use.
Compare them in separate processes, or run the benchmark variant first.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ...problem import Pass, Problem
from ..strategy import Array, Prepared
from ._common import CONV_TRANSPOSE, Device, fetch
from ._strategy import TorchStrategy

GradTuple = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def forward(
    problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    return CONV_TRANSPOSE[problem.ndim](
        x,
        weight,
        bias,
        problem.stride,
        problem.padding,
        problem.output_padding,
        problem.groups,
        problem.dilation,
    )


def backward(
    problem: Problem, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> GradTuple:
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad_output,
        x,
        weight,
        [problem.out_channels] if problem.bias else None,
        list(problem.stride),
        list(problem.padding),
        list(problem.dilation),
        True,
        list(problem.output_padding),
        problem.groups,
        [True, True, problem.bias],
    )
    return gx, gw, gb if problem.bias else None


class Native(TorchStrategy):
    algorithm = "native"
    description = "torch.nn.functional.conv_transpose{1,2,3}d; backward: aten convolution_backward"
    memory_format: ClassVar[dict[int, torch.memory_format]] = {}
    benchmark: ClassVar[bool] = False

    def _format(self, problem: Problem) -> torch.memory_format:
        return self.memory_format.get(problem.ndim, torch.contiguous_format)

    def _warm(self, prepared: Prepared) -> Prepared:
        """Run once where the call's one-time work (an algorithm search) must not be timed."""
        if self.benchmark:
            prepared.call()
            prepared.synchronize()
        return prepared

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        dev, fmt = self.torch_device, self._format(problem)
        xt = dev.tensor(x, problem.dtype, memory_format=fmt)
        wt = dev.tensor(weight, problem.dtype, memory_format=fmt)
        bt = None if bias is None else dev.tensor(bias, problem.dtype)

        def call() -> torch.Tensor:
            return forward(problem, xt, wt, bt)

        return self._warm(Prepared(dev.timed(call, self.benchmark), fetch, dev.synchronize))

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        dev, fmt = self.torch_device, self._format(problem)
        go = dev.tensor(grad_output, problem.dtype, memory_format=fmt)
        xt = dev.tensor(x, problem.dtype, memory_format=fmt)
        wt = dev.tensor(weight, problem.dtype, memory_format=fmt)

        def call() -> GradTuple:
            return backward(problem, go, xt, wt)

        return self._warm(Prepared(dev.timed(call, self.benchmark), fetch, dev.synchronize))


class NativeChannelsLast(Native):
    algorithm = "native-channels-last"
    description = "native on channels_last / channels_last_3d tensors (NHWC kernels)"
    dims = frozenset({2, 3})
    memory_format: ClassVar[dict[int, torch.memory_format]] = {
        2: torch.channels_last,
        3: torch.channels_last_3d,
    }

    def unsupported_reason(self, problem: Problem, pass_: Pass = "forward") -> str | None:
        if problem.ndim == 1:
            return (
                f"{self.name}: 1-D has no channels-last memory format (torch defines "
                "channels_last for 4-D and channels_last_3d for 5-D tensors only)"
            )
        return super().unsupported_reason(problem, pass_)


class NativeCudnnBenchmark(Native):
    algorithm = "native-cudnn-benchmark"
    description = "native with cuDNN autotuning (cudnn.benchmark), searched in preparation"
    benchmark: ClassVar[bool] = True


def strategies(device: Device) -> list[TorchStrategy]:
    found: list[TorchStrategy] = [Native(device), NativeChannelsLast(device)]
    if device.kind == "cuda":
        found.append(NativeCudnnBenchmark(device))
    return found

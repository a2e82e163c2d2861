"""What every torch strategy shares: devices, dtypes, numerics flags, tensors in and out.

A :class:`Device` knows how to move numpy inputs onto itself (in preparation, never in a
timed call), how to wait for its work, and which global flags a timed call must run under:

* On CUDA, float32 must be IEEE float32, not TF32: cuDNN convolutions default to TF32 on
  Ampere and later (``torch.backends.cudnn.allow_tf32`` is True out of the box), which
  would put float32 results outside float32 tolerance and time a different computation.
  The flags are global, so a call sets them and restores the caller's values when it
  returns; that costs about a microsecond per flag, on the CPU side of the launch.
* ``torch.backends.cudnn.benchmark`` is set per strategy (off, except for
  ``native-cudnn-benchmark``) so a user's global setting cannot change what ``native``
  means.

On CPU no flag matters (oneDNN computes float32 in float32 unless told otherwise), and a
call runs unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)

from ...problem import Problem
from ..strategy import Array

DeviceKind = Literal["cpu", "cuda"]
T = TypeVar("T")

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}

ALL_DTYPES = frozenset(TORCH_DTYPES)
"""torch has every dtype of deconvbench on both devices (checked op by op by the tests)."""

CONV: dict[int, Callable[..., torch.Tensor]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSE: dict[int, Callable[..., torch.Tensor]] = {
    1: F.conv_transpose1d,
    2: F.conv_transpose2d,
    3: F.conv_transpose3d,
}


def cuda_unavailable_reason() -> str | None:
    """Why torch cannot run on a CUDA device here, or None. Cheap: no CUDA context is made."""
    version = torch.__version__
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return (
            f"torch {version} is a CPU build (torch.version.cuda is None); "
            "install a CUDA build of torch to use torch-cuda"
        )
    if not torch.cuda.is_available():
        built = torch.version.cuda or f"ROCm {torch.version.hip}"
        return (
            f"no CUDA device visible (torch {version} is built for CUDA {built}, "
            "but torch.cuda.is_available() is False: no GPU, driver, or CUDA_VISIBLE_DEVICES)"
        )
    return None


# --- numerics flags (CUDA) --------------------------------------------------------------


def _read_flags() -> tuple[bool, bool, bool]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )


def _write_flags(flags: tuple[bool, bool, bool]) -> None:
    matmul_tf32, cudnn_tf32, benchmark = flags
    torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
    torch.backends.cudnn.benchmark = benchmark


@contextmanager
def cuda_numerics(benchmark: bool = False) -> Iterator[None]:
    """TF32 off and cuDNN autotuning on or off, the caller's flags restored afterwards."""
    saved = _read_flags()
    _write_flags((False, False, benchmark))
    try:
        yield
    finally:
        _write_flags(saved)


def with_cuda_numerics(fn: Callable[[], T], benchmark: bool = False) -> Callable[[], T]:
    """``fn`` run under :func:`cuda_numerics`, written out flat: it wraps every timed call."""
    wanted = (False, False, benchmark)

    def call() -> T:
        saved = _read_flags()
        _write_flags(wanted)
        try:
            return fn()
        finally:
            _write_flags(saved)

    return call


# --- devices ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """A torch device as the strategies see it."""

    kind: DeviceKind

    @property
    def backend(self) -> str:
        return f"torch-{self.kind}"

    def unavailable_reason(self) -> str | None:
        return cuda_unavailable_reason() if self.kind == "cuda" else None

    def tensor(
        self,
        array: Array,
        dtype: str,
        *,
        requires_grad: bool = False,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> torch.Tensor:
        """A fresh tensor on this device (bfloat16 values arrive as float32 and are cast)."""
        host = torch.from_numpy(np.ascontiguousarray(array))
        t = host.to(device=self.kind, dtype=TORCH_DTYPES[dtype], copy=True)
        t = t.contiguous(memory_format=memory_format)
        return t.requires_grad_(requires_grad)

    def zeros(
        self, shape: Sequence[int], dtype: str, *, requires_grad: bool = False
    ) -> torch.Tensor:
        return torch.zeros(
            tuple(shape), device=self.kind, dtype=TORCH_DTYPES[dtype], requires_grad=requires_grad
        )

    def synchronize(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize()

    @contextmanager
    def numerics(self, benchmark: bool = False) -> Iterator[None]:
        """The flags a call of this device runs under, for work done in preparation."""
        if self.kind != "cuda":
            yield
            return
        with cuda_numerics(benchmark):
            yield

    def timed(self, fn: Callable[[], T], benchmark: bool = False) -> Callable[[], T]:
        """``fn`` as the call to time: under this device's flags (nothing to set on CPU)."""
        return with_cuda_numerics(fn, benchmark) if self.kind == "cuda" else fn


CPU = Device("cpu")
CUDA = Device("cuda")


# --- results ----------------------------------------------------------------------------


def to_numpy(t: torch.Tensor) -> Array:
    """A host copy; bfloat16 comes back as float32 (numpy has no bfloat16)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.cpu().numpy()


def fetch(result: object) -> tuple[Array | None, ...]:
    """``Prepared.fetch`` for a call returning a tensor or a tuple of tensors (or None)."""
    items = result if isinstance(result, tuple) else (result,)
    return tuple(None if t is None else to_numpy(t) for t in items)


# --- problem helpers shared by the algorithms -------------------------------------------


def library_allowance(*elements: int) -> int:
    """Elements to allow for what oneDNN or cuDNN allocate inside one of their calls.

    Their workspaces are not visible through torch's API, so this is a rule of thumb, not
    an account: twice the operands and results of the call, since oneDNN reorders each
    operand (and the result back) between torch's layout and its blocked ones, and both
    libraries take a scratchpad of about that order. Measured on oneDNN (torch CPU,
    float32), no call took more than 1.6x what its operands and results hold; cuDNN's
    workspace depends on the algorithm it picks (``native-cudnn-benchmark`` may pick a
    hungrier one), which this does not know.
    """
    return 2 * sum(elements)


def slow_path_columns(device: Device, problem: Problem, columns: int) -> int:
    """``columns`` when torch's own CPU convolution kernels run this problem, else 0.

    oneDNN takes float32 convolutions on CPU; other dtypes (float64 always, float16 and
    bfloat16 without the CPU's native support) go to torch's ``slow_conv*`` kernels, which
    unfold their input into im2col buffers (the whole batch at once, in the forward) that
    oneDNN does not need. Callers say how many buffers of how many elements, as measured.
    """
    return 0 if device.kind != "cpu" or problem.dtype == "float32" else columns


def spatial_dims(problem: Problem) -> tuple[int, ...]:
    """Indices of the spatial dimensions of an activation or weight tensor."""
    return tuple(range(2, 2 + problem.ndim))


def conv_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """Transposed-convolution weight ``(Cin, Cout/g, *K)`` → the equivalent convolution's.

    ``conv_transpose(x, W)`` is ``conv(pad(dilate(x)), W')`` with ``W'`` of shape
    ``(Cout, Cin/g, *K)``: channels swapped within each group and every spatial axis
    flipped. One copy (the flip); the reshapes around it are views.
    """
    cin, cout_g = weight.shape[:2]
    kernel = weight.shape[2:]
    w = weight.reshape(groups, cin // groups, cout_g, *kernel).transpose(1, 2)
    w = w.flip(tuple(range(3, w.dim())))
    return w.reshape(groups * cout_g, cin // groups, *kernel)


def bias_view(bias: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(Cout,)`` → ``(1, Cout, 1, ...)`` to broadcast over an activation."""
    return bias.reshape((1, -1) + (1,) * ndim)


def pad_amounts(lo: Sequence[int], hi: Sequence[int]) -> list[int]:
    """``F.pad``'s argument order (last dimension first); negative amounts crop."""
    pads: list[int] = []
    for low, high in zip(reversed(lo), reversed(hi), strict=True):
        pads += [low, high]
    return pads

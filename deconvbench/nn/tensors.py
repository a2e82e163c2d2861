"""Tensors to numpy arrays and back, and the rule for when a copy is worth making.

The numpy and numba strategies (and any strategy run through ``prepare``/``call``/``fetch``)
take numpy arrays. :func:`host_view` hands them the tensor's own memory: a contiguous CPU
tensor of float16, float32 or float64 becomes a numpy view, no copy. Exactly three things
copy, and :func:`copy_bytes` counts them before a call so the caller can decide:

* an input that is not C-contiguous (a channels-last tensor, a slice, a transpose, the
  expanded grad_output of ``y.sum()``) is copied to a contiguous one first;
* a result that numpy holds read-only (JAX's buffers) is copied before torch wraps it;
* a result whose dtype is not the input's is cast (no built-in strategy does this).

Results wrap with ``torch.from_numpy``: the tensor shares the array's memory, no copy.

:func:`copy_pays` is the rule: a strategy that needs copies runs only when the time the
plan says it saves exceeds the time the copies are estimated to take at
:data:`COPY_BYTES_PER_MS`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..backends.strategy import Array
from ..backends.torch_._common import TORCH_DTYPES

TORCH_DTYPE_NAMES: dict[torch.dtype, str] = {t: name for name, t in TORCH_DTYPES.items()}
"""The dtypes a :class:`~deconvbench.problem.Problem` can have, by torch dtype."""

COPY_BYTES_PER_MS = 6e6
"""Bytes a strided copy moves per millisecond, for :func:`copy_pays` (6 GB/s).

Measured on the reference 2-vCPU EPYC with torch 2.13: NCHW to channels-last conversions of
0.5 to 8 MB ran at 6 to 13 GB/s, the reverse at 6 to 13 GB/s, a contiguous clone at 17 to
80 GB/s. The low end is taken so a copy is never assumed cheaper than it is.
"""


def host_view(t: torch.Tensor) -> Array:
    """``t``'s values as a C-contiguous numpy array: its own memory when ``t`` is contiguous
    (no copy), else a contiguous copy (:func:`copy_bytes` counts it)."""
    t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


def copy_bytes(*tensors: torch.Tensor | None) -> int:
    """Bytes :func:`host_view` copies to hand these tensors to numpy."""
    return sum(
        t.numel() * t.element_size() for t in tensors if t is not None and not t.is_contiguous()
    )


def to_tensor(a: Array | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A numpy result as a tensor sharing its memory; a read-only array is copied first
    (torch would warn on it) and another dtype cast."""
    if a is None:
        return None
    if not a.flags.writeable:
        a = np.array(a)
    t = torch.from_numpy(a)
    return t if t.dtype == dtype else t.to(dtype)


def copy_budget(native_ms: float, strategy_ms: float) -> float:
    """Bytes of copies the measured win pays for: the plan's ``native_ms - strategy_ms``
    at :data:`COPY_BYTES_PER_MS` (none when the win is not positive)."""
    return max(0.0, native_ms - strategy_ms) * COPY_BYTES_PER_MS


def copy_pays(nbytes: int, budget: float) -> bool:
    """Whether a call that first copies ``nbytes`` still beats the native one."""
    return nbytes == 0 or nbytes < budget

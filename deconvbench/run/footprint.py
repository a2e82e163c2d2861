"""How much memory a task needs, estimated from its :class:`Problem` before anything exists.

The memory guard (``run --max-memory``) compares this estimate with a limit and turns a task
that would not fit into a ``skipped`` row, instead of letting it swap the machine to a halt
or die in the kernel's OOM killer. An estimate is arithmetic on shapes: nothing here
allocates, so it is safe on a problem of any size.

The footprint of one task (a results row) is the sum of:

* **harness**: the inputs the run makes for a case (x, weight, bias, grad_output at the
  dtype's storage size: bfloat16 travels as float32) and the private copies it hands each
  strategy (``run.steps.prepare_task``), so twice the inputs;
* **reference**: the float64 results the verifying process caches for the case's passes,
  plus the temporaries of computing one (``reference.forward``/``backward`` convert the
  operands to float64 and gather one kernel tap at a time);
* **workspace**: :meth:`Strategy.workspace_bytes`, what the strategy itself holds while a
  call runs (its outputs, its buffers, what its preparation kept).

On a CUDA strategy the workspace is on the GPU and is compared with the GPU's limit; the
harness, the reference and the fetched results stay on the host and are compared with the
host's. What is ignored: the interpreter and imported libraries (a few hundred MB, already
resident when the run starts, so not part of the available memory the default limit is a
share of), allocator fragmentation, and whatever a framework allocates that its API does
not reveal (see each strategy's ``workspace_bytes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..backends.strategy import Strategy
from ..cases.case import Case
from ..errors import InputError
from ..harness.capacity import available_ram, format_bytes, free_gpu_memory, total_ram
from ..problem import Pass, Problem

DEFAULT_SHARE = 0.8
"""The default limit: this share of the memory available when the run starts."""

FLOAT64 = 8


# --- sizes of a problem's tensors ---------------------------------------------------------


def harness_bytes(problem: Problem) -> int:
    """The case's shared inputs plus the private copies one strategy gets (all four arrays)."""
    elements = (
        math.prod(problem.x_shape)
        + math.prod(problem.weight_shape)
        + (problem.out_channels if problem.bias else 0)
        + math.prod(problem.y_shape)
    )
    return 2 * elements * problem.storage_itemsize


def reference_bytes(problem: Problem, passes: Sequence[Pass]) -> int:
    """The float64 reference: cached results of ``passes`` plus computing the largest one.

    Computing a pass converts its operands to float64 and, per kernel tap, gathers one
    group's input and its tap's contribution (at most an input-sized and an
    ``N·Cout·∏input`` array); the float64 results of every pass of the case stay cached
    while the case's strategies run.
    """
    x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
    y = math.prod(problem.y_shape)
    tap = problem.batch * problem.out_channels * math.prod(problem.input)
    cached = sum(problem.result_elements(p) for p in set(passes))
    transient = max(
        2 * x + w + tap if p == "forward" else y + 3 * x + 2 * w + tap for p in set(passes)
    )
    return FLOAT64 * (cached + transient)


# --- the footprint of a task --------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """Estimated peak bytes of one task, by owner; ``device`` says where the workspace is."""

    harness: int
    reference: int
    workspace: int
    results: int  # host copies of a device strategy's results (0 on CPU: they are workspace)
    device: str

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def host(self) -> int:
        """Bytes in host memory."""
        own = 0 if self.on_gpu else self.workspace
        return self.harness + self.reference + self.results + own

    @property
    def gpu(self) -> int:
        """Bytes in GPU memory (0 for a CPU strategy)."""
        return self.workspace if self.on_gpu else 0


def estimate(
    strategy: Strategy,
    problem: Problem,
    pass_: Pass,
    passes: Sequence[Pass] | None = None,
    verifying: bool = True,
) -> Footprint:
    """The footprint of ``strategy`` running ``pass_`` inside a run of ``passes`` (the
    passes of the case, whose references stay cached); without ``verifying`` no reference."""
    reference = reference_bytes(problem, passes or (pass_,)) if verifying else 0
    on_gpu = strategy.device.startswith("cuda")
    results = problem.result_elements(pass_) * problem.storage_itemsize if on_gpu else 0
    return Footprint(
        harness_bytes(problem),
        reference,
        int(strategy.workspace_bytes(problem, pass_)),
        results,
        strategy.device,
    )


def over_limit(fp: Footprint, host_limit: int | None, gpu_limit: int | None) -> str | None:
    """Why the task does not fit its limits (the skipped row's message), or None if it does."""
    if fp.on_gpu and gpu_limit is not None and fp.gpu > gpu_limit:
        return (
            f"needs about {format_bytes(fp.gpu)} of GPU memory, "
            f"limit {format_bytes(gpu_limit)} (--max-memory)"
        )
    if host_limit is not None and fp.host > host_limit:
        parts = [f"inputs {format_bytes(fp.harness)}"]
        if fp.reference:
            parts.append(f"float64 reference {format_bytes(fp.reference)}")
        if fp.results:
            parts.append(f"fetched results {format_bytes(fp.results)}")
        if not fp.on_gpu:
            parts.append(f"strategy {format_bytes(fp.workspace)}")
        return (
            f"needs about {format_bytes(fp.host)} ({', '.join(parts)}), "
            f"limit {format_bytes(host_limit)} (--max-memory)"
        )
    return None


# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryLimit:
    """What ``--max-memory`` asked for: bytes, a share of what is available, or no limit."""

    kind: Literal["bytes", "share", "none"]
    value: float = 0.0

    def resolve(self, available: int) -> int | None:
        """The limit in bytes against ``available`` bytes (None: no limit)."""
        if self.kind == "none":
            return None
        if self.kind == "share":
            return int(self.value * available)
        return int(self.value)


DEFAULT_LIMIT = MemoryLimit("share", DEFAULT_SHARE)


def resolve_limits(
    limit: MemoryLimit,
    devices: Iterable[str],
    ram: Callable[[], int] = available_ram,
    gpu: Callable[[], int] = free_gpu_memory,
) -> tuple[int | None, int | None]:
    """(host limit, GPU limit) in bytes for a run on ``devices``.

    The GPU is queried only when a CUDA device is among them (querying makes a CUDA
    context, which costs time and GPU memory); without one the GPU limit is None.
    """
    if limit.kind == "none":
        return None, None
    host = limit.resolve(ram())
    on_gpu = any(d.startswith("cuda") for d in devices)
    return host, limit.resolve(gpu()) if on_gpu else None


def refuse_impossible(
    cases: Iterable[Case], passes: Sequence[Pass] | None, total: int | None = None
) -> None:
    """Raise :class:`InputError` for the first case whose bare inputs and results (at its
    dtype) exceed this machine's total memory: no strategy could ever run it.

    ``passes`` overrides each case's own passes (``--pass``); ``total`` replaces the
    machine's RAM (tests).
    """
    memory = total_ram() if total is None else total
    for case in cases:
        for pass_ in passes or case.passes:
            need = case.problem.bytes_moved(pass_)
            if need > memory:
                raise InputError(
                    f"{case.label}: its {pass_} inputs and results alone need "
                    f"{format_bytes(need)} in {case.problem.dtype}, more than this machine's "
                    f"{format_bytes(memory)} of memory"
                )


__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SHARE",
    "Footprint",
    "MemoryLimit",
    "estimate",
    "format_bytes",
    "over_limit",
    "refuse_impossible",
    "resolve_limits",
]

"""The Python API (docs/design.md, "Python API"): numpy in, numpy out, torch's argument order."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import registry
from .backends.strategy import Array, Prepared, Strategy
from .errors import InsufficientMemory, ProblemError
from .harness.capacity import available_ram, format_bytes, free_gpu_memory
from .problem import IntOrTuple, Pass, Problem
from .registry import Implementation

_NUMPY_DTYPES = {
    np.dtype(np.float16): "float16",
    np.dtype(np.float32): "float32",
    np.dtype(np.float64): "float64",
}


def _dtype_name(x: Array) -> str:
    try:
        return _NUMPY_DTYPES[x.dtype]
    except KeyError:
        raise ProblemError(
            f"dtype: arrays must be float16, float32 or float64, got {x.dtype}"
        ) from None


def _problem_from_arrays(
    x: Array,
    weight: Array,
    has_bias: bool,
    stride: IntOrTuple,
    padding: IntOrTuple,
    output_padding: IntOrTuple,
    groups: int,
    dilation: IntOrTuple,
) -> Problem:
    if x.ndim not in (3, 4, 5):
        raise ProblemError(
            "input: expected (batch, channels, *spatial) with 1-3 spatial dims, "
            f"got shape {x.shape}"
        )
    if weight.ndim != x.ndim:
        raise ProblemError(
            f"weight: expected {x.ndim} dimensions (Cin, Cout/groups, *kernel) to match the "
            f"input, got shape {weight.shape}"
        )
    if weight.shape[0] != x.shape[1]:
        raise ProblemError(
            f"weight: first dimension {weight.shape[0]} must equal the input's channels "
            f"{x.shape[1]}"
        )
    if weight.dtype != x.dtype:
        raise ProblemError(f"weight: dtype {weight.dtype} differs from the input's {x.dtype}")
    return Problem.from_shapes(
        x.shape,
        weight.shape,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        bias=has_bias,
        dtype=_dtype_name(x),
    )


def _available(strategy: Strategy) -> int:
    """Bytes free where the strategy's workspace lives: host RAM, or the CUDA device's."""
    return free_gpu_memory() if strategy.device.startswith("cuda") else available_ram()


def _short_of_memory(strategy: Strategy, pass_: Pass, need: int, free: int) -> InsufficientMemory:
    where = "GPU memory" if strategy.device.startswith("cuda") else "memory"
    return InsufficientMemory(
        f"{strategy.name} {pass_}: needs about {format_bytes(need)}, "
        f"only {format_bytes(free)} of {where} available"
    )


def _run(
    strategy: Strategy, problem: Problem, pass_: Pass, prepare: Callable[[], Prepared]
) -> tuple[Array | None, ...]:
    """Prepare, call and fetch, refused up front when the strategy's own estimate
    (``workspace_bytes``, the strategy's share of run's ``--max-memory`` footprint) exceeds
    the memory available, and with a ``MemoryError`` that still happens turned into the
    same one-line :class:`InsufficientMemory` (numpy's chained traceback adds nothing)."""
    need = int(strategy.workspace_bytes(problem, pass_))
    free = _available(strategy)
    if need > free:
        raise _short_of_memory(strategy, pass_, need, free)
    try:
        prepared = prepare()
        result = prepared.call()
        prepared.synchronize()
        return tuple(prepared.fetch(result))
    except MemoryError:
        raise _short_of_memory(strategy, pass_, need, _available(strategy)) from None
    except RuntimeError as e:
        if "OutOfMemory" not in type(e).__name__:  # torch.cuda.OutOfMemoryError
            raise
        raise _short_of_memory(strategy, pass_, need, _available(strategy)) from None


def conv_transpose(
    impl: str,
    x: Array,
    weight: Array,
    bias: Array | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
) -> Array:
    """Transposed convolution with strategy ``impl``; same semantics as torch's."""
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    problem = _problem_from_arrays(
        x, weight, bias is not None, stride, padding, output_padding, groups, dilation
    )
    if bias is not None:
        bias = np.ascontiguousarray(bias, dtype=x.dtype)
        if bias.shape != problem.bias_shape:
            raise ProblemError(f"bias: expected shape {problem.bias_shape}, got {bias.shape}")
    strategy = registry.get(impl)
    strategy.check(problem, "forward")
    (y,) = _run(
        strategy, problem, "forward", lambda: strategy.prepare_forward(problem, x, weight, bias)
    )
    assert y is not None
    return np.asarray(y, dtype=x.dtype)


def conv_transpose_backward(
    impl: str,
    grad_output: Array,
    x: Array,
    weight: Array,
    bias: bool | None = False,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    groups: int = 1,
    dilation: IntOrTuple = 1,
) -> tuple[Array, Array, Array | None]:
    """``(grad_input, grad_weight, grad_bias)``; ``grad_bias`` is None unless ``bias``."""
    x, weight = np.ascontiguousarray(x), np.ascontiguousarray(weight)
    grad_output = np.ascontiguousarray(grad_output)
    problem = _problem_from_arrays(
        x, weight, bool(bias), stride, padding, output_padding, groups, dilation
    )
    if grad_output.shape != problem.y_shape:
        raise ProblemError(
            f"grad_output: expected shape {problem.y_shape} (the forward's output), "
            f"got {grad_output.shape}"
        )
    grad_output = grad_output.astype(x.dtype, copy=False)
    strategy = registry.get(impl)
    strategy.check(problem, "backward")
    gx, gw, gb = _run(
        strategy,
        problem,
        "backward",
        lambda: strategy.prepare_backward(problem, grad_output, x, weight),
    )
    assert gx is not None and gw is not None
    return (
        np.asarray(gx, dtype=x.dtype),
        np.asarray(gw, dtype=x.dtype),
        None if gb is None else np.asarray(gb, dtype=x.dtype),
    )


def implementations() -> list[Implementation]:
    """Every registered strategy: name, backend, algorithm, device, available, reason."""
    return [registry.describe(s) for s in registry.strategies()]

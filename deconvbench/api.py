"""The Python API (docs/design.md, "Python API"): numpy in, numpy out, torch's argument order."""

from __future__ import annotations

import numpy as np

from . import registry
from .backends.strategy import Array
from .errors import ProblemError
from .problem import IntOrTuple, Problem
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
    return Problem.create(
        batch=int(x.shape[0]),
        in_channels=int(x.shape[1]),
        out_channels=int(weight.shape[1]) * groups,
        input=tuple(int(s) for s in x.shape[2:]),
        kernel=tuple(int(s) for s in weight.shape[2:]),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        bias=has_bias,
        dtype=_dtype_name(x),
    )


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
    prepared = strategy.prepare_forward(problem, x, weight, bias)
    result = prepared.call()
    prepared.synchronize()
    (y,) = prepared.fetch(result)
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
    prepared = strategy.prepare_backward(problem, grad_output, x, weight)
    result = prepared.call()
    prepared.synchronize()
    gx, gw, gb = prepared.fetch(result)
    assert gx is not None and gw is not None
    return (
        np.asarray(gx, dtype=x.dtype),
        np.asarray(gw, dtype=x.dtype),
        None if gb is None else np.asarray(gb, dtype=x.dtype),
    )


def implementations() -> list[Implementation]:
    """Every registered strategy: name, backend, algorithm, device, available, reason."""
    return [registry.describe(s) for s in registry.strategies()]

"""Deterministic inputs for a problem, exactly representable in its dtype."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..problem import Problem

F32 = NDArray[np.float32]


def round_to_bfloat16(values: NDArray[np.floating]) -> F32:
    """Round to the nearest bfloat16 (ties to even), kept in float32 storage."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(
        0xFFFF0000
    )
    return rounded.view(np.float32)


def storage_dtype(dtype: str) -> np.dtype[np.floating]:
    """The numpy dtype that carries values of ``dtype`` (bfloat16 travels as float32)."""
    return np.dtype(np.float32 if dtype == "bfloat16" else dtype)


def representable(values: NDArray[np.floating], dtype: str) -> NDArray[np.floating]:
    """``values`` rounded to ``dtype``, in the storage dtype strategies receive."""
    if dtype == "bfloat16":
        return round_to_bfloat16(values)
    return np.asarray(values, dtype=storage_dtype(dtype))


class Inputs(NamedTuple):
    """Everything a forward and a backward of one problem read."""

    x: NDArray[np.floating]
    weight: NDArray[np.floating]
    bias: NDArray[np.floating] | None
    grad_output: NDArray[np.floating]


def make_inputs(problem: Problem, seed: int = 0) -> Inputs:
    """Uniform(-1, 1) values from ``seed``, rounded to the problem's dtype.

    The same (problem, seed) gives the same arrays on every machine: numpy's PCG64 is
    platform-independent.
    """
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> NDArray[np.floating]:
        return representable(rng.uniform(-1.0, 1.0, size=shape), problem.dtype)

    x = draw(problem.x_shape)
    weight = draw(problem.weight_shape)
    bias = draw(problem.bias_shape) if problem.bias else None
    grad_output = draw(problem.y_shape)
    return Inputs(x, weight, bias, grad_output)

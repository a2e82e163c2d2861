"""The transposed convolution as an XLA graph: ``lax.conv_general_dilated`` with the input
dilated by the stride, and the gradient graph ``jax.vjp`` derives from it.

torch's ``conv_transpose`` scatters every input position ``i`` through kernel tap ``k`` to
output position ``o = i·s − p + k·d``. Gathered per output position instead, that is an
ordinary (cross-correlation) convolution over the input with ``s − 1`` zeros inserted
between its elements (``lhs_dilation = s``), the kernel flipped in space and its channel
axes swapped per group, the kernel dilated by ``d`` (``rhs_dilation = d``), and padding

    low  = d·(k − 1) − p
    high = d·(k − 1) − p + output_padding

per spatial dimension, negative where torch's padding crops more than the kernel reaches
(XLA crops then). The output size is then ``(i − 1)·s + 1 + low + high − d·(k − 1)``, which
is torch's. Groups map to ``feature_group_count``: the weight ``(Cin, Cout/g, *k)`` becomes
``(g·Cout/g, Cin/g, *k)`` (OI… layout), group by group, so output block ``j`` reads input
block ``j`` as torch's does.

The flip and the channel swap are part of the graph (XLA folds or fuses them), so the
forward and its ``vjp`` take the weight in torch's layout and grad_weight comes back in it.

This module imports jax: only :mod:`.native`'s preparation imports it, lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ...problem import Problem

JaxArray = Any
"""A ``jax.Array``; jax's own annotations are loose enough that ``Any`` loses nothing."""

_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}

DTYPES: dict[str, Any] = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "float16": jnp.float16,
    "bfloat16": jnp.bfloat16,
}


def padding(problem: Problem) -> list[tuple[int, int]]:
    """``(low, high)`` padding of the dilated input, per spatial dimension (see the module)."""
    pairs = []
    for k, p, d, op in zip(
        problem.kernel, problem.padding, problem.dilation, problem.output_padding, strict=True
    ):
        reach = d * (k - 1)
        pairs.append((reach - p, reach - p + op))
    return pairs


def dimension_numbers(ndim: int) -> tuple[str, str, str]:
    sp = _SPATIAL[ndim]
    return f"NC{sp}", f"OI{sp}", f"NC{sp}"


def conv_weight(problem: Problem, weight: JaxArray) -> JaxArray:
    """torch's ``(Cin, Cout/g, *k)`` weight as the ``(Cout, Cin/g, *k)`` kernel, flipped."""
    g, ndim = problem.groups, problem.ndim
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    w = weight.reshape(g, cin_g, cout_g, *problem.kernel)
    w = jnp.swapaxes(w, 1, 2).reshape(problem.out_channels, cin_g, *problem.kernel)
    return lax.rev(w, tuple(range(2, 2 + ndim)))


def forward_fn(problem: Problem) -> Callable[..., JaxArray]:
    """``f(x, weight[, bias]) -> y`` with torch's semantics, to be jitted."""
    pad = padding(problem)
    dn = dimension_numbers(problem.ndim)
    ones = (1,) * problem.ndim
    stride, dilation, groups = problem.stride, problem.dilation, problem.groups
    bias_shape = (1, problem.out_channels, *ones)

    def conv(x: JaxArray, weight: JaxArray) -> JaxArray:
        return lax.conv_general_dilated(
            x,
            conv_weight(problem, weight),
            window_strides=ones,
            padding=pad,
            lhs_dilation=stride,
            rhs_dilation=dilation,
            dimension_numbers=dn,
            feature_group_count=groups,
            precision=lax.Precision.HIGHEST,
        )

    if not problem.bias:
        return conv

    def conv_bias(x: JaxArray, weight: JaxArray, bias: JaxArray) -> JaxArray:
        return conv(x, weight) + bias.reshape(bias_shape)

    return conv_bias


def backward_fn(problem: Problem) -> Callable[..., tuple[JaxArray, ...]]:
    """``g(grad_output, x, weight[, bias]) -> grads of (x, weight[, bias])``, to be jitted.

    The forward inside ``jax.vjp`` is dead code once only the gradients are returned (a
    convolution is linear in each operand, so its residuals are the operands themselves):
    XLA removes it, and the compiled graph computes what torch's ``convolution_backward``
    does.
    """
    fwd = forward_fn(problem)

    def grads(grad_output: JaxArray, *operands: JaxArray) -> tuple[JaxArray, ...]:
        _, pullback = jax.vjp(fwd, *operands)
        return tuple(pullback(grad_output))

    return grads

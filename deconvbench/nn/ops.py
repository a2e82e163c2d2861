"""The planned call as a custom op, for ``torch.compile``: no graph break.

Under ``torch.compile`` a planned layer calls ``torch.ops.deconvbench.conv_transpose``, a
``torch.library.custom_op`` whose arguments are the tensors, the configuration as ints and
the dispatcher's id. Dynamo and AOTAutograd see an opaque op with a fake (meta) kernel that
gives the output's shape from symbolic sizes, so ``fullgraph=True`` holds and dynamic shapes
work. At run time the op's kernel asks the dispatcher for the route and runs its forward
side (:func:`.function.run_forward`), native included. Its backward, registered with
``register_autograd``, is a second op, ``deconvbench::conv_transpose_backward``, that runs
the backward side for the gradients ``ctx.needs_input_grad`` asks for (an unwanted
gradient comes back as an empty tensor the autograd formula turns into None).

Differences from eager mode, all consequences of the op being opaque:

* results are made contiguous (the fake kernel says contiguous; a channels-last result of
  ``native-channels-last`` or of native on channels-last input is copied);
* a strategy whose backward is autograd over its own forward (``torch-*/zero-insert``,
  ``gemm-col2im``) runs that forward again inside the backward op, even when it ran the
  forward too: the graph of one op cannot reach the other;
* inductor cannot fuse into the convolution (it could not fuse into native's extern call
  either).

Op dispatch costs more than an autograd Function (about 11 µs a call without autograd, 25 µs
with, against 7 µs, measured on the reference machine), which is why eager mode uses the
Function (:mod:`.function`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.library import custom_op

from .dispatch import live, native_route
from .function import Config, autocast, native_forward, run_backward, run_forward

_NO_PLAN = native_route("the plan's dispatcher is gone")


def _config(
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Config:
    return (tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), groups)


def _output_shape(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> list[Any]:
    spatial = [
        (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        for i, k, s, p, op, d in zip(
            x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation, strict=True
        )
    ]
    return [x.shape[0], weight.shape[1] * groups, *spatial]


@custom_op("deconvbench::conv_transpose", mutates_args=())
def conv_transpose_op(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    dispatcher: int,
) -> torch.Tensor:
    config = _config(stride, padding, output_padding, dilation, groups)
    found = live(dispatcher)
    route = _NO_PLAN if found is None else found.route(x, weight, bias, config)
    return run_forward(route.forward, x, weight, bias, config).contiguous()


@conv_transpose_op.register_fake
def _conv_transpose_fake(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    dispatcher: int,
) -> torch.Tensor:
    shape = _output_shape(x, weight, stride, padding, output_padding, dilation, groups)
    return x.new_empty(shape)


@custom_op("deconvbench::conv_transpose_backward", mutates_args=())
def conv_transpose_backward_op(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    dispatcher: int,
    mask: Sequence[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    config = _config(stride, padding, output_padding, dilation, groups)
    found = live(dispatcher)
    bias = x.new_empty(0) if has_bias else None  # only its presence enters the route's key
    route = _NO_PLAN if found is None else found.route(x, weight, bias, config)
    needs = (bool(mask[0]), bool(mask[1]), bool(mask[2]))
    grads = run_backward(route.backward, grad_output, x, weight, has_bias, config, needs)
    empty = x.new_empty(0)
    gx, gw, gb = (empty if g is None else g.contiguous() for g in grads)
    return gx, gw, gb


@conv_transpose_backward_op.register_fake
def _conv_transpose_backward_fake(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    dispatcher: int,
    mask: Sequence[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gx = x.new_empty(x.shape if mask[0] else (0,))
    gw = x.new_empty(weight.shape if mask[1] else (0,))
    gb = x.new_empty((weight.shape[1] * groups,) if mask[2] and has_bias else (0,))
    return gx, gw, gb


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, weight, bias, stride, padding, output_padding, dilation, groups, dispatcher = inputs
    ctx.save_for_backward(x, weight)
    ctx.args = (bias is not None, stride, padding, output_padding, dilation, groups, dispatcher)


def _backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    x, weight = ctx.saved_tensors
    has_bias = ctx.args[0]
    mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2] and has_bias]
    gx, gw, gb = conv_transpose_backward_op(grad_output, x, weight, *ctx.args, mask)
    return (
        gx if mask[0] else None,
        gw if mask[1] else None,
        gb if mask[2] else None,
        *(None,) * 6,
    )


conv_transpose_op.register_autograd(_backward, setup_context=_setup_context)


def planned_op(
    dispatcher: int,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: Config,
) -> torch.Tensor:
    """The call under ``torch.compile``: native under autocast (as in eager mode), else
    the custom op."""
    if autocast(x):
        return native_forward(x, weight, bias, config)
    stride, padding, output_padding, dilation, groups = config
    y: torch.Tensor = conv_transpose_op(
        x, weight, bias, list(stride), list(padding), list(output_padding), list(dilation),
        groups, dispatcher,
    )  # fmt: skip
    return y

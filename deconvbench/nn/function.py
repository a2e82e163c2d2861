"""One planned call in eager mode: the route's runners, torch's native op, or both.

:func:`conv_transpose` is what a planned layer's ``forward`` calls outside ``torch.compile``
(under it, the layer calls the custom op of :mod:`.ops`, which runs :func:`run_forward` and
:func:`run_backward` below). In order:

1. Under autocast for the tensors' device it runs ``F.conv_transpose{n}d``, so autocast's
   own rule for that op (its cast to the lower precision) applies unchanged; a plan's
   problems have one dtype, and autocast decides the dtype only inside the op.
2. It asks the dispatcher for the route; an all-native route runs ``F.conv_transpose{n}d``
   (autograd's own backward included).
3. Without autograd (``torch.no_grad()``, ``torch.inference_mode()``, or no operand that
   requires grad) it runs the forward side: its runner, or native.
4. When one strategy runs both passes and records its own backward (``Route.graph``), it
   calls that forward under autograd, no Function.
5. Otherwise :class:`PlannedConvTranspose`: its forward runs the forward side, its backward
   the backward side, each the runner or native.

A side's runner is used only when its copies are paid for by the plan's measured win
(:func:`.tensors.copy_pays`). A backward whose ``ctx.needs_input_grad`` drops grad_input or
grad_weight runs native, which skips the unneeded gradient (half the backward's work),
unless the plan measured the strategy at least twice as fast as the whole native backward.
A backward run with ``create_graph=True`` (a gradient penalty, a Hessian-vector product)
runs natively, so its gradients are differentiable and a second derivative is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)

from .dispatch import Dispatcher, Route, Side
from .tensors import copy_pays

Config = tuple[Any, ...]
"""``(stride, padding, output_padding, dilation, groups)``: tuples of ints, and an int."""

MaybeGrads = tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]

NATIVE: dict[int, Callable[..., torch.Tensor]] = {
    1: F.conv_transpose1d,
    2: F.conv_transpose2d,
    3: F.conv_transpose3d,
}

HALF_BACKWARD_SPEEDUP = 2.0
"""The speedup over the whole native backward a strategy needs when only one of grad_input
and grad_weight is wanted: native then computes only that one, about half the work."""


def native_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, config: Config
) -> torch.Tensor:
    stride, padding, output_padding, dilation, groups = config
    return NATIVE[x.dim() - 2](x, weight, bias, stride, padding, output_padding, groups, dilation)


def native_backward(
    grad_output: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    config: Config,
    needs: tuple[bool, bool, bool],
) -> MaybeGrads:
    """torch's convolution backward, computing only the gradients in ``needs``."""
    stride, padding, output_padding, dilation, groups = config
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad_output,
        x,
        weight,
        [weight.shape[1] * groups] if has_bias else None,
        list(stride),
        list(padding),
        list(dilation),
        True,
        list(output_padding),
        groups,
        [needs[0], needs[1], needs[2] and has_bias],
    )
    return wanted_only((gx, gw, gb), has_bias, needs)


def wanted_only(grads: MaybeGrads, has_bias: bool, needs: tuple[bool, bool, bool]) -> MaybeGrads:
    """``grads`` with None for each gradient autograd did not ask for."""
    gx, gw, gb = grads
    return (gx if needs[0] else None, gw if needs[1] else None,
            gb if needs[2] and has_bias else None)  # fmt: skip


def run_forward(
    side: Side, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, config: Config
) -> torch.Tensor:
    """The forward side's runner when its copies pay, else native."""
    runner = side.runner
    if runner is not None and copy_pays(runner.forward_copies(x, weight, bias), side.budget):
        return runner.forward(x, weight, bias)
    return native_forward(x, weight, bias, config)


def run_backward(
    side: Side,
    grad_output: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    config: Config,
    needs: tuple[bool, bool, bool],
) -> MaybeGrads:
    """The gradients in ``needs`` (None for the others), by the backward side's runner
    when it is worth it (see the module docstring), else natively."""
    runner = side.runner
    wanted = int(needs[0]) + int(needs[1])
    if (
        runner is None
        or wanted == 0
        or (wanted == 1 and side.speedup < HALF_BACKWARD_SPEEDUP)
        or not copy_pays(runner.backward_copies(grad_output, x, weight), side.budget)
    ):
        return native_backward(grad_output, x, weight, has_bias, config, needs)
    return wanted_only(runner.backward(grad_output, x, weight), has_bias, needs)


class PlannedConvTranspose(torch.autograd.Function):
    """Forward by the route's forward side, backward by its backward side."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        route: Route,
        config: Config,
    ) -> torch.Tensor:
        y = run_forward(route.forward, x, weight, bias, config)
        ctx.save_for_backward(x, weight)
        ctx.route, ctx.config, ctx.has_bias = route, config, bias is not None
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2])
        if torch.is_grad_enabled():
            # create_graph: the gradients must themselves be differentiable, which torch's
            # convolution_backward is and a runner's (numpy, autograd.grad) results are not
            grads = native_backward(grad_output, x, weight, ctx.has_bias, ctx.config, needs)
        else:
            grads = run_backward(
                ctx.route.backward, grad_output, x, weight, ctx.has_bias, ctx.config, needs
            )
        return (*grads, None, None)


def autocast(x: torch.Tensor) -> bool:
    """Whether autocast is on for ``x``'s device (the call then runs native)."""
    return torch.is_autocast_enabled(x.device.type)


def conv_transpose(
    dispatcher: Dispatcher,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: Config,
) -> torch.Tensor:
    """A planned ``conv_transpose{n}d``; see the module docstring for what runs."""
    if autocast(x):
        return native_forward(x, weight, bias, config)
    route = dispatcher.route(x, weight, bias, config)
    if route.native:
        return native_forward(x, weight, bias, config)
    if not torch.is_grad_enabled() or not (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return run_forward(route.forward, x, weight, bias, config)
    if route.graph:
        runner = route.forward.runner
        assert runner is not None
        return runner.forward(x, weight, bias)
    y: torch.Tensor = PlannedConvTranspose.apply(  # type: ignore[no-untyped-call]
        x, weight, bias, route, config
    )  # torch's apply is untyped
    return y

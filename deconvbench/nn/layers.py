"""The drop-in layers, and :func:`apply_plan` that puts a plan into an existing model.

``ConvTranspose1d``, ``ConvTranspose2d`` and ``ConvTranspose3d`` subclass torch's classes:
same constructor (plus the keyword-only ``plan`` and ``force``), same parameters, same
``state_dict``, same ``forward(input, output_size=None)``. Without a plan they are torch's
layers exactly. With one, every call goes through the plan's dispatcher
(:mod:`.dispatch`): in eager mode :func:`.function.conv_transpose`, under
``torch.compile`` the custom op of :mod:`.ops`.

:func:`apply_plan` converts a model in place: each module whose type is exactly
``torch.nn.ConvTranspose{1,2,3}d`` gets this package's class (its ``__class__`` is
changed, as torch's lazy modules do), so the module objects themselves stay, and with them
their Parameters (an optimizer's references stay valid), buffers, hooks and every
container's reference. Subclasses of torch's layers with a ``forward`` of their own are
left alone. Modules already converted get the new plan.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..results.plan_file import Plan, read_plan
from . import function, ops
from .dispatch import Dispatcher, dispatcher_for

PlanLike = Plan | str | os.PathLike[str]
"""A plan, or the path of a plan file (read with ``results.plan_file.read_plan``)."""


def load_plan(plan: PlanLike) -> Plan:
    """``plan`` itself, or the plan file it names; :class:`~deconvbench.errors.InputError`
    (one line) when the file is not a plan this version reads."""
    return plan if isinstance(plan, Plan) else read_plan(Path(plan))


Planned = nn.modules.conv._ConvTransposeNd


def _attach(module: Planned, plan: PlanLike | None, force: bool) -> None:
    dispatcher = None if plan is None else dispatcher_for(load_plan(plan), force)
    module.__dict__["_dispatcher"] = dispatcher


def _dispatcher(module: Planned) -> Dispatcher | None:
    found: Dispatcher | None = module.__dict__.get("_dispatcher")
    return found


def _forward(
    module: Planned, ndim: int, input: torch.Tensor, output_size: list[int] | None
) -> torch.Tensor | None:
    """The planned call, or None when the module has no plan (torch's forward then runs)."""
    dispatcher = _dispatcher(module)
    if dispatcher is None:
        return None
    if module.padding_mode != "zeros":
        return None  # torch's forward raises its own error for this
    output_padding = module.output_padding
    if output_size is not None:  # torch's rule picks the output_padding that reaches it
        output_padding = tuple(module._output_padding(
            input, output_size, list(module.stride), list(cast(tuple[int, ...], module.padding)),
            list(module.kernel_size), ndim, list(module.dilation),
        ))  # fmt: skip
    config = (module.stride, module.padding, output_padding, module.dilation, module.groups)
    unbatched = input.dim() == ndim + 1
    x = input.unsqueeze(0) if unbatched else input
    if torch.compiler.is_compiling():
        y = ops.planned_op(dispatcher.id, x, module.weight, module.bias, config)
    else:
        y = function.conv_transpose(dispatcher, x, module.weight, module.bias, config)
    return y.squeeze(0) if unbatched else y


def _extra_repr(module: Planned, base: str) -> str:
    dispatcher = _dispatcher(module)
    if dispatcher is None:
        return base
    forced = ", forced" if dispatcher.force else ""
    return f"{base}, plan={len(dispatcher.plan.entries)} entries{forced}"


class _Planned:
    """What each drop-in class adds to its torch class (which follows this in the bases)."""

    _ndim: int

    def __init__(
        self, *args: Any, plan: PlanLike | None = None, force: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        _attach(cast(Planned, self), plan, force)

    def set_plan(self, plan: PlanLike | None, *, force: bool = False) -> None:
        """Run ``plan`` from the next call on (None: torch's behaviour)."""
        _attach(cast(Planned, self), plan, force)

    @property
    def plan(self) -> Plan | None:
        dispatcher = _dispatcher(cast(Planned, self))
        return None if dispatcher is None else dispatcher.plan

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        y = _forward(cast(Planned, self), self._ndim, input, output_size)
        if y is None:
            y = super().forward(input, output_size)  # type: ignore[misc]  # torch's class
        return y

    def extra_repr(self) -> str:
        base: str = super().extra_repr()  # type: ignore[misc]  # torch's class
        return _extra_repr(cast(Planned, self), base)


class ConvTranspose1d(_Planned, nn.ConvTranspose1d):
    """``torch.nn.ConvTranspose1d`` that runs a plan's strategies (see :mod:`deconvbench.nn`)."""

    _ndim = 1


class ConvTranspose2d(_Planned, nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` that runs a plan's strategies (see :mod:`deconvbench.nn`)."""

    _ndim = 2


class ConvTranspose3d(_Planned, nn.ConvTranspose3d):
    """``torch.nn.ConvTranspose3d`` that runs a plan's strategies (see :mod:`deconvbench.nn`)."""

    _ndim = 3


PLANNED: dict[type[nn.Module], type[nn.Module]] = {
    nn.ConvTranspose1d: ConvTranspose1d,
    nn.ConvTranspose2d: ConvTranspose2d,
    nn.ConvTranspose3d: ConvTranspose3d,
}
"""torch's class → this package's, for :func:`apply_plan`."""

PlannedLayer = ConvTranspose1d | ConvTranspose2d | ConvTranspose3d


def planned_layers(model: nn.Module) -> Iterator[tuple[str, PlannedLayer]]:
    """``(qualified name, layer)`` of every planned layer class in ``model``, once each."""
    for name, module in model.named_modules():
        if isinstance(module, ConvTranspose1d | ConvTranspose2d | ConvTranspose3d):
            yield name, module


def apply_plan(model: nn.Module, plan: PlanLike, *, force: bool = False) -> nn.Module:
    """Run ``plan`` in every ``nn.ConvTranspose{1,2,3}d`` of ``model``, in place.

    ``plan`` is a :class:`~deconvbench.results.plan_file.Plan` or the path of a plan file
    (a bad file raises :class:`~deconvbench.errors.InputError`, one line, before anything
    changes). ``force=True`` runs the plan even where its fingerprint differs from this
    machine's. Returns ``model``, whose module objects and Parameters are the same ones.
    """
    loaded = load_plan(plan)
    for module in model.modules():  # each module once, however often it is referenced
        planned = PLANNED.get(type(module))
        if planned is not None:
            module.__class__ = planned
        if isinstance(module, ConvTranspose1d | ConvTranspose2d | ConvTranspose3d):
            module.set_plan(loaded, force=force)
    return model


def describe(model: nn.Module) -> str:
    """What each plan in ``model`` runs for every shape called so far, and why."""
    lines: list[str] = []
    seen: set[int] = set()
    for name, layer in planned_layers(model):
        dispatcher = _dispatcher(layer)
        if dispatcher is None:
            lines.append(f"{name or '(model)'}: no plan")
            continue
        lines.append(f"{name or '(model)'}: plan {dispatcher.id}")
        if dispatcher.id in seen:
            continue
        seen.add(dispatcher.id)
        if dispatcher.differences:
            state = "forced" if dispatcher.force else "not used"
            lines.append(f"  plan {dispatcher.id} {state}: " + "; ".join(dispatcher.differences))
        lines += [f"  {route.describe()}" for route in dispatcher.routes.values()]
    return "\n".join(lines)

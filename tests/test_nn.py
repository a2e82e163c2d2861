"""``deconvbench.nn``: the drop-in layers, ``apply_plan``, routes, fallbacks and torch's modes.

Every plan here is made for this machine (``overhead.plan_for``), so the fingerprint holds
unless a test changes it. Which strategy really ran is checked twice: the route's names
(``describe``) and counters wrapped around the route's runners, so a test fails when a call
silently falls back to torch's native op.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import deconvbench.nn as dnn
from deconvbench.errors import InputError
from deconvbench.nn.dispatch import Route, Side, strategy
from deconvbench.nn.overhead import plan_for
from deconvbench.problem import Problem
from deconvbench.results.plan_file import Plan, write_plan

TORCH_CLASSES: dict[int, type[nn.Module]] = {
    1: nn.ConvTranspose1d,
    2: nn.ConvTranspose2d,
    3: nn.ConvTranspose3d,
}
OUR_CLASSES: dict[int, type[nn.Module]] = {
    1: dnn.ConvTranspose1d,
    2: dnn.ConvTranspose2d,
    3: dnn.ConvTranspose3d,
}


def numba_missing() -> str | None:
    found = strategy("numba/tiled")
    return found if isinstance(found, str) else None


NUMBA = pytest.mark.skipif(
    numba_missing() is not None, reason=f"numba/tiled unavailable: {numba_missing()}"
)


# --- helpers ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer's configuration, and the problem a batch of ``input`` makes of it."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    groups: int = 1
    bias: bool = True

    def problem(
        self,
        batch: int,
        input: tuple[int, ...],
        dtype: str = "float32",
        output_padding: int | None = None,
    ) -> Problem:
        return Problem.create(
            batch=batch, in_channels=self.in_channels, out_channels=self.out_channels,
            input=input, kernel=self.kernel, stride=self.stride, padding=self.padding,
            output_padding=self.output_padding if output_padding is None else output_padding,
            dilation=self.dilation, groups=self.groups, bias=self.bias, dtype=dtype,
        )  # fmt: skip

    def args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.in_channels, self.out_channels, self.kernel), dict(
            stride=self.stride, padding=self.padding, output_padding=self.output_padding,
            dilation=self.dilation, groups=self.groups, bias=self.bias,
        )  # fmt: skip


def pair(
    config: Layer, ndim: int, plan: Plan | None, dtype: torch.dtype = torch.float32, **kw: Any
) -> tuple[nn.Module, nn.Module]:
    """(torch's layer, ours with ``plan``), same weights."""
    args, kwargs = config.args()
    torch.manual_seed(0)
    ref = TORCH_CLASSES[ndim](*args, **kwargs, dtype=dtype)
    ours = OUR_CLASSES[ndim](*args, **kwargs, dtype=dtype, plan=plan, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def routes(plan: Plan, force: bool = False) -> list[Route]:
    return list(dnn.dispatcher_for(plan, force).routes.values())


def only_route(plan: Plan, force: bool = False) -> Route:
    (route,) = routes(plan, force)
    return route


class Calls:
    """Counts the calls of a route's runners (wrapping the runner objects' methods)."""

    def __init__(self, route: Route) -> None:
        self.counts: dict[str, int] = {"forward": 0, "backward": 0}
        for pass_, side in (("forward", route.forward), ("backward", route.backward)):
            self._wrap(side, pass_)

    def _wrap(self, side: Side, pass_: str) -> None:
        runner = side.runner
        assert runner is not None, f"{pass_} runs native"
        original: Callable[..., Any] = getattr(runner, pass_)
        if getattr(original, "_counted", False):  # one runner for both passes: wrapped once
            original = original.__wrapped__  # type: ignore[attr-defined]

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[pass_] += 1
            return original(*args, **kwargs)

        counted._counted = True  # type: ignore[attr-defined]
        counted.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(runner, pass_, counted)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """float32 tolerance, relative to the values' scale."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = float(expected.detach().abs().max()) or 1.0
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def assert_native(route: Route, why: str) -> None:
    assert route.native, route.describe()
    assert route.forward.name == "native" and route.backward.name == "native"
    assert why in route.forward.reason, route.describe()


@contextmanager
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- 1. drop-in equivalence without a plan ---------------------------------------------------

CONFIGS = {
    1: Layer(3, 4, 3, stride=2, padding=1, output_padding=1, dilation=1, groups=1, bias=True),
    2: Layer(4, 6, 3, stride=2, padding=1, output_padding=1, dilation=2, groups=2, bias=False),
    3: Layer(2, 2, 2, stride=(2), padding=0, groups=2, bias=True),
}
INPUTS = {1: (2, 3, 7), 2: (2, 4, 5, 6), 3: (1, 2, 3, 3, 2)}


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_without_a_plan_the_layers_are_torchs(ndim: int) -> None:
    args, kwargs = CONFIGS[ndim].args()
    torch.manual_seed(0)
    ref = TORCH_CLASSES[ndim](*args, **kwargs)
    torch.manual_seed(0)
    ours = OUR_CLASSES[ndim](*args, **kwargs)
    assert isinstance(ours, TORCH_CLASSES[ndim])
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                 "output_padding", "dilation", "groups", "padding_mode", "transposed"):  # fmt: skip
        assert getattr(ours, name) == getattr(ref, name), name
    assert ours.plan is None  # type: ignore[attr-defined]
    assert repr(ours) == repr(ref)
    theirs, mine = ref.state_dict(), ours.state_dict()
    assert list(mine) == list(theirs)
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    x = torch.randn(INPUTS[ndim])
    assert torch.equal(ours(x), ref(x))
    size = ref(x).shape[2:]
    smaller = [s - 1 for s in size]  # output_size picks output_padding 0 instead of 1
    if ndim != 3:
        assert torch.equal(ours(x, output_size=smaller), ref(x, output_size=smaller))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_state_dicts_load_both_ways(ndim: int) -> None:
    args, kwargs = CONFIGS[ndim].args()
    torch.manual_seed(1)
    ref = TORCH_CLASSES[ndim](*args, **kwargs)
    torch.manual_seed(2)
    ours = OUR_CLASSES[ndim](*args, **kwargs)
    assert not torch.equal(ours.weight, ref.weight)
    ours.load_state_dict(ref.state_dict())  # torch -> ours
    assert torch.equal(ours.weight, ref.weight)
    x = torch.randn(INPUTS[ndim])
    assert torch.equal(ours(x), ref(x))
    with torch.no_grad():
        ours.weight.mul_(2.0)
    back = TORCH_CLASSES[ndim](*args, **kwargs)
    back.load_state_dict(ours.state_dict())  # ours -> torch
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert torch.equal(back(x), ours(x))


# --- 2. apply_plan on a model ----------------------------------------------------------------


class Doubled(nn.ConvTranspose2d):
    """A subclass with a forward of its own: apply_plan leaves it alone."""

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        return 2 * super().forward(input, output_size)


class Inner(nn.Module):
    def __init__(self, shared: nn.ConvTranspose2d) -> None:
        super().__init__()
        self.seq = nn.Sequential(shared, nn.ReLU(), nn.ConvTranspose2d(4, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.seq(x)
        return out


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.ConvTranspose2d(4, 4, 4, 2, 1, bias=False)
        self.blocks = nn.ModuleList([Inner(self.shared)])
        self.doubled = Doubled(4, 4, 1)
        self.line = nn.ConvTranspose1d(2, 2, 3)
        self.cube = nn.ConvTranspose3d(1, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.doubled(self.shared(self.blocks[0](x)))


NATIVE = "torch-cpu/native"
SHARED = Layer(4, 4, 4, stride=2, padding=1, bias=False)


def test_apply_plan_converts_every_layer_in_place_and_keeps_its_parameters() -> None:
    torch.manual_seed(0)
    model = Outer()
    modules = dict(model.named_modules(remove_duplicate=False))
    params = {name: p for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(1, 4, 3, 3)
    expected = model(x)
    plan = plan_for(SHARED.problem(1, (3, 3)), "numpy/gemm-col2im", "numpy/gemm-col2im")

    assert dnn.apply_plan(model, plan) is model

    assert dict(model.named_modules(remove_duplicate=False)) == modules  # same objects
    for name, module in model.named_modules(remove_duplicate=False):
        assert module is modules[name]
    assert type(model.shared) is dnn.ConvTranspose2d
    assert model.blocks[0].seq[0] is model.shared
    assert type(model.blocks[0].seq[2]) is dnn.ConvTranspose2d
    assert type(model.line) is dnn.ConvTranspose1d
    assert type(model.cube) is dnn.ConvTranspose3d
    assert type(model.doubled) is Doubled
    assert not isinstance(model.doubled, dnn.ConvTranspose2d)
    for name, p in model.named_parameters():
        assert p is params[name], name
    assert all(getattr(model, n).plan is plan for n in ("shared", "line", "cube"))

    assert_close(model(x), expected)
    assert "forward numpy/gemm-col2im" in dnn.describe(model)
    shared_routes = [r for r in routes(plan) if r.problem == SHARED.problem(1, (3, 3))]
    assert shared_routes and shared_routes[0].forward.name == "numpy/gemm-col2im"

    # the optimizer made before apply_plan updates the layers' Parameters
    before = model.shared.weight.detach().clone()
    calls = Calls(shared_routes[0])
    model(x).square().sum().backward()
    assert calls.counts["backward"] >= 1
    optimizer.step()
    assert not torch.equal(model.shared.weight, before)
    y = model.shared(x)
    assert_close(y, nn.functional.conv_transpose2d(x, model.shared.weight, None, 2, 1))


# --- 3. forward and gradients by each strategy -----------------------------------------------

GROUPED = Layer(4, 6, 4, stride=2, padding=1, groups=2, bias=True)
PLAIN_3D = Layer(3, 2, 3, stride=2, padding=1, bias=False)
STRATEGIES = [
    ("numpy/gemm-col2im", "numpy/gemm-col2im"),
    pytest.param("numba/tiled", "numba/tiled", marks=NUMBA),
    ("torch-cpu/gemm-col2im", "torch-cpu/gemm-col2im"),
    ("torch-cpu/zero-insert", "torch-cpu/zero-insert"),  # backward: autograd over its graph
    ("torch-cpu/subpixel", "torch-cpu/subpixel"),
    ("torch-cpu/native-channels-last", "torch-cpu/native-channels-last"),
    ("numpy/subpixel", "torch-cpu/gemm-col2im"),
]
SHAPES = [
    pytest.param(GROUPED, 2, (2, 5, 5), id="2d-groups-bias"),
    pytest.param(PLAIN_3D, 3, (1, 3, 4, 3), id="3d-nobias"),
]


def run_and_compare(
    ref: nn.Module, ours: nn.Module, x: torch.Tensor, plan: Plan, **call: Any
) -> tuple[Route, Calls]:
    """Our layer against torch's: forward, then all gradients; the route must be the plan's."""
    with torch.no_grad():
        ours(x, **call)  # makes the route
    route = only_route(plan)
    counts = Calls(route)
    xr = x.clone().requires_grad_()
    xo = x.clone().requires_grad_()
    expected = ref(xr, **call)
    y = ours(xo, **call)
    assert_close(y, expected)
    assert y.grad_fn is not None
    grad = torch.randn_like(expected)
    expected.backward(grad)
    y.backward(grad)
    assert xo.grad is not None and xr.grad is not None
    assert_close(xo.grad, xr.grad)
    for name, p in ours.named_parameters():
        ref_p = dict(ref.named_parameters())[name]
        assert p.grad is not None and ref_p.grad is not None, name
        assert_close(p.grad, ref_p.grad)
    return route, counts


@pytest.mark.parametrize(("config", "ndim", "size"), SHAPES)
@pytest.mark.parametrize(("forward", "backward"), STRATEGIES)
def test_a_planned_strategy_runs_and_matches_torch(
    forward: str, backward: str, config: Layer, ndim: int, size: tuple[int, ...]
) -> None:
    batch, *spatial = size
    plan = plan_for(config.problem(batch, tuple(spatial)), forward, backward)
    ref, ours = pair(config, ndim, plan)
    x = torch.randn(batch, config.in_channels, *spatial)
    with no_warnings():
        route, calls = run_and_compare(ref, ours, x, plan)
    assert (route.forward.name, route.backward.name) == (forward, backward), route.describe()
    text = dnn.describe(ours)
    assert f"forward {forward} (plan" in text and f"backward {backward} (plan" in text, text
    assert calls.counts["forward"] >= 1
    if not route.graph:  # a graph route's backward is autograd over its own forward
        assert calls.counts["backward"] == 1


def test_output_size_picks_the_output_padding_the_plan_has() -> None:
    config = Layer(2, 3, 3, stride=2, padding=1, bias=True)
    # (5 - 1) * 2 - 2 + 3 = 9; output_size 10 means output_padding 1
    plan = plan_for(config.problem(1, (5, 5), output_padding=1), "numpy/gemm-col2im",
                    "torch-cpu/subpixel")  # fmt: skip
    ref, ours = pair(config, 2, plan)
    x = torch.randn(1, 2, 5, 5)
    route, calls = run_and_compare(ref, ours, x, plan, output_size=[10, 10])
    assert route.problem is not None and route.problem.output_padding == (1, 1)
    assert (route.forward.name, route.backward.name) == ("numpy/gemm-col2im", "torch-cpu/subpixel")
    assert calls.counts == {"forward": 1, "backward": 1}


# --- 4. gradcheck in float64 -----------------------------------------------------------------

GRADCHECK = Layer(2, 2, 3, stride=2, padding=1, bias=True)


@pytest.mark.parametrize(
    "name",
    [
        "numpy/gemm-col2im",
        pytest.param("numba/tiled", marks=NUMBA),
        "torch-cpu/gemm-col2im",
        "torch-cpu/zero-insert",
    ],
)
def test_gradcheck_through_the_layer(name: str) -> None:
    plan = plan_for(GRADCHECK.problem(1, (3, 3), dtype="float64"), name, name)
    _, layer = pair(GRADCHECK, 2, plan, dtype=torch.float64)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    with torch.no_grad():
        layer(x)
    route = only_route(plan)
    assert route.problem is not None and route.problem.dtype == "float64"
    assert (route.forward.name, route.backward.name) == (name, name), route.describe()
    calls = Calls(route)

    def call(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))
        return out

    assert torch.autograd.gradcheck(call, (x, w, b), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert calls.counts["forward"] >= 1
    if not route.graph:
        assert calls.counts["backward"] >= 1


# --- 5. fallbacks to native, silent ----------------------------------------------------------

FALLBACK = Layer(2, 3, 3, stride=2, padding=1, bias=True)


@pytest.mark.parametrize(("backward_ms", "runs"), [(1.0, "torch-cpu/zero-insert"), (2.5, "native")])
def test_a_backward_that_must_rebuild_its_graph_runs_only_when_that_pays(
    backward_ms: float, runs: str
) -> None:
    """Native forward (1 ms), zero-insert backward (autograd over its own forward; native
    3 ms): rerunning zero-insert's forward inside the backward costs about native's
    forward, 1 ms."""
    plan = plan_for(FALLBACK.problem(1, (4, 4)), NATIVE, "torch-cpu/zero-insert")
    entries = tuple(
        dataclasses.replace(e, strategy_ms=backward_ms) if e.pass_ == "backward" else e
        for e in plan.entries
    )
    plan = dataclasses.replace(plan, entries=entries)
    ref, ours = pair(FALLBACK, 2, plan)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    ours(x).square().sum().backward()
    ref(x.detach()).square().sum().backward()
    assert ours.weight.grad is not None and ref.weight.grad is not None
    assert_close(ours.weight.grad, ref.weight.grad)
    route = only_route(plan)
    assert route.backward.name == runs, route.describe()
    if runs == "native":
        assert "reruns its forward inside the backward" in route.backward.reason


def test_calls_the_plan_does_not_cover_run_native_silently() -> None:
    plan = plan_for(FALLBACK.problem(1, (4, 4)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(FALLBACK, 2, plan)
    dispatcher = dnn.dispatcher_for(plan)
    with no_warnings():
        x = torch.randn(2, 2, 5, 5, requires_grad=True)  # another shape
        assert_close(ours(x), ref(x))
        (route,) = dispatcher.routes.values()
        assert_native(route, "the plan has no forward entry")
        assert "forward native (the plan has no forward entry" in dnn.describe(ours)
        dispatcher.routes.clear()

        x64 = torch.randn(1, 2, 4, 4, dtype=torch.float64)  # float64, the plan is float32
        ref64, ours64 = ref.double(), copy.deepcopy(ours).double()
        assert_close(ours64(x64), ref64(x64))
        (route,) = dispatcher.routes.values()
        assert_native(route, "the plan has no forward entry")
        dispatcher.routes.clear()

        ref16 = copy.deepcopy(ref).to(torch.bfloat16)
        ours16 = copy.deepcopy(ours).to(torch.bfloat16)
        x16 = torch.randn(1, 2, 4, 4, dtype=torch.bfloat16)
        y16 = ours16(x16)
        assert y16.dtype == torch.bfloat16 and torch.equal(y16, ref16(x16))
        (route,) = dispatcher.routes.values()
        assert route.native, route.describe()


def test_a_strategy_that_is_not_registered_runs_native_silently() -> None:
    plan = plan_for(FALLBACK.problem(1, (4, 4)), "numpy/no-such-thing", "numpy/no-such-thing")
    ref, ours = pair(FALLBACK, 2, plan)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    with no_warnings():
        y = ours(x)
        y.sum().backward()
    assert_close(y, ref(x))
    route = only_route(plan)
    assert_native(route, "no-such-thing")
    assert "no-such-thing" in route.backward.reason


def test_unbatched_input_runs_the_plan_and_matches_torch() -> None:
    plan = plan_for(FALLBACK.problem(1, (4, 4)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(FALLBACK, 2, plan)
    x = torch.randn(2, 4, 4)  # (C, H, W)
    with no_warnings():
        with torch.no_grad():
            ours(x)
        route = only_route(plan)
        calls = Calls(route)
        xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected, y = ref(xr), ours(xo)
        assert y.shape == expected.shape == (3, 7, 7)
        assert_close(y, expected)
        grad = torch.randn_like(y)
        expected.backward(grad)
        y.backward(grad)
    assert xo.grad is not None and xr.grad is not None
    assert_close(xo.grad, xr.grad)
    assert route.forward.name == "numpy/gemm-col2im"
    assert calls.counts == {"forward": 1, "backward": 1}


def test_unbatched_input_not_in_the_plan_runs_native() -> None:
    plan = plan_for(FALLBACK.problem(2, (4, 4)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(FALLBACK, 2, plan)
    x = torch.randn(2, 4, 4)  # a batch of one: not the plan's batch of two
    with no_warnings():
        assert_close(ours(x), ref(x))
    assert_native(only_route(plan), "the plan has no forward entry")


# --- 6. a plan from another machine ----------------------------------------------------------


def other_machine(plan: Plan) -> Plan:
    return dataclasses.replace(plan, fingerprint={**plan.fingerprint, "cpu": "other"})


def test_a_plan_from_another_machine_warns_once_and_runs_native() -> None:
    problem = FALLBACK.problem(1, (4, 4))
    plan = other_machine(plan_for(problem, "numpy/gemm-col2im", "numpy/gemm-col2im"))
    ref, first = pair(FALLBACK, 2, plan)
    _, second = pair(FALLBACK, 2, plan)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            for layer in (first, second):
                assert_close(layer(x), ref(x))
                layer(x).sum().backward()
    mismatches = [w for w in caught if issubclass(w.category, dnn.PlanMismatchWarning)]
    assert len(mismatches) == 1, [str(w.message) for w in caught]
    assert len(caught) == 1
    assert "cpu: 'other' ->" in str(mismatches[0].message)
    assert mismatches[0].filename == __file__  # the caller's line, not the package's
    assert_native(only_route(plan), "fingerprint differs")
    assert "not used: cpu" in dnn.describe(first)


def test_force_runs_a_plan_from_another_machine() -> None:
    problem = FALLBACK.problem(1, (4, 4))
    plan = other_machine(plan_for(problem, "numpy/gemm-col2im", "numpy/gemm-col2im"))
    ref, ours = pair(FALLBACK, 2, plan, force=True)
    x = torch.randn(1, 2, 4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            ours(x)
        route = only_route(plan, force=True)
        calls = Calls(route)
        assert_close(ours(x), ref(x))
    assert [w.category for w in caught] == [dnn.PlanMismatchWarning]
    assert "using it anyway" in str(caught[0].message)
    assert route.forward.name == "numpy/gemm-col2im"
    assert calls.counts["forward"] == 1
    assert "forced" in dnn.describe(ours)


# --- 7. no_grad, inference_mode, autocast ----------------------------------------------------


@pytest.mark.parametrize(
    "mode", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference"]
)
def test_without_autograd_the_forward_runner_runs(mode: Callable[[], Any]) -> None:
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "torch-cpu/subpixel")
    ref, ours = pair(GROUPED, 2, plan)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    with torch.no_grad():
        ours(x)
    calls = Calls(only_route(plan))
    with mode():
        y, expected = ours(x), ref(x)
    assert y.grad_fn is None and not y.requires_grad
    assert_close(y, expected)
    assert calls.counts == {"forward": 1, "backward": 0}


def test_autocast_gives_torchs_own_result() -> None:
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(GROUPED, 2, plan)
    x = torch.randn(2, 4, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, expected = ours(x), ref(x)
    assert expected.dtype == torch.bfloat16
    assert y.dtype == expected.dtype and torch.equal(y, expected)
    # outside autocast the plan runs
    with torch.no_grad():
        ours(x)
    assert only_route(plan).forward.name == "numpy/gemm-col2im"


# --- 8. torch.compile --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_compiled_fullgraph_runs_the_plan(backend: str) -> None:
    torch._dynamo.reset()
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "numpy/subpixel")
    ref, ours = pair(GROUPED, 2, plan)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        ours(x)
    route = only_route(plan)
    calls = Calls(route)
    compiled = torch.compile(ours, fullgraph=True, backend=backend)
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, y = ref(xr), compiled(xo)
    assert_close(y, expected)
    grad = torch.randn_like(y)
    expected.backward(grad)
    y.backward(grad)
    assert xo.grad is not None and xr.grad is not None
    assert_close(xo.grad, xr.grad)
    for name, p in ours.named_parameters():
        ref_p = dict(ref.named_parameters())[name]
        assert p.grad is not None and ref_p.grad is not None
        assert_close(p.grad, ref_p.grad)
    assert calls.counts["forward"] >= 1 and calls.counts["backward"] == 1
    torch._dynamo.reset()


# --- 9. a plan file of another format version ------------------------------------------------


def test_a_plan_file_of_another_version_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plan.json"
    write_plan(plan_for(SHARED.problem(1, (3, 3)), "numpy/gemm-col2im", "numpy/gemm-col2im"),
               path)  # fmt: skip
    data = json.loads(path.read_text())
    data["format_version"] = 999
    path.write_text(json.dumps(data))
    model = Outer()
    with pytest.raises(InputError) as raised:
        dnn.apply_plan(model, path)
    message = str(raised.value)
    assert "999" in message and "\n" not in message
    assert type(model.shared) is nn.ConvTranspose2d
    assert type(model.line) is nn.ConvTranspose1d
    assert type(model.cube) is nn.ConvTranspose3d
    assert not any(isinstance(m, dnn.ConvTranspose2d) for m in model.modules())
    # and the valid file itself loads
    data["format_version"] = 1
    path.write_text(json.dumps(data))
    dnn.apply_plan(model, path)
    assert type(model.shared) is dnn.ConvTranspose2d


# --- 10. a second derivative -------------------------------------------------------------------


def test_a_second_derivative_through_a_planned_backward_is_torchs() -> None:
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(GROUPED, 2, plan)
    x = torch.randn(2, 4, 5, 5)
    grads = []
    for layer in (ref, ours):
        xi = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(layer(xi).square().sum(), xi, create_graph=True)
        gx.square().sum().backward()
        assert layer.weight.grad is not None and xi.grad is not None
        grads += [layer.weight.grad, xi.grad]
    assert only_route(plan).backward.name == "numpy/gemm-col2im"
    assert_close(grads[2], grads[0])
    assert_close(grads[3], grads[1])


def test_a_gradient_penalty_through_a_planned_backward_is_torchs() -> None:
    """A grad_output that does not require grad (``y.sum()``, as in WGAN-GP's penalty)."""
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(GROUPED, 2, plan)
    x = torch.randn(2, 4, 5, 5)
    grads = []
    for layer in (ref, ours):
        xi = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(layer(xi).sum(), xi, create_graph=True)
        assert gx.requires_grad
        (layer(xi).mean() + gx.square().sum()).backward()
        assert layer.weight.grad is not None
        grads.append(layer.weight.grad)
    assert_close(grads[1], grads[0])


# --- 11. copies --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_of_a_planned_model_still_runs_the_plan(how: str) -> None:
    plan = plan_for(GROUPED.problem(2, (5, 5)), "numpy/gemm-col2im", "numpy/gemm-col2im")
    ref, ours = pair(GROUPED, 2, plan)
    model = nn.Sequential(ours, nn.ReLU())
    copied = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    layer = copied[0]
    assert type(layer) is dnn.ConvTranspose2d and layer is not ours
    assert layer.weight is not ours.weight and torch.equal(layer.weight, ours.weight)
    assert layer.plan is not None and layer.plan.entries == plan.entries
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    y = copied(x)
    assert_close(y, torch.relu(ref(x)))
    y.sum().backward()
    text = dnn.describe(copied)
    assert "forward numpy/gemm-col2im (plan" in text, text
    assert "backward numpy/gemm-col2im (plan" in text, text
    assert layer.weight.grad is not None and ours.weight.grad is None


# --- the overhead tool ---------------------------------------------------------------------------


def test_the_overhead_tool_times_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    from deconvbench.nn import overhead

    overhead.main(["--strategy", "numpy/gemm-col2im", "--repeat", "3", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    timed = [line for line in lines if line.endswith("µs")]
    assert len(timed) == 8, lines
    assert all(float(line.split()[-2]) > 0 for line in timed)
    assert any("training: planned, numpy/gemm-col2im" in line for line in timed)

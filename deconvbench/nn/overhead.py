"""What the drop-in layer costs per call, beyond the strategy's own work.

``python -m deconvbench.nn.overhead [--strategy numpy/gemm-col2im] [--repeat 2000]`` times,
on a small layer (batch 1, 16→8 channels, 8×8 input, kernel 4, stride 2, padding 1,
float32, no bias: the work is a few microseconds, so what is left is overhead):

* ``torch``: ``nn.ConvTranspose2d`` itself;
* ``planned, native route``: the planned layer whose plan keeps native for this shape
  (the dispatch alone: the route lookup, then ``F.conv_transpose2d``);
* ``strategy direct``: the strategy's ``prepare_*`` + ``call`` + ``fetch`` on numpy arrays
  made beforehand (what the strategy costs with no layer around it);
* ``planned, strategy``: the planned layer running that strategy (dispatch, numpy views of
  the tensors, the wrap of the result, and for training the autograd Function).

Each is timed without autograd (``torch.no_grad()``) and as a training step (forward, then
backward of ``y.sum()``, whose grad_output is made contiguous first so the timing is not of
a copy). The median of ``--rounds`` medians of ``--repeat`` calls is printed, in µs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .. import registry
from ..env.fingerprint import current, for_backends
from ..problem import Problem
from ..results.plan_file import Plan, PlanEntry
from .layers import ConvTranspose2d

PROBLEM = Problem.create(
    batch=1, in_channels=16, out_channels=8, input=(8, 8), kernel=4, stride=2, padding=1
)
NATIVE = "torch-cpu/native"


def plan_for(problem: Problem, forward: str, backward: str) -> Plan:
    """A plan of two entries for ``problem``, fingerprinted as this machine now is; each
    strategy measured 3x faster than native (forward 1 ms, backward 3 ms natively)."""

    def entry(pass_: str, strategy: str) -> PlanEntry:
        native_ms = 1.0 if pass_ == "forward" else 3.0  # a backward is about twice the work
        return PlanEntry(
            problem=problem, device="cpu", pass_=pass_,  # type: ignore[arg-type]
            strategy=strategy, native=NATIVE, native_ms=native_ms, strategy_ms=native_ms / 3,
            speedup=3.0,
            ci_low=None, ci_high=None, p_value=None, contender=strategy,
            reason="overhead measurement", source="deconvbench.nn.overhead",
        )  # fmt: skip

    entries = (entry("forward", forward), entry("backward", backward))
    backends = {s.split("/", 1)[0] for s in (forward, backward)}
    fingerprint = for_backends(current(torch.get_num_threads()), backends)
    return Plan(fingerprint=fingerprint, rule={}, entries=entries)


def timed(fn: Callable[[], object], repeat: int, rounds: int) -> float:
    """Median over rounds of the median µs per call (after a warm-up round)."""
    for _ in range(max(10, repeat // 10)):
        fn()
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        medians.append(statistics.median(samples))
    return statistics.median(medians) * 1e6


def _layer(plan: Plan | None) -> nn.ConvTranspose2d:
    p = PROBLEM
    layer = ConvTranspose2d(
        p.in_channels, p.out_channels, p.kernel, p.stride, p.padding, bias=False, plan=plan
    )
    return layer


def measure(strategy: str, repeat: int, rounds: int) -> dict[str, float]:
    """µs per call of each contender, inference and training (see the module docstring)."""
    torch.manual_seed(0)
    torch_layer = nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False)
    planned = _layer(plan_for(PROBLEM, strategy, strategy))
    native_planned = _layer(plan_for(PROBLEM, NATIVE, NATIVE))
    for layer in (planned, native_planned):
        layer.load_state_dict(torch_layer.state_dict())
    x = torch.randn(PROBLEM.x_shape)
    xg = x.clone().requires_grad_()
    ones = torch.ones(PROBLEM.y_shape)
    chosen = registry.get(strategy)
    xa, wa = x.numpy(), torch_layer.weight.detach().numpy()
    ga = ones.numpy()

    def infer(layer: nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.no_grad():
                return layer(x)

        return call

    def train(layer: nn.Module) -> Callable[[], object]:
        def step() -> None:
            layer(xg).backward(ones)

        return step

    def direct_forward() -> object:
        prepared = chosen.prepare_forward(PROBLEM, xa, wa, None)
        return prepared.fetch(prepared.call())

    def direct_step() -> object:
        direct_forward()
        prepared = chosen.prepare_backward(PROBLEM, ga, xa, wa)
        return prepared.fetch(prepared.call())

    contenders: dict[str, Callable[[], object]] = {
        "inference: torch": infer(torch_layer),
        "inference: planned, native route": infer(native_planned),
        f"inference: {strategy} direct": direct_forward,
        f"inference: planned, {strategy}": infer(planned),
        "training: torch": train(torch_layer),
        "training: planned, native route": train(native_planned),
        f"training: {strategy} direct": direct_step,
        f"training: planned, {strategy}": train(planned),
    }
    return {name: timed(fn, repeat, rounds) for name, fn in contenders.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", default="numpy/gemm-col2im")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{PROBLEM}; torch threads {torch.get_num_threads()}; numpy {np.__version__}")
    results = measure(args.strategy, args.repeat, args.rounds)
    width = max(len(name) for name in results)
    for name, us in results.items():
        print(f"{name:<{width}}  {us:8.1f} µs")


if __name__ == "__main__":
    main()

"""The DCGAN generator with ``deconvbench.nn.apply_plan`` against plain torch: interleaved A/B.

The generator of pytorch/examples ``dcgan/main.py`` (nz=100, ngf=64, nc=3: five
ConvTranspose2d layers with BatchNorm and ReLU between them, Tanh at the end), at each
``--batch``, float32 on the CPU. Copies with the same weights: A (``torch``) is plain torch,
and each ``--plan`` is a variant B (``plan:<file stem>``), A after ``apply_plan``. Measured
in one process, the variants alternating call by call (the order reversed every round), so
the machine's drift falls on all alike:

- **train**: a training step, ``zero_grad``, forward, ``loss = out.square().mean()``,
  backward (BatchNorm in training mode; the optimizer's update is the same for all and left
  out);
- **infer**: the forward under ``torch.inference_mode()`` (BatchNorm in eval mode).

Before timing, each B's output and every parameter's gradient are checked against A's within
float32 tolerance. We report the median of each, the speedup ``A / B`` and its 95% bootstrap
interval, and write every sample. Then, to show where the time goes, each transposed
convolution's forward and backward is clocked inside the training step (module hooks, on
hooked copies) and printed beside the plan's isolated figures. The process state is fixed as
``deconvbench run`` fixes it: the thread count (torch, BLAS, numba), the allocator's
thresholds (``warm``) and OpenBLAS's overrides unset.

    python benchmarks/dcgan_plan.py --plan torch.json --plan all.json --batch 16 --batch 64 \
        -o results/cpu-epyc-2vcpu/plan/dcgan-ab.csv
"""

from __future__ import annotations

from _blas_env import restart_without_blas_overrides

if __name__ == "__main__":  # before numpy (imported below) loads OpenBLAS
    restart_without_blas_overrides()

import argparse
import copy
import csv
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from deconvbench.analysis.significance import ratio_interval
from deconvbench.env import collect
from deconvbench.harness.process import set_memory_state, settle_thread_pools
from deconvbench.harness.threads import limit_threads
from deconvbench.nn import apply_plan
from deconvbench.results.plan_file import Plan, PlanEntry, read_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for examples/
from examples.models.dcgan import NZ, Generator  # found through the path above

PLAIN = "torch"
"""Variant A's name; each plan's variant is ``plan:<file stem>``."""


def train_step(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    out = model(z)
    out.square().mean().backward()
    return cast(torch.Tensor, out)


def infer(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return cast(torch.Tensor, model(z))


def check_same(a: nn.Module, b: nn.Module, z: torch.Tensor) -> dict[str, float]:
    """B's output and gradients against A's: the largest error relative to A's largest value."""
    a.train()
    b.train()
    errors = {}
    out_a, out_b = train_step(a, z), train_step(b, z)
    errors["output"] = float((out_a - out_b).detach().abs().max() / out_a.detach().abs().max())
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert pa.grad is not None and pb.grad is not None
        errors[f"grad {name}"] = float((pa.grad - pb.grad).abs().max() / pa.grad.abs().max())
    worst = max(errors.values())
    if worst > 1e-4:
        raise SystemExit(f"B differs from A: {errors}")
    return errors


def time_pairs(
    calls: Mapping[str, Callable[[], object]], pairs: int, warmup: int
) -> dict[str, list[float]]:
    """Each call once per pair, the order swapped every pair; milliseconds."""
    names = list(calls)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + pairs):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            settle_thread_pools()
            start = time.perf_counter()
            calls[name]()
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= warmup:
                samples[name].append(elapsed)
    return samples


class LayerClock:
    """Wall time of each transposed convolution's forward and backward inside the model, by
    module hooks (their own cost, a few µs a call, falls on every variant alike)."""

    def __init__(self, model: nn.Module) -> None:
        self.ms: dict[tuple[str, str], list[float]] = {}
        for name, module in model.named_modules():
            if isinstance(module, nn.ConvTranspose2d):
                self._hook(name, module)

    def _hook(self, name: str, module: nn.Module) -> None:
        started: dict[str, float] = {}

        def start(pass_: str) -> Callable[..., None]:
            return lambda *_: started.__setitem__(pass_, time.perf_counter())

        def stop(pass_: str) -> Callable[..., None]:
            samples = self.ms.setdefault((name, pass_), [])
            return lambda *_: samples.append((time.perf_counter() - started[pass_]) * 1e3)

        module.register_forward_pre_hook(start("forward"))
        module.register_forward_hook(stop("forward"))
        module.register_full_backward_pre_hook(start("backward"))
        module.register_full_backward_hook(stop("backward"))


def layer_times(
    models: Mapping[str, nn.Module], z: torch.Tensor, steps: int, warmup: int
) -> dict[str, dict[tuple[str, str], float]]:
    """Median ms of each layer's forward and backward inside a training step, per variant
    (copies of the models, hooked, interleaved as the main timing is)."""
    hooked = {name: copy.deepcopy(model) for name, model in models.items()}
    clocks = {name: LayerClock(model) for name, model in hooked.items()}
    zg = z.clone().requires_grad_()  # so the first layer's backward hooks fire too
    calls = {name: functools.partial(train_step, model, zg) for name, model in hooked.items()}
    time_pairs(calls, steps, warmup)
    return {
        name: {key: float(np.median(v[warmup:])) for key, v in clock.ms.items()}
        for name, clock in clocks.items()
    }


def print_layers(
    times: dict[str, dict[tuple[str, str], float]],
    plans: dict[str, Plan],
    models: Mapping[str, nn.Module],
    batch: int,
) -> list[dict[str, object]]:
    """The per-layer table: in-model ms of torch and of each plan, the strategy that ran
    (the layer's route) and, when it is the plan's choice, the plan's isolated figures."""
    rows: list[dict[str, object]] = []
    print("  per layer, in the model (ms; plan's isolated figures in brackets):")
    for key in times[PLAIN]:
        layer, pass_ = key
        line = f"    {layer:>7} {pass_:8s} {PLAIN} {times[PLAIN][key]:7.3f}"
        row: dict[str, object] = {"batch": batch, "layer": layer, "pass": pass_,
                                  "torch_ms": times[PLAIN][key]}  # fmt: skip
        for name, plan in plans.items():
            conv = cast(nn.ConvTranspose2d, models[name].get_submodule(layer))
            entry = plan_entry(plan, batch, conv, pass_)
            ran = route_side(conv, batch, pass_)
            predicted = (
                f" [{entry.native_ms:.3f} -> {entry.strategy_ms:.3f}]"
                if entry is not None and entry.strategy == ran
                else ""
            )
            line += f" | {name} {times[name][key]:7.3f} {ran}{predicted}"
            row[f"{name}_ms"] = times[name][key]
            row[f"{name}_strategy"] = ran
        print(line)
        rows.append(row)
    return rows


def route_side(layer: nn.ConvTranspose2d, batch: int, pass_: str) -> str:
    """What the planned ``layer`` ran for this batch and pass, and why when it was native:
    its dispatcher's route (``deconvbench.nn.dispatch``)."""
    dispatcher = layer.__dict__.get("_dispatcher")
    for route in getattr(dispatcher, "routes", {}).values():
        p = route.problem
        if p is not None and (p.batch, p.in_channels, p.out_channels) == (
            batch, layer.in_channels, layer.out_channels
        ):  # fmt: skip
            side = route.forward if pass_ == "forward" else route.backward
            return side.name if side.runner is not None else f"native ({side.reason})"
    return "native (no route)"


def plan_entry(plan: Plan, batch: int, layer: nn.ConvTranspose2d, pass_: str) -> PlanEntry | None:
    """The plan's entry for ``layer`` at this batch and pass (None: the plan has none)."""
    want = (batch, layer.in_channels, layer.out_channels, pass_)
    for entry in plan.entries:
        p = entry.problem
        if (p.batch, p.in_channels, p.out_channels, entry.pass_) == want:
            return entry
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--plan",
        type=Path,
        action="append",
        required=True,
        help="a plan file (repeatable: each is a variant B, named by its stem)",
    )
    parser.add_argument("--batch", type=int, action="append", default=None)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    batches = args.batch or [16, 64]
    plans = {f"plan:{path.name.removesuffix('.json')}": read_plan(path) for path in args.plan}
    if len(plans) != len(args.plan):
        parser.error("--plan: two plan files have one name; variants are named by it")
    rows: list[dict[str, object]] = []
    summary: dict[str, object] = {"plans": [str(p) for p in args.plan], "results": []}
    layers: list[dict[str, object]] = []
    with limit_threads(args.threads) as threads:
        memory = set_memory_state("warm")
        torch.manual_seed(0)
        plain = Generator()
        models: dict[str, nn.Module] = {PLAIN: plain}
        models.update({name: apply_plan(copy.deepcopy(plain), plan) for name, plan in
                       plans.items()})  # fmt: skip
        for batch in batches:
            z = torch.randn(batch, NZ, 1, 1)
            errors = {name: check_same(plain, model, z) for name, model in models.items()
                      if model is not plain}  # fmt: skip
            for mode in ("train", "infer"):
                for model in models.values():
                    model.train(mode == "train")
                step = train_step if mode == "train" else infer
                calls = {name: functools.partial(step, model, z) for name, model in
                         models.items()}  # fmt: skip
                samples = time_pairs(calls, args.pairs, args.warmup)
                a = float(np.median(samples[PLAIN]))
                for name in plans:
                    b = float(np.median(samples[name]))
                    low, high = ratio_interval(samples[name], samples[PLAIN])
                    result = {"batch": batch, "mode": mode, "plan": name, "torch_ms": a,
                              "plan_ms": b, "speedup": a / b, "ci95": [low, high],
                              "pairs": args.pairs,
                              "max_rel_error": max(errors[name].values())}  # fmt: skip
                    summary["results"].append(result)  # type: ignore[attr-defined]
                    print(
                        f"batch {batch:3d} {mode:5s} {name}: torch {a:8.3f} ms, plan {b:8.3f} "
                        f"ms, speedup {a / b:.3f}x (95% CI {low:.3f}-{high:.3f})",
                        flush=True,
                    )
                for variant, values in samples.items():
                    rows += [{"batch": batch, "mode": mode, "variant": variant, "pair": i,
                              "ms": v} for i, v in enumerate(values)]  # fmt: skip
            times = layer_times(models, z, args.pairs // 2, args.warmup)
            layers += print_layers(times, plans, models, batch)
        summary["threads"] = threads.facts()
        summary["memory"] = memory.facts()
    summary["layers"] = layers
    summary["env"] = collect()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["batch", "mode", "variant", "pair", "ms"])
        writer.writeheader()
        writer.writerows(rows)
    sidecar = args.output.with_name(args.output.name + ".json")
    sidecar.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"samples: {args.output}; summary: {sidecar}")


if __name__ == "__main__":
    main()

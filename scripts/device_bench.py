"""A short GPU benchmark of the torch-cuda strategies on the DCGAN generator layers.

For each layer and pass every selected strategy is prepared (compilation, autotuning and
the forward of a timed backward happen there), checked against the float64 reference,
then timed round-robin with CUDA events: one call each per round, the order rotated every
round, so clock and thermal drift fall on every contender alike. Prints median ms and the
speed against ``torch-cuda/native`` (>1: faster), and writes every sample to a CSV.

cuDNN caches one plan per convolution shape per thread, whatever the benchmark flag, so
``native`` and ``native-cudnn-benchmark`` cannot be compared inside one process: the first
to meet a shape fixes the plan for both. Time the benchmark variant in its own process:

    python3 scripts/device_bench.py --csv out/main.csv
    python3 scripts/device_bench.py --impl torch-cuda/native-cudnn-benchmark --csv out/tuned.csv

This is independent of ``deconvbench run`` (the harness) on purpose: a fallback that needs
nothing but the strategies, the reference and torch.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

from deconvbench import registry
from deconvbench.backends import Prepared, Strategy
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import compare_results, expected, prepare
from deconvbench.problem import PASSES, Pass, Problem

LAYERS = {
    name: Problem.create(
        batch=16,
        in_channels=cin,
        out_channels=cout,
        input=(size, size),
        kernel=4,
        stride=stride,
        padding=padding,
        dtype="float32",
    )
    for name, cin, cout, size, stride, padding in (
        ("g1", 100, 512, 1, 1, 0),
        ("g2", 512, 256, 4, 2, 1),
        ("g3", 256, 128, 8, 2, 1),
        ("g4", 128, 64, 16, 2, 1),
        ("g5", 64, 3, 32, 2, 1),
    )
}
DEFAULT_IMPLS = [
    "torch-cuda/native",
    "torch-cuda/native-channels-last",
    "torch-cuda/zero-insert",
    "torch-cuda/gemm-col2im",
    "torch-cuda/subpixel",
    "torch-cuda/subpixel-fused",
    "torch-cuda/compiled",
]
BASELINE = "torch-cuda/native"


def ready(strategy: Strategy, problem: Problem, pass_: Pass) -> tuple[Prepared | None, str]:
    """The prepared call, or None and why (unsupported, failed, or wrong)."""
    inputs = make_inputs(problem, seed=0)
    try:
        prepared = prepare(strategy, problem, pass_, inputs)
        result = prepared.call()
        prepared.synchronize()
        check = compare_results(
            problem, pass_, prepared.fetch(result), expected(problem, pass_, inputs)
        )
    except Exception as exc:  # report and go on: one strategy must not stop the others
        return None, f"{type(exc).__name__}: {exc}"
    return (prepared, "ok") if check.ok else (None, f"mismatch: {check.message}")


def time_round_robin(calls: dict[str, Prepared], rounds: int) -> dict[str, list[float]]:
    """CUDA-event milliseconds per call, interleaved, after two untimed warm-up rounds."""
    names = list(calls)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 2):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            torch.cuda.synchronize()
            start.record()
            calls[name].call()
            end.record()
            end.synchronize()
            if r >= 2:
                samples[name].append(start.elapsed_time(end))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", action="append", help="strategy glob (repeatable)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--layer", action="append", choices=sorted(LAYERS))
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    strategies = registry.select(args.impl or DEFAULT_IMPLS)
    rows: list[dict[str, object]] = []
    failed = 0
    for layer in args.layer or list(LAYERS):
        problem = LAYERS[layer]
        for pass_ in PASSES:
            t0 = time.perf_counter()
            calls: dict[str, Prepared] = {}
            for strategy in strategies:
                prepared, note = ready(strategy, problem, pass_)
                if prepared is None:
                    print(f"{layer} {pass_} {strategy.name}: {note}")
                    failed += note.startswith("mismatch")
                    continue
                calls[strategy.name] = prepared
            samples = time_round_robin(calls, args.rounds) if calls else {}
            medians = {n: statistics.median(s) for n, s in samples.items()}
            base = medians.get(BASELINE)
            line = [f"{layer} {pass_:8s}"]
            for name, med in medians.items():
                speed = f" {base / med:5.2f}x" if base else ""
                line.append(f"{name.split('/', 1)[1]}={med:.4f}ms{speed}")
                rows.append(
                    dict(layer=layer, problem=str(problem), pass_=pass_, implementation=name,
                         median_ms=med, speed_vs_native=(base / med) if base else "",
                         samples_ms=";".join(repr(s) for s in samples[name]))
                )  # fmt: skip
            print("  ".join(line), f"({time.perf_counter() - t0:.1f}s)", flush=True)
    if args.csv and rows:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""DCGAN generator layers: chosen strategies against torch's own kernels, in one process.

The five ConvTranspose2d layers of the pytorch/examples DCGAN generator at batch 16,
float32, no bias (100→512 k4 s1 p0 on 1×1; then k4 s2 p1 512→256→128→64→3 on 4×4 … 32×32).
For every layer and pass, every contender (torch's ``F.conv_transpose2d`` forward and
``aten.convolution_backward`` backward, called directly, plus the strategies matched by
``--impl``) is prepared once, checked against torch's result, then timed round-robin: one
call each per round, the order rotated every round, so drift in the machine's load falls
on every contender alike. We report median and IQR per contender and the speed ratio
``torch time / strategy time`` per layer and as a geomean over layers (>1: faster than torch).

    python benchmarks/dcgan.py --impl 'numpy/*' --rounds 15 --threads 2 --csv dcgan.csv
"""

from __future__ import annotations

from _blas_env import restart_without_blas_overrides

if __name__ == "__main__":  # before numpy (imported below) loads OpenBLAS
    restart_without_blas_overrides()

import argparse
import csv
import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_info

from deconvbench import registry
from deconvbench.errors import Unavailable, Unsupported
from deconvbench.harness.inputs import Inputs, make_inputs
from deconvbench.harness.threads import limit_threads
from deconvbench.harness.verify import compare_results, prepare
from deconvbench.problem import PASSES, Pass, Problem

BATCH = 16
LAYERS: dict[str, Problem] = {
    name: Problem.create(
        batch=BATCH,
        in_channels=cin,
        out_channels=cout,
        input=(size, size),
        kernel=4,
        stride=stride,
        padding=padding,
        bias=False,
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
"""Named as in the shipped ``dcgan`` suite."""

TORCH = "torch"

Result = tuple[np.ndarray | None, ...]
"""A pass's result tensors in float64 (None for an absent grad_bias)."""


@dataclass
class Contender:
    """One thing to time: a ready call, how to wait for it, and its samples in seconds."""

    name: str
    call: Callable[[], object]
    synchronize: Callable[[], None] = lambda: None
    ok: bool = True
    note: str = ""
    samples: list[float] = field(default_factory=list)

    def time_once(self) -> float:
        start = time.perf_counter()
        self.call()
        self.synchronize()
        return time.perf_counter() - start

    def quartiles_ms(self) -> tuple[float, float, float]:
        q1, med, q3 = np.percentile(np.asarray(self.samples) * 1e3, [25, 50, 75])
        return float(q1), float(med), float(q3)


def torch_contender(problem: Problem, pass_: Pass, inputs: Inputs) -> tuple[Contender, Result]:
    """torch's own kernels, called directly; returns the contender and its result (numpy)."""
    x, w = torch.from_numpy(inputs.x), torch.from_numpy(inputs.weight)
    b = None if inputs.bias is None else torch.from_numpy(inputs.bias)
    gy = torch.from_numpy(inputs.grad_output)
    p = problem
    if pass_ == "forward":

        def call() -> object:
            with torch.no_grad():
                return torch.nn.functional.conv_transpose2d(
                    x, w, b, p.stride, p.padding, p.output_padding, p.groups, p.dilation
                )

    else:
        mask = [True, True, p.bias]
        bias_sizes = [p.out_channels] if p.bias else None

        def call() -> object:
            with torch.no_grad():
                return torch.ops.aten.convolution_backward(
                    gy, x, w, bias_sizes, p.stride, p.padding, p.dilation, True,
                    p.output_padding, p.groups, mask,
                )  # fmt: skip

    result = call()
    tensors = result if isinstance(result, tuple) else (result,)
    arrays = tuple(None if t is None else t.numpy().astype(np.float64) for t in tensors)
    return Contender(TORCH, call), arrays


def strategy_contenders(
    impls: Sequence[str], problem: Problem, pass_: Pass, inputs: Inputs, want: Result
) -> tuple[list[Contender], list[str]]:
    """Prepared strategies, each run once and checked against torch; and why others skip."""
    contenders, skipped = [], []
    for strategy in registry.select(impls):
        try:
            prepared = prepare(strategy, problem, pass_, inputs)
            result = prepared.call()
            prepared.synchronize()
        except (Unsupported, Unavailable) as exc:
            skipped.append(f"{strategy.name}: {exc}")
            continue
        except Exception as exc:  # one broken strategy must not end the whole benchmark
            skipped.append(f"{strategy.name}: ERROR {type(exc).__name__}: {exc}")
            continue
        check = compare_results(problem, pass_, prepared.fetch(result), want)
        contenders.append(
            Contender(strategy.name, prepared.call, prepared.synchronize, check.ok, check.message)
        )
    return contenders, skipped


def measure(contenders: list[Contender], rounds: int) -> None:
    """Round-robin: one call of each per round, the starting contender rotating."""
    gc.collect()
    for c in contenders:  # warm-up beyond the checking call: caches, allocator, threads
        c.time_once()
    for r in range(rounds):
        for i in range(len(contenders)):
            c = contenders[(r + i) % len(contenders)]
            c.samples.append(c.time_once())


@dataclass(frozen=True)
class Row:
    pass_: Pass
    layer: str
    implementation: str
    q1_ms: float
    median_ms: float
    q3_ms: float
    samples: int
    speed_vs_torch: float
    ok: bool


def run_layer(
    name: str, problem: Problem, pass_: Pass, impls: Sequence[str], rounds: int
) -> tuple[list[Row], list[str]]:
    inputs = make_inputs(problem, seed=0)
    baseline, want = torch_contender(problem, pass_, inputs)
    others, skipped = strategy_contenders(impls, problem, pass_, inputs, want)
    contenders = [baseline, *others]
    measure(contenders, rounds)
    torch_median = baseline.quartiles_ms()[1]
    rows = []
    for c in contenders:
        q1, med, q3 = c.quartiles_ms()
        rows.append(Row(pass_, name, c.name, q1, med, q3, len(c.samples), torch_median / med, c.ok))
        if not c.ok:
            skipped.append(f"{c.name}: MISMATCH against torch ({c.note})")
    return rows, skipped


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def print_table(pass_: Pass, rows: list[Row], names: list[str]) -> None:
    print(f"\n{pass_}: median ms [IQR] and speed vs torch (torch time / strategy time)")
    width = 26
    print(f"{'layer':<6}{'problem':<36}" + "".join(f"{n:>{width}}" for n in names))
    for layer, problem in LAYERS.items():
        by_name = {r.implementation: r for r in rows if r.layer == layer}
        if not by_name:
            continue
        cells = []
        for n in names:
            r = by_name.get(n)
            if r is None:
                cells.append(f"{'-':>{width}}")
                continue
            text = f"{r.median_ms:.2f} [{r.q3_ms - r.q1_ms:.2f}]"
            text += "" if n == TORCH else f" {r.speed_vs_torch:.2f}x" + ("" if r.ok else "!")
            cells.append(f"{text:>{width}}")
        shape = (
            f"{problem.in_channels}->{problem.out_channels} {problem.input[0]}x{problem.input[1]}"
        )
        print(f"{layer:<6}{shape:<36}" + "".join(cells))
    means = []
    for n in names:
        ratios = [r.speed_vs_torch for r in rows if r.implementation == n and r.ok]
        means.append(f"{'' if n == TORCH else f'{geomean(ratios):.2f}x':>{width}}")
    print(f"{'geomean':<42}" + "".join(means))


def print_environment(threads: int | None) -> None:
    print(f"numpy {np.__version__}, torch {torch.__version__}, torch threads "
          f"{torch.get_num_threads()}, requested threads {threads or 'default'}")  # fmt: skip
    for lib in threadpool_info():
        print(
            f"  {lib.get('user_api')}: {lib.get('internal_api')} {lib.get('version')} "
            f"threads={lib.get('num_threads')} arch={lib.get('architecture', '-')} "
            f"layer={lib.get('threading_layer', '-')} ({Path(lib.get('filepath', '')).name})"
        )


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["pass", "layer", "implementation", "median_ms", "q1_ms", "q3_ms", "iqr_ms",
             "samples", "speed_vs_torch", "ok"]
        )  # fmt: skip
        for r in rows:
            out.writerow(
                [r.pass_, r.layer, r.implementation, repr(r.median_ms), repr(r.q1_ms),
                 repr(r.q3_ms), repr(r.q3_ms - r.q1_ms), r.samples, repr(r.speed_vs_torch), r.ok]
            )  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", action="append", help="strategy glob (repeatable; numpy/*)")
    parser.add_argument("--rounds", type=int, default=15, help="timed calls per contender")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP and torch threads")
    parser.add_argument("--pass", dest="pass_", choices=[*PASSES, "all"], default="all")
    parser.add_argument("--layer", action="append", choices=list(LAYERS), help="repeatable")
    parser.add_argument("--csv", type=Path, help="write per-layer medians here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    args.impl = args.impl or ["numpy/*"]
    if not registry.select(args.impl):
        parser.error(f"--impl {' '.join(args.impl)} matches no registered strategy")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # torch, the BLAS pools and numba together (numba alone would keep all cores otherwise)
    with limit_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    print_environment(args.threads)
    passes: tuple[Pass, ...] = PASSES if args.pass_ == "all" else (args.pass_,)
    layers = args.layer or list(LAYERS)
    all_rows: list[Row] = []
    for pass_ in passes:
        rows: list[Row] = []
        for name in layers:
            layer_rows, notes = run_layer(name, LAYERS[name], pass_, args.impl, args.rounds)
            rows += layer_rows
            for note in notes:
                print(f"  {pass_} {name}: {note}", file=sys.stderr)
        names = [TORCH, *dict.fromkeys(r.implementation for r in rows if r.implementation != TORCH)]
        print_table(pass_, rows, names)
        all_rows += rows
    if args.csv is not None:
        write_csv(args.csv, all_rows)
        print(f"\nwrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

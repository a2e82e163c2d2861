"""Does a row depend on what ran before it in the process? A, B, A sequences, measured.

Each sequence runs in a fresh process and measures its strategies one after the other, on
one problem, forward, through the harness's own steps (``run.steps.run_task``: prepare,
verify, read memory, settle the thread pools, warm up, calibrate, sample). Every sequence is
repeated in several processes, the repeats interleaved (repeat 1 of every sequence, then
repeat 2...) so the machine's drift reaches them all alike. A strategy's time at a position
is the median, over the repeats, of its measured median.

The verdict pairs measurements inside one process, since the machine drifts between
processes (whole processes ran 1.5-2x slower for a minute here, every position alike):
torch-cpu/native's time at each later position over its time at the first position of the
same process. With torch-cpu/native alone (N,N,N,N) those ratios show the noise; a position
after numpy or numba "moves" when its median ratio lies outside the range of the alone
ratios.

``--controls off`` measures the same sequences without the process controls (the allocator's
thresholds left to glibc, OpenBLAS's workers left spinning), to show what they remove.

``--back-to-back`` shows the mechanism without the harness: medians of 15 calls, one strategy
right after the other (no verification, no warm-up between them), numpy/gemm-col2im then
torch-cpu/native five times, with and without stopping OpenBLAS's workers in between.

    python benchmarks/order.py --repeats 5 --csv results/cpu-epyc-2vcpu/order/order.csv
    python benchmarks/order.py --back-to-back --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

SEQUENCES = {
    "alone": "N,N,N,N",
    "after-numpy": "N,G,N,G,N",
    "after-numba": "N,T,N,T,N",
    "mixed": "G,N,T,N,G,N",
}
NAMES = {"N": "torch-cpu/native", "G": "numpy/gemm-col2im", "T": "numba/tiled"}
PROBLEMS = {
    # dcgan g4, forward: where numpy's turn made torch's kernel 2.3x slower
    "g4": "batch=16,in_channels=128,out_channels=64,input=16x16,kernel=4,stride=2,padding=1",
    # a layer whose outputs and workspaces fault in fresh pages in a cold allocator
    "faulty": "batch=8,in_channels=64,out_channels=32,input=32x32,kernel=3,stride=2,padding=1",
}


def child(problem_spec: str, sequence: str, controls: bool, threads: int) -> None:
    """One process: the sequence's measurements, printed as JSON lines."""
    from deconvbench import registry
    from deconvbench.cases.case_spec import parse_case
    from deconvbench.harness import process
    from deconvbench.harness.threads import limit_threads
    from deconvbench.run import steps
    from deconvbench.run.context import RunContext
    from deconvbench.run.types import NullSink, RunFacts, RunOptions, Task

    if controls:
        process.set_memory_state("warm")
    else:
        steps.settle_thread_pools = lambda: None  # type: ignore[attr-defined]
    case = parse_case(problem_spec)
    options = RunOptions(passes=("forward",), threads=threads, budget_s=0.3, warmup_s=0.05)
    with limit_threads(threads) as applied:
        ctx = RunContext(options, RunFacts.create(), applied, None)
        for position, key in enumerate(sequence.split(",")):
            task = Task(position, case, registry.get(NAMES[key]), "forward")
            outcome = steps.run_task(task, ctx, NullSink())
            (m,) = outcome.measurements
            per_call = None if m.faults is None else m.faults.per_call
            print(json.dumps({
                "position": position, "strategy": NAMES[key], "status": outcome.status,
                "median_ms": m.summary.median, "samples": m.summary.n,
                "minor_faults_per_call": None if per_call is None else per_call[0],
            }))  # fmt: skip


Record = dict[str, object]


def back_to_back(settle: bool, threads: int) -> list[tuple[str, float]]:
    """numpy/gemm-col2im then torch-cpu/native, five times, in this process: each the median
    of 15 calls (ms), timed right after the other."""
    import time

    from deconvbench import registry
    from deconvbench.cases.case_spec import parse_case
    from deconvbench.harness.inputs import make_inputs
    from deconvbench.harness.process import settle_thread_pools
    from deconvbench.harness.threads import limit_threads
    from deconvbench.harness.verify import prepare

    problem = parse_case(PROBLEMS["g4"]).problem
    out = []
    with limit_threads(threads):
        calls = {k: prepare(registry.get(NAMES[k]), problem, "forward", make_inputs(problem, 0))
                 for k in "GN"}  # fmt: skip
        for _ in range(5):
            for key in "GN":
                if key == "N" and settle:
                    settle_thread_pools()
                times = []
                for _ in range(15):
                    start = time.perf_counter()
                    calls[key].call()
                    times.append(time.perf_counter() - start)
                out.append((NAMES[key], statistics.median(times) * 1e3))
    return out


def run_sequence(problem: str, sequence: str, controls: bool, threads: int) -> list[Record]:
    command = [sys.executable, __file__, "--child", PROBLEMS[problem], sequence,
               "--controls", "on" if controls else "off", "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--controls", choices=["on", "off", "both"], default="both")
    parser.add_argument("--problem", choices=list(PROBLEMS), action="append")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("PROBLEM", "SEQUENCE"))
    parser.add_argument("--back-to-back", action="store_true")
    parser.add_argument("--child-back-to-back", type=int, choices=[0, 1])
    args = parser.parse_args()
    if args.child_back_to_back is not None:
        times = back_to_back(bool(args.child_back_to_back), args.threads)
        print(" ".join(f"{'N' if n.startswith('torch') else 'G'}:{t:.2f}" for n, t in times))
        return
    if args.child:
        child(args.child[0], args.child[1], args.controls == "on", args.threads)
        return
    if args.back_to_back:
        for settle in (False, True):
            for _ in range(args.repeats):
                done = subprocess.run(
                    [sys.executable, __file__, "--child-back-to-back", str(int(settle)),
                     "--threads", str(args.threads)], capture_output=True, text=True, check=True,
                )  # fmt: skip
                print(f"settle {'on ' if settle else 'off'}: {done.stdout.strip()}")
        return
    records = []
    for repeat in range(args.repeats):
        for controls in {"on": [True], "off": [False], "both": [False, True]}[args.controls]:
            for problem in args.problem or list(PROBLEMS):
                for name, sequence in SEQUENCES.items():
                    for r in run_sequence(problem, sequence, controls, args.threads):
                        records.append({"controls": "on" if controls else "off",
                                        "problem": problem, "sequence": name,
                                        "repeat": repeat, **r})  # fmt: skip
                    print(f"{repeat} {'on' if controls else 'off'} {problem} {name}",
                          file=sys.stderr)  # fmt: skip
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    print(table(records))


REFERENCE = "torch-cpu/native"


def table(records: list[Record]) -> str:
    """Every position's median over the repeats; then, per (controls, problem), the paired
    ratios of the reference strategy (later position / first position of its process) and
    whether any position moved beyond the range of the alone ratios."""
    medians: dict[tuple[str, ...], list[float]] = {}
    processes: dict[tuple[str, ...], list[Record]] = {}
    for r in records:
        key = tuple(str(r[k]) for k in ("controls", "problem", "strategy", "sequence", "position"))
        medians.setdefault(key, []).append(float(str(r["median_ms"])))
        run = tuple(str(r[k]) for k in ("controls", "problem", "sequence", "repeat"))
        processes.setdefault(run, []).append(r)
    lines = ["controls problem  strategy            sequence     pos  median ms"]
    for (controls, problem, strategy, sequence, position), v in sorted(medians.items()):
        lines.append(f"{controls:8} {problem:8} {strategy:19} {sequence:12} {position:>3} "
                     f"{statistics.median(v):10.3f}")  # fmt: skip
    ratios: dict[tuple[str, ...], list[float]] = {}
    for (controls, problem, sequence, _), rs in processes.items():
        mine = [r for r in rs if r["strategy"] == REFERENCE]
        first = float(str(mine[0]["median_ms"]))
        for r in mine[1:]:
            key = (controls, problem, sequence, str(r["position"]))
            ratios.setdefault(key, []).append(float(str(r["median_ms"])) / first)
    lines += ["", f"{REFERENCE}: time at a later position / at the first, in one process",
              "controls problem  sequence     pos  median   range over repeats"]  # fmt: skip
    for key, v in sorted(ratios.items()):
        lines.append(f"{key[0]:8} {key[1]:8} {key[2]:12} {key[3]:>3}  {statistics.median(v):.3f}"
                     f"   {min(v):.2f}-{max(v):.2f}")  # fmt: skip
    lines.append("")
    for controls, problem in sorted({k[:2] for k in ratios}):
        alone = sorted(x for k, v in ratios.items() if k[:3] == (controls, problem, "alone")
                       for x in v)  # fmt: skip
        if len(alone) < 2:
            continue
        low, high = alone[0], alone[-1]
        others = {k: statistics.median(v) for k, v in ratios.items()
                  if k[:2] == (controls, problem) and k[2] != "alone"}  # fmt: skip
        moved = [f"{k[2]}@{k[3]} {m:.3f}" for k, m in others.items() if not low <= m <= high]
        lines.append(f"controls {controls:3} {problem:7}: alone ratios {low:.3f}-{high:.3f}; "
                     f"{len(moved)} of {len(others)} positions outside"
                     + (f": {', '.join(moved)}" if moved else ""))  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Fidelity: deconvbench's median against torch.utils.benchmark's, in one process.

For a few cases and strategies, the same prepared call is timed by deconvbench's harness
(`deconvbench.harness.measure`) and by `torch.utils.benchmark.Timer.blocked_autorange`, under
the same thread count and the same allocator state (`--memory-state`, set once for the
process), alternating A/B/A/B so that drifts in machine load hit both, and with the thread
pools settled before each. It prints each median, the page faults per call each saw, and the
ratio deconvbench / torch.utils.benchmark; the target is within ±10%.

    python benchmarks/fidelity.py --threads 1 --repeats 3 --memory-state cold
"""

from __future__ import annotations

import argparse
import resource
import statistics

import torch.utils.benchmark as tub

from deconvbench import registry
from deconvbench.harness.clocks import PerfCounterClock
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.measure import Settings, measure
from deconvbench.harness.process import MEMORY_STATES, set_memory_state, settle_thread_pools
from deconvbench.harness.threads import limit_threads
from deconvbench.harness.verify import prepare
from deconvbench.problem import Pass, Problem

CASES: dict[str, Problem] = {
    # the layer torch.utils.benchmark and deconvbench once disagreed on by 3.7x (page faults)
    "faulty": Problem.create(batch=8, in_channels=64, out_channels=32, input=(32, 32),
                             kernel=3, stride=2, padding=1),
    "seed-k3-b32": Problem.create(batch=32, in_channels=32, out_channels=32, input=(26, 26),
                                  kernel=3, stride=2, padding=1, output_padding=1, bias=True),
    "dcgan-g2": Problem.create(batch=16, in_channels=512, out_channels=256, input=(4, 4),
                               kernel=4, stride=2, padding=1),
    "dcgan-g4": Problem.create(batch=16, in_channels=128, out_channels=64, input=(16, 16),
                               kernel=4, stride=2, padding=1),
    "small": Problem.create(batch=2, in_channels=8, out_channels=8, input=(8, 8), kernel=4,
                            stride=2, padding=1, bias=True),
}  # fmt: skip
STRATEGIES = ("torch-cpu/native", "numpy/gemm-col2im")


def ours(call: object, budget: float) -> tuple[float, float]:
    """deconvbench's median (ms) and minor page faults per call."""
    settle_thread_pools()
    m = measure(call, PerfCounterClock(), Settings(budget_s=budget))  # type: ignore[arg-type]
    per_call = None if m.faults is None else m.faults.per_call
    return m.median_ms, 0.0 if per_call is None else per_call[0]


def theirs(call: object, threads: int, budget: float) -> tuple[float, float]:
    """torch.utils.benchmark's median (ms) and minor page faults per call."""
    settle_thread_pools()
    timer = tub.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    measured = timer.blocked_autorange(min_run_time=budget)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    calls = len(measured.raw_times) * measured.number_per_run  # calibration calls fault too
    return measured.median * 1e3, faults / max(calls, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--memory-state", choices=MEMORY_STATES, default="warm")
    args = parser.parse_args()
    memory = set_memory_state(args.memory_state)
    print(f"threads {args.threads}; memory state {args.memory_state} ({memory.allocator}, "
          f"{memory.applied}); faults: minor page faults per call")  # fmt: skip
    print(f"{'case':12} {'strategy':18} {'pass':8} {'deconvbench':>11} {'faults':>6} "
          f"{'torch.utils':>11} {'faults':>6} ratio")  # fmt: skip
    ratios: list[float] = []
    with limit_threads(args.threads):
        for case, problem in CASES.items():
            inputs = make_inputs(problem, 0)
            for name in STRATEGIES:
                strategy = registry.get(name)
                for pass_ in ("forward", "backward"):
                    p: Pass = pass_  # type: ignore[assignment]
                    call = prepare(strategy, problem, p, inputs).call
                    a, b = [], []
                    for _ in range(args.repeats):  # alternate, so load drifts hit both
                        a.append(ours(call, args.budget))
                        b.append(theirs(call, args.threads, args.budget))
                    ma, mb = (statistics.median(t for t, _ in x) for x in (a, b))
                    fa, fb = (statistics.median(f for _, f in x) for x in (a, b))
                    ratios.append(ma / mb)
                    print(f"{case:12} {name:18} {pass_:8} {ma:11.4f} {fa:6.0f} {mb:11.4f} "
                          f"{fb:6.0f} {ma / mb:.3f}")  # fmt: skip
    within = sum(0.9 <= r <= 1.1 for r in ratios)
    print(
        f"{within}/{len(ratios)} ratios within ±10%; median ratio {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()

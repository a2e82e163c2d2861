"""Fidelity: deconvbench's median against torch.utils.benchmark's, in one process.

For a few cases and strategies, the same prepared call is timed by deconvbench's harness
(`deconvbench.harness.measure`) and by `torch.utils.benchmark.Timer.blocked_autorange`, under
the same thread count, alternating A/B/A/B so that drifts in machine load hit both. It prints
each median and the ratio deconvbench / torch.utils.benchmark; the target is within ±10%.

    python benchmarks/fidelity.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics

import torch.utils.benchmark as tub

from deconvbench import registry
from deconvbench.harness.clocks import PerfCounterClock
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.measure import Settings, measure
from deconvbench.harness.threads import limit_threads
from deconvbench.harness.verify import prepare
from deconvbench.problem import Pass, Problem

CASES: dict[str, Problem] = {
    "dcgan-g2": Problem.create(batch=16, in_channels=512, out_channels=256, input=(4, 4),
                               kernel=4, stride=2, padding=1),
    "dcgan-g4": Problem.create(batch=16, in_channels=128, out_channels=64, input=(16, 16),
                               kernel=4, stride=2, padding=1),
    "small": Problem.create(batch=2, in_channels=8, out_channels=8, input=(8, 8), kernel=4,
                            stride=2, padding=1, bias=True),
}  # fmt: skip
STRATEGIES = ("torch-cpu/native", "numpy/gemm-col2im")


def ours(call: object, budget: float) -> float:
    m = measure(call, PerfCounterClock(), Settings(budget_s=budget))  # type: ignore[arg-type]
    return m.median_ms


def theirs(call: object, threads: int, budget: float) -> float:
    timer = tub.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=budget).median * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    print(f"{'case':10} {'strategy':20} {'pass':8} {'deconvbench':>12} {'torch.utils':>12} ratio")
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
                    ma, mb = statistics.median(a), statistics.median(b)
                    ratios.append(ma / mb)
                    print(f"{case:10} {name:20} {pass_:8} {ma:12.4f} {mb:12.4f} {ma / mb:.3f}")
    within = sum(0.9 <= r <= 1.1 for r in ratios)
    print(
        f"{within}/{len(ratios)} ratios within ±10%; median ratio {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()

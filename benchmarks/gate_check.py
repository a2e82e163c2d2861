"""How the CI gate fares on real runs: false alarms between two runs, and slowdowns caught.

Takes two results files of the same code (say two `deconvbench run --suite smoke` back to
back), compares them as they are (every flag is a false alarm), then with every sample of the
second multiplied by each factor (a uniform slowdown: every row should be flagged), and prints
the verdict counts of each comparison.

    python benchmarks/gate_check.py run1.csv run2.csv --factor 1.1 --factor 1.3
"""

from __future__ import annotations

import argparse
from collections import Counter

import pandas as pd

from deconvbench.analysis.compare import VERDICTS, compare_frames
from deconvbench.cli.options import parse_threshold
from deconvbench.results.fields import parse_samples
from deconvbench.results.reader import read_results

TIMES = ("median_ms", "mean_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "ci_low_ms", "ci_high_ms")


def slowed(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The same results with every time multiplied by ``factor``."""
    out = frame.copy()
    out["samples_ms"] = [
        ";".join(repr(v * factor) for v in parse_samples(text)) for text in frame["samples_ms"]
    ]
    for column in TIMES:
        out[column] = frame[column] * factor
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline")
    parser.add_argument("candidate")
    parser.add_argument("--factor", type=float, action="append", default=[])
    parser.add_argument("--threshold", default="5%")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--ignore-rounds", action="store_true", help="judge on the samples alone (as --rounds 1)"
    )
    args = parser.parse_args()
    base, cand = read_results(args.baseline), read_results(args.candidate)
    if args.ignore_rounds:
        for frame in (base, cand):
            frame["round_samples"] = ""
    threshold = parse_threshold(args.threshold)
    print(f"{'candidate':<12}" + "".join(f"{v:>11}" for v in VERDICTS))
    for factor in [1.0, *args.factor]:
        result = compare_frames(base, slowed(cand, factor), threshold, args.alpha)
        counts = Counter(r.verdict for r in result.rows)
        print(f"{f'x {factor:g}':<12}" + "".join(f"{counts[v]:>11}" for v in VERDICTS))


if __name__ == "__main__":
    main()

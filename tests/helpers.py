"""Fixtures that several test modules share: results rows, results files, a fake strategy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deconvbench import reference
from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.cases.case import Case
from deconvbench.harness.clocks import FakeClock
from deconvbench.harness.inputs import storage_dtype
from deconvbench.problem import Problem
from deconvbench.results.reader import read_results
from deconvbench.results.schema import COLUMNS
from deconvbench.results.writer import ResultWriter
from deconvbench.run.types import RunFacts

Row = dict[str, object]
"""A results row as a plain dict (column → value), as a file written by hand would give."""

# --- results rows and files --------------------------------------------------------------------

ROW_PROBLEM = dict(
    batch=2, in_channels=8, out_channels=8, groups=1, input=(8, 8), kernel=(4, 4),
    stride=(2, 2), padding=(1, 1), output_padding=(0, 0), dilation=(1, 1), bias=True,
    output=(16, 16),
)  # fmt: skip


def row(
    impl: str = "numpy/direct",
    case: str = "2d-k4-s2",
    pass_: str = "forward",
    samples: list[float] | None = None,
    status: str = "ok",
    **values: object,
) -> Row:
    """One complete results row; timing columns derived from ``samples`` as the runner would."""
    backend, _, algorithm = impl.partition("/")
    base: Row = dict.fromkeys(COLUMNS)
    base.update(ROW_PROBLEM)
    base.update(
        schema_version=1, run_id="0123456789ab", suite="smoke", case=case, implementation=impl,
        backend=backend, algorithm=algorithm, device="cpu", dtype="float32", status=status,
        message="" if status == "ok" else f"{status} happened", threads=1, flops=1000,
        **{"pass": pass_},
    )  # fmt: skip
    if samples:
        base.update(
            samples=len(samples), samples_ms=list(samples), median_ms=float(np.median(samples)),
            mean_ms=float(np.mean(samples)), min_ms=min(samples), max_ms=max(samples),
        )  # fmt: skip
    base.update(values)
    return base


def frame(tmp_path: Path, rows: list[Row], name: str = "r.csv") -> pd.DataFrame:
    """Rows through a real results file and its validating reader."""
    path = tmp_path / name
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    return read_results(path)


def noise(
    rng: np.random.Generator, n: int = 30, sigma: float = 0.02, scale: float = 1.0
) -> list[float]:
    return list(scale * rng.lognormal(0.0, sigma, n))


def drifting_rounds(
    rng: np.random.Generator, rounds: int = 3, n: int = 20, drift: float = 0.01,
    burst: float = 0.12, scale: float = 1.0,
) -> tuple[list[float], str]:  # fmt: skip
    """A row measured in ``rounds`` rounds, as a shared machine does between minutes.

    Every round has its own speed: a small drift (lognormal, ``drift``), and with
    probability ``burst`` a neighbour's burst of work that slows the whole round 1.2-2x (the
    pattern measured on the development VM: 11-15% of rounds in two smoke runs).
    Every sample of a round shares its factor, so the samples alone look far more certain
    than the row really is.
    """
    samples: list[float] = []
    for _ in range(rounds):
        factor = rng.lognormal(0.0, drift) * (rng.uniform(1.2, 2.0) if rng.random() < burst else 1)
        samples += list(scale * factor * rng.lognormal(0.0, 0.02, n))
    return samples, ";".join([str(n)] * rounds)


def drifting_pairs(seed: int, rows: int, scale: float = 1.0) -> tuple[list[Row], list[Row]]:
    rng = np.random.default_rng(seed)
    base, cand = [], []
    for i in range(rows):
        (b, b_sizes), (c, c_sizes) = drifting_rounds(rng), drifting_rounds(rng, scale=scale)
        base.append(row(f"numpy/s{i}", samples=b, rounds=3, round_samples=b_sizes))
        cand.append(row(f"numpy/s{i}", samples=c, rounds=3, round_samples=c_sizes))
    return base, cand


# --- a fake strategy and a run's facts ---------------------------------------------------------

PROBLEM = Problem.create(
    batch=1, in_channels=2, out_channels=3, input=(4, 4), kernel=3, stride=2, padding=1
)
CASE = Case("unit", "tiny", PROBLEM)
OTHER = Case(
    "unit", "other", Problem.create(batch=2, in_channels=1, out_channels=1, input=5, kernel=2)
)
PEAK = 10.0  # GFLOP/s


class Fake(Strategy):
    """Computes the right answer in preparation; each call advances the fake clock."""

    backend = "fake"
    algorithm = "exact"

    def __init__(self, clock: FakeClock, seconds: float = 2e-3) -> None:
        self.clock = clock
        self.seconds = seconds
        self.calls = 0

    def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        return result

    def _prepared(self, result: tuple[Array | None, ...]) -> Prepared:
        def call() -> object:
            self.calls += 1
            self.clock.advance(self.seconds)
            return self.answer(result)

        return Prepared(call, numpy_fetch)

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        ref = (reference.forward(problem, x, weight, bias),)  # type: ignore[arg-type]
        return self._prepared(_stored(problem, ref))

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        ref = reference.backward(problem, grad_output, x, weight, problem.bias)  # type: ignore[arg-type]
        return self._prepared(_stored(problem, ref))


def _stored(problem: Problem, results: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
    """Results in the problem's storage dtype, as the result contract asks."""
    dtype = storage_dtype(problem.dtype)
    return tuple(None if r is None else r.astype(dtype) for r in results)


FACTS = RunFacts(
    "run1", "testhost", "9.9", {("cpu", "float32"): PEAK}, now=lambda: "2024-01-01T00:00:00+00:00"
)

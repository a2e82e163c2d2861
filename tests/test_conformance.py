"""The conformance suite: every registered, available strategy against the reference.

Written once, parametrised over the registry, so a backend added later (a third-party one
included) is tested here with no change to this file. The problems (the random space and the
edge cases) and the check are those of ``deconvbench/conformance/``, which the command
``deconvbench conformance`` runs for installed strategies; here hypothesis draws the random
problems, to shrink a failure.

A strategy may decline a problem (``unsupported_reason``), and a declined problem is not
checked; so each strategy must also take the plain 2-D layer, and at least
:data:`MIN_SUPPORTED_SHARE` of random problems within the dimensions and dtypes it declares.
A strategy that declines more should declare its limits as capabilities instead, where
``deconvbench list`` shows them.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings

from deconvbench import registry
from deconvbench.backends import Strategy
from deconvbench.conformance.engine import check, declared_passes
from deconvbench.conformance.space import with_dtype
from deconvbench.problem import PASSES, Pass, Problem

from problems import EDGE_CASES, PLAIN_2D, REDUCED_PRECISION, problems, sample_problems

AVAILABLE = [s for s in registry.strategies() if s.unavailable_reason() is None]

# Strategies whose preparation is expensive per new shape (JIT compilation) get fewer
# random examples; every strategy still meets every edge case.
EXAMPLES = {"torch-cpu/compiled": 4, "torch-cuda/compiled": 4}
# compiled wraps native, which meets every edge case; it meets a subset that still covers every
# dimension count, groups, dilation and float64, since each new shape costs a compilation.
COMPILED_EDGE = {"stride-divides-kernel", "asymmetric", "3d", "1d", "groups-2",
                 "output-padding-dilation", "float64"}  # fmt: skip
EDGE_SUBSET = {"torch-cpu/compiled": COMPILED_EDGE, "torch-cuda/compiled": COMPILED_EDGE}


def _check(strategy: Strategy, problem: Problem, pass_: Pass) -> None:
    """The command's check (a declined problem is not checked), on inputs seeded by the
    problem; an exception the strategy raises propagates with its traceback."""
    seed = zlib.crc32(problem.spec().encode())
    outcome = check(strategy, problem, pass_, seed=seed, raises=True)
    assert outcome.ok, f"{strategy.name} {pass_} {problem}: {outcome.message}"


def test_registry_has_numpy_strategies() -> None:
    names = {s.name for s in AVAILABLE}
    assert {"numpy/direct"} <= names


MIN_SUPPORTED_SHARE = 0.9
"""Of random problems within a strategy's declared dimensions and dtypes, the share it must
take, each pass it declares."""


@pytest.mark.parametrize("strategy", AVAILABLE, ids=lambda s: s.name)
def test_supports_a_plain_2d_problem(strategy: Strategy) -> None:
    """A strategy that declares itself available must take the commonest layer shape."""
    problem = EDGE_CASES[PLAIN_2D]
    for pass_ in declared_passes(strategy):
        assert strategy.unsupported_reason(problem, pass_) is None, pass_


@pytest.mark.parametrize("strategy", AVAILABLE, ids=lambda s: s.name)
def test_takes_most_problems_it_declares(strategy: Strategy) -> None:
    dtypes = tuple(d for d in ("float32", "float64") if d in strategy.capabilities.dtypes)
    sample = sample_problems(200, dims=tuple(sorted(strategy.capabilities.dims)), dtypes=dtypes)
    for pass_ in declared_passes(strategy):
        declined = [p for p in sample if strategy.unsupported_reason(p, pass_) is not None]
        share = 1 - len(declined) / len(sample)
        first = f"; first declined: {declined[0]}" if declined else ""
        assert share >= MIN_SUPPORTED_SHARE, f"{pass_}: takes {share:.0%} of them{first}"


@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("strategy", AVAILABLE, ids=lambda s: s.name)
def test_random_problems(strategy: Strategy, pass_: Pass) -> None:
    dtypes = tuple(d for d in ("float32", "float64") if d in strategy.capabilities.dtypes)
    dims = tuple(sorted(strategy.capabilities.dims))

    @settings(max_examples=EXAMPLES.get(strategy.name, settings.default.max_examples))
    @given(problem=problems(dtypes=dtypes, dims=dims))
    def run(problem: Problem) -> None:
        _check(strategy, problem, pass_)

    run()


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("strategy", AVAILABLE, ids=lambda s: s.name)
def test_edge_cases(strategy: Strategy, pass_: Pass, case: str) -> None:
    if case not in EDGE_SUBSET.get(strategy.name, EDGE_CASES):
        pytest.skip(f"{strategy.name}: compiles per shape; meets a subset of the edge cases")
    _check(strategy, EDGE_CASES[case], pass_)


@pytest.mark.parametrize("strategy", AVAILABLE, ids=lambda s: s.name)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision(strategy: Strategy, dtype: str) -> None:
    problem = with_dtype(REDUCED_PRECISION, dtype)
    if dtype not in strategy.capabilities.dtypes:
        pytest.skip(f"{strategy.name} does not declare {dtype}")
    for pass_ in PASSES:
        _check(strategy, problem, pass_)


def test_hypothesis_generates_every_dimension() -> None:
    seen: set[int] = set()

    @settings(max_examples=60)
    @given(problems())
    def collect(problem: Problem) -> None:
        seen.add(problem.ndim)

    collect()
    assert seen == {1, 2, 3}

"""verify(): a correct strategy passes, a wrong one is caught with a useful message."""

from __future__ import annotations

import numpy as np

from deconvbench import registry
from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.harness.verify import verify
from deconvbench.problem import Problem

from problems import EDGE_CASES


class OffByOneTap(Strategy):
    """numpy/direct with a tiny error in one output element: verification must catch it."""

    backend, algorithm = "test", "wrong"

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        inner = registry.get("numpy/direct").prepare_forward(problem, x, weight, bias)

        def call() -> Array:
            (y,) = inner.fetch(inner.call())
            assert y is not None
            y = y.copy()
            y.flat[0] += 1e-3 * np.abs(y).max()
            return y

        return Prepared(call, numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return Prepared(lambda: (np.zeros_like(x), np.zeros_like(weight), None), numpy_fetch)


def test_correct_strategy_verifies() -> None:
    result = verify(registry.get("numpy/direct"), EDGE_CASES["asymmetric"], "backward")
    assert result.ok and result.message == ""
    assert len(result.checks) == 3
    assert 0 <= result.max_rel_err < 1e-5


def test_wrong_results_are_caught() -> None:
    problem = EDGE_CASES["groups-2"]  # has a bias
    fwd = verify(OffByOneTap(), problem, "forward")
    assert not fwd.ok and "output: relative error" in fwd.message
    assert fwd.max_rel_err > 1e-4
    bwd = verify(OffByOneTap(), problem, "backward")
    assert not bwd.ok
    assert "grad_input" in bwd.message and "grad_bias: missing" in bwd.message

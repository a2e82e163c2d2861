"""Check one strategy's forward or backward against the float64 reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import reference
from ..backends.strategy import Prepared, Strategy
from ..problem import Pass, Problem
from ..reference import Check
from .inputs import Inputs, make_inputs


@dataclass(frozen=True)
class Verification:
    """The checks of every tensor a pass produces (y; or grad_input, grad_weight, grad_bias)."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def max_abs_err(self) -> float:
        return max((c.max_abs_err for c in self.checks), default=0.0)

    @property
    def max_rel_err(self) -> float:
        return max((c.max_rel_err for c in self.checks), default=0.0)

    @property
    def message(self) -> str:
        return "; ".join(c.message for c in self.checks if not c.ok)


def prepare(strategy: Strategy, problem: Problem, pass_: Pass, inputs: Inputs) -> Prepared:
    """The strategy's prepared call for this pass (raises Unsupported/Unavailable)."""
    strategy.check(problem, pass_)
    if pass_ == "forward":
        return strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    return strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)


def expected(problem: Problem, pass_: Pass, inputs: Inputs) -> tuple[np.ndarray | None, ...]:
    """The reference result of a pass, in float64."""
    if pass_ == "forward":
        return (reference.forward(problem, inputs.x, inputs.weight, inputs.bias),)
    return reference.backward(problem, inputs.grad_output, inputs.x, inputs.weight, problem.bias)


def _amax(a: np.ndarray | None) -> float:
    return float(np.abs(a).max(initial=0.0)) if a is not None else 0.0


def floors(problem: Problem, pass_: Pass, inputs: Inputs) -> tuple[float, ...]:
    """The partial-sum size of every result tensor of a pass (``reference.magnitude_floor``)."""
    x, w, gy = _amax(inputs.x), _amax(inputs.weight), _amax(inputs.grad_output)
    floor = reference.magnitude_floor
    if pass_ == "forward":
        return (floor(x, w, problem.reduction_forward),)
    return (
        floor(gy, w, problem.reduction_grad_input),
        floor(x, gy, problem.reduction_grad_weight),
        floor(gy, 1.0, problem.reduction_grad_bias),
    )


def compare_results(
    problem: Problem,
    pass_: Pass,
    got: tuple[object, ...],
    want: tuple[np.ndarray | None, ...],
    inputs: Inputs | None = None,
) -> Verification:
    """Compare a pass's results with the reference, each under its own reduction length.

    With ``inputs``, errors are measured against the partial-sum size too (see
    ``reference.compare``), so a correct result whose sum cancels is not called wrong.
    """
    names: tuple[str, ...] = ("output",)
    lengths: tuple[int, ...] = (problem.reduction_forward,)
    if pass_ == "backward":
        names = ("grad_input", "grad_weight", "grad_bias")
        lengths = (
            problem.reduction_grad_input,
            problem.reduction_grad_weight,
            problem.reduction_grad_bias,
        )
    if len(got) != len(names):
        bad = reference.Check(
            "result",
            np.inf,
            np.inf,
            0.0,
            False,
            f"expected {len(names)} result tensors, got {len(got)}",
        )
        return Verification((bad,))
    magnitudes = floors(problem, pass_, inputs) if inputs is not None else (0.0,) * len(names)
    return Verification(
        tuple(
            reference.compare(name, g, w, problem.dtype, length, floor)
            for name, g, w, length, floor in zip(names, got, want, lengths, magnitudes, strict=True)
        )
    )


def verify(
    strategy: Strategy,
    problem: Problem,
    pass_: Pass,
    seed: int = 0,
    inputs: Inputs | None = None,
) -> Verification:
    """Run the strategy once on deterministic inputs and check it against the reference."""
    inputs = make_inputs(problem, seed) if inputs is None else inputs
    prepared = prepare(strategy, problem, pass_, inputs)
    result = prepared.call()
    prepared.synchronize()
    got = prepared.fetch(result)
    return compare_results(problem, pass_, got, expected(problem, pass_, inputs), inputs)

"""Check one strategy's forward or backward against the float64 reference.

Besides the values (``reference.compare``), the result contract: ``fetch`` returns a tuple
of one entry per result tensor, each in the problem's storage dtype
(``inputs.storage_dtype``: bfloat16 as float32), and the strategy leaves the arrays it was
handed as they were (:func:`check_inputs_unchanged`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import reference
from ..backends.strategy import Prepared, Strategy
from ..problem import Pass, Problem
from ..reference import Check
from .inputs import Inputs, make_inputs, storage_dtype


class InputsModified(RuntimeError):
    """A strategy wrote into the arrays it was handed, which are its inputs, read-only by
    contract: its result, or its timing, would be of other inputs than the reference's."""


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
    Each result must also be in the problem's storage dtype, and a failing check names the
    element with the largest error.
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
    if not isinstance(got, tuple):
        shape = f" of shape {got.shape}" if isinstance(got, np.ndarray) else ""
        return _broken(
            f"fetch returned a {type(got).__name__}{shape}, not a tuple of"
            f" {len(names)} ({', '.join(names)})"
        )
    if len(got) != len(names):
        return _broken(f"expected {len(names)} result tensors, got {len(got)}")
    magnitudes = floors(problem, pass_, inputs) if inputs is not None else (0.0,) * len(names)
    return Verification(
        tuple(
            _check(problem, name, g, w, length, floor)
            for name, g, w, length, floor in zip(names, got, want, lengths, magnitudes, strict=True)
        )
    )


def _broken(message: str) -> Verification:
    return Verification((reference.Check("result", np.inf, np.inf, 0.0, False, message),))


def _check(
    problem: Problem, name: str, got: object, want: np.ndarray | None, length: int, floor: float
) -> Check:
    """``reference.compare``, then the dtype rule and the worst element's place."""
    check = reference.compare(name, got, want, problem.dtype, length, floor)
    if got is None or want is None:
        return check
    arr = np.asarray(got)
    problems = [check.message] if check.message else []
    if not check.ok and arr.shape == want.shape:
        problems[-1] += _where(name, arr, want)
    expected_dtype = storage_dtype(problem.dtype)
    if arr.dtype != expected_dtype:
        carried = f", {problem.dtype}'s storage dtype" if problem.dtype == "bfloat16" else ""
        problems.insert(
            0,
            f"{name}: dtype {arr.dtype}, expected {expected_dtype} (the problem's dtype{carried})",
        )
    return check._replace(ok=check.ok and not problems, message="; ".join(problems))


def _where(name: str, got: np.ndarray, want: np.ndarray) -> str:
    """Where the largest error is: `` (max abs err 0.5 at y[0, 3, 7, 2]: got 1, expected
    0.5)``; or the first non-finite element."""
    label = "y" if name == "output" else name
    values = got.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return f" (first at {label}[{', '.join(map(str, index))}]: {values[index]})"
    diff = np.abs(values - want)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    err = float(diff[index])
    if not math.isfinite(err):
        return ""
    return (
        f" (max abs err {err:.3g} at {label}[{', '.join(map(str, index))}]:"
        f" got {values[index]:.6g}, expected {want[index]:.6g})"
    )


def handed(pass_: Pass, inputs: Inputs) -> dict[str, np.ndarray]:
    """The arrays a pass hands the strategy, by name."""
    if pass_ == "forward":
        arrays = {"x": inputs.x, "weight": inputs.weight, "bias": inputs.bias}
    else:
        arrays = {"grad_output": inputs.grad_output, "x": inputs.x, "weight": inputs.weight}
    return {name: a for name, a in arrays.items() if a is not None}


def copy_inputs(inputs: Inputs) -> Inputs:
    return Inputs(
        inputs.x.copy(),
        inputs.weight.copy(),
        None if inputs.bias is None else inputs.bias.copy(),
        inputs.grad_output.copy(),
    )


_CHUNK = 1 << 20
"""Elements compared at a time: the comparison's temporaries stay small beside the inputs."""


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    return all(
        np.array_equal(flat_a[i : i + _CHUNK], flat_b[i : i + _CHUNK])
        for i in range(0, flat_a.size, _CHUNK)
    )


def check_inputs_unchanged(
    strategy: Strategy, pass_: Pass, given: Inputs, original: Inputs, when: str
) -> None:
    """Raise :class:`InputsModified` when the arrays handed to ``strategy`` differ from
    ``original`` (their saved copy): values, shape or dtype. ``when`` says at which step."""
    was = handed(pass_, original)
    changed = [name for name, array in handed(pass_, given).items() if not _same(array, was[name])]
    if changed:
        raise InputsModified(
            f"{strategy.name} wrote into its inputs ({', '.join(changed)} changed {when});"
            " a strategy must not modify the arrays it is handed: copy them in prepare_*"
        )


def verify(
    strategy: Strategy,
    problem: Problem,
    pass_: Pass,
    seed: int = 0,
    inputs: Inputs | None = None,
) -> Verification:
    """Run the strategy once on deterministic inputs and check it against the reference.

    Raises :class:`InputsModified` when the strategy wrote into the arrays it was handed
    (the reference is computed first, from the untouched inputs).
    """
    inputs = make_inputs(problem, seed) if inputs is None else inputs
    want = expected(problem, pass_, inputs)
    original = copy_inputs(inputs)
    prepared = prepare(strategy, problem, pass_, inputs)
    result = prepared.call()
    prepared.synchronize()
    got = prepared.fetch(result)
    check_inputs_unchanged(strategy, pass_, inputs, original, "during one call")
    return compare_results(problem, pass_, got, want, original)

"""Checks of the conformance suite: one (strategy, problem, pass), a failure shrunk to a
minimal problem that still fails, and a strategy's whole suite with its summary.

A problem the strategy declines (``unsupported_reason``, or ``Unsupported``/``Unavailable``
raised while preparing) is not checked and is counted as declined. Any other exception is
a failure, reported as ``Type: message`` like an ``error`` row of ``deconvbench verify``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..backends.strategy import Strategy
from ..cases.values import DEFAULTS, PROBLEM_KEYS, REQUIRED, render
from ..errors import ProblemError, Unavailable, Unsupported
from ..harness.verify import verify
from ..problem import PASSES, Pass, Problem
from .space import Item, suite_problems, with_dtype

DTYPE_ORDER = ("float32", "float64", "float16", "bfloat16")
MAX_SHRINK_CHECKS = 400
"""Checks one shrink may spend; what is reached by then is reported."""
MAX_SHRINKS = 8
"""Failures shrunk per strategy; past them, a (pass, dtype) without a failure reported yet
is reported with its problem as found, and the others are only counted."""


@dataclass(frozen=True)
class Outcome:
    """One check: ``declined`` (not checked), or ``ok`` with the verification message."""

    declined: bool
    ok: bool
    message: str = ""
    kind: str = ""
    """How a failed check failed: ``mismatch``, or the exception's type name; a shrink keeps
    it, so a wrong result does not shrink into a crash of another cause."""


def check(
    strategy: Strategy, problem: Problem, pass_: Pass, seed: int = 0, raises: bool = False
) -> Outcome:
    """``strategy``'s ``pass_`` of ``problem`` against the float64 reference, on the inputs
    of ``seed`` (``deconvbench verify --seed``'s, so its ``--case`` reproduces it).

    With ``raises``, an exception other than a refusal propagates, with its traceback (the
    tests' way); without, it is a failed outcome."""
    if strategy.unsupported_reason(problem, pass_) is not None:
        return Outcome(declined=True, ok=True)
    try:
        result = verify(strategy, problem, pass_, seed=seed)
    except (Unsupported, Unavailable):
        return Outcome(declined=True, ok=True)
    except Exception as e:
        if raises:
            raise
        kind = type(e).__name__
        return Outcome(declined=False, ok=False, message=f"{kind}: {e}", kind=kind)
    kind = "" if result.ok else "mismatch"
    return Outcome(declined=False, ok=result.ok, message=result.message, kind=kind)


def case_string(problem: Problem) -> str:
    """The shortest ``--case`` string of ``problem``: the required keys, then every value
    other than its default (dtype included), uniform tuples written once (``kernel=3``)."""
    parts = []
    for key in PROBLEM_KEYS:
        value = getattr(problem, key)
        if isinstance(value, tuple) and key != "input" and len(set(value)) == 1:
            value = value[0]
        if key in REQUIRED or value != DEFAULTS[key]:
            parts.append(f"{key}={render(value)}")
    return ",".join(parts)


def _smaller(value: int, low: int) -> list[int]:
    """Candidates below ``value`` down to ``low``, smallest first: low, half-way, one less."""
    return sorted({v for v in (low, (value + low) // 2, value - 1) if low <= v < value})


def _replace(problem: Problem, **changes: object) -> Problem | None:
    try:
        return dataclasses.replace(problem, **changes)  # type: ignore[arg-type]
    except ProblemError:
        return None


def _per_dim(problem: Problem, key: str, low: int) -> Iterator[Problem | None]:
    values: tuple[int, ...] = getattr(problem, key)
    for i, value in enumerate(values):
        for v in _smaller(value, low):
            changed = (*values[:i], v, *values[i + 1 :])
            if key in ("stride", "dilation"):  # keep output_padding < max(stride, dilation)
                other = problem.dilation if key == "stride" else problem.stride
                top = max(v, other[i]) - 1
                ops = problem.output_padding
                ops = (*ops[:i], min(ops[i], top), *ops[i + 1 :])
                yield _replace(problem, **{key: changed, "output_padding": ops})
            else:
                yield _replace(problem, **{key: changed})


def candidates(problem: Problem) -> Iterator[Problem]:
    """Valid problems one parameter smaller than ``problem``, in the order they are tried:
    batch, channels, spatial sizes, kernel, stride, padding, output_padding, dilation,
    groups, bias."""
    p, g = problem, problem.groups

    def generated() -> Iterator[Problem | None]:
        for v in _smaller(p.batch, 1):
            yield _replace(p, batch=v)
        for key in ("in_channels", "out_channels"):
            for v in _smaller(getattr(p, key) // g, 1):
                yield _replace(p, **{key: v * g})
        yield from _per_dim(p, "input", 1)
        yield from _per_dim(p, "kernel", 1)
        yield from _per_dim(p, "stride", 1)
        yield from _per_dim(p, "padding", 0)
        yield from _per_dim(p, "output_padding", 0)
        yield from _per_dim(p, "dilation", 1)
        common = math.gcd(p.in_channels, p.out_channels)
        for v in range(1, g):
            if common % v == 0:
                yield _replace(p, groups=v)
        if p.bias:
            yield _replace(p, bias=False)

    yield from (q for q in generated() if q is not None)


Checker = Callable[[Problem, Pass], Outcome]
"""One strategy's :func:`check` on fixed inputs' seed (memoised within a suite)."""


def checker(strategy: Strategy, seed: int = 0) -> Checker:
    """:func:`check` of ``strategy`` on the inputs of ``seed``, each (problem, pass) once."""
    seen: dict[tuple[Problem, Pass], Outcome] = {}

    def run(problem: Problem, pass_: Pass) -> Outcome:
        key = (problem, pass_)
        if key not in seen:
            seen[key] = check(strategy, problem, pass_, seed)
        return seen[key]

    return run


def shrink(
    check_: Checker, problem: Problem, pass_: Pass, budget: int = MAX_SHRINK_CHECKS
) -> tuple[Problem, Outcome]:
    """A smaller problem on which ``pass_`` still fails the same way (a mismatch, or the same
    exception type), and its outcome: each parameter is reduced, one at a time, while the
    check still fails, until none can be (or ``budget`` checks are spent). ``problem`` must
    fail."""
    outcome = check_(problem, pass_)
    spent = 1
    improved = True
    while improved and spent < budget:
        improved = False
        for candidate in candidates(problem):
            if spent >= budget:
                break
            spent += 1
            result = check_(candidate, pass_)
            if not result.ok and result.kind == outcome.kind:
                problem, outcome, improved = candidate, result, True
                break
    return problem, outcome


@dataclass(frozen=True)
class Failure:
    """A failing check, with the minimal problem it shrank to."""

    strategy: str
    pass_: Pass
    dtype: str
    label: str
    """Where the failing problem came from (``edge case 'depthwise'``, ``random problem 3``)."""
    original: Problem
    minimal: Problem
    message: str
    """The verification message (or ``Type: message``) on the minimal problem."""

    @property
    def case(self) -> str:
        return case_string(self.minimal)

    def reproduce(self, seed: int = 0) -> str:
        """The ``deconvbench verify`` command line that reproduces it."""
        extra = f" --seed {seed}" if seed else ""
        return (
            f"deconvbench verify --case {self.case} -i {self.strategy} --pass {self.pass_}{extra}"
        )


@dataclass(frozen=True)
class Report:
    """A strategy's suite: what was checked, declined, and what failed."""

    strategy: str
    problems: int
    passes: tuple[Pass, ...]
    dtypes: tuple[str, ...]
    checked: int
    declined: int
    failures: tuple[Failure, ...]
    failed: int
    """Failing checks (several may shrink to one minimal problem: ``failures`` has each
    (pass, dtype, minimal problem) once)."""

    @property
    def ok(self) -> bool:
        return self.failed == 0


def declared_passes(strategy: Strategy) -> tuple[Pass, ...]:
    return PASSES if strategy.capabilities.backward else ("forward",)


def declared_dtypes(strategy: Strategy) -> tuple[str, ...]:
    declared = strategy.capabilities.dtypes
    return tuple(d for d in DTYPE_ORDER if d in declared)


Progress = Callable[[int, int], None]
"""Called with (checks done, checks in all) as a suite goes."""


def run_suite(
    strategy: Strategy,
    examples: int,
    seed: int = 0,
    input_seed: int = 0,
    progress: Progress | None = None,
) -> Report:
    """Every edge case and ``examples`` random problems (from ``seed``) within the dimensions
    ``strategy`` declares, each pass and dtype it declares, on the inputs of ``input_seed``;
    failures shrunk to minimal problems (:data:`MAX_SHRINKS`)."""
    items: list[Item] = suite_problems(examples, seed, strategy.capabilities.dims)
    passes, dtypes = declared_passes(strategy), declared_dtypes(strategy)
    total = len(items) * len(passes) * len(dtypes)
    check_ = checker(strategy, input_seed)
    checked = declined = failed = shrunk = 0
    failures: dict[tuple[Pass, str, Problem], Failure] = {}
    for item in items:
        for dtype in dtypes:
            problem = with_dtype(item.problem, dtype)
            for pass_ in passes:
                outcome = check_(problem, pass_)
                declined += outcome.declined
                checked += not outcome.declined
                if not outcome.ok:
                    failed += 1
                    fresh = not any(k[:2] == (pass_, dtype) for k in failures)
                    minimal, last = problem, outcome
                    if shrunk < MAX_SHRINKS:
                        shrunk += 1
                        minimal, last = shrink(check_, problem, pass_)
                        fresh = True
                    if fresh:
                        failures.setdefault(
                            (pass_, dtype, minimal),
                            Failure(strategy.name, pass_, dtype, item.label, problem, minimal,
                                    last.message),
                        )  # fmt: skip
                if progress is not None:
                    progress(checked + declined, total)
    return Report(
        strategy.name, len(items), passes, dtypes, checked, declined,
        tuple(failures.values()), failed,
    )  # fmt: skip

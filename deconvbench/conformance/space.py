"""The problem space of the conformance suite: random problems and the edge cases.

One definition, shared by ``deconvbench conformance`` (random problems from numpy's seeded
generator: the same list on every machine, nothing written to disk) and the project's tests
(which draw the same space through hypothesis, to shrink with it, by passing their own
``integer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..errors import ProblemError
from ..problem import Problem

Integer = Callable[[int, int], int]
"""Draws an integer in [low, high] (both included): from numpy's seeded generator here, from
hypothesis in the tests."""

DIMS: tuple[int, ...] = (1, 2, 3)
RANDOM_DTYPES: tuple[str, ...] = ("float32", "float64")
"""The dtypes :func:`draw_problem` draws from by default (the tests' random problems)."""


def draw_problem(
    integer: Integer, dims: Sequence[int] = DIMS, dtypes: Sequence[str] = RANDOM_DTYPES
) -> Problem:
    """One problem with every parameter drawn, small enough to stay fast; raises
    :class:`ProblemError` when the draw has no output (heavy padding on a tiny input)."""
    ndim = dims[integer(0, len(dims) - 1)]
    max_in, max_k = {1: 9, 2: 6, 3: 4}[ndim], {1: 6, 2: 4, 3: 3}[ndim]
    groups = integer(1, 3)
    inputs = [integer(1, max_in) for _ in range(ndim)]
    kernel = [integer(1, max_k) for _ in range(ndim)]
    stride = [integer(1, 4) for _ in range(ndim)]
    dilation = [integer(1, 3) for _ in range(ndim)]
    padding = [integer(0, d * (k - 1) + 1) for k, d in zip(kernel, dilation, strict=True)]
    output_padding = [integer(0, max(s, d) - 1) for s, d in zip(stride, dilation, strict=True)]
    return Problem.create(
        batch=integer(1, 3),
        in_channels=groups * integer(1, 3),
        out_channels=groups * integer(1, 3),
        input=tuple(inputs),
        kernel=tuple(kernel),
        stride=tuple(stride),
        padding=tuple(padding),
        output_padding=tuple(output_padding),
        dilation=tuple(dilation),
        groups=groups,
        bias=integer(0, 1) == 1,
        dtype=dtypes[integer(0, len(dtypes) - 1)],
    )


def seeded_integer(seed: int) -> Integer:
    """An :data:`Integer` from numpy's PCG64 seeded with ``seed`` (platform-independent)."""
    rng = np.random.default_rng(seed)
    return lambda low, high: int(rng.integers(low, high, endpoint=True))


def sample_problems(
    count: int,
    seed: int = 0,
    dims: Sequence[int] = DIMS,
    dtypes: Sequence[str] = RANDOM_DTYPES,
) -> list[Problem]:
    """``count`` valid problems drawn as :func:`draw_problem` draws them, from ``seed``: the
    same list on every run and machine."""
    integer = seeded_integer(seed)
    out: list[Problem] = []
    while len(out) < count:
        try:
            out.append(draw_problem(integer, dims, dtypes))
        except ProblemError:
            continue
    return out


def small_problem(**kw: object) -> Problem:
    """A small 2-D float32 problem (batch 2, 4->6 channels, 5x5, k3 s2 p1), changed by ``kw``."""
    base: dict[str, object] = dict(
        batch=2,
        in_channels=4,
        out_channels=6,
        input=(5, 5),
        kernel=3,
        stride=2,
        padding=1,
        dtype="float32",
    )
    base.update(kw)
    return Problem.create(**base)  # type: ignore[arg-type]


_p = small_problem

EDGE_CASES: dict[str, Problem] = {
    "1x1-input": _p(input=(1, 1), kernel=4, stride=1, padding=0),
    "batch-1": _p(batch=1),
    "kernel-1": _p(kernel=1, padding=0),
    "stride-gt-kernel": _p(kernel=2, stride=5, padding=0),
    "output-padding-max": _p(kernel=3, stride=4, padding=1, output_padding=3),
    "output-padding-dilation": _p(kernel=3, stride=1, dilation=3, padding=1, output_padding=2),
    "dilation-and-stride": _p(kernel=3, stride=3, dilation=2, padding=2, output_padding=1),
    "depthwise": _p(in_channels=6, out_channels=6, groups=6, bias=True),
    "groups-2": _p(in_channels=4, out_channels=6, groups=2, bias=True),
    "asymmetric": _p(
        input=(4, 7),
        kernel=(2, 5),
        stride=(3, 1),
        padding=(0, 2),
        dilation=(1, 2),
        output_padding=(2, 1),
    ),
    "padding-crops-taps": _p(kernel=3, stride=1, padding=2),
    "stride-divides-kernel": _p(input=(4, 4), kernel=4, stride=2, padding=1, bias=True),
    "1d": _p(input=(11,), kernel=25, stride=4, padding=11, output_padding=1, in_channels=3),
    "3d": _p(input=(3, 4, 2), kernel=(3, 2, 3), stride=(2, 1, 3), padding=(1, 0, 1), bias=True),
    "large-kernel": _p(input=(3, 3), kernel=16, stride=8, padding=4, in_channels=3, out_channels=2),
    "float64": _p(dtype="float64", bias=True),
}
"""Named problems every strategy meets. Their dtype is float32 (float64 for ``float64``);
``deconvbench conformance`` checks each in every dtype the strategy declares."""

REDUCED_PRECISION = _p(in_channels=8, out_channels=4, input=(6, 6), kernel=4, bias=True)
"""The problem the tests check in float16 and bfloat16 (with its dtype replaced); the
command checks it, as ``edge case 'reduced-precision'``, in every dtype declared."""

PLAIN_2D = "stride-divides-kernel"
"""The edge case every available strategy must take: the commonest layer shape."""


def with_dtype(problem: Problem, dtype: str) -> Problem:
    return dataclasses.replace(problem, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class Item:
    """One problem of a suite (in float32: the dtype is set per check) and where it is from."""

    label: str
    """``edge case 'depthwise'`` or ``random problem 3``."""
    problem: Problem


def suite_problems(examples: int, seed: int, dims: Iterable[int] = DIMS) -> list[Item]:
    """The edge cases within ``dims``, then ``examples`` random problems from ``seed``, each
    once (a random problem equal to an edge case is left out), dtype float32."""
    within = tuple(sorted(set(dims) & set(DIMS)))
    if not within:
        return []
    items: list[Item] = []
    seen: set[Problem] = set()
    named = {**EDGE_CASES, "reduced-precision": REDUCED_PRECISION}
    edges = ((f"edge case {name!r}", p) for name, p in named.items())
    randoms = (
        (f"random problem {i + 1}", p)
        for i, p in enumerate(sample_problems(examples, seed, within, ("float32",)))
    )
    for label, problem in (*edges, *randoms):
        problem = with_dtype(problem, "float32")
        if problem.ndim in within and problem not in seen:
            seen.add(problem)
            items.append(Item(label, problem))
    return items

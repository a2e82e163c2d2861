"""Problems shared by the tests: a hypothesis strategy over valid problems and edge cases."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from hypothesis import reject
from hypothesis import strategies as st

from deconvbench.errors import ProblemError
from deconvbench.problem import Problem

Integer = Callable[[int, int], int]
"""Draws an integer in [low, high]: from hypothesis, or from a seeded ``random.Random``."""


def _problem(integer: Integer, dims: Sequence[int], dtypes: Sequence[str]) -> Problem:
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


@st.composite
def problems(
    draw: st.DrawFn,
    dtypes: tuple[str, ...] = ("float32", "float64"),
    dims: tuple[int, ...] = (1, 2, 3),
) -> Problem:
    """Random valid problems, every parameter exercised (hypothesis: shrinks a failure)."""
    try:
        return _problem(lambda low, high: draw(st.integers(low, high)), dims, dtypes)
    except ProblemError:
        reject()


def sample_problems(
    count: int,
    seed: int = 0,
    dims: tuple[int, ...] = (1, 2, 3),
    dtypes: tuple[str, ...] = ("float32", "float64"),
) -> list[Problem]:
    """``count`` valid problems drawn as :func:`problems` draws them, from a fixed seed: the
    same list on every run (for shares, where hypothesis's shrinking has nothing to say)."""
    rng = random.Random(seed)
    out: list[Problem] = []
    while len(out) < count:
        try:
            out.append(_problem(rng.randint, dims, dtypes))
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

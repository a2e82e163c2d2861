"""Problems shared by the tests: the conformance suite's problem space
(``deconvbench/conformance/space.py``, which ``deconvbench conformance`` draws from too), and
a hypothesis strategy over it that shrinks a failure."""

from __future__ import annotations

from hypothesis import reject
from hypothesis import strategies as st

from deconvbench.conformance.space import (
    EDGE_CASES,
    PLAIN_2D,
    RANDOM_DTYPES,
    REDUCED_PRECISION,
    draw_problem,
    sample_problems,
    small_problem,
)
from deconvbench.errors import ProblemError
from deconvbench.problem import Problem

__all__ = [
    "EDGE_CASES",
    "PLAIN_2D",
    "REDUCED_PRECISION",
    "problems",
    "sample_problems",
    "small_problem",
]


@st.composite
def problems(
    draw: st.DrawFn,
    dtypes: tuple[str, ...] = RANDOM_DTYPES,
    dims: tuple[int, ...] = (1, 2, 3),
) -> Problem:
    """Random valid problems of the conformance suite's space, every parameter exercised,
    drawn through hypothesis (which shrinks a failure)."""
    try:
        return draw_problem(lambda low, high: draw(st.integers(low, high)), dims, dtypes)
    except ProblemError:
        reject()

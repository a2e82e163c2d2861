"""A named problem from a suite (or a ``--case`` string), with the passes to measure."""

from __future__ import annotations

from dataclasses import dataclass

from .problem import PASSES, Pass, Problem


@dataclass(frozen=True)
class Case:
    """One benchmark case: the identity a results row is keyed on (suite, name, problem)."""

    suite: str
    name: str
    problem: Problem
    passes: tuple[Pass, ...] = PASSES

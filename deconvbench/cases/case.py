"""A named problem from a suite (or a ``--case`` string), with the passes to measure."""

from __future__ import annotations

from dataclasses import dataclass

from ..problem import PASSES, Pass, Problem

CLI_SUITE = "cli"
"""The suite of the cases given with ``--case``."""


@dataclass(frozen=True)
class Case:
    """One benchmark case: the identity a results row is keyed on (suite, name, problem)."""

    suite: str
    name: str
    problem: Problem
    passes: tuple[Pass, ...] = PASSES
    count: int | None = None
    """How many of a model's layers (or a log's executions) have this problem; None when the
    suite doesn't say (the case is not part of a model)."""
    layers: tuple[str, ...] = ()
    """Their names in the model."""

    @property
    def label(self) -> str:
        """How the case is named to the user: its ``--case`` spec, or its suite and name."""
        if self.suite == CLI_SUITE:
            return f"--case {self.name}"  # its spec, unless the user named it
        return f"suite {self.suite!r} case {self.name!r}"

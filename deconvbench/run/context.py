"""What the tasks of one run share: options, facts, threads, and the current case's caches."""

from __future__ import annotations

from collections.abc import Callable

from ..harness.clocks import Clock, clock_for
from ..harness.inputs import Inputs, make_inputs
from ..harness.measure import Settings, make_l2_flush
from ..harness.threads import ThreadSettings
from ..harness.verify import expected
from ..problem import Pass, Problem
from .rounds import round_settings
from .types import RunFacts, RunOptions


class RunContext:
    """State shared by the tasks of one run (in one process).

    Tasks arrive grouped by case, so the caches keep only the current problem: every
    strategy and pass of a case shares one set of inputs and one reference result per pass,
    which is computed once (the float64 reference is the slowest thing in a run).
    """

    def __init__(
        self, options: RunOptions, facts: RunFacts, threads: ThreadSettings, clock: Clock | None
    ) -> None:
        self.options = options
        self.run_settings: Settings = options.settings()
        """The whole run's timing settings: what a row's pooled samples are judged by."""
        self.settings = round_settings(self.run_settings, options.effective_rounds)
        """One round's share of them: what each measurement runs with."""
        self.facts = facts
        self.threads = threads
        self.clock = clock
        self._problem: Problem | None = None
        self._inputs: Inputs | None = None
        self._expected: dict[Pass, tuple[object, ...]] = {}
        self._flush: dict[str, Callable[[], None] | None] = {}

    def _switch(self, problem: Problem) -> None:
        if problem != self._problem:
            self._problem, self._inputs, self._expected = problem, None, {}

    def inputs(self, problem: Problem) -> Inputs:
        self._switch(problem)
        if self._inputs is None:
            self._inputs = make_inputs(problem, self.options.seed)
        return self._inputs

    def expected(self, problem: Problem, pass_: Pass) -> tuple[object, ...]:
        inputs = self.inputs(problem)
        if pass_ not in self._expected:
            self._expected[pass_] = expected(problem, pass_, inputs)
        return self._expected[pass_]

    def clock_for(self, device: str) -> Clock:
        return self.clock if self.clock is not None else clock_for(device)

    def flush_for(self, device: str) -> Callable[[], None] | None:
        if not self.options.l2_flush:
            return None
        if device not in self._flush:
            self._flush[device] = make_l2_flush(device)
        return self._flush[device]

"""What the progress displays need from the run's tasks, as a structural type.

``run.types.Task`` satisfies it; the displays depend only on these attributes, so they can be
tested with small fakes and do not import the run package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..cases.case import Case


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class TaskLike(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def case(self) -> Case: ...
    @property
    def strategy(self) -> _Named: ...
    @property
    def pass_(self) -> str: ...


class CaseCounter:
    """Numbers the cases of a plan: "case i of n" for any of its tasks."""

    def __init__(self, tasks: Sequence[TaskLike]) -> None:
        self._number: dict[tuple[str, str], int] = {}
        for task in tasks:
            key = (task.case.suite, task.case.name)
            self._number.setdefault(key, len(self._number) + 1)

    @property
    def total(self) -> int:
        return len(self._number)

    def number(self, task: TaskLike) -> int:
        return self._number.get((task.case.suite, task.case.name), 0)

    def label(self, task: TaskLike) -> str:
        return f"case {self.number(task)}/{self.total}"


def describe(task: TaskLike) -> str:
    text = f"{task.case.suite}/{task.case.name} {task.strategy.name} {task.pass_}"
    label = getattr(task, "round_label", "")  # run.types.Task has it; fakes needn't
    return f"{text} ({label})" if label else text

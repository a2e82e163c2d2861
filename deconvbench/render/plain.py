"""Line-oriented output for logs and pipes: used when stdout is not a terminal or NO_COLOR is set.

One line per finished measurement, no cursor movement, no colour, ASCII marks (messages
from strategies are shown as they are), so a CI log or ``grep`` reads it as well as a person.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TextIO

from ..results.schema import RowLike
from . import _format as f
from ._tasks import CaseCounter, TaskLike


def use_plain(stdout: TextIO, stderr: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Plain output unless both streams are terminals and NO_COLOR is unset (no-color.org)."""
    if environ.get("NO_COLOR", "") != "":
        return True
    try:
        return not (stdout.isatty() and stderr.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        return True


class PlainProgress:
    """A ``run.types.ProgressSink`` that prints one line per finished measurement."""

    def __init__(
        self,
        stream: IO[str],
        tasks: Sequence[TaskLike],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._cases = CaseCounter(tasks)
        self._clock = clock
        self._total = len(tasks)
        self._done = 0
        self._round = ""
        self._start = clock()
        self.rows: list[RowLike] = []
        """Every finished row, in order (what the CLI shows after a Ctrl-C)."""

    def _print(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def started(self, total: int) -> None:
        self._total = total
        self._start = self._clock()
        self._print(f"running {total} measurements over {self._cases.total} cases")

    def task_started(self, task: TaskLike) -> None:
        """A line when a round begins (``run --rounds``); otherwise nothing: a line per task
        start would double the log without saying more."""
        label = getattr(task, "round_label", "")
        if label != self._round:
            self._round = label
            self._print(f"{label}: every measurement once more" if label[:8] != "round 1/" else
                        f"{label}: rows are written after the last round")  # fmt: skip

    def task_progress(self, task: TaskLike, samples: int, elapsed_s: float) -> None:
        """Nothing: a log has no place for a counter that changes in place."""

    def task_finished(self, task: TaskLike, row: Mapping[str, object] | None) -> None:
        self._done += 1
        if row is None:  # a round before the last: the row comes later
            return
        self.rows.append(row)
        counter = f"[{self._done:>{len(str(self._total))}}/{self._total}]"
        self._print(f"{counter} {self._cases.label(task)} {f.one_line(row, '+/-')}")

    def finished(self) -> None:
        self._print(f"finished {self._done} measurements in {self._clock() - self._start:.1f} s")

    def close(self) -> None:
        """Nothing to tear down (the CLI calls it on every exit path, as for the live display)."""

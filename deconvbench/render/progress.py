"""The live progress display of ``deconvbench run`` on a terminal (a ``run.types.ProgressSink``).

rich normally redraws a live display from a background thread several times a second.
During a CPU benchmark that thread competes with the code being timed, so this display
is built with ``auto_refresh=False`` and redrawn only when the run loop calls the sink,
which it does between samples, outside every timed region. Redraws are also rate-limited
so a run of very short samples does not spend its time drawing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from ..results.schema import RowLike
from . import _format as f
from ._tasks import CaseCounter, TaskLike, describe

MIN_REDRAW_S = 0.1
"""At most ten redraws a second from ``task_progress``; task boundaries always redraw."""


def _style(row: Mapping[str, object]) -> str:
    st = f.status(row)
    return "" if st == f.OK else "bold red" if f.is_failed(row) else "dim"


class LiveProgress:
    """A progress bar (case i of n, strategy, pass, samples, ETA) above a log of finished rows."""

    def __init__(
        self,
        console: Console,
        tasks: Sequence[TaskLike],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cases = CaseCounter(tasks)
        self._clock = clock
        self._last_redraw = float("-inf")
        self._progress = Progress(
            TextColumn("{task.fields[case]}", style="cyan", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            # The description takes what is left and is cut, never wrapped: the bar and
            # counters keep their place however long a case's name is.
            TextColumn(
                "{task.description}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=console,
            auto_refresh=False,  # no refresh thread: see the module docstring
            transient=True,
            expand=True,
        )
        self._bar: TaskID | None = None
        self._running = False
        self.rows: list[RowLike] = []
        """Every finished row, in order (what the CLI shows after a Ctrl-C)."""

    def _redraw(self, force: bool = True) -> None:
        now = self._clock()
        if force or now - self._last_redraw >= MIN_REDRAW_S:
            self._progress.refresh()
            self._last_redraw = now

    def started(self, total: int) -> None:
        self._progress.start()
        self._running = True
        self._bar = self._progress.add_task("starting", total=total, case="")
        self._redraw()

    def task_started(self, task: TaskLike) -> None:
        if self._bar is None:
            return
        self._progress.update(self._bar, description=describe(task), case=self._cases.label(task))
        self._redraw()

    def task_progress(self, task: TaskLike, samples: int, elapsed_s: float) -> None:
        if self._bar is None:
            return
        self._progress.update(
            self._bar, description=f"{describe(task)} · {samples} samples, {elapsed_s:.1f} s"
        )
        self._redraw(force=False)

    def task_finished(self, task: TaskLike, row: Mapping[str, object] | None) -> None:
        if row is not None:
            self.rows.append(row)
        if self._bar is None:
            return
        if row is not None:  # None: a round before the last, nothing to show yet
            # Printed above the bar, so the log of finished rows scrolls while the bar stays put.
            self._progress.console.print(f.one_line(row), style=_style(row), markup=False)
        self._progress.advance(self._bar)
        self._redraw()

    def finished(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the display (idempotent; the CLI also calls it on Ctrl-C)."""
        if self._running:
            self._progress.stop()
            self._running = False

"""``run --isolate``: measurements run in a worker process, so a strategy can't take the run down.

The worker (a *spawned* process: no state inherited from the parent, no forked threads)
runs exactly what an in-process run does (``steps.run_task``), one task at a time as the
parent sends them, and sends each outcome back over a pipe. The parent only waits:

- an outcome arrives → it is the result (an exception inside the worker already became an
  ``error``/``oom``/``unsupported`` outcome there);
- the worker dies without one → ``crashed``, naming the signal (SIGSEGV, SIGABRT…) or the
  exit status; a worker killed by the kernel's OOM killer shows up as SIGKILL;
- nothing within ``timeout_s`` → the worker is killed and the outcome is ``timeout``.

A worker serves the tasks of one round; the next round, and the next task after a crash or a
timeout, get a fresh worker. Starting a worker costs a second or two (it imports
deconvbench, numpy and torch afresh), which per task would add minutes to a smoke run; per
round it is paid once a round, and gives each round its own process: some timings depend on
the process (memory placement, a library's choices at start-up), and only rounds in
different processes let ``compare`` see that as noise rather than change. The price: the
tasks of a round share a process, as they do without ``--isolate`` (a strategy that corrupts
global state affects the tasks after it until the worker is replaced).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from ..harness.process import allocator_library, set_memory_state
from ..harness.threads import limit_threads
from .context import RunContext
from .outcome import Outcome
from .steps import run_task
from .types import NullSink, RunFacts, RunOptions, Task

EXIT_GRACE_S = 10.0
"""How long a worker that closed its pipe may take to die before it is killed."""
STOP_GRACE_S = 5.0
"""How long an idle worker may take to exit when the run ends."""


def _worker(conn: Connection, options: RunOptions, facts: RunFacts) -> None:
    # A crashing strategy should be reported at once, not after the kernel writes a core
    # dump of a process holding torch (which can take longer than the timeout).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.dup2(2, 1)  # a strategy's prints go to stderr: the parent's stdout may be a protocol
    # Signal dispositions and masks survive exec: a parent that ignores or blocks fatal
    # signals (a test runner's worker thread, say) would otherwise leave a crash hanging.
    fatal = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}
    for sig in fatal:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, fatal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    set_memory_state(options.memory_state)
    with limit_threads(options.threads) as threads:
        ctx = RunContext(options, facts, threads, None)  # caches a case's inputs, reference
        while True:
            try:
                task = conn.recv()
            except EOFError:  # the parent is gone
                return
            if task is None:
                return
            conn.send(run_task(task, ctx, NullSink()))


@contextlib.contextmanager
def _preloaded(allocator: str | None) -> Iterator[None]:
    """``LD_PRELOAD`` set to the allocator's library while a worker starts (a spawned worker
    is a new program, started with this process's environment)."""
    if allocator is None:
        yield
        return
    previous = os.environ.get("LD_PRELOAD")
    os.environ["LD_PRELOAD"] = allocator_library(allocator)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["LD_PRELOAD"]
        else:
            os.environ["LD_PRELOAD"] = previous


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code} before sending a result"


class IsolatedRunner:
    """Runs tasks in a worker process, replacing the worker after a crash or a timeout.

    Use as a context manager (or call :meth:`close`): the worker is stopped at the end.
    """

    def __init__(self, options: RunOptions, facts: RunFacts) -> None:
        self._options, self._facts = options, facts
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._round = 0
        self.starts = 0
        """Workers started so far: one a round, plus one after each crash or timeout."""

    def _start(self) -> tuple[BaseProcess, Connection]:
        spawn = multiprocessing.get_context("spawn")
        ours, theirs = spawn.Pipe(duplex=True)
        process = spawn.Process(
            target=_worker, args=(theirs, self._options, self._facts), daemon=True
        )
        with _preloaded(self._options.allocator):
            process.start()
        theirs.close()  # only the worker holds its end: EOF here when it dies
        self._process, self._conn = process, ours
        self.starts += 1
        return process, ours

    def run(self, task: Task) -> Outcome:
        """One task's outcome; a crash or a hang becomes the outcome, never an exception."""
        if task.round != self._round:  # each round in a fresh process: see the module doc
            self.close()
            self._round = task.round
        if self._process is not None and self._conn is not None and self._process.is_alive():
            process, conn = self._process, self._conn
        else:
            self._discard()  # a worker that died between tasks, if any
            process, conn = self._start()
        timeout_s = self._options.timeout_s
        try:
            conn.send(task)
            if conn.poll(timeout_s):
                outcome: Outcome = conn.recv()
                return outcome
            status, message = "timeout", f"no result within {timeout_s:g} s; worker killed"
        except (EOFError, BrokenPipeError, ConnectionResetError):
            # The worker closed the pipe without an outcome: it is dying. Its pipe closes
            # before the kernel reports it dead, so it gets a moment to finish dying; on a
            # loaded machine its exit code may otherwise not be there yet.
            process.join(EXIT_GRACE_S)
            status, message = "", ""
        self._discard()
        if not status:
            status, message = "crashed", f"worker {_describe_exit(process.exitcode)}"
        return Outcome(status, message)

    def _discard(self) -> None:
        """Kill the current worker (if it still lives) and forget it."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        """Ask an idle worker to exit, and make sure it has."""
        if self._conn is not None and self._process is not None:
            with contextlib.suppress(OSError):  # a worker already gone can't be asked
                self._conn.send(None)
            self._process.join(STOP_GRACE_S)
        self._discard()

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

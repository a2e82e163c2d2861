"""``run --isolate``: one measurement per worker process, so a strategy can't take the run down.

The worker (a *spawned* process: no state inherited from the parent, no forked threads)
runs exactly what an in-process run does (``steps.run_task``) and sends the row back over
a pipe. The parent only waits:

- a row arrives → it is the result (an exception inside the worker already became an
  ``error``/``oom``/``unsupported`` row there);
- the worker dies without a row → ``crashed``, naming the signal (SIGSEGV, SIGABRT…) or the
  exit status; a worker killed by the kernel's OOM killer shows up as SIGKILL;
- nothing within ``timeout_s`` → the worker is killed and the row is ``timeout``.

Costs: each worker imports deconvbench and its backends afresh (a second or two with torch)
and recomputes the float64 reference, which the in-process run caches per case.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from multiprocessing.connection import Connection

from .harness.threads import limit_threads
from .results import Row
from .runner import NullSink, RunFacts, RunOptions, Task
from .steps import RunContext, base_row, run_task

EXIT_GRACE_S = 10.0
"""How long a worker that closed its pipe may take to die before it is killed."""


def _worker(conn: Connection, task: Task, options: RunOptions, facts: RunFacts) -> None:
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
    with limit_threads(options.threads) as threads:
        row = run_task(task, RunContext(options, facts, threads, None), NullSink())
    conn.send(row)
    conn.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code} before sending a result"


def run_isolated(task: Task, options: RunOptions, facts: RunFacts, timeout_s: float) -> Row:
    """One task in a worker process; crashes and hangs become rows, never exceptions."""
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    worker = spawn.Process(target=_worker, args=(send, task, options, facts), daemon=True)
    worker.start()
    send.close()  # the parent keeps only the reading end: EOF when the worker dies
    row: Row | None = None
    status, message = "", ""
    try:
        if receive.poll(timeout_s):
            row = receive.recv()
        else:
            status, message = "timeout", f"no result within {timeout_s:g} s; worker killed"
    except EOFError:
        # The worker closed the pipe without a row: it is dying. Its pipe closes before the
        # kernel reports it dead, so give it a moment to finish dying, or its crash would be
        # misread as a hang (this raced on loaded machines).
        worker.join(EXIT_GRACE_S)
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join()
        receive.close()
    if row is not None:
        return row
    if not status:
        status, message = "crashed", f"worker {_describe_exit(worker.exitcode)}"
    with limit_threads(1) as threads:  # only to build the identity columns
        failed = base_row(task, RunContext(options, facts, threads, None))
    failed["status"], failed["message"], failed["timestamp"] = status, message, facts.now()
    return failed

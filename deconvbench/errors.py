"""Error types shared by the library and the command line.

Library code raises these; only ``cli/app.py`` turns them into exit codes (docs/design.md),
so nothing below the CLI ever calls ``sys.exit``.
"""

from __future__ import annotations


class DeconvbenchError(Exception):
    """Base class of every error deconvbench raises on purpose."""


class InputError(DeconvbenchError, ValueError):
    """Bad input from the user: a suite file, a ``--case`` string, a CSV, an argument.

    The CLI prints the message as one line and exits with code 2.
    """


class ProblemError(InputError):
    """A transposed-convolution problem whose parameters break a rule (names the parameter)."""


class Unsupported(DeconvbenchError, ValueError):
    """A strategy cannot compute this problem (the message says why)."""


class Unavailable(DeconvbenchError, RuntimeError):
    """A strategy's backend cannot run here (the message says why and how to fix it)."""


class InsufficientMemory(DeconvbenchError, MemoryError):
    """A call needs more memory than is available; the one-line message gives both.

    A ``MemoryError``, so code that caught numpy's own still catches it.
    """

"""The command line: thin typer commands over the library.

- ``app``: the typer app, the error guard, exit codes, ``main``;
- ``options``: every option's annotation, and the parsing and checks of its value;
- ``run``: ``run`` and ``verify``;
- ``info``: ``list``, ``suites`` and ``env``;
- ``compare``, ``merge``, ``export``, ``report``, ``importer`` (``import``), ``plan``,
  ``conformance``: one command each.

Importing this package registers every command on :data:`app`; the console script and
``python -m deconvbench`` call :func:`main` from here.
"""

from __future__ import annotations

# Commands register in import order, which is the order ``--help`` lists them.
# isort: off
from . import run, info, compare, merge, export, report, importer, plan, conformance
# isort: on
from .app import app, main

__all__ = [
    "app", "compare", "conformance", "export", "importer", "info", "main", "merge", "plan",
    "report", "run",
]  # fmt: skip

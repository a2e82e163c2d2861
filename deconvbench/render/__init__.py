"""Everything the command line shows; renderers read rows and facts and compute nothing the
harness, the statistics or the analysis own.

- ``screen``: where output goes (tables on stdout, notes on stderr; colour or plain);
- ``table``: the run's tables (one per case, the summary, verification);
- ``progress``, ``plain``: the live display on a terminal, the line log elsewhere;
- ``compare``: compare's exporters (table, markdown, csv, json);
- ``report``, ``plots``: report's tables and PNG plots;
- ``info``: the tables of ``list``, ``suites`` and ``env``;
- ``model_table``: the model-total table (``run`` and ``report`` on imported suites);
- ``plan``: the plan table and its machine (``plan``, ``plan show``);
- ``export``: the trackers' formats (github-action-benchmark, bencher);
- ``_format``, ``_tasks``: reading rows and tasks, shared by the above.
"""

from __future__ import annotations

from .glyphs import PLAIN, RICH, Glyphs
from .screen import Screen

__all__ = ["PLAIN", "RICH", "Glyphs", "Screen"]

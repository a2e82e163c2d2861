"""Everything the command line shows: result tables, progress displays, plain logs, info tables.

Renderers read rows and facts; they compute nothing the harness or the statistics own.
"""

from __future__ import annotations

from .screen import Screen
from .table import PLAIN, RICH, Glyphs

__all__ = ["PLAIN", "RICH", "Glyphs", "Screen"]

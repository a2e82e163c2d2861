"""An append-only journal beside a results file: JSON objects, one a line, each fsynced.

``run --rounds`` keeps the finished rounds of rows not yet written here (``run.rounds`` says
what an entry holds), so a crash or Ctrl-C loses at most the entry in flight and
``--resume`` picks up the rest. A torn last line (a crash mid-write) is skipped on reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

SUFFIX = ".rounds"


class Journal:
    """``<results>.rounds``. ``mode`` is the results writer's: ``resume`` keeps (and reads) an
    existing journal, the others start afresh (a journal without its results file is stale)."""

    def __init__(self, results: Path, mode: str) -> None:
        self.path = Path(str(results) + SUFFIX)
        if mode != "resume":
            self.path.unlink(missing_ok=True)

    def entries(self) -> Iterator[dict[str, object]]:
        """Every complete entry, in the order written."""
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a crash: that entry's work runs again
            if isinstance(entry, dict):
                yield entry

    def add(self, entry: Mapping[str, object]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        """Once every row is written the journal says nothing more."""
        self.path.unlink(missing_ok=True)

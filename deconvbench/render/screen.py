"""Where a command's output goes: tables on stdout, progress and notes on stderr.

Tables go to stdout so ``deconvbench run ... > report.txt`` keeps them, while progress and
notes go to stderr. Colour and live displays only when both streams are terminals and
NO_COLOR is unset; otherwise plain, ASCII, line-oriented output without trailing spaces.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Literal, TextIO

from rich.console import Console, RenderableType

from .glyphs import PLAIN, RICH, Glyphs
from .plain import use_plain

PIPE_WIDTH = 160
"""Width for tables written to a pipe or file, which has none (rich would assume 80)."""


@dataclass(frozen=True)
class Screen:
    out: Console
    err: Console
    glyphs: Glyphs
    plain: bool

    @classmethod
    def for_streams(cls, stdout: TextIO | None = None, stderr: TextIO | None = None) -> Screen:
        stdout = stdout or sys.stdout
        stderr = stderr or sys.stderr
        plain = use_plain(stdout, stderr)
        width = PIPE_WIDTH if plain and "COLUMNS" not in os.environ else None
        # no_color alone still lets bold, italic and dim through: plain means no codes at all
        system: Literal["auto"] | None = None if plain else "auto"
        out = Console(file=stdout, color_system=system, highlight=False, width=width)
        err = Console(file=stderr, color_system=system, highlight=False, width=width)
        return cls(out, err, PLAIN if plain else RICH, plain)

    def show(self, renderable: RenderableType) -> None:
        """A table (or anything rich renders) on stdout."""
        if not self.plain:
            self.out.print(renderable)
            return
        with self.out.capture() as captured:
            self.out.print(renderable)
        lines = [line.rstrip() for line in captured.get().splitlines()]
        self.out.file.write("\n".join(lines).strip("\n") + "\n\n")
        self.out.file.flush()

    def note(self, text: str, style: str = "") -> None:
        """One line on stderr, printed as given (no markup)."""
        self.err.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

"""The few marks that differ between a colour terminal and plain output (pipes, NO_COLOR)."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import OverflowMethod


@dataclass(frozen=True)
class Glyphs:
    """The few non-ASCII marks, swapped for ASCII in plain output."""

    fastest: str
    times: str
    warn: str
    plus_minus: str
    box: box.Box
    cut: OverflowMethod


SIMPLE_HEAD_ASCII = box.Box(
    "    \n    \n -- \n    \n    \n    \n    \n    \n",
    ascii=True,
)
"""rich's SIMPLE_HEAD drawn with '-': a rule under the header, a blank line between sections."""

RICH = Glyphs(fastest="★", times="×", warn="⚠", plus_minus="±", box=box.SIMPLE_HEAD, cut="ellipsis")
PLAIN = Glyphs(
    fastest="*", times="x", warn="!", plus_minus="+/-", box=SIMPLE_HEAD_ASCII, cut="crop"
)

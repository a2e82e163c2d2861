"""Tables that fit the width they are shown in without cutting a cell.

rich's own tables shrink every column once a table is too wide, and cut numbers and names
with "…". A :class:`FitTable` lays itself out for the width it gets, when it is printed, and
gives way in a fixed order, each step only when the one before is not enough:

1. columns with no text in any row (a speedup without a baseline) are left out: they hide
   nothing, so nothing names them;
2. notes (the last column) go to a line of their own under their row;
3. the headers take their short forms;
4. the least useful columns are left out, lowest ``drop`` rank first, and a line under the
   table names them and where to see them;
5. names wrap after ``/``, ``-``, ``,``, ``=`` or a space, first to ``SOFT_FLOOR`` characters,
   then (``drop`` ranks from ``HARD_WRAP`` up having given way in between) to their longest
   unbreakable piece.

A table that is still too wide is printed whole: the terminal wraps its lines, nothing is
lost. The look is rich's ``SIMPLE_HEAD`` box: a rule under the header, a blank line between
sections.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from .glyphs import RICH, Glyphs

Justify = Literal["left", "right"]
Cell = Text | str

GAP = 3
"""Characters between two columns (padding, divider, padding)."""
SOFT_WRAP = 10
"""Columns of ``drop`` rank from here give way only after names wrap to ``SOFT_FLOOR``."""
HARD_WRAP = 20
"""Columns of ``drop`` rank from here give way only after names wrap as far as they can."""
SOFT_FLOOR = 16
"""Names wrap to no fewer characters than this before more columns are left out."""
NOTE_MIN = 40
"""Notes stay in their column (wrapped) only when it can be at least this wide."""
NOTE_INDENT = 2
"""A note under its row starts this far right of the first name column."""
BREAKS = re.compile(r"[^/,\-= \n]*[/,\-= ]*")
"""A piece of a name that ends where a line may break (after these characters)."""
WORDS = re.compile(r"[^ \n]* *")
"""A piece of prose (a note): lines break at spaces only."""


@dataclass(frozen=True)
class Column:
    header: str
    short: str = ""
    """The header when space is short ("" keeps ``header``)."""
    justify: Justify = "left"
    drop: int | None = None
    """Rank at which the column is left out when space is short (None: always shown)."""
    wrap: bool = False
    """A name (or text) that may wrap onto more lines."""

    def title(self, short: bool) -> str:
        return self.short if short and self.short else self.header


@dataclass
class Row:
    cells: list[Text]
    note: Text | None = None
    section: bool = False
    """A blank line before the row (a new section)."""


@dataclass(frozen=True)
class Layout:
    shown: tuple[int, ...]
    widths: tuple[int, ...]
    short: bool
    note_width: int
    """The inline note column's width; 0: notes go under their rows."""

    def total(self) -> int:
        note = self.note_width + GAP if self.note_width else 0
        return 2 + sum(self.widths) + GAP * (len(self.widths) - 1) + note


def as_text(cell: Cell) -> Text:
    """A cell as Text, never parsed as markup (messages may hold brackets)."""
    return cell.copy() if isinstance(cell, Text) else Text(cell)


# --- wrapping ---------------------------------------------------------------------------------


def _pieces(plain: str, breaks: re.Pattern[str] = BREAKS) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in breaks.finditer(plain) if m.end() > m.start()]


def longest_piece(text: Text) -> int:
    """The width a cell needs at least: its longest unbreakable piece (spaces don't count)."""
    spans = _pieces(text.plain)
    return max((cell_len(text.plain[s:e].rstrip()) for s, e in spans), default=0)


def _wrap_line(text: Text, width: int, breaks: re.Pattern[str]) -> list[Text]:
    lines: list[Text] = []
    start = end = 0
    for _, e in _pieces(text.plain, breaks):
        if cell_len(text.plain[start:e].rstrip()) <= width:
            end = e
            continue
        if end > start:
            lines.append(text[start:end])
            start = end
        while cell_len(text.plain[start:e].rstrip()) > width:  # longer than any line: fold it
            lines.append(text[start : start + width])
            start += width
        end = e
    lines.append(text[start:end])
    for line in lines:
        line.rstrip()
    return lines


def wrap(text: Text, width: int, breaks: re.Pattern[str] = BREAKS) -> list[Text]:
    """``text`` in lines of at most ``width`` cells, every character kept."""
    lines = text.split("\n")
    return [piece for line in lines for piece in _wrap_line(line, max(1, width), breaks)]


def natural(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


# --- the table --------------------------------------------------------------------------------


@dataclass
class FitTable:
    """A table that lays itself out for its width when printed (see the module's docstring)."""

    columns: Sequence[Column]
    glyphs: Glyphs = RICH
    title: Cell = ""
    caption: Cell = ""
    elsewhere: str = "widen the terminal"
    """Where the columns left out can be seen, for the line that names them."""
    note_header: str = "note"
    rows: list[Row] = field(default_factory=list)
    _section: bool = False

    def add_row(self, *cells: Cell, note: Cell | None = None) -> None:
        text_note = as_text(note) if note is not None and str(note) else None
        self.rows.append(Row([as_text(c) for c in cells], text_note, self._section))
        self._section = False

    def add_section(self) -> None:
        self._section = bool(self.rows)

    # layout

    def _width(self, index: int, short: bool) -> int:
        header = cell_len(self.columns[index].title(short))
        return max([header, *(natural(r.cells[index]) for r in self.rows)])

    def _floor(self, index: int, short: bool, soft: bool) -> int:
        column = self.columns[index]
        if not column.wrap:
            return self._width(index, short)
        pieces = [longest_piece(r.cells[index]) for r in self.rows]
        need = max([cell_len(column.title(short)), *pieces])
        return max(need, min(SOFT_FLOOR, self._width(index, short))) if soft else need

    def _notes(self) -> list[Text]:
        return [r.note for r in self.rows if r.note is not None]

    def _layout(self, shown: Sequence[int], short: bool, width: int, wrap_to: str) -> Layout:
        widths = [self._width(i, short) for i in shown]
        if wrap_to:
            floors = [self._floor(i, short, wrap_to == "soft") for i in shown]
            excess = 2 + sum(widths) + GAP * (len(widths) - 1) - width
            widths = _shrink(widths, floors, excess)
        return Layout(tuple(shown), tuple(widths), short, 0)

    def _empty(self, index: int) -> bool:
        """A column with no text in any row (a table without rows keeps its columns)."""
        return bool(self.rows) and not any(r.cells[index].plain for r in self.rows)

    def _inline(self, width: int, shown: Sequence[int]) -> Layout | None:
        """Everything on its row, notes in the last column, when that column is wide enough."""
        base = self._layout(shown, False, width, "")
        notes = self._notes()
        if not notes:
            return base
        longest = max(max(natural(n) for n in notes), cell_len(self.note_header))
        room = width - base.total() - GAP
        if room >= min(longest, NOTE_MIN):
            return Layout(base.shown, base.widths, False, min(room, longest))
        return None

    def _candidates(self, width: int) -> Iterator[Layout]:
        everything = list(range(len(self.columns)))
        full = [i for i in everything if not self._empty(i)]
        for shown in (everything, full):
            inline = self._inline(width, shown)
            if inline is not None:
                yield inline
        yield self._layout(full, False, width, "")
        shown, wrap_to = full, ""
        for step in self._steps():
            if isinstance(step, str):
                wrap_to = step
            else:
                shown = [i for i in shown if i != step]
            yield self._layout(shown, True, width, wrap_to)

    def _steps(self) -> list[int | str]:
        """Short headers (""), columns left out and wrapping, in the order they give way."""
        ranked = sorted(
            (c.drop, i)
            for i, c in enumerate(self.columns)
            if c.drop is not None and not self._empty(i)
        )
        steps: list[int | str] = [""]
        for threshold, name in ((SOFT_WRAP, "soft"), (HARD_WRAP, "hard")):
            steps += [i for rank, i in ranked if rank < threshold and i not in steps]
            steps.append(name)
        steps += [i for _, i in ranked if i not in steps]
        return steps

    def layout(self, width: int) -> Layout:
        """The first layout that fits ``width``, else the narrowest there is."""
        last = None
        for candidate in self._candidates(width):
            last = candidate
            if candidate.total() <= width:
                return candidate
        assert last is not None  # there is always the layout with every column
        return last

    def natural_width(self) -> int:
        """The width that shows everything on one line a row."""
        inline = self._inline(10**6, range(len(self.columns)))
        assert inline is not None
        return inline.total()

    # drawing

    def left_out(self, layout: Layout) -> list[str]:
        """The headers of the columns left out that had something to show."""
        return [
            c.header
            for i, c in enumerate(self.columns)
            if i not in layout.shown and not self._empty(i)
        ]

    def _indent(self, layout: Layout) -> int:
        x = 1
        for i, w in zip(layout.shown, layout.widths, strict=True):
            if self.columns[i].wrap:
                return x + NOTE_INDENT
            x += w + GAP
        return 1 + NOTE_INDENT

    def _line(self, layout: Layout, cells: Sequence[Text]) -> Text:
        widths = [*layout.widths, *([layout.note_width] if layout.note_width else [])]
        columns = [self.columns[i] for i in layout.shown]
        line = Text(" ")
        for n, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            if n:
                line.append(" " * GAP)
            right = n < len(columns) and columns[n].justify == "right"
            pad = " " * max(0, w - cell_len(cell.plain))
            line.append_text(Text(pad) + cell if right else cell + Text(pad))
        line.rstrip()
        return line

    def _row_lines(self, layout: Layout, row: Row, width: int) -> list[Text]:
        cells = [wrap(row.cells[i], w) for i, w in zip(layout.shown, layout.widths, strict=True)]
        if layout.note_width:
            cells.append(wrap(row.note, layout.note_width, WORDS) if row.note else [Text("")])
        height = max(len(c) for c in cells)
        lines = [
            self._line(layout, [c[k] if k < len(c) else Text("") for c in cells])
            for k in range(height)
        ]
        if row.note is not None and not layout.note_width:
            indent = self._indent(layout)
            room = max(NOTE_MIN // 2, width - indent)
            lines += [Text(" " * indent) + piece for piece in wrap(row.note, room, WORDS)]
        return lines

    def _head(self, layout: Layout) -> list[Text]:
        headers = [Text(self.columns[i].title(layout.short), style="bold") for i in layout.shown]
        if layout.note_width:
            headers.append(Text(self.note_header, style="bold"))
        rule = " " + self.glyphs.box.head_row_horizontal * (layout.total() - 2)
        return [self._line(layout, headers), Text(rule)]

    def lines(self, width: int) -> list[Text]:
        """The table's text at ``width`` (title, header, rows, caption, what was left out)."""
        layout = self.layout(width)
        out: list[Text] = []
        if str(self.title):
            out += [as_text(self.title), Text("")]
        body = self._head(layout)
        for row in self.rows:
            if row.section:
                body.append(Text(""))
            body += self._row_lines(layout, row, width)
        for line in body:  # never wrapped by the console: too wide, the terminal wraps it
            line.no_wrap, line.overflow = True, "ignore"
        return out + body + self._foot(layout)

    def _foot(self, layout: Layout) -> list[Text]:
        foot = [Text("")]  # rich's bottom edge in this box: a blank line
        if str(self.caption):
            foot.append(as_text(self.caption))
        hidden = self.left_out(layout)
        if hidden:
            where = f"not shown at this width: {', '.join(hidden)} ({self.elsewhere})"
            foot.append(Text(where, style="dim"))
        return foot

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(20, options.max_width), min(self.natural_width(), options.max_width))


def _shrink(widths: list[int], floors: Sequence[int], excess: int) -> list[int]:
    """Take ``excess`` cells from the widest columns that are above their floor."""
    widths = list(widths)
    while excess > 0:
        room = [w - f for w, f in zip(widths, floors, strict=True)]
        candidates = [i for i, r in enumerate(room) if r > 0]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths

"""Command-line conventions typer does not keep by itself.

- help: plain metavars (``GLOB``, ``FILE``, ``N``), never Python types (``<list[str]>``), and
  flags with no value shown; drawn with rich only on a terminal without ``NO_COLOR``, plain
  ASCII otherwise (a pipe, a file, ``TERM=dumb``);
- a flag given a value (``--overwrite true``) is one clear line, not ``true: no such file``;
- a closed stdout (``deconvbench run ... | head``) ends the command quietly with
  :data:`BROKEN_PIPE`, as other Unix tools do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typer import Exit
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

BROKEN_PIPE = 141
"""The exit code when stdout's reader went away: 128 + SIGPIPE, what a shell reports for a
tool the signal ended (``yes | head -1``), so ``set -o pipefail`` still sees it."""

BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"})
"""Words a user may put after a flag, thinking it takes a value."""


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit does not print
    another broken-pipe error (the recipe of Python's ``signal`` documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        pass


def plain_help(stream: Any = None) -> bool:
    """Help without boxes or styles: stdout is not a terminal, or NO_COLOR or TERM=dumb."""
    if os.environ.get("NO_COLOR", "") != "" or os.environ.get("TERM") == "dumb":
        return True
    try:
        return not (stream or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return True


def _metavar(option: TyperOption) -> str:
    """A fallback metavar from the option's type, for an option that names none."""
    annotation = getattr(option.type_descriptor, "annotation", None)
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    if annotation is Path:
        return "PATH"
    return "TEXT"


class _Argument(TyperArgument):
    """A positional argument shown by its metavar alone: ``FILE...``, not ``{files}...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return [name if self.required else f"[{name}]"]


class _Flag(TyperOption):
    """A flag: nothing after its name (typer would show ``<bool>``)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def plain_params(params: list[Any]) -> list[Any]:
    """Every parameter of a command with a plain metavar (flags with none)."""
    for param in params:
        if isinstance(param, TyperArgument):
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
            param.__class__ = _Argument
        elif isinstance(param, TyperOption):
            if param.is_flag and not param.count:
                param.__class__ = _Flag
            elif param.metavar is None:
                param.metavar = _metavar(param)
    return params


class _PlainHelp:
    """:func:`plain_params` and, off a terminal, plain help: for a typer command or group
    (the class this precedes in the bases)."""

    rich_markup_mode: Any

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_params(super().get_params(ctx))  # type: ignore[misc]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        mode = self.rich_markup_mode
        if plain_help():
            self.rich_markup_mode = None
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            self.rich_markup_mode = mode


class PlainCommand(_PlainHelp, TyperCommand):
    """A command with :func:`plain_params` and, off a terminal, plain help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The list of commands shows the help's first paragraph whole, wrapped to the width:
        # click derives its own by cutting at 45 characters with "...", and typer's rich
        # help keeps the docstring's line breaks.
        if self.short_help is None and self.help:
            self.short_help = " ".join(self.help.split("\n\n")[0].split())


class PlainGroup(_PlainHelp, TyperGroup):
    """The root group, with the same conventions as :class:`PlainCommand`; help or a usage
    message written into a closed pipe ends quietly with :data:`BROKEN_PIPE` (click's own
    handling would exit 1, the code of a failed row)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            quiet_stdout()
            raise Exit(BROKEN_PIPE) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            quiet_stdout()
            raise Exit(BROKEN_PIPE) from None


def _flags(command: Any) -> set[str]:
    return {
        name
        for param in getattr(command, "params", [])
        if isinstance(param, TyperOption) and param.is_flag
        for name in (*param.opts, *param.secondary_opts)
    }


def stray_flag_value(group: Any, args: Sequence[str]) -> str | None:
    """The message for a flag followed by a value such as ``true`` (``--overwrite true``),
    which typer would take as a positional argument or an unexpected one; else None."""
    flags = _flags(group)
    found = False
    for i, token in enumerate(args):
        if token == "--":
            return None
        if not found and not token.startswith("-"):
            found = True
            flags |= _flags(getattr(group, "commands", {}).get(token))
            continue
        following = args[i + 1] if i + 1 < len(args) else None
        if token in flags and following is not None and following.lower() in BOOL_WORDS:
            return (
                f"{token} is a flag and takes no value: drop {following!r} "
                f"(give {token} to turn it on, leave it out for off)"
            )
    return None


__all__ = [
    "BROKEN_PIPE",
    "PlainCommand",
    "PlainGroup",
    "plain_help",
    "quiet_stdout",
    "stray_flag_value",
]

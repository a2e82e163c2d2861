"""The typer app, the error guard and the exit codes every command shares.

Every command parses and checks its options first, so bad input exits 2 with one line on
stderr before any file is touched; the work is done by the library, and what is shown comes
from ``render``. Exit codes: 0 success, 1 a wrong/errored/crashed/timed-out row (or a
regression, for ``compare``), 2 bad input, 130 interrupted (rows so far kept).
"""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Annotated, NoReturn, ParamSpec, TypeVar

import typer

from ..errors import InputError, Unavailable
from ..results.schema import FAILED_STATUSES, RowLike
from ..version import VERSION
from .conventions import BROKEN_PIPE, PlainCommand, PlainGroup, quiet_stdout, stray_flag_value

app = typer.Typer(
    cls=PlainGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Benchmark and verify transposed-convolution (deconvolution) strategies.",
)

P = ParamSpec("P")
R = TypeVar("R")

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deconvbench {VERSION}")
        raise typer.Exit(0)


VersionOpt = Annotated[
    bool,
    typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
]


class _State:
    debug = False


def debugging() -> bool:
    """Whether ``--debug`` was given (before or after the command's name)."""
    return _State.debug


def show_tracebacks(rows: Sequence[RowLike]) -> None:
    """With ``--debug``: each failed row's traceback on stderr, under its identity."""
    if not _State.debug:
        return
    for row in rows:
        trace = getattr(row, "traceback", "")
        if trace:
            name = f"{row.get('suite')}/{row.get('case')} {row.get('implementation')}"
            sys.stderr.write(f"--- {name} {row.get('pass')}: {row.get('status')}\n{trace}")


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then the exit code."""
    line = " ".join(message.split())
    sys.stderr.write(f"deconvbench: error: {line}\n")
    raise typer.Exit(code)


def guard(command: Callable[P, R]) -> Callable[P, R]:
    """Map exceptions to exit codes; a traceback only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:  # the reader of stdout left (`| head`): end quietly
            quiet_stdout()
            raise typer.Exit(BROKEN_PIPE) from None
        except KeyboardInterrupt:
            sys.stderr.write("deconvbench: interrupted\n")
            raise typer.Exit(130) from None
        except (InputError, Unavailable) as e:
            if _State.debug:
                traceback.print_exc()
            fail(str(e), 2)
        except Exception as e:
            if _State.debug:
                traceback.print_exc()
                fail(f"{type(e).__name__}: {e}", 1)
            fail(f"{type(e).__name__}: {e} (run with --debug for the traceback)", 1)

    return wrapper


def command(name: str) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Register a command on :data:`app`, behind :func:`guard`.

    Every command also takes ``--debug`` after its name (``deconvbench run --debug ...``),
    the same flag as before it; the command itself never sees it.
    """

    def register(function: Callable[P, None]) -> Callable[P, None]:
        guarded = guard(function)

        @functools.wraps(function)
        def with_debug(*args: object, debug: bool = False, **kwargs: object) -> None:
            _State.debug = _State.debug or debug
            guarded(*args, **kwargs)  # type: ignore[arg-type]

        signature = inspect.signature(function, eval_str=True)
        flag = inspect.Parameter(
            "debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt
        )
        with_debug.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), flag]
        )
        with_debug.__annotations__ = {**function.__annotations__, "debug": DebugOpt}
        app.command(name, cls=PlainCommand)(with_debug)
        return function

    return register


@app.callback()
def _root(debug: DebugOpt = False, version: VersionOpt = False) -> None:
    """Benchmark and verify transposed-convolution strategies, forward and backward."""
    _State.debug = debug


def exit_code(rows: Sequence[RowLike]) -> int:
    """1 when any row is wrong, errored, crashed, timed out or ran out of memory."""
    return 1 if any(str(r.get("status")) in FAILED_STATUSES for r in rows) else 0


def main() -> None:
    """The console script and ``python -m deconvbench`` (through ``deconvbench.cli``, which
    registers every command first).

    Runs typer outside its standalone mode so that its own usage errors (an unknown option,
    a value that is not a number) also come out as one line and exit 2, like ours.
    """
    if not sys.argv[1:]:
        _help_only()  # no arguments: typer shows the help
        return
    stray = stray_flag_value(typer.main.get_command(app), sys.argv[1:])
    if stray is not None:
        sys.stderr.write(f"deconvbench: error: {stray}\n")
        sys.exit(2)
    try:
        result = app(standalone_mode=False)
    except BrokenPipeError:  # help or a usage message into a closed pipe
        quiet_stdout()
        sys.exit(BROKEN_PIPE)
    except Exception as e:
        # typer's usage errors follow click's interface (format_message, exit_code, ctx);
        # their classes live in a private module, so they are recognised by that interface.
        format_message = getattr(e, "format_message", None)
        if not callable(format_message) or not isinstance(getattr(e, "exit_code", None), int):
            raise
        ctx = getattr(e, "ctx", None)
        command = getattr(ctx, "command_path", None) or "deconvbench"
        sys.stderr.write(f"deconvbench: error: {format_message()} (see `{command} --help`)\n")
        sys.exit(e.exit_code)  # type: ignore[attr-defined]
    sys.exit(result if isinstance(result, int) else 0)


def _help_only() -> None:
    try:
        app()
    except BrokenPipeError:
        quiet_stdout()
        sys.exit(BROKEN_PIPE)

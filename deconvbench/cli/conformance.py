"""``deconvbench conformance``: the project's conformance suite, for installed strategies.

The problems and checks are ``deconvbench/conformance/`` (the project's own tests draw from
the same module); this command selects the strategies, runs the suite and prints each
failure with the minimal ``--case`` that reproduces it under ``deconvbench verify``.
Nothing is written to disk.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..conformance.engine import Failure, Report, run_suite
from ..errors import InputError, Unavailable
from ..render import Screen
from .app import command
from .options import plural, select_strategies

DEFAULT_EXAMPLES = 30


def _as_glob(message: str) -> str:
    """``select_strategies``' words for ``--impl`` as this command's argument."""
    return message.replace("--impl ", "GLOB ", 1)


def _summary(report: Report) -> str:
    shape = (
        f"{plural(report.problems, 'problem')} × {plural(len(report.passes), 'pass', 'passes')}"
        f" × {plural(len(report.dtypes), 'dtype')} ({', '.join(report.dtypes)})"
    )
    verdict = "all correct" if report.ok else f"{report.failed} FAILED"
    declined = f", {report.declined} declined" if report.declined else ""
    return f"{report.strategy}: {shape}: {report.checked} checked{declined}, {verdict}"


def _failure_lines(failure: Failure) -> list[str]:
    shrunk = "" if failure.minimal == failure.original else ", shrunk"
    return [
        f"FAIL {failure.strategy} {failure.pass_} {failure.dtype} ({failure.label}{shrunk})",
        f"  {failure.message}",
        f"  --case {failure.case}",
        f"  reproduce: {failure.reproduce()}",
    ]


@command("conformance")
def conformance(
    globs: Annotated[
        list[str],
        typer.Argument(
            metavar="GLOB...",
            help="Strategies to check, as `run --impl` takes them: 'mybackend/*', '*/subpixel'.",
            show_default=False,
        ),
    ],
    examples: Annotated[
        int,
        typer.Option(
            "--examples",
            "-n",
            metavar="N",
            help="Random problems per strategy, besides the edge cases.",
        ),
    ] = DEFAULT_EXAMPLES,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the random problems.")
    ] = 0,
) -> None:
    """Check strategies against the float64 reference on the conformance suite: the edge
    cases and N random problems, forward and backward, in every dtype each declares.

    Each failure is shrunk to a minimal --case that `deconvbench verify` reproduces.
    Nothing is written to disk. Exit codes: 0 all correct, 1 a failure, 2 bad input.
    """
    if examples < 0:
        raise InputError(f"--examples: must be >= 0, got {examples}")
    screen = Screen.for_streams()
    try:
        strategies = select_strategies(globs, None, lambda text: screen.note(_as_glob(text)))
    except (InputError, Unavailable) as e:
        raise type(e)(_as_glob(str(e))) from None

    def say(line: str) -> None:
        screen.out.print(line, markup=False, highlight=False, soft_wrap=True)

    reports = []
    for strategy in strategies:
        screen.note(f"{strategy.name}: checking ...")
        report = run_suite(strategy, examples, seed)
        for failure in report.failures:
            for line in _failure_lines(failure):
                say(line)
        say(_summary(report))
        reports.append(report)
    bad = [r.strategy for r in reports if not r.ok]
    screen.note(
        f"conformance: {plural(len(reports), 'strategy', 'strategies')} checked, "
        + (f"{len(bad)} failed ({', '.join(bad)})" if bad else "all correct")
        + (f" (--seed {seed})" if seed else "")
    )
    raise typer.Exit(1 if bad else 0)

"""``deconvbench plan``: the fastest verified strategy per layer shape, as a plan file for
``deconvbench.nn``; ``deconvbench plan show`` prints one.

The choice is made in ``analysis/plan.py``, the file is ``results/plan_file.py``, the table
``render/plan.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..analysis.compare import check_alpha
from ..analysis.plan import PlanSource, make_plan
from ..env.fingerprint import current, differences
from ..errors import InputError
from ..render import Screen
from ..render.plan import machine_lines, plan_table
from ..results.plan_file import read_plan, write_plan
from ..results.reader import read_results
from ..results.sidecar import read_sidecar
from ..version import VERSION
from .app import command
from .options import parse_threshold

SHOW = "show"


def _show(paths: list[Path]) -> None:
    if len(paths) != 1:
        raise InputError("plan show: expected one plan file (deconvbench plan show plan.json)")
    plan = read_plan(paths[0])
    import torch  # the drop-in layer compares with torch's thread count, so does this

    here = current(torch.get_num_threads())
    screen = Screen.for_streams()
    screen.show(plan_table(plan, screen.glyphs))
    screen.show(machine_lines(plan, differences(plan.fingerprint, here)))


def _sources(paths: list[Path]) -> list[PlanSource]:
    sources = []
    for path in paths:
        frame = read_results(path)
        sources.append(PlanSource(str(path), frame, read_sidecar(path)))
    return sources


@command("plan")
def plan_(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            help="Results CSVs (with their sidecars) of one machine; or `show PLAN.json`.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="The plan file to write.")
    ] = Path("plan.json"),
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            metavar="[STAT:]AMOUNT",
            help="Smallest speed-up over native that counts: 5%, 0.05, or median:5%, min:3%.",
        ),
    ] = "5%",
    alpha: Annotated[
        float,
        typer.Option("--alpha", metavar="LEVEL", help="Significance level of compare's test."),
    ] = 0.05,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing plan file.")
    ] = False,
    impl: Annotated[
        list[str] | None,
        typer.Option(
            "--impl",
            "-i",
            metavar="GLOB",
            help="Only strategies matching this glob may replace native, e.g. 'torch-*' "
            "(repeatable; default: every measured strategy).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            "-x",
            metavar="GLOB",
            help="Strategies matching this glob are never chosen (repeatable).",
        ),
    ] = None,
) -> None:
    """Choose, per (problem, device, pass), the fastest verified strategy that beats torch's
    native one beyond the noise (compare's test); `plan show PLAN.json` prints a plan and
    whether this machine matches it.

    Exit codes: 0 written (or shown), 2 bad input (nothing written).
    """
    if files and str(files[0]) == SHOW:
        _show(files[1:])
        return
    rule = parse_threshold(threshold)
    check_alpha(alpha)
    if output.is_dir():
        raise InputError(f"--output {output}: is a directory, not a plan file")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: exists; use --overwrite to replace it")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    planned = make_plan(
        _sources(files), rule, alpha, created, VERSION, tuple(impl or ()), tuple(exclude or ())
    )
    try:
        write_plan(planned.plan, output)
    except OSError as e:
        raise InputError(f"--output {output}: {e.strerror or e}") from None
    screen = Screen.for_streams()
    screen.show(plan_table(planned.plan, screen.glyphs))
    for skipped in planned.skipped:
        screen.note(f"no entry for {skipped.problem} {skipped.pass_}: {skipped.reason}")
    foreign = sorted(
        {e.strategy for e in planned.plan.entries
         if e.replaces_native and not e.strategy.startswith("torch-")}
    )  # fmt: skip
    if foreign:
        screen.note(
            f"{', '.join(foreign)}: {'runs' if len(foreign) == 1 else 'run'} on a thread pool "
            "of its own, which competes with torch's inside a model; measure the model, or "
            "plan with --impl 'torch-*' (docs/nn.md, thread pools)"
        )
    chosen = sum(e.replaces_native for e in planned.plan.entries)
    screen.note(
        f"plan: {chosen} of {len(planned.plan.entries)} (problem, pass) entries run a strategy "
        f"other than native → {output}"
    )

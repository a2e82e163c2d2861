"""``deconvbench compare``: the CI gate over two results files, or speedups inside one.

The verdicts are computed in ``analysis/compare.py`` and rendered in ``render/compare.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType

from ..analysis import compare, speedups
from ..errors import InputError
from ..render import Screen
from ..render import compare as compare_out
from ..results.reader import read_results
from ..results.sidecar import read_sidecar
from .app import command
from .options import parse_threshold, plural


def _emit(screen: Screen, output: RenderableType) -> None:
    """Text formats go to stdout as they are; a table through the screen (colour or plain)."""
    if isinstance(output, str):
        sys.stdout.write(output)
        sys.stdout.flush()
    else:
        screen.show(output)


@command("compare")
def compare_(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            help="BASELINE.csv CANDIDATE.csv, or one RESULTS.csv with --baseline-impl.",
            show_default=False,
        ),
    ],
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            metavar="[STAT:]AMOUNT",
            help="Smallest slow-down that fails: 5%, 0.05, or with a statistic: "
            "median:5%, min:3%, mean:5%.",
        ),
    ] = "5%",
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            metavar="LEVEL",
            help="Significance level of the two-sided test: a t-test over the rounds of rows "
            "measured in rounds (the default), a Mann-Whitney U test over the samples "
            "otherwise (docs/ci.md).",
        ),
    ] = 0.05,
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="table, markdown, csv or json.")
    ] = "table",
    normalize: Annotated[
        str,
        typer.Option(
            "--normalize",
            metavar="HOW",
            help="none, or peak: scale by each run's calibrated GEMM rate (the sidecars); "
            "see docs/ci.md for when that is sound.",
        ),
    ] = "none",
    baseline_impl: Annotated[
        str | None,
        typer.Option(
            "--baseline-impl",
            metavar="STRATEGY",
            help="With one RESULTS.csv: every strategy's speedup over this one, per case.",
        ),
    ] = None,
    no_fail: Annotated[
        bool, typer.Option("--no-fail", help="Exit 0 even when rows regressed or failed.")
    ] = False,
    fail_on_missing: Annotated[
        bool,
        typer.Option(
            "--fail-on-missing",
            help="A baseline row missing from the candidate fails the gate too.",
        ),
    ] = False,
) -> None:
    """Compare two results files (the CI gate), or the strategies inside one run.

    Exit codes: 0 no regression, 1 a row regressed or failed (or, with --fail-on-missing,
    is missing) unless --no-fail, 2 bad input.
    """
    compare_out.check_format(format)
    if baseline_impl is not None:
        if len(files) != 1:
            raise InputError("--baseline-impl: give exactly one RESULTS.csv")
        table = speedups.speedups(read_results(files[0]), baseline_impl)
        screen = Screen.for_streams()
        _emit(screen, compare_out.export(table, format, screen.glyphs))
        return
    if len(files) != 2:
        raise InputError(
            "compare: expected BASELINE.csv and CANDIDATE.csv (or one file with "
            f"--baseline-impl), got {plural(len(files), 'file')}"
        )
    limit = parse_threshold(threshold)
    scale = compare.check_normalize(normalize)
    compare.check_alpha(alpha)
    baseline, candidate = read_results(files[0]), read_results(files[1])
    peaks: list[dict[str, float] | None] = [None, None]
    if scale == "peak":
        peaks = [compare.peaks_from_sidecar(read_sidecar(p), str(p)) for p in files]
    result = compare.compare_frames(
        baseline,
        candidate,
        limit,
        alpha,
        scale,
        peaks[0],
        peaks[1],
        names=(str(files[0]), str(files[1])),
        fail_on_missing=fail_on_missing,
    )
    screen = Screen.for_streams()
    _emit(screen, compare_out.export(result, format, screen.glyphs))
    missing = result.counts["missing"]
    if missing:
        consequence = (
            "they fail the gate (--fail-on-missing)"
            if fail_on_missing
            else "not judged; --fail-on-missing fails the gate on them"
        )
        screen.note(
            f"warning: {missing} of {plural(len(baseline), 'baseline row')} "
            f"{'is' if missing == 1 else 'are'} missing from {files[1]} ({consequence})",
            "yellow",
        )
    if result.gate_failed and not no_fail:
        raise typer.Exit(1)

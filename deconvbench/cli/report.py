"""``deconvbench report``: best strategy per case, speedups, unstable rows, and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..analysis import report
from ..analysis.model_totals import model_totals
from ..errors import InputError
from ..render import Screen
from ..render import report as tables
from ..render.model_table import model_total_table
from ..results.reader import read_results
from ..results.sidecar import read_sidecar, sidecar_path
from .app import command


def _peaks(path: Path) -> dict[str, float]:
    """The roofline's roofs by label: the measured and the theoretical peak of each pair
    (an older sidecar has only ``peaks``, the measured GEMM rate)."""
    if not sidecar_path(path).exists():
        return {}
    facts = read_sidecar(path)
    measured = facts.get("peaks_measured", facts.get("peaks"))
    roofs: dict[str, float] = {}
    if isinstance(measured, dict):
        roofs.update({f"measured peak {k}": float(v) for k, v in measured.items()})
    theoretical = facts.get("peaks_theoretical")
    for key, value in theoretical.items() if isinstance(theoretical, dict) else ():
        rate = value.get("gflops") if isinstance(value, dict) else None
        if isinstance(rate, int | float):
            roofs[f"theoretical peak {key}"] = float(rate)
    return roofs


def _plot_folder(plot: Path) -> None:
    """Create the --plot folder; a path under a regular file, or an unwritable one, is bad input."""
    try:
        plot.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--plot {plot}: {e.strerror or e}") from None


@command("report")
def report_(
    results: Annotated[
        Path, typer.Argument(metavar="FILE", help="A results CSV.", show_default=False)
    ],
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="DIR", help="Write PNG plots into this folder.")
    ] = None,
    baseline_impl: Annotated[
        str | None,
        typer.Option(
            "--baseline-impl",
            metavar="STRATEGY",
            help="Speedups over this (default: native per device).",
        ),
    ] = None,
) -> None:
    """Best strategy per case, a speedup matrix, % of peak, unstable rows; --plot for PNGs."""
    frame = read_results(results)
    best = report.best_per_case(frame)
    if best.empty:
        raise InputError(f"{results}: no ok rows to report on")
    matrix = report.speedup_matrix(frame, baseline_impl)
    if plot is not None:
        _plot_folder(plot)  # checked before anything is shown, like every other input
    screen = Screen.for_streams()
    screen.show(tables.best_table(best, screen.glyphs))
    screen.show(tables.speedup_table(matrix, screen.glyphs))
    records = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    for totals in model_totals(records, baseline_impl):
        screen.show(model_total_table(totals, screen.glyphs))
    unstable = report.unstable_rows(frame)
    if not unstable.empty:
        screen.show(tables.unstable_table(unstable, screen.glyphs))
    if plot is not None:
        from ..render import plots

        written = [
            *plots.time_plots(frame, plot, baseline_impl),
            plots.heatmap(matrix, plot, baseline_impl),
            plots.roofline_plot(frame, _peaks(results), plot),
        ]
        screen.note(f"plots: {', '.join(str(p) for p in written)}")

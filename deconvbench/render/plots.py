"""PNG plots of ``deconvbench report --plot DIR`` (the ``plot`` extra: matplotlib).

- ``time-vs-<param>.png``: median time against a parameter a suite sweeps, one panel per
  group of rows that differ only in it (``analysis.report.sweep_panels``), one line per
  strategy (the fastest few and the baseline), log time; none for a suite that sweeps nothing;
- ``speedup-heatmap.png``: strategy × case-pass speedups over the baseline, fastest strategy
  on top, each ratio written in its cell (log2 colours centred on 1);
- ``roofline.png``: arithmetic intensity against GFLOP/s, one colour per strategy, one marker
  per pass, with the measured and the theoretical peak as roofs (no memory roof).

Every plot gives a strategy the same colour.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import report
from ..errors import InputError

DPI = 120
MARKERS = {"forward": "o", "backward": "^"}


def _pyplot() -> Any:  # matplotlib.pyplot, imported only when plotting
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'deconvbench[plot]'") from None
    return plt


def _colours(plt: Any, names: Iterable[str]) -> dict[str, Any]:
    """One colour per strategy, by name: tab20's ten dark shades, then its ten light ones."""
    cmap = plt.get_cmap("tab20")
    return {n: cmap(2 * (i % 10) + (i // 10) % 2) for i, n in enumerate(sorted(set(names)))}


def _line_markers(names: Iterable[str]) -> dict[str, str]:
    """A marker per strategy that tells apart the dark and light shade of one colour."""
    return {n: "osD^"[(i // 10) % 4] for i, n in enumerate(sorted(set(names)))}


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


# --- time against a swept parameter ---------------------------------------------------------


def _fixed_text(pairs: Iterable[tuple[str, str]]) -> str:
    """``batch 8 · input 16x16 · float32 · forward``: values alone where the value says it."""
    words = []
    for column, value in pairs:
        if column in ("dtype", "pass", "device"):
            words.append(value)
        elif column == "threads":
            words.append(f"{value} threads")
        else:
            words.append(f"{column}\u00a0{value}")  # no line break inside a pair
    return " · ".join(words)


def _plain(value: float, _: object = None) -> str:
    """A tick of a log axis as a plain number: ``0.4``, ``6``, ``100``."""
    return f"{value:.3g}"


def _plain_minor(value: float, _: object = None) -> str:
    """Minor ticks of a log axis carry labels only at 2 and 5 of a decade (where matplotlib
    labels them at all: an axis spanning less than a decade or so)."""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
    return _plain(value) if mantissa in (2, 5) else ""


def time_plots(results: pd.DataFrame, directory: Path, baseline: str | None = None) -> list[Path]:
    plt = _pyplot()
    panels = report.sweep_panels(results, baseline)
    names = report.ok_rows(results)["implementation"]
    markers = _line_markers(names)
    styles = {n: (c, markers[n]) for n, c in _colours(plt, names).items()}
    return [
        _time_figure(plt, axis, [p for p in panels if p.axis == axis], styles, directory)
        for axis in dict.fromkeys(p.axis for p in panels)
    ]


def _time_figure(
    plt: Any,
    axis: str,
    panels: list[report.Panel],
    styles: dict[str, tuple[Any, str]],
    directory: Path,
) -> Path:
    from matplotlib.ticker import FuncFormatter

    common = [kv for kv in panels[0].fixed if all(kv in p.fixed for p in panels)]
    passes = {dict(p.fixed).get("pass") for p in panels}
    ncols = len(passes) if 1 < len(passes) <= 3 else min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows + 0.8),
                             squeeze=False, layout="constrained")  # fmt: skip
    handles: dict[str, Any] = {}
    scores: dict[str, list[float]] = {}
    for ax, panel in zip(axes.flat, panels, strict=False):
        for line in panel.lines:
            is_base = line.implementation == panel.baseline
            colour, marker = styles[line.implementation]
            (handle,) = ax.plot(
                [report.axis_position(v) for v, _ in line.points], [t for _, t in line.points],
                marker=marker, markersize=4, color=colour,
                linestyle="--" if is_base else "-", linewidth=2.2 if is_base else 1.4,
            )  # fmt: skip
            handles.setdefault(line.implementation, handle)
            scores.setdefault(line.implementation, []).append(math.log(line.score))
        positions = [report.axis_position(v) for v in panel.values]
        if min(positions) > 0 and max(positions) / min(positions) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(positions, list(panel.values), fontsize=8)
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax.yaxis.set_minor_formatter(FuncFormatter(_plain_minor))
        ax.tick_params(axis="y", which="both", labelsize=8)
        ax.grid(True, which="major", alpha=0.3)
        own = [kv for kv in panel.fixed if kv not in common]
        left_out = f" (+{panel.left_out} slower not drawn)" if panel.left_out else ""
        ax.set_title((_fixed_text(own) or "all rows") + left_out, fontsize=9)
        ax.set_xlabel(axis, fontsize=9)
        ax.set_ylabel("median ms", fontsize=9)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    order = sorted(handles, key=lambda n: (sum(scores[n]) / len(scores[n]), n))
    baselines = {p.baseline for p in panels}
    labels = [n + (" (baseline, dashed)" if n in baselines else "") for n in order]
    fig.legend([handles[n] for n in order], labels, loc="outside lower center",
               ncol=min(4, len(order)), fontsize=8, frameon=False)  # fmt: skip
    title = f"median time vs {axis}, the other parameters fixed: {_fixed_text(common)}"
    fig.suptitle("\n".join(textwrap.wrap(title, 55 * ncols)), fontsize=10)
    return _save(plt, fig, directory / f"time-vs-{axis}.png")


# --- speedup heat map -----------------------------------------------------------------------


def _ratio_text(value: float) -> str:
    """``1.57``, ``12.3``, ``0.057``, ``0.040``: two or three significant digits."""
    if value >= 99.5:
        return f"{value:.0f}"
    if value >= 9.995:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:#.2g}"


def heatmap(matrix: pd.DataFrame, directory: Path, baseline: str | None = None) -> Path:
    plt = _pyplot()
    import numpy as np
    from matplotlib.colors import Normalize

    ordered = report.by_speed(matrix)
    ratios = ordered.to_numpy(dtype=float)
    values = np.log2(ratios)
    rows, cols = values.shape
    cmap, norm = plt.get_cmap("RdBu"), Normalize(vmin=-4, vmax=4)
    width = max(5.0, 2.6 + 0.62 * cols)
    fig, ax = plt.subplots(figsize=(width, max(2.6, 1.4 + 0.32 * rows)), layout="constrained")
    over = baseline or "the native strategy"
    if ordered.empty:
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"no speedups: no case measured {over}", ha="center", va="center")
        return _save(plt, fig, directory / "speedup-heatmap.png")
    with warnings.catch_warnings():  # one case or one strategy: matplotlib warns, harmlessly
        warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
        image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    for (r, c), ratio in np.ndenumerate(ratios):
        if math.isfinite(ratio) and ratio > 0:  # an empty cell stays blank
            red, green, blue, _ = cmap(norm(math.log2(ratio)))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(c, r, _ratio_text(ratio), ha="center", va="center", fontsize=7.5,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(cols), [str(c) for c in ordered.columns], rotation=45, ha="right",
                  rotation_mode="anchor", fontsize=8)  # fmt: skip
    ax.set_yticks(range(rows), [str(i) for i in ordered.index], fontsize=8)
    ax.tick_params(length=0)
    ax.set_title(f"speedup over {over} (>1: faster), fastest on top", fontsize=9)
    ticks = [-4, -2, 0, 2, 4]
    bar = fig.colorbar(image, ax=ax, ticks=ticks)
    bar.ax.set_yticklabels(["1/16", "1/4", "1", "4", "16"], fontsize=8)
    bar.set_label("speedup (log2 scale)", fontsize=8)
    return _save(plt, fig, directory / "speedup-heatmap.png")


# --- roofline -------------------------------------------------------------------------------


def _pass(point: report.RooflinePoint) -> str:
    return point.label.rsplit(" ", 1)[-1]  # the label is "<case> <pass>"


def roofline_plot(results: pd.DataFrame, peaks: dict[str, float], directory: Path) -> Path:
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    points = report.roofline(results)
    colours = _colours(plt, (p.implementation for p in points))
    passes = list(dict.fromkeys(_pass(p) for p in points))
    markers = {p: MARKERS.get(p, "s") for p in passes}
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for impl, colour in colours.items():
        for pass_, marker in markers.items():
            mine = [p for p in points if p.implementation == impl and _pass(p) == pass_]
            ax.scatter([p.intensity for p in mine], [p.gflops for p in mine], s=22, alpha=0.85,
                       color=colour, marker=marker, linewidths=0)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(_plain))
        axis.set_minor_formatter(FuncFormatter(_plain_minor))
    # One roof per peak (labelled "measured peak cpu/float32", "theoretical peak ..."); after
    # the scales, so the label sits inside the axes.
    for name, peak in peaks.items():
        ax.axhline(peak, linestyle="--", linewidth=1, color="grey")
        ax.annotate(f"{name}: {peak:.0f} GFLOP/s", (0.01, peak),
                    xycoords=("axes fraction", "data"), fontsize=7, va="bottom")  # fmt: skip
    ax.set_xlabel("arithmetic intensity (useful FLOP / byte of minimum traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.grid(True, which="major", alpha=0.3)
    handles = [Line2D([], [], color=c, marker="s", linestyle="", markersize=7)
               for c in colours.values()]  # fmt: skip
    fig.legend(handles, list(colours), title="strategy", fontsize=8, title_fontsize=8,
               loc="outside right upper", frameon=False)  # fmt: skip
    if len(markers) > 1:
        shapes = [Line2D([], [], color="grey", marker=m, linestyle="", markersize=7)
                  for m in markers.values()]  # fmt: skip
        fig.legend(shapes, list(markers), title="pass", fontsize=8, title_fontsize=8,
                   loc="outside right lower", frameon=False)  # fmt: skip
    ax.set_title("one point per strategy, case and pass", fontsize=9)
    return _save(plt, fig, directory / "roofline.png")

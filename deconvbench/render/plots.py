"""PNG plots of ``deconvbench report --plot DIR`` (the ``plot`` extra: matplotlib).

- ``time-vs-<param>.png``: median time against each swept parameter, one line per
  strategy and pass, log scale;
- ``speedup-heatmap.png``: strategy × case-pass speedups over the native strategy (log2 colours);
- ``roofline.png``: arithmetic intensity against GFLOP/s, with the calibrated peak.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import report
from ..errors import InputError


def _pyplot() -> Any:  # matplotlib.pyplot, imported only when plotting
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'deconvbench[plot]'") from None
    return plt


def _size(value: object) -> float:
    """A parameter's value on an axis: the product of a tuple (``4x4`` → 16)."""
    return float(math.prod(int(v) for v in str(value).split("x")))


def time_plots(results: pd.DataFrame, directory: Path) -> list[Path]:
    plt = _pyplot()
    ok = report.ok_rows(results)
    written = []
    for param in report.swept_parameters(results):
        fig, ax = plt.subplots(figsize=(8, 5))
        for (impl, pass_), group in ok.groupby(["implementation", "pass"]):
            xs = group[param].map(_size)
            order = xs.argsort()
            ax.plot(xs.iloc[order], group["median_ms"].iloc[order], marker="o",
                    label=f"{impl} {pass_}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(param + (" (product of dims)" if param == "input" else ""))
        ax.set_ylabel("median ms")
        ax.legend(fontsize=6, ncol=2)
        path = directory / f"time-vs-{param}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def heatmap(matrix: pd.DataFrame, directory: Path) -> Path:
    plt = _pyplot()
    import numpy as np

    values = np.log2(matrix.to_numpy(dtype=float))
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(matrix.columns), 1 + 0.35 * len(matrix)))
    with warnings.catch_warnings():  # one case or one strategy: matplotlib warns, harmlessly
        warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
        image = ax.imshow(values, cmap="RdBu", vmin=-4, vmax=4, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns], rotation=90,
                  fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(matrix.index)), [str(i) for i in matrix.index], fontsize=7)
    fig.colorbar(image, ax=ax, label="log2 speedup over native")
    path = directory / "speedup-heatmap.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def roofline_plot(results: pd.DataFrame, peaks: dict[str, float], directory: Path) -> Path:
    plt = _pyplot()
    points = report.roofline(results)
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = plt.get_cmap("tab20")
    for i, impl in enumerate(sorted({p.implementation for p in points})):
        mine = [p for p in points if p.implementation == impl]
        ax.scatter([p.intensity for p in mine], [p.gflops for p in mine], s=14, label=impl,
                   color=colours(i % 20), marker="osD^v<>"[i % 7])  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    for name, peak in peaks.items():  # after the scales, so the label sits inside the axes
        ax.axhline(peak, linestyle="--", linewidth=1, color="grey")
        ax.annotate(f"measured GEMM peak {name}: {peak:.0f} GFLOP/s", (0.01, peak),
                    xycoords=("axes fraction", "data"), fontsize=7, va="bottom")  # fmt: skip
    ax.set_xlabel("arithmetic intensity (useful FLOP / byte of minimum traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.legend(fontsize=6, ncol=2)
    path = directory / "roofline.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path

"""The command line's options, as typer annotations (the CLI's parameters, in one place).

Shared by ``run`` and ``verify`` (suite, case, impl, pass, dtype, threads, seed, memory)
and ``run``'s own. Parsing and checking what they hold is ``cli_options``'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import footprint
from .runner import MAX_ROUNDS

# --- options shared by run and verify ---------------------------------------------------------

SuiteOpt = Annotated[
    list[str] | None,
    typer.Option("--suite", "-s", help="Suite name or path to a .toml (repeatable)."),
]
CaseOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--case",
        "-c",
        help="One problem as key=value pairs, e.g. "
        "'batch=16,in_channels=512,out_channels=256,input=4x4,kernel=4,stride=2,padding=1'.",
    ),
]
ImplOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--impl",
        "-i",
        help="Strategy glob, e.g. 'numpy/*' or '*/subpixel' "
        "(repeatable; default: every strategy available here).",
    ),
]
PassOpt = Annotated[
    str | None,
    typer.Option("--pass", help="forward, backward or all (default: each case's own passes)."),
]
DtypeOpt = Annotated[str | None, typer.Option("--dtype", help="Override every case's dtype.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads", "-t", min=1, help="Threads for torch, BLAS and numba (default: all cores)."
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the generated inputs.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
MaxMemoryOpt = Annotated[
    str,
    typer.Option(
        "--max-memory",
        help="Skip a measurement whose estimated memory exceeds this: 8GB, 512MiB, 75% "
        "(of the RAM, or for CUDA of the GPU memory, available at the start), or none.",
    ),
]
DEFAULT_MAX_MEMORY = f"{footprint.DEFAULT_SHARE:.0%}"
DEFAULT_ROUNDS = 3
"""Rounds of ``run``: enough for compare to see the drift between rounds (rounds.py)."""
FormatOpt = Annotated[str, typer.Option("--format", help="table or json")]


# --- run's own -------------------------------------------------------------------------------

OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Results CSV (default: "
        "results/deconvbench-<timestamp>.csv); run facts go to <output>.json.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue an existing output, skipping its rows.")
]
BudgetOpt = Annotated[
    float, typer.Option("--budget", help="At most this many seconds sampling a measurement.")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision", help="Target half-width of the median's 95% CI, relative: 2% or 0.02."
    ),
]
MinSamplesOpt = Annotated[int, typer.Option("--min-samples", min=1, help="Fewest samples.")]
RoundsOpt = Annotated[
    int,
    typer.Option(
        "--rounds",
        min=1,
        max=MAX_ROUNDS,
        help="Measure every row this many times, each in its own pass over the run, so "
        "the results (and compare) see the machine's drift; the budget is shared.",
    ),
]
BaselineImplOpt = Annotated[
    str | None,
    typer.Option(
        "--baseline-impl",
        help="Speedups against this strategy, added to the run "
        "(default: the native strategy on each device).",
    ),
]
L2FlushOpt = Annotated[
    bool, typer.Option("--l2-flush", help="Flush the GPU's L2 cache between samples.")
]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", help="Run part I of N (whole cases, round-robin): 2/8."),
]
IsolateOpt = Annotated[
    bool, typer.Option("--isolate", help="Each measurement in a worker process.")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="With --isolate: kill a worker after this (s).")
]

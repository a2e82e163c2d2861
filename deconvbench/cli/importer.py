"""``deconvbench import``: a model's transposed convolutions as a suite file."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..importers.read import parse_shape, read_model
from ..importers.suite_text import group, plural, suite_text
from ..render import Screen
from ..results.sidecar import atomic_write
from .app import command


@command("import")
def import_(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="module:attr (a torch nn.Module class or factory), a .onnx or .keras file, "
            "or a oneDNN verbose log / benchdnn batch file.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the suite here (default: print it)."
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="SHAPE",
            help="An input's shape for a torch module: 16x100x1x1 (repeat for several inputs).",
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            metavar="N",
            help="The batch of a model whose batch is dynamic (default 1, said in the suite).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="The suite's name (default: the model's)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output.")
    ] = False,
) -> None:
    """Read a model's transposed convolutions into a suite: one case per distinct problem.

    Exit codes: 0 imported, 2 bad input (nothing written).
    """
    shapes = [parse_shape(text) for text in inputs or []]
    if output is not None:
        if output.is_dir():
            raise InputError(f"--output {output}: is a directory, not a suite file")
        if output.exists() and not overwrite:
            raise InputError(f"{output}: exists; use --overwrite to replace it")
    started = time.perf_counter()
    model = read_model(source, shapes, batch, name)
    text = suite_text(model, shlex.join(["deconvbench", *sys.argv[1:]]))
    screen = Screen.for_streams()
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(output, lambda f: f.write(text))
        except OSError as e:
            raise InputError(f"--output {output}: {e.strerror or e}") from None
    layers = sum(layer.count for layer in model.problems)
    screen.note(
        f"imported {plural(layers, 'transposed convolution')} "
        f"({plural(len(group(model.layers)), 'distinct problem')}) from {source} in "
        f"{time.perf_counter() - started:.2f} s" + (f" → {output}" if output is not None else "")
    )
    for note in model.notes:
        screen.note(note, "dim")
    for layer in model.refused:
        screen.note(f"left out {layer.name}: {layer.refused}", "yellow")

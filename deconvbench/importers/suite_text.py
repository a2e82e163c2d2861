"""An imported model as a suite file: one case per distinct problem, with its count and layers.

The text is a normal suite (docs/suite-format.md) that ``run --suite`` reads back to the same
problems: ``count`` says how many layers (or a log's executions) have the case's problem and
``layers`` names them. A case whose output window is shifted against the source's says so in
a comment above it; layers with no torch problem are listed, with the reason, at the top.
"""

from __future__ import annotations

import json
import re

from ..problem import PASSES, Pass, Problem
from .model import ImportedLayer, ImportedModel

SHIFTED = (
    "# its output window is shifted by one against the source's, which pads asymmetrically:\n"
    "# the same shapes and the same work, one row or column apart"
)


def _toml(value: object) -> str:
    """A value as TOML: strings quoted (JSON's escapes are TOML's), lists bracketed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _per_dim(values: tuple[int, ...]) -> object:
    """A per-dimension parameter: a scalar when every dimension agrees."""
    return values[0] if len(set(values)) == 1 else list(values)


def _case_name(layer: str, taken: set[str]) -> str:
    """A case name from a layer's name: safe characters, unique in the suite."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", layer).strip("_.-") or "layer"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _case_lines(name: str, problem: Problem, passes: tuple[Pass, ...], count: int,
                layers: list[str]) -> list[str]:  # fmt: skip
    values: dict[str, object] = {
        "name": name,
        "batch": problem.batch,
        "in_channels": problem.in_channels,
        "out_channels": problem.out_channels,
        "input": list(problem.input),
        "kernel": _per_dim(problem.kernel),
        "stride": _per_dim(problem.stride),
        "padding": _per_dim(problem.padding),
        "output_padding": _per_dim(problem.output_padding),
        "dilation": _per_dim(problem.dilation),
        "groups": problem.groups,
        "bias": problem.bias,
        "dtype": problem.dtype,
    }
    if passes != PASSES:
        values["passes"] = list(passes)
    values.update(count=count, layers=layers)
    return ["[[case]]", *(f"{k} = {_toml(v)}" for k, v in values.items())]


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def group(layers: tuple[ImportedLayer, ...]) -> list[list[ImportedLayer]]:
    """Layers with one problem, passes and shift together, in order of first appearance."""
    groups: dict[tuple[object, ...], list[ImportedLayer]] = {}
    for layer in layers:
        if layer.problem is not None:
            key = (layer.problem, layer.passes, layer.shifted)
            groups.setdefault(key, []).append(layer)
    return list(groups.values())


def suite_text(model: ImportedModel, command: str) -> str:
    """The suite file of an imported model; ``command`` is how it was made."""
    groups = group(model.layers)
    layers = sum(layer.count for layer in model.problems)
    what = "execution" if any(layer.count > 1 for layer in model.layers) else "layer"
    description = (
        f"{model.name}: {plural(layers, f'transposed-convolution {what}')} "
        f"({plural(len(groups), 'distinct problem')}) imported from {model.source} by "
        f"`{command}`"
    )
    if model.notes:
        description += "; " + "; ".join(model.notes)
    lines = [f"name = {_toml(model.name)}", f"description = {_toml(description)}"]
    for layer in model.refused:
        lines.append(f"# left out: {layer.name}: {layer.refused}")
    taken: set[str] = set()
    for members in groups:
        first = members[0]
        assert first.problem is not None  # group() keeps only layers with a problem
        lines.append("")
        if first.shifted:
            lines.append(SHIFTED)
        lines += _case_lines(
            _case_name(first.name, taken), first.problem, first.passes,
            sum(m.count for m in members), [m.name for m in members],
        )  # fmt: skip
    return "\n".join(lines) + "\n"

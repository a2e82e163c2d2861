"""What an importer finds in a model: its transposed convolutions, as problems.

Every importer (a torch module, an ONNX file, a Keras file, a oneDNN verbose log) returns an
:class:`ImportedModel`: the model's name, where it came from, and one :class:`ImportedLayer`
per transposed convolution in it (or per execution, for a log), each either a
:class:`~deconvbench.problem.Problem` with torch's semantics or the reason none exists.
``suite_text`` turns it into a suite file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..problem import PASSES, Pass, Problem


@dataclass(frozen=True)
class ImportedLayer:
    """One transposed convolution of a model (or the executions of one, in a log)."""

    name: str
    """Where it is in the model: a module path, an ONNX node's name, a Keras layer's name, or
    a log's line number."""
    problem: Problem | None
    """The problem with torch's semantics; None when there is none (see ``refused``)."""
    passes: tuple[Pass, ...] = PASSES
    count: int = 1
    """How many times it runs: 1 a layer; a log's executions."""
    shifted: bool = False
    """The problem's output window lies one position off the source's, which pads
    asymmetrically: the same shapes and the same work, one row or column apart."""
    refused: str = ""
    """Why the layer has no torch problem (it is left out of the suite, and said so)."""


@dataclass(frozen=True)
class ImportedModel:
    """A model's transposed convolutions, ready to become a suite."""

    name: str
    source: str
    """What was read, as the user named it (a file, ``module:attr``)."""
    layers: tuple[ImportedLayer, ...]
    notes: tuple[str, ...] = field(default=())
    """What the user should know about the import (a dynamic batch that was set, say)."""

    @property
    def problems(self) -> tuple[ImportedLayer, ...]:
        return tuple(layer for layer in self.layers if layer.problem is not None)

    @property
    def refused(self) -> tuple[ImportedLayer, ...]:
        return tuple(layer for layer in self.layers if layer.problem is None)

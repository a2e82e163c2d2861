"""Which importer reads a source: a torch module, an ONNX file, a Keras file, a oneDNN log."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .model import ImportedModel


def is_module_spec(source: str) -> bool:
    """``package.module:attr`` (not a path that happens to hold a colon)."""
    module, sep, attr = source.partition(":")
    return bool(sep and module and attr) and "/" not in source and not Path(source).exists()


def read_model(
    source: str,
    inputs: list[tuple[int, ...]] | None = None,
    batch: int | None = None,
    name: str | None = None,
) -> ImportedModel:
    """Every transposed convolution of ``source``; :class:`InputError` for anything that
    can't be read, or that holds none."""
    if is_module_spec(source):
        from .torch_module import read_module_spec

        model = read_module_spec(source, inputs or [], batch, name)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{source}: no such file, and not a module:attr spec")
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            from .onnx_file import read_onnx

            model = read_onnx(path, batch, name)
        elif suffix == ".keras":
            from .keras_file import read_keras

            model = read_keras(path, batch, name)
        else:
            from .onednn_log import read_onednn

            model = read_onednn(path, name)
    if not model.layers:
        raise InputError(f"{source}: no transposed convolution found")
    if not model.problems:
        why = "; ".join(f"{layer.name}: {layer.refused}" for layer in model.refused)
        raise InputError(f"{source}: no transposed convolution with a torch problem ({why})")
    return model


def parse_shape(text: str) -> tuple[int, ...]:
    """``--input 16x100x1x1`` → (16, 100, 1, 1)."""
    parts = text.lower().split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"--input: expected sizes joined by x such as 16x100x1x1, got {text!r}")
    return tuple(int(p) for p in parts)

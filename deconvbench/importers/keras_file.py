"""Conv1DTranspose, Conv2DTranspose and Conv3DTranspose layers of a Keras 3 ``.keras`` file.

A ``.keras`` file is a zip archive holding ``config.json`` (the serialized model),
``metadata.json`` and ``model.weights.h5``. Only the config is read, as JSON, without Keras.
Sequential and Functional models are walked, nested ones too (a layer is then ``outer/inner``).
A layer's input shape is its ``build_config`` (Keras writes one for every built layer), else
it is inferred from the layers before it, for the kinds ``_output_shape`` knows. Keras's
``channels_last`` input ``(N, *spatial, C)`` is torch's ``(N, C, *spatial)``, and its kernel
``(*kernel, filters, C)`` is torch's ``(C, filters, *kernel)``, unflipped.

Sizes and crops follow Keras 3 (``keras/src/backend/common/backend_utils.py``): the output size
is ``_get_output_shape_given_tf_padding``'s; the crop at the start is the torch backend's
(``compute_conv_transpose_output_crops_for_torch``: ``effective_kernel - 1 - left_pad``, where
``left_pad``, the JAX padding, is the larger half). With 'same' and an odd total, Keras crops the
smaller half at the start, which torch can't: that problem's window is ``shifted``.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, ProblemError
from ..problem import Problem
from .model import ImportedLayer, ImportedModel
from .padding import NoTorchPadding, torch_padding

Shape = tuple[int | None, ...]

TRANSPOSED: dict[str, int] = {
    f"{prefix}{rank}DTranspose": rank for rank in (1, 2, 3) for prefix in ("Conv", "Convolution")
}
"""Class names of the transposed convolutions, and their number of spatial dimensions."""

MODELS = frozenset({"Sequential", "Functional", "Model"})

DTYPES: dict[str, str] = {
    **{dtype: dtype for dtype in ("float16", "bfloat16", "float32", "float64")},
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
}
"""Keras dtype policies and the dtype their layers compute in."""

MAX_CONFIG_BYTES = 256 << 20
"""A config.json larger than this is refused unread (a zip bomb, not a model)."""

CONVS = {f"{prefix}{rank}D": rank for rank in (1, 2, 3) for prefix in ("Conv", "Convolution")}
POOLS = {f"{kind}Pooling{rank}D": rank for rank in (1, 2, 3) for kind in ("Max", "Average")}
UPSAMPLINGS: dict[str, int] = {f"UpSampling{rank}D": rank for rank in (1, 2, 3)}
IDENTITY = frozenset({
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "Rescaling", "ActivityRegularization", "Identity", "Masking",
})  # fmt: skip
"""Layer kinds whose output shape is their input shape."""


class _Refused(Exception):
    """A layer without a torch problem (the message says why)."""


Ints = tuple[int, ...]
Window = tuple[Ints, Ints, Ints, str, tuple[int | None, ...]]
"""kernel, stride, dilation, padding and output_padding of a layer that slides a window."""


def keras_output_size(
    size: int, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int:
    """Keras's output size of a transposed convolution along one dimension."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            return size * stride + max(k - stride, 0)
        return (size - 1) * stride + k + output_padding
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + k % 2 + output_padding


def keras_begin(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int:
    """Positions Keras crops at the start of the full output ``(size - 1)·stride + k``."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    left_pad = min(total // 2 + total % 2, k - 1)
    return k - 1 - left_pad


def read_keras(path: Path, batch: int | None, name: str | None) -> ImportedModel:
    """Every transposed convolution of the Keras 3 model saved at ``path``."""
    config = _load_config(path)
    walker = _Walker(batch or 1)
    walker.top(config)
    model_name = _config(config).get("name")
    notes = [f"the Keras model's batch is dynamic: set to {batch or 1} (--batch)"]
    return ImportedModel(
        name=name or (model_name if isinstance(model_name, str) and model_name else path.stem),
        source=str(path),
        layers=tuple(walker.layers),
        notes=tuple(notes if walker.dynamic_batch else ()),
    )


def _load_config(path: Path) -> dict[str, object]:
    def bad(reason: str) -> InputError:
        reason = " ".join(reason.split())
        return InputError(f"{path}: not a Keras 3 .keras file ({reason})")

    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo("config.json")
            except KeyError:
                raise bad("no config.json in the archive") from None
            if info.file_size > MAX_CONFIG_BYTES:
                raise bad(f"config.json has {info.file_size} bytes")
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
                raise bad(f"config.json: {e}") from None
    except zipfile.BadZipFile:
        raise bad("not a zip archive") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"config.json: {e}") from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise bad("config.json is not a serialized model")
    return config


def _class(entry: dict[str, object]) -> str:
    """A layer's class, without a registration prefix (``keras.layers>Conv2DTranspose``):
    its ``class_name``, unless its ``registered_name`` names a transposed convolution."""
    names = [
        value.rpartition(">")[2]
        for value in (entry.get("class_name"), entry.get("registered_name"))
        if isinstance(value, str)
    ]
    return next((n for n in names if n in TRANSPOSED), names[0] if names else "")


def _name(entry: dict[str, object], kind: str) -> str:
    """A layer's name: its config's (Functional models repeat it beside the config)."""
    name = _config(entry).get("name", entry.get("name"))
    return name if isinstance(name, str) and name else kind


def _config(entry: dict[str, object]) -> dict[str, object]:
    config = entry.get("config")
    return config if isinstance(config, dict) else {}


def _shape(value: object) -> Shape | None:
    """A serialized shape (a list of ints and nulls), or None when it isn't one."""
    ok = isinstance(value, list) and all(v is None or type(v) is int for v in value)
    return tuple(value) if ok and isinstance(value, list) else None


def _built_shape(entry: dict[str, object]) -> Shape | None:
    build = entry.get("build_config")
    return _shape(build.get("input_shape")) if isinstance(build, dict) else None


def _ints(config: dict[str, object], key: str, rank: int, default: int | None) -> tuple[int, ...]:
    value = config.get(key)
    value = default if value is None else value
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * rank
    if (
        isinstance(value, list | tuple)
        and len(value) == rank
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return tuple(value)
    raise _Refused(f"{key}: expected {rank} integers, got {value!r}")


def _dtype(value: object) -> str:
    """A layer's compute dtype from its dtype policy (float32 when it has none)."""
    name = _config(value).get("name") if isinstance(value, dict) else value
    if name is None or (isinstance(name, str) and name in DTYPES):
        return DTYPES[name or "float32"]
    raise _Refused(f"dtype policy {name!r} has no deconvbench dtype ({', '.join(DTYPES)})")


def _channels_first(config: dict[str, object]) -> bool:
    data_format = config.get("data_format") or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise _Refused(
            f"data_format: expected channels_last or channels_first, got {data_format!r}"
        )
    return data_format == "channels_first"


def _split(shape: Shape, first: bool) -> tuple[int | None, int | None, Shape]:
    """(batch, channels, spatial) of an input shape in either data format."""
    if first:
        return shape[0], shape[1], shape[2:]
    return shape[0], shape[-1], shape[1:-1]


def _join(batch: int | None, channels: int | None, spatial: Shape, first: bool) -> Shape:
    return (batch, channels, *spatial) if first else (batch, *spatial, channels)


def _padding(config: dict[str, object], allowed: tuple[str, ...]) -> str:
    padding = config.get("padding", "valid")
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise _Refused(f"padding: expected {' or '.join(allowed)}, got {padding!r}")
    return padding.lower()


def _output_shape(kind: str, config: dict[str, object], shape: Shape | None) -> Shape | None:
    """A layer's output shape from its input shape; None for a kind this module doesn't know
    (or a config it can't read)."""
    if kind == "InputLayer":
        return _shape(config.get("batch_shape") or config.get("batch_input_shape"))
    if shape is None:
        return None
    try:
        return _known_output_shape(kind, config, shape)
    except (_Refused, IndexError, TypeError, ValueError, ZeroDivisionError):
        return None


def _known_output_shape(kind: str, config: dict[str, object], shape: Shape) -> Shape | None:
    rest = shape[1:]
    total = None if None in rest else math.prod(v or 1 for v in rest)
    if kind in IDENTITY:
        return shape
    if kind == "Dense":
        units = config["units"]
        return (*shape[:-1], units) if isinstance(units, int) else None
    if kind == "Flatten":
        return (shape[0], total)
    if kind == "Reshape":
        target = _shape(config.get("target_shape"))
        if target is None or total is None:
            return None
        known = math.prod(v or 1 for v in target if v != -1)
        return (shape[0], *(total // known if v == -1 else v for v in target))
    rank = (TRANSPOSED | CONVS | POOLS | UPSAMPLINGS).get(kind)
    if rank is None or len(shape) != rank + 2:
        return None
    first = _channels_first(config)
    batch, channels, spatial = _split(shape, first)
    if kind in TRANSPOSED or kind in CONVS:
        channels = config["filters"] if isinstance(config["filters"], int) else None
    kernel, stride, dilation, pad, ops = _window(kind, config, rank)
    dims = zip(spatial, kernel, stride, dilation, ops, strict=True)
    sizes = (None if i is None else _size(kind, pad, i, k, s, d, o) for i, k, s, d, o in dims)
    return _join(batch, channels, tuple(sizes), first)


def _window(kind: str, config: dict[str, object], rank: int) -> Window:
    ones, nones = (1,) * rank, (None,) * rank
    if kind in UPSAMPLINGS:
        return (_ints(config, "size", rank, 2), ones, ones, "valid", nones)
    if kind in POOLS:
        pool = _ints(config, "pool_size", rank, 2)
        stride = _ints(config, "strides", rank, None) if config.get("strides") else pool
        return (pool, stride, ones, _padding(config, ("valid", "same")), nones)
    transposed = kind in TRANSPOSED
    op = config.get("output_padding") if transposed else None
    return (
        _ints(config, "kernel_size", rank, None),
        _ints(config, "strides", rank, 1),
        _ints(config, "dilation_rate", rank, 1),
        _padding(config, ("valid", "same") if transposed else ("valid", "same", "causal")),
        nones if op is None else _ints(config, "output_padding", rank, None),
    )


def _size(kind: str, padding: str, i: int, k: int, s: int, d: int, op: int | None) -> int:
    """One spatial output size of a layer that slides a window (or upsamples)."""
    if kind in TRANSPOSED:
        return keras_output_size(i, k, s, d, padding, op)
    if kind in UPSAMPLINGS:
        return i * k
    if padding == "valid":
        return (i - (k - 1) * d - 1) // s + 1
    return (i + s - 1) // s


def _nested_transposed(value: object, prefix: str) -> Iterator[tuple[str, str]]:
    """(name, class) of every transposed convolution serialized anywhere inside ``value``."""
    if isinstance(value, dict) and _class(value) in TRANSPOSED:
        yield prefix + _name(value, _class(value)), _class(value)
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _nested_transposed(item, prefix)


class _Walker:
    """Walks a serialized model in order, collecting its transposed convolutions."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.dynamic_batch = False
        self.layers: list[ImportedLayer] = []

    def top(self, entry: dict[str, object]) -> None:
        """Reads the model itself: its layers' names have no prefix."""
        if _class(entry) in MODELS or isinstance(_config(entry).get("layers"), list):
            self.model(entry, "", None, 1)
        else:
            self.layer(entry, "", None, 1)

    def layer(
        self, entry: dict[str, object], prefix: str, shape: Shape | None, calls: int
    ) -> Shape | None:
        """Reads one serialized layer (a model included) given its input shape when known;
        returns its output shape when known."""
        kind = _class(entry)
        config = _config(entry)
        name = prefix + _name(entry, kind)
        if kind in MODELS or isinstance(config.get("layers"), list):
            return self.model(entry, name + "/", shape, calls)
        shape = _built_shape(entry) or shape
        if kind in TRANSPOSED:
            self.transposed(name, kind, config, shape, calls)
        else:
            for inner, inner_kind in _nested_transposed(config, name + "/"):
                self.layers.append(ImportedLayer(
                    inner, None, count=calls,
                    refused=f"a {inner_kind} inside a {kind or 'layer'}, which isn't read",
                ))  # fmt: skip
        return _output_shape(kind, config, shape)

    def model(
        self, entry: dict[str, object], prefix: str, shape: Shape | None, calls: int
    ) -> Shape | None:
        """Reads a Sequential or Functional model's layers; returns its output shape."""
        config = _config(entry)
        found = config.get("layers")
        layers = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
        if not any("inbound_nodes" in layer for layer in layers):
            shape = _built_shape(entry) or _shape(config.get("build_input_shape")) or shape
            for layer in layers:
                shape = self.layer(layer, prefix, shape, calls)
            return shape
        outputs: dict[str, Shape | None] = {}
        for layer in layers:
            found = layer.get("inbound_nodes")
            nodes: list[object] = found if isinstance(found, list) and found else [None]
            shapes = [_node_shape(node, outputs) for node in nodes]
            kind = _class(layer)
            if kind in TRANSPOSED and len(set(shapes)) > 1 and None not in shapes:
                # A shared layer called on inputs of several shapes: one problem per shape.
                name = prefix + _name(layer, kind)
                for distinct in dict.fromkeys(shapes):
                    count = calls * shapes.count(distinct)
                    self.transposed(name, kind, _config(layer), distinct, count)
                out = _output_shape(kind, _config(layer), shapes[0])
            else:
                out = self.layer(layer, prefix, shapes[0], calls * len(nodes))
            outputs[_name(layer, kind)] = out
        ends = config.get("output_layers")
        if isinstance(ends, list) and ends and isinstance(ends[0], list):
            ends = ends[0]
        return outputs.get(str(ends[0])) if isinstance(ends, list) and ends else None

    def transposed(
        self, name: str, kind: str, config: dict[str, object], shape: Shape | None, count: int
    ) -> None:
        try:
            problem, shifted = self.problem(kind, config, shape)
        except _Refused as e:
            self.layers.append(ImportedLayer(name, None, count=count, refused=str(e)))
        else:
            self.layers.append(ImportedLayer(name, problem, count=count, shifted=shifted))

    def problem(
        self, kind: str, config: dict[str, object], shape: Shape | None
    ) -> tuple[Problem, bool]:
        """A transposed convolution's torch problem, and whether its window is shifted."""
        rank = TRANSPOSED[kind]
        if shape is None:
            raise _Refused("its input shape is unknown (no build_config, nor known layers before)")
        if len(shape) != rank + 2:
            raise _Refused(f"its input shape {_show(shape)} doesn't have {rank + 2} dimensions")
        first = _channels_first(config)
        batch, channels, spatial = _split(shape, first)
        if channels is None or None in spatial:
            raise _Refused(f"its input shape {_show(shape)} has dynamic sizes")
        if batch is None:
            batch, self.dynamic_batch = self.batch, True
        kernel, stride, dilation, padding, ops = _window(kind, config, rank)
        filters, groups = config.get("filters"), config.get("groups", 1)
        use_bias = config.get("use_bias", True)
        if type(filters) is not int or type(groups) is not int or type(use_bias) is not bool:
            raise _Refused(f"filters, groups, use_bias: got {filters!r}, {groups!r}, {use_bias!r}")
        pads, sizes = [], [i for i in spatial if i is not None]  # dynamic sizes: refused above
        dims = zip(sizes, kernel, stride, dilation, ops, strict=True)
        for axis, (i, k, s, d, o) in enumerate(dims):
            size = keras_output_size(i, k, s, d, padding, o)
            try:
                pads.append(torch_padding(i, k, s, d, size, keras_begin(k, s, d, padding, o)))
            except NoTorchPadding as e:
                raise _Refused(f"padding {padding!r} in spatial dimension {axis}: {e}") from None
        try:
            problem = Problem.create(
                batch=batch, in_channels=channels, out_channels=filters, input=tuple(sizes),
                kernel=kernel, stride=stride, padding=tuple(p.padding for p in pads),
                output_padding=tuple(p.output_padding for p in pads), dilation=dilation,
                groups=groups, bias=use_bias, dtype=_dtype(config.get("dtype")),
            )  # fmt: skip
        except ProblemError as e:
            raise _Refused(str(e)) from None
        return problem, any(p.shifted for p in pads)


def _node_shape(node: object, outputs: dict[str, Shape | None]) -> Shape | None:
    """The shape of a Functional layer's first input in one call (``inbound_nodes`` entry)."""
    if isinstance(node, dict):
        args = node.get("args")
        first = args[0] if isinstance(args, list) and args else None
        while isinstance(first, list) and first:
            first = first[0]
        if isinstance(first, dict):
            tensor = _config(first)
            shape = _shape(tensor.get("shape"))
            history = tensor.get("keras_history")
            if shape is None and isinstance(history, list) and history:
                shape = outputs.get(str(history[0]))
            return shape
    elif isinstance(node, list) and node:
        first = node[0]
        return outputs.get(str(first[0])) if isinstance(first, list) and first else None
    return None


def _show(shape: Shape) -> str:
    return "(" + ", ".join("None" if v is None else str(v) for v in shape) + ")"

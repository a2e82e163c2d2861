"""The ConvTranspose nodes of an ONNX file, with the sizes ONNX's shape inference gives them.

Each node becomes a torch problem by the ONNX operator spec (ConvTranspose, opsets 1 to 22):

- ``kernel_shape`` defaults to the weight's spatial shape; ``strides``, ``dilations`` to 1;
  ``group`` to 1; ``output_padding`` and ``pads`` to 0;
- ``auto_pad`` NOTSET crops ``pads`` (begins, then ends: possibly asymmetric); VALID crops
  nothing; SAME_UPPER and SAME_LOWER make the output ``input·stride`` long (or leave it
  uncropped where that is shorter, as shape inference and onnxruntime do) and split the
  cropping in halves, the odd one at the end (UPPER) or at the start (LOWER);
- ``output_shape`` sets the output's size and so the cropping, split in halves the same way:
  the odd one at the end for SAME_UPPER, at the start otherwise (the spec's "Else");
- a third input is the bias.

Each dimension's output size and start in the uncropped output go to ``torch_padding``; an
output that starts one position off torch's makes the layer ``shifted``, and one torch
can't make refuses the layer (the rest still import). A dynamic batch takes ``--batch``;
any other dynamic size is an :class:`InputError`, as the model has to fix it.

Where the spec and onnx's shape inference disagree (SAME_UPPER or SAME_LOWER together with
``output_padding``: the spec keeps ``input·stride``, shape inference adds the padding) the
layer's size follows the spec, as onnxruntime's does, and a note says so.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, ProblemError
from ..problem import Problem
from .model import ImportedLayer, ImportedModel
from .padding import NoTorchPadding, full_size, torch_padding

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, NodeProto, TypeProto

Dim = int | str | None
"""One dimension: its size, its symbolic name (``dim_param``), or None when unknown."""
Shape = tuple[Dim, ...]

DTYPES = {1: "float32", 11: "float64", 10: "float16", 16: "bfloat16"}
"""ONNX ``TensorProto`` element types that deconvbench measures, by number."""
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
STATIC_SHAPES = (
    "--batch sets only the batch: fix the model's other dynamic sizes (with "
    "onnx.tools.update_model_dims.update_inputs_outputs_dims, or by exporting it with "
    "static shapes)"
)


class _Refused(Exception):
    """The node has no torch problem (the message says why)."""


@dataclass
class _Scope:
    """What a graph (and the graphs around it) says about its tensors."""

    shapes: dict[str, Shape | None] = field(default_factory=dict)
    elem_types: dict[str, int] = field(default_factory=dict)
    producers: dict[str, NodeProto] = field(default_factory=dict)
    graph_inputs: set[str] = field(default_factory=set)

    def child(self, graph: GraphProto) -> _Scope:
        """The scope inside ``graph``: its own names hide the outer ones."""
        scope = _Scope(dict(self.shapes), dict(self.elem_types), dict(self.producers),
                       set(self.graph_inputs))  # fmt: skip
        for info in (*graph.value_info, *graph.output, *graph.input):
            scope._add(info.name, info.type)
        for tensor in graph.initializer:  # an initializer's own dims are the final word
            scope.shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
            scope.elem_types[tensor.name] = tensor.data_type
        initializers = {tensor.name for tensor in graph.initializer}
        scope.graph_inputs |= {i.name for i in graph.input}
        scope.graph_inputs -= initializers
        for node in graph.node:
            for output in node.output:
                if output:
                    scope.producers[output] = node
        return scope

    def _add(self, name: str, type_: TypeProto) -> None:
        if not type_.HasField("tensor_type"):
            return
        tensor = type_.tensor_type
        if tensor.elem_type:
            self.elem_types[name] = tensor.elem_type
        if not tensor.HasField("shape"):
            self.shapes.setdefault(name, None)
            return
        dims: list[Dim] = []
        for d in tensor.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param if d.HasField("dim_param") else None)
        self.shapes[name] = tuple(dims)

    def dynamic_inputs(self, tensor: str) -> list[str]:
        """The graph inputs ``tensor`` is computed from that have dynamic sizes beyond the
        batch, each with its shape."""
        found: list[str] = []
        seen: set[str] = set()
        queue = deque([tensor])
        while queue:
            name = queue.popleft()
            if not name or name in seen:
                continue
            seen.add(name)
            if name in self.graph_inputs:
                shape = self.shapes.get(name)
                if shape is None or any(not isinstance(d, int) for d in shape[1:]):
                    found.append(f"{name!r} {_show(shape)}")
            elif name in self.producers:
                queue.extend(self.producers[name].input)
        return found


def _show(shape: Shape | None) -> str:
    if shape is None:
        return "[unknown rank]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclass
class _Reader:
    path: Path
    batch: int | None
    layers: list[ImportedLayer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dynamic_batch: int = 0
    """Layers whose input's batch is dynamic (and takes ``batch``)."""
    fixed_batch: int = 0

    def graph(self, graph: GraphProto, outer: _Scope, prefix: str) -> None:
        """Every ConvTranspose node of ``graph`` and of the graphs inside its nodes."""
        from onnx import AttributeProto

        scope = outer.child(graph)
        for position, node in enumerate(graph.node):
            if node.op_type == "ConvTranspose" and node.domain in ("", "ai.onnx"):
                index = len(self.layers)
                output = node.output[0] if node.output else ""
                name = prefix + (node.name or f"ConvTranspose#{index}({output})")
                try:
                    self.layers.append(self.node(node, scope, name))
                except _Refused as e:
                    self.layers.append(ImportedLayer(name=name, problem=None, refused=str(e)))
            for attr in node.attribute:
                inner = f"{prefix}{node.name or f'{node.op_type}#{position}'}.{attr.name}/"
                if attr.type == AttributeProto.GRAPH:
                    self.graph(attr.g, scope, inner)
                elif attr.type == AttributeProto.GRAPHS:
                    for n, sub in enumerate(attr.graphs):
                        self.graph(sub, scope, f"{inner}{n}/")

    def node(self, node: NodeProto, scope: _Scope, name: str) -> ImportedLayer:
        """The layer of one ConvTranspose node; :class:`_Refused` when it has no problem."""
        if len(node.input) < 2 or not node.input[0] or not node.input[1]:
            raise _Refused("it has no input or no weight")
        x_name, w_name = node.input[0], node.input[1]
        bias = len(node.input) > 2 and bool(node.input[2])
        w_shape = scope.shapes.get(w_name)
        if w_shape is None or not all(isinstance(d, int) for d in w_shape):
            raise _Refused(f"the shape of its weight {w_name!r} is unknown ({_show(w_shape)})")
        weight = [d for d in w_shape if isinstance(d, int)]
        ndim = len(weight) - 2
        if ndim not in (1, 2, 3):
            raise _Refused(f"its weight {w_name!r} has shape {_show(w_shape)}: deconvbench "
                           "takes 1, 2 or 3 spatial dimensions")  # fmt: skip
        x_shape = scope.shapes.get(x_name)
        if x_shape is not None and len(x_shape) != ndim + 2:
            raise _Refused(f"its input {x_name!r} {_show(x_shape)} and weight {w_name!r} "
                           f"{_show(w_shape)} differ in rank")  # fmt: skip
        if x_shape is None or any(not isinstance(d, int) for d in x_shape[2:]):
            found = scope.dynamic_inputs(x_name)
            origin = f" (from graph input {', '.join(found)})" if found else ""
            raise InputError(
                f"{self.path}: node {name}: its input {x_name!r} has shape {_show(x_shape)}, "
                f"dynamic beyond the batch{origin}; {STATIC_SHAPES}"
            )
        spatial = [d for d in x_shape[2:] if isinstance(d, int)]
        dynamic = not isinstance(x_shape[0], int)
        batch = x_shape[0] if isinstance(x_shape[0], int) else self.batch or 1
        elem_type = scope.elem_types.get(x_name, scope.elem_types.get(w_name, 0))
        if elem_type not in DTYPES:
            raise _Refused(f"its element type {_elem_name(elem_type)} is not one deconvbench "
                           f"measures ({', '.join(DTYPES.values())})")  # fmt: skip
        problem, shifted = _problem(node, ndim, batch, spatial, weight, bias, DTYPES[elem_type])
        if dynamic:
            self.dynamic_batch += 1
        else:
            self.fixed_batch += 1
        inferred = scope.shapes.get(node.output[0]) if node.output else None
        if inferred is not None and len(inferred) == ndim + 2:
            theirs = inferred[2:]
            if all(isinstance(d, int) for d in theirs) and tuple(theirs) != problem.output:
                self.notes.append(
                    f"{name}: output {_show(problem.output)} by the ONNX spec, where onnx's "
                    f"shape inference says {_show(theirs)}"
                )
        return ImportedLayer(name=name, problem=problem, shifted=shifted)

    def model_notes(self) -> list[str]:
        notes = list(self.notes)
        if self.dynamic_batch:
            set_to = (
                f"set to {self.batch} by --batch" if self.batch else "set to 1 (--batch sets it)"
            )
            some = f" for {self.dynamic_batch} of {self.dynamic_batch + self.fixed_batch} layers"
            notes.insert(0, f"batch is dynamic in the model{some if self.fixed_batch else ''}: "
                         f"{set_to}")  # fmt: skip
        elif self.batch is not None and self.fixed_batch:
            notes.insert(0, f"--batch {self.batch} is ignored: the model's batch is fixed")
        return notes


def _elem_name(elem_type: int) -> str:
    from onnx import TensorProto

    try:
        return str(TensorProto.DataType.Name(elem_type))  # type: ignore[arg-type]
    except ValueError:
        return f"#{elem_type}"


def _ints(attrs: dict[str, Any], key: str, count: int, default: int) -> list[int]:
    """A per-dimension attribute: ``count`` integers, or ``default`` for each."""
    values = attrs.get(key)
    if values is None:
        return [default] * count
    values = [int(v) for v in values]
    if len(values) != count:
        raise _Refused(f"attribute {key} has {len(values)} values where {count} are expected")
    return values


def _problem(node: NodeProto, ndim: int, batch: int, spatial: list[int], weight: list[int],
             bias: bool, dtype: str) -> tuple[Problem, bool]:  # fmt: skip
    """The torch problem of a node's attributes, and whether its output window is shifted."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in AUTO_PADS:
        raise _Refused(f"auto_pad {auto_pad!r} is none of {', '.join(AUTO_PADS)}")
    kernel = _ints(attrs, "kernel_shape", ndim, 0) if "kernel_shape" in attrs else weight[2:]
    if kernel != weight[2:]:
        raise _Refused(f"kernel_shape {kernel} differs from its weight's {weight[2:]}")
    stride = _ints(attrs, "strides", ndim, 1)
    dilation = _ints(attrs, "dilations", ndim, 1)
    extra = _ints(attrs, "output_padding", ndim, 0)
    pads = _ints(attrs, "pads", 2 * ndim, 0)
    group = int(attrs.get("group", 1))
    wanted = [int(v) for v in attrs.get("output_shape", ())]
    if len(wanted) == ndim + 2:  # (N, C, *spatial), which onnxruntime accepts too
        wanted = wanted[2:]
    if wanted and len(wanted) != ndim:
        raise _Refused(f"attribute output_shape has {len(wanted)} values for {ndim} dimensions")
    for key, values, low in (("strides", stride, 1), ("dilations", dilation, 1),
                             ("pads", pads, 0), ("output_padding", extra, 0)):  # fmt: skip
        if any(v < low for v in values):
            raise _Refused(f"attribute {key} {values} has a value below {low}")
    padding: list[int] = []
    output_padding: list[int] = []
    shifted = False
    for i in range(ndim):
        full = full_size(spatial[i], kernel[i], stride[i], dilation[i]) + extra[i]
        if wanted or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            size = wanted[i] if wanted else spatial[i] * stride[i]
            total = full - size
            if total < 0 and wanted:
                raise _Refused(f"output_shape {wanted} is longer than the full output in "
                               f"dimension {i} ({full})")  # fmt: skip
            total = max(total, 0)  # a kernel shorter than the stride: nothing to crop
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        elif auto_pad == "VALID":
            total, begin = 0, 0
        else:
            total, begin = pads[i] + pads[i + ndim], pads[i]
        try:
            torch = torch_padding(spatial[i], kernel[i], stride[i], dilation[i], full - total,
                                  begin)  # fmt: skip
        except NoTorchPadding as e:
            raise _Refused(f"dimension {i}, cropped {begin} at the start and {total - begin} at "
                           f"the end: {e}") from None  # fmt: skip
        padding.append(torch.padding)
        output_padding.append(torch.output_padding)
        shifted = shifted or torch.shifted
    try:
        problem = Problem.create(
            batch=batch, in_channels=weight[0], out_channels=weight[1] * group, input=spatial,
            kernel=kernel, stride=stride, padding=padding, output_padding=output_padding,
            dilation=dilation, groups=group, bias=bias, dtype=dtype,
        )  # fmt: skip
    except ProblemError as e:
        raise _Refused(str(e)) from None
    return problem, shifted


def _load(path: Path) -> ModelProto:
    try:
        import onnx
    except ImportError:
        raise InputError(
            f"{path}: reading ONNX files needs the onnx package (pip install 'deconvbench[onnx]')"
        ) from None
    try:
        # The initializers' dims are all it needs: their data stays where it is.
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError, OSError, and whatever else a file causes
        reason = " ".join(str(e).split()) or type(e).__name__
        raise InputError(f"{path}: not a readable ONNX model ({reason})") from None
    if not model.HasField("graph"):
        raise InputError(f"{path}: not a readable ONNX model (it holds no graph)")
    return model


def read_onnx(path: Path, batch: int | None, name: str | None) -> ImportedModel:
    """Every ConvTranspose node of the ONNX file at ``path``, in the main graph and the graphs
    inside its nodes (If, Loop, Scan), as layers.

    A node without a name is ``ConvTranspose#<n>(<its output>)``, ``n`` counting the nodes
    from 0 in the order they are read; a node in a subgraph is prefixed with the node and
    attribute holding it.
    """
    from onnx import shape_inference

    model = _load(path)
    reader = _Reader(path, batch)
    inferred, failure = model, ""
    for data_prop in (True, False):  # data propagation sizes Reshape targets, when it works
        try:
            inferred = shape_inference.infer_shapes(model, data_prop=data_prop)
            break
        except Exception as e:  # an invalid model: its own value_info is what there is
            failure = " ".join(str(e).split()) or type(e).__name__
    else:
        reader.notes.append(f"onnx's shape inference failed ({failure}): the model's own "
                            "shapes are used")  # fmt: skip
    reader.graph(inferred.graph, _Scope(), "")
    return ImportedModel(
        name=name or inferred.graph.name or path.stem,
        source=str(path),
        layers=tuple(reader.layers),
        notes=tuple(reader.model_notes()),
    )

"""ONNX files in (``deconvbench import model.onnx``): ConvTranspose nodes as torch problems.

Every model is built here with ``onnx.helper``. For each one the imported problem's output
shape must be what onnx's shape inference says the node gives; for a set of them the torch
problem's numbers must be the ONNX node's, computed as the uncropped transposed convolution
cropped at the node's start (exactly, or one position apart where ``shifted`` says so). The
inputs and weights are small integers in float64, so every sum is exact and "equal" means
``torch.equal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.cases.suite_file import load_suite
from deconvbench.errors import InputError
from deconvbench.importers.model import ImportedLayer, ImportedModel
from deconvbench.importers.read import read_model
from deconvbench.problem import Problem

onnx = pytest.importorskip("onnx")
from onnx import ModelProto, TensorProto, helper, numpy_helper  # noqa: E402

Dims = tuple[int | str | None, ...]
NUMPY: dict[int, str] = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
         TensorProto.FLOAT16: "float16", TensorProto.INT32: "int32"}  # fmt: skip


@dataclass(frozen=True)
class Node:
    """One ConvTranspose node: its input's shape, its weight's shape, its attributes."""

    x: Dims
    w: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    bias: bool = False
    elem: int = TensorProto.FLOAT


def integers(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Small integers as float64: every sum of their products is exact."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-3, 4, tuple(shape), generator=generator).to(torch.float64)


def make_model(nodes: Sequence[Node], *, names: Sequence[str] = (), graph: str = "g",
               chain: bool = False) -> ModelProto:  # fmt: skip
    """A model of ConvTranspose nodes: each on its own graph input ``x<i>``, or one input
    ``x0`` through a Relu first (``chain``), with integer weights as initializers."""
    inputs, outputs, initializers, onnx_nodes = [], [], [], []
    for i, node in enumerate(nodes):
        source = f"x{i}"
        if chain and i == 0:
            onnx_nodes.append(helper.make_node("Relu", ["x0"], ["r0"]))
            source = "r0"
        inputs.append(helper.make_tensor_value_info(f"x{i}", node.elem, list(node.x)))
        dtype = NUMPY[node.elem]
        weight = integers(node.w, seed=i).numpy().astype(dtype)
        initializers.append(numpy_helper.from_array(weight, f"w{i}"))
        node_inputs = [source, f"w{i}"]
        if node.bias:
            bias = integers((node.w[1] * int(node.attrs.get("group", 1)),), seed=100 + i)
            initializers.append(numpy_helper.from_array(bias.numpy().astype(dtype), f"b{i}"))
            node_inputs.append(f"b{i}")
        name = names[i] if i < len(names) else ""
        onnx_nodes.append(helper.make_node("ConvTranspose", node_inputs, [f"y{i}"], name=name,
                                           **node.attrs))  # fmt: skip
        outputs.append(helper.make_tensor_value_info(f"y{i}", node.elem, None))
    graph_proto = helper.make_graph(onnx_nodes, graph, inputs, outputs, initializers)
    return helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 17)])


def save(model: ModelProto, tmp_path: Path, stem: str = "model") -> Path:
    path = tmp_path / f"{stem}.onnx"
    onnx.save(model, path)
    return path


def inferred(model: ModelProto, tensor: str) -> Dims:
    """The shape onnx's shape inference gives ``tensor``."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    for info in (*graph.output, *graph.value_info):
        if info.name == tensor:
            dims = info.type.tensor_type.shape.dim
            return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
    raise AssertionError(f"no shape for {tensor}")


def read(
    tmp_path: Path, *nodes: Node, batch: int | None = None, name: str | None = None, **kw: object
) -> tuple[ModelProto, ImportedModel]:
    from deconvbench.importers.onnx_file import read_onnx

    model = make_model(nodes, **kw)  # type: ignore[arg-type]
    return model, read_onnx(save(model, tmp_path), batch, name)


# --- every attribute, shape against shape inference ----------------------------------------

X2, W2 = (1, 2, 5, 5), (2, 3, 3, 3)
CASES: dict[str, Node] = {
    "notset-default": Node(X2, W2),
    "notset-symmetric": Node(X2, W2, {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "notset-asymmetric": Node(X2, W2, {"strides": [2, 2], "pads": [1, 0, 2, 1]}),
    "notset-asymmetric-unshifted": Node(X2, W2, {"strides": [2, 2], "pads": [1, 1, 0, 0]}),
    "same-upper": Node(X2, W2, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "same-lower": Node(X2, W2, {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "same-upper-k4": Node(X2, (2, 3, 4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "same-upper-kernel-below-stride": Node(X2, (2, 3, 1, 1),
                                           {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "valid": Node(X2, W2, {"strides": [2, 2], "auto_pad": "VALID"}),
    "output-shape": Node(X2, W2, {"strides": [2, 2], "output_shape": [10, 11]}),
    "output-shape-same-upper": Node(X2, W2, {"strides": [2, 2], "output_shape": [10, 11],
                                             "auto_pad": "SAME_UPPER"}),
    "output-shape-same-lower": Node(X2, W2, {"strides": [2, 2], "output_shape": [10, 11],
                                             "auto_pad": "SAME_LOWER"}),
    "output-padding": Node(X2, W2, {"strides": [2, 3], "pads": [1, 1, 1, 1],
                                    "output_padding": [1, 2]}),
    "dilations": Node(X2, W2, {"dilations": [2, 3], "pads": [2, 1, 2, 1]}),
    "dilations-output-padding": Node(X2, W2, {"dilations": [2, 2], "pads": [2, 2, 2, 2],
                                              "output_padding": [1, 1]}),
    "group": Node((1, 4, 5, 5), (4, 2, 3, 3), {"group": 2, "strides": [2, 2],
                                               "pads": [1, 1, 1, 1]}),
    "depthwise-bias": Node((2, 4, 6, 6), (4, 1, 4, 4), {"group": 4, "strides": [2, 2],
                                                        "pads": [1, 1, 1, 1]}, bias=True),
    "bias": Node(X2, W2, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, bias=True),
    "kernel-shape": Node(X2, W2, {"kernel_shape": [3, 3], "strides": [2, 2]}),
    "1d": Node((2, 3, 7), (3, 5, 4), {"strides": [2], "pads": [1, 2]}, bias=True),
    "1d-same-lower": Node((2, 3, 7), (3, 5, 4), {"strides": [3], "auto_pad": "SAME_LOWER"}),
    "3d": Node((1, 2, 3, 4, 5), (2, 2, 3, 3, 3), {"strides": [2, 2, 2],
                                                  "pads": [1, 1, 1, 1, 1, 1]}),
    "3d-asymmetric": Node((1, 2, 3, 4, 5), (2, 2, 3, 2, 3),
                          {"strides": [2, 1, 3], "pads": [0, 0, 1, 1, 0, 2],
                           "dilations": [1, 2, 1]}),
    "float64": Node(X2, W2, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, elem=TensorProto.DOUBLE),
    "float16": Node(X2, W2, {"strides": [2, 2]}, elem=TensorProto.FLOAT16),
}  # fmt: skip
DTYPE: dict[int, str] = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
         TensorProto.FLOAT16: "float16"}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_node_has_the_output_shape_of_shape_inference(tmp_path: Path, case: str) -> None:
    node = CASES[case]
    model, imported = read(tmp_path, node)
    (layer,) = imported.layers
    assert layer.problem is not None, layer.refused
    problem = layer.problem
    assert problem.y_shape == inferred(model, "y0")
    assert problem.x_shape == node.x
    assert problem.weight_shape == node.w
    assert problem.bias == node.bias
    assert problem.dtype == DTYPE[node.elem]
    assert problem.groups == node.attrs.get("group", 1)
    assert imported.notes == ()


# --- numbers: the torch problem against the ONNX node --------------------------------------


def onnx_output(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, problem: Problem,
                begin: Sequence[int]) -> torch.Tensor:  # fmt: skip
    """The ONNX node's output: the uncropped transposed convolution (zeros past its end, for
    output_padding), cropped at ``begin`` to the problem's output size, plus the bias."""
    conv = (functional.conv_transpose1d, functional.conv_transpose2d, functional.conv_transpose3d)[
        problem.ndim - 1
    ]
    full = conv(x, w, None, problem.stride, 0, 0, problem.groups, problem.dilation)
    margin = [0, 2 * max(*problem.stride, *problem.dilation)] * problem.ndim
    full = functional.pad(full, margin)
    window = tuple(slice(s, s + n) for s, n in zip(begin, problem.output, strict=True))
    index: tuple[Any, ...] = (..., *window)
    y = full[index]
    if b is not None:
        y = y + b.reshape(-1, *[1] * problem.ndim)
    return y


def torch_output(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                 problem: Problem) -> torch.Tensor:  # fmt: skip
    conv = (functional.conv_transpose1d, functional.conv_transpose2d, functional.conv_transpose3d)[
        problem.ndim - 1
    ]
    return conv(x, w, b, problem.stride, problem.padding, problem.output_padding,
                problem.groups, problem.dilation)  # fmt: skip


NUMERIC: dict[str, tuple[Node, tuple[int, ...]]] = {
    # case: (node, where its output starts in the uncropped output, by the spec)
    "symmetric": (CASES["notset-symmetric"], (1, 1)),
    "asymmetric-shifted": (Node(X2, W2, {"strides": [2, 2], "pads": [0, 1, 1, 2]}), (0, 1)),
    "asymmetric-unshifted": (CASES["notset-asymmetric-unshifted"], (1, 1)),
    "asymmetric-mixed": (CASES["notset-asymmetric"], (1, 0)),
    "same-upper": (CASES["same-upper"], (0, 0)),
    "same-lower": (CASES["same-lower"], (1, 1)),
    "same-upper-k4": (CASES["same-upper-k4"], (1, 1)),
    "valid": (CASES["valid"], (0, 0)),
    "output-shape": (CASES["output-shape"], (1, 0)),
    "output-shape-same-upper": (CASES["output-shape-same-upper"], (0, 0)),
    "output-padding-bias": (Node(X2, W2, {"strides": [2, 3], "pads": [1, 0, 1, 2],
                                          "output_padding": [1, 2]}, bias=True), (1, 0)),
    "dilations-output-padding": (CASES["dilations-output-padding"], (2, 2)),
    "depthwise-bias": (CASES["depthwise-bias"], (1, 1)),
    "1d": (CASES["1d"], (1,)),
    "3d-asymmetric": (CASES["3d-asymmetric"], (0, 0, 1)),
}  # fmt: skip
REFERENCE_EVALUATOR = {"asymmetric-shifted", "asymmetric-mixed", "same-upper", "same-lower",
                       "same-upper-k4", "valid", "output-shape-same-upper", "1d"}  # fmt: skip
"""Cases where onnx's own reference evaluator runs the node (it fails on output_padding with
pads, and on output_shape without auto_pad): it checks ``onnx_output`` itself."""


def overlap(delta: Sequence[int], size: Sequence[int]) -> tuple[tuple[slice, ...], ...]:
    """Where ``ours[j] == theirs[j + delta]`` is defined: (ours's slices, theirs's)."""
    ours = tuple(slice(max(0, -d), n - max(0, d)) for d, n in zip(delta, size, strict=True))
    theirs = tuple(slice(max(0, d), n - max(0, -d)) for d, n in zip(delta, size, strict=True))
    return ours, theirs


@pytest.mark.parametrize("case", NUMERIC, ids=list(NUMERIC))
def test_torch_problem_computes_the_onnx_node(tmp_path: Path, case: str) -> None:
    node, begin = NUMERIC[case]
    model, imported = read(tmp_path, node)
    (layer,) = imported.layers
    problem = layer.problem
    assert problem is not None, layer.refused
    assert problem.y_shape == inferred(model, "y0")
    x = integers(problem.x_shape, seed=7)
    w = integers(problem.weight_shape, seed=0)  # make_model's weight for node 0
    b = integers((problem.out_channels,), seed=100) if problem.bias else None
    theirs = onnx_output(x, w, b, problem, begin)
    ours = torch_output(x, w, b, problem)
    assert ours.shape == theirs.shape
    delta = [p - s for p, s in zip(problem.padding, begin, strict=True)]
    assert all(d in (-1, 0, 1) for d in delta)
    assert layer.shifted == any(delta)
    if not layer.shifted:
        assert torch.equal(ours, theirs)
    else:
        mine, other = overlap(delta, problem.output)
        at_ours: tuple[Any, ...] = (..., *mine)
        at_theirs: tuple[Any, ...] = (..., *other)
        assert torch.equal(ours[at_ours], theirs[at_theirs])
        assert not torch.equal(ours, theirs)
    if case in REFERENCE_EVALUATOR:
        from onnx.reference import ReferenceEvaluator

        (y,) = ReferenceEvaluator(model).run(None, {"x0": x.to(torch.float32).numpy()})
        assert torch.equal(torch.from_numpy(y).to(torch.float64), theirs)


def test_shifted_is_set_exactly_where_torch_starts_off_the_onnx_window(tmp_path: Path) -> None:
    """Stride 2, kernel 3, input 5 (full output 11): every split of the cropping. Torch crops
    ``padding`` at the start and ``padding - output_padding`` at the end, 0 <= output_padding
    < 2, so it starts where ONNX does exactly when the start crops the end's or one more.
    (``torch_padding`` moves the start by one at most: an end cropping 3 more is refused.)"""
    for begin in range(4):
        for end in range(begin + 3):
            node = Node((1, 1, 5), (1, 1, 3), {"strides": [2], "pads": [begin, end]})
            _, imported = read(tmp_path, node)
            (layer,) = imported.layers
            assert layer.problem is not None, layer.refused
            (padding,) = layer.problem.padding
            assert layer.problem.output == (11 - begin - end,)
            assert layer.shifted == (padding != begin), (begin, end)
            assert layer.shifted == (not 0 <= begin - end < 2), (begin, end)
            assert abs(padding - begin) <= 1


# --- what differs, what is refused ----------------------------------------------------------


def test_same_with_output_padding_follows_the_spec_and_says_so(tmp_path: Path) -> None:
    node = Node(X2, W2, {"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_padding": [1, 1]})
    model, imported = read(tmp_path, node)
    (layer,) = imported.layers
    assert layer.problem is not None
    assert layer.problem.output == (10, 10)  # input·stride, as the spec says
    assert inferred(model, "y0")[2:] == (11, 11)
    (note,) = imported.notes
    assert "[10, 10]" in note and "[11, 11]" in note and "shape inference" in note


def test_a_node_without_a_torch_problem_is_refused_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    odd = Node(X2, W2, {"pads": [0, 0, 1, 0]})  # stride 1: no output_padding to make it up
    ints = Node(X2, W2, elem=TensorProto.INT32)
    wrong_kernel = Node(X2, W2, {"kernel_shape": [2, 2]})
    _, imported = read(tmp_path, odd, ints, Node(X2, W2), wrong_kernel)
    refused = [layer.refused for layer in imported.layers]
    assert refused[0].startswith("dimension 0, cropped 0 at the start and 1 at the end: ")
    assert "no torch padding" in refused[0]
    assert "INT32" in refused[1]
    assert refused[2] == ""
    assert "kernel_shape" in refused[3]
    assert len(imported.problems) == 1


def test_layer_and_model_names(tmp_path: Path) -> None:
    _, imported = read(tmp_path, Node(X2, W2), Node(X2, W2), names=["up1"])
    assert [layer.name for layer in imported.layers] == ["up1", "ConvTranspose#1(y1)"]
    assert imported.name == "g"
    assert imported.source == str(tmp_path / "model.onnx")
    _, imported = read(tmp_path, Node(X2, W2), name="mine")
    assert imported.name == "mine"
    _, imported = read(tmp_path, Node(X2, W2), graph="")
    assert imported.name == "model"


def test_a_node_in_a_subgraph_is_found(tmp_path: Path) -> None:
    inner = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y_then"], name="inner", strides=[2, 2])],
        "then", [], [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, None)],
    )  # fmt: skip
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_else"])], "else", [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, None)],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="branch", then_branch=inner,
                          else_branch=other)],
        "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(integers(W2, 0).to(torch.float32).numpy(), "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "if.onnx"
    onnx.save(model, path)
    from deconvbench.importers.onnx_file import read_onnx

    (layer,) = read_onnx(path, None, None).layers
    assert layer.name == "branch.then_branch/inner"
    assert layer.problem is not None
    assert layer.problem.y_shape == (1, 3, 11, 11)


def test_no_conv_transpose_gives_no_layers(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )  # fmt: skip
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), path)
    from deconvbench.importers.onnx_file import read_onnx

    assert read_onnx(path, None, None).layers == ()
    with pytest.raises(InputError, match="no transposed convolution found"):
        read_model(str(path))


# --- dynamic sizes -------------------------------------------------------------------------

DYNAMIC = Node(("N", 2, 5, 5), W2, {"strides": [2, 2], "pads": [1, 1, 1, 1]})


def test_a_dynamic_batch_is_one_unless_batch_sets_it(tmp_path: Path) -> None:
    _, imported = read(tmp_path, DYNAMIC)
    assert imported.problems[0].problem is not None
    assert imported.problems[0].problem.y_shape == (1, 3, 9, 9)
    assert imported.notes == ("batch is dynamic in the model: set to 1 (--batch sets it)",)
    _, imported = read(tmp_path, DYNAMIC, Node((None, 2, 5, 5), W2), batch=8)
    assert [layer.problem.batch for layer in imported.layers if layer.problem] == [8, 8]
    assert imported.notes == ("batch is dynamic in the model: set to 8 by --batch",)


def test_batch_leaves_a_fixed_batch_alone_and_says_so(tmp_path: Path) -> None:
    _, imported = read(tmp_path, Node(X2, W2), batch=8)
    assert imported.layers[0].problem is not None
    assert imported.layers[0].problem.batch == 1
    assert imported.notes == ("--batch 8 is ignored: the model's batch is fixed",)
    _, imported = read(tmp_path, DYNAMIC, Node(X2, W2), batch=8)
    assert [layer.problem.batch for layer in imported.layers if layer.problem] == [8, 1]
    assert imported.notes == (
        "batch is dynamic in the model for 1 of 2 layers: set to 8 by --batch",
    )


@pytest.mark.parametrize("chain", [False, True], ids=["input", "through-relu"])
def test_another_dynamic_size_is_an_input_error_naming_the_graph_input(
    tmp_path: Path, chain: bool
) -> None:
    node = Node(("N", 2, "height", 5), W2, {"strides": [2, 2]})
    with pytest.raises(InputError) as error:
        read(tmp_path, node, names=["up"], chain=chain)
    message = str(error.value)
    assert "\n" not in message
    assert "node up" in message
    assert "graph input 'x0' [N, 2, height, 5]" in message
    assert "--batch sets only the batch" in message and "update_inputs_outputs_dims" in message


# --- unreadable files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"\xff\xfe not an onnx model \x00\x01\x02", b""], ids=["garbage", "empty"]
)
def test_an_unreadable_file_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    from deconvbench.importers.onnx_file import read_onnx

    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.onnx: not a readable ONNX model \(") as error:
        read_onnx(path, None, None)
    assert "\n" not in str(error.value)


def test_a_truncated_file_is_an_input_error(tmp_path: Path) -> None:
    from deconvbench.importers.onnx_file import read_onnx

    data = make_model([CASES["bias"]]).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable ONNX model"):
        read_onnx(path, None, None)


# --- through the command line --------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_writes_a_suite_that_reads_back_to_the_same_problems(tmp_path: Path) -> None:
    nodes = [CASES["notset-symmetric"], CASES["notset-symmetric"], CASES["same-upper"],
             CASES["1d"], Node(X2, W2, {"pads": [0, 0, 1, 0]})]  # fmt: skip
    model = make_model(nodes, names=["a", "b", "c"])
    path, out = save(model, tmp_path), tmp_path / "suite" / "model.toml"
    code, _, stderr = invoke("import", str(path), "-o", str(out))
    assert code == 0, stderr
    imported = read_model(str(path))
    suite = load_suite(str(out))
    assert suite.name == "g"
    cases = [(c.problem, c.count, c.layers) for c in suite.cases]
    assert cases == [
        (imported.layers[0].problem, 2, ("a", "b")),
        (imported.layers[2].problem, 1, ("c",)),
        (imported.layers[3].problem, 1, ("ConvTranspose#3(y3)",)),
    ]
    text = out.read_text()
    assert "# left out: ConvTranspose#4(y4): dimension 0, cropped 0 at the start" in text
    assert "shifted by one" in text  # SAME_UPPER with an odd cropping
    assert "left out ConvTranspose#4(y4)" in stderr


@pytest.mark.parametrize("what", ["corrupt", "dynamic", "none"])
def test_bad_models_exit_2_with_one_line_and_no_file(tmp_path: Path, what: str) -> None:
    if what == "corrupt":
        path = tmp_path / "model.onnx"
        path.write_bytes(b"\x08\x07garbage\xff\xff\xff")
        words = ["not a readable ONNX model"]
    elif what == "dynamic":
        path = save(make_model([Node((1, 2, "h", "w"), W2)]), tmp_path)
        words = ["'x0'", "--batch sets only the batch"]
    else:
        path = save(make_model([CASES["notset-symmetric"]]), tmp_path)
        model = onnx.load(path)
        model.graph.node[0].op_type = "Relu"
        del model.graph.node[0].attribute[:]
        del model.graph.node[0].input[1:]
        onnx.save(model, path)
        words = ["no transposed convolution found"]
    out = tmp_path / "out.toml"
    code, stdout, stderr = invoke("import", str(path), "-o", str(out))
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deconvbench: error: "), stderr
    assert "Traceback" not in stderr
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()
    assert stdout == ""


def test_every_imported_layer_is_a_layer(tmp_path: Path) -> None:
    """The importer returns the shared types, one layer per node."""
    _, imported = read(tmp_path, *CASES.values())
    assert all(isinstance(layer, ImportedLayer) for layer in imported.layers)
    assert len(imported.layers) == len(CASES)
    assert not imported.refused

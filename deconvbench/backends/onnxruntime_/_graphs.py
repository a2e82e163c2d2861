"""The ONNX graphs: one ConvTranspose node forward; the training graph's backward.

Forward, ``y = ConvTranspose(x, W[, b])`` with explicit symmetric ``pads`` (``auto_pad``
stays ``NOTSET``), ``output_padding``, ``strides``, ``dilations`` and ``group``: the node a
torch export of ``ConvTranspose{1,2,3}d`` produces. ONNX's output size is
``stride·(in−1) + output_padding + dilation·(k−1) + 1 − pads_begin − pads_end``, torch's
formula with ``pads = padding`` on both sides. ONNX Runtime refuses ``output_padding ≥
stride``, which torch takes when the dilation is larger: such a dimension's output_padding
moves into an asymmetric end pad, or past the uncropped output's end into a ``Pad`` node
with the bias added after it (``_common.forward_padding``).

Backward, the three gradients in one graph:

* ``grad_input = Conv(grad_output, W)`` with the forward's strides, pads, dilations and
  group, the weight as it is: a transposed convolution is the adjoint of the convolution with
  the same parameters, and a ConvTranspose weight ``(Cin, Cout/g, *k)`` read as a Conv
  weight has ``Cin`` output channels and ``Cout/g`` input channels per group, the group
  pairing unchanged. The Conv's output is ``in + ⌊output_padding/stride⌋`` long, longer
  than the input when ``output_padding ≥ stride`` (torch allows it when the dilation is
  larger), and a ``Slice`` keeps the first ``in`` positions.
* ``grad_weight[ci, co, t] = Σ_n Σ_i x[n, ci, i] · grad_output[n, co, i·stride − pad +
  t·dilation]`` is a convolution over the batch: grad_output with batch and channels
  swapped, ``(Cout/g, g·N, *out)``, is the Conv's input; x likewise, ``(Cin, N, *in)``, is
  its weight (its kernel is x's whole spatial extent); the forward's stride becomes the
  Conv's dilation and the forward's dilation its stride, the pads stay. With groups the
  swap keeps each group's channels together (``Reshape → Transpose → Reshape``) so a
  grouped Conv pairs group j of grad_output only with group j of x. Its result is
  ``(Cout/g, Cin, k + ⌊output_padding/dilation⌋)``: a ``Slice`` crops to ``k`` when
  longer, a ``Transpose`` swaps to ``(Cin, Cout/g, *k)``.
* ``grad_bias = ReduceSum(grad_output, axes=[0, 2, ...], keepdims=0)``.

This module needs only ``onnx``; it is imported when a strategy prepares, never when the
registry loads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...problem import Problem
from ._common import (
    GRAD_BIAS,
    GRAD_INPUT,
    GRAD_OUTPUT,
    GRAD_WEIGHT,
    B,
    W,
    X,
    Y,
    forward_padding,
    grad_input_length,
    grad_weight_length,
)

ELEMENT_TYPES: dict[str, int] = {"float32": TensorProto.FLOAT}
"""deconvbench dtypes → ONNX element types, for the dtypes the strategy declares."""

MIN_OPSET = 13
"""ReduceSum takes its axes as an input from opset 13, and Slice its bounds from opset 10."""


def _model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    """The model at ``opset``, stamped with the oldest IR version that opset needs (what an
    older runtime accepts)."""
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="deconvbench")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


def _conv_attributes(problem: Problem) -> dict[str, object]:
    return {
        "kernel_shape": list(problem.kernel),
        "strides": list(problem.stride),
        "pads": list(problem.padding) * 2,
        "dilations": list(problem.dilation),
        "group": problem.groups,
    }


def forward_model(
    problem: Problem, weight: np.ndarray, bias: np.ndarray | None, opset: int
) -> onnx.ModelProto:
    """``y = ConvTranspose(x, weight, bias)``; the weight and bias are initializers."""
    elem = ELEMENT_TYPES[problem.dtype]
    pads, adjust, tails = forward_padding(problem)
    b = _Builder()
    b.inits.append(numpy_helper.from_array(np.ascontiguousarray(weight), W))
    conv_inputs = [X, W]
    if bias is not None:
        b.inits.append(numpy_helper.from_array(np.ascontiguousarray(bias), B))
        if not any(tails):
            conv_inputs.append(B)
    attrs = {**_conv_attributes(problem), "pads": pads, "output_padding": adjust}
    y = b.node("ConvTranspose", conv_inputs, "y_conv" if any(tails) else Y, **attrs)
    if any(tails):
        rank = 2 + problem.ndim
        amounts = b.const("y_pads", [0] * rank + [0, 0, *tails])
        y = b.node("Pad", [y, amounts], "y_padded" if bias is not None else Y)
        if bias is not None:
            shape = b.const("bias_shape", [problem.out_channels] + [1] * problem.ndim)
            b.node("Add", [y, b.node("Reshape", [B, shape], "bias_view")], Y)
    graph = helper.make_graph(
        b.nodes,
        "conv_transpose",
        [helper.make_tensor_value_info(X, elem, problem.x_shape)],
        [helper.make_tensor_value_info(Y, elem, problem.y_shape)],
        initializer=b.inits,
    )
    return _model(graph, opset)


class _Builder:
    """Nodes and int64 constant initializers of one graph, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, values: Sequence[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def crop(self, value: str, lengths: Sequence[int], full: Sequence[int], out: str) -> str:
        """``value[:, :, :lengths...]`` (spatial axes 2...), or ``value`` when nothing to crop."""
        if tuple(lengths) == tuple(full):
            return value
        axes = list(range(2, 2 + len(lengths)))
        starts = self.const(f"{out}_starts", [0] * len(lengths))
        ends = self.const(f"{out}_ends", lengths)
        return self.node("Slice", [value, starts, ends, self.const(f"{out}_axes", axes)], out)

    def batch_to_channels(
        self, value: str, batch: int, channels: int, groups: int, spatial: Sequence[int], out: str
    ) -> str:
        """``(N, g·C, *s)`` → ``(C, g·N, *s)`` (channel ``j·N + n``), as a grouped Conv's input."""
        rest = list(range(2, 2 + len(spatial)))
        if groups == 1:
            return self.node("Transpose", [value], out, perm=[1, 0, *rest])
        split = self.const(f"{out}_split", [batch, groups, channels // groups, *spatial])
        merged = self.const(f"{out}_merged", [channels // groups, groups * batch, *spatial])
        v = self.node("Reshape", [value, split], f"{out}_split_view")
        v = self.node("Transpose", [v], f"{out}_swapped", perm=[2, 1, 0, *(r + 1 for r in rest)])
        return self.node("Reshape", [v, merged], out)

    def batch_to_filters(
        self, value: str, batch: int, channels: int, groups: int, spatial: Sequence[int], out: str
    ) -> str:
        """``(N, g·C, *s)`` → ``(g·C, N, *s)`` (filter ``j·C + c``), as a grouped Conv's weight."""
        rest = list(range(2, 2 + len(spatial)))
        if groups == 1:
            return self.node("Transpose", [value], out, perm=[1, 0, *rest])
        split = self.const(f"{out}_split", [batch, groups, channels // groups, *spatial])
        merged = self.const(f"{out}_merged", [channels, batch, *spatial])
        v = self.node("Reshape", [value, split], f"{out}_split_view")
        v = self.node("Transpose", [v], f"{out}_swapped", perm=[1, 2, 0, *(r + 1 for r in rest)])
        return self.node("Reshape", [v, merged], out)


def backward_model(problem: Problem, opset: int) -> onnx.ModelProto:
    """grad_input, grad_weight (and grad_bias) of ``problem`` from grad_output, x and weight,
    all three graph inputs: a training step's weight changes every step."""
    elem = ELEMENT_TYPES[problem.dtype]
    g, n, ndim = problem.groups, problem.batch, problem.ndim
    b = _Builder()
    attrs = _conv_attributes(problem)

    gx_cropped = grad_input_length(problem) != problem.input
    gx = b.node("Conv", [GRAD_OUTPUT, W], "grad_input_full" if gx_cropped else GRAD_INPUT, **attrs)
    b.crop(gx, problem.input, grad_input_length(problem), GRAD_INPUT)

    gy_t = b.batch_to_channels(
        GRAD_OUTPUT, n, problem.out_channels, g, problem.output, "grad_output_t"
    )
    x_t = b.batch_to_filters(X, n, problem.in_channels, g, problem.input, "x_t")
    gw_t = b.node(
        "Conv",
        [gy_t, x_t],
        "grad_weight_t_full",
        kernel_shape=list(problem.input),
        strides=list(problem.dilation),
        pads=list(problem.padding) * 2,
        dilations=list(problem.stride),
        group=g,
    )
    gw_t = b.crop(gw_t, problem.kernel, grad_weight_length(problem), "grad_weight_t")
    b.node("Transpose", [gw_t], GRAD_WEIGHT, perm=[1, 0, *range(2, 2 + ndim)])

    outputs = [
        helper.make_tensor_value_info(GRAD_INPUT, elem, problem.x_shape),
        helper.make_tensor_value_info(GRAD_WEIGHT, elem, problem.weight_shape),
    ]
    if problem.bias:
        axes = b.const("grad_bias_axes", [0, *range(2, 2 + ndim)])
        b.node("ReduceSum", [GRAD_OUTPUT, axes], GRAD_BIAS, keepdims=0)
        outputs.append(helper.make_tensor_value_info(GRAD_BIAS, elem, problem.bias_shape))

    graph = helper.make_graph(
        b.nodes,
        "conv_transpose_backward",
        [
            helper.make_tensor_value_info(GRAD_OUTPUT, elem, problem.y_shape),
            helper.make_tensor_value_info(X, elem, problem.x_shape),
            helper.make_tensor_value_info(W, elem, problem.weight_shape),
        ],
        outputs,
        initializer=b.inits,
    )
    return _model(graph, opset)


def probe_model(opset: int) -> onnx.ModelProto:
    """The smallest forward model, to find the newest opset an ONNX Runtime build runs."""
    problem = Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(1,), kernel=1, stride=1, padding=0
    )
    weight = np.ones(problem.weight_shape, dtype=np.float32)
    return forward_model(problem, weight, None, opset)

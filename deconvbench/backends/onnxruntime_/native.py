"""``onnxruntime/native``: ONNX Runtime's CPU ConvTranspose, and the backward as a Conv graph.

Forward is one ``ConvTranspose`` node with the weight (and bias) as initializers, as in a
deployed model: the runtime may then pre-pack the weight once, when the session is created,
and a benchmark of inference should let it. Backward is the graph a training framework runs
(``_graphs``): grad_input, grad_weight and grad_bias in one session call, with the weight a
graph input like grad_output and x, since training changes it every step and nothing about
it may be folded or pre-packed ahead of the call.

Both bind their inputs and outputs once (``_session.Bound``): the timed call is
``run_with_iobinding`` alone.

What ONNX Runtime's CPU provider takes, and its history (``onnxruntime>=1.17`` is required,
so the old bugs below concern only readers of older results):

* ``output_padding ≥ stride`` is refused ("Computed output shape is inconsistent with input
  spatial dimensions. output_padding (2) may be too large for stride (2)", 1.32), although
  torch takes ``output_padding < max(stride, dilation)``. ONNX's ConvTranspose-11 text says
  "less than the corresponding stride/dilation", ambiguous (onnx/onnx#3187, closed
  stale); microsoft/onnxruntime#14208 (1.13.1) reported results unlike torch's for
  such a layer. The graph moves it into the pads (``_common.forward_padding``); the one
  case left, an output dimension wholly in output_padding, is declined.
* ``auto_pad`` ``SAME_UPPER``/``SAME_LOWER`` were swapped in ConvTranspose (the extra pad
  on the wrong side: microsoft/onnxruntime#9370, #11927), fixed for 1.13 by #12537 (earlier
  tries #5368, #8769, #9740; a warning in between, #11984). Unaffected here: the pads are
  explicit (``auto_pad = NOTSET``).
* 1-D ConvTranspose came with microsoft/onnxruntime#2578, 3-D on CPU in 1.4 (#4218, for
  #965); with dilation > 1 and stride > 1 the output shape was wrong until #2688 (#2518).
* Dtypes: Conv and ConvTranspose have float32 kernels only. float64 has none
  (``NOT_IMPLEMENTED``); float16 loads, but on x86 the runtime wraps the nodes in Casts to
  and from float32 (no float16 kernel), so a float16 row would time a float32 convolution
  plus casts; bfloat16 is not a type either op accepts. Only float32 is declared.
* ``OrtValue.numpy()`` of a CPU value is a view of its buffer, which the next call
  overwrites: ``fetch`` copies.
* A model is a protobuf message, under 2 GiB: a forward whose weight initializer would not
  fit is declined (the backward's weight is an input, bound, not serialized).
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array, Capabilities, Prepared, Strategy
from ._common import (
    DTYPES,
    GRAD_BIAS,
    GRAD_INPUT,
    GRAD_OUTPUT,
    GRAD_WEIGHT,
    W,
    X,
    Y,
    grad_input_length,
    grad_weight_length,
    missing_modules,
    unreachable_output,
)

PROTOBUF_LIMIT = 2**31 - 2**20
"""Bytes a weight initializer may take: a serialized protobuf message is under 2 GiB, and the
model's few other fields take far less than the MiB left."""

SESSION_ALLOWANCE = 2 * 2**20
"""Bytes one session holds beyond its tensors: its graph, kernels and plans (measured under
1 MiB for these one- to ten-node graphs, once the runtime's libraries are loaded)."""

NUMPY_DTYPES: dict[str, np.dtype[np.generic]] = {"float32": np.dtype(np.float32)}


def _elements(*shapes: tuple[int, ...]) -> int:
    return sum(math.prod(s) for s in shapes)


class Native(Strategy):
    backend = "onnxruntime"
    algorithm = "native"
    description = (
        "ONNX Runtime CPU ConvTranspose (weights as initializers, IOBinding); "
        "backward: Conv graph (grad_input, grad_weight over batch, ReduceSum)"
    )
    capabilities = Capabilities(dims=frozenset({1, 2, 3}), dtypes=DTYPES, device="cpu")

    def unavailable_reason(self) -> str | None:
        missing = missing_modules()
        if missing:
            return f"{', '.join(missing)} not installed: pip install 'deconvbench[onnxruntime]'"
        return None

    def unsupported_reason(self, problem: Problem, pass_: Pass = "forward") -> str | None:
        reason = super().unsupported_reason(problem, pass_)
        if reason is not None or pass_ != "forward":
            return reason
        axis = unreachable_output(problem)
        if axis is not None:
            return (
                f"{self.name}: spatial dimension {axis} of the output lies wholly in "
                "output_padding, past every input's reach (padding crops all the rest); "
                "output_padding >= stride must be appended after the ConvTranspose, and ONNX "
                "Runtime refuses the empty ConvTranspose output that would be appended to"
            )
        if math.prod(problem.weight_shape) * problem.itemsize >= PROTOBUF_LIMIT:
            return (
                f"{self.name}: the weight is an initializer inside the model, and a model "
                "(a protobuf message) cannot exceed 2 GiB"
            )
        return None

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The bound outputs, the runtime's copies and intermediates, and a margin.

        Forward: the output; the weight three times (the model's protobuf, the session's
        initializer, the kernel's pre-packed copy) and the bias; the ConvTranspose kernel's
        column buffer, ``(Cout/g·∏k) × ∏in`` (one image and group at a time), twice, since
        ORT's arena grows by doubling. Backward: the outputs; grad_output and x with batch and
        channels swapped, each Conv's uncropped result and im2col columns (grad_input:
        ``(Cout/g·∏k) × ∏in``; grad_weight: ``(N·∏in) × ∏k'``), twice for the arena; and
        one blocked (NCHWc) copy of the Conv operands. Plus :data:`SESSION_ALLOWANCE` and a
        quarter. Against the resident set measured on 2-D, grouped, 1-D, 3-D and dilated
        layers (2 threads), forward estimates are 1.3-2.1x the measurement, backward 2.3-3.9x.
        """
        n, cin, cout, g = problem.batch, problem.in_channels, problem.out_channels, problem.groups
        x, w, y = problem.x_shape, problem.weight_shape, problem.y_shape
        k, i = math.prod(problem.kernel), math.prod(problem.input)
        if pass_ == "forward":
            kept = 3 * _elements(w) + (cout if problem.bias else 0)
            arena = (cout // g) * k * i
            elements = _elements(y) + kept + 2 * arena
        else:
            gx_full = (n, cin, *grad_input_length(problem))
            gw_full = (cout // g, cin, *grad_weight_length(problem))
            columns = (cout // g) * k * math.prod(gx_full[2:]) + n * i * math.prod(gw_full[2:])
            arena = _elements(y, x, gx_full, gw_full) + columns
            blocked = _elements(y, x, w, gx_full, gw_full)
            elements = problem.result_elements(pass_) + 2 * arena + blocked
        return SESSION_ALLOWANCE + elements * problem.itemsize * 5 // 4

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        from . import _graphs, _session

        dtype = NUMPY_DTYPES[problem.dtype]
        model = _graphs.forward_model(
            problem,
            weight.astype(dtype, copy=False),
            None if bias is None else bias.astype(dtype, copy=False),
            _session.opset(),
        )
        bound = _session.bind(
            _session.create_session(model),
            {X: x.astype(dtype, copy=False)},
            {Y: (problem.y_shape, dtype)},
            [Y],
        )
        return Prepared(bound.call, bound.fetch, facts=bound.facts())

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        from . import _graphs, _session

        dtype = NUMPY_DTYPES[problem.dtype]
        model = _graphs.backward_model(problem, _session.opset())
        outputs = {
            GRAD_INPUT: (problem.x_shape, dtype),
            GRAD_WEIGHT: (problem.weight_shape, dtype),
        }
        if problem.bias:
            outputs[GRAD_BIAS] = (problem.bias_shape, dtype)
        bound = _session.bind(
            _session.create_session(model),
            {
                GRAD_OUTPUT: grad_output.astype(dtype, copy=False),
                X: x.astype(dtype, copy=False),
                W: weight.astype(dtype, copy=False),
            },
            outputs,
            [GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS if problem.bias else None],
        )
        return Prepared(bound.call, bound.fetch, facts=bound.facts())

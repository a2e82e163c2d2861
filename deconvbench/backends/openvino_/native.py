"""``openvino/native``: the transposed convolution as an OpenVINO model on the CPU plugin.

Nothing here imports openvino at module level: ``_graphs`` and ``_runtime`` (which do) are
imported by ``prepare_*`` only, after :meth:`Native.unavailable_reason` said yes.
"""

from __future__ import annotations

import importlib.util
import math

from ...problem import Pass, Problem
from ..strategy import Array, Capabilities, Prepared, Strategy

INSTALL_HINT = "pip install 'deconvbench[openvino]'"

DTYPE_REASONS = {
    "float64": (
        "OpenVINO's CPU plugin has no float64 kernels: it converts an f64 model to f32 "
        "(Convert nodes around every operation), so the result would be float32's"
    ),
    "float16": (
        "OpenVINO's CPU plugin computes an f16 model in f32 (or in bf16 with the f16 "
        "precision hint, on CPUs without AVX-512 FP16): not a float16 computation"
    ),
    "bfloat16": (
        "OpenVINO's CPU plugin runs Deconvolution in f32 even with the bf16 precision hint: "
        "not a bfloat16 computation"
    ),
}
"""Why each dtype but float32 is declined (checked on OpenVINO 2026.4's runtime graphs)."""


FIXED_BYTES = 4 << 20
"""What a compiled model holds whatever its size: JIT-compiled kernels, scratchpads, the
runtime graph (measured: 2 to 3 MB for the smallest layers)."""


def _block16(n: int) -> int:
    """``n`` rounded up to oneDNN's AVX-512 channel block."""
    return -(-n // 16) * 16


def openvino_unavailable_reason() -> str | None:
    """Why OpenVINO cannot be used here (None when it can). Cheap: nothing is imported."""
    if importlib.util.find_spec("openvino") is None:
        return f"openvino is not installed; install it with: {INSTALL_HINT}"
    return None


class Native(Strategy):
    """OpenVINO's CPU plugin (oneDNN kernels under its own graph compiler), forced to f32."""

    backend = "openvino"
    algorithm = "native"
    description = (
        "OpenVINO CPU plugin: ConvolutionBackpropData forward; backward as Convolution, "
        "GroupConvolution and ReduceSum in one model; compiled per shape, f32 enforced"
    )
    capabilities = Capabilities(dtypes=frozenset({"float32"}))

    def unavailable_reason(self) -> str | None:
        return openvino_unavailable_reason()

    def unsupported_reason(self, problem: Problem, pass_: Pass = "forward") -> str | None:
        if problem.dtype in DTYPE_REASONS:
            return f"{self.name} does not support {problem.dtype}: {DTYPE_REASONS[problem.dtype]}"
        return super().unsupported_reason(problem, pass_)

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """What the compiled model holds and its call's peak, from the runtime graph's nodes.

        In float32 elements, measured against RSS on OpenVINO 2026.4 (2-D, 3-D, 1-D, grouped
        and depthwise layers of 1 to 400 MB):

        * forward: the output, its channels-last copy and the reorder back, the channels-last
          copy of x, and the weight twice (its blocked copy): ``3·y + x + 2·w``;
        * backward: the three results; grad_output and x transposed and reordered for the
          grad_weight convolution; both convolutions' outputs before their slices and
          transposes; a reorder of grad_output for grad_input: ``3·gy + 3·x + 3·results +
          w``. With groups, oneDNN's grouped kernel for grad_weight may take a blocked
          layout that pads its filter (x, with each group's channels as output channels
          and the batch as input channels) to blocks of 16: ``g·⌈Cin/g⌉₁₆·⌈N⌉₁₆·∏in``
          more (a depthwise layer's backward holds 4x its operands and more that way);
        * plus :data:`FIXED_BYTES` for the compiled kernels' code and scratchpads, which
          dominate small layers.
        """
        p = problem
        x, w, y = math.prod(p.x_shape), math.prod(p.weight_shape), math.prod(p.y_shape)
        if pass_ == "forward":
            elements = 3 * y + x + 2 * w
        else:
            elements = 3 * y + 3 * x + 3 * p.result_elements("backward") + w
            if p.groups > 1:
                g, cin_g = p.groups, p.in_channels // p.groups
                elements += g * _block16(cin_g) * _block16(p.batch) * math.prod(p.input)
        return elements * 4 + FIXED_BYTES

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        from . import _graphs, _runtime

        inputs = [x, weight.reshape(_graphs.weight_shape(problem))]
        if bias is not None:
            inputs.append(bias.reshape(_graphs.bias_shape(problem)))
        infer = _runtime.Infer(_graphs.forward_model(problem), inputs)
        return Prepared(infer, infer.fetch, facts=infer.facts())

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        from . import _graphs, _runtime

        inputs = [grad_output, x, weight.reshape(_graphs.weight_shape(problem))]
        infer = _runtime.Infer(_graphs.backward_model(problem), inputs)

        def fetch(result: object) -> tuple[Array | None, ...]:
            grads: tuple[Array | None, ...] = infer.fetch(result)
            return grads if problem.bias else (*grads, None)

        return Prepared(infer, fetch, facts=infer.facts())

"""The OpenVINO backend: ``openvino/native``, a transposed convolution on the CPU plugin.

Modules: ``native`` (the strategy; imports no openvino), ``_graphs`` (the forward and
backward models, opset API), ``_runtime`` (compiling, the precision and thread checks, the
bound infer request).

* Forward: ``ConvolutionBackpropData`` (``GroupConvolutionBackpropData`` for groups, the
  weight bound as a view in OpenVINO's ``[G, Cin/g, Cout/g, *K]`` layout), torch's padding as
  ``pads_begin``/``pads_end``, OpenVINO's ``output_padding`` attribute (its output size is
  torch's, ``output_padding ≥ stride`` included), then ``Add`` of the bias.
* Backward: one model, one inference: grad_input by ``(Group)Convolution`` of grad_output
  with the weight; grad_weight by a ``GroupConvolution`` over transposed operands (grad_output
  as data, x as a filter spanning the whole input); grad_bias by ``ReduceSum``
  (``_graphs`` has the algebra). Every 1-D, 2-D and 3-D problem is expressible: nothing is
  declined but dtypes.
* float32 only. The CPU plugin has no f64 kernels (an f64 model is converted to f32), runs
  an f16 model in f32, and keeps ``Deconvolution`` in f32 under the bf16 hint, so no other
  dtype would be what it says.

Quirks worth knowing:

* **Silent bf16.** On CPUs with AVX-512 BF16 or AMX the plugin's default inference precision
  is bf16, and ``Convolution`` nodes of an f32 model (this backend's backward) then run in
  bf16 with no warning. The hint is set to f32 and each compiled model's precision (the
  property and every runtime node's ``runtimePrecision``) is read back; preparation fails
  rather than time anything below f32.
* **Compiled per shape.** Every problem and pass is a model of its own, compiled in
  preparation (15-30 ms for small layers, kept on the call as ``Infer.compile_seconds``).
  Weights are parameters, not constants, so a model serves any weight values and OpenVINO
  cannot pre-pack them at compile time as it does for a deployed network.
* **Layout reorders.** The performance counters (``PERF_COUNT``) show the convolutions
  wrapped in ``Reorder`` nodes, NC(D)HW to channels-last (or 16-channel blocks) and back;
  they run inside every timed call, and the output's reorder can cost as much as the
  deconvolution itself (3-D layers). The bias ``Add`` is not fused into the deconvolution:
  it is a separate ``Subgraph`` (snippets) node.
* **Slow grad_weight with groups.** With few channels per group (depthwise) the
  grad_weight convolution gets oneDNN's generic ``jit_avx512_f32`` kernel instead of a
  ``brgconv`` one, with each group's filter padded to 16 channels: about 30x slower than
  torch's backward on a depthwise 64-channel 32x32 layer, and about 4x the operands in
  memory.
* **A convolution bug worked around.** OpenVINO 2026.4's CPU plugin computes a
  ``Convolution`` with one input channel, a one-position output and a stride above 1
  along the same axis wrongly; grad_weight's convolution meets it (batch 1). Where the
  output has one position the stride is irrelevant and is set to 1 (``_graphs._conv``).
* **Threads.** ``INFERENCE_NUM_THREADS`` is fixed when a model compiles, so it is read from
  ``backends.run_threads()`` in preparation; the compiled model's own count is kept on the
  call (``Infer.threads``).

* **Telemetry.** ``import openvino`` sends a usage event to Google Analytics from a forked
  child process; ``_offline`` blocks the ``openvino_telemetry`` package before openvino is
  imported, so the converter's no-op stub is used (docs/security.md).

openvino is an optional extra (``pip install 'deconvbench[openvino]'``): this package imports
without it, and its strategy is then listed unavailable with that hint.
"""

from __future__ import annotations

from ..strategy import Strategy
from ._offline import block_openvino_telemetry
from .native import INSTALL_HINT, Native, openvino_unavailable_reason


def strategies() -> list[Strategy]:
    """Entry point of the ``openvino`` backend (group ``deconvbench.backends``)."""
    return [Native()]


block_openvino_telemetry()  # before anything here imports openvino

__all__ = ["INSTALL_HINT", "Native", "openvino_unavailable_reason", "strategies"]

"""ONNX Runtime sessions: options, the opset to stamp, and inputs and outputs bound once.

A session runs on the CPU execution provider with

* ``intra_op_num_threads`` = the run's ``--threads`` (``backends.run_threads()``), else every
  core this process may run on: ORT sizes its pool when the session is created, so it is
  read in preparation, inside the harness's ``limit_threads``;
* ``inter_op_num_threads = 1`` and sequential execution: the graphs are chains (the backward's
  two branches included) and one pool does all the work, as torch's does;
* ``ORT_ENABLE_ALL``: every graph optimisation a deployment gets, the layout ones included
  (the NCHWc transformer re-lays a Conv's operands into blocked layouts on AVX2/AVX-512).

:class:`Bound` holds the session and its ``IOBinding``: the inputs are ``OrtValue``\\ s made
from the numpy arrays (on CPU they share the arrays' memory, no copy), the outputs
``OrtValue``\\ s allocated once to their final shapes. The timed call is
``session.run_with_iobinding(binding)`` alone, which writes into those same buffers every
time; ``fetch`` copies them out to numpy.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from ..strategy import Array, run_threads
from ._graphs import MIN_OPSET, probe_model

PROVIDERS = ["CPUExecutionProvider"]


def default_threads() -> int:
    """Every core this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The options every session of this backend is created with (see the module's doc)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or run_threads() or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no optimiser chatter on stderr
    return options


@functools.cache
def opset() -> int:
    """The newest default-domain opset this ONNX Runtime build runs a ConvTranspose at.

    ``onnx`` may be newer than the runtime (its newest opset still under development for
    the runtime); the first opset, from onnx's newest down, whose model the runtime loads is
    the one every model is stamped with.
    """
    errors: list[str] = []
    for candidate in range(onnx.defs.onnx_opset_version(), MIN_OPSET - 1, -1):
        try:
            ort.InferenceSession(
                probe_model(candidate).SerializeToString(), session_options(1), providers=PROVIDERS
            )
        except Exception as exc:  # the runtime's refusal of a too-new opset or IR version
            errors.append(f"opset {candidate}: {exc}")
            continue
        return candidate
    raise RuntimeError(
        f"onnxruntime {ort.__version__} runs no opset from {MIN_OPSET} to "
        f"{onnx.defs.onnx_opset_version()}: {errors[-1] if errors else ''}"
    )


def create_session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), session_options(), providers=PROVIDERS)


@dataclass(frozen=True)
class Bound:
    """A session whose inputs and outputs are bound once; ``fetch`` reads the outputs."""

    session: ort.InferenceSession
    binding: ort.IOBinding
    inputs: tuple[ort.OrtValue, ...]
    outputs: tuple[ort.OrtValue, ...]
    results: tuple[int | None, ...]
    """Per result of the pass, its index in ``outputs`` (None: a result the pass omits)."""

    @property
    def call(self) -> Callable[[], object]:
        """The timed call: exactly ``session.run_with_iobinding(binding)``."""
        return functools.partial(self.session.run_with_iobinding, self.binding)

    def facts(self) -> dict[str, object]:
        """For the row's note (``Prepared.facts``): the threads and opset the session runs."""
        options = self.session.get_session_options()
        return {"threads": options.intra_op_num_threads, "opset": opset()}

    def fetch(self, result: object = None) -> tuple[Array | None, ...]:
        """Copies of the bound outputs: ``OrtValue.numpy()`` is a view of a buffer the next
        call overwrites (``result``, the call's None, is not needed)."""
        return tuple(None if i is None else np.array(self.outputs[i].numpy()) for i in self.results)


def bind(
    session: ort.InferenceSession,
    inputs: dict[str, np.ndarray],
    outputs: dict[str, tuple[Sequence[int], np.dtype[np.generic]]],
    results: Sequence[str | None],
) -> Bound:
    """Bind ``inputs`` (name → array, shared) and fresh outputs (name → shape, dtype) once."""
    binding = session.io_binding()
    in_values: list[ort.OrtValue] = []
    for name, array in inputs.items():
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cpu", 0)
        binding.bind_ortvalue_input(name, value)
        in_values.append(value)
    out_values: list[ort.OrtValue] = []
    for name, (shape, dtype) in outputs.items():
        value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, "cpu", 0)
        binding.bind_ortvalue_output(name, value)
        out_values.append(value)
    names = list(outputs)
    index = tuple(None if r is None else names.index(r) for r in results)
    return Bound(session, binding, tuple(in_values), tuple(out_values), index)

"""Compiling a model for OpenVINO's CPU plugin and running it: precision, threads, binding.

* **Precision.** The CPU plugin's default ``INFERENCE_PRECISION_HINT`` is bf16 on CPUs with
  AVX-512 BF16 or AMX, and it then runs ``Convolution`` nodes of an f32 model in bf16 without
  a word. Every model is compiled with the hint set to f32, and :class:`Infer` reads back what
  the compiled model uses: the hint (``compiled.get_property``) and the ``runtimePrecision``
  of every node of the runtime graph (``get_runtime_model()``). Preparation refuses a model
  that would run any node below f32, so a measured call is always an f32 computation.
* **Threads.** ``INFERENCE_NUM_THREADS`` is the run's count (``backends.run_threads()``), or
  every core this process may use outside a run, with one stream and the latency hint (one
  request takes every thread). Hyper-threading is allowed, so a count above the physical
  cores is honoured as torch honours it; the count the compiled model reports is kept.
* **Binding.** The inputs are bound once, as tensors sharing memory with the numpy arrays,
  and the call is ``request.infer(share_outputs=True)``: the inference alone, no input copy,
  no output copy (the plain ``infer()`` copies every output into a new numpy array).
  ``fetch`` copies the outputs, which the next call overwrites.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints
import openvino.properties.streams as streams

from ..strategy import Array, run_threads

DEVICE = "CPU"
PRECISION = "f32"
"""The only inference precision this backend accepts, requested and checked."""

LOWERED = frozenset({"bf16", "f16", "f8e4m3", "f8e5m2", "i8", "u8"})
"""``runtimePrecision`` values that mean a node computes below f32."""


@functools.cache
def core() -> ov.Core:
    """One OpenVINO ``Core`` per process (it loads the CPU plugin once)."""
    return ov.Core()


def thread_count() -> int:
    """The run's thread count, or every core this process may run on outside a run."""
    threads = run_threads()
    if threads is not None:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def config(threads: int) -> dict[str, Any]:
    """The compile properties: f32, ``threads`` threads on one stream, latency-oriented."""
    return {
        hints.inference_precision: ov.Type.f32,
        props.inference_num_threads: threads,
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        streams.num: 1,
        hints.enable_hyper_threading: True,
    }


def runtime_precisions(compiled: Any) -> dict[str, str]:
    """``runtimePrecision`` of every node of the compiled runtime graph, by node name."""
    found: dict[str, str] = {}
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        found[node.get_friendly_name()] = str(info["runtimePrecision"].astype(str))
    return found


class PrecisionLowered(RuntimeError):
    """The compiled model computes below f32 although f32 was requested."""


class Infer:
    """A compiled model with one infer request whose inputs are bound once.

    Calling it runs the request synchronously and returns its outputs, which share memory
    with the request (the next call overwrites them; :meth:`fetch` copies).

    What the compiled model reports is kept: ``precision`` (the inference precision it was
    compiled for), ``node_precisions`` (each runtime node's precision), ``threads`` (its
    ``INFERENCE_NUM_THREADS``) and ``compile_seconds``; :meth:`facts` gives the row's note.
    """

    def facts(self) -> dict[str, object]:
        """For the row's note (``Prepared.facts``): what the compiled model runs at."""
        return {
            "precision": self.precision,
            "threads": self.threads,
            "compile_s": round(self.compile_seconds, 4),
        }

    def __init__(self, model: Any, inputs: Sequence[Array]) -> None:
        requested = thread_count()
        start = time.perf_counter()
        compiled = core().compile_model(model, DEVICE, config(requested))
        self.compile_seconds = time.perf_counter() - start
        self.precision: str = compiled.get_property(hints.inference_precision).to_string()
        self.node_precisions = runtime_precisions(compiled)
        self.threads = int(compiled.get_property(props.inference_num_threads))
        lowered = {n: p for n, p in self.node_precisions.items() if p in LOWERED}
        if self.precision != PRECISION or lowered:
            raise PrecisionLowered(
                f"OpenVINO compiled the model for {self.precision} (f32 requested); "
                f"nodes below f32: {lowered or 'none'}"
            )
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        # The tensors share memory with these arrays; keeping them keeps the memory alive.
        self.inputs = [_bindable(a) for a in inputs]
        for i, a in enumerate(self.inputs):
            self.request.set_input_tensor(i, ov.Tensor(a, shared_memory=True))
        self.outputs = len(compiled.outputs)

    def __call__(self) -> object:
        return self.request.infer(share_outputs=True)

    def fetch(self, result: object) -> tuple[Array, ...]:
        """Copies of the request's outputs, in the model's order."""
        del result  # the outputs live in the request; the call's result shares them
        return tuple(
            np.array(self.request.get_output_tensor(i).data, copy=True) for i in range(self.outputs)
        )


def _bindable(a: Array) -> Array:
    """``a`` as float32, C-contiguous (a copy only when it is not already)."""
    return np.ascontiguousarray(a, dtype=np.float32)

"""``jax/native``: XLA's own convolution on the CPU, jit-compiled in preparation.

Forward: ``lax.conv_general_dilated`` over the stride-dilated input with the flipped,
channel-swapped kernel, plus bias (the mapping from torch's parameters: :mod:`._graph`).
Backward: ``jax.vjp`` of that forward w.r.t. (x, weight[, bias]) with grad_output as the
cotangent, jitted as one graph.

Preparation places the operands on the CPU device once (``jax.device_put``), traces and
lowers the function for the problem's exact shapes and dtype, and compiles it
(``jax.jit(f).lower(...).compile()``): the timed ``call`` runs that executable and nothing
else, so no call traces or compiles. JAX dispatches asynchronously, so ``call`` returns
arrays that may still be computing; ``synchronize`` blocks until every result returned
since the previous ``synchronize`` is ready (the harness's ``call`` … ``call``,
``synchronize`` waits for all of them, not only the last).

Quirks, measured with jax/jaxlib 0.10.2 on x86-64:

* **Compile cost per shape**: every new (shape, dtype, pass) compiles anew: 0.05–0.2 s
  for a forward and 0.1–0.45 s for a backward, plus 0.01–0.02 s of tracing. The executable
  is kept for the process (a later round prepares the problem again without compiling);
  its first compilation's times are recorded in every preparation's ``facts``
  (``trace_s``, ``compile_s``: the row's engine note), in full on :class:`JaxPrepared`
  (:class:`Compilation`), and logged at INFO on ``deconvbench.backends.jax``; never timed.
* **Threads**: XLA fixes its CPU pool when JAX initialises (:mod:`.pool`); preparation
  initialises JAX with the run's ``--threads`` when it is the first to, and records the
  pool's size in use either way.
* **float64**: JAX turns 64-bit types off by default (``jax_enable_x64``). Preparation
  enables them only around its own ``device_put`` and compilation (``jax.enable_x64``, a
  thread-local scope), so the global flag and other JAX code in the process are untouched;
  the compiled executable runs in float64 outside that scope. It has no fast path for
  strided (input-dilated) convolutions: 12× float32 at 8×64→32, 32×32, k4 s2 (2× at
  stride 1).
* **float16 / bfloat16**: XLA's CPU backend computes these convolutions in float32 between
  conversions and rounds the result once (seen in the optimised HLO), like oneDNN: errors
  are the output's rounding, far inside the per-dtype tolerance. They take 0.75–1.1× the
  time of float32: there are no half-precision kernels to gain from on CPU.
* **Strided transposed convolutions scale poorly over threads**: a convolution with input
  (lhs) dilation runs mostly on one thread of XLA's CPU backend (CPU time / wall time
  about 1.2 on two threads, where an undilated convolution reaches 1.9).
* **The backward is dominated by grad_weight when stride > 1**: the vjp w.r.t. the weight
  is a convolution over the whole image with the kernel (rhs) dilated by the stride, which
  XLA's CPU backend runs on a slow path: 360 ms against 20 ms for grad_input and 15 ms for
  the forward at 8×64→32, 32×32, k4 s2 (float32, two threads). That is XLA's own cost and
  is what this strategy measures.
* **Negative padding**: where torch's padding crops more than the kernel reaches, the
  padding handed to XLA is negative; XLA accepts it and crops.
* XLA takes every parameter torch does (groups, dilation, output_padding, 1-D to 3-D).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array, Capabilities, Prepared, Strategy, run_threads
from . import pool

INSTALL_HINT = "pip install 'deconvbench[jax]'"

ALIGNMENT_SLACK = 16 * 64
"""Bytes XLA's buffer assignment adds by aligning each of a graph's (at most about 16)
buffers to 64 bytes: what tiny problems need on top of their elements."""

logger = logging.getLogger("deconvbench.backends.jax")

_executables: dict[tuple[str, str], tuple[Any, float, float]] = {}
"""(problem spec, pass) → its compiled executable, trace and compile seconds, for the
process's life (the XLA pool, and so the executable's threads, is fixed once per process)."""


def jax_unavailable_reason() -> str | None:
    """Why JAX cannot run here (None when it can); looks for the packages, imports nothing."""
    for package in ("jax", "jaxlib"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed; {INSTALL_HINT}"
    return None


@dataclass(frozen=True)
class Compilation:
    """One preparation's compilation, for whoever shows it (never part of a timing)."""

    strategy: str
    problem: str
    pass_: Pass
    lower_s: float
    """Tracing the function and lowering it to StableHLO."""
    compile_s: float
    """XLA's compilation of the lowered module to a CPU executable."""
    xla_threads: int | None
    """The size of XLA's CPU pool the executable runs on (None: unknown)."""
    requested_threads: int | None
    """The run's ``--threads`` (``backends.run_threads()``); None outside a run."""
    note: str | None = None
    """Why ``xla_threads`` differs from the request, when it does."""
    precision: str = "f32"
    """What the convolution computes in: f64 for float64, else f32 (XLA's CPU backend
    computes float16 and bfloat16 convolutions in float32)."""

    def facts(self) -> dict[str, object]:
        """The facts for :attr:`Prepared.facts` (the row's engine note)."""
        facts: dict[str, object] = {"precision": self.precision}
        if self.xla_threads is not None:
            facts["threads"] = self.xla_threads
        facts["trace_s"] = round(self.lower_s, 3)
        facts["compile_s"] = round(self.compile_s, 3)
        return facts

    def describe(self) -> str:
        threads = "?" if self.xla_threads is None else str(self.xla_threads)
        text = (
            f"{self.strategy} {self.pass_} {self.problem}: traced and lowered in "
            f"{self.lower_s:.3f} s, compiled in {self.compile_s:.3f} s; XLA pool {threads} "
            "threads"
        )
        return text if self.note is None else f"{text} ({self.note})"


@dataclass(frozen=True)
class JaxPrepared(Prepared):
    """A :class:`Prepared` that also carries its preparation's :class:`Compilation` (its
    ``facts`` summarise it)."""

    compilation: Compilation | None = None


class _Runner:
    """Runs a compiled executable on fixed device operands; waits for what it started."""

    def __init__(self, compiled: Callable[..., Any], operands: tuple[Any, ...], pad: int) -> None:
        self._compiled, self._operands = compiled, operands
        self._none = (None,) * pad  # grad_bias when the problem has no bias
        self._pending: list[object] = []

    def call(self) -> tuple[object, ...]:
        out = self._compiled(*self._operands)
        self._pending.append(out)
        return (*out, *self._none) if isinstance(out, tuple | list) else (out,)

    def synchronize(self) -> None:
        import jax

        pending, self._pending = self._pending, []
        jax.block_until_ready(pending)  # type: ignore[no-untyped-call]


def fetch(result: object) -> tuple[Array | None, ...]:
    """Results as numpy arrays; bfloat16 comes back as float32 (numpy has no bfloat16)."""
    assert isinstance(result, tuple)
    arrays: list[Array | None] = []
    for r in result:
        if r is None:
            arrays.append(None)
            continue
        a = np.asarray(r)
        arrays.append(a.astype(np.float32) if a.dtype.name == "bfloat16" else a)
    return tuple(arrays)


@contextmanager
def _x64(enabled: bool) -> Iterator[None]:
    """64-bit types enabled in this thread while preparing a float64 problem."""
    if not enabled:
        yield
        return
    import jax

    scope = getattr(jax, "enable_x64", None)
    if scope is None:  # older jax: the same scope, under jax.experimental
        experimental = importlib.import_module("jax.experimental")
        with experimental.enable_x64():
            yield
        return
    with scope(True):
        yield


def _cpu_device() -> tuple[Any, pool.PoolState]:
    """JAX's CPU device, JAX initialised with the run's thread count if not yet."""
    import jax

    requested = run_threads()
    sizing = nullcontext() if requested is None else pool.pool_size(requested)
    with sizing:
        device = jax.devices("cpu")[0]
    return device, pool.state(requested)


class Native(Strategy):
    backend = "jax"
    algorithm = "native"
    description = (
        "XLA on CPU: lax.conv_general_dilated (stride as input dilation), backward by "
        "jax.vjp; jit-compiled per shape in prepare"
    )
    capabilities = Capabilities(
        dims=frozenset({1, 2, 3}),
        dtypes=frozenset({"float16", "bfloat16", "float32", "float64"}),
        device="cpu",
        backward=True,
        groups=True,
        dilation=True,
    )

    def unavailable_reason(self) -> str | None:
        return jax_unavailable_reason()

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The device copies of the operands and the results, the layout copies XLA makes
        around its convolution (channels-last operands and result, re-laid kernels), and the
        runtime's own scratch, which XLA's buffer assignment does not show: measured as RSS
        growth per call (jax 0.10.2), up to 4.2× y plus the stride-dilated input for a
        forward with stride > 1 (none at stride 1), and up to 2.3× y for a backward; 4× y
        plus that buffer, and 3× y, are counted. float16/bfloat16 convolutions run in
        float32, so their operands, result and scratch are counted again at 4 bytes; and
        every buffer is aligned (:data:`ALIGNMENT_SLACK`)."""
        x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
        b = problem.out_channels if problem.bias else 0
        if pass_ == "forward":
            held = (x + w + b) + y + (x + y + 2 * w)
            scratch = 4 * y + self._dilated_elements(problem) if max(problem.stride) > 1 else 0
            converted = x + w + y
        else:
            held = (y + x + w + b) + (x + w + b) + (y + x + 3 * w)
            scratch = 3 * y
            converted = y + x + w + x + w
        total = ALIGNMENT_SLACK + held * problem.itemsize
        if problem.itemsize >= 4:
            return total + scratch * problem.itemsize
        return total + 4 * (converted + scratch)

    @staticmethod
    def _dilated_elements(problem: Problem) -> int:
        """The input with stride − 1 zeros between elements, padded by the kernel's reach."""
        spans = [
            (i - 1) * s + 1 + 2 * max(d * (k - 1) - p, 0) + op
            for i, s, d, k, p, op in zip(
                problem.input,
                problem.stride,
                problem.dilation,
                problem.kernel,
                problem.padding,
                problem.output_padding,
                strict=True,
            )
        ]
        return problem.batch * problem.in_channels * int(math.prod(spans))

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        from . import _graph

        operands = (x, weight) if bias is None else (x, weight, bias)
        return self._prepare(problem, "forward", _graph.forward_fn(problem), operands, 0)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        from . import _graph

        operands: tuple[Array, ...] = (grad_output, x, weight)
        if problem.bias:
            # The bias's value does not reach any gradient; its shape and dtype do.
            operands = (*operands, np.zeros(problem.bias_shape, dtype=x.dtype))
        fn = _graph.backward_fn(problem)
        return self._prepare(problem, "backward", fn, operands, 0 if problem.bias else 1)

    def _prepare(
        self,
        problem: Problem,
        pass_: Pass,
        fn: Callable[..., Any],
        operands: tuple[Array, ...],
        pad: int,
    ) -> JaxPrepared:
        import jax

        from ._graph import DTYPES

        device, threads = _cpu_device()
        dtype = DTYPES[problem.dtype]
        with _x64(problem.dtype == "float64"):
            on_device = tuple(jax.device_put(np.asarray(a, dtype=dtype), device) for a in operands)
            key = (problem.spec(), pass_)
            compiled = _executables.get(key)
            if compiled is None:
                start = time.perf_counter()
                lowered = jax.jit(fn).lower(*on_device)
                lowered_at = time.perf_counter()
                executable = lowered.compile()
                compiled = _executables[key] = (
                    executable, lowered_at - start, time.perf_counter() - lowered_at
                )  # fmt: skip
        executable, trace_s, compile_s = compiled
        compilation = Compilation(
            self.name,
            problem.spec(),
            pass_,
            trace_s,
            compile_s,
            threads.threads,
            run_threads(),
            threads.note,
            "f64" if problem.dtype == "float64" else "f32",
        )
        logger.info("%s", compilation.describe())
        runner = _Runner(executable, on_device, pad)
        return JaxPrepared(
            call=runner.call,
            fetch=fetch,
            synchronize=runner.synchronize,
            facts=compilation.facts(),
            compilation=compilation,
        )

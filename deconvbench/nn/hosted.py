"""Runners for strategies that take numpy arrays: numpy, numba, JAX and third-party ones.

* :class:`Hosted` (numpy, numba, any plugin): the strategy's own ``prepare_*``, ``call``,
  ``synchronize`` and ``fetch`` on every call, with the tensors' memory as numpy views
  (:func:`.tensors.host_view`) and the results wrapped by ``torch.from_numpy``. For numpy
  strategies preparation only binds the arrays; for numba it looks up the compiled
  kernels (compiled, or loaded from numba's cache, on the first call of a pass and dtype)
  and allocates the call's scratch buffers, about 10-20 µs. A plugin whose preparation is
  expensive pays it on every call. After the call OpenBLAS's worker threads are stopped
  (``harness.process.settle_thread_pools``): left spinning, they take the cores from torch's
  own pool in the layers that follow, which on the reference 2-vCPU machine made the next
  torch layers up to 2.5x slower (docs/nn.md, thread pools).
* :class:`Jax` (``jax/native``): the same XLA graph the strategy compiles, under
  ``jax.jit`` kept per problem, so a shape compiles once, not on every call. JAX copies
  its operands into its own buffers (XLA cannot use numpy's memory in place); the results
  come back through DLPack, no copy.
* ONNX Runtime and OpenVINO build an inference session (the forward's weight baked in as
  a constant) in every preparation, tens of milliseconds: :func:`host_runner` declines
  them and the layer runs torch's native op.

Every hosted strategy needs CPU tensors of float16, float32 or float64 (numpy has no
bfloat16); anything else falls back to native before a runner is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.dlpack import from_dlpack

from ..backends.jax_ import pool
from ..backends.jax_.native import Native as JaxNative
from ..backends.strategy import Array, Strategy
from ..backends.torch_._strategy import Grads
from ..harness.process import settle_thread_pools
from ..problem import Problem
from .runners import Runner
from .tensors import copy_bytes, host_view, to_tensor

SESSION_BACKENDS: dict[str, str] = {
    "onnxruntime": "builds an ONNX Runtime session",
    "openvino": "compiles an OpenVINO model",
}
"""Backends whose every preparation builds an engine session for fixed weights."""


def _fetched(prepared: Any) -> tuple[Array | None, ...]:
    result = prepared.call()
    prepared.synchronize()
    fetched = tuple(prepared.fetch(result))
    settle_thread_pools()
    return fetched


class Hosted(Runner):
    """Any strategy through its own interface, on numpy views of the tensors."""

    def forward_copies(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> int:
        return copy_bytes(x, weight, bias)

    def backward_copies(
        self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
    ) -> int:
        return copy_bytes(grad_output, x, weight)

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        b = None if bias is None else host_view(bias)
        prepared = self.strategy.prepare_forward(self.problem, host_view(x), host_view(weight), b)
        (y,) = _fetched(prepared)[:1]
        t = to_tensor(y, x.dtype)
        assert t is not None, f"{self.name} returned no forward result"
        return t

    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        prepared = self.strategy.prepare_backward(
            self.problem, host_view(grad_output), host_view(x), host_view(weight)
        )
        gx, gw, gb = _fetched(prepared)[:3]
        tx, tw = to_tensor(gx, x.dtype), to_tensor(gw, x.dtype)
        assert tx is not None and tw is not None, f"{self.name} returned no gradients"
        return tx, tw, to_tensor(gb, x.dtype) if self.problem.bias else None


@contextmanager
def _x64(enabled: bool) -> Iterator[None]:
    """JAX's 64-bit types on in this thread (a float64 graph traces and runs in it)."""
    if not enabled:
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield


class Jax(Runner):
    """``jax/native``'s graphs (``backends.jax_._graph``) under a per-problem ``jax.jit``."""

    def __init__(self, strategy: Strategy, problem: Problem) -> None:
        super().__init__(strategy, problem)
        self._forward: Callable[..., Any] | None = None
        self._backward: Callable[..., Any] | None = None
        self._x64 = problem.dtype == "float64"

    def _jit(self, pass_: str) -> Callable[..., Any]:
        import jax

        from ..backends.jax_ import _graph

        if not pool.initialized():  # XLA sizes its pool once: torch's count, when we're first
            with pool.pool_size(torch.get_num_threads()):
                jax.devices("cpu")
        fn = _graph.forward_fn(self.problem) if pass_ == "forward" else _graph.backward_fn(
            self.problem
        )  # fmt: skip
        return jax.jit(fn)

    def forward_copies(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> int:
        return sum(t.numel() * t.element_size() for t in (x, weight, bias) if t is not None)

    def backward_copies(
        self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
    ) -> int:
        return sum(t.numel() * t.element_size() for t in (grad_output, x, weight))

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self._forward is None:
            self._forward = self._jit("forward")
        operands = [host_view(x), host_view(weight)]
        if bias is not None:
            operands.append(host_view(bias))
        with _x64(self._x64):
            y = self._forward(*operands)
            y.block_until_ready()
        return from_dlpack(y)

    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        if self._backward is None:
            self._backward = self._jit("backward")
        operands = [host_view(grad_output), host_view(x), host_view(weight)]
        if self.problem.bias:  # its value reaches no gradient; its shape and dtype do
            operands.append(host_view(torch.zeros(self.problem.bias_shape, dtype=x.dtype)))
        with _x64(self._x64):
            grads = self._backward(*operands)
            for g in grads:
                g.block_until_ready()
        gb = from_dlpack(grads[2]) if self.problem.bias else None
        return from_dlpack(grads[0]), from_dlpack(grads[1]), gb


def host_runner(strategy: Strategy, problem: Problem) -> Runner | str:
    """The runner of a strategy that takes numpy arrays, or why it has none."""
    if problem.dtype == "bfloat16":
        return f"{strategy.name}: numpy has no bfloat16, so its operands would be copies"
    session = SESSION_BACKENDS.get(strategy.backend)
    if session is not None:
        return (
            f"{strategy.name}: every preparation {session} (tens of milliseconds), which "
            "a layer would pay on every call"
        )
    if isinstance(strategy, JaxNative):
        return Jax(strategy, problem)
    return Hosted(strategy, problem)

"""What the numba strategies share: availability, capabilities, array plumbing, warm-up.

numba is an optional extra. Nothing here imports it at module level: the availability
probe imports it on first use (and remembers the answer), and the kernel modules are
imported only by ``prepare_*``, after the probe said yes.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Callable

import numpy as np

from ...problem import Problem
from ..strategy import Array, Capabilities, Prepared, Strategy, numpy_fetch

INSTALL_HINT = "pip install 'deconvbench[numba]'"

DTYPES = frozenset({"float32", "float64"})
"""numba compiles float16 arithmetic poorly and has no bfloat16: only these two."""


@functools.cache
def numba_unavailable_reason() -> str | None:
    """Why numba cannot be used here (None when it can); imports it once and remembers."""
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        return f"numba is not installed ({exc}); install it with: {INSTALL_HINT}"
    except Exception as exc:  # an install broken against this numpy or Python
        return (
            f"numba failed to import ({type(exc).__name__}: {exc}); "
            f"reinstall it with: {INSTALL_HINT}"
        )
    return None


def flat(a: Array, dtype: np.dtype[np.generic]) -> Array:
    """``a`` as a writable, C-contiguous 1-D array of ``dtype`` (a copy only if needed).

    The kernels are compiled for exactly this array type; a read-only or strided array
    would make numba compile a second version inside the timed call.
    """
    if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
        a = np.array(a, dtype=dtype, order="C")
    return a.reshape(-1)


def bias_or_zeros(bias: Array | None, channels: int, dtype: np.dtype[np.generic]) -> Array:
    """The bias, or zeros: adding 0 is exact, and one kernel serves both cases."""
    return flat(bias, dtype) if bias is not None else np.zeros(channels, dtype=dtype)


Call = Callable[[], object]


class NumbaStrategy(Strategy):
    """A strategy of the ``numba`` backend: CPU, float32/float64, 1-D to 3-D, all options.

    Subclasses build the timed call (``forward_call``/``backward_call``); this class makes
    sure the kernels are compiled before any call is timed.
    """

    backend = "numba"
    capabilities = Capabilities(dims=frozenset({1, 2, 3}), dtypes=DTYPES, device="cpu")

    def __init__(self) -> None:
        self._warm: set[tuple[str, str]] = set()

    def unavailable_reason(self) -> str | None:
        return numba_unavailable_reason()

    @abstractmethod
    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        """The timed forward: NC(D)HW in, NC(D)HW ``y`` out."""

    @abstractmethod
    def backward_call(self, problem: Problem, grad_output: Array, x: Array, weight: Array) -> Call:
        """The timed backward: returns ``(grad_input, grad_weight, grad_bias or None)``."""

    def warmup_problems(self, dtype: str) -> list[Problem]:
        """Tiny problems whose runs, together, reach every kernel a pass can call."""
        return [
            Problem.create(
                batch=1,
                in_channels=2,
                out_channels=2,
                input=(2, 2, 2),
                kernel=2,
                stride=2,
                groups=2,
                bias=True,
                dtype=dtype,
            )
        ]

    def _compile(self, pass_: str, dtype: str) -> None:
        """Run the pass once on tiny problems of this dtype, so its kernels are compiled.

        Shapes are runtime arguments, so one run per (pass, dtype) and code path compiles
        (or loads from numba's cache) every kernel a real call of that pass and dtype
        will use.
        """
        if (pass_, dtype) in self._warm:
            return
        rng = np.random.default_rng(0)
        for tiny in self.warmup_problems(dtype):

            def draw(shape: tuple[int, ...]) -> Array:
                return rng.uniform(-1, 1, shape).astype(dtype)

            x, w = draw(tiny.x_shape), draw(tiny.weight_shape)
            if pass_ == "forward":
                self.forward_call(tiny, x, w, draw(tiny.bias_shape))()
            else:
                self.backward_call(tiny, draw(tiny.y_shape), x, w)()
        self._warm.add((pass_, dtype))

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        self.check(problem, "forward")
        self._compile("forward", problem.dtype)
        return Prepared(self.forward_call(problem, x, weight, bias), numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        self.check(problem, "backward")
        self._compile("backward", problem.dtype)
        return Prepared(self.backward_call(problem, grad_output, x, weight), numpy_fetch)

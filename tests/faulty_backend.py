"""Strategies that misbehave on purpose, for the fault-injection tests (not a real backend).

They live in a module of their own, importable by name, so that a spawned worker process
(``run --isolate``) can unpickle them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.backends.numpy_.direct import backward, forward
from deconvbench.problem import Problem


class Faulty(Strategy):
    backend = "faulty"

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def _misbehave(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        fault = self.algorithm
        if fault == "raises":
            raise RuntimeError("injected failure")
        if fault == "aborts":
            os.abort()
        if fault == "hangs":
            while True:
                time.sleep(1)
        if fault == "exhausts-memory":
            raise MemoryError("injected: could not allocate")
        if fault == "wrong-numbers":
            return tuple(None if r is None else r + 1e-2 * np.abs(r).max() for r in result)
        if fault == "wrong-shape":
            return tuple(None if r is None else r[..., :-1] for r in result)
        return result

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        return Prepared(lambda: self._misbehave((forward(problem, x, weight, bias),)), numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return Prepared(
            lambda: self._misbehave(backward(problem, grad_output, x, weight)), numpy_fetch
        )


FAULTS = ("raises", "aborts", "hangs", "exhausts-memory", "wrong-numbers", "wrong-shape")

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


# --- plugins that break the plugin contract (docs/plugins.md), loaded through entry points ---


class Named(Strategy):
    """numpy/direct under another name: a correct strategy, for the registry's rules."""

    def __init__(self, backend: str, algorithm: str, description: str = "") -> None:
        self.backend = backend
        self.algorithm = algorithm
        self.description = description

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        return Prepared(lambda: forward(problem, x, weight, bias), numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return Prepared(lambda: backward(problem, grad_output, x, weight), numpy_fetch)


class Breach(Named):
    """A plugin strategy whose results are right but that breaks the result or input contract:

    - ``float64-results``: float64 results whatever the problem's dtype;
    - ``writes-inputs``: zeroes the arrays it is handed after computing its result;
    - ``writes-inputs-when-timed``: the same, from its second call on (the check is passed);
    - ``bare-fetch``: ``fetch`` returns the bare output array, not a tuple.
    """

    def __init__(self, algorithm: str) -> None:
        super().__init__("contract", algorithm)

    def _wrap(self, compute: object, handed: tuple[Array, ...]) -> Prepared:
        calls = [0]  # per preparation

        def call() -> object:
            calls[0] += 1
            result = compute()  # type: ignore[operator]
            results = result if isinstance(result, tuple) else (result,)
            fault = self.algorithm
            if fault == "float64-results":
                return tuple(None if r is None else r.astype(np.float64) for r in results)
            if fault == "writes-inputs" or (fault == "writes-inputs-when-timed" and calls[0] > 1):
                for array in handed:
                    array[...] = 0
            return results

        if self.algorithm == "bare-fetch":
            return Prepared(call, lambda result: result[0])  # type: ignore[index,return-value]
        return Prepared(call, numpy_fetch)

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        return self._wrap(lambda: forward(problem, x, weight, bias), (x, weight))

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return self._wrap(lambda: backward(problem, grad_output, x, weight), (grad_output, x))


CONTRACT_FAULTS = ("float64-results", "writes-inputs", "writes-inputs-when-timed", "bare-fetch")


def contract_strategies() -> list[Strategy]:
    """Entry point ``contract``."""
    return [Breach(f) for f in CONTRACT_FAULTS]


def good_strategies() -> list[Strategy]:
    """Entry point ``good``: one correct strategy."""
    return [Named("good", "direct", "a well-behaved plugin")]


def impostor_strategies() -> list[Strategy]:
    """Entry point ``impostor``: claims a built-in's name, and one of its own."""
    return [Named("numpy", "direct", "an impostor"), Named("impostor", "direct")]


def misnamed_strategies() -> list[Strategy]:
    """Entry point ``misnamed``: its backend is not its entry point's name."""
    return [Named("elsewhere", "direct")]


def duplicate_strategies() -> list[Strategy]:
    """Entry point ``dup``: two strategies named dup/direct, and one fine."""
    return [Named("dup", "direct", "first"), Named("dup", "direct", "second"), Named("dup", "ok")]


def good_fork_strategies() -> list[Strategy]:
    """Entry point ``good`` of another distribution: the same name as ``good_strategies``'."""
    return [Named("good", "direct", "a fork")]

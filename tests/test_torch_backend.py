"""What the conformance suite does not cover for the torch backends.

Memory formats, the numerics flags a call runs under and leaves behind, unavailability
reasons on machines without CUDA or a compiler, that timed calls do only the timed work
(no input conversion, no forward inside a backward, no compilation), the subpixel phase
geometry, and reduced precision in 1-D and 3-D. CUDA tests are marked ``cuda`` and skipped
without a device.
"""

from __future__ import annotations

import subprocess
import sys
import zlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from deconvbench.backends import Prepared, Strategy, torch_
from deconvbench.backends.torch_ import _common, compiled, subpixel
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import prepare, verify
from deconvbench.problem import Pass, Problem

CUDA = torch.cuda.is_available()
cuda_only = pytest.mark.skipif(not CUDA, reason="no CUDA device")
CPU_STRATEGIES = {s.algorithm: s for s in torch_.cpu_strategies()}
CUDA_STRATEGIES = {s.algorithm: s for s in torch_.cuda_strategies()}
EAGER = sorted(a for a in CPU_STRATEGIES if a != "compiled")


def problem(**kw: object) -> Problem:
    base: dict[str, object] = dict(
        batch=2, in_channels=4, out_channels=6, input=(5, 5), kernel=4, stride=2, padding=1
    )
    base.update(kw)
    return Problem.create(**base)  # type: ignore[arg-type]


def prepared(strategy: Strategy, p: Problem, pass_: Pass) -> Prepared:
    return prepare(strategy, p, pass_, make_inputs(p, seed=1))


def check(strategy: Strategy, p: Problem, pass_: Pass) -> None:
    result = verify(strategy, p, pass_, seed=zlib.crc32(p.spec().encode()))
    assert result.ok, f"{strategy.name} {pass_} {p}: {result.message}"


# --- registration and availability ------------------------------------------------------


def test_both_devices_register_the_same_strategies() -> None:
    assert set(CPU_STRATEGIES) == {
        "native",
        "native-channels-last",
        "zero-insert",
        "gemm-col2im",
        "subpixel",
        "subpixel-fused",
        "compiled",
    }
    assert set(CUDA_STRATEGIES) == set(CPU_STRATEGIES) | {"native-cudnn-benchmark"}
    assert {s.backend for s in CPU_STRATEGIES.values()} == {"torch-cpu"}
    assert {s.capabilities.device for s in CUDA_STRATEGIES.values()} == {"cuda"}


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_strategies_unavailable_with_the_reason() -> None:
    want = "is a CPU build" if torch.version.cuda is None else "no CUDA device visible"
    for strategy in CUDA_STRATEGIES.values():
        reason = strategy.unavailable_reason()
        assert reason is not None and want in reason, (strategy.name, reason)
        assert torch.__version__ in reason


def test_cuda_reason_tells_a_cuda_build_without_a_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = CUDA_STRATEGIES["native"].unavailable_reason()
    assert reason is not None
    assert "no CUDA device visible" in reason and "12.4" in reason


def test_cpu_strategies_available() -> None:
    for name, strategy in CPU_STRATEGIES.items():
        if name != "compiled":
            assert strategy.unavailable_reason() is None, name


# --- memory format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "fmt"),
    [((5, 5), torch.channels_last), ((3, 4, 5), torch.channels_last_3d)],
    ids=["2d", "3d"],
)
def test_channels_last_really_is_channels_last(
    shape: tuple[int, ...], fmt: torch.memory_format
) -> None:
    strategy = CPU_STRATEGIES["native-channels-last"]
    p = problem(input=shape, kernel=3, bias=True)
    y = prepared(strategy, p, "forward").call()
    assert isinstance(y, torch.Tensor)
    assert y.is_contiguous(memory_format=fmt) and not y.is_contiguous()
    grads = prepared(strategy, p, "backward").call()
    assert isinstance(grads, tuple)
    assert grads[0].is_contiguous(memory_format=fmt) and not grads[0].is_contiguous()
    # and the plain strategy is not: the difference is the prepared layout
    y_plain = prepared(CPU_STRATEGIES["native"], p, "forward").call()
    assert isinstance(y_plain, torch.Tensor) and y_plain.is_contiguous()


def test_channels_last_refuses_1d_with_the_reason() -> None:
    reason = CPU_STRATEGIES["native-channels-last"].unsupported_reason(problem(input=(7,)))
    assert reason is not None and "channels_last" in reason and "1-D" in reason


# --- numerics flags ---------------------------------------------------------------------


def _flags() -> tuple[bool, bool, bool]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )


@pytest.fixture
def user_flags() -> object:
    """Flags set to the opposite of what a call wants; restored after the test."""
    saved = _flags()
    _common._write_flags((True, True, True))
    yield (True, True, True)
    _common._write_flags(saved)


@pytest.mark.usefixtures("user_flags")
def test_timed_call_turns_tf32_off_and_restores_the_flags() -> None:
    seen = _common.with_cuda_numerics(_flags)()
    assert seen == (False, False, False)
    assert _flags() == (True, True, True)
    seen = _common.with_cuda_numerics(_flags, benchmark=True)()
    assert seen == (False, False, True)
    assert _flags() == (True, True, True)


@pytest.mark.usefixtures("user_flags")
def test_flags_restored_when_the_call_raises() -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _common.with_cuda_numerics(boom)()
    assert _flags() == (True, True, True)
    with pytest.raises(RuntimeError), _common.cuda_numerics(benchmark=False):
        assert _flags() == (False, False, False)
        boom()
    assert _flags() == (True, True, True)


def test_cpu_calls_run_unwrapped() -> None:
    def fn() -> int:
        return 1

    assert _common.CPU.timed(fn) is fn


# --- timed calls do only the timed work -------------------------------------------------


class OpRecorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.ops.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def recorded_ops(call: object) -> list[str]:
    assert callable(call)
    rec = OpRecorder()
    with rec:
        call()
    return rec.ops


@pytest.mark.parametrize("algorithm", EAGER)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_calls_convert_nothing_and_backward_runs_no_forward(algorithm: str, dtype: str) -> None:
    strategy = CPU_STRATEGIES[algorithm]
    p = problem(dtype=dtype, bias=True)
    forward_ops = recorded_ops(prepared(strategy, p, "forward").call)
    backward_ops = recorded_ops(prepared(strategy, p, "backward").call)
    for ops in (forward_ops, backward_ops):
        assert "_to_copy" not in ops, f"{algorithm} converts inputs inside the timed call"
    assert backward_ops and "convolution" not in backward_ops and "col2im" not in backward_ops, (
        f"{algorithm} backward recomputes its forward: {backward_ops}"
    )


def test_backward_of_a_disconnected_output_is_zero() -> None:
    # Every tap lands in the cropped padding: y = 0 whatever x and w, so grads are zero.
    p = Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(1, 2, 1), kernel=1, stride=(1, 2, 1),
        padding=(0, 1, 0),
    )  # fmt: skip
    for algorithm in EAGER:
        check(CPU_STRATEGIES[algorithm], p, "backward")


# --- torch.compile ----------------------------------------------------------------------


def test_compiled_unavailable_reason_is_cheap_and_compiles_nothing() -> None:
    code = (
        "import sys, time\n"
        "from deconvbench.backends import torch_\n"
        "s = [s for s in torch_.cpu_strategies() if s.algorithm == 'compiled'][0]\n"
        "t = time.perf_counter(); s.unavailable_reason(); t = time.perf_counter() - t\n"
        "print(t, 'torch._dynamo' in sys.modules, 'torch._inductor' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, dynamo, inductor = out.stdout.split()
    assert float(seconds) < 0.05
    assert dynamo == "False" and inductor == "False"


def test_compiled_unavailable_without_a_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-g++")
    reason = CPU_STRATEGIES["compiled"].unavailable_reason()
    assert reason is not None and "no-such-compiler-g++" in reason and "C++ compiler" in reason


def test_own_code_gives_each_function_its_own_code_object() -> None:
    def f(a: int) -> int:
        return a + 1

    g = compiled.own_code(f)
    assert g.__code__ is not f.__code__ and g(1) == f(1) == 2


@pytest.mark.skipif(CPU_STRATEGIES["compiled"].unavailable_reason() is not None, reason="no C++")
def test_compiled_calls_never_recompile_past_the_limit() -> None:
    """More shapes than dynamo's recompile limit: each prepared call keeps its own graph."""
    import torch._dynamo

    config = torch._dynamo.config
    # the names since torch 2.6; before, "cache_size_limit" and "fail_on_cache_limit_hit"
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    fail = next(
        n for n in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit") if hasattr(config, n)
    )
    strategy = CPU_STRATEGIES["compiled"]
    shapes = [(3,), (4,), (5,)]
    with config.patch({limit: 1, fail: True}):
        calls = [prepared(strategy, problem(input=s, kernel=3), "backward") for s in shapes]
        with config.patch(error_on_recompile=True):
            for call in calls:
                call.call()
                call.call()


@pytest.mark.skipif(CPU_STRATEGIES["compiled"].unavailable_reason() is not None, reason="no C++")
def test_a_problem_is_compiled_once_per_process_and_pass() -> None:
    """A later round prepares again without compiling: the same compiled function, and its
    guards pass on the new tensors (error_on_recompile)."""
    import torch._dynamo

    strategy = CPU_STRATEGIES["compiled"]
    p = problem(input=(5,), kernel=3)
    first = prepared(strategy, p, "forward")
    functions = dict(compiled._compiled)
    with torch._dynamo.config.patch(error_on_recompile=True):
        again = prepared(strategy, p, "forward")
        again.call()
    assert compiled._compiled == functions
    assert (strategy.name, p.spec(), "forward") in functions
    assert again.fetch(again.call())[0].shape == first.fetch(first.call())[0].shape


# --- subpixel phase geometry ------------------------------------------------------------


@settings(max_examples=200)
@given(
    size_in=st.integers(1, 9),
    kernel=st.integers(1, 9),
    stride=st.integers(1, 5),
    dilation=st.integers(1, 4),
    padding=st.integers(0, 12),
    extra=st.integers(0, 4),
)
def test_subpixel_phases_partition_outputs_and_taps(
    size_in: int, kernel: int, stride: int, dilation: int, padding: int, extra: int
) -> None:
    size_out = (size_in - 1) * stride - 2 * padding + dilation * (kernel - 1) + extra + 1
    if size_out < 1:
        return
    phases = subpixel.axis_phases(size_in, size_out, kernel, stride, padding, dilation)
    owned = sorted(o for a in phases for o in range(a.offset, size_out, stride))
    assert owned == list(range(size_out))  # every output in exactly one phase
    for a in phases:
        assert a.count == len(range(a.offset, size_out, stride))
        taps = [] if a.taps is None else list(range(kernel))[a.taps]
        # every tap of the phase lands on the phase; no other tap that reaches an input does
        for k in range(kernel):
            lands = (k * dilation - padding - a.offset) % stride == 0
            reaches = any(
                0 <= i * stride - padding + k * dilation < size_out
                and (i * stride - padding + k * dilation) % stride == a.offset % stride
                for i in range(size_in)
            )
            if k in taps:
                assert lands
            elif reaches:
                pytest.fail(f"tap {k} reaches phase {a.offset} but is not in {taps}")
        if a.taps is not None:  # the flipped kernel holds tap k at kernel - 1 - k
            assert a.flipped is not None
            assert list(range(kernel))[::-1][a.flipped] == taps[::-1]
            assert a.count + (len(taps) - 1) * a.dilation - sum(a.pad) == size_in


# --- reduced precision in 1-D and 3-D (the conformance suite covers 2-D) -----------------


@pytest.mark.parametrize("algorithm", EAGER)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(9,), (3, 4, 3)], ids=["1d", "3d"])
def test_reduced_precision_1d_3d(algorithm: str, dtype: str, shape: tuple[int, ...]) -> None:
    strategy = CPU_STRATEGIES[algorithm]
    p = problem(input=shape, kernel=3, stride=2, padding=1, bias=True, dtype=dtype, groups=2)
    reason = strategy.unsupported_reason(p)
    if reason is not None:
        pytest.skip(reason)
    for pass_ in ("forward", "backward"):
        check(strategy, p, pass_)  # type: ignore[arg-type]


# --- CUDA -------------------------------------------------------------------------------


def _long_reduction(dtype: str = "float32") -> Problem:
    """L = 256·16: TF32 (10-bit mantissa) misses float32 tolerance here by ~10x."""
    return Problem.create(
        batch=2, in_channels=256, out_channels=64, input=(6, 6), kernel=4, stride=2, padding=1,
        bias=True, dtype=dtype,
    )  # fmt: skip


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("algorithm", sorted(CUDA_STRATEGIES))
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.usefixtures("user_flags")
def test_cuda_float32_is_ieee_even_when_the_user_allows_tf32(algorithm: str, pass_: Pass) -> None:
    check(CUDA_STRATEGIES[algorithm], _long_reduction(), pass_)
    assert _flags() == (True, True, True)  # the user's flags survive preparation and calls


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("algorithm", sorted(CUDA_STRATEGIES))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(9,), (6, 6), (3, 4, 3)], ids=["1d", "2d", "3d"])
def test_cuda_reduced_precision(algorithm: str, dtype: str, shape: tuple[int, ...]) -> None:
    strategy = CUDA_STRATEGIES[algorithm]
    p = problem(input=shape, kernel=3, stride=2, padding=1, bias=True, dtype=dtype, groups=2)
    reason = strategy.unsupported_reason(p)
    if reason is not None:
        pytest.skip(reason)
    for pass_ in ("forward", "backward"):
        check(strategy, p, pass_)  # type: ignore[arg-type]


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_cudnn_benchmark_searches_in_prepare_and_restores_the_flag(pass_: Pass) -> None:
    strategy = CUDA_STRATEGIES["native-cudnn-benchmark"]
    before = _flags()
    ready = prepared(strategy, _long_reduction(), pass_)
    assert _flags() == before
    result = ready.call()
    ready.synchronize()
    arrays = ready.fetch(result)
    assert all(a is None or type(a).__module__ == "numpy" for a in arrays)

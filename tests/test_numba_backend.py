"""The numba backend beyond the conformance suite.

* numba is optional: without it the package still imports and lists its strategies as
  unavailable, with the install hint.
* The index tables (pure numpy) against brute force.
* The kernels' code paths the conformance problems do not reach: full 4×4 blocks and
  their remainders (batch and channels of 4 and more), both grad_input formulations.
* No races: results are bitwise the same on 1 and 2 threads.
* Compilation happens in preparation, once per dtype, never in the timed call.
"""

from __future__ import annotations

import importlib
import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvbench import registry
from deconvbench.backends import Strategy
from deconvbench.backends.numba_ import _geometry as geom
from deconvbench.backends.numba_._common import INSTALL_HINT, numba_unavailable_reason
from deconvbench.errors import Unavailable, Unsupported
from deconvbench.harness.inputs import make_inputs
from deconvbench.harness.verify import verify
from deconvbench.problem import Pass, Problem

PKG = "deconvbench.backends.numba_"
NAMES = ["numba/direct", "numba/subpixel-fused", "numba/tiled"]
KERNEL_MODULES = [
    "_axpy_kernels",
    "_direct_kernels",
    "_fused_kernels",
    "_gemm_forward",
    "_gemm_kernels",
    "_layout_kernels",
    "_one_pixel_kernels",
    "_tiled_kernels",
]
HAS_NUMBA = numba_unavailable_reason() is None
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")


def _problem(**kw: object) -> Problem:
    base: dict[str, object] = dict(
        batch=5, in_channels=5, out_channels=7, input=(4, 5), kernel=3, stride=2, padding=1
    )
    base.update(kw)
    return Problem.create(**base)  # type: ignore[arg-type]


# --- numba missing -------------------------------------------------------------------------


def test_without_numba_the_strategies_are_listed_unavailable_with_the_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module(PKG)
    loaded = registry._load_entry_point("numba", f"{PKG}:strategies")
    assert sorted(s.name for s in loaded) == NAMES  # not a broken one
    problem = _problem()
    for strategy in [*loaded, *fresh.strategies()]:
        reason = strategy.unavailable_reason()
        assert reason is not None
        assert "numba is not installed" in reason
        assert INSTALL_HINT in reason
        with pytest.raises(Unavailable, match="deconvbench\\[numba\\]"):
            strategy.check(problem)
    assert sys.modules["numba"] is None  # the package never needed numba to import


# --- index tables ----------------------------------------------------------------------------

axis_params = st.tuples(
    st.integers(1, 7),  # I
    st.integers(1, 6),  # K
    st.integers(1, 4),  # s
    st.integers(1, 3),  # d
    st.integers(0, 6),  # p
    st.integers(0, 3),  # output_padding
).filter(lambda a: a[5] < max(a[2], a[3]))


def _axis(a: tuple[int, int, int, int, int, int]) -> tuple[int, int, int, int, int, int] | None:
    I, K, s, d, p, op = a
    O = (I - 1) * s - 2 * p + d * (K - 1) + op + 1
    return (I, O, K, s, p, d) if O >= 1 else None


def _pairs(I: int, O: int, K: int, s: int, p: int, d: int) -> set[tuple[int, int, int]]:
    """Every (output, tap, input) the definition connects."""
    return {
        (i * s - p + k * d, k, i) for i in range(I) for k in range(K) if 0 <= i * s - p + k * d < O
    }


@settings(max_examples=200)
@given(axis_params)
def test_forward_axis_gathers_exactly_the_definitions_pairs(
    a: tuple[int, int, int, int, int, int],
) -> None:
    axis = _axis(a)
    if axis is None:
        return
    O, s = axis[1], axis[3]
    g = geom.forward_axis(*axis)
    tap_of = {(int(r), int(j)): k for k, (r, j) in enumerate(g.slots)}
    got = set()
    for o in range(O):
        r, jlo, jhi, src0 = (int(v) for v in g.table[:, o])
        assert r == o % s
        for j in range(jlo, jhi):
            got.add((o, tap_of[(r, j)], src0 + (j - jlo) * g.step))
    assert got == _pairs(*axis)
    assert all(0 <= j < g.taps and r < g.phases for r, j in g.slots)


@settings(max_examples=200)
@given(axis_params)
def test_grad_input_axis_gathers_exactly_the_definitions_pairs(
    a: tuple[int, int, int, int, int, int],
) -> None:
    axis = _axis(a)
    if axis is None:
        return
    I, d = axis[0], axis[5]
    g = geom.grad_input_axis(*axis)
    got = set()
    for i in range(I):
        _, jlo, jhi, src0 = (int(v) for v in g.table[:, i])
        got |= {(src0 + (k - jlo) * d, k, i) for k in range(jlo, jhi)}
    assert got == _pairs(*axis)


@settings(max_examples=200)
@given(axis_params)
def test_phase_axis_keeps_every_pair_and_every_read_in_bounds(
    a: tuple[int, int, int, int, int, int],
) -> None:
    axis = _axis(a)
    if axis is None:
        return
    K, s = axis[2], axis[3]
    ph = geom.phase_axis(*axis)
    got = set()
    for k in range(K):
        r, c, lo, hi = (int(v) for v in ph.table[:, k])
        for i in range(lo, hi):
            q = i + c
            assert 0 <= q < ph.rows
            got.add((s * q + r, k, i))
    assert got == _pairs(*axis)


@settings(max_examples=200)
@given(axis_params)
def test_tap_slices_are_the_definitions_pairs(a: tuple[int, int, int, int, int, int]) -> None:
    axis = _axis(a)
    if axis is None:
        return
    s = axis[3]
    table = geom.tap_slices(*axis)
    got = {
        (int(o0) + c * s, k, int(i0) + c)
        for k, (i0, count, o0) in enumerate(table)
        for c in range(int(count))
    }
    assert got == _pairs(*axis)


def test_pack_offsets_put_every_tap_in_its_own_slot() -> None:
    axes = [geom.forward_axis(*a) for a in geom.Geometry.of(_problem(kernel=(3, 4))).axes()]
    dest, row, full = geom.pack_offsets(axes, targets=7, sources=5)
    assert len(set(dest.tolist())) == dest.size == 12
    assert row == 5 * axes[1].taps * axes[2].taps
    assert not full  # kernel 3 at stride 2: one phase has 2 taps, the other 1


def test_skewed_packing_moves_each_phase_block_and_never_reaches_the_gap() -> None:
    axes = [geom.forward_axis(*a) for a in geom.Geometry.of(_problem(kernel=(3, 4))).axes()]
    dest, row, full = geom.pack_offsets(axes, targets=7, sources=5)
    moved, skewed_row, same = geom.skewed((dest, row, full), targets=7)
    assert skewed_row == row + geom.GATHER_SKEW and same == full
    phase = dest // (7 * row)
    assert (moved == phase * 7 * skewed_row + dest % (7 * row)).all()
    assert (moved % skewed_row + 5 <= row).all()  # a tap's 5 sources end before the gap


def test_tiled_stacks_phases_as_channels_only_when_its_blocks_would_be_partly_empty() -> None:
    from deconvbench.backends.numba_._fused_forward import phases_as_channels

    assert phases_as_channels(_problem(out_channels=3, kernel=4))
    assert phases_as_channels(_problem(in_channels=6, out_channels=6, groups=2, kernel=4))
    assert not phases_as_channels(_problem(out_channels=4, kernel=4))  # full blocks
    assert not phases_as_channels(_problem(out_channels=3, kernel=3))  # s ∤ k: zero taps
    assert not phases_as_channels(_problem(out_channels=3, kernel=4, stride=1))  # one phase


# --- kernels -------------------------------------------------------------------------------


WIDE, NARROW = (4,), (2,)  # _grad_operands.LANE_VECTORS: the tile row widths to choose from
BACKWARD_PATHS = {  # (SHORT_DOT, TILE_FILL, COLUMNS_FILL, INPUT_TILE_FILL), tile widths
    "gather-planes": ((0, 2.0, 2.0, 2.0), WIDE),  # grad_input path, then grad_weight's
    "gather-tiles": ((0, 0.0, 2.0, 2.0), WIDE),
    "axpy-columns": ((1000, 2.0, 0.0, 2.0), WIDE),
    "tiles-tiles": ((0, 0.0, 2.0, 0.0), WIDE),
    "tiles-tiles-narrow": ((0, 0.0, 2.0, 0.0), NARROW),
    "tiles-columns": ((0, 2.0, 0.0, 0.0), WIDE),
    "tiles-planes": ((1000, 2.0, 2.0, 0.0), WIDE),
    "axpy-planes": ((1000, 2.0, 2.0, 2.0), WIDE),
    "axpy-tiles": ((1000, 0.0, 2.0, 2.0), WIDE),
}
THRESHOLDS = ("SHORT_DOT", "TILE_FILL", "COLUMNS_FILL", "INPUT_TILE_FILL")
FORWARD_PATHS = {  # FORWARD_TILE_FILL, TILE_PANEL_BYTES, tile widths
    "gather": (2.0, 0, WIDE),
    "tiles": (0.0, 1 << 40, WIDE),
    "tiles-narrow": (0.0, 1 << 40, NARROW),
}

Setter = Callable[[object, str, object], None]


def _force_backward(path: str, setattr_: Setter) -> None:
    """Put numba/tiled's backward on one of its formulations (``setattr_``: a
    monkeypatch's, so that it is undone)."""
    from deconvbench.backends.numba_ import _grad_operands, tiled

    thresholds, lanes = BACKWARD_PATHS[path]
    for name, value in zip(THRESHOLDS, thresholds, strict=True):
        setattr_(tiled, name, value)
    setattr_(_grad_operands, "LANE_VECTORS", lanes)


def _force_forward(path: str, setattr_: Setter) -> None:
    """Put numba/tiled's forward on its gather or its GEMM tiles of one width (problems
    whose phases are stacked as channels, or with one input pixel, take neither)."""
    from deconvbench.backends.numba_ import _grad_operands, tiled

    fill, panel, lanes = FORWARD_PATHS[path]
    setattr_(tiled, "FORWARD_TILE_FILL", fill)
    setattr_(tiled, "TILE_PANEL_BYTES", panel)
    setattr_(_grad_operands, "LANE_VECTORS", lanes)


@pytest.fixture(params=sorted(BACKWARD_PATHS))
def backward_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force numba/tiled's backward onto one of its formulations."""
    _force_backward(str(request.param), monkeypatch.setattr)
    return str(request.param)


def _strategies() -> Iterator[Strategy]:
    from deconvbench.backends.numba_ import Direct, SubpixelFused, Tiled

    yield Direct()
    yield Tiled()
    yield SubpixelFused()


BLOCK_CASES = {
    "full-blocks": _problem(batch=8, in_channels=8, out_channels=8),
    "remainders": _problem(batch=7, in_channels=9, out_channels=6),
    "groups": _problem(batch=5, in_channels=10, out_channels=14, groups=2, bias=True),
    "long-window": _problem(batch=4, in_channels=24, out_channels=20, input=(3, 7), kernel=4),
    "dilation-gap": _problem(batch=4, in_channels=8, out_channels=8, dilation=3, stride=2),
    "3d": _problem(batch=4, in_channels=6, out_channels=5, input=(3, 3, 4), kernel=(2, 3, 2)),
    "1d": _problem(batch=6, in_channels=5, out_channels=9, input=(9,), kernel=5, stride=3),
    "1d-column-blocks": _problem(batch=5, in_channels=6, out_channels=40, input=(50,), kernel=4),
    # one input pixel (a latent vector): forward and grad_weight as plain GEMMs
    "one-pixel": _problem(
        batch=6,
        in_channels=10,
        out_channels=6,
        input=(1, 1),
        kernel=(4, 3),
        stride=1,
        padding=0,
        groups=2,
        bias=True,
    ),
    "one-pixel-3d": _problem(
        batch=5,
        in_channels=3,
        out_channels=9,
        input=(1, 1, 1),
        kernel=2,
        stride=2,
        padding=0,
        dtype="float64",
    ),
    # one pixel, grad_output rows of whole tile rows: grad_weight on tiles too
    "one-pixel-tiles": _problem(
        batch=5, in_channels=7, out_channels=8, input=(1, 1), kernel=4, stride=1, padding=0
    ),
    "one-pixel-tiles-groups": _problem(
        batch=9,
        in_channels=6,
        out_channels=8,
        groups=2,
        input=(1, 1),
        kernel=4,
        stride=1,
        padding=0,
        bias=True,
        dtype="float64",
    ),
    # every phase has every tap slot (the others' phases reduce over fewer taps)
    "phase-tiles": _problem(
        batch=3, in_channels=6, out_channels=10, groups=2, input=(5, 7), kernel=4, bias=True
    ),
    "phase-tiles-3d": _problem(
        batch=2,
        in_channels=3,
        out_channels=5,
        input=(3, 2, 5),
        kernel=2,
        padding=0,
        output_padding=1,
        bias=True,
        dtype="float64",
    ),
    "phase-tiles-dilation": _problem(
        batch=2, in_channels=4, out_channels=6, input=(4, 6), kernel=2, dilation=3, bias=True
    ),
    # 3 output channels, 4 taps along W: grad_weight blocks 4 taps of one channel
    "tap-blocks": _problem(batch=4, in_channels=9, out_channels=3, input=(5, 6), kernel=4),
    "float64": _problem(batch=4, in_channels=8, out_channels=4, dtype="float64", bias=True),
    # fewer than 4 output channels per group: tiled's forward stacks the phases as channels
    "phases-as-channels": _problem(
        batch=5, in_channels=6, out_channels=6, groups=2, kernel=4, bias=True
    ),
    "phases-as-channels-1d": _problem(
        batch=3,
        in_channels=5,
        out_channels=2,
        input=(7,),
        kernel=6,
        stride=3,
        padding=2,
        output_padding=1,
        dtype="float64",
    ),
}


@pytest.fixture(params=sorted(FORWARD_PATHS))
def forward_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force numba/tiled's forward onto its gather or its GEMM tiles."""
    _force_forward(str(request.param), monkeypatch.setattr)
    return str(request.param)


@needs_numba
@pytest.mark.parametrize("case", sorted(BLOCK_CASES))
def test_blocks_and_remainders_forward(forward_path: str, case: str) -> None:
    for strategy in _strategies():
        result = verify(strategy, BLOCK_CASES[case], "forward", seed=3)
        assert result.ok, f"{strategy.name} {case} ({forward_path}): {result.message}"


@needs_numba
@pytest.mark.parametrize("case", sorted(BLOCK_CASES))
def test_blocks_and_remainders_backward(backward_path: str, case: str) -> None:
    for strategy in _strategies():
        result = verify(strategy, BLOCK_CASES[case], "backward", seed=3)
        assert result.ok, f"{strategy.name} {case} ({backward_path}): {result.message}"


@needs_numba
@settings(max_examples=15)
@given(
    batch=st.integers(1, 9),
    cin_g=st.integers(1, 9),
    cout_g=st.integers(1, 9),
    groups=st.integers(1, 2),
    size=st.tuples(st.integers(1, 5), st.integers(1, 6)),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    bias=st.booleans(),
)
def test_tiled_random_larger_problems(
    batch: int,
    cin_g: int,
    cout_g: int,
    groups: int,
    size: tuple[int, int],
    kernel: int,
    stride: int,
    dilation: int,
    bias: bool,
) -> None:
    """Random problems with batch and channels past the 4×4 block, every forward and
    backward path."""
    from deconvbench.backends.numba_ import Tiled

    problem = Problem.create(
        batch=batch,
        in_channels=groups * cin_g,
        out_channels=groups * cout_g,
        input=size,
        kernel=kernel,
        stride=stride,
        padding=1 if dilation * (kernel - 1) >= 2 else 0,  # keeps every output size >= 1
        dilation=dilation,
        groups=groups,
        bias=bias,
    )
    strategy = Tiled()
    for path in FORWARD_PATHS:  # the gather, then tiles where they apply
        with pytest.MonkeyPatch.context() as patch:
            _force_forward(path, patch.setattr)
            result = verify(strategy, problem, "forward", seed=1)
            assert result.ok, f"forward {path} {problem}: {result.message}"
    for path in BACKWARD_PATHS:
        with pytest.MonkeyPatch.context() as patch:
            _force_backward(path, patch.setattr)
            result = verify(strategy, problem, "backward", seed=1)
            assert result.ok, f"{path} {problem}: {result.message}"


def _run(strategy: Strategy, problem: Problem, pass_: Pass) -> tuple[np.ndarray | None, ...]:
    inputs = make_inputs(problem, seed=5)
    if pass_ == "forward":
        prepared = strategy.prepare_forward(problem, inputs.x, inputs.weight, inputs.bias)
    else:
        prepared = strategy.prepare_backward(problem, inputs.grad_output, inputs.x, inputs.weight)
    return prepared.fetch(prepared.call())


@needs_numba
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_results_do_not_depend_on_the_thread_count(backward_path: str, pass_: Pass) -> None:
    """Each result element has one writer and a fixed summation order: bitwise equal."""
    import numba

    problem = _problem(batch=9, in_channels=12, out_channels=10, input=(7, 6), bias=True)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
    except ValueError:
        pytest.skip("numba was started with one thread")
    try:
        for strategy in _strategies():
            numba.set_num_threads(1)
            one = _run(strategy, problem, pass_)
            numba.set_num_threads(2)
            two = _run(strategy, problem, pass_)
            for a, b in zip(one, two, strict=True):
                if a is None or b is None:
                    assert a is b
                else:
                    assert np.array_equal(a, b), strategy.name
    finally:
        numba.set_num_threads(before)


def _signature_counts() -> dict[str, int]:
    """How many compiled versions every kernel of the backend has."""
    counts = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"{PKG}.{name}")
        for attr, value in vars(module).items():
            if hasattr(value, "signatures"):
                counts[f"{name}.{attr}"] = len(value.signatures)
    return counts


@needs_numba
def test_timed_calls_never_compile(backward_path: str) -> None:
    """Preparation compiles; calls on new shapes, dimensions and odd arrays reuse it."""
    for strategy in _strategies():
        for dtype in ("float32", "float64"):
            strategy.prepare_forward(_problem(dtype=dtype), *make_inputs(_problem(dtype=dtype))[:3])
            first = _problem(dtype=dtype)
            strategy.prepare_backward(first, *_backward_inputs(first))
    compiled = _signature_counts()
    assert all(n <= 2 for n in compiled.values()), compiled  # one per dtype at most
    problems = [
        _problem(input=(3,), kernel=4, stride=3),
        _problem(input=(2, 3, 4), kernel=2, groups=5, in_channels=5, out_channels=5),
        _problem(batch=6, in_channels=17, out_channels=33, dtype="float64", bias=True),
    ]
    for strategy, problem in itertools.product(_strategies(), problems):
        inputs = make_inputs(problem)
        x = np.asfortranarray(inputs.x)  # strided...
        weight = inputs.weight.copy()
        weight.flags.writeable = False  # ...and read-only inputs are copied in preparation
        forward = strategy.prepare_forward(problem, x, weight, inputs.bias)
        backward = strategy.prepare_backward(problem, inputs.grad_output, x, weight)
        before = _signature_counts()
        forward.call()
        backward.call()
        assert _signature_counts() == before, f"{strategy.name} compiled in a timed call"


FRESH_PROCESS = """
import importlib, sys
from deconvbench.backends.numba_ import Direct, SubpixelFused, Tiled
from deconvbench.harness.inputs import make_inputs
from deconvbench.problem import Problem

def counts():
    found = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module("deconvbench.backends.numba_." + name)
        for attr, value in vars(module).items():
            if hasattr(value, "signatures"):
                found[name + "." + attr] = len(value.signatures)
    return found

problems = [
    Problem.create(batch=2, in_channels=3, out_channels=channels, input=(3, 4), kernel=4,
                   stride=2, padding=1, bias=True)
    for channels in (2, 40)  # both grad_input paths of numba/tiled
] + [  # one input pixel: grad_output rows of whole tile rows (8 × 4 taps), and not
    Problem.create(batch=2, in_channels=3, out_channels=channels, input=(1, 1), kernel=(4, 1),
                   stride=1, padding=0)
    for channels in (8, 3)
]
prepared = []
for strategy in (Direct(), Tiled(), SubpixelFused()):
    for p in problems:
        i = make_inputs(p)
        if sys.argv[1] == "forward":
            prepared.append(strategy.prepare_forward(p, i.x, i.weight, i.bias))
        else:
            prepared.append(strategy.prepare_backward(p, i.grad_output, i.x, i.weight))
before = counts()
for call in prepared:
    call.call()
print(sorted(k for k, n in counts().items() if n != before[k]))
""".replace("KERNEL_MODULES", repr(tuple(KERNEL_MODULES)))


@needs_numba
@pytest.mark.parametrize("pass_", ["forward", "backward"])
def test_a_process_that_prepares_one_pass_compiles_everything_it_calls(pass_: Pass) -> None:
    """In a fresh process (nothing compiled by other tests), preparing only this pass."""
    run = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, pass_], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]", f"compiled during a timed call: {run.stdout}"


def _backward_inputs(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inputs = make_inputs(problem)
    return inputs.grad_output, inputs.x, inputs.weight


@needs_numba
def test_without_a_writable_cache_directory_kernels_cache_in_a_temporary_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numba
    from numba.core import caching

    from deconvbench.backends.numba_._jit import FALLBACK_CACHE_DIR, kernel

    # Only the NUMBA_CACHE_DIR locator, and that unset: numba finds nowhere to write.
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [caching.UserProvidedCacheLocator])
    config: Any = numba.config
    monkeypatch.setattr(config, "CACHE_DIR", "")

    def twice(a: np.ndarray) -> np.ndarray:
        return a * 2

    compiled = kernel()(twice)
    assert str(FALLBACK_CACHE_DIR) == config.CACHE_DIR
    assert compiled(np.ones(3)).tolist() == [2.0, 2.0, 2.0]


# --- capabilities ------------------------------------------------------------------------------


@needs_numba
def test_registered_available_with_their_capabilities() -> None:
    numba_strategies = [s for s in registry.strategies() if s.backend == "numba"]
    assert sorted(s.name for s in numba_strategies) == NAMES
    for strategy in numba_strategies:
        assert strategy.unavailable_reason() is None
        info = registry.describe(strategy)
        assert info.capabilities["dims"] == [1, 2, 3]
        assert info.capabilities["dtypes"] == ["float32", "float64"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision_is_refused_with_the_reason(dtype: str) -> None:
    for strategy in _strategies():
        reason = strategy.unsupported_reason(_problem(dtype=dtype))
        assert reason is not None and dtype in reason
        if HAS_NUMBA:
            with pytest.raises(Unsupported, match=dtype):
                strategy.check(_problem(dtype=dtype))

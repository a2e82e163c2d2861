"""``numpy/fft``: transposed convolution through the convolution theorem (numpy's real FFTs).

Per spatial dimension, a transposed convolution is the linear convolution of the
zero-inserted input (values at ``i·s``) with the dilated kernel (taps at ``k·d``), read from
offset ``p``. Shifting every tap to ``τ_k = k·d − p`` makes each pass read from 0, and all
three become circular convolutions of length ``n`` on a common frequency grid::

    forward      y[o]  = (x↑ ⊛ h)[o]      ŷ = x̂↑ · ĥ              keep o < O
    grad_input   gx[i] = (gy ⋆ h)[i·s]    ĉ = ĝ · conj(ĥ)         keep every s-th sample
    grad_weight  gw[k] = (x↑ ⋆ gy)[τ_k]   r̂ = conj(x̂↑) · ĝ        keep the K tap positions

(``x↑``: the zero-inserted input, ``h``: the shifted, dilated kernel.) The products feed
``x[i]·w[k]`` into ``o = i·s + τ_k``, which ranges over ``[−p, L−p)`` with ``L`` the full
convolution length; wrapping modulo ``n`` keeps every pair that lands in ``[0, O)`` apart
from every pair that does not iff ``n ≥ O + p`` (from the left) and ``n ≥ L − p`` (from the
right), and ``L − p ≤ O + p`` always. We also make ``n = s·M`` with ``M ≥ I``:

* the spectrum of a zero-inserted signal at length ``s·M`` is the ``M``-point spectrum of the
  input tiled ``s`` times, so ``x̂↑`` costs an FFT of the small input plus a copy;
* dually, keeping every ``s``-th sample of a length-``s·M`` signal is folding (summing) its
  spectrum's ``s`` tiles and inverting at length ``M``.

The channel contraction is a batched complex matmul per frequency, with ``(groups,
frequencies)`` as the batch: ``(N×Cin_g)·(Cin_g×Cout_g)`` forward. Spectra are kept in the
layout ``(g, *frequencies, rows, cols)`` so ``np.matmul`` sees contiguous stacks.

The kernel has only ``K`` taps per dimension, so its spectrum (and grad_weight, which needs
the inverse transform at only ``K`` positions) is a DFT written as one matmul per axis with a
``K×F`` twiddle matrix: one BLAS call instead of ``Cin·Cout`` tiny FFTs of a zero-padded copy,
and dilated, shifted or wrapped taps cost nothing extra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psutil
from numpy.typing import NDArray

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import tensor_elements
from ._layout import add_bias, bias_grad, weight_grouped
from ._strategy import NumpyStrategy

Complex = NDArray[np.complexfloating]
Real = NDArray[np.floating]

FAST_PRIMES: tuple[int, ...] = (2, 3, 5)
"""Sizes whose factors are all here are fast for numpy's pocketfft."""

MEMORY_FRACTION = 0.5
"""A problem whose spectra need more than this share of the machine's RAM is refused."""


def next_fast_len(target: int, primes: Sequence[int] = FAST_PRIMES) -> int:
    """The smallest integer ≥ ``target`` whose prime factors all lie in ``primes``."""
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    candidate = target
    while True:
        rest = candidate
        for p in primes:
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return candidate
        candidate += 1


@dataclass(frozen=True)
class Plan:
    """Transform sizes and tap positions for one problem (pure shape arithmetic)."""

    input: tuple[int, ...]  # I per axis
    output: tuple[int, ...]  # O per axis
    stride: tuple[int, ...]  # s per axis
    m: tuple[int, ...]  # small FFT length per axis (M ≥ I); the grid is n = s·M
    taps: tuple[tuple[int, ...], ...]  # τ_k = k·d − p modulo n, per axis

    @property
    def n(self) -> tuple[int, ...]:
        return tuple(s * m for s, m in zip(self.stride, self.m, strict=True))

    @property
    def spectrum(self) -> tuple[int, ...]:
        """Shape of a real signal's half spectrum on the ``n`` grid (last axis halved)."""
        n = self.n
        return (*n[:-1], n[-1] // 2 + 1)

    @property
    def ndim(self) -> int:
        return len(self.input)


def make_plan(problem: Problem) -> Plan:
    """Choose ``M`` per axis: fast, ``≥ I``, and ``s·M ≥ O + p`` (see the module docstring)."""
    m = tuple(
        next_fast_len(max(i, -(-(o + p) // s)))
        for i, o, p, s in zip(
            problem.input, problem.output, problem.padding, problem.stride, strict=True
        )
    )
    taps = tuple(
        tuple((k * d - p) % (s * mm) for k in range(kk))
        for kk, d, p, s, mm in zip(
            problem.kernel, problem.dilation, problem.padding, problem.stride, m, strict=True
        )
    )
    return Plan(problem.input, problem.output, problem.stride, m, taps)


def twiddles(n: int, positions: Sequence[int], nfreq: int, sign: int) -> NDArray[np.complex128]:
    """``exp(sign·2πi·t·f/n)`` for ``t`` in ``positions`` (rows), ``f`` in ``[0, nfreq)``.

    The phase is reduced modulo ``n`` in integers first, so large ``t·f`` lose no accuracy.
    """
    phase = np.outer(np.asarray(positions, dtype=np.int64), np.arange(nfreq)) % n
    result: NDArray[np.complex128] = np.exp((sign * 2j * np.pi / n) * phase)
    return result


def _complex_dtype(real: np.dtype[np.floating]) -> np.dtype[np.complexfloating]:
    return np.result_type(real, np.complex64)  # type: ignore[return-value]


def kernel_spectrum(w: Real, plan: Plan, sign: int) -> Complex:
    """DFT of the shifted, dilated kernel on the ``n`` grid, channels last.

    ``w`` is ``(g, A, B, *K)``; the result ``(g, *spectrum, A, B)``. ``sign=-1`` gives ``ĥ``;
    ``sign=+1`` gives ``conj(ĥ)`` (the kernel is real), which grad_input needs.
    """
    d = plan.ndim
    g, a_, b_ = w.shape[:3]
    kernel = w.shape[3:]
    ctype = _complex_dtype(w.dtype)
    # Channels last and complex in one pass, so every axis is the same complex GEMM
    # (cheaper than a real GEMM on cosine and sine rows plus a pass to interleave them).
    z: Complex = np.empty((g, *kernel, a_, b_), dtype=ctype)
    z.real = np.moveaxis(w, (1, 2), (-2, -1))
    z.imag = 0
    shape = [g, *kernel, a_, b_]
    # The last axis first: it only grows to n/2 + 1 bins, the others to n.
    for j in (d - 1, *range(d - 2, -1, -1)):
        bins = plan.spectrum[j]
        e = twiddles(plan.n[j], plan.taps[j], bins, sign).T.astype(ctype)  # (F, K)
        before, after = math.prod(shape[: j + 1]), math.prod(shape[j + 2 :])
        z = np.matmul(e, z.reshape(before, kernel[j], after))
        shape[j + 1] = bins
    return z.reshape(shape)


def sample_taps(r: Complex, plan: Plan, real: np.dtype[np.floating]) -> Real:
    """Inverse DFT of a real signal's half spectrum, evaluated at the tap positions only.

    ``r`` is ``(g, *spectrum, A, B)``; the result is ``(g, A, B, *K)`` real. The inverse
    along full axes comes first; the halved last axis goes last, where the missing bins are
    conjugates of the kept ones: weight 2 on every bin but 0 and n/2, and keep the real part.
    """
    d = plan.ndim
    shape = list(r.shape)
    z = r
    for j in range(d - 1):
        e = twiddles(plan.n[j], plan.taps[j], plan.n[j], +1).astype(r.dtype)  # (K, n)
        before, after = math.prod(shape[: j + 1]), math.prod(shape[j + 2 :])
        z = np.matmul(e, z.reshape(before, plan.n[j], after))
        shape[j + 1] = len(plan.taps[j])
    n_last, f_last = plan.n[-1], plan.spectrum[-1]
    weight = np.full(f_last, 2.0)
    weight[0] = 1.0
    if n_last % 2 == 0:
        weight[-1] = 1.0
    weight /= math.prod(plan.n)  # the inverse DFT's 1/n, on K×F numbers instead of the result
    e = (twiddles(n_last, plan.taps[-1], f_last, +1) * weight).astype(r.dtype)  # (K, F)
    before, after = math.prod(shape[:d]), math.prod(shape[d + 1 :])
    out = np.matmul(e, z.reshape(before, f_last, after)).real
    shape[d] = len(plan.taps[-1])
    return np.ascontiguousarray(np.moveaxis(out.reshape(shape), (-2, -1), (1, 2)), dtype=real)


def _mirror(a: Complex, axes: Sequence[int], sizes: Sequence[int]) -> Complex:
    """``a`` at frequency ``−f`` (mod size) along each axis: Hermitian partners' indices."""
    for axis, size in zip(axes, sizes, strict=True):
        a = np.take(a, (-np.arange(size)) % size, axis=axis)
    return a


def input_spectrum(x: Real, plan: Plan, groups: int, conj: bool, batch_rows: bool) -> Complex:
    """``x̂↑`` (or its conjugate) on the ``n`` grid from an ``M``-point FFT of ``x``.

    Returns ``(g, *spectrum, N, Cin_g)`` when ``batch_rows`` else ``(g, *spectrum, Cin_g, N)``.
    Tiling: the ``s·M``-point spectrum of the zero-inserted signal at frequency ``f`` is the
    ``M``-point spectrum at ``f mod M``. Along the halved last axis, bins above ``M/2`` are
    conjugates of the mirrored bins (mirrored in every other axis too).
    """
    d, m = plan.ndim, plan.m
    n_batch, cin = x.shape[:2]
    axes = tuple(range(2, 2 + d))
    xm = np.fft.rfftn(x, s=m, axes=axes)  # (N, Cin, *m[:-1], M_d//2+1)
    half = m[-1] // 2 + 1
    upper = _mirror(xm[..., m[-1] - np.arange(half, m[-1])], axes[:-1], m[:-1])
    if conj:
        full = np.concatenate([np.conj(xm), upper], axis=-1)
    else:
        full = np.concatenate([xm, np.conj(upper)], axis=-1)  # (..., M_d)
    small = full[..., np.arange(plan.spectrum[-1]) % m[-1]]  # (N, Cin, *m[:-1], F_last)
    small = small.reshape(n_batch, groups, cin // groups, *small.shape[2:])
    rows = (0, 2) if batch_rows else (2, 0)
    src = small.transpose(1, *range(3, 3 + d), *rows)  # (g, *m[:-1], F_last, rows, cols)
    # Tile each full axis s times by broadcasting into an (s, M) split of that axis.
    tiled_shape: list[int] = [groups]
    for s, mm in zip(plan.stride[:-1], m[:-1], strict=True):
        tiled_shape += [s, mm]
    tiled_shape += list(src.shape[d:])
    out: Complex = np.empty(tiled_shape, dtype=xm.dtype)
    out[...] = np.expand_dims(src, tuple(1 + 2 * j for j in range(d - 1)))
    return out.reshape(groups, *plan.spectrum, *src.shape[-2:])


def fold_to_input(c: Complex, plan: Plan, real: np.dtype[np.floating]) -> Real:
    """Every ``s``-th sample of the signal whose spectrum is ``c``: grad_input.

    ``c`` is ``(g, *spectrum, N, Cin_g)``; the result ``(N, Cin, *I)``. Decimating by ``s``
    in time is summing the ``s`` tiles of length ``M`` in frequency, then an ``M``-point
    inverse FFT (divided by ``s``).
    """
    d, m, n = plan.ndim, plan.m, plan.n
    g, rows, cols = c.shape[0], c.shape[-2], c.shape[-1]
    split: list[int] = [g]
    for s, mm in zip(plan.stride[:-1], m[:-1], strict=True):
        split += [s, mm]
    a = c.reshape(*split, plan.spectrum[-1], rows, cols)
    if d > 1:
        a = a.sum(axis=tuple(1 + 2 * j for j in range(d - 1)))  # (g, *m[:-1], F_last, N, C)
    # Halved last axis: bin f of the n grid lands on f mod M; bins above n/2 are not
    # stored and come as conjugates of the mirrored stored bins.
    last, half, step = d, m[-1] // 2 + 1, m[-1]
    before = (slice(None),) * last
    out = np.zeros((*a.shape[:last], half, rows, cols), dtype=c.dtype)
    for tile in range(plan.stride[-1]):
        freqs = np.arange(half) + tile * step
        direct = int(np.count_nonzero(freqs <= n[-1] // 2))  # a prefix of freqs
        if direct:
            out[(*before, slice(0, direct))] += a[
                (*before, slice(tile * step, tile * step + direct))
            ]
        if direct < half:
            partner = np.take(a, n[-1] - freqs[direct:], axis=last)
            out[(*before, slice(direct, half))] += np.conj(_mirror(partner, range(1, last), m[:-1]))
    spatial = out.transpose(d + 1, 0, d + 2, *range(1, d + 1))  # (N, g, C, *m[:-1], half)
    y = np.fft.irfftn(spatial, s=m, axes=tuple(range(3, 3 + d)))
    y = y[(..., *(slice(0, i) for i in plan.input))]
    gx = np.ascontiguousarray(y, dtype=real).reshape(rows, g * cols, *plan.input)
    gx *= real.type(1.0 / math.prod(plan.stride))
    return gx


def output_spectrum(gy: Real, plan: Plan, groups: int) -> Complex:
    """``ĝ``: grad_output zero-padded to the ``n`` grid, as ``(g, *spectrum, N, Cout_g)``."""
    d = plan.ndim
    n_batch, cout = gy.shape[:2]
    spec = np.fft.rfftn(gy, s=plan.n, axes=tuple(range(2, 2 + d)))
    spec = spec.reshape(n_batch, groups, cout // groups, *plan.spectrum)
    return np.ascontiguousarray(spec.transpose(1, *range(3, 3 + d), 0, 2))


def reaches_output(problem: Problem) -> bool:
    """Whether any product ``x[i]·w[k]`` lands inside the output (per axis, separably).

    When none does (padding crops everything), every result but grad_bias is exactly zero.
    Transforms would return rounding noise there instead, and noise has no scale to be
    small against: we return the exact zeros without transforming anything.
    """
    for size_in, size_out, s, p, d, kk in zip(
        problem.input,
        problem.output,
        problem.stride,
        problem.padding,
        problem.dilation,
        problem.kernel,
        strict=True,
    ):
        positions = np.add.outer(np.arange(size_in) * s, np.arange(kk) * d - p)
        if not np.any((positions >= 0) & (positions < size_out)):
            return False
    return True


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    if not reaches_output(problem):
        return add_bias(np.zeros(problem.y_shape, dtype=x.dtype), bias)
    plan, g, d = make_plan(problem), problem.groups, problem.ndim
    h = kernel_spectrum(weight_grouped(weight, g), plan, -1)  # (g, *S, Cin_g, Cout_g)
    xs = input_spectrum(x, plan, g, conj=False, batch_rows=True)  # (g, *S, N, Cin_g)
    ys = np.matmul(xs, h)  # (g, *S, N, Cout_g)
    spatial = ys.transpose(d + 1, 0, d + 2, *range(1, d + 1))  # (N, g, Cout_g, *S)
    y = np.fft.irfftn(spatial, s=plan.n, axes=tuple(range(3, 3 + d)))
    y = y[(..., *(slice(0, o) for o in plan.output))]
    out = np.ascontiguousarray(y, dtype=x.dtype).reshape(problem.y_shape)
    return add_bias(out, bias)


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    if not reaches_output(problem):
        zeros = (np.zeros(problem.x_shape, x.dtype), np.zeros(problem.weight_shape, x.dtype))
        return (*zeros, bias_grad(problem, grad_output))
    plan, g = make_plan(problem), problem.groups
    gs = output_spectrum(grad_output, plan, g)  # (g, *S, N, Cout_g)
    wg = weight_grouped(weight, g)  # (g, Cin_g, Cout_g, *K)
    h_conj = kernel_spectrum(wg.swapaxes(1, 2), plan, +1)  # (g, *S, Cout_g, Cin_g)
    grad_input = fold_to_input(np.matmul(gs, h_conj), plan, x.dtype)
    xs_conj = input_spectrum(x, plan, g, conj=True, batch_rows=False)  # (g, *S, Cin_g, N)
    r = np.matmul(xs_conj, gs)  # (g, *S, Cin_g, Cout_g)
    grad_weight = sample_taps(r, plan, weight.dtype).reshape(problem.weight_shape)
    return grad_input, grad_weight, bias_grad(problem, grad_output)


def spectrum_bytes(problem: Problem) -> int:
    """Bytes of the spectra a backward pass holds at once (the forward holds fewer)."""
    plan = make_plan(problem)
    g = problem.groups
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    bins = g * math.prod(plan.spectrum)
    per_bin = problem.batch * (cin_g + cout_g) + cin_g * cout_g
    return 2 * bins * per_bin * 2 * problem.itemsize  # complex, and one temporary of each


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements (of the real dtype: a complex number counts 2) of a call.

    The spectra on the ``n`` grid (kernel, input, output, and the product of the channel
    mix), the input's ``M``-point spectrum while it is tiled (about four copies of it:
    the rfft, the mirrored half, the full spectrum and the reindexed one), the inverse
    transform's real result over the whole grid, and the results.
    """
    x, w, y, b = tensor_elements(problem)
    if not reaches_output(problem):
        return 2 * (y if pass_ == "forward" else x + w) + b
    plan, g = make_plan(problem), problem.groups
    n, cin, cout = problem.batch, problem.in_channels, problem.out_channels
    bins = g * math.prod(plan.spectrum)
    kernel = bins * (cin // g) * (cout // g)
    small = 4 * n * cin * math.prod(plan.m)  # input_spectrum's temporaries
    if pass_ == "forward":
        spectra = kernel + 2 * bins * n * (cin // g) + 2 * bins * n * (cout // g)
        return 2 * (spectra + small) + n * cout * math.prod(plan.n) + y
    spectra = 2 * kernel + 2 * bins * n * (cin // g) + 3 * bins * n * (cout // g)
    return 2 * (spectra + small) + n * cin * math.prod(plan.m) + x + w + b


class FFT(NumpyStrategy):
    algorithm = "fft"
    description = (
        "convolution theorem with real FFTs; M-point input FFT tiled to the s·M grid, "
        "channels mixed by a batched complex matmul per frequency"
    )

    def unsupported_reason(self, problem: Problem, pass_: Pass = "forward") -> str | None:
        reason = super().unsupported_reason(problem, pass_)
        if reason is not None:
            return reason
        need = spectrum_bytes(problem)
        limit = MEMORY_FRACTION * psutil.virtual_memory().total
        if need > limit:
            return (
                f"{self.name} would hold about {need / 2**30:.1f} GiB of spectra, more than "
                f"{MEMORY_FRACTION:.0%} of this machine's memory"
            )
        return None

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)

"""The OpenVINO models of one problem, built with the opset API: forward and backward.

Layouts are OpenVINO's, and they match torch's without a copy:

* ``ConvolutionBackpropData`` takes filters ``[C_IN, C_OUT, *K]``, which is torch's
  transposed-convolution weight ``(Cin, Cout, *K)`` as it is; ``GroupConvolutionBackpropData``
  takes ``[G, C_IN/G, C_OUT/G, *K]``, a reshape of torch's ``(Cin, Cout/g, *K)`` (a numpy
  view, so the weight parameter is declared in that shape and the numpy weight is bound as a
  view of it).
* ``GroupConvolution`` takes ``[G, C_OUT/G, C_IN/G, *K]``: for grad_input, whose
  convolution maps Cout channels to Cin, that is the same grouped weight again.

OpenVINO's output size for ``ConvolutionBackpropData`` with the ``output_padding`` attribute is
``stride·(in−1) + dilation·(K−1) + 1 − pads_begin − pads_end + output_padding``: torch's,
including ``output_padding ≥ stride`` (allowed by torch when ``output_padding < dilation``);
no explicit ``output_shape`` input is needed.

The backward is one model with two or three results:

* grad_input = ``Convolution(grad_output, W)`` with the forward's stride, padding and
  dilation (the adjoint of a transposed convolution is the plain correlation, no flip). Its
  size is ``in + ⌊output_padding/stride⌋``, so with ``output_padding ≥ stride`` the extra
  trailing positions are sliced off.
* grad_weight ``[ci, co, k] = Σ_n Σ_i x[n, ci, i] · gy[n, co, i·s − p + k·d]`` is a
  convolution with the roles of batch and channels swapped: data ``gy`` as
  ``(Cout/g, g·N, *out)``, filters ``x`` as ``(g, Cin/g, N, *in)``, stride = the problem's
  dilation, dilation = the problem's stride, pads = the problem's padding. Its spatial size
  is ``K + ⌊output_padding/dilation⌋`` (sliced to ``K``); the result ``(Cout/g, g, Cin/g, *K)``
  is transposed to ``(Cin, Cout/g, *K)``. The filter spans the whole input, so oneDNN runs it
  as one large-kernel convolution.
* grad_bias = ``ReduceSum(grad_output)`` over batch and space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import openvino as ov
import openvino.opset16 as ops

from ...problem import Problem

Node = Any
"""An OpenVINO graph node (the package ships no types mypy reads)."""


def _i64(values: list[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.array(values, dtype=np.int64)


def weight_shape(problem: Problem) -> list[int]:
    """The weight parameter's shape: torch's, or OpenVINO's grouped layout when groups > 1."""
    g = problem.groups
    if g == 1:
        return list(problem.weight_shape)
    cout_g = problem.out_channels // g
    return [g, problem.in_channels // g, cout_g, *problem.kernel]


def bias_shape(problem: Problem) -> list[int]:
    """``(1, Cout, 1, ...)``: the bias parameter, broadcast over batch and space by ``Add``."""
    return [1, problem.out_channels] + [1] * problem.ndim


def _slice_spatial(node: Node, sizes: tuple[int, ...], have: tuple[int, ...]) -> Node:
    """The first ``sizes`` positions of each spatial axis (axes 2...), when ``have`` is larger."""
    if have == sizes:
        return node
    n = len(sizes)
    axes = list(range(2, 2 + n))
    return ops.slice(node, _i64([0] * n), _i64(list(sizes)), _i64([1] * n), _i64(axes))


def forward_model(problem: Problem) -> ov.Model:
    """``y = conv_transpose(x, W) (+ b)``; parameters x, W (grouped layout), and b if biased."""
    p = problem
    x = ops.parameter(list(p.x_shape), np.float32, name="x")
    w = ops.parameter(weight_shape(p), np.float32, name="weight")
    conv = ops.convolution_backprop_data if p.groups == 1 else ops.group_convolution_backprop_data
    y = conv(
        x,
        w,
        strides=list(p.stride),
        pads_begin=list(p.padding),
        pads_end=list(p.padding),
        dilations=list(p.dilation),
        output_padding=list(p.output_padding),
    )
    params = [x, w]
    if p.bias:
        b = ops.parameter(bias_shape(p), np.float32, name="bias")
        y = ops.add(y, b)
        params.append(b)
    return ov.Model([y], params, "conv_transpose")


def _conv(
    grouped: bool,
    data: Node,
    filters: Node,
    *,
    size: tuple[int, ...],
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    pads: tuple[int, ...],
    dilations: tuple[int, ...],
    want: tuple[int, ...],
) -> Node:
    """``(Group)Convolution`` with symmetric ``pads``, its output sliced to ``want``.

    ``size`` and ``kernel`` are the data's and the filter's spatial sizes. Along an axis
    whose wanted output is one position the stride is set to 1 (the first position does not
    depend on it): OpenVINO 2026.4's CPU plugin computes a convolution with one input
    channel, an output of size 1 and a stride above 1 along the same axis wrongly
    (brgconv_avx512_f32; about 1% of random small convolutions hit it).
    """
    strides = tuple(1 if w == 1 else s for w, s in zip(want, strides, strict=True))
    conv = ops.group_convolution if grouped else ops.convolution
    node = conv(data, filters, list(strides), list(pads), list(pads), list(dilations))
    have = tuple(
        (i + 2 * p - d * (k - 1) - 1) // s + 1
        for i, p, d, k, s in zip(size, pads, dilations, kernel, strides, strict=True)
    )
    return _slice_spatial(node, want, have)


def _grad_input(p: Problem, gy: Node, w: Node) -> Node:
    """``(Group)Convolution(grad_output, W)``: ``in + ⌊output_padding/stride⌋`` positions,
    sliced to ``in``."""
    return _conv(
        p.groups > 1,
        gy,
        w,
        size=p.output,
        kernel=p.kernel,
        strides=p.stride,
        pads=p.padding,
        dilations=p.dilation,
        want=p.input,
    )


def _grad_weight(p: Problem, gy: Node, x: Node) -> Node:
    """``GroupConvolution`` of grad_output (data) with x (filters), batch and channels
    swapped; ``K + ⌊output_padding/dilation⌋`` positions, sliced to ``K``."""
    g, n, nd = p.groups, p.batch, p.ndim
    cin_g, cout_g = p.in_channels // g, p.out_channels // g
    space = [3 + i for i in range(nd)]
    # gy (N, g, Cout/g, *out) -> (Cout/g, g, N, *out) -> (Cout/g, g*N, *out)
    data = ops.reshape(gy, _i64([n, g, cout_g, *p.output]), False)
    data = ops.transpose(data, _i64([2, 1, 0, *space]))
    data = ops.reshape(data, _i64([cout_g, g * n, *p.output]), False)
    # x (N, g, Cin/g, *in) -> (g, Cin/g, N, *in): GroupConvolution's [G, C_OUT/G, C_IN/G, *K]
    filters = ops.reshape(x, _i64([n, g, cin_g, *p.input]), False)
    filters = ops.transpose(filters, _i64([1, 2, 0, *space]))
    gw = _conv(
        True,
        data,
        filters,
        size=p.output,
        kernel=p.input,
        strides=p.dilation,
        pads=p.padding,
        dilations=p.stride,
        want=p.kernel,
    )
    # (Cout/g, g*Cin/g, *K) -> (Cout/g, g, Cin/g, *K) -> (g, Cin/g, Cout/g, *K) -> torch's layout
    gw = ops.reshape(gw, _i64([cout_g, g, cin_g, *p.kernel]), False)
    gw = ops.transpose(gw, _i64([1, 2, 0, *space]))
    return ops.reshape(gw, _i64(list(p.weight_shape)), False)


def backward_model(problem: Problem) -> ov.Model:
    """grad_input, grad_weight (and grad_bias) of ``conv_transpose``, in one model.

    Parameters: grad_output, x, W (grouped layout); results in that order: grad_input,
    grad_weight, and grad_bias when the problem has a bias.
    """
    p = problem
    gy = ops.parameter(list(p.y_shape), np.float32, name="grad_output")
    x = ops.parameter(list(p.x_shape), np.float32, name="x")
    w = ops.parameter(weight_shape(p), np.float32, name="weight")
    results = [_grad_input(p, gy, w), _grad_weight(p, gy, x)]
    if p.bias:
        results.append(ops.reduce_sum(gy, _i64([0, *range(2, 2 + p.ndim)]), False))
    return ov.Model(results, [gy, x, w], "conv_transpose_backward")

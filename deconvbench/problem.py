"""The problem model: one transposed convolution, its validation, shapes and cost model.

A :class:`Problem` is frozen and hashable: it is the identity of a measurement. Its
semantics are those of ``torch.nn.functional.conv_transpose{1,2,3}d``
(docs/design.md, "Semantics").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import ProblemError

DTYPES: dict[str, int] = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
"""Supported dtypes and their size in bytes."""

Pass = Literal["forward", "backward"]
PASSES: tuple[Pass, ...] = ("forward", "backward")

IntOrTuple = int | Sequence[int]


def _per_dim(name: str, value: IntOrTuple, ndim: int) -> tuple[int, ...]:
    """Broadcast a scalar to every spatial dimension, or check a tuple's length."""
    if isinstance(value, bool | str | bytes):
        raise ProblemError(f"{name}: expected an integer or a tuple of integers, got {value!r}")
    if isinstance(value, int):
        return (value,) * ndim
    try:
        values = tuple(value)
    except TypeError:
        raise ProblemError(
            f"{name}: expected an integer or a tuple of integers, got {value!r}"
        ) from None
    if len(values) != ndim:
        raise ProblemError(
            f"{name}: has {len(values)} values but the input has {ndim} spatial dimensions"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProblemError(f"{name}: expected integers, got {v!r}")
    return values


def _fmt(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


@dataclass(frozen=True)
class Problem:
    """One transposed convolution: ``y = conv_transpose(x, weight, bias)``.

    Shapes: input ``(batch, in_channels, *input)``, weight
    ``(in_channels, out_channels // groups, *kernel)``, bias ``(out_channels,)``.
    Build one with :meth:`create`, which accepts scalars for per-dimension parameters.
    """

    batch: int
    in_channels: int
    out_channels: int
    input: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = False
    dtype: str = "float32"

    @classmethod
    def create(
        cls,
        *,
        batch: int,
        in_channels: int,
        out_channels: int,
        input: IntOrTuple,
        kernel: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = False,
        dtype: str = "float32",
    ) -> Problem:
        """Build and validate a problem; scalars apply to every spatial dimension."""
        if isinstance(input, int) and not isinstance(input, bool):
            input = (input,)
        try:
            spatial = tuple(input)  # type: ignore[arg-type]  # a bool is refused below
        except TypeError:
            raise ProblemError(f"input: expected a tuple of spatial sizes, got {input!r}") from None
        ndim = len(spatial)
        if ndim not in (1, 2, 3):
            raise ProblemError(
                f"input: must have 1, 2 or 3 spatial dimensions, got {ndim} ({input!r})"
            )
        return cls(
            batch=batch,
            in_channels=in_channels,
            out_channels=out_channels,
            input=_per_dim("input", spatial, ndim),
            kernel=_per_dim("kernel", kernel, ndim),
            stride=_per_dim("stride", stride, ndim),
            padding=_per_dim("padding", padding, ndim),
            output_padding=_per_dim("output_padding", output_padding, ndim),
            dilation=_per_dim("dilation", dilation, ndim),
            groups=groups,
            bias=bias,
            dtype=dtype,
        )

    @classmethod
    def from_shapes(
        cls,
        x_shape: Sequence[int],
        weight_shape: Sequence[int],
        *,
        stride: IntOrTuple = 1,
        padding: IntOrTuple = 0,
        output_padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = False,
        dtype: str = "float32",
    ) -> Problem:
        """The problem of ``conv_transpose(x, weight, ...)`` from its operands' shapes in
        torch's layout: x ``(N, Cin, *spatial)``, weight ``(Cin, Cout/groups, *kernel)``."""
        return cls.create(
            batch=int(x_shape[0]),
            in_channels=int(x_shape[1]),
            out_channels=int(weight_shape[1]) * groups,
            input=tuple(int(s) for s in x_shape[2:]),
            kernel=tuple(int(s) for s in weight_shape[2:]),
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            dtype=dtype,
        )

    def __post_init__(self) -> None:
        for name in ("batch", "in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ProblemError(f"{name}: expected an integer, got {value!r}")
            if value < 1:
                raise ProblemError(f"{name}: must be >= 1, got {value}")
        ndim = len(self.input)
        if ndim not in (1, 2, 3):
            raise ProblemError(f"input: must have 1, 2 or 3 spatial dimensions, got {ndim}")
        for name in ("input", "kernel", "stride", "padding", "output_padding", "dilation"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or len(values) != ndim:
                raise ProblemError(
                    f"{name}: must be a tuple of {ndim} integers (one per spatial dimension), "
                    f"got {values!r}"
                )
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ProblemError(f"{name}: expected integers, got {v!r}")
        for name, low in (("input", 1), ("kernel", 1), ("stride", 1), ("dilation", 1)):
            for v in getattr(self, name):
                if v < low:
                    raise ProblemError(f"{name}: every value must be >= {low}, got {v}")
        for v in self.padding:
            if v < 0:
                raise ProblemError(f"padding: every value must be >= 0, got {v}")
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if not 0 <= op < max(s, d):
                raise ProblemError(
                    f"output_padding: must satisfy 0 <= output_padding < max(stride, dilation), "
                    f"got {op} with stride {s} and dilation {d}"
                )
        if self.in_channels % self.groups:
            raise ProblemError(
                f"groups: must divide in_channels, got groups={self.groups} "
                f"and in_channels={self.in_channels}"
            )
        if self.out_channels % self.groups:
            raise ProblemError(
                f"groups: must divide out_channels, got groups={self.groups} "
                f"and out_channels={self.out_channels}"
            )
        if not isinstance(self.bias, bool):
            raise ProblemError(f"bias: expected true or false, got {self.bias!r}")
        if self.dtype not in DTYPES:
            raise ProblemError(f"dtype: must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for axis, size in enumerate(self.output):
            if size < 1:
                raise ProblemError(
                    f"output size: (input-1)*stride - 2*padding + dilation*(kernel-1) "
                    f"+ output_padding + 1 must be >= 1, got {size} in spatial dimension {axis}"
                )

    # --- shapes -------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (1, 2 or 3)."""
        return len(self.input)

    def axes(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """Per spatial dimension ``(input, output, kernel, stride, padding, dilation)``: what
        a per-dimension decomposition (phases, fused axes) reads."""
        return tuple(
            zip(
                self.input,
                self.output,
                self.kernel,
                self.stride,
                self.padding,
                self.dilation,
                strict=True,
            )
        )

    @property
    def output(self) -> tuple[int, ...]:
        """Spatial output size: (input-1)·stride - 2·padding + dilation·(kernel-1)
        + output_padding + 1, per dimension."""
        return tuple(
            (i - 1) * s - 2 * p + d * (k - 1) + op + 1
            for i, s, p, d, k, op in zip(
                self.input,
                self.stride,
                self.padding,
                self.dilation,
                self.kernel,
                self.output_padding,
                strict=True,
            )
        )

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.input)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.output)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype]

    @property
    def storage_itemsize(self) -> int:
        """Bytes per element of the numpy arrays that carry this problem's values: numpy has
        no bfloat16, so bfloat16 values travel as float32 (``harness.inputs.storage_dtype``)."""
        return DTYPES["float32"] if self.dtype == "bfloat16" else self.itemsize

    def input_elements(self, pass_: Pass) -> int:
        """Elements a pass reads: x, weight and bias forward; grad_output, x and weight
        backward."""
        x, w = math.prod(self.x_shape), math.prod(self.weight_shape)
        if pass_ == "forward":
            return x + w + (self.out_channels if self.bias else 0)
        return math.prod(self.y_shape) + x + w

    def result_elements(self, pass_: Pass) -> int:
        """Elements a pass returns: y forward; grad_input, grad_weight (and grad_bias)
        backward."""
        if pass_ == "forward":
            return math.prod(self.y_shape)
        bias = self.out_channels if self.bias else 0
        return math.prod(self.x_shape) + math.prod(self.weight_shape) + bias

    # --- cost model ---------------------------------------------------------------------

    @property
    def flops_forward(self) -> int:
        """Useful FLOPs F0 = 2·N·(Cin/g)·Cout·∏input·∏kernel (multiply and add)."""
        return (
            2
            * self.batch
            * (self.in_channels // self.groups)
            * self.out_channels
            * math.prod(self.input)
            * math.prod(self.kernel)
        )

    @property
    def products_reaching_output(self) -> tuple[int, ...]:
        """Per spatial dimension, the (input position, kernel tap) pairs whose product lands
        inside the output: 0 <= i·stride - padding + k·dilation < output. Padding crops the
        others away (``output_padding`` only widens the output, so nothing of it is cropped)."""
        counts = []
        for n, k, s, p, d, o in zip(
            self.input, self.kernel, self.stride, self.padding, self.dilation, self.output,
            strict=True,
        ):  # fmt: skip
            total = 0
            for tap in range(k):
                # i in [0, n) with p - tap·d <= i·s < o + p - tap·d
                low = max(0, -(-(p - tap * d) // s))
                high = min(n - 1, (o + p - tap * d - 1) // s)
                total += max(0, high - low + 1)
            counts.append(total)
        return tuple(counts)

    @property
    def flops_forward_reaching(self) -> int:
        """The forward's FLOPs whose products reach the output: F0 without the products that
        padding crops away, 2·N·(Cin/g)·Cout·∏(pairs reaching the output per dimension)."""
        return (
            2
            * self.batch
            * (self.in_channels // self.groups)
            * self.out_channels
            * math.prod(self.products_reaching_output)
        )

    def flops_reaching(self, pass_: Pass) -> int:
        """:meth:`flops` counting only products that reach the output: grad_input and
        grad_weight pair the same operands as the forward, so each drops the same products."""
        if pass_ == "forward":
            return self.flops_forward_reaching
        return 2 * self.flops_forward_reaching + self.flops_grad_bias

    @property
    def flops_grad_input(self) -> int:
        """grad_input is an ordinary convolution with the same products as the forward."""
        return self.flops_forward

    @property
    def flops_grad_weight(self) -> int:
        """grad_weight pairs every input with every tap's output once: F0 again."""
        return self.flops_forward

    @property
    def flops_grad_bias(self) -> int:
        """grad_bias sums grad_output over batch and space: one add per element."""
        return self.batch * self.out_channels * math.prod(self.output) if self.bias else 0

    @property
    def flops_backward(self) -> int:
        return self.flops_grad_input + self.flops_grad_weight + self.flops_grad_bias

    def flops(self, pass_: Pass) -> int:
        return self.flops_forward if pass_ == "forward" else self.flops_backward

    def bytes_moved(self, pass_: Pass) -> int:
        """Minimum bytes read and written: every operand once, at the problem's dtype (a lower
        bound on traffic, and on the memory a pass needs)."""
        return (self.input_elements(pass_) + self.result_elements(pass_)) * self.itemsize

    def arithmetic_intensity(self, pass_: Pass) -> float:
        """Useful FLOPs per byte of minimum traffic (the roofline's x axis)."""
        return self.flops(pass_) / self.bytes_moved(pass_)

    # --- reduction lengths (for the tolerance rule) --------------------------------------

    @property
    def reduction_forward(self) -> int:
        """Longest sum behind one output element: (Cin/g)·∏kernel."""
        return (self.in_channels // self.groups) * math.prod(self.kernel)

    @property
    def reduction_grad_input(self) -> int:
        return (self.out_channels // self.groups) * math.prod(self.kernel)

    @property
    def reduction_grad_weight(self) -> int:
        return self.batch * math.prod(self.input)

    @property
    def reduction_grad_bias(self) -> int:
        return self.batch * math.prod(self.output)

    # --- text ---------------------------------------------------------------------------

    def spec(self) -> str:
        """A ``--case`` string that recreates this problem."""
        parts = [
            f"batch={self.batch}",
            f"in_channels={self.in_channels}",
            f"out_channels={self.out_channels}",
            f"input={_fmt(self.input)}",
            f"kernel={_fmt(self.kernel)}",
            f"stride={_fmt(self.stride)}",
            f"padding={_fmt(self.padding)}",
            f"output_padding={_fmt(self.output_padding)}",
            f"dilation={_fmt(self.dilation)}",
            f"groups={self.groups}",
            f"bias={str(self.bias).lower()}",
            f"dtype={self.dtype}",
        ]
        return ",".join(parts)

    def __str__(self) -> str:
        return (
            f"N{self.batch} {self.in_channels}->{self.out_channels} in {_fmt(self.input)} "
            f"k{_fmt(self.kernel)} s{_fmt(self.stride)} p{_fmt(self.padding)}"
            + (f" op{_fmt(self.output_padding)}" if any(self.output_padding) else "")
            + (f" d{_fmt(self.dilation)}" if any(d != 1 for d in self.dilation) else "")
            + (f" g{self.groups}" if self.groups != 1 else "")
            + (" +bias" if self.bias else "")
            + f" {self.dtype}"
        )


def format_tuple(values: tuple[int, ...]) -> str:
    """Tuples in text and CSV are written with ``x`` (``4x4``; one number in 1-D)."""
    return _fmt(values)

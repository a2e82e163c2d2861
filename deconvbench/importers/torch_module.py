"""A torch ``nn.Module`` (a class or a zero-argument factory) traced on meta tensors.

``package.module:attr`` names the model. It is built and run on the meta device: parameters,
inputs and activations have shapes and dtypes but no data, so a large model imports in
seconds, with no arithmetic and no memory for its tensors. A ``TorchDispatchMode`` sees
every aten call the forward makes; each transposed convolution (an ``nn.ConvTranspose*d``
module and a functional ``F.conv_transpose*d`` call alike reach ``aten.convolution`` with
``transposed=True``) becomes one layer, named after the innermost module whose forward is
running.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import InputError, ProblemError
from ..problem import Problem
from .model import ImportedLayer, ImportedModel

_aten = torch.ops.aten

CONVOLUTIONS = (_aten.convolution, _aten._convolution, _aten.convolution_overrideable)
"""Ops that take ``transposed`` as an argument: a transposed convolution when it is true."""

CONV_TRANSPOSES = (_aten.conv_transpose1d, _aten.conv_transpose2d, _aten.conv_transpose3d)
"""Ops that are always transposed (composite: they reach the mode only when nothing below
them does)."""

TRANSPOSED_MODULES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

KERAS_MODULES = ("keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras")

MESSAGE_LIMIT = 300
"""Characters of an exception's first line quoted in an error."""


@dataclass(frozen=True)
class TracedCall:
    """One transposed convolution the forward executed, and the output it made."""

    layer: ImportedLayer
    output: tuple[int, ...]
    """The shape of the tensor the call returned (its problem's ``y_shape`` when it has one)."""


def _first_line(error: BaseException) -> str:
    """``Type: the first line of the message``, short enough for one line of an error."""
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def _working_directory_on_path() -> Iterator[None]:
    """The current directory first on ``sys.path``, as ``python -m`` puts it; restored after."""
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # the model's own code may have removed it
            sys.path.remove(cwd)


def _resolve(source: str) -> tuple[object, str]:
    """The object ``package.module:attr`` names (``attr`` may be dotted), and its name."""
    module_name, _, attr = source.partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except (Exception, SystemExit) as e:
        raise InputError(f"cannot import {module_name!r}: {_first_line(e)}") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise InputError(f"{source}: {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    return target, attr.rpartition(".")[2]


def _is_keras(cls: type) -> bool:
    return any(c.__module__.startswith(KERAS_MODULES) for c in cls.__mro__)


def _keras_error(source: str) -> InputError:
    return InputError(
        f"{source}: is a Keras model; Keras models are read from .keras files "
        f"(save it with model.save('model.keras') and import that file)"
    )


def _build(target: object, source: str) -> nn.Module:
    """The model: an ``nn.Module`` class instantiated, or a factory called, with no
    arguments, on the meta device (on the CPU, then moved, when its code needs data)."""
    if isinstance(target, nn.Module):
        raise InputError(
            f"{source}: is an nn.Module instance; name its class or a zero-argument factory"
        )
    if isinstance(target, type):
        if _is_keras(target):
            raise _keras_error(source)
        if not issubclass(target, nn.Module):
            raise InputError(f"{source}: is the class {target.__name__}, not an nn.Module")
    elif not callable(target):
        raise InputError(
            f"{source}: names a value of type {type(target).__name__}, not an nn.Module class "
            f"or a factory"
        )
    make: Callable[[], object] = target
    try:
        with torch.device("meta"):
            model = make()
    except Exception:  # code that reads tensor data at construction: build it for real
        try:
            model = make()
        except Exception as e:
            raise InputError(f"{source}: construction failed: {_first_line(e)}") from None
    if not isinstance(model, nn.Module):
        if _is_keras(type(model)):
            raise _keras_error(source)
        raise InputError(f"{source}: returned a {type(model).__name__}, not an nn.Module")
    return model.to("meta")


def _input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter or buffer (float32 if none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _bind(func: Any, args: Sequence[object], kwargs: Mapping[str, object]) -> dict[str, object]:
    """An aten call's arguments by name, defaults filled in, from the op's schema."""
    bound: dict[str, object] = {}
    for i, argument in enumerate(func._schema.arguments):
        if i < len(args):
            bound[argument.name] = args[i]
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
        elif argument.has_default_value():
            bound[argument.name] = argument.default_value
    return bound


def _ints(value: object, ndim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    assert isinstance(value, Sequence)  # the schema's int[] (SymInt[] on meta: plain ints)
    values = tuple(int(v) for v in value)
    return values * ndim if len(values) == 1 else values


def _problem(arguments: Mapping[str, object]) -> Problem:
    """The problem of a transposed convolution's aten arguments; ProblemError if none."""
    x, weight = arguments["input"], arguments["weight"]
    assert isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor)
    ndim = weight.dim() - 2
    groups = arguments.get("groups", 1)
    assert isinstance(groups, int)
    return Problem.from_shapes(
        x.shape,
        weight.shape,
        stride=_ints(arguments.get("stride", 1), ndim),
        padding=_ints(arguments.get("padding", 0), ndim),
        output_padding=_ints(arguments.get("output_padding", 0), ndim),
        dilation=_ints(arguments.get("dilation", 1), ndim),
        groups=groups,
        bias=arguments.get("bias") is not None,
        dtype=str(x.dtype).removeprefix("torch."),
    )


class _Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch's is untyped
    """Records every transposed convolution, named by the module stack the hooks keep."""

    def __init__(self, root: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.root = root
        self.stack: list[tuple[str, bool]] = []
        """(module path, is a ConvTranspose module) of each forward running, innermost last."""
        self.calls: list[TracedCall] = []
        self.seen: dict[str, int] = {}

    def __torch_dispatch__(
        self,
        func: Any,
        types: Sequence[type],
        args: Sequence[object] = (),
        kwargs: Mapping[str, object] | None = None,
    ) -> object:
        out = func(*args, **(kwargs or {}))
        packet = func.overloadpacket
        if packet in CONVOLUTIONS or packet in CONV_TRANSPOSES:
            arguments = _bind(func, args, kwargs or {})
            if packet in CONV_TRANSPOSES or arguments.get("transposed") is True:
                self._record(arguments, out)
        return out

    def _name(self, ndim: int) -> str:
        """The innermost running module's path; ``path:conv_transpose2d`` for a functional
        call in a module of another kind; ``#n`` on the n-th call under one name."""
        path, transposed_module = self.stack[-1] if self.stack else (self.root, False)
        name = path if transposed_module else f"{path}:conv_transpose{ndim}d"
        n = self.seen[name] = self.seen.get(name, 0) + 1
        return name if n == 1 else f"{name}#{n}"

    def _record(self, arguments: Mapping[str, object], out: object) -> None:
        weight = arguments["weight"]
        assert isinstance(weight, torch.Tensor) and isinstance(out, torch.Tensor)
        name = self._name(weight.dim() - 2)
        output = tuple(out.shape)
        try:
            problem = _problem(arguments)
        except ProblemError as e:
            layer = ImportedLayer(name, None, refused=str(e))
        else:
            if problem.y_shape == output:
                layer = ImportedLayer(name, problem)
            else:  # torch's own output size rule disagrees with the problem's: say so
                layer = ImportedLayer(
                    name, None, refused=f"output {output} differs from its problem's "
                    f"{problem.y_shape}"
                )  # fmt: skip
        self.calls.append(TracedCall(layer, output))


@contextlib.contextmanager
def _module_stack(model: nn.Module, recorder: _Recorder) -> Iterator[None]:
    """Forward hooks on every module that keep ``recorder.stack`` (removed after)."""
    handles = []
    for path, module in model.named_modules():
        entry = (path or recorder.root, isinstance(module, TRANSPOSED_MODULES))

        def enter(_module: nn.Module, _args: object, entry: tuple[str, bool] = entry) -> None:
            recorder.stack.append(entry)

        def leave(
            _module: nn.Module, _args: object, _out: object, entry: tuple[str, bool] = entry
        ) -> None:
            while recorder.stack and recorder.stack.pop() != entry:
                pass  # a module whose forward raised inside a caught exception

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def trace(model: nn.Module, inputs: Sequence[torch.Tensor], name: str) -> list[TracedCall]:
    """Every transposed convolution of ``model(*inputs)``, in the order they run; the
    forward's exception propagates. ``name`` names the root module."""
    recorder = _Recorder(name)
    with _module_stack(model, recorder), torch.no_grad(), torch.device("meta"), recorder:
        model(*inputs)
    return recorder.calls


def _shapes(shapes: Sequence[tuple[int, ...]]) -> str:
    return " ".join(f"--input {'x'.join(map(str, shape))}" for shape in shapes)


def read_module_spec(
    source: str, inputs: list[tuple[int, ...]], batch: int | None, name: str | None
) -> ImportedModel:
    """The transposed convolutions the forward of ``package.module:attr`` runs on meta
    inputs of the ``inputs`` shapes (their first dimension set to ``batch`` when given)."""
    if not inputs:
        raise InputError(
            f"{source}: a torch module needs its forward's input shapes: give --input "
            f"(for example --input 16x100x1x1), once per positional input"
        )
    shapes = [(batch, *shape[1:]) if batch is not None else shape for shape in inputs]
    with _working_directory_on_path():
        target, attr = _resolve(source)
        model = _build(target, source)
        model_name = name or attr
        model.eval()
        dtype = _input_dtype(model)
        tensors = [torch.empty(shape, dtype=dtype, device="meta") for shape in shapes]
        try:
            calls = trace(model, tensors, model_name)
        except Exception as e:
            hint = " (it runs on meta tensors, which hold no data)" if "meta" in str(e) else ""
            raise InputError(
                f"{source}: forward failed: {_first_line(e)}{hint}; check {_shapes(shapes)}"
            ) from None
    notes = (f"batch set to {batch} (--batch)",) if batch is not None else ()
    return ImportedModel(model_name, source, tuple(c.layer for c in calls), notes)

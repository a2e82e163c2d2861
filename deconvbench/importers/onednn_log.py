"""Deconvolutions in a oneDNN verbose log or a benchdnn batch file, as torch problems.

**Verbose logs** (``ONEDNN_VERBOSE=1``, formerly ``DNNL_VERBOSE``/``MKLDNN_VERBOSE``): every
``exec`` line of a ``deconvolution`` primitive counts; ``create`` lines and other primitives
don't. The versions lay their fields out differently (``onednn_verbose,v1,`` or
``dnnl_verbose,``, a timestamp with ``ONEDNN_VERBOSE_TIMESTAMP=1``, a ``primitive``
component or none, no engine in mkldnn 0.x), so the fields are found by what they hold:
the event before the primitive kind, the implementation after it, then the prop kind, the
memory descriptors right after the prop kind (``src:f32:...`` or ``src_f32::...``), and the
problem descriptor (``g2mb4_ic16oc8_ih7oh14kh3sh2dh0ph1_iw7ow14kw3sw2dw0pw1``). The source's
data type is the dtype (mkldnn 0.x prints none: float32); a ``bia`` descriptor whose type is
not ``undef`` is a bias.

Forward prop kinds are one forward pass each. deconvbench's backward computes grad_input,
grad_weight and grad_bias together, where oneDNN runs ``backward_data`` (grad_input, no bias
descriptor) and ``backward_weights`` (grad_weight and grad_bias): per descriptor and dtype,
each ``backward_weights`` is one backward pass (with its bias), and the ``backward_data``
beyond them (a frozen layer's) are backward passes without bias. torch runs
``conv_transpose1d`` as a 2-D deconvolution of height 1 (``ih1oh1kh1sh1dh0ph0``), so a log's
height-1 deconvolution is read as 1-D, and a note says so.

**benchdnn** (``--deconv`` driver; oneDNN's tests/benchdnn/doc/driver_conv.md, knobs_dir.md):
tokens after ``--deconv``; ``--dir`` (FWD_B default; FWD_B/FWD_D/FWD_I forward,
BWD_D/BWD_W/BWD_WB/BWD_DW backward; FWD_B and BWD_WB with bias), ``--dt`` (its first type is
the source's) or the older ``--cfg``, ``--bia-dt`` (bias unless ``undef``), ``--mb`` (non-zero
overrides the descriptor's), ``--reset``, ``--batch=FILE``; lists run as their product.

**Descriptors**, by benchdnn's ``str2desc`` (knobs_desc.md): entries in any order, ``_``
ignored, ``n`` starts the name; ``g`` 1, ``mb`` 2, strides 1 and dilations 0 (oneDNN counts
dilation from 0, torch from 1) by default; a dimension exists when any of its entries is
given; without its output size the padding defaults to 0 and the output follows, without its
padding it is ``((i-1)·s - o + (k-1)·(d+1) + 1) / 2`` (truncated); depth-only entries make a
cube, height-only a square. The padding is the start's; the end's follows from the output
size, and :func:`~deconvbench.importers.padding.torch_padding` finds torch's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError, ProblemError
from ..problem import Pass, Problem
from .model import ImportedLayer, ImportedModel
from .padding import NoTorchPadding, torch_padding

DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16", "f64": "float64"}
"""oneDNN data types that deconvbench measures."""
PROP_KINDS: dict[str, Pass] = {
    "forward_training": "forward", "forward_inference": "forward",
    "forward_scoring": "forward", "backward_data": "backward", "backward_weights": "backward",
}  # fmt: skip
"""oneDNN's prop kinds of a deconvolution (``forward_scoring`` is mkldnn 0.x's inference)."""
DIRECTIONS: dict[str, tuple[Pass, bool]] = {
    "FWD_B": ("forward", True), "FWD_D": ("forward", False), "FWD_I": ("forward", False),
    "BWD_D": ("backward", False), "BWD_W": ("backward", False),
    "BWD_WB": ("backward", True), "BWD_DW": ("backward", False),
}  # fmt: skip
"""benchdnn's ``--dir`` values: the pass, and whether it forces a bias."""
DRIVERS = frozenset({
    "binary", "bnorm", "brgemm", "concat", "conv", "deconv", "eltwise", "gnorm", "graph", "ip",
    "lnorm", "lrn", "matmul", "pool", "prelu", "reduction", "reorder", "resampling", "rnn",
    "self", "shuffle", "softmax", "sum", "zeropad",
})  # fmt: skip
"""benchdnn's drivers: ``--NAME`` switches to one; only ``--deconv``'s descriptors count."""
ENTRIES = "mb|ic|id|ih|iw|oc|od|oh|ow|kd|kh|kw|sd|sh|sw|pd|ph|pw|dd|dh|dw|g"
_ENTRY = re.compile(rf"({ENTRIES})(\d+)")
_DESCRIPTOR = re.compile(rf"(?:_*(?:{ENTRIES})\d+)+_*(?:n.*)?")
_MARKER = re.compile(r"(?:onednn|dnnl|mkldnn)_verbose,")
_DATA_TYPE = re.compile(r"undef|b?f\d+(?:_e\d+m\d+)?|[su]\d+|e\d+m\d+")
NOT_A_LOG = "not a oneDNN verbose log or benchdnn batch file"
MAX_DEPTH = 16


class DescriptorError(ValueError):
    """A problem descriptor that benchdnn's rules don't accept (the message says why)."""


@dataclass(frozen=True)
class Descriptor:
    """A deconvolution's problem descriptor, spatial values in (depth,) (height,) width order
    and dilation counted from 0 as oneDNN does."""

    groups: int
    batch: int
    in_channels: int
    out_channels: int
    input: tuple[int, ...]
    output: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    name: str = ""

    def as_1d(self) -> Descriptor | None:
        """The 1-D deconvolution a 2-D one of height 1 (torch's view of a 1-D one) stands for."""
        if len(self.input) != 2 or self._dim(0) != (1, 1, 1, 1, 0, 0):
            return None
        return replace(self, **{k: getattr(self, k)[1:] for k in _SPATIAL})

    def _dim(self, axis: int) -> tuple[int, ...]:
        return tuple(getattr(self, k)[axis] for k in _SPATIAL)


_SPATIAL = ("input", "output", "kernel", "stride", "padding", "dilation")


def parse_descriptor(text: str) -> Descriptor:
    """A benchdnn (or verbose) problem descriptor; :class:`DescriptorError` if it is bad."""
    values: dict[str, int] = {}
    name, pos = "", 0
    while pos < len(text):
        if text[pos] == "_":
            pos += 1
        elif text[pos] == "n":
            name, pos = text[pos + 1 :].strip("\"'"), len(text)
        elif match := _ENTRY.match(text, pos):
            values[match[1]] = int(match[2])
            pos = match.end()
        else:
            raise DescriptorError(f"unrecognised entry {text[pos:]!r} in {text!r}")
    for key in ("ic", "oc", "g", "sd", "sh", "sw"):
        if values.get(key, 1) < 1:
            raise DescriptorError(f"{key} must be at least 1 in {text!r}")
    dims: dict[str, tuple[int, ...]] = {}
    for a in "dhw":
        i, o, k, d = (values.get(f"{e}{a}", 0) for e in "iokd")
        s, p = values.get(f"s{a}", 1), values.get(f"p{a}")
        if not (i or o or k or d or s != 1 or (p or 0) >= 1):
            continue  # no entry of this dimension: it does not exist (or is promoted)
        if not i or not k:
            raise DescriptorError(f"i{a} and k{a} must be given (at least 1) in {text!r}")
        if not o:
            p = p or 0
            o = (i - 1) * s + (k - 1) * (d + 1) - 2 * p + 1
            if o < 1:
                raise DescriptorError(f"o{a} works out to {o} in {text!r}")
        elif p is None:
            twice = (i - 1) * s - o + (k - 1) * (d + 1) + 1
            p = -(-twice // 2) if twice < 0 else twice // 2  # C's division truncates
        dims[a] = (i, o, k, s, p, d)
    if "d" in dims and ("h" in dims) != ("w" in dims):
        raise DescriptorError(f"give both h and w entries, or neither, in {text!r}")
    if "d" in dims and "h" not in dims:
        dims["h"] = dims["w"] = dims["d"]
    elif "h" in dims and "w" not in dims:
        dims["w"] = dims["h"]
    if not dims:
        raise DescriptorError(f"no spatial entries in {text!r}")
    if "ic" not in values or "oc" not in values:
        raise DescriptorError(f"ic and oc must be given in {text!r}")
    rows = [dims[a] for a in "dhw" if a in dims]
    col = [tuple(column) for column in zip(*rows, strict=True)]  # input, output, kernel, ...
    g, mb, ic, oc = values.get("g", 1), values.get("mb", 2), values["ic"], values["oc"]
    return Descriptor(g, mb, ic, oc, col[0], col[1], col[2], col[3], col[4], col[5], name)


def to_problem(desc: Descriptor, bias: bool, dtype: str) -> tuple[Problem, bool]:
    """The torch problem of a descriptor, and whether its output window is shifted by one;
    :class:`ValueError` (the reason) when there is none."""
    paddings = []
    names = ("depth", "height", "width")[-len(desc.input) :]
    for axis, i, o, k, s, p, d in zip(names, *(getattr(desc, key) for key in _SPATIAL),
                                      strict=True):  # fmt: skip
        try:
            paddings.append(torch_padding(i, k, s, d + 1, o, begin=p))
        except NoTorchPadding as e:
            raise NoTorchPadding(f"{axis}: {e}") from None
    problem = Problem.create(
        batch=desc.batch, in_channels=desc.in_channels, out_channels=desc.out_channels,
        input=desc.input, kernel=desc.kernel, stride=desc.stride,
        padding=tuple(t.padding for t in paddings),
        output_padding=tuple(t.output_padding for t in paddings),
        dilation=tuple(d + 1 for d in desc.dilation), groups=desc.groups, bias=bias,
        dtype=dtype,
    )  # fmt: skip
    return problem, any(t.shifted for t in paddings)


@dataclass
class _Entry:
    """Executions (or benchdnn runs) of one descriptor, pass, bias and data type."""

    order: int
    """Where it first appears among the file's (and its included files') entries."""
    name: str
    passes: Pass
    text: str
    bias: bool
    dtype: str
    count: int = 1
    batch: int = 0
    """benchdnn's ``--mb``: the batch, when not 0, instead of the descriptor's."""
    collapse: bool = False
    """A log's line: read a 2-D deconvolution of height 1 as 1-D."""


def _layer(entry: _Entry, notes: set[str]) -> ImportedLayer:
    """An entry as an imported layer: its torch problem, or why it has none."""
    name = entry.name
    try:
        if not entry.text:
            raise DescriptorError("no problem descriptor on the line")
        desc = parse_descriptor(entry.text)
        if desc.name:
            name += f" ({desc.name})"
        if entry.batch:
            desc = replace(desc, batch=entry.batch)
        if entry.collapse and (flat := desc.as_1d()) is not None:
            desc = flat
            notes.add("height-1 deconvolutions of the log are read as 1-D: torch runs "
                      "conv_transpose1d through oneDNN as 2-D of height 1")  # fmt: skip
        if entry.dtype not in DTYPES:
            raise DescriptorError(
                f"data type {entry.dtype} has no deconvbench dtype ({', '.join(DTYPES)})"
            )
        problem, shifted = to_problem(desc, entry.bias, DTYPES[entry.dtype])
    except (DescriptorError, NoTorchPadding, ProblemError) as e:
        return ImportedLayer(name, None, (entry.passes,), entry.count, refused=f"{e}")
    return ImportedLayer(name, problem, (entry.passes,), entry.count, shifted)


def _memory(token: str) -> tuple[str, str | None]:
    """A memory descriptor's argument and data type: ``src:f32:...`` (v3), ``src_f32::...``
    (v1, v2), ``fsrc:nchw`` (mkldnn 0.x, no data type)."""
    head, _, rest = token.partition(":")
    parts = head.split("_")
    for n in range(1, len(parts)):
        if _DATA_TYPE.fullmatch(dt := "_".join(parts[n:])):
            return "_".join(parts[:n]), dt
    dt = rest.split(":", 1)[0]
    return head, dt if _DATA_TYPE.fullmatch(dt) else None


def _verbose(line: str, number: int, order: int) -> tuple[str, _Entry] | None:
    """A deconvolution's ``exec`` line (from its marker on) as its prop kind and entry; None
    for any other line."""
    fields = line.split(",")
    if "deconvolution" not in fields:
        return None
    at = fields.index("deconvolution")
    if "exec" not in (f.split(":", 1)[0] for f in fields[1:at]):
        return None
    kind = next((f for f in fields[at + 1 :] if f in PROP_KINDS), "")
    if not kind:
        return None
    rest = fields[fields.index(kind, at) + 1 :]
    mds = dict(_memory(t) for t in (rest[0].split() if rest else ()))
    dtype = next((mds[a] for a in ("src", "fsrc", "diff_src") if a in mds), None) or "f32"
    bias = any(mds.get(a, "undef") != "undef" for a in ("bia", "fbia", "diff_bia"))
    text = next((f for f in reversed(rest) if re.match(r"(g\d+_?)?mb\d", f)), "")
    entry = _Entry(order, f"line {number}", PROP_KINDS[kind], text, bias, dtype, collapse=True)
    return kind, entry


@dataclass
class _Bench:
    """benchdnn's deconv settings as a batch file sets them."""

    driver: str = ""
    dirs: tuple[str, ...] = ("FWD_B",)
    dts: tuple[str, ...] = ("f32",)
    bias_dts: tuple[str, ...] = ("undef",)
    mbs: tuple[int, ...] = (0,)


def _options(value: str, option: str, where: str) -> tuple[str, ...]:
    items = tuple(value.split(","))
    if not all(items):
        raise InputError(f"{where}: {option}={value}: an empty value")
    return items


class _Reader:
    """One pass over a file (and the batch files it includes), gathering entries."""

    def __init__(self) -> None:
        self.bench = _Bench()
        self.entries: list[_Entry] = []
        self.backward: list[tuple[str, _Entry]] = []
        self.stack: list[Path] = []

    def read(self, path: Path, where: str = "") -> None:
        if len(self.stack) >= MAX_DEPTH or path.resolve() in self.stack:
            raise InputError(f"{self.stack[0]}: --batch includes {path} in a loop")
        self.stack.append(path.resolve())
        for number, line in _lines(path):
            if marker := _MARKER.search(line):
                if "deconvolution" not in line:
                    continue
                found = _verbose(line[marker.start() :], number, self._order())
                if found and found[0].startswith("backward"):
                    self.backward.append(found)
                elif found:
                    self.entries.append(found[1])
            elif "--" in line or self.bench.driver == "deconv":
                self._bench_line(line.split("#", 1)[0], path, where, number)
        self.stack.pop()

    def _order(self) -> int:
        return len(self.entries) + len(self.backward)

    def _bench_line(self, line: str, path: Path, where: str, number: int) -> None:
        at, name = f"{path}: line {number}", f"{where}line {number}"
        for token in line.split():
            option, _, value = token.partition("=")
            key = option[2:] if option.startswith("--") else ""
            if key in DRIVERS and not value:
                self.bench.driver = key
            elif self.bench.driver != "deconv":
                continue
            elif key == "reset":
                self.bench = _Bench(driver="deconv")
            elif key == "dir":
                self.bench.dirs = _options(value.upper(), option, at)
                if bad := [d for d in self.bench.dirs if d not in DIRECTIONS]:
                    raise InputError(f"{at}: --dir={bad[0]}: not one of {', '.join(DIRECTIONS)}")
            elif key in ("dt", "cfg"):  # the source's type: f32:f32:s8, bf16bf16f32 → f32, bf16
                types = _options(value, option, at)
                self.bench.dts = tuple(re.sub(r"^([a-z]*\d*).*", r"\1", v) for v in types)
            elif key in ("bia-dt", "bia_dt"):
                self.bench.bias_dts = _options(value, option, at)
            elif key == "mb":
                if not all(v.isdigit() for v in _options(value, option, at)):
                    raise InputError(f"{at}: --mb={value}: expected whole numbers")
                self.bench.mbs = tuple(int(v) for v in value.split(","))
            elif key == "batch":
                self._include(Path(value), path, at)
            elif not key and _DESCRIPTOR.fullmatch(token):
                self._runs(token, name)

    def _include(self, name: Path, path: Path, at: str) -> None:
        found = next((p for p in (path.parent / name, name) if p.is_file()), None)
        if found is None:
            raise InputError(f"{at}: --batch={name}: no such file")
        self.read(found, f"{found.name} ")

    def _runs(self, text: str, name: str) -> None:
        b = self.bench
        for direction, dt, bias_dt, mb in itertools.product(b.dirs, b.dts, b.bias_dts, b.mbs):
            passes, with_bias = DIRECTIONS[direction]
            bias = with_bias or (bias_dt != "undef" and direction != "BWD_D")
            self.entries.append(_Entry(self._order(), name, passes, text, bias, dt, batch=mb))

    def model_entries(self) -> list[_Entry]:
        """Every entry; a log's backward passes by descriptor and type: one per
        ``backward_weights`` (with its bias), and one without bias per ``backward_data``
        beyond them, named after the first of those."""
        entries = list(self.entries)
        weights: dict[tuple[str, str, bool], _Entry] = {}
        data: dict[tuple[str, str], list[_Entry]] = {}
        for kind, entry in self.backward:
            if kind == "backward_data":
                entry.bias = False  # oneDNN's backward_data has no bias descriptor
                data.setdefault((entry.text, entry.dtype), []).append(entry)
            elif (found := weights.setdefault((entry.text, entry.dtype, entry.bias), entry)) \
                    is not entry:  # fmt: skip
                found.count += 1
        for (text, dtype), runs in data.items():
            paired = [w for k, w in weights.items() if k[:2] == (text, dtype)]
            done = sum(w.count for w in paired)
            if paired and paired[0].order > runs[0].order:  # the pass starts at backward_data
                paired[0].order, paired[0].name = runs[0].order, runs[0].name
            if len(runs) > done:
                entries.append(replace(runs[done], count=len(runs) - done))
        entries += weights.values()
        return sorted(entries, key=lambda e: e.order)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """A file's lines, numbered from 1; :class:`InputError` for one that is binary or can't
    be read."""
    try:
        with path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if b"\0" in raw:
                    raise InputError(f"{path}: {NOT_A_LOG} (binary data on line {number})")
                yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError as e:
        raise InputError(f"{path}: {NOT_A_LOG} ({e.strerror or e})") from None


def read_onednn(path: Path, name: str | None) -> ImportedModel:
    """The deconvolutions a oneDNN verbose log executes, or a benchdnn batch file runs: one
    layer per distinct problem and pass, ``count`` its executions (or runs)."""
    reader = _Reader()
    reader.read(path)
    notes: set[str] = set()
    layers: dict[tuple[object, ...], ImportedLayer] = {}
    for entry in reader.model_entries():
        layer = _layer(entry, notes)
        key = (layer.problem, layer.passes, layer.shifted) if layer.problem else (
            entry.text, entry.batch, layer.passes, layer.refused)  # fmt: skip
        if key in layers:
            layer = replace(layer, name=layers[key].name, count=layers[key].count + layer.count)
        layers[key] = layer
    return ImportedModel(name or path.stem, str(path), tuple(layers.values()), tuple(sorted(notes)))

"""Per-layer numeric diff: every intermediate tensor the firmware computed against the reference.

`diff_firmware(model, board)` builds the HIL image with `-DEREID_LAYER_DUMP` (the HIL app
then answers DUMP requests: the model runs once and its layer hook streams each layer's
outputs right after the layer ran; `codegen.layer_output_table` says where they live),
runs one input on the board (the host build as a local process, QEMU, or a serial port),
runs the reference with every tensor kept (LiteRT BUILTIN_REF with
`experimental_preserve_all_tensors`; for graphs with Lce* ops, the SegmentedRunner's
segments with every tensor they produce as an output), and compares tensor by tensor in
layer order. The first layer whose output differs is where to look: the layers before it
computed the same bytes from the same input.
"""
from __future__ import annotations

import dataclasses
import json
import re
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.atomic import output_dir, write_text
from edgereid.boards import load_board
from edgereid.errors import FirmwareError, HilError
from edgereid.firmware.build import SANITIZE_FLAGS, _run_make, board_spec, generate
from edgereid.firmware.frontend import read_tflite
from edgereid.firmware.lowering import lower_graph
from edgereid.firmware.patches import plan_with_patches
from edgereid.firmware.planner import PATCHED
from edgereid.firmware.toolchain import Toolchain
from edgereid.hil import protocol as P
from edgereid.hil.runner import Reference, open_transport
from edgereid.hil.transports import HilClient

DUMP_DEFINE = "-DEREID_LAYER_DUMP"
_RECORD = struct.Struct("<IIII")          # layer, output k, ran, bytes
_MAX_OUTPUTS_PER_LAYER = 256              # codegen.layer_output_table emits at most this many


@dataclass
class TensorDiff:
    layer: int
    op: str
    kernel: str | None
    output: int                # k-th output of the layer
    tensor: int                # tensor index in the model
    name: str
    dtype: str
    shape: tuple
    bytes: int
    ran: bool                  # the firmware reached this layer
    bytes_differing: int       # -1: no reference value for this tensor
    elements_differing: int
    max_abs_diff: float
    in_patch_stage: bool = False   # computed stripe by stripe, never whole: not compared

    @property
    def differs(self) -> bool:
        return not self.in_patch_stage and (not self.ran or self.bytes_differing != 0)


@dataclass
class DiffResult:
    model: str
    board: str
    target: str
    input: str                 # "seed 0" or the .npy path
    reference: str
    status: int                # ereid_model_invoke's return: 0 ok, k > 0 layer k-1 failed
    tensors: list[TensorDiff] = field(default_factory=list)
    build_dir: str = ""

    @property
    def first_differing(self) -> TensorDiff | None:
        return next((t for t in self.tensors if t.differs), None)

    @property
    def passed(self) -> bool:
        return self.status == 0 and self.first_differing is None

    def summary(self) -> str:
        first = self.first_differing
        if self.status != 0:
            head = f"ereid_model_invoke returned {self.status} (layer {self.status - 1} failed); "
        else:
            head = ""
        if first is None:
            return head + (f"no layer differs: all {len(self.tensors)} layer outputs equal {self.reference} "
                           "byte for byte")
        if not first.ran:
            return head + f"first differing layer: {first.layer} ({first.op}): did not run"
        return (head + f"first differing layer: {first.layer} ({first.op}, kernel {first.kernel}, tensor "
                f"{first.tensor} '{first.name}'): {first.bytes_differing:,} of {first.bytes:,} bytes differ, "
                f"max abs diff {_fmt(first.max_abs_diff)}")

    def format(self) -> str:
        rows = [f"{'#':>4}  {'op':<22} {'kernel':<34} {'tensor':>6} {'bytes':>9} {'differ':>9} {'max|d|':>8}"]
        for t in self.tensors:
            differ = "in patch" if t.in_patch_stage else "not run" if not t.ran else \
                ("no ref" if t.bytes_differing < 0 else f"{t.bytes_differing:,}")
            rows.append(f"{t.layer:>4}  {t.op:<22} {(t.kernel or '-'):<34} {t.tensor:>6} {t.bytes:>9,} "
                        f"{differ:>9} {_fmt(t.max_abs_diff):>8}")
        rows.append(f"{self.model} on {self.target}, input {self.input}, against {self.reference}")
        rows.append(self.summary())
        return "\n".join(rows)

    def to_dict(self) -> dict:
        first = self.first_differing
        return {"model": self.model, "board": self.board, "target": self.target, "input": self.input,
                "reference": self.reference, "status": self.status, "passed": self.passed,
                "first_differing_layer": None if first is None else first.layer,
                "summary": self.summary(),
                "tensors": [{**dataclasses.asdict(t), "shape": list(t.shape)} for t in self.tensors]}

    def to_markdown(self) -> str:
        out = [f"# Per-layer diff: {Path(self.model).name} on {self.board}", "",
               f"- target: {self.target}; input: {self.input}; reference: {self.reference}",
               f"- {self.summary()}", "",
               "| layer | op | kernel | tensor | bytes | bytes differing | max abs diff |",
               "|---|---|---|---|---|---|---|"]
        for t in self.tensors:
            differ = "in a patch stage" if t.in_patch_stage else "not run" if not t.ran else \
                ("no reference" if t.bytes_differing < 0 else f"{t.bytes_differing:,}")
            out.append(f"| {t.layer} | {t.op} | {t.kernel or '-'} | {t.tensor} `{t.name}` | {t.bytes:,} | "
                       f"{differ} | {_fmt(t.max_abs_diff)} |")
        return "\n".join(out) + "\n"


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not float(x).is_integer() else f"{int(x)}"


# ---- reference with every tensor ------------------------------------------------------

def reference_tensors(model_path, arrays: list[np.ndarray]) -> tuple[dict[int, np.ndarray], str]:
    """{tensor index: value} of every tensor an op produces, and the reference's name."""
    from edgereid.tflite.reader import parse_graph
    from edgereid.tflite.reference import LCE_CUSTOM_CODES, _litert, uses_lce

    data = Path(model_path).read_bytes()
    graph = parse_graph(data, str(model_path))
    produced = [t for op in graph.ops for t in op.outputs if t >= 0]
    if uses_lce(data):
        return _segmented_tensors(graph, arrays, LCE_CUSTOM_CODES), \
            "LiteRT BUILTIN_REF + Larq Compute Engine (reference bconv), by segment"
    Interpreter, OpResolverType = _litert()
    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    details = interp.get_input_details()
    if len(details) != len(arrays):
        raise FirmwareError(f"{model_path} takes {len(details)} input(s), got {len(arrays)}")
    for d, x in zip(details, arrays):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    values = {t: interp.get_tensor(t).copy() for t in produced}
    return values, "LiteRT BUILTIN_REF"


def _segmented_tensors(graph, arrays, lce_codes) -> dict[int, np.ndarray]:
    """SegmentedRunner's split (consecutive ops of one runtime), each segment giving every
    tensor it produces."""
    from edgereid.tflite.reference import LceRunner, LiteRTRunner
    from edgereid.tflite.writer import write_graph

    segments: list[tuple[bool, list]] = []
    for op in graph.ops:
        lce = op.custom_code in lce_codes
        if segments and segments[-1][0] == lce:
            segments[-1][1].append(op)
        else:
            segments.append((lce, [op]))
    values = dict(zip(graph.inputs, arrays))
    for lce, ops in segments:
        produced = tuple(dict.fromkeys(t for op in ops for t in op.outputs if t >= 0))
        inputs = tuple(dict.fromkeys(t for op in ops for t in op.inputs
                                     if t >= 0 and t not in produced and not graph.tensors[t].is_const))
        sub = write_graph(dataclasses.replace(graph, ops=list(ops), inputs=inputs, outputs=produced, metadata={}))
        runner = LceRunner(sub) if lce else LiteRTRunner(sub, reference_kernels=True)
        try:
            values.update(zip(produced, runner.run([values[t] for t in inputs])))
        finally:
            runner.close()
    return values


# ---- build and run ---------------------------------------------------------------------

def build_dump_image(model_path, board, out_dir, *, dsp: bool = True, sanitize: bool = False,
                     edit_project: Callable[[Path], None] | None = None, patches: str = "off",
                     ram_budget: int | None = None):
    """The HIL image of `model_path` with the per-layer dump compiled in (-DEREID_LAYER_DUMP,
    baked into the Makefile). `edit_project(folder)` runs on the generated project before it
    is compiled (fault injection in tests); `patches`/`ram_budget` as build_firmware's.
    Returns (image, graph, layers, schedule)."""
    spec = board_spec(board)
    if sanitize and spec.is_cortex_m:
        raise FirmwareError(f"sanitize=True builds run on the host only, board {spec.name} is {spec.core}")
    graph = read_tflite(model_path)
    layers = lower_graph(graph)
    schedule = plan_with_patches(graph, layers, patches, ram_budget)
    if any(len(layer.writes) > _MAX_OUTPUTS_PER_LAYER for layer in layers):
        raise FirmwareError(f"{model_path}: a layer writes more than {_MAX_OUTPUTS_PER_LAYER} tensors; "
                            "the per-layer dump takes up to that many")
    project = generate(graph, spec, out_dir, hil=True, layers=layers, schedule=schedule, dsp=dsp)
    flags = " ".join([DUMP_DEFINE, *([SANITIZE_FLAGS] if sanitize else [])])
    mk = project / "Makefile"
    text = mk.read_text()
    if "EXTRA_CFLAGS =\n" not in text or "EXTRA_LDFLAGS =\n" not in text:
        raise FirmwareError(f"{mk}: no empty EXTRA_CFLAGS/EXTRA_LDFLAGS line to put {DUMP_DEFINE} in")
    text = text.replace("EXTRA_CFLAGS =\n", f"EXTRA_CFLAGS = {flags}\n")
    if sanitize:  # as build_firmware(sanitize=True): the link needs the runtime too
        text = text.replace("EXTRA_LDFLAGS =\n", f"EXTRA_LDFLAGS = {SANITIZE_FLAGS}\n")
    mk.write_text(text)
    if edit_project is not None:
        edit_project(project)
    _run_make(project, spec, "")
    image = project / Toolchain.of(spec).target
    if not image.is_file():
        raise FirmwareError(f"the build produced no {image.name} in {project}")
    return image, graph, layers, schedule


def _request_dump(transport, payload: bytes, max_reply: int, timeout: float) -> bytes:
    """One DUMP request and its reply payload (no resends: the reply streams from a run)."""
    seq = 1
    transport.write(P.encode(P.DUMP, seq, payload))
    decoder = P.FrameDecoder(max_payload=max(max_reply, P.ERROR_MAX))
    deadline = time.monotonic() + timeout
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            if frame.seq != seq:
                continue
            if frame.type == P.ERROR:
                code, bad_type, message = P.parse_error(frame.payload)
                raise HilError(f"{transport.name}: DUMP refused ({P.ERROR_NAMES.get(code, code)}: {message}); "
                               "is the image built with -DEREID_LAYER_DUMP?")
            if frame.type != P.DUMP | P.REPLY:
                raise HilError(f"{transport.name}: DUMP answered with {frame.name}")
            return frame.payload
        left = deadline - time.monotonic()
        if left <= 0:
            raise HilError(f"{transport.name}: no DUMP reply within {timeout:g} s")
        data = transport.read(min(left, 0.5))
        if data:
            decoder.feed(data)


def parse_dump(payload: bytes) -> tuple[int, dict[tuple[int, int], tuple[bool, bytes]]]:
    """(status, {(layer, k): (ran, bytes)}) from a DUMP reply payload."""
    if len(payload) < 8:
        raise HilError(f"DUMP reply of {len(payload)} bytes, expected at least 8")
    (records,) = struct.unpack_from("<I", payload, 0)
    pos, out = 4, {}
    for _ in range(records):
        if pos + _RECORD.size > len(payload) - 4:
            raise HilError(f"DUMP reply ends inside record {len(out)} of {records}")
        layer, k, ran, nbytes = _RECORD.unpack_from(payload, pos)
        pos += _RECORD.size
        if pos + nbytes > len(payload) - 4:
            raise HilError(f"DUMP reply: record {len(out)} (layer {layer}) says {nbytes} bytes, "
                           f"{len(payload) - 4 - pos} left")
        out[(layer, k)] = (bool(ran), bytes(payload[pos:pos + nbytes]))
        pos += nbytes
    if pos != len(payload) - 4:
        raise HilError(f"DUMP reply has {len(payload) - 4 - pos} bytes after its {records} records")
    (status,) = struct.unpack_from("<i", payload, pos)
    return status, out


def _compare(got: bytes, want: np.ndarray) -> tuple[int, int, float]:
    """(bytes differing, elements differing, max abs difference) of firmware bytes vs a reference array."""
    want_raw = np.ascontiguousarray(want).tobytes()
    if len(got) != len(want_raw):
        return max(len(got), len(want_raw)), want.size, float("inf")
    g8, w8 = np.frombuffer(got, np.uint8), np.frombuffer(want_raw, np.uint8)
    nbytes = int(np.count_nonzero(g8 != w8))
    if nbytes == 0:
        return 0, 0, 0.0
    g = np.frombuffer(got, want.dtype)
    w = want.reshape(-1)
    if np.issubdtype(want.dtype, np.integer):
        d = np.abs(g.astype(np.int64) - w.astype(np.int64))
        return nbytes, int(np.count_nonzero(d)), float(d.max())
    d = np.abs(g.astype(np.float64) - w.astype(np.float64))
    d = np.where(np.isnan(d), np.inf, d)   # NaN against a number counts as infinitely far
    bits = np.dtype(f"u{want.dtype.itemsize}")
    return nbytes, int(np.count_nonzero(g.view(bits) != w.view(bits))), float(d.max())


def _input_arrays(reference, seed: int, input_path) -> tuple[list[np.ndarray], bytes, str]:
    """(arrays for the reference, the packed input bytes for the firmware, a description)."""
    specs = reference.inputs
    if input_path is None:
        packed = reference.random_inputs(1, seed)[0]
        raw = np.ascontiguousarray(packed).view(np.uint8).reshape(-1)
        arrays = [raw[o:o + s.nbytes].view(s.dtype).reshape(s.shape)
                  for s, o in zip(specs, reference.input_offsets)]
        return arrays, raw.tobytes(), f"seed {seed}"
    if len(specs) != 1:
        raise FirmwareError(f"--input {input_path}: a .npy gives one array; the model takes {len(specs)} inputs "
                            "(use a seed)")
    try:
        x = np.load(input_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FirmwareError(f"--input {input_path}: cannot read it as .npy ({exc})") from None
    spec = specs[0]
    if x.dtype != spec.dtype or tuple(x.shape) != tuple(spec.shape):
        raise FirmwareError(f"--input {input_path} holds {x.dtype} {tuple(x.shape)}; the model takes "
                            f"{spec.dtype} {tuple(spec.shape)}")
    x = np.ascontiguousarray(x)
    return [x], x.tobytes(), str(input_path)


def diff_firmware(model_path, board="host", *, seed: int = 0, input_path=None, out_dir=None,
                  dsp: bool = True, sanitize: bool = False, port: str | None = None, timeout: float = 300.0,
                  patches: str = "off", ram_budget: int | None = None,
                  edit_project: Callable[[Path], None] | None = None) -> DiffResult:
    """Run `model_path`'s firmware once on `board` and diff every layer's outputs against the
    reference (module docstring). Input: the HIL runner's seeded random input (`seed`) or
    `input_path` (.npy of the model's one input, its dtype and shape). `out_dir`: keep
    the build (out_dir/firmware) and write out_dir/diff.json and diff.md (replaced as a
    whole; refused when it holds files edgereid did not write). `port`: a real board's
    serial port. `patches`, `ram_budget`: as build_firmware's (maps inside a patch-based
    stage are never whole: reported, not compared). `edit_project`: see build_dump_image."""

    if not timeout > 0:
        raise FirmwareError(f"timeout must be more than 0 seconds, got {timeout}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FirmwareError(f"model {model_path} does not exist")
    board_obj = load_board(board) if isinstance(board, (str, Path)) else board
    reference = Reference(model_path)
    arrays, packed, described = _input_arrays(reference, seed, input_path)
    ref_values, ref_name = reference_tensors(model_path, arrays)

    def run(work: Path) -> DiffResult:
        image, graph, layers, schedule = build_dump_image(model_path, board_obj, work / "firmware", dsp=dsp,
                                                          sanitize=sanitize, edit_project=edit_project,
                                                          patches=patches, ram_budget=ram_budget)
        max_reply = 8 + sum(_RECORD.size + graph.tensors[t].nbytes for layer in layers for t in layer.writes
                            if schedule.location(t)[0] != PATCHED)
        with open_transport(board_obj, image, port) as transport:
            info = HilClient(transport, timeout=min(10.0, timeout)).hello()
            if info.input_bytes != len(packed):
                raise HilError(f"{transport.name} runs a model with {info.input_bytes} input bytes; "
                               f"{model_path.name} takes {len(packed)}")
            status, dumped = parse_dump(_request_dump(transport, packed, max_reply, timeout))
            target = transport.name
        result = DiffResult(model=str(model_path), board=board_obj.name, target=target, input=described,
                            reference=ref_name, status=status, build_dir=str(work / "firmware"))
        for i, layer in enumerate(layers):
            for k, t in enumerate(layer.writes):
                tensor = graph.tensors[t]
                ran, got = dumped.get((i, k), (False, b""))
                want = ref_values.get(t)
                if want is None or want.nbytes != tensor.nbytes:
                    differ, elements, worst = -1, 0, 0.0
                else:
                    differ, elements, worst = _compare(got, want) if ran else (tensor.nbytes, want.size, 0.0)
                result.tensors.append(TensorDiff(
                    layer=i, op=layer.op.kind, kernel=layer.kernel, output=k, tensor=t, name=tensor.name,
                    dtype=str(tensor.dtype), shape=tuple(tensor.shape), bytes=tensor.nbytes, ran=ran,
                    bytes_differing=differ, elements_differing=elements, max_abs_diff=worst,
                    in_patch_stage=schedule.location(t)[0] == PATCHED))
        return result

    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="edgereid-diff-") as tmp:
            result = run(Path(tmp))
            result.build_dir = ""
            return result
    with output_dir(out_dir, FirmwareError, what="diff output folder") as work:
        result = run(Path(work))
        write_text(Path(work) / "diff.json", json.dumps(result.to_dict(), indent=1) + "\n")
        write_text(Path(work) / "diff.md", result.to_markdown())
    result.build_dir = str(Path(out_dir) / "firmware")
    return result


# ---- fault injection: shows the tool finds a kernel bug ------------------------------------

def flip_kernel_output(layer: int, byte: int) -> Callable[[Path], None]:
    """An `edit_project` callback: the project's copy of the kernel that `layer` runs
    (layers.json "kernel") is renamed `<kernel>_unbroken` and wrapped by a function of the
    kernel's name and signature that flips the lowest bit of output byte `byte` after every
    call (the output: the kernel's last non-const int8_t * parameter)."""
    from edgereid.firmware.codegen import _DEFINITION, kernel_index

    def edit(project: Path) -> None:
        kernel = json.loads((project / "layers.json").read_text())["layers"][layer]["kernel"]
        if not kernel:
            raise FirmwareError(f"layer {layer} runs no kernel (aliased or without code)")
        src = kernel_index(project / "kernels")[kernel]
        text = src.read_text(encoding="utf-8")
        m = next(m for m in _DEFINITION.finditer(text) if m.group(1) == kernel)
        params = [p.strip() for p in m.group(2).split(",")]
        names = [re.findall(r"\w+", p)[-1] for p in params]
        outs = [n for p, n in zip(params, names) if re.match(r"^int8_t\s*\*", p)]
        if not outs:
            raise FirmwareError(f"{kernel} has no int8_t * output parameter to flip")
        head = text[m.start():m.end() - 1]
        wrapper = (f"\n{head}\n{{\n    ereid_status s = {kernel}_unbroken({', '.join(names)});\n"
                   f"    {outs[-1]}[{byte}] = (int8_t)({outs[-1]}[{byte}] ^ 1);\n    return s;\n}}\n")
        src.write_text(text[:m.start()] + head.replace(f"{kernel}(", f"{kernel}_unbroken(", 1)
                       + text[m.end() - 1:] + wrapper, encoding="utf-8")
    return edit


__all__ = ["DiffResult", "TensorDiff", "build_dump_image", "diff_firmware", "flip_kernel_output", "parse_dump",
           "reference_tensors"]

"""Hardware-in-the-loop run: build the HIL image for a model, feed it seeded random
inputs over the board's UART (or, on the host board, the host build's stdin/stdout),
compare every output byte with the reference run (LiteRT's BUILTIN_REF kernels, or
Larq Compute Engine's for Lce* ops), and collect instruction/cycle/ns counts per
inference and layer.
"""
import json
import statistics
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgereid.atomic import check_output_dir, write_text
from edgereid.boards import load_board
from edgereid.errors import HilError, TFLiteError
from edgereid.firmware import build_firmware
from edgereid.firmware.planner import packed_input_offsets
from edgereid.hil import protocol as P
from edgereid.hil.transports import HilClient, HostTransport, QemuTransport, SerialTransport
from edgereid.tflite import read_graph, reference_runner, seeded_inputs

MAX_MISMATCHES_KEPT = 1000
_REFERENCE_DESCRIPTIONS = {"LiteRT BUILTIN_REF": "ai_edge_litert Interpreter, OpResolverType.BUILTIN_REF"}


@dataclass(frozen=True)
class Mismatch:
    inference: int
    offset: int
    expected: int
    got: int


@dataclass
class HilResult:
    board: str
    model: str
    target: str                 # "mps2-an386 (QEMU)", "stm32h743 on /dev/ttyACM0", "host (local process)"
    n: int
    seed: int
    unit: str                   # "instructions" (QEMU), "cycles" (real core) or "ns" (host build)
    counts: list                # per inference, in `unit`
    per_layer: list             # [{"index", "name", "median", "min", "max"}] in `unit`
    mismatches: list            # Mismatch, first MAX_MISMATCHES_KEPT
    mismatched_bytes: int
    mismatched_inferences: int
    output_bytes: int
    resends: int
    image: str
    core: str = ""
    notes: list = field(default_factory=list)
    reference: str = "LiteRT BUILTIN_REF"   # the runner the outputs were compared with (Reference.name)

    @property
    def passed(self) -> bool:
        return self.mismatched_bytes == 0

    def count_stats(self) -> dict:
        c = self.counts
        return {"median": statistics.median(c), "min": min(c), "max": max(c)} if c else {}

    def format(self, max_lines: int = 20) -> str:
        lines = []
        for m in self.mismatches[:max_lines]:
            lines.append(f"mismatch: inference {m.inference} byte {m.offset}: expected {m.expected}, got {m.got}")
        if self.mismatched_bytes > max_lines:
            lines.append(f"... {self.mismatched_bytes - max_lines} more mismatched bytes")
        s = self.count_stats()
        if s:
            lines.append(f"{self.unit} per inference on {self.target} ({self.core}): median {s['median']:,.0f}, "
                         f"min {s['min']:,.0f}, max {s['max']:,.0f} ({len(self.counts)} inferences)")
        lines.append(f"{self.n} inferences, {self.output_bytes} output bytes each: "
                     f"{self.mismatched_inferences} with mismatches, {self.mismatched_bytes} bytes differ"
                     + (f", {self.resends} frames resent" if self.resends else ""))
        lines.extend(self.notes)
        lines.append(f"PASS: output equals {self.reference} byte for byte" if self.passed
                     else f"FAIL: output differs from {self.reference}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"board": self.board, "model": self.model, "target": self.target, "core": self.core,
                "n": self.n, "seed": self.seed, "passed": self.passed, "unit": self.unit,
                "per_inference": self.count_stats(), "counts": self.counts, "per_layer": self.per_layer,
                "mismatched_bytes": self.mismatched_bytes, "mismatched_inferences": self.mismatched_inferences,
                "mismatches": [m.__dict__ for m in self.mismatches[:100]],
                "output_bytes": self.output_bytes, "resends": self.resends, "image": self.image,
                "reference": _REFERENCE_DESCRIPTIONS.get(self.reference, self.reference)}

    def to_markdown(self) -> str:
        s = self.count_stats()
        out = [f"# HIL report: {Path(self.model).name} on {self.board}", "",
               f"- target: {self.target} ({self.core})",
               f"- inferences: {self.n} (seed {self.seed}), result: {'PASS' if self.passed else 'FAIL'} "
               f"({self.mismatched_bytes} of {self.n * self.output_bytes} output bytes differ from {self.reference})"]
        if s:
            out.append(f"- {self.unit} per inference: median {s['median']:,.0f}, min {s['min']:,.0f}, "
                       f"max {s['max']:,.0f}")
        if self.unit == "instructions":
            out.append("- counted by SysTick under QEMU -icount shift=0: instructions, not cycles "
                       "(a real core adds stalls); resolution one tick")
        elif self.unit == "ns":
            out.append("- wall-clock nanoseconds on the host (clock_gettime(CLOCK_MONOTONIC) in the host "
                       "build): for checking, not for budgeting an MCU")
        out += ["", f"| # | layer | median {self.unit} | min | max | share |", "|---|---|---|---|---|---|"]
        total = sum(layer["median"] for layer in self.per_layer) or 1
        for layer in self.per_layer:
            out.append(f"| {layer['index']} | {layer['name']} | {layer['median']:,.0f} | {layer['min']:,.0f} | "
                       f"{layer['max']:,.0f} | {100 * layer['median'] / total:.1f}% |")
        return "\n".join(out) + "\n"

    def write_report(self, path) -> Path:
        path = Path(path)
        if path.suffix.lower() == ".json":
            return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return write_text(path, self.to_markdown())


# ---- reference ----------------------------------------------------------------

class Reference:
    """The byte-exact target of the firmware for one model: LiteRT's reference kernels, or
    Larq Compute Engine's interpreter for models with Lce* ops (edgereid.tflite.reference_runner)."""

    def __init__(self, model_path):
        try:
            # The reader's checks first: LiteRT itself crashes the process on some models it
            # loads (a constant tensor as graph input segfaults in set_tensor).
            read_graph(model_path)
            self.runner = reference_runner(model_path)
        except TFLiteError as exc:
            raise HilError(str(exc)) from None
        self.name = self.runner.name
        self.inputs, self.outputs = self.runner.inputs, self.runner.outputs
        if not self.inputs or not self.outputs:
            raise HilError(f"{model_path}: HIL runs models with at least one input and one output, "
                           f"found {len(self.inputs)} inputs and {len(self.outputs)} outputs")
        self.input, self.output = self.inputs[0], self.outputs[0]
        # Several inputs (outputs) travel as one buffer, laid out as the firmware reads (writes) it:
        # each starts at a multiple of 4 bytes, padding bytes zero (model.h, planner.packed_input_offsets).
        self.input_offsets, self._packed_bytes = packed_input_offsets([spec.nbytes for spec in self.inputs])
        self.output_offsets, self._packed_output_bytes = packed_input_offsets([s.nbytes for s in self.outputs])

    @property
    def input_bytes(self) -> int:
        return self._packed_bytes

    @property
    def output_bytes(self) -> int:
        return self._packed_output_bytes

    def pack_outputs(self, arrays) -> bytes:
        """The reference's outputs as the firmware's one output buffer (zero padding)."""
        buf = bytearray(self._packed_output_bytes)
        for y, offset in zip(arrays, self.output_offsets):
            raw = np.ascontiguousarray(y).tobytes()
            buf[offset:offset + len(raw)] = raw
        return bytes(buf)

    def random_inputs(self, n: int, seed: int) -> list[np.ndarray]:
        """n inputs from edgereid.tflite.seeded_inputs: arrays of the input's dtype and shape,
        or with several inputs, the packed buffers (uint8) the firmware takes."""
        sets = seeded_inputs(self.inputs, n, seed)
        if len(self.inputs) == 1:
            return [arrays[0] for arrays in sets]
        packed = []
        for arrays in sets:
            buf = np.zeros(self._packed_bytes, np.uint8)
            for x, offset in zip(arrays, self.input_offsets):
                raw = np.frombuffer(x.tobytes(), np.uint8)
                buf[offset:offset + raw.size] = raw
            packed.append(buf)
        return packed

    def run(self, x: np.ndarray) -> bytes:
        if len(self.inputs) == 1:
            arrays = [x]
        else:
            raw = np.ascontiguousarray(x).view(np.uint8).reshape(-1)
            if raw.size != self._packed_bytes:
                raise HilError(f"packed input has {raw.size} bytes, the model takes {self._packed_bytes}")
            arrays = [raw[offset:offset + spec.nbytes].view(spec.dtype).reshape(spec.shape)
                      for spec, offset in zip(self.inputs, self.input_offsets)]
        try:
            return self.pack_outputs(self.runner.run(arrays))
        except TFLiteError as exc:
            raise HilError(str(exc)) from None


# ---- image ---------------------------------------------------------------------

def build_image(model_path, board, out_dir, dsp: bool = True, object_cache=None, sanitize: bool = False) -> Path:
    """The HIL image of `model_path` (per-layer hook compiled in by build_firmware;
    `object_cache`: see build_firmware): firmware.elf for a Cortex-M board, the
    `firmware` executable for the host board (sanitize=True: under ASan + UBSan)."""
    out_dir = Path(out_dir)
    result = build_firmware(model_path, board, out_dir, hil=True, dsp=dsp, object_cache=object_cache,
                            sanitize=sanitize)
    image = Path(result.executable)
    if not image.is_file():
        raise HilError(f"build_firmware produced no HIL image in {out_dir} (expected {image.name})")
    return image


def layer_names(out_dir: Path, count: int) -> list[str]:
    """Names from the firmware compiler's layers.json when it lists `count` layers."""
    try:
        data = json.loads((out_dir / "layers.json").read_text())
    except (OSError, ValueError):
        data = None
    layers = data.get("layers", data) if isinstance(data, dict) else data
    if isinstance(layers, list) and len(layers) == count:
        names = []
        for i, layer in enumerate(layers):
            if isinstance(layer, dict):
                names.append(str(layer.get("name") or layer.get("op") or f"layer {i}"))
            else:
                names.append(str(layer))
        return names
    return [f"layer {i}" for i in range(count)]


# ---- run -----------------------------------------------------------------------

def open_transport(board, image: Path | None, port: str | None):
    if port:
        return SerialTransport(port, baudrate=board.run.baudrate or 115200, board_name=board.name)
    if board.run.kind == "local":
        if image is None:
            raise HilError(f"board {board.name} runs the HIL build as a local process: no image given")
        return HostTransport(image, board_name=board.name)
    if board.run.kind != "qemu" or not board.run.qemu_machine:
        raise HilError(f"board {board.name} runs as '{board.run.kind}', not under QEMU or locally: "
                       "give --port with the board's serial port")
    return QemuTransport(board.run.qemu_machine, board.run.qemu_cpu, image)


def _count_unit(info: P.Hello, board, port) -> tuple[float, str]:
    """(scale, unit) turning the device's counts into what the report shows."""
    if info.counter_unit == P.UNIT_NANOSECONDS:
        return 1.0, "ns"
    if info.counter_unit == P.UNIT_SYSTICK and not port and board.run.kind == "qemu":
        tpi = board.run.ticks_per_instruction
        if not tpi:
            raise HilError(f"board {board.name}: run.ticks_per_instruction is needed to turn SysTick "
                           "ticks into instructions")
        return 1.0 / tpi, "instructions"
    if info.counter_unit in (P.UNIT_SYSTICK, P.UNIT_CYCLES):
        return 1.0, "cycles"   # SysTick on the core clock or DWT: both count cycles
    raise HilError(f"board {board.name} reports counts in unit {info.counter_unit}, which this host does not "
                   f"know ({', '.join(f'{k} = {v}' for k, v in P.UNIT_NAMES.items())})")


def select_variant(client: HilClient, index: int) -> int:
    """Select variant `index` of a multi-variant image (HIL VARIANT request); returns how many it has."""
    reply = client.request(P.VARIANT, struct.pack("<I", index), what=f"VARIANT {index}")
    if len(reply.payload) != 8:
        raise HilError(f"{client.transport.name}: VARIANT reply of {len(reply.payload)} bytes, expected 8")
    status, count = struct.unpack("<iI", reply.payload)
    if status != 0:
        raise HilError(f"{client.transport.name}: the image has {count} variants, no variant {index}")
    return count


def run_image(image, board, reference: Reference, inputs, *, port=None, timeout=120.0, retries=3,
              names_from: Path | None = None, model_name: str = "", seed: int = 0,
              transport_wrapper=None, variant: int | None = None) -> HilResult:
    """Run prepared inputs through an already built image and compare with `reference`.

    Every reference output is computed before the device starts, and the device (QEMU,
    the host process) is closed on any exit from here, exception or not.
    `transport_wrapper(transport) -> transport`: e.g. fault injection in tests.
    `variant`: in a multi-variant image (edgereid.firmware.variants), the index a VARIANT
    request selects before the inputs run."""
    board = load_board(board) if isinstance(board, (str, Path)) else board
    inputs = list(inputs)
    expected_outputs = [reference.run(x) for x in inputs]
    with open_transport(board, image, port) as transport:
        link = transport_wrapper(transport) if transport_wrapper else transport
        client = HilClient(link, timeout=min(10.0, timeout), retries=retries)
        info = client.hello()
        if info.input_bytes != reference.input_bytes or info.output_bytes != reference.output_bytes:
            raise HilError(f"{transport.name} runs a model with {info.input_bytes} input / {info.output_bytes} "
                           f"output bytes; {model_name} has {reference.input_bytes} / {reference.output_bytes}")
        if variant is not None:
            select_variant(client, variant)
        scale, unit = _count_unit(info, board, port)
        counts, layer_samples, mismatches = [], [], []
        mismatched_bytes = mismatched_inferences = 0
        for i, (x, expected) in enumerate(zip(inputs, expected_outputs)):
            reply = client.infer(x.tobytes(), timeout=timeout, what=f"INFER of input {i}")
            counts.append(reply.total_count * scale)
            layer_samples.append([c * scale for c in reply.layer_counts])
            if reply.output != expected:
                got = np.frombuffer(reply.output, np.uint8)
                want = np.frombuffer(expected, np.uint8)
                diff = np.flatnonzero(got != want)
                mismatched_inferences += 1
                mismatched_bytes += len(diff)
                for off in diff[: max(0, MAX_MISMATCHES_KEPT - len(mismatches))]:
                    mismatches.append(Mismatch(i, int(off), int(want[off]), int(got[off])))
    per_layer = []
    if layer_samples and layer_samples[0]:
        names = layer_names(names_from, len(layer_samples[0])) if names_from else \
            [f"layer {j}" for j in range(len(layer_samples[0]))]
        for j, name in enumerate(names):
            col = [s[j] for s in layer_samples]
            per_layer.append({"index": j, "name": name, "median": statistics.median(col),
                              "min": min(col), "max": max(col)})
    return HilResult(board=board.name, model=str(model_name), target=transport.name, n=len(inputs),
                     seed=seed, unit=unit, counts=counts, per_layer=per_layer, mismatches=mismatches,
                     mismatched_bytes=mismatched_bytes, mismatched_inferences=mismatched_inferences,
                     output_bytes=info.output_bytes, resends=client.resends, image=str(image or ""),
                     core=info.core, reference=getattr(reference, "name", "LiteRT BUILTIN_REF"))


def run_hil(model_path, board, n: int = 64, port: str | None = None, seed: int = 0, report=None,
            out_dir=None, timeout: float = 120.0, retries: int = 3, dsp: bool = True,
            object_cache=None) -> HilResult:
    """Build the HIL image of `model_path` for `board`, run `n` seeded random inputs on
    it (QEMU, the host build as a local process, or the real board on serial `port`),
    compare with the reference run (Reference).
    out_dir: keep the firmware build there; it is replaced as a whole, so it must be
    missing, empty or an earlier edgereid output (anything else is an error naming what
    it holds; see edgereid.atomic.output_dir). Default: a temporary folder.
    dsp=False builds the kernels' portable loops (for DSP vs portable comparisons);
    object_cache: a folder of model-independent objects shared across builds."""
    if n < 1:
        raise HilError(f"--n must be at least 1, got {n}")
    if not timeout > 0:
        raise HilError(f"--timeout must be more than 0 seconds, got {timeout}")
    if retries < 0:
        raise HilError(f"retries must be 0 or more, got {retries}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise HilError(f"model {model_path} does not exist")
    if out_dir is not None:   # before any work: an --out folder holding the user's files is refused
        check_output_dir(out_dir, HilError, what="--out folder")
    board = load_board(board) if isinstance(board, (str, Path)) else board
    reference = Reference(model_path)
    inputs = reference.random_inputs(n, seed)
    with tempfile.TemporaryDirectory(prefix="edgereid-hil-") as tmp:
        build_dir = Path(out_dir) if out_dir is not None else Path(tmp) / "fw"
        image = build_image(model_path, board, build_dir, dsp=dsp, object_cache=object_cache)
        result = run_image(image, board, reference, inputs, port=port, timeout=timeout, retries=retries,
                           names_from=build_dir, model_name=str(model_path), seed=seed)
        if out_dir is None:
            result.image = ""  # the temporary build is gone
    if report:
        result.write_report(report)
    return result

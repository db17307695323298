#!/usr/bin/env python3
"""Fuzz the firmware compiler: seeded mutations of the corpus through the build path.

    .venv/bin/python tools/fuzz_build.py --n 10000 --seed 0 --sanitize-sample 200 \
        [--corpus DIR] [--timeout 10] [--out docs/results/fuzz.md] [--json FILE]

Each case i takes one corpus model (tools/gen_tflite_corpus.py, written to a temp folder
unless --corpus names one) and mutates it with a generator seeded by (seed, i), so any
case can be replayed alone (--case i):
- byte level: bit flips, interesting bytes and int32 words, truncation, inserted bytes;
- schema level: the IR (edgereid.tflite.parse_graph) edited (shapes, dtypes, scales, zero
  points, quantized dimension, constant data such as biases, axes, sizes and paddings, op
  input/output indices, graph inputs/outputs, options, op kinds) and written back with
  edgereid.tflite.writer.
The build path runs in-process (read_tflite -> lower_graph -> plan -> generate for the
host board) under a per-case timer. Outcomes: accepted; refused (an EdgereidError whose
message is one line); bug (any other exception, or a multi-line refusal), grouped by
signature; hang (the timer fired).

Then up to --sanitize-sample distinct accepted mutants are built for the host with
-fsanitize=address,undefined and run on seeded inputs; their outputs must equal LiteRT
BUILTIN_REF's byte for byte (LiteRT runs in a child process, so that an abort or crash
in it is an outcome, not the end of the run). Outcomes: equal; mismatch; sanitizer
finding; firmware error (non-zero exit without a sanitizer report); build error;
accepted although LiteRT refuses the model; both refuse to run it (not a failure).

Exit status 1 if any bug, hang, mismatch, sanitizer finding, firmware or build error, or
model accepted where LiteRT refuses it was seen.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from edgereid.atomic import write_text  # noqa: E402
from edgereid.errors import EdgereidError  # noqa: E402
from edgereid.tflite import schema  # noqa: E402
from edgereid.tflite.ir import Graph, Op, Tensor  # noqa: E402
from edgereid.tflite.reader import parse_graph  # noqa: E402
from edgereid.tflite.writer import write_graph  # noqa: E402

INTERESTING_INTS = (0, 1, -1, 2, 3, -2, 7, 8, 127, 128, -128, -129, 255, 256, 4096, 65535, 65536, 2**30,
                    2**31 - 1, -2**31)
INTERESTING_FLOATS = (0.0, -0.0, -1.0, 1.0, 1e-45, 1e-38, 1e-12, 1e-6, 0.5, 2.0, 1e6, 1e30, 3.4e38,
                      math.inf, -math.inf, math.nan)
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x40)
DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float32", "float16", "bool", "int4")
INT32_MAX = 2**31 - 1


# ---- the corpus ------------------------------------------------------------------------

def load_corpus(corpus_dir: Path | None, workdir: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every corpus model, sorted by name: the folder's *.tflite, or the
    generator's corpus written into `workdir`."""
    if corpus_dir is None:
        from gen_tflite_corpus import write_corpus
        corpus_dir = workdir / "corpus"
        write_corpus(corpus_dir)
    models = sorted(Path(corpus_dir).glob("*.tflite"))
    if not models:
        raise SystemExit(f"error: no .tflite models in {corpus_dir}")
    return [(p.stem, p.read_bytes()) for p in models]


# ---- mutations -----------------------------------------------------------------------------

def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def mutate_bytes(rng, data: bytes) -> tuple[bytes, str]:
    """1 to 8 byte-level edits; returns the bytes and a short description."""
    buf = bytearray(data)
    done = []
    for _ in range(int(rng.integers(1, 9))):
        if not buf:
            break
        kind = _pick(rng, ("flip", "byte", "word", "truncate", "insert", "copy"))
        pos = int(rng.integers(len(buf)))
        if kind == "flip":
            buf[pos] ^= 1 << int(rng.integers(8))
        elif kind == "byte":
            buf[pos] = _pick(rng, INTERESTING_BYTES)
        elif kind == "word":
            v = _pick(rng, INTERESTING_INTS) & 0xFFFFFFFF
            buf[pos:pos + 4] = v.to_bytes(4, "little")
        elif kind == "truncate":
            if rng.integers(4) == 0:   # rarely: the flatbuffer itself is cut
                del buf[max(8, pos):]
        elif kind == "insert":
            buf[pos:pos] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8))
        else:
            src, n = int(rng.integers(len(buf))), int(rng.integers(1, 17))
            buf[pos:pos + n] = buf[src:src + n]
        done.append(f"{kind}@{pos}")
    return bytes(buf), "bytes " + " ".join(done)


def _replace_tensor(graph: Graph, index: int, **changes) -> None:
    graph.tensors[index] = dataclasses.replace(graph.tensors[index], **changes)


def _replace_op(graph: Graph, index: int, **changes) -> None:
    graph.ops[index] = dataclasses.replace(graph.ops[index], **changes)


def _mutate_shape(rng, graph: Graph) -> str:
    t = _pick(rng, graph.tensors)
    shape = list(t.shape)
    choice = int(rng.integers(5))
    if choice == 0 and shape:
        axis = int(rng.integers(len(shape)))
        shape[axis] = _pick(rng, (0, -1, 1, 2, shape[axis] + 1, shape[axis] - 1, 65536, 2**31 - 1, 3 * shape[axis]))
    elif choice == 1:
        shape.insert(int(rng.integers(len(shape) + 1)), _pick(rng, (1, 2, 3)))
    elif choice == 2 and shape:
        del shape[int(rng.integers(len(shape)))]
    elif choice == 3:
        shape = [65536] * 4 if rng.integers(2) else [2**16, 2**16, 2**15]
    else:
        shape = list(reversed(shape))
    _replace_tensor(graph, t.index, shape=tuple(shape))
    return f"shape of tensor {t.index} -> {shape}"


def _mutate_quant(rng, graph: Graph) -> str:
    quantized = [t for t in graph.tensors if t.scales] or graph.tensors
    t = _pick(rng, quantized)
    scales, zps = list(t.scales), list(t.zero_points)
    choice = int(rng.integers(7))
    if choice == 0 and scales:
        k = int(rng.integers(len(scales)))
        scales[k] = _pick(rng, INTERESTING_FLOATS + (scales[k] * 2 ** float(rng.integers(-40, 40)),))
        what = f"scale[{k}]={scales[k]!r}"
    elif choice in (1, 2) and zps:
        k = int(rng.integers(len(zps)))
        zps[k] = _pick(rng, INTERESTING_INTS + (int(rng.integers(-128, 128)),))
        what = f"zero_point[{k}]={zps[k]}"
    elif choice == 3:
        _replace_tensor(graph, t.index, quantized_dimension=int(rng.integers(-2, 6)))
        return f"quantized_dimension of tensor {t.index}"
    elif choice == 4:
        scales, zps = [], []
        what = "quantization removed"
    elif choice == 5:
        n = int(rng.integers(1, 5))
        scales, zps = scales + [0.05] * n, zps + [0] * n
        what = f"{n} scales added"
    else:
        scales = [float(s) * float(rng.uniform(0.01, 100.0)) for s in scales]
        what = "scales rescaled"
    _replace_tensor(graph, t.index, scales=tuple(scales), zero_points=tuple(zps))
    return f"tensor {t.index} {what}"


def _mutate_dtype(rng, graph: Graph) -> str:
    t = _pick(rng, graph.tensors)
    dtype = _pick(rng, DTYPES)
    _replace_tensor(graph, t.index, dtype=dtype)
    return f"dtype of tensor {t.index} -> {dtype}"


def _mutate_data(rng, graph: Graph) -> str:
    consts = [t for t in graph.tensors if t.is_const]
    if not consts:
        return _mutate_shape(rng, graph)
    t = _pick(rng, consts)
    if t.dtype in ("int32", "int64"):
        values = np.frombuffer(t.data, dtype=np.dtype(t.dtype)).copy()
        if values.size:
            for _ in range(int(rng.integers(1, 3))):
                values[int(rng.integers(values.size))] = _pick(rng, INTERESTING_INTS)
        data = values.tobytes()
    elif t.dtype == "int8":
        values = np.frombuffer(t.data, dtype=np.int8).copy()
        fill = int(rng.integers(3))
        if fill == 0:
            values[:] = -128
        elif fill == 1:
            values[:] = 127
        elif values.size:
            values[int(rng.integers(values.size))] = _pick(rng, (-128, 127, 0))
        data = values.tobytes()
    else:
        data = bytes(rng.integers(0, 256, size=len(t.data), dtype=np.uint8))
    if rng.integers(8) == 0:
        data = data[:-1] if data else b"\0"          # payload one byte off
    _replace_tensor(graph, t.index, data=data)
    return f"data of tensor {t.index}"


def _mutate_constness(rng, graph: Graph) -> str:
    t = _pick(rng, graph.tensors)
    if t.is_const:
        _replace_tensor(graph, t.index, data=None, is_const=False)
        return f"tensor {t.index} made an activation"
    try:
        nbytes = t.nbytes
    except ValueError:
        nbytes = 1
    if nbytes > 1 << 20:
        return _mutate_shape(rng, graph)
    _replace_tensor(graph, t.index, data=bytes(nbytes), is_const=True)
    return f"tensor {t.index} made a constant"


def _mutate_op_indices(rng, graph: Graph) -> str:
    if not graph.ops:
        return _mutate_graph_io(rng, graph)
    op = _pick(rng, graph.ops)
    n = len(graph.tensors)
    candidates = (-1, -2, -n, n, n + 5, int(rng.integers(n)), 2**31 - 1)
    choice = int(rng.integers(4))
    inputs, outputs = list(op.inputs), list(op.outputs)
    if choice == 0 and inputs:
        inputs[int(rng.integers(len(inputs)))] = _pick(rng, candidates)
    elif choice == 1 and outputs:
        outputs[int(rng.integers(len(outputs)))] = _pick(rng, candidates)
    elif choice == 2 and inputs:
        del inputs[int(rng.integers(len(inputs)))]
    else:
        inputs.append(_pick(rng, candidates))
    _replace_op(graph, op.index, inputs=tuple(inputs), outputs=tuple(outputs))
    return f"op {op.index} indices -> {inputs} / {outputs}"


def _mutate_graph_io(rng, graph: Graph) -> str:
    n = len(graph.tensors)
    consts = [t.index for t in graph.tensors if t.is_const] or [0]
    int32s = [t.index for t in graph.tensors if t.dtype == "int32"] or [0]
    value = _pick(rng, (-1, n, int(rng.integers(n)), _pick(rng, consts), _pick(rng, int32s)))
    if rng.integers(2):
        graph.inputs = tuple(graph.inputs[:-1]) + (value,) if graph.inputs and rng.integers(2) else \
            tuple(graph.inputs) + (value,)
        return f"graph inputs -> {list(graph.inputs)}"
    graph.outputs = (value,) if rng.integers(3) else tuple(graph.outputs) + (value,)
    return f"graph outputs -> {list(graph.outputs)}"


def _mutate_options(rng, graph: Graph) -> str:
    ops = [op for op in graph.ops if op.options] or graph.ops
    if not ops:
        return _mutate_shape(rng, graph)
    op = _pick(rng, ops)
    options = dict(op.options)
    if not options:
        return _mutate_op_kind(rng, graph)
    key = _pick(rng, sorted(options))
    value = options[key]
    if isinstance(value, bool):
        options[key] = not value
    elif isinstance(value, int):
        options[key] = _pick(rng, INTERESTING_INTS + (value + 1, value - 1, value * 2))
    elif isinstance(value, float):
        options[key] = _pick(rng, INTERESTING_FLOATS)
    elif isinstance(value, str):
        names = {"padding": ("SAME", "VALID", 2, 7), "fused_activation_function":
                 ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT", 9)}.get(key, (value,))
        options[key] = _pick(rng, names)
    elif isinstance(value, tuple):
        items = list(value)
        if items:
            items[int(rng.integers(len(items)))] = _pick(rng, INTERESTING_INTS)
        else:
            items = [_pick(rng, INTERESTING_INTS)]
        options[key] = tuple(items)
    _replace_op(graph, op.index, options=options)
    return f"op {op.index} option {key}={options[key]!r}"


SWAP_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D",
              "MEAN", "PAD", "PADV2", "CONCATENATION", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
              "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "L2_NORMALIZATION", "QUANTIZE", "DEQUANTIZE", "TANH", "HARD_SWISH")


def _mutate_op_kind(rng, graph: Graph) -> str:
    if not graph.ops:
        return _mutate_graph_io(rng, graph)
    op = _pick(rng, graph.ops)
    kind = _pick(rng, SWAP_KINDS)
    options = {}
    table = schema.options_type(kind)
    if table is not None:   # keep the options the new kind also has
        fields = {schema.snake(name) for name in vars(getattr(schema.S, table + "T")())}
        options = {k: v for k, v in op.options.items() if k in fields}
    _replace_op(graph, op.index, kind=kind, options=options)
    return f"op {op.index} kind -> {kind}"


SCHEMA_MUTATIONS = ((_mutate_shape, 4), (_mutate_quant, 4), (_mutate_dtype, 1), (_mutate_data, 3),
                    (_mutate_constness, 1), (_mutate_op_indices, 2), (_mutate_graph_io, 1), (_mutate_options, 4),
                    (_mutate_op_kind, 1))


def mutate_schema(rng, data: bytes) -> tuple[bytes, str] | None:
    """1 to 3 IR edits, written back; None if the writer cannot store the result."""
    graph = parse_graph(data)
    graph.tensors, graph.ops = list(graph.tensors), list(graph.ops)
    fns, weights = zip(*SCHEMA_MUTATIONS)
    p = np.array(weights, dtype=float) / sum(weights)
    done = []
    for _ in range(int(rng.integers(1, 4))):
        fn = fns[int(rng.choice(len(fns), p=p))]
        try:
            done.append(fn(rng, graph))
        except (ValueError, IndexError, OverflowError):   # an edit that does not apply to this graph
            continue
    try:
        return write_graph(graph), "schema " + "; ".join(done)
    except Exception:   # a value the flatbuffer cannot hold (e.g. an int past int32): not a case
        return None


def make_case(corpus: list[tuple[str, bytes]], seed: int, case: int) -> tuple[str, bytes, str]:
    """(corpus model name, mutated bytes, description) of case `case`: a pure function of its arguments."""
    rng = np.random.default_rng([seed, case])
    name, data = corpus[int(rng.integers(len(corpus)))]
    if rng.random() < 0.35:
        out, what = mutate_bytes(rng, data)
        return name, out, what
    for _ in range(8):
        result = mutate_schema(rng, data)
        if result is not None:
            return name, result[0], result[1]
    out, what = mutate_bytes(rng, data)
    return name, out, what


# ---- one case through the build path ---------------------------------------------------------

class Hang(Exception):
    """The per-case timer fired."""


def _on_alarm(signum, frame):
    raise Hang()


def bug_signature(exc: BaseException) -> str:
    """Exception type and the innermost frame inside edgereid/ (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/edgereid/" in f.filename.replace("\\", "/")] or frames
    if not ours:
        return type(exc).__name__
    f = ours[-1]
    rel = Path(f.filename).resolve()
    try:
        rel = rel.relative_to(REPO)
    except ValueError:
        pass
    return f"{type(exc).__name__} at {rel}:{f.lineno} in {f.name}"


def refusal_reason(message: str) -> str:
    """A refusal message with its numbers, names and path removed (to count reasons)."""
    text = message.split(": ", 1)[1] if ": " in message else message
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[^\]]*\]", "[…]", text)
    text = re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e[-+]?\d+)?(?!\w)", "N", text)
    return text[:110]


@dataclass
class CaseResult:
    case: int
    model: str
    mutation: str
    outcome: str                 # accepted | refused | bug | hang
    detail: str = ""
    digest: str = ""


def run_case(path: Path, out_dir: Path, timeout: float) -> tuple[str, str]:
    """(outcome, detail) of the build path on `path`, in-process, under a timer."""
    from edgereid.firmware import generate, lower_graph, plan, read_tflite

    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        graph = read_tflite(path)
        layers = lower_graph(graph)
        schedule = plan(graph, layers)
        generate(graph, "host", out_dir, layers=layers, schedule=schedule)
        return "accepted", ""
    except Hang:
        return "hang", f"no result within {timeout:g} s"
    except EdgereidError as exc:
        message = str(exc)
        if "\n" in message:
            return "bug", f"multi-line refusal: {message[:200]!r}"
        return "refused", message
    except Exception as exc:  # anything else is a bug in the validation
        return "bug", bug_signature(exc) + f": {str(exc)[:160]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---- sanitizer builds compared with LiteRT -----------------------------------------------------

def _packed_outputs(ys) -> np.ndarray:
    """Several outputs as the firmware writes them: one buffer, each at a multiple of 4 bytes (model.h)."""
    from edgereid.firmware.planner import packed_input_offsets
    offsets, total = packed_input_offsets([y.nbytes for y in ys])
    buf = np.zeros(total, np.uint8)
    for off, y in zip(offsets, ys):
        buf[off:off + y.nbytes] = np.frombuffer(np.ascontiguousarray(y).tobytes(), np.uint8)
    return buf


def _reference_worker(model: str, inputs: str, out: str) -> int:
    """Child process: LiteRT BUILTIN_REF on the saved inputs; exit 3 if LiteRT refuses the model."""
    from edgereid.tflite.reference import LiteRTRunner
    try:
        runner = LiteRTRunner(model)
        with np.load(inputs) as saved:
            sets = [[saved[f"s{i}_{j}"] for j in range(int(saved["n_inputs"]))] for i in range(int(saved["n_sets"]))]
        outs = {}
        for i, arrays in enumerate(sets):
            ys = runner.run(arrays)
            outs[f"o{i}"] = ys[0] if len(ys) == 1 else _packed_outputs(ys)
    except Exception as exc:  # LiteRT refusing to load or run the model is the outcome we report
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    np.savez(out, **outs)
    return 0


@dataclass
class SampleResult:
    case: int
    model: str
    mutation: str
    outcome: str     # equal | both_refuse | mismatch | sanitizer | firmware_error | build_error | litert_refuses
    detail: str = ""


def check_sample(path: Path, workdir: Path, case: int, cache: Path, inputs_per_model: int = 2) -> tuple[str, str]:
    """Build `path` under ASan+UBSan, run it on seeded inputs, compare with LiteRT BUILTIN_REF."""
    from edgereid.firmware import build_firmware
    from edgereid.firmware.planner import packed_input_offsets
    from edgereid.tflite import seeded_inputs

    try:
        result = build_firmware(path, "host", workdir / "fw", sanitize=True, object_cache=cache)
    except Exception as exc:  # accepted by the build path, so any failure here is a finding
        return "build_error", f"{type(exc).__name__}: {str(exc)[-300:]}"
    graph = result.graph
    ins = [graph.tensors[t] for t in graph.inputs]
    sets = seeded_inputs(ins, inputs_per_model, seed=case)
    saved = {"n_sets": len(sets), "n_inputs": len(ins)}
    for i, arrays in enumerate(sets):
        for j, a in enumerate(arrays):
            saved[f"s{i}_{j}"] = a
    np.savez(workdir / "inputs.npz", **saved)
    try:
        ref = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--reference-worker", str(path),
                              str(workdir / "inputs.npz"), str(workdir / "ref.npz")],
                             capture_output=True, text=True, timeout=120)
        ref_rc, ref_err = ref.returncode, ref.stderr.strip()[-300:]
    except subprocess.TimeoutExpired:
        ref_rc, ref_err = -1, "LiteRT did not finish in 120 s"
    offsets, total = packed_input_offsets([t.nbytes for t in ins])
    fw_outputs = []
    for i, arrays in enumerate(sets):
        packed = bytearray(total)
        for off, a in zip(offsets, arrays):
            raw = np.ascontiguousarray(a).tobytes()
            packed[off:off + len(raw)] = raw
        (workdir / "in.bin").write_bytes(bytes(packed))
        try:
            proc = subprocess.run([str(result.executable), str(workdir / "in.bin"), str(workdir / "out.bin")],
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return "firmware_error", "the firmware did not finish in 120 s"
        if proc.returncode != 0:
            err = proc.stderr
            if "AddressSanitizer" in err or "runtime error:" in err or "LeakSanitizer" in err:
                line = next((l for l in err.splitlines() if "runtime error" in l or "ERROR:" in l), err[-300:])
                return "sanitizer", line.strip()[:300]
            if ref_rc != 0:
                continue   # both refuse to run it: compare nothing for this input
            return "firmware_error", f"exit {proc.returncode}: {err.strip()[-300:]}"
        fw_outputs.append((i, (workdir / "out.bin").read_bytes()))
    if ref_rc != 0:
        if not fw_outputs:
            return "both_refuse", f"the firmware and LiteRT both refuse to run it (LiteRT: {ref_err})"
        return "litert_refuses", f"LiteRT exit {ref_rc}: {ref_err}"
    with np.load(workdir / "ref.npz") as refs:
        for i, got in fw_outputs:
            want = np.ascontiguousarray(refs[f"o{i}"]).tobytes()
            if got != want:
                g = np.frombuffer(got, dtype=refs[f"o{i}"].dtype)
                w = np.frombuffer(want, dtype=refs[f"o{i}"].dtype)
                n = int((g != w).sum()) if g.size == w.size else -1
                return "mismatch", f"input set {i}: {n} of {w.size} elements differ"
    return "equal", ""


# ---- the run ---------------------------------------------------------------------------------

@dataclass
class FuzzReport:
    n: int
    seed: int
    sanitize_sample: int
    corpus_models: int
    outcomes: dict = field(default_factory=dict)
    bugs: dict = field(default_factory=dict)              # signature -> [count, first case]
    hangs: list = field(default_factory=list)
    refusal_reasons: dict = field(default_factory=dict)
    by_level: dict = field(default_factory=dict)           # "bytes"/"schema" -> outcome counts
    sample: list = field(default_factory=list)             # SampleResult as dicts
    sample_outcomes: dict = field(default_factory=dict)
    accepted_distinct: int = 0
    seconds_build_path: float = 0.0
    seconds_sample: float = 0.0

    @property
    def failures(self) -> int:
        bad = ("mismatch", "sanitizer", "firmware_error", "build_error", "litert_refuses")
        return (self.outcomes.get("bug", 0) + self.outcomes.get("hang", 0)
                + sum(self.sample_outcomes.get(k, 0) for k in bad))


def fuzz(n: int, seed: int = 0, sanitize_sample: int = 0, corpus_dir: Path | None = None, timeout: float = 10.0,
         workdir: Path | None = None, log=None, cases=None) -> FuzzReport:
    """Run cases 0..n-1 (or `cases`) through the build path, then the sanitizer sample."""
    log = log or (lambda msg: None)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        corpus = load_corpus(corpus_dir, tmp)
        report = FuzzReport(n=n, seed=seed, sanitize_sample=sanitize_sample, corpus_models=len(corpus))
        outcomes = collections.Counter()
        reasons = collections.Counter()
        by_level: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        accepted: dict[str, int] = {}            # digest -> first case
        originals = {hashlib.sha256(data).hexdigest() for _, data in corpus}
        start = time.time()
        case_ids = list(cases) if cases is not None else range(n)
        for k, case in enumerate(case_ids):
            name, data, what = make_case(corpus, seed, case)
            path = tmp / "case.tflite"
            path.write_bytes(data)
            outcome, detail = run_case(path, tmp / "fw", timeout)
            outcomes[outcome] += 1
            by_level[what.split(" ", 1)[0]][outcome] += 1
            if outcome == "refused":
                reasons[refusal_reason(detail)] += 1
            elif outcome == "bug":
                sig = detail.split(": ", 1)[0] if not detail.startswith("multi-line") else "multi-line refusal"
                entry = report.bugs.setdefault(sig, [0, case, name, what, detail])
                entry[0] += 1
                log(f"case {case} ({name}; {what}): BUG {detail}")
            elif outcome == "hang":
                report.hangs.append([case, name, what])
                log(f"case {case} ({name}; {what}): HANG")
            else:
                digest = hashlib.sha256(data).hexdigest()
                if digest not in originals:
                    accepted.setdefault(digest, case)
            if (k + 1) % 500 == 0:
                log(f"{k + 1} cases: {dict(outcomes)} ({time.time() - start:.0f} s)")
        report.seconds_build_path = time.time() - start
        report.outcomes = dict(outcomes)
        report.refusal_reasons = dict(reasons.most_common())
        report.by_level = {k: dict(v) for k, v in by_level.items()}
        report.accepted_distinct = len(accepted)

        # The sample: distinct accepted mutants (not a corpus model unchanged), chosen by a seeded draw.
        pool = sorted(accepted.values())
        rng = np.random.default_rng([seed, 1 << 20])
        chosen = sorted(rng.choice(pool, size=min(sanitize_sample, len(pool)), replace=False).tolist()) if pool else []
        start = time.time()
        sample_outcomes = collections.Counter()
        cache = tmp / "objects"
        cache.mkdir()
        for case in chosen:
            name, data, what = make_case(corpus, seed, case)
            case_dir = tmp / f"s{case}"
            case_dir.mkdir()
            path = case_dir / f"case{case}.tflite"
            path.write_bytes(data)
            outcome, detail = check_sample(path, case_dir, case, cache)
            sample_outcomes[outcome] += 1
            report.sample.append(dataclasses.asdict(SampleResult(case, name, what, outcome, detail)))
            log(f"sample case {case} ({name}; {what}): {outcome} {detail}")
            shutil.rmtree(case_dir, ignore_errors=True)
        report.seconds_sample = time.time() - start
        report.sample_outcomes = dict(sample_outcomes)
    return report


def format_markdown(report: FuzzReport, command: str) -> str:
    o, s = report.outcomes, report.sample_outcomes
    lines = [
        "# Firmware compiler fuzzing (tools/fuzz_build.py)", "",
        f"Command: `{command}`  ",
        f"{report.n} seeded mutations of the {report.corpus_models} corpus models (tools/gen_tflite_corpus.py, "
        "seed 0), byte level and schema level (IR edits written back with edgereid.tflite.writer), through "
        "read_tflite -> lower_graph -> plan -> generate (host board) in-process, each under a "
        "timer; then a seeded sample of distinct accepted mutants built for the host with "
        "`-fsanitize=address,undefined` and compared with LiteRT BUILTIN_REF byte for byte on 2 seeded "
        "inputs each.", "",
        "## Build path", "",
        "| outcome | cases |", "|---|---|",
        f"| accepted | {o.get('accepted', 0)} ({report.accepted_distinct} distinct mutants differing from the corpus) |",
        f"| refused with an EdgereidError (one line) | {o.get('refused', 0)} |",
        f"| other exception or multi-line refusal (bug) | {o.get('bug', 0)} |",
        f"| hang (timer) | {o.get('hang', 0)} |",
        f"| total | {sum(o.values())} |", "",
        "By mutation level: " + "; ".join(f"{lvl}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                                          for lvl, c in sorted(report.by_level.items())) + ".",
        f"Wall time {report.seconds_build_path:.0f} s.", "",
    ]
    if report.bugs:
        lines += ["Bug signatures:", "", "| signature | cases | first case |", "|---|---|---|"]
        lines += [f"| {sig} | {v[0]} | {v[1]} |" for sig, v in sorted(report.bugs.items())]
        lines.append("")
    lines += ["Most frequent refusal reasons (numbers and names elided):", "",
              "| reason | cases |", "|---|---|"]
    lines += [f"| {r.replace('|', '/')} | {c} |" for r, c in list(report.refusal_reasons.items())[:20]]
    lines += ["", "## Sanitizer builds compared with LiteRT BUILTIN_REF", "",
              "| outcome | mutants |", "|---|---|"]
    for key, label in (("equal", "equal to LiteRT BUILTIN_REF, byte for byte"),
                       ("both_refuse", "the firmware and LiteRT both refuse to run it"),
                       ("mismatch", "output differs"), ("sanitizer", "ASan/UBSan finding"),
                       ("firmware_error", "firmware failed without a sanitizer report"),
                       ("build_error", "build failed"), ("litert_refuses", "accepted, but LiteRT refuses it")):
        lines.append(f"| {label} | {s.get(key, 0)} |")
    lines += [f"| total | {sum(s.values())} |", "", f"Wall time {report.seconds_sample:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="mutations (cases 0..n-1)")
    ap.add_argument("--seed", type=int, default=0, help="fuzz seed (case i uses (seed, i))")
    ap.add_argument("--sanitize-sample", type=int, default=0, help="accepted mutants built under ASan+UBSan")
    ap.add_argument("--corpus", type=Path, default=None, help="folder of .tflite models (default: generated)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--case", type=int, action="append", help="replay only this case (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    ap.add_argument("--json", type=Path, default=None, help="write the full report as JSON here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--reference-worker", nargs=3, metavar=("MODEL", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reference_worker:
        return _reference_worker(*args.reference_worker)
    if args.n < 0 or args.sanitize_sample < 0 or not args.timeout > 0:
        ap.error("--n and --sanitize-sample must be >= 0 and --timeout > 0")
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    report = fuzz(args.n, args.seed, args.sanitize_sample, args.corpus, args.timeout, log=log, cases=args.case)
    command = ".venv/bin/python tools/fuzz_build.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = format_markdown(report, command.strip())
    if args.out:
        write_text(args.out, text)
    if args.json:
        write_text(args.json, json.dumps(dataclasses.asdict(report), indent=1, default=str) + "\n")
    print(text)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Reference runs of a .tflite on the host, and the one seeded input generator.

Two runtimes, chosen by what the model holds (DESIGN.md, "Bit-exactness"):
- LiteRT with its reference kernels (`OpResolverType.BUILTIN_REF`) for builtin ops;
- Larq Compute Engine's interpreter, reference bconv kernel, for `Lce*` custom ops.
  Importing the `larq_compute_engine` package imports TensorFlow, so only its
  interpreter extension is loaded, straight from its file, in a worker process with
  numpy < 2 (see lce_worker.py for why).
A graph of Lce* ops alone runs whole on LCE; a graph mixing them with builtin ops runs
in segments (SegmentedRunner): LCE's interpreter runs builtin ops with TFLite's optimized
kernels, which differ from BUILTIN_REF by one on a few int8 outputs, and one LSB before
an LceQuantize flips a bit.
Every runner takes a path or the flatbuffer bytes, exposes `inputs`/`outputs`
(TensorSpec) and `run(arrays) -> arrays`, in graph order.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgereid.errors import TFLiteError
from edgereid.tflite.reader import custom_codes, parse_graph
from edgereid.tflite.writer import write_graph

LCE_CUSTOM_CODES = ("LceQuantize", "LceDequantize", "LceBconv2d", "LceBMaxPool2d")
LCE_VERSION = "0.16.0"
_LCE_EXTENSION = Path("larq_compute_engine") / "tflite" / "python" / "interpreter_wrapper_lite.so"


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output as a runtime reports it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def seeded_inputs(specs: Sequence, count: int, seed: int = 0) -> list[list[np.ndarray]]:
    """`count` input sets, one array per spec, drawn from numpy's generator seeded with `seed`.

    `specs`: objects with `shape` and `dtype` (TensorSpec, IR Tensor) or (shape, dtype)
    pairs. Integers are uniform over the dtype's whole range, floats standard normal,
    bools fair coins; draws go set by set, input by input, so a seed fixes every input
    of every set (the inputs firmware and reference are compared on).
    """
    pairs = []
    for spec in specs:
        shape, dtype = (spec.shape, spec.dtype) if hasattr(spec, "shape") else spec
        dtype = np.dtype(dtype)
        if dtype.kind not in "iufb":
            raise TFLiteError(f"cannot draw seeded inputs of dtype {dtype} (input shape {list(shape)})")
        pairs.append((tuple(int(d) for d in shape), dtype))
    rng = np.random.default_rng(seed)

    def draw(shape, dtype):
        if dtype.kind == "b":
            return rng.integers(0, 1, size=shape, endpoint=True).astype(dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        return rng.standard_normal(shape).astype(dtype)

    return [[draw(shape, dtype) for shape, dtype in pairs] for _ in range(count)]


def _model_bytes(model) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = Path(model)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TFLiteError(f"cannot read {path}: {exc.strerror}") from None


def _model_name(model) -> str:
    return "model bytes" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)


def _litert():
    """LiteRT's Interpreter and OpResolverType; tflite-runtime where only that is installed (boards)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise TFLiteError(f"ai-edge-litert (or tflite-runtime) is needed to run .tflite models ({exc})") from None
    return Interpreter, OpResolverType


class LiteRTRunner:
    """LiteRT on one model: BUILTIN_REF kernels (the bit-exact reference) or, with
    reference_kernels=False, LiteRT's default optimized kernels."""

    def __init__(self, model, reference_kernels: bool = True, num_threads: int | None = None):
        Interpreter, OpResolverType = _litert()
        kwargs = {}
        if reference_kernels:
            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_REF
        if num_threads is not None:
            kwargs["num_threads"] = int(num_threads)
        source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray, memoryview)) \
            else {"model_path": str(model)}
        self.name = "LiteRT BUILTIN_REF" if reference_kernels else "LiteRT"
        try:
            self.interp = Interpreter(**source, **kwargs)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TFLiteError(f"LiteRT cannot load {_model_name(model)}: {exc}") from None
        self._in, self._out = self.interp.get_input_details(), self.interp.get_output_details()
        self.inputs = [self._spec(d) for d in self._in]
        self.outputs = [self._spec(d) for d in self._out]

    @staticmethod
    def _spec(detail) -> TensorSpec:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return TensorSpec(name=str(detail.get("name", "")), shape=tuple(int(d) for d in detail["shape"]),
                          dtype=np.dtype(detail["dtype"]), scale=float(scale), zero_point=int(zero_point))

    def set_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self._in):
            raise TFLiteError(f"the model takes {len(self._in)} input(s), got {len(arrays)}")
        for i, (detail, x) in enumerate(zip(self._in, arrays)):
            try:
                self.interp.set_tensor(detail["index"], x)
            except ValueError as exc:   # wrong dtype or shape
                raise TFLiteError(f"input {i}: {exc}") from None

    def invoke(self) -> None:
        self.interp.invoke()

    def get_outputs(self) -> list[np.ndarray]:
        return [self.interp.get_tensor(d["index"]).copy() for d in self._out]

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.set_inputs(arrays)
        self.invoke()
        return self.get_outputs()

    def close(self) -> None:
        """Drop the interpreter (and the model's tensors) now rather than at garbage collection."""
        self.interp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def lce_runtime_dir() -> Path:
    """Where Larq Compute Engine and its numpy < 2 live: $EDGEREID_LCE_RUNTIME, else
    `<environment>/lce-runtime` (tools/setup.sh installs it there)."""
    return Path(os.environ.get("EDGEREID_LCE_RUNTIME") or Path(sys.prefix) / "lce-runtime")


def _lce_install_hint() -> str:
    return (f"pip install --no-deps --target {lce_runtime_dir()} numpy==1.26.4 larq-compute-engine=={LCE_VERSION}"
            ", or point EDGEREID_LCE_RUNTIME at such a folder")


def lce_available() -> bool:
    """True when Larq Compute Engine's interpreter extension is installed (see lce_runtime_dir)."""
    return (lce_runtime_dir() / _LCE_EXTENSION).is_file()


class LceRunner:
    """Larq Compute Engine's interpreter with the reference bconv kernel, no XNNPACK: the
    oracle for models holding Lce* ops (it runs their builtin ops too).

    It runs in a worker process (edgereid/tflite/lce_worker.py: the extension needs
    numpy < 2); one worker per runner, closed by close() or at exit of a `with` block.
    """

    name = "Larq Compute Engine (reference bconv)"

    def __init__(self, model, optimized: bool = False):
        """`optimized`: LCE's optimized bconv kernels instead of the reference one (for timing)."""
        runtime = lce_runtime_dir()
        if not lce_available():
            raise TFLiteError(f"Larq Compute Engine's interpreter is not installed in {runtime}: "
                              f"{_lce_install_hint()}")
        self._model_name = _model_name(model)
        self._stderr, self._log_seen = tempfile.TemporaryFile(), 0
        self._proc = subprocess.Popen([sys.executable, "-I", str(Path(__file__).with_name("lce_worker.py")),
                                       str(runtime)] + (["optimized"] if optimized else []),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        try:
            described = json.loads(self._request(_model_bytes(model), "load"))
        except TFLiteError:
            self.close()
            raise
        self.inputs = [self._spec(i, d) for i, d in enumerate(described["inputs"])]
        self.outputs = [self._spec(i, d) for i, d in enumerate(described["outputs"])]

    @staticmethod
    def _spec(index: int, described: dict) -> TensorSpec:
        scale, zero_point = described.get("scale"), described.get("zero_point")
        return TensorSpec(name=f"t{index}", shape=tuple(described["shape"]), dtype=np.dtype(described["dtype"]),
                          scale=float(scale) if isinstance(scale, (int, float)) else 0.0,
                          zero_point=int(zero_point) if isinstance(zero_point, int) else 0)

    def _request(self, payload: bytes, what: str) -> bytes:
        if self._proc is None:
            raise TFLiteError(f"the Larq Compute Engine runner of {self._model_name} is closed")
        try:
            self._proc.stdin.write(struct.pack("<Q", len(payload)) + payload)
            self._proc.stdin.flush()
            header = self._proc.stdout.read(8)
            size = struct.unpack("<Q", header)[0] if len(header) == 8 else 0
            reply = self._proc.stdout.read(size) if size else b""
        except (BrokenPipeError, OSError):
            reply = b""
        if len(reply) < 1 or len(reply) != size:
            log = self._log()
            self.close()
            raise TFLiteError(f"Larq Compute Engine's worker died during {what} of {self._model_name}" + log)
        if reply[:1] == b"E":
            raise TFLiteError(f"Larq Compute Engine cannot {what} {self._model_name}: {reply[1:].decode()}"
                              + self._log())
        return reply[1:]

    def _log(self) -> str:
        """What the interpreter printed since the last call (TFLite reports kernel errors on stderr)."""
        self._stderr.seek(self._log_seen)
        text = self._stderr.read()
        self._log_seen += len(text)
        text = text.decode(errors="replace").strip()
        return f" ({text[-1500:]})" if text else ""

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._check(arrays)
        buf = io.BytesIO()
        np.savez(buf, *[np.ascontiguousarray(x) for x in arrays])
        with np.load(io.BytesIO(self._request(buf.getvalue(), "run")), allow_pickle=False) as npz:
            return [npz[f"arr_{i}"] for i in range(len(npz.files))]

    def _check(self, arrays: Sequence[np.ndarray]) -> None:
        if len(arrays) != len(self.inputs):
            raise TFLiteError(f"the model takes {len(self.inputs)} input(s), got {len(arrays)}")
        for i, (x, spec) in enumerate(zip(arrays, self.inputs)):
            if np.dtype(x.dtype) != spec.dtype or tuple(x.shape) != spec.shape:
                raise TFLiteError(f"input {i}: {x.dtype} {list(x.shape)} given, the model takes "
                                  f"{spec.dtype} {list(spec.shape)}")

    def time(self, arrays: Sequence[np.ndarray], repeats: int, warmup: int = 0) -> list[float]:
        """Seconds per inference of `repeats` runs on `arrays` after `warmup` ones, timed inside the
        worker (the pipe and the .npz coding are not in the figures)."""
        self._check(arrays)
        buf = io.BytesIO()
        np.savez(buf, *[np.ascontiguousarray(x) for x in arrays])
        payload = b"T" + struct.pack("<QQ", int(warmup), int(repeats)) + buf.getvalue()
        return [float(t) for t in json.loads(self._request(payload, "time"))]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_proc", None) is not None:
            self.close()


def uses_lce(model) -> bool:
    """True when the model (path or bytes) holds Larq Compute Engine custom ops."""
    return bool(custom_codes(_model_bytes(model), _model_name(model)) & set(LCE_CUSTOM_CODES))


class SegmentedRunner:
    """A graph mixing Lce* and builtin ops, run as consecutive segments of one kind each:
    Lce* segments on LCE's interpreter, builtin segments on LiteRT BUILTIN_REF."""

    name = "LiteRT BUILTIN_REF + Larq Compute Engine (reference bconv), by segment"

    def __init__(self, model):
        graph = parse_graph(_model_bytes(model), _model_name(model))
        self._graph_inputs, self._graph_outputs = graph.inputs, graph.outputs
        self._steps = []
        try:
            for ops in self._segments(graph):
                produced = {t for op in ops for t in op.outputs}
                later = {t for op in graph.ops if op not in ops for t in op.inputs} | set(graph.outputs)
                inputs = tuple(dict.fromkeys(t for op in ops for t in op.inputs
                                             if t >= 0 and t not in produced and not graph.tensors[t].is_const))
                outputs = tuple(t for op in ops for t in op.outputs if t in later)
                sub = write_graph(dataclasses.replace(graph, ops=list(ops), inputs=inputs, outputs=outputs,
                                                      metadata={}))
                runner = LceRunner(sub) if ops[0].custom_code in LCE_CUSTOM_CODES else \
                    LiteRTRunner(sub, reference_kernels=True)
                self._steps.append((inputs, outputs, runner))
            self.inputs = [_spec_of(graph.tensors[t]) for t in graph.inputs]
            self.outputs = [_spec_of(graph.tensors[t]) for t in graph.outputs]
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _segments(graph) -> list[list]:
        segments = []
        for op in graph.ops:
            lce = op.custom_code in LCE_CUSTOM_CODES
            if segments and segments[-1][0] == lce:
                segments[-1][1].append(op)
            else:
                segments.append((lce, [op]))
        return [ops for _, ops in segments]

    def run(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(arrays) != len(self._graph_inputs):
            raise TFLiteError(f"the model takes {len(self._graph_inputs)} input(s), got {len(arrays)}")
        values = dict(zip(self._graph_inputs, arrays))
        for inputs, outputs, runner in self._steps:
            values.update(zip(outputs, runner.run([values[t] for t in inputs])))
        return [values[t] for t in self._graph_outputs]

    def close(self) -> None:
        for _, _, runner in self._steps:
            runner.close()
        self._steps = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _spec_of(tensor) -> TensorSpec:
    return TensorSpec(name=tensor.name, shape=tuple(tensor.shape), dtype=np.dtype(tensor.dtype),
                      scale=float(tensor.scales[0]) if tensor.scales else 0.0,
                      zero_point=int(tensor.zero_points[0]) if tensor.zero_points else 0)


def reference_runner(model):
    """The bit-exact reference for `model` (path or bytes): LCE's interpreter for a graph of
    Lce* ops alone, SegmentedRunner for a graph mixing them with builtin ops (a TFLiteError
    naming them when LCE is not installed), else LiteRT BUILTIN_REF."""
    data = _model_bytes(model)
    codes = custom_codes(data, _model_name(model))
    lce_ops = sorted(codes & set(LCE_CUSTOM_CODES))
    if lce_ops:
        if not lce_available():
            raise TFLiteError(f"{_model_name(model)} holds Larq Compute Engine ops ({', '.join(lce_ops)}); its "
                              f"reference run needs Larq Compute Engine's interpreter: {_lce_install_hint()}")
        graph = parse_graph(data, _model_name(model))
        if all(op.custom_code in LCE_CUSTOM_CODES for op in graph.ops):
            return LceRunner(data)
        return SegmentedRunner(data)
    return LiteRTRunner(model, reference_kernels=True)

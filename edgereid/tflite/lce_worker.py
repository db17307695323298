"""Larq Compute Engine's interpreter in a process of its own (started by reference.LceRunner).

    python -I lce_worker.py RUNTIME_DIR [optimized]

RUNTIME_DIR holds `larq_compute_engine` and numpy < 2: the interpreter extension was
built with a pybind11 that reads numpy 1's dtype layout, so under numpy 2 every input
reads as 0 bytes and every output is a copy of its first element. Only the extension
is loaded (importing the package would import TensorFlow), and this file imports
nothing from edgereid, so it runs against that numpy alone.

With `optimized` the interpreter uses LCE's optimized bconv kernels and the XNNPACK
delegate for the builtin ops (what a deployment runs, and what latency is timed on, as
LiteRT's default kernels are for int8 models); without, its reference bconv kernel and
the builtin kernels (the oracle).

Frames on stdin/stdout: 8-byte little-endian length, then the payload. In: first the
.tflite bytes, then per inference an .npz of the inputs (arr_0, arr_1, ... in graph
order), or b"T" + two 8-byte counts (warm-up runs, timed runs) + such an .npz to time
the interpreter here, without the pipe in the measurement. Out: b"O" + JSON of the
input/output specs after the model, b"O" + .npz of the outputs after each inference,
b"O" + JSON of the timed runs' seconds, or b"E" + an error message.
"""
import importlib.util
import io
import json
import os
import struct
import sys
import time

EXTENSION = os.path.join("larq_compute_engine", "tflite", "python", "interpreter_wrapper_lite.so")


def read_frame(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    payload = stream.read(size)
    if len(payload) != size:
        return None
    return payload


def write_frame(stream, kind: bytes, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload) + 1) + kind + payload)
    stream.flush()


def _plain(value):
    """Scales / zero points as JSON: a number, a list, or None."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _specs(np, shapes, types, scales, zero_points):
    return [{"shape": [int(d) for d in shape], "dtype": np.dtype(dtype).str, "scale": _plain(scale),
             "zero_point": _plain(zp)} for shape, dtype, scale, zp in zip(shapes, types, scales, zero_points)]


def time_runs(interp, arrays, warmup: int, repeats: int) -> list:
    """Seconds of each of `repeats` inferences after `warmup` untimed ones."""
    for _ in range(warmup):
        interp.predict(arrays)
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        interp.predict(arrays)
        seconds.append(time.perf_counter() - t0)
    return seconds


def main(argv) -> int:
    runtime = argv[1]
    sys.path.insert(0, runtime)
    import numpy as np

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    model = read_frame(stdin)
    if model is None:
        return 1
    if int(np.__version__.split(".")[0]) >= 2:
        write_frame(stdout, b"E", f"{runtime} gives numpy {np.__version__}; the extension needs numpy < 2".encode())
        return 1
    try:
        path = os.path.join(runtime, EXTENSION)
        spec = importlib.util.spec_from_file_location("interpreter_wrapper_lite", path)
        wrapper = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(wrapper)
        optimized = len(argv) > 2 and argv[2] == "optimized"
        # flatbuffer, threads, use_reference_bconv, use_indirect_bgemm, use_xnnpack
        interp = wrapper.LiteInterpreter(model, 1, not optimized, False, optimized)
        described = {"numpy": np.__version__,
                     "inputs": _specs(np, interp.input_shapes, interp.input_types, interp.input_scales,
                                      interp.input_zero_points),
                     "outputs": _specs(np, interp.output_shapes, interp.output_types, interp.output_scales,
                                       interp.output_zero_points)}
    except Exception as exc:  # report any load failure to the parent, which names the model
        write_frame(stdout, b"E", f"{type(exc).__name__}: {exc}".encode())
        return 1
    write_frame(stdout, b"O", json.dumps(described).encode())
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return 0
        try:
            timing = frame[:1] == b"T"
            if timing:
                warmup, repeats = struct.unpack("<QQ", frame[1:17])
                frame = frame[17:]
            with np.load(io.BytesIO(frame), allow_pickle=False) as npz:
                arrays = [np.ascontiguousarray(npz[f"arr_{i}"]) for i in range(len(npz.files))]
            if timing:
                write_frame(stdout, b"O", json.dumps(time_runs(interp, arrays, warmup, repeats)).encode())
                continue
            outputs = interp.predict(arrays)
            buf = io.BytesIO()
            np.savez(buf, *[np.asarray(y) for y in outputs])
        except Exception as exc:  # a bad input is the parent's error to raise; keep serving
            write_frame(stdout, b"E", f"{type(exc).__name__}: {exc}".encode())
            continue
        write_frame(stdout, b"O", buf.getvalue())


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Board-side latency probe: time .tflite models with the local TFLite runtime.

Copied to a Linux board (e.g. a Raspberry Pi) by `edgereid profile --transport ssh://...`
and run there, so it imports nothing from edgereid: only numpy and either
`ai_edge_litert` or `tflite_runtime`, whichever is installed.

    python3 board_profile.py [--repeats N] [--warmup W] [--threads T] MODEL.tflite ...

Prints one JSON object per line on stdout: first {"runtime": ...}, then for each model
{"model": NAME, "samples": [seconds, ...]} or {"model": NAME, "error": MESSAGE}.
Each line is flushed at once so the host can save results as they come.
"""
import argparse
import json
import platform
import socket
import sys
import time


def load_runtime():
    try:
        from ai_edge_litert import interpreter as tfl

        import ai_edge_litert
        return tfl.Interpreter, "ai-edge-litert", getattr(ai_edge_litert, "__version__", "unknown")
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tfl

        import tflite_runtime
        return tfl.Interpreter, "tflite-runtime", getattr(tflite_runtime, "__version__", "unknown")
    except ImportError:
        return None, None, None


def random_input(np, detail, rng):
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def time_model(np, Interpreter, path, repeats, warmup, threads):
    interp = Interpreter(model_path=path, num_threads=threads)
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interp.get_input_details():
        interp.set_tensor(detail["index"], random_input(np, detail, rng))
    for _ in range(warmup):
        interp.invoke()
    samples = []
    clock = time.perf_counter
    for _ in range(repeats):
        t0 = clock()
        interp.invoke()
        samples.append(clock() - t0)
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    Interpreter, name, version = load_runtime()
    if Interpreter is None:
        emit({"error": "neither ai_edge_litert nor tflite_runtime can be imported on this board "
                       f"(python {platform.python_version()} at {sys.executable})"})
        return 3
    import numpy as np

    emit({"runtime": {"name": name, "version": version, "threads": args.threads,
                      "python": platform.python_version(), "numpy": np.__version__},
          "host": f"{socket.gethostname()} ({platform.machine()}, {platform.system()} {platform.release()})"})
    for path in args.models:
        try:
            emit({"model": path, "samples": time_model(np, Interpreter, path, args.repeats, args.warmup,
                                                       args.threads)})
        except Exception as exc:  # report and go on: one bad model must not lose the others
            emit({"model": path, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

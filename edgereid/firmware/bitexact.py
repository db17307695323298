"""Check generated firmware against the reference run, byte for byte.

The reference is LiteRT's BUILTIN_REF kernels, or Larq Compute Engine's interpreter for
models with Lce* ops (DESIGN.md, "Bit-exactness"; edgereid.tflite.reference_runner); the
firmware is the host build of the generated project, run on files.
"""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.errors import FirmwareError
from edgereid.firmware.build import build_firmware
from edgereid.firmware.planner import packed_input_offsets
from edgereid.tflite import parse_graph, reference_runner, seeded_inputs

SINGLE_OP_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D",
                   "MAX_POOL_2D", "MEAN", "PAD", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX",
                   "L2_NORMALIZATION", "RESHAPE")


def reference_outputs(model_bytes: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The reference run's output for each input of a one-input, one-output model."""
    with reference_runner(model_bytes) as runner:
        return [runner.run([x])[0] for x in inputs]


def random_inputs(model_bytes: bytes, count: int, seed: int) -> list[np.ndarray]:
    """`count` seeded inputs (edgereid.tflite.seeded_inputs) of a one-input model."""
    graph = parse_graph(model_bytes)
    if len(graph.inputs) != 1:
        raise FirmwareError(f"random_inputs draws for one-input models; this one has {len(graph.inputs)} inputs "
                            "(check_model packs several)")
    return [arrays[0] for arrays in seeded_inputs([graph.tensors[graph.inputs[0]]], count, seed)]


def run_firmware(executable: Path, x: np.ndarray, like: np.ndarray, workdir: Path) -> np.ndarray:
    src, dst = workdir / "input.bin", workdir / "output.bin"
    src.write_bytes(np.ascontiguousarray(x).tobytes())
    proc = subprocess.run([str(executable), str(src), str(dst)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{executable} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return np.frombuffer(dst.read_bytes(), dtype=like.dtype).reshape(like.shape)


@dataclass
class CheckResult:
    name: str
    inputs: int
    elements: int
    mismatched_elements: int
    max_abs_diff: int

    @property
    def exact(self) -> bool:
        return self.mismatched_elements == 0


def packed_buffer(arrays, offsets: list[int], nbytes: int) -> np.ndarray:
    """Arrays laid out as the firmware's one input (or output) buffer: each at its offset, zero padding."""
    buf = np.zeros(nbytes, np.uint8)
    for a, offset in zip(arrays, offsets):
        raw = np.frombuffer(np.ascontiguousarray(a).tobytes(), np.uint8)
        buf[offset:offset + raw.size] = raw
    return buf


def _bits(a: np.ndarray) -> np.ndarray:
    """Values to compare: integers as they are, float32 as their bit patterns (NaN, -0.0 exact)."""
    return a.view(np.int32).astype(np.float64) if a.dtype == np.float32 else a.astype(np.float64)


def check_model(model_bytes: bytes, name: str = "model", num_inputs: int = 4, seed: int = 0,
                sanitize: bool = False, workdir: Path | None = None) -> CheckResult:
    """Build `model_bytes` for the host and compare `num_inputs` seeded inputs with the reference run,
    every output (several inputs and outputs travel packed, as model.h lays them out); float outputs
    compare bit patterns (max_abs_diff then counts units in the last place)."""
    graph = parse_graph(model_bytes)
    ins = [graph.tensors[t] for t in graph.inputs]
    outs = [graph.tensors[t] for t in graph.outputs]
    in_offsets, in_bytes = packed_input_offsets([t.nbytes for t in ins])
    out_offsets, out_bytes = packed_input_offsets([t.nbytes for t in outs])
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        model_path = tmp / f"{name}.tflite"
        model_path.write_bytes(model_bytes)
        result = build_firmware(model_path, "host", tmp / "fw", sanitize=sanitize)
        sets = seeded_inputs(ins, num_inputs, seed)
        with reference_runner(model_bytes) as runner:
            refs = [runner.run(list(arrays)) for arrays in sets]
        mismatched, max_diff, elements = 0, 0, 0
        for arrays, ref in zip(sets, refs):
            raw = run_firmware(result.executable, packed_buffer(arrays, in_offsets, in_bytes),
                               np.zeros(out_bytes, np.uint8), tmp)
            for want, offset in zip(ref, out_offsets):
                got = raw[offset:offset + want.nbytes].view(want.dtype).reshape(want.shape)
                diff = np.abs(_bits(got) - _bits(want))
                mismatched += int((diff != 0).sum())
                max_diff = max(max_diff, int(np.ceil(diff.max()))) if diff.size else max_diff
                elements += want.size
        return CheckResult(name, num_inputs, elements, mismatched, max_diff)


def _choice(rng, values):
    return values[int(rng.integers(len(values)))]


def random_op_spec(kind: str, seed: int) -> dict:
    """A one-op model spec for edgereid.tflite.builder with shapes/options drawn from `seed`."""
    rng = np.random.default_rng(seed)
    h, w, c = (int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 9)))
    x = {"name": "x", "shape": [1, h, w, c], "scale": float(rng.uniform(0.01, 0.2)),
         "zero_point": int(rng.integers(-20, 21))}
    act = _choice(rng, ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
    inputs = [x]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = int(rng.integers(1, 4))
        op = {"op": kind, "kernel": [k, int(rng.integers(1, 4))], "stride": [int(rng.integers(1, 3))] * 2,
              "padding": _choice(rng, ["SAME", "VALID"]), "activation": act}
        if kind == "CONV_2D":
            op["filters"] = int(rng.integers(1, 9))
        else:
            op["depth_multiplier"] = int(rng.integers(1, 3))
        x["shape"] = [1, h + 3, w + 3, c]   # VALID needs the filter to fit
    elif kind == "FULLY_CONNECTED":
        op = {"op": kind, "units": int(rng.integers(1, 17)), "activation": act,
              "per_channel": bool(rng.integers(2))}
        x["shape"] = [int(rng.integers(1, 3)), int(rng.integers(1, 33))]
    elif kind in ("ADD", "MUL"):
        # A model has one input: the second operand is a 1x1 conv of it, optionally
        # pooled over H to broadcast.
        branch = [{"op": "CONV_2D", "name": "y", "inputs": ["x"], "kernel": [1, 1], "filters": c}]
        if rng.integers(2):
            branch.append({"op": "AVERAGE_POOL_2D", "name": "yb", "inputs": ["y"], "kernel": [h, 1],
                           "stride": [1, 1], "padding": "VALID"})
        op = {"op": kind, "inputs": ["x", branch[-1]["name"]], "activation": act}
        return {"name": f"{kind.lower()}_{seed}", "seed": seed, "inputs": inputs, "ops": branch + [op]}
    elif kind == "CONCATENATION":
        same = {"scale": x["scale"], "zero_point": x["zero_point"]}
        branch = {"op": "CONV_2D", "name": "y", "inputs": ["x"], "kernel": [1, 1],
                  "filters": int(rng.integers(1, 6)), "output": same}
        op = {"op": kind, "inputs": ["x", "y"], "axis": 3}
        return {"name": f"{kind.lower()}_{seed}", "seed": seed, "inputs": inputs, "ops": [branch, op]}
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x["shape"] = [1, h + 2, w + 2, c]
        op = {"op": kind, "kernel": [int(rng.integers(1, 4)), int(rng.integers(1, 4))],
              "stride": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
              "padding": _choice(rng, ["SAME", "VALID"]), "activation": _choice(rng, ["NONE", "RELU"])}
    elif kind == "MEAN":
        op = {"op": kind, "axis": _choice(rng, [[1, 2], [2, 1], [1], [2], [3], [1, 2, 3]]),
              "keep_dims": bool(rng.integers(2)), "same_quant": bool(rng.integers(3) == 0)}
    elif kind == "PAD":
        op = {"op": kind, "paddings": [[0, 0]] + [[int(rng.integers(0, 3)), int(rng.integers(0, 3))]
                                                  for _ in range(3)]}
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        align = bool(rng.integers(2))
        op = {"op": kind, "size": [int(rng.integers(1, 16)), int(rng.integers(1, 16))], "align_corners": align,
              "half_pixel_centers": (not align) and bool(rng.integers(2))}
    elif kind == "SOFTMAX":
        x["shape"] = [1, int(rng.integers(1, 4)), int(rng.integers(2, 40))]
        op = {"op": kind, "beta": float(_choice(rng, [1.0, 0.5, 2.0]))}
    elif kind == "L2_NORMALIZATION":
        x["shape"] = [1, int(rng.integers(1, 4)), int(rng.integers(2, 64))]
        op = {"op": kind}
    elif kind == "RESHAPE":
        op = {"op": kind, "shape": [1, h * w * c]}
    else:
        raise ValueError(f"no random spec for {kind}")
    return {"name": f"{kind.lower()}_{seed}", "seed": seed, "inputs": inputs, "ops": [op]}

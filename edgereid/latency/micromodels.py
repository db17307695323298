"""int8 .tflite files made straight from fused kernels, with the firmware's flatbuffer builder.

- `spec_of(fused, input_shape, seed)`: a whole network (search_space.to_tflite uses it);
- `micro_model(kernel)`: one kernel alone, what a profile times;
- `overhead_chain(n)`: n tiny ADDs, whose cost grows by one per-layer overhead per op
  and whose intercept is the fixed per-inference overhead.
Weights are random: latency does not depend on their values.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.atomic import write_bytes
from edgereid.errors import LatencyError
from edgereid.latency.fusion import FusedLayer
from edgereid.latency.kernels import Kernel

INPUT_SCALE = 1.0 / 64.0
OVERHEAD_CHANNELS = 8


def _op_spec(f: FusedLayer) -> dict:
    k = f.kernel
    if k.precision != "int8":
        raise LatencyError(f"{f.name}: {k.precision} kernels cannot be built as TFLite with the int8 builder "
                           f"({k.key()})")
    spec = {"name": f.name, "inputs": list(f.inputs)}
    if k.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        spec.update(op=k.op, kernel=[k.kernel_h, k.kernel_w], stride=[k.stride_h, k.stride_w], padding=k.padding,
                    activation=k.act)
        if k.op == "CONV_2D":
            if k.groups != 1:
                raise LatencyError(f"{f.name}: grouped CONV_2D (groups {k.groups}) has no TFLite builtin")
            spec["filters"] = k.out_c
    elif k.op == "FULLY_CONNECTED":
        spec.update(op=k.op, units=k.out_c, activation=k.act)
    elif k.op == "ADD":
        spec.update(op=k.op, activation=k.act)
    elif k.op == "MEAN":
        spec.update(op=k.op, axis=[1, 2], keep_dims=True)
    else:
        raise LatencyError(f"{f.name}: no builder for kernel {k.key()}")
    return spec


def spec_of(fused: list[FusedLayer], input_shape, seed: int = 0, name: str = "model") -> dict:
    """The tflite_builder spec of a fused network whose input tensor is called 'input'."""
    h, w, c = input_shape
    return {"name": name, "seed": int(seed),
            "inputs": [{"name": "input", "shape": [1, h, w, c], "scale": INPUT_SCALE, "zero_point": 0}],
            "ops": [_op_spec(f) for f in fused]}


def micro_model_spec(kernel: Kernel, seed: int = 0) -> dict:
    if kernel.op == "FULLY_CONNECTED":
        shape, inputs = (1, 1, kernel.in_c), ("input",)
    else:
        shape, inputs = (kernel.in_h, kernel.in_w, kernel.in_c), ("input",)
    if kernel.op == "ADD":
        inputs = ("input", "input")   # one graph input; the kernel reads two full tensors all the same
    return spec_of([FusedLayer("k", ("k",), kernel, inputs)], shape, seed, name=kernel.key())


def overhead_chain_spec(n: int) -> dict:
    tiny = Kernel(op="ADD", in_h=1, in_w=1, in_c=OVERHEAD_CHANNELS, out_c=OVERHEAD_CHANNELS)
    layers, prev = [], "input"
    for i in range(n):
        layers.append(FusedLayer(f"add{i}", (f"add{i}",), tiny, (prev, prev)))
        prev = f"add{i}"
    return spec_of(layers, (1, 1, OVERHEAD_CHANNELS), 0, name=f"overhead-chain-{n}")


def write_model(spec: dict, path) -> Path:
    from edgereid.tflite.builder import build_model

    return write_bytes(path, build_model(spec))

"""int8 .tflite files made straight from fused kernels, with edgereid.tflite.builder.

- `spec_of(fused, input_shape, seed)`: a whole network;
- `micro_model_spec(kernel)`: one kernel alone, what a profile times;
- `overhead_chain_spec(n)`: n tiny ADDs, whose cost grows by one per-layer overhead per op
  and whose intercept is the fixed per-inference overhead.
The op specs come from the op registry (edgereid.ops); weights are random: latency does
not depend on their values.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.atomic import write_bytes
from edgereid.errors import LatencyError, ModelError
from edgereid.ops import INPUT_SCALE, FusedLayer, Kernel, model_spec
from edgereid.ops import micro_model_spec as _micro_model_spec
from edgereid.tflite.builder import build_model

OVERHEAD_CHANNELS = 8

__all__ = ["INPUT_SCALE", "OVERHEAD_CHANNELS", "spec_of", "micro_model_spec", "overhead_chain_spec", "write_model"]


def spec_of(fused: list[FusedLayer], input_shape, seed: int = 0, name: str = "model") -> dict:
    """The builder spec of a fused network whose input tensor is called 'input'."""
    try:
        return model_spec(fused, input_shape, seed, name)
    except ModelError as exc:   # a kernel the builder cannot write: a profile/latency problem here
        raise LatencyError(str(exc)) from None


def micro_model_spec(kernel: Kernel, seed: int = 0) -> dict:
    try:
        return _micro_model_spec(kernel, seed)
    except ModelError as exc:
        raise LatencyError(str(exc)) from None


def overhead_chain_spec(n: int) -> dict:
    tiny = Kernel(op="ADD", in_h=1, in_w=1, in_c=OVERHEAD_CHANNELS, out_c=OVERHEAD_CHANNELS)
    layers, prev = [], "input"
    for i in range(n):
        layers.append(FusedLayer(f"add{i}", (f"add{i}",), tiny, (prev, prev)))
        prev = f"add{i}"
    return spec_of(layers, (1, 1, OVERHEAD_CHANNELS), 0, name=f"overhead-chain-{n}")


def write_model(spec: dict, path) -> Path:
    return write_bytes(path, build_model(spec))

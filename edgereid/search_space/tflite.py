"""Architecture -> int8-activation .tflite with random weights, built directly (no torch export).

The graph is exactly the fused kernels LiteRT's converter would emit for the trained
model (BN folded, ReLU fused), so its latency is the architecture's latency. The ops
come from the op registry's builder specs (edgereid.ops) and are written by
edgereid.tflite.builder: int8 blocks as int8 convs, int4 blocks with INT4 filters,
binary blocks' 1x1 convs in the Larq Compute Engine format (LceQuantize + LceBconv2d,
int8 in and out; such a file runs in LCE's interpreter and the firmware, not LiteRT).
"""
from __future__ import annotations

from pathlib import Path

from edgereid.atomic import write_bytes
from edgereid.ops import model_spec
from edgereid.search_space.architecture import Architecture
from edgereid.search_space.fusion import CONVERTER_RULES, fused_layers
from edgereid.tflite.builder import build_model


def to_tflite(arch: Architecture, path, seed: int = 0) -> Path:
    """Write `arch` as a .tflite (random weights from `seed`) at its blocks' precisions."""
    spec = model_spec(fused_layers(arch, CONVERTER_RULES), arch.input_shape, seed,
                      name=f"{arch.space or 'arch'}-seed{seed}")
    return write_bytes(path, build_model(spec))

"""Architecture -> full-int8 .tflite with random weights, built directly (no torch export).

The graph is exactly the fused kernels LiteRT's converter would emit for the trained
model (BN folded, ReLU fused), so its latency is the architecture's latency. The ops
come from the op registry's builder specs (edgereid.ops) and are written by
edgereid.tflite.builder.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.atomic import write_bytes
from edgereid.errors import ModelError
from edgereid.ops import Precision, model_spec
from edgereid.search_space.architecture import Architecture
from edgereid.search_space.fusion import CONVERTER_RULES, fused_layers
from edgereid.tflite.builder import build_model

_WHY_NOT = {Precision.BINARY: "TFLite has no builtin 1-bit conv", Precision.INT4: "the TFLite writer builds int8 "
            "weights only (no 4-bit weight tensors yet)"}


def to_tflite(arch: Architecture, path, seed: int = 0) -> Path:
    """Write `arch` as a full-int8 .tflite (random weights from `seed`); int4 and binary blocks are refused."""
    other = [i for i, b in enumerate(arch.blocks) if b.precision is not Precision.INT8]
    if other:
        p = arch.blocks[other[0]].precision
        raise ModelError(f"blocks {other} are {p}: {_WHY_NOT[p]}, so only int8 architectures can be written "
                         "as .tflite")
    spec = model_spec(fused_layers(arch, CONVERTER_RULES), arch.input_shape, seed,
                      name=f"{arch.space or 'arch'}-seed{seed}")
    return write_bytes(path, build_model(spec))

"""Architecture -> full-int8 .tflite with random weights, built directly (no torch export).

The graph is exactly the fused kernels LiteRT's converter would emit for the trained
model (BN folded, ReLU fused), so its latency is the architecture's latency.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import ModelError
from edgereid.search_space.architecture import Architecture


def to_tflite(arch: Architecture, path, seed: int = 0) -> Path:
    from edgereid.errors import LatencyError
    from edgereid.latency.fusion import RULES, architecture_kernels
    from edgereid.latency.micromodels import spec_of, write_model

    binary = [i for i, b in enumerate(arch.blocks) if b.precision != "int8"]
    if binary:
        raise ModelError(f"blocks {binary} are {arch.blocks[binary[0]].precision}: TFLite has no builtin 1-bit "
                         "conv, so only int8 architectures can be written as .tflite")
    try:
        spec = spec_of(architecture_kernels(arch, RULES["litert-v1"]), arch.input_shape, seed,
                       name=f"{arch.space or 'arch'}-seed{seed}")
    except LatencyError as exc:
        raise ModelError(str(exc)) from None
    return write_model(spec, path)

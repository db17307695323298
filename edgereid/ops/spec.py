"""edgereid.tflite.builder specs made from kernels: a whole network, or one kernel alone.

Weights are random (the builder draws them from the seed): enough for latency, which
does not depend on their values.
"""
from __future__ import annotations

from edgereid.ops.kernel import FusedLayer, Kernel
from edgereid.ops.kinds import op_kind

INPUT_SCALE = 1.0 / 64.0


def model_spec(fused, input_shape, seed: int = 0, name: str = "model") -> dict:
    """The builder spec of `fused` (FusedLayers in execution order) reading one tensor called 'input'."""
    h, w, c = input_shape
    return {"name": name, "seed": int(seed),
            "inputs": [{"name": "input", "shape": [1, h, w, c], "scale": INPUT_SCALE, "zero_point": 0}],
            "ops": [op_kind(f.kernel.op).builder_op(f.kernel, f.name, f.inputs) for f in fused]}


def micro_model_spec(kernel: Kernel, seed: int = 0) -> dict:
    """`kernel` alone, named by its key: what a latency profile times."""
    shape, inputs = op_kind(kernel.op).micro_input(kernel)
    return model_spec([FusedLayer("k", ("k",), kernel, inputs)], shape, seed, name=kernel.key())

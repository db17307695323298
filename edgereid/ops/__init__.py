"""Per-op knowledge in one registry: the bottom layer under the search space and latency.

    k = Kernel.of("CONV_2D", (32, 16, 3), 16, kernel=3, stride=2)
    k.output_shape, k.macs, k.kind.weight_bytes(k, Precision.INT4)
    micro_model_spec(k)          # an edgereid.tflite.builder spec timing k alone

`Precision` is the closed weight-precision type (int8, int4, binary). This package
imports only edgereid.errors (and edgereid.tflite's IR, duck-typed).
"""
from edgereid.ops.kernel import FusedLayer, Kernel
from edgereid.ops.kinds import OPS, OpKind, hwc, op_kind, out_size
from edgereid.ops.precision import PRECISIONS, Precision
from edgereid.ops.spec import INPUT_SCALE, micro_model_spec, model_spec

__all__ = ["FusedLayer", "Kernel", "OPS", "OpKind", "hwc", "op_kind", "out_size", "PRECISIONS", "Precision",
           "INPUT_SCALE", "micro_model_spec", "model_spec"]

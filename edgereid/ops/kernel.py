"""One kernel = one op configuration: what runs after BN folding and activation fusion.

`Kernel` is the key of a latency table (`key()`), the unit a micro-model measures and
what the search space lowers to. Everything derived from it (output shape, MACs,
bytes) comes from its op kind in the registry (edgereid.ops.kinds).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edgereid.ops.kinds import OpKind, op_kind
from edgereid.ops.precision import Precision


@dataclass(frozen=True)
class Kernel:
    op: str                       # TFLite op name: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MEAN, ...
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    groups: int = 1               # in_c for depthwise
    padding: str = "SAME"         # SAME | VALID
    precision: Precision = Precision.INT8
    act: str = "NONE"             # fused activation: NONE | RELU | RELU6

    def __post_init__(self):
        object.__setattr__(self, "precision", Precision.parse(self.precision, f"kernel {self.op}: precision"))

    @classmethod
    def of(cls, op: str, in_shape, out_c: int, kernel: int = 1, stride: int = 1,
           precision: Precision = Precision.INT8) -> "Kernel":
        """The kernel of a search-space layer of op kind `op` reading an H x W x C tensor."""
        return cls(op=op, **op_kind(op).fields(tuple(in_shape), out_c, kernel, stride, precision))

    # ---- derived, from the registry -----------------------------------------
    @property
    def kind(self) -> OpKind:
        return op_kind(self.op)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.kind.output_shape(self)

    @property
    def out_h(self) -> int:
        return self.output_shape[0]

    @property
    def out_w(self) -> int:
        return self.output_shape[1]

    @property
    def macs(self) -> int:
        """Multiply-accumulates (element operations for weightless ops)."""
        return self.kind.macs(self)

    @property
    def input_bytes(self) -> int:
        return self.kind.input_bytes(self)

    @property
    def output_bytes(self) -> int:
        h, w, c = self.output_shape
        return h * w * c

    @property
    def weight_bytes(self) -> int:
        """Weight tensor plus per-output-channel constants, at the kernel's precision."""
        return self.kind.weight_bytes(self) + self.kind.bias_bytes(self)

    # ---- key ----------------------------------------------------------------
    def key(self) -> str:
        return (f"{self.op}/{self.in_h}x{self.in_w}x{self.in_c}/o{self.out_c}/k{self.kernel_h}x{self.kernel_w}"
                f"/s{self.stride_h}x{self.stride_w}/g{self.groups}/{self.padding}/{self.precision.value}/{self.act}")

    def to_dict(self) -> dict:
        """Plain JSON types (the precision as its string)."""
        return dict(asdict(self), precision=self.precision.value)


@dataclass(frozen=True)
class FusedLayer:
    """One kernel of a network: the layer that starts it, the source layers it absorbs, what it reads."""
    name: str
    layers: tuple[str, ...]
    kernel: Kernel
    inputs: tuple[str, ...] = ()  # names of the fused layers it reads ("input" = the model input)

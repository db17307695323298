"""What really runs: one fused kernel = one TFLite op after BN folding and activation fusion.

A Kernel is the key of a latency table. Two layers that run the same kernel code on
the same shapes get the same key, whether they came from an Architecture (through
edgereid.latency.fusion) or from a .tflite file (through edgereid.latency.tflite_ops).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from edgereid.errors import LatencyError

# Ops whose cost does not depend on weights (no weight tensor).
WEIGHTLESS = ("ADD", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "QUANTIZE", "DEQUANTIZE",
              "MUL", "CONCATENATION", "PAD")


def _out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "VALID":
        return (size - kernel) // stride + 1
    return -(-size // stride)


@dataclass(frozen=True)
class Kernel:
    op: str                       # TFLite builtin name: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MEAN
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
    precision: str = "int8"       # int8 | binary
    act: str = "NONE"             # fused activation: NONE | RELU | RELU6

    # ---- derived sizes ------------------------------------------------------
    @property
    def out_h(self) -> int:
        if self.op in ("MEAN", "FULLY_CONNECTED"):
            return 1
        return _out(self.in_h, self.kernel_h, self.stride_h, self.padding)

    @property
    def out_w(self) -> int:
        if self.op in ("MEAN", "FULLY_CONNECTED"):
            return 1
        return _out(self.in_w, self.kernel_w, self.stride_w, self.padding)

    @property
    def macs(self) -> int:
        """Multiply-accumulates (element operations for weightless ops)."""
        if self.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            return (self.out_h * self.out_w * self.out_c * self.kernel_h * self.kernel_w
                    * (self.in_c // self.groups))
        return self.in_h * self.in_w * self.in_c

    @property
    def input_bytes(self) -> int:
        n = self.in_h * self.in_w * self.in_c
        return 2 * n if self.op == "ADD" else n

    @property
    def output_bytes(self) -> int:
        return self.out_h * self.out_w * self.out_c

    @property
    def weight_bytes(self) -> int:
        if self.op in WEIGHTLESS:
            return 0
        weights = self.kernel_h * self.kernel_w * (self.in_c // self.groups) * self.out_c
        if self.precision == "binary":
            weights = -(-weights // 8)
        return weights + 4 * self.out_c  # int32 bias

    # ---- key ----------------------------------------------------------------
    def key(self) -> str:
        return (f"{self.op}/{self.in_h}x{self.in_w}x{self.in_c}/o{self.out_c}/k{self.kernel_h}x{self.kernel_w}"
                f"/s{self.stride_h}x{self.stride_w}/g{self.groups}/{self.padding}/{self.precision}/{self.act}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Kernel":
        try:
            return cls(**d)
        except TypeError as exc:
            raise LatencyError(f"kernel config {d!r} is malformed ({exc})") from None


_KEY = re.compile(r"^(?P<op>[A-Z0-9_:]+)/(?P<h>\d+)x(?P<w>\d+)x(?P<c>\d+)/o(?P<oc>\d+)/k(?P<kh>\d+)x(?P<kw>\d+)"
                  r"/s(?P<sh>\d+)x(?P<sw>\d+)/g(?P<g>\d+)/(?P<pad>SAME|VALID)/(?P<prec>[a-z0-9]+)/(?P<act>[A-Z0-9_]+)$")


def parse_key(key: str) -> Kernel:
    m = _KEY.match(key)
    if not m:
        raise LatencyError(f"latency table key {key!r} is not of the form "
                           "OP/HxWxC/oC/kHxW/sHxW/gG/PADDING/precision/ACT")
    g = m.groupdict()
    return Kernel(op=g["op"], in_h=int(g["h"]), in_w=int(g["w"]), in_c=int(g["c"]), out_c=int(g["oc"]),
                  kernel_h=int(g["kh"]), kernel_w=int(g["kw"]), stride_h=int(g["sh"]), stride_w=int(g["sw"]),
                  groups=int(g["g"]), padding=g["pad"], precision=g["prec"], act=g["act"])

"""What really runs: one fused kernel = one TFLite op after BN folding and activation fusion.

A Kernel (edgereid.ops.Kernel) is the key of a latency table. Two layers that run the
same kernel code on the same shapes get the same key, whether they came from an
Architecture (through the search space's fusion rules) or from a .tflite file (through
edgereid.latency.tflite_ops). This module reads keys and table configs back, with
LatencyErrors that name what is wrong.
"""
from __future__ import annotations

import re

from edgereid.errors import LatencyError
from edgereid.ops import Kernel, Precision

_KEY = re.compile(r"^(?P<op>[A-Z0-9_:]+)/(?P<h>\d+)x(?P<w>\d+)x(?P<c>\d+)/o(?P<oc>\d+)/k(?P<kh>\d+)x(?P<kw>\d+)"
                  r"/s(?P<sh>\d+)x(?P<sw>\d+)/g(?P<g>\d+)/(?P<pad>SAME|VALID)/(?P<prec>[a-z0-9]+)/(?P<act>[A-Z0-9_]+)$")


def parse_key(key: str) -> Kernel:
    m = _KEY.match(key)
    if not m:
        raise LatencyError(f"latency table key {key!r} is not of the form "
                           "OP/HxWxC/oC/kHxW/sHxW/gG/PADDING/precision/ACT")
    g = m.groupdict()
    precision = Precision.parse(g["prec"], f"latency table key {key!r}: precision", LatencyError)
    return Kernel(op=g["op"], in_h=int(g["h"]), in_w=int(g["w"]), in_c=int(g["c"]), out_c=int(g["oc"]),
                  kernel_h=int(g["kh"]), kernel_w=int(g["kw"]), stride_h=int(g["sh"]), stride_w=int(g["sw"]),
                  groups=int(g["g"]), padding=g["pad"], precision=precision, act=g["act"])


def kernel_from_dict(d, where: str = "kernel config") -> Kernel:
    """A Kernel from its `to_dict()` form (a table entry's 'config')."""
    if not isinstance(d, dict):
        raise LatencyError(f"{where}: expected an object with the kernel's fields, got {type(d).__name__}")
    if "precision" in d:
        d = dict(d, precision=Precision.parse(d["precision"], f"{where}: precision", LatencyError))
    try:
        return Kernel(**d)
    except TypeError as exc:
        raise LatencyError(f"{where}: kernel config {d!r} is malformed ({exc})") from None


__all__ = ["Kernel", "parse_key", "kernel_from_dict"]

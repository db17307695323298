"""The kernels of a .tflite file, read with the TFLite schema (no interpreter, no TensorFlow).

A converted .tflite is already fused (BN folded, ReLU fused), so each op is one
kernel. Unlike the firmware reader this accepts any op: a host model may hold ops the
firmware cannot run, and their latency can still be looked up or fitted.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import LatencyError
from edgereid.latency.fusion import FusedLayer
from edgereid.latency.kernels import Kernel


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _hwc(shape) -> tuple[int, int, int]:
    """NHWC (or lower rank) shape as H, W, C, dropping the batch dimension."""
    dims = [int(d) for d in shape]
    if len(dims) == 4:
        return dims[1], dims[2], dims[3]
    if len(dims) == 3:
        return 1, dims[1], dims[2]
    if len(dims) == 2:
        return 1, 1, dims[1]
    n = 1
    for d in dims:
        n *= d
    return 1, 1, n


def read_kernels(path) -> list[FusedLayer]:
    """One FusedLayer per op of the model's first subgraph, in execution order."""
    from ai_edge_litert import schema_py_generated as s

    path = Path(path)
    if not path.is_file():
        raise LatencyError(f"{path}: no such file (expected a .tflite model or an architecture JSON)")
    raw = path.read_bytes()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise LatencyError(f"{path}: not a TFLite model (file identifier 'TFL3' missing at bytes 4..8)")
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAs(raw, 0))
        graph = model.subgraphs[0]
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise LatencyError(f"{path}: damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    ops = _names(s.BuiltinOperator)
    acts = _names(s.ActivationFunctionType)
    pads = _names(s.Padding)
    types = _names(s.TensorType)
    out = []
    for i, o in enumerate(graph.operators or []):
        code = model.operatorCodes[o.opcodeIndex]
        kind = ops.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "UNKNOWN")
        if kind == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            kind = f"CUSTOM:{custom}"
        ins = [graph.tensors[t] for t in o.inputs if t >= 0]
        outs = [graph.tensors[t] for t in o.outputs if t >= 0]
        if not ins or not outs:
            raise LatencyError(f"{path}: op {i} ({kind}) has no input or no output tensor")
        x, y = ins[0], outs[0]
        h, w, c = _hwc(x.shape)
        oh, ow, oc = _hwc(y.shape)
        opts = o.builtinOptions
        act = acts.get(getattr(opts, "fusedActivationFunction", 0), "NONE")
        padding = pads.get(getattr(opts, "padding", 0), "SAME")
        precision = "binary" if "bconv" in kind.lower() else types.get(x.type, "int8").lower()
        k = dict(op=kind, in_h=h, in_w=w, in_c=c, out_c=oc, precision=precision, act=act)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") or kind.startswith("CUSTOM:") and len(ins) > 1 \
                and len(ins[1].shape) == 4:
            f = [int(d) for d in ins[1].shape]     # OHWI for conv, 1HWO for depthwise
            k.update(kernel_h=f[1], kernel_w=f[2], stride_h=int(getattr(opts, "strideH", 1)),
                     stride_w=int(getattr(opts, "strideW", 1)), padding=padding,
                     groups=c if kind == "DEPTHWISE_CONV_2D" else max(1, c // max(1, f[3])))
        elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            k.update(kernel_h=int(opts.filterHeight), kernel_w=int(opts.filterWidth), stride_h=int(opts.strideH),
                     stride_w=int(opts.strideW), padding=padding)
        elif kind == "FULLY_CONNECTED":
            k.update(in_h=1, in_w=1, in_c=int(ins[1].shape[-1]))
        elif kind == "MEAN":
            k.update(kernel_h=h, kernel_w=w, padding="VALID")
        out.append(FusedLayer(name=f"op{i}", layers=(f"op{i}:{kind}",), kernel=Kernel(**k)))
    return out

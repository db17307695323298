"""Build small TFLite models directly, for testing the firmware against the reference runs.

`ModelBuilder` assembles any graph (builtin or custom ops, any tensor type) as IR and
writes it with edgereid.tflite.writer; `build_model` makes int8 models from specs.

A model is described by a plain spec (dict), so a test can sweep shapes and options
without TensorFlow:

    spec = {
        "name": "conv_3x3_s2",
        "seed": 0,
        "inputs": [{"name": "x", "shape": [1, 9, 9, 5], "scale": 0.05, "zero_point": -3}],
        "ops": [
            {"op": "CONV_2D", "filters": 7, "kernel": [3, 3], "stride": [2, 2],
             "padding": "SAME", "activation": "RELU6"},
        ],
    }
    tflite_bytes = build_model(spec)

Each op reads the previous op's output unless it names its inputs ("inputs": ["x", "y"]);
its output is called "name" if given (else "t<k>"). The last op's output is the model
output unless "outputs" lists names. An input with "dtype": "float32" gets a QUANTIZE
in front (the int8 tensor is named "<name>_q"); "float_output": True appends a
DEQUANTIZE. Weights are random int8 from numpy's seeded generator, conv/depthwise
weights per-channel quantized (quantized_dimension 0 / 3), activations asymmetric;
"weights": "int4" in a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op makes its filter
an INT4 tensor (values in [-7, 7], packed two per byte) with int8 activations;
"weights": "binary" in a CONV_2D writes it in the Larq Compute Engine format, int8 in and
out: LceQuantize (int8 -> bitpacked) then LceBconv2d (bitpacked filter, SAME padding with
pad_values 1, float multiplier and bias, int8 output with the fused activation).
Output scales not given in an op's "output": {"scale", "zero_point"} are chosen so the
output spreads over the int8 range. The same spec gives the same bytes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgereid.errors import TFLiteError
from edgereid.tflite.ir import Graph, Op, Tensor, numpy_dtype, pack_bits, pack_int4
from edgereid.tflite.writer import write_graph

__all__ = ["build_model", "ModelBuilder", "TensorInfo", "OP_VERSIONS"]

# Versions that declare int8 (per-channel) support; BUILTIN_REF registers them all.
OP_VERSIONS = {
    "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "MUL": 2,
    "MAX_POOL_2D": 2, "AVERAGE_POOL_2D": 2, "MEAN": 2, "PAD": 2, "PADV2": 2,
    "CONCATENATION": 2, "SOFTMAX": 2, "RESIZE_NEAREST_NEIGHBOR": 3, "L2_NORMALIZATION": 2,
    "RESHAPE": 1, "QUANTIZE": 2, "DEQUANTIZE": 2,
}

_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")
_PADDING = ("SAME", "VALID")


@dataclass
class TensorInfo:
    index: int
    shape: tuple
    dtype: str
    scale: float | None = None
    zero_point: int = 0


def out_size(padding: str, in_size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TFLite ComputeOutSize."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - eff) // stride


class ModelBuilder:
    """Tensors and ops of one subgraph as IR, written by edgereid.tflite.writer."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.names: dict[str, TensorInfo] = {}

    # -- tensors -----------------------------------------------------------
    def tensor(self, name: str, shape, dtype: str, scale=None, zero_point=None, data=None,
               quantized_dimension: int = 0) -> TensorInfo:
        """A tensor of any IR dtype; `data` (values, not bytes) makes it constant (int4: packed)."""
        shape = tuple(int(d) for d in shape)
        payload = None
        if data is not None:
            values = np.asarray(data)
            if dtype == "int4":
                payload = pack_int4(values.reshape(-1))
            else:
                payload = np.ascontiguousarray(values.astype(numpy_dtype(dtype)).reshape(shape)).tobytes()
        scales, zps = (), ()
        if scale is not None:
            scale_arr = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp_arr = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if zp_arr.size == 1 and scale_arr.size > 1:
                zp_arr = np.repeat(zp_arr, scale_arr.size)
            scales, zps = tuple(float(v) for v in scale_arr), tuple(int(v) for v in zp_arr)
        t = Tensor(index=len(self.tensors), name=name, shape=shape, dtype=dtype, scales=scales,
                   zero_points=zps, quantized_dimension=int(quantized_dimension), data=payload,
                   is_const=payload is not None)
        self.tensors.append(t)
        info = TensorInfo(t.index, shape, dtype,
                          None if scale is None else float(np.float32(np.atleast_1d(scale)[0])),
                          0 if zero_point is None else int(np.atleast_1d(zero_point)[0]))
        self.names[name] = info
        return info

    def const_i32(self, name: str, values) -> TensorInfo:
        values = np.asarray(values, dtype=np.int32)
        return self.tensor(name, values.shape, "int32", data=values)

    # -- operators ---------------------------------------------------------
    def op(self, kind: str, inputs, outputs, options: dict | None = None, version: int | None = None) -> Op:
        """Append op `kind` ("CONV_2D" or "CUSTOM:<code>") with IR options (see edgereid.tflite.ir)."""
        op = Op(index=len(self.ops), kind=kind, inputs=tuple(int(i) for i in inputs),
                outputs=tuple(int(i) for i in outputs), options=dict(options or {}),
                version=int(version if version is not None else OP_VERSIONS.get(kind, 1)))
        self.ops.append(op)
        return op

    def graph(self, inputs, outputs, description: str = "edgereid tflite_builder") -> Graph:
        return Graph(tensors=list(self.tensors), ops=list(self.ops), inputs=tuple(int(i) for i in inputs),
                     outputs=tuple(int(i) for i in outputs), description=description)

    def finish(self, inputs, outputs, description: str = "edgereid tflite_builder") -> bytes:
        return write_graph(self.graph(inputs, outputs, description))


# ---- the spec-level op builders --------------------------------------------

def _pair(v, default):
    if v is None:
        return list(default)
    if isinstance(v, int):
        return [v, v]
    return [int(v[0]), int(v[1])]


def _out_quant(b: ModelBuilder, op: dict, real_std: float, x: TensorInfo):
    """Output (scale, zero_point): given, or spread ~3 std over 256 levels around a random zp."""
    given = op.get("output") or {}
    scale = given.get("scale")
    if scale is None:
        scale = max(real_std, 1e-6) * float(b.rng.uniform(0.8, 1.25)) / 40.0
    zp = given.get("zero_point")
    if zp is None:
        zp = int(b.rng.integers(-20, 21))
    return float(np.float32(scale)), int(zp)


def _activation(op: dict) -> str:
    name = op.get("activation", "NONE")
    if name not in _ACTIVATIONS:
        raise TFLiteError(f"activation {name!r}: expected one of {sorted(_ACTIVATIONS)}")
    return name


def _weights(b: ModelBuilder, shape) -> np.ndarray:
    return b.rng.integers(-127, 128, size=shape, dtype=np.int64).astype(np.int8)


# "weights": "int4" in a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op spec: INT4 filters (values in
# [-7, 7], scales x 16 so the accumulator keeps its range; std of the values ~4.3 instead of ~73).
_WEIGHT_DTYPES = {"int8": (1.0, 73.0), "int4": (16.0, 4.3)}   # dtype -> (scale factor, value std)


def _weight_dtype(op: dict, name: str) -> str:
    dtype = op.get("weights", "int8")
    if dtype not in _WEIGHT_DTYPES:
        raise TFLiteError(f"op {name}: weights {dtype!r}, expected int8, int4 or binary (CONV_2D only)")
    return dtype


def _weights_of(b: ModelBuilder, shape, dtype: str) -> np.ndarray:
    if dtype == "int4":
        return b.rng.integers(-7, 8, size=shape, dtype=np.int64).astype(np.int8)
    return _weights(b, shape)


_Q_STD = 60.0  # std of a uniformly random int8 value around its zero point, roughly


_LCE_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}   # TFLite's enum, as LCE stores it


def _window(op: dict, name: str):
    """(kernel, stride, dilation) as [h, w] pairs and the padding of a conv-like op spec."""
    padding = op.get("padding", "SAME")
    if padding not in _PADDING:
        raise TFLiteError(f"op {name}: padding {padding!r}, expected SAME or VALID")
    return _pair(op.get("kernel"), (3, 3)), _pair(op.get("stride"), (1, 1)), _pair(op.get("dilation"), (1, 1)), padding


def _binary_conv(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    """int8 x -> LceQuantize -> LceBconv2d (int8 output): a binary conv with int8 activations."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), padding = _window(op, name)
    oc, words = int(op["filters"]), (c + 31) // 32
    packed = b.tensor(f"{name}_packed", (n, h, w, words), "int32")
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    signs = np.where(b.rng.integers(0, 2, (oc, kh, kw, c)) == 1, -1.0, 1.0)
    ft = b.tensor(f"{name}_w", (oc, kh, kw, words), "int32", data=pack_bits(signs))
    # The accumulator is a sum of kh * kw * c products of +-1: std sqrt(fan_in).
    mult = (b.rng.uniform(0.5, 1.5, oc) * b.rng.choice([-1.0, 1.0], oc)).astype(np.float32)
    fan_in = kh * kw * c
    bias = b.rng.uniform(-1.0, 1.0, oc).astype(np.float32) * np.float32(math.sqrt(fan_in))
    mt = b.tensor(f"{name}_mult", (oc,), "float32", data=mult)
    bt = b.tensor(f"{name}_bias", (oc,), "float32", data=bias)
    oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, w, kw, sw, dw)
    o_scale, o_zp = _out_quant(b, op, math.sqrt(2.0 * fan_in), x)
    y = b.tensor(name, (n, oh, ow, oc), "int8", scale=o_scale, zero_point=o_zp)
    b.op("CUSTOM:LceBconv2d", [packed.index, ft.index, mt.index, bt.index, -1], [y.index], {
        "channels_in": c, "dilation_height_factor": dh, "dilation_width_factor": dw,
        "fused_activation_function": _LCE_ACTIVATIONS[_activation(op)], "pad_values": 1,
        "padding": _PADDING.index(padding), "stride_height": sh, "stride_width": sw})
    return y


def _conv_like(b: ModelBuilder, op: dict, x: TensorInfo, name: str, depthwise: bool) -> TensorInfo:
    if op.get("weights") == "binary":
        if depthwise:
            raise TFLiteError(f"op {name}: binary weights are written for CONV_2D only (LceBconv2d), "
                              "not DEPTHWISE_CONV_2D")
        return _binary_conv(b, op, x, name)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), padding = _window(op, name)
    if depthwise:
        mult = int(op.get("depth_multiplier", 1))
        oc = c * mult
        wshape, qdim = (1, kh, kw, oc), 3
        fan_in = kh * kw
    else:
        oc = int(op["filters"])
        wshape, qdim = (oc, kh, kw, c), 0
        fan_in = kh * kw * c
    dtype = _weight_dtype(op, name)
    w_factor, w_std = _WEIGHT_DTYPES[dtype]
    w_scale = (b.rng.uniform(0.5, 1.5, size=oc) * 0.01 * w_factor).astype(np.float32)
    wt = b.tensor(f"{name}_w", wshape, dtype, scale=w_scale, zero_point=np.zeros(oc, np.int64),
                  data=_weights_of(b, wshape, dtype), quantized_dimension=qdim)
    bias_scale = (np.float32(x.scale) * w_scale).astype(np.float32)
    acc_std = math.sqrt(fan_in) * _Q_STD * w_std
    bias = b.rng.integers(-int(acc_std), int(acc_std) + 1, size=oc).astype(np.int32)
    bt = b.tensor(f"{name}_b", (oc,), "int32", scale=bias_scale, zero_point=np.zeros(oc, np.int64), data=bias)
    oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, w, kw, sw, dw)
    o_scale, o_zp = _out_quant(b, op, acc_std * x.scale * float(np.mean(w_scale)), x)
    y = b.tensor(name, (n, oh, ow, oc), "int8", scale=o_scale, zero_point=o_zp)
    opts = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "fused_activation_function": _activation(op)}
    if depthwise:
        opts["depth_multiplier"] = mult
    b.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x.index, wt.index, bt.index], [y.index], opts)
    return y


def _fully_connected(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    units = int(op["units"])
    keep = bool(op.get("keep_num_dims", False))
    if keep:  # the last dim is the depth; the output keeps the other dims
        batches, depth = int(np.prod(x.shape[:-1])), int(x.shape[-1])
    else:
        batches, depth = x.shape[0], int(np.prod(x.shape[1:]))
    per_channel = bool(op.get("per_channel", False))
    dtype = _weight_dtype(op, name)
    w_factor, w_std = _WEIGHT_DTYPES[dtype]
    if per_channel:
        w_scale = (b.rng.uniform(0.5, 1.5, size=units) * 0.01 * w_factor).astype(np.float32)
    else:
        w_scale = np.asarray([b.rng.uniform(0.5, 1.5) * 0.01 * w_factor], dtype=np.float32)
    wt = b.tensor(f"{name}_w", (units, depth), dtype, scale=w_scale, zero_point=np.zeros(w_scale.size, np.int64),
                  data=_weights_of(b, (units, depth), dtype), quantized_dimension=0)
    acc_std = math.sqrt(depth) * _Q_STD * w_std
    bias = b.rng.integers(-int(acc_std), int(acc_std) + 1, size=units).astype(np.int32)
    bias_scale = (np.float32(x.scale) * w_scale).astype(np.float32)
    bt = b.tensor(f"{name}_b", (units,), "int32", scale=bias_scale, zero_point=np.zeros(w_scale.size, np.int64),
                  data=bias)
    o_scale, o_zp = _out_quant(b, op, acc_std * x.scale * float(np.mean(w_scale)), x)
    out_shape = tuple(x.shape[:-1]) + (units,) if keep else (batches, units)
    y = b.tensor(name, out_shape, "int8", scale=o_scale, zero_point=o_zp)
    b.op("FULLY_CONNECTED", [x.index, wt.index, bt.index], [y.index],
         {"fused_activation_function": _activation(op), "keep_num_dims": keep})
    return y


def _broadcast_shape(a, c):
    a, c = list(a), list(c)
    rank = max(len(a), len(c))
    a, c = [1] * (rank - len(a)) + a, [1] * (rank - len(c)) + c
    out = []
    for da, dc in zip(a, c):
        if da != dc and 1 not in (da, dc):
            raise TFLiteError(f"shapes {a} and {c} do not broadcast")
        out.append(max(da, dc))
    return tuple(out)


def _binary(b: ModelBuilder, op: dict, xs, name: str) -> TensorInfo:
    if len(xs) != 2:
        raise TFLiteError(f"op {name}: {op['op']} takes 2 inputs, got {len(xs)}")
    x1, x2 = xs
    shape = _broadcast_shape(x1.shape, x2.shape)
    if op["op"] == "ADD":
        std = math.hypot(x1.scale, x2.scale) * _Q_STD
        o_scale, o_zp = _out_quant(b, op, std, x1)
    else:
        o_scale, o_zp = _out_quant(b, op, x1.scale * x2.scale * _Q_STD * _Q_STD, x1)
    y = b.tensor(name, shape, "int8", scale=o_scale, zero_point=o_zp)
    b.op(op["op"], [x1.index, x2.index], [y.index], {"fused_activation_function": _activation(op)})
    return y


def _pool(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    n, h, w, c = x.shape
    kh, kw = _pair(op.get("kernel"), (2, 2))
    sh, sw = _pair(op.get("stride"), (2, 2))
    padding = op.get("padding", "VALID")
    y = b.tensor(name, (n, out_size(padding, h, kh, sh), out_size(padding, w, kw, sw), c), "int8",
                 scale=x.scale, zero_point=x.zero_point)  # int8 pooling keeps the input's quantization
    b.op(op["op"], [x.index], [y.index], {"padding": padding, "stride_h": sh, "stride_w": sw, "filter_height": kh,
                                          "filter_width": kw, "fused_activation_function": _activation(op)})
    return y


def _mean(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    axes = [int(a) % len(x.shape) for a in op.get("axis", [1, 2])]
    keep = bool(op.get("keep_dims", True))
    shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keep else \
        [d for i, d in enumerate(x.shape) if i not in axes]
    at = b.const_i32(f"{name}_axis", op.get("axis", [1, 2]))
    if op.get("same_quant", False):
        o_scale, o_zp = x.scale, x.zero_point
    else:
        count = int(np.prod([x.shape[a] for a in axes]))
        o_scale, o_zp = _out_quant(b, op, x.scale * _Q_STD / math.sqrt(count), x)
    y = b.tensor(name, shape, "int8", scale=o_scale, zero_point=o_zp)
    b.op("MEAN", [x.index, at.index], [y.index], {"keep_dims": keep})
    return y


def _pad(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    pads = np.asarray(op["paddings"], dtype=np.int32).reshape(len(x.shape), 2)
    pt = b.const_i32(f"{name}_paddings", pads)
    shape = tuple(int(d + p0 + p1) for d, (p0, p1) in zip(x.shape, pads))
    y = b.tensor(name, shape, "int8", scale=x.scale, zero_point=x.zero_point)
    if "constant" in op:
        ct = b.tensor(f"{name}_value", (1,), "int8", scale=x.scale, zero_point=x.zero_point,
                      data=[int(op["constant"])])
        b.op("PADV2", [x.index, pt.index, ct.index], [y.index])
    else:
        b.op("PAD", [x.index, pt.index], [y.index])
    return y


def _concat(b: ModelBuilder, op: dict, xs, name: str) -> TensorInfo:
    axis = int(op.get("axis", -1))
    rank = len(xs[0].shape)
    ax = axis % rank
    shape = list(xs[0].shape)
    shape[ax] = sum(x.shape[ax] for x in xs)
    y = b.tensor(name, shape, "int8", scale=xs[0].scale, zero_point=xs[0].zero_point)
    b.op("CONCATENATION", [x.index for x in xs], [y.index], {"axis": axis, "fused_activation_function": "NONE"})
    return y


def _softmax(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    y = b.tensor(name, x.shape, "int8", scale=1.0 / 256.0, zero_point=-128)
    b.op("SOFTMAX", [x.index], [y.index], {"beta": float(op.get("beta", 1.0))})
    return y


def _resize(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    oh, ow = _pair(op["size"], None)
    st = b.const_i32(f"{name}_size", [oh, ow])
    y = b.tensor(name, (x.shape[0], oh, ow, x.shape[3]), "int8", scale=x.scale, zero_point=x.zero_point)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x.index, st.index], [y.index],
         {"align_corners": bool(op.get("align_corners", False)),
          "half_pixel_centers": bool(op.get("half_pixel_centers", False))})
    return y


def _l2norm(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    y = b.tensor(name, x.shape, "int8", scale=1.0 / 128.0, zero_point=0)
    b.op("L2_NORMALIZATION", [x.index], [y.index], {"fused_activation_function": "NONE"})
    return y


def _reshape(b: ModelBuilder, op: dict, x: TensorInfo, name: str) -> TensorInfo:
    new_shape = [int(d) for d in op["shape"]]
    if -1 in new_shape:
        known = int(np.prod([d for d in new_shape if d != -1]))
        new_shape[new_shape.index(-1)] = int(np.prod(x.shape)) // known
    if int(np.prod(new_shape)) != int(np.prod(x.shape)):
        raise TFLiteError(f"op {name}: cannot reshape {list(x.shape)} to {new_shape}")
    st = b.const_i32(f"{name}_shape", new_shape)
    y = b.tensor(name, new_shape, "int8", scale=x.scale, zero_point=x.zero_point)
    b.op("RESHAPE", [x.index, st.index], [y.index], {"new_shape": tuple(new_shape)})
    return y


_SINGLE_INPUT = {
    "CONV_2D": lambda b, op, x, n: _conv_like(b, op, x, n, depthwise=False),
    "DEPTHWISE_CONV_2D": lambda b, op, x, n: _conv_like(b, op, x, n, depthwise=True),
    "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool,
    "AVERAGE_POOL_2D": _pool,
    "MEAN": _mean,
    "PAD": _pad,
    "SOFTMAX": _softmax,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "L2_NORMALIZATION": _l2norm,
    "RESHAPE": _reshape,
}
_MULTI_INPUT = {"ADD": _binary, "MUL": _binary, "CONCATENATION": _concat}
SUPPORTED_OPS = sorted(set(_SINGLE_INPUT) | set(_MULTI_INPUT))


def build_model(spec: dict) -> bytes:
    """The .tflite bytes for `spec` (see the module docstring)."""
    b = ModelBuilder(int(spec.get("seed", 0)))
    graph_inputs = []
    inputs = spec.get("inputs") or [spec["input"]]
    last = None
    for i, inp in enumerate(inputs):
        name = inp.get("name", f"input{i}")
        shape = [int(d) for d in inp["shape"]]
        scale = float(inp.get("scale", 0.05))
        zp = int(inp.get("zero_point", 0))
        if inp.get("dtype", "int8") == "float32":
            xf = b.tensor(name, shape, "float32")
            xq = b.tensor(f"{name}_q", shape, "int8", scale=scale, zero_point=zp)
            b.op("QUANTIZE", [xf.index], [xq.index])
            b.names[name] = xq
            graph_inputs.append(xf.index)
            last = xq
        else:
            last = b.tensor(name, shape, "int8", scale=scale, zero_point=zp)
            graph_inputs.append(last.index)
    for k, op in enumerate(spec["ops"]):
        kind = op.get("op")
        name = op.get("name", f"t{k}")
        if kind not in _SINGLE_INPUT and kind not in _MULTI_INPUT:
            raise TFLiteError(f"op {k} ({kind!r}): expected one of {SUPPORTED_OPS}")
        refs = op.get("inputs")
        try:
            xs = [b.names[r] for r in refs] if refs else [last]
        except KeyError as exc:
            raise TFLiteError(f"op {k} ({kind}): no tensor named {exc.args[0]!r} before it") from None
        if kind in _MULTI_INPUT:
            last = _MULTI_INPUT[kind](b, op, xs, name)
        else:
            if len(xs) != 1:
                raise TFLiteError(f"op {k} ({kind}) takes one input, got {len(xs)}")
            last = _SINGLE_INPUT[kind](b, op, xs[0], name)
    outs = [b.names[n] for n in spec["outputs"]] if spec.get("outputs") else [last]
    out_idx = []
    for o in outs:
        if spec.get("float_output", False):
            of = b.tensor(f"{b.tensors[o.index].name}_f", o.shape, "float32")
            b.op("DEQUANTIZE", [o.index], [of.index])
            out_idx.append(of.index)
        else:
            out_idx.append(o.index)
    return b.finish(graph_inputs, out_idx, description=f"edgereid tflite_builder: {spec.get('name', 'model')}")

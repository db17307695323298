"""The coverage part of the test corpus (tools/gen_tflite_corpus.py): the int8 models users bring
that the spec builder cannot express, written with edgereid.tflite.builder.ModelBuilder.

MCUNet-style networks (inverted residual blocks, squeeze-excite with hard-sigmoid constants
ADD 3 -> RELU6 -> MUL 1/6, a TRANSPOSE before the global MEAN as converters write it), a
multi-head detector with several outputs, a PRELU network (BiRe-ID's int8 PRELU), float32
ops at the graph's ends (RELU6 after a DEQUANTIZE, a float L2 normalisation tail), and one
model per new op and option. Each builder takes a seed; same seed, same bytes.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgereid.tflite import reference_runner, seeded_inputs
from edgereid.tflite.builder import ModelBuilder, TensorInfo, out_size

_Q_STD = 60.0   # std of a uniform random int8 around its zero point, roughly


class NetBuilder:
    """A small int8 graph under construction: each method appends one op and returns its output.

    Random weights make activation ranges drift layer by layer until a deep stack's int8 outputs
    take one or two values (a test that cannot fail). So an op whose output scale is not fixed by
    its semantics is calibrated as it is added: the graph so far runs in LiteRT on seeded inputs
    and the output's scale and zero point are set to cover the values seen (starting from a
    deliberately coarse scale, or from a fused RELU6 / RELU_N1_TO_1's range, then refined twice)."""

    def __init__(self, seed: int):
        self.b = ModelBuilder(seed)
        self.rng = self.b.rng
        self.k = 0
        self.inputs: list[TensorInfo] = []

    def input(self, name: str, shape, dtype: str = "int8", scale: float = 0.05, zp: int = 0) -> TensorInfo:
        t = self.int8(name, shape, scale, zp) if dtype == "int8" else self.float32(name, shape)
        self.inputs.append(t)
        return t

    def calibrate(self, y: TensorInfo, act: str = "NONE") -> TensorInfo:
        bound = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}.get(act)
        if bound is not None:   # a coarse scale would clamp everything to one level: start from the bound
            scale = (bound[1] - bound[0]) / 255.0
            self._set_quant(y, scale, int(round(-128 - bound[0] / scale)))
        else:
            self._set_quant(y, y.scale * 16.0, y.zero_point)
        for _ in range(2):
            model = self.b.finish([t.index for t in self.inputs], [y.index])
            sets = seeded_inputs([self.b.tensors[t.index] for t in self.inputs], 6, 1234)
            with reference_runner(model) as runner:
                q = np.concatenate([runner.run(list(xs))[0].reshape(-1) for xs in sets]).astype(np.float64)
            real = (q - y.zero_point) * y.scale
            lo, hi = min(float(real.min()), 0.0), max(float(real.max()), 0.0)
            if hi - lo <= 0.0:   # a constant output: nothing to spread
                return y
            scale = (hi - lo) * 1.1 / 255.0
            self._set_quant(y, scale, int(np.clip(round(-128 - lo * 1.05 / scale), -128, 127)))
        return y

    def _set_quant(self, y: TensorInfo, scale: float, zp: int) -> None:
        scale = float(np.float32(scale))
        t = self.b.tensors[y.index]
        self.b.tensors[y.index] = dataclasses.replace(t, scales=(scale,), zero_points=(int(zp),))
        y.scale, y.zero_point = scale, int(zp)

    def _name(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def _zp(self) -> int:
        return int(self.rng.integers(-20, 21))

    def int8(self, name: str, shape, scale: float, zp: int) -> TensorInfo:
        return self.b.tensor(name, shape, "int8", scale=float(np.float32(scale)), zero_point=zp)

    def float32(self, name: str, shape) -> TensorInfo:
        return self.b.tensor(name, shape, "float32")

    def conv(self, x: TensorInfo, filters: int, k: int = 1, stride: int = 1, act: str = "NONE",
             depthwise: bool = False, name: str | None = None) -> TensorInfo:
        n, h, w, c = x.shape
        oc = c if depthwise else filters
        wshape, qdim, fan_in = ((1, k, k, oc), 3, k * k) if depthwise else ((oc, k, k, c), 0, k * k * c)
        name = name or self._name("dw" if depthwise else "conv")
        w_scale = (self.rng.uniform(0.5, 1.5, size=oc) * 0.01).astype(np.float32)
        wt = self.b.tensor(f"{name}_w", wshape, "int8", scale=w_scale, zero_point=np.zeros(oc, np.int64),
                           data=self.rng.integers(-127, 128, size=wshape).astype(np.int8), quantized_dimension=qdim)
        acc_std = math.sqrt(fan_in) * _Q_STD * 73.0
        bias = self.rng.integers(-int(acc_std), int(acc_std) + 1, size=oc).astype(np.int32)
        bt = self.b.tensor(f"{name}_b", (oc,), "int32", scale=(np.float32(x.scale) * w_scale).astype(np.float32),
                           zero_point=np.zeros(oc, np.int64), data=bias)
        scale = acc_std * x.scale * float(np.mean(w_scale)) * float(self.rng.uniform(0.8, 1.25)) / 40.0
        y = self.int8(name, (n, out_size("SAME", h, k, stride), out_size("SAME", w, k, stride), oc), scale, self._zp())
        opts = {"padding": "SAME", "stride_h": stride, "stride_w": stride, "dilation_h_factor": 1,
                "dilation_w_factor": 1, "fused_activation_function": act}
        if depthwise:
            opts["depth_multiplier"] = 1
        self.b.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x.index, wt.index, bt.index], [y.index], opts)
        return self.calibrate(y, act)

    def fc(self, x: TensorInfo, units: int, name: str | None = None) -> TensorInfo:
        depth = int(np.prod(x.shape[1:]))
        name = name or self._name("fc")
        w_scale = np.float32(self.rng.uniform(0.5, 1.5) * 0.01)
        wt = self.b.tensor(f"{name}_w", (units, depth), "int8", scale=[w_scale], zero_point=[0],
                           data=self.rng.integers(-127, 128, size=(units, depth)).astype(np.int8))
        acc_std = math.sqrt(depth) * _Q_STD * 73.0
        bias = self.rng.integers(-int(acc_std), int(acc_std) + 1, size=units).astype(np.int32)
        bt = self.b.tensor(f"{name}_b", (units,), "int32", scale=[np.float32(x.scale) * w_scale], zero_point=[0],
                           data=bias)
        y = self.int8(name, (x.shape[0], units), acc_std * x.scale * float(w_scale) / 40.0, self._zp())
        self.b.op("FULLY_CONNECTED", [x.index, wt.index, bt.index], [y.index],
                  {"fused_activation_function": "NONE", "keep_num_dims": False})
        return self.calibrate(y)

    def binary(self, kind: str, a: TensorInfo, c: TensorInfo, scale: float | None, zp: int = 0,
               act: str = "NONE", name: str | None = None) -> TensorInfo:
        """ADD / MUL; int8 with scale None: the output scale is calibrated."""
        shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(c.shape)))
        auto = scale is None and a.dtype == "int8"
        if auto:
            scale = (math.hypot(a.scale, c.scale) if kind == "ADD" else a.scale * c.scale * _Q_STD) * _Q_STD / 40
        y = (self.int8(name or self._name(kind.lower()), shape, scale, zp) if a.dtype == "int8"
             else self.float32(name or self._name(kind.lower()), shape))
        self.b.op(kind, [a.index, c.index], [y.index], {"fused_activation_function": act})
        return self.calibrate(y, act) if auto else y

    def const_int8(self, shape, real_values, scale: float, zp: int = 0, name: str | None = None) -> TensorInfo:
        q = np.clip(np.round(np.asarray(real_values, np.float64) / np.float32(scale)) + zp, -128, 127)
        return self.b.tensor(name or self._name("const"), shape, "int8", scale=float(np.float32(scale)), zero_point=zp,
                             data=np.broadcast_to(q, shape).astype(np.int8))

    def unary(self, kind: str, x: TensorInfo, scale: float | None = None, zp: int = 0, options=None,
              shape=None, name: str | None = None) -> TensorInfo:
        shape = x.shape if shape is None else shape
        y = (self.int8(name or self._name(kind.lower()), shape, scale, zp) if scale is not None
             else self.float32(name or self._name(kind.lower()), shape))
        self.b.op(kind, [x.index], [y.index], options or {})
        return y

    def hard_sigmoid(self, x: TensorInfo) -> TensorInfo:
        """relu6(x + 3) / 6 as converters write it: ADD const 3, RELU6, MUL const 1/6."""
        three = self.const_int8((1,), [3.0], 3.0 / 127)
        lo, hi = -6.0, 9.0     # x + 3 over a generous range
        s = self.binary("ADD", x, three, (hi - lo) / 255, int(round(-128 - lo * 255 / (hi - lo))))
        r = self.unary("RELU6", s, scale=6.0 / 255, zp=-128)
        sixth = self.const_int8((1,), [1.0 / 6.0], (1.0 / 6.0) / 127)
        return self.binary("MUL", r, sixth, 1.0 / 255, -128)

    def transpose(self, x: TensorInfo, perm, name: str | None = None) -> TensorInfo:
        p = self.b.const_i32(self._name("perm"), np.asarray(perm, np.int32))
        y = self.int8(name or self._name("transpose"), tuple(x.shape[i] for i in perm), x.scale, x.zero_point)
        self.b.op("TRANSPOSE", [x.index, p.index], [y.index], {})
        return y

    def mean(self, x: TensorInfo, axes, keep: bool, name: str | None = None) -> TensorInfo:
        ax = self.b.const_i32(self._name("axes"), np.asarray(axes, np.int32))
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
        y = self.int8(name or self._name("mean"), shape, x.scale * float(self.rng.uniform(0.5, 1.0)), self._zp())
        self.b.op("MEAN", [x.index, ax.index], [y.index], {"keep_dims": keep})
        return self.calibrate(y)

    def prelu(self, x: TensorInfo, alpha_shape, name: str | None = None) -> TensorInfo:
        a_scale = float(np.float32(self.rng.uniform(0.002, 0.004)))
        alpha = self.b.tensor(self._name("alpha"), alpha_shape, "int8", scale=a_scale,
                              zero_point=int(self.rng.integers(-5, 6)),
                              data=self.rng.integers(-128, 128, size=alpha_shape).astype(np.int8))
        shape = tuple(np.broadcast_shapes(tuple(x.shape), tuple(alpha_shape)))
        y = self.int8(name or self._name("prelu"), shape, x.scale * float(self.rng.uniform(0.7, 1.0)), self._zp())
        self.b.op("PRELU", [x.index, alpha.index], [y.index], {})
        return self.calibrate(y)

    def quantize(self, x: TensorInfo, scale: float, zp: int) -> TensorInfo:
        return self.unary("QUANTIZE", x, scale=scale, zp=zp)

    def dequantize(self, x: TensorInfo, name: str | None = None) -> TensorInfo:
        return self.unary("DEQUANTIZE", x, name=name)

    def finish(self, inputs, outputs, name: str) -> bytes:
        return self.b.finish([t.index for t in inputs], [t.index for t in outputs],
                             description=f"edgereid corpus_coverage: {name}")


# ---- networks ------------------------------------------------------------------------------------

def _inverted_residual(net: NetBuilder, x: TensorInfo, expand: int, se: bool) -> TensorInfo:
    """MobileNetV2 / MCUNet block: 1x1 expand, 3x3 depthwise, squeeze-excite, 1x1 project, residual."""
    c = x.shape[-1]
    e = net.conv(x, c * expand, 1, act="RELU6")
    d = net.conv(e, 0, 3, act="RELU6", depthwise=True)
    if se:
        s = net.mean(d, [1, 2], keep=True)
        s = net.conv(s, max(2, c // 2), 1, act="RELU")
        s = net.conv(s, c * expand, 1)
        d = net.binary("MUL", d, net.hard_sigmoid(s), None)
    p = net.conv(d, c, 1)
    return net.binary("ADD", x, p, None)


def net_mcunet(seed: int) -> bytes:
    """float input -> QUANTIZE -> stem -> two inverted residual blocks with squeeze-excite
    (hard-sigmoid constants) -> TRANSPOSE to NCHW -> MEAN over H, W -> FC -> DEQUANTIZE."""
    net = NetBuilder(seed)
    xf = net.input("image", (1, 16, 12, 3), "float32")
    x = net.quantize(xf, 0.02, 0)
    x = net.conv(x, 8, 3, stride=2, act="RELU6")
    x = _inverted_residual(net, x, expand=3, se=True)
    x = _inverted_residual(net, x, expand=2, se=True)
    t = net.transpose(x, [0, 3, 1, 2])
    m = net.mean(t, [2, 3], keep=False)
    y = net.fc(m, 10)
    return net.finish([xf], [net.dequantize(y, name="logits")], "net_mcunet")


def net_multihead_detector(seed: int) -> bytes:
    """A backbone with three heads and three outputs: int8 box regression, float class scores
    (DEQUANTIZE), int8 objectness (RESHAPE); one input."""
    net = NetBuilder(seed)
    x = net.input("frame", (1, 12, 12, 4), "int8", 0.04, -3)
    f = net.conv(x, 8, 3, stride=2, act="RELU")
    f = _inverted_residual(net, f, expand=2, se=False)
    boxes = net.conv(f, 4, 1, name="boxes")
    scores = net.dequantize(net.conv(f, 3, 1), name="scores")
    obj = net.conv(f, 1, 3)
    shape = net.b.const_i32("objectness_shape", [1, 36])
    objectness = net.int8("objectness", (1, 36), obj.scale, obj.zero_point)
    net.b.op("RESHAPE", [obj.index, shape.index], [objectness.index], {"new_shape": (1, 36)})
    return net.finish([x], [boxes, scores, objectness], "net_multihead_detector")


def net_two_inputs_two_outputs(seed: int) -> bytes:
    """Two inputs (an int8 image and a float side vector) and two outputs: the RGB-IR fusion shape."""
    net = NetBuilder(seed)
    rgb = net.input("rgb", (1, 6, 6, 3), "int8", 0.03, 5)
    side = net.input("side", (1, 1, 1, 5), "float32")
    f = net.conv(rgb, 5, 3, act="RELU")
    s = net.quantize(side, 0.05, -2)
    fused = net.binary("ADD", f, s, None)
    emb = net.mean(fused, [1, 2], keep=False, name="embedding")
    return net.finish([rgb, side], [emb, net.dequantize(fused, name="fused_map")], "net_two_inputs_two_outputs")


def net_prelu(seed: int) -> bytes:
    """BiRe-ID's unit shape on int8: conv -> PRELU (alpha per channel, [1, 1, C]) -> conv ->
    PRELU (alpha [C]) -> global MEAN."""
    net = NetBuilder(seed)
    x = net.input("x", (1, 8, 8, 6), "int8", 0.05, -10)
    y = net.prelu(net.conv(x, 8, 3), (1, 1, 8))
    y = net.prelu(net.conv(y, 8, 3, stride=2), (8,))
    return net.finish([x], [net.mean(y, [1, 2], keep=False)], "net_prelu")


def net_float_tail(seed: int) -> bytes:
    """The tail converters leave in float: int8 body -> DEQUANTIZE -> float RELU6 -> float MUL by a
    constant -> float ADD of a constant -> float L2_NORMALIZATION -> output (float)."""
    net = NetBuilder(seed)
    x = net.input("x", (1, 4, 4, 8), "int8", 0.05, 3)
    m = net.mean(net.conv(x, 16, 3, act="NONE"), [1, 2], keep=False)
    f = net.dequantize(net.fc(m, 24))
    f = net.unary("RELU6", f)
    scale = net.b.tensor("gain", (24,), "float32", data=net.rng.uniform(0.5, 2.0, size=24).astype(np.float32))
    f = net.binary("MUL", f, scale, 0, 0)
    shift = net.b.tensor("offset", (1, 24), "float32", data=net.rng.standard_normal((1, 24)).astype(np.float32))
    f = net.binary("ADD", f, shift, 0, 0, act="RELU")
    y = net.unary("L2_NORMALIZATION", f, options={"fused_activation_function": "NONE"}, name="embedding")
    return net.finish([x], [y], "net_float_tail")


def net_float_island(seed: int) -> bytes:
    """Float ops between two quantized parts: DEQUANTIZE -> float RELU -> float ADD of two float
    tensors -> RELU_N1_TO_1 -> QUANTIZE -> int8 conv."""
    net = NetBuilder(seed)
    x = net.input("x", (1, 5, 5, 4), "int8", 0.05, 0)
    a = net.dequantize(net.conv(x, 4, 3))
    b = net.dequantize(net.conv(x, 4, 1))
    s = net.binary("ADD", net.unary("RELU", a), b, 0, 0)
    s = net.unary("RELU_N1_TO_1", s)
    y = net.conv(net.quantize(s, 2.0 / 255, 0), 6, 3)
    return net.finish([x], [y], "net_float_island")


# ---- one op at a time ----------------------------------------------------------------------------

def _single(seed: int, name: str, build) -> bytes:
    net = NetBuilder(seed)
    inputs, outputs = build(net)
    return net.finish(inputs, outputs, name)


def _transpose(shape, perm):
    def build(net):
        x = net.input("x", shape, "int8", 0.05, -7)
        return [x], [net.transpose(x, perm)]
    return build


def _binary_const(kind: str, const_shape, const_first: bool = False, act: str = "NONE"):
    def build(net):
        x = net.input("x", (1, 5, 4, 6), "int8", 0.04, 9)
        c = net.const_int8(const_shape, net.rng.uniform(-2.0, 2.0, size=const_shape), 2.0 / 127, 0)
        a, b = (c, x) if const_first else (x, c)
        scale = 0.04 * 2.0 * 1.2 if kind == "ADD" else 0.04 * 2.0 * 60 / 40
        return [x], [net.binary(kind, a, b, scale, -4, act=act)]
    return build


def _relu_int8(kind: str, out_scale: float, out_zp: int):
    def build(net):
        x = net.input("x", (1, 6, 5, 3), "int8", 0.05, -12)
        return [x], [net.unary(kind, x, scale=out_scale, zp=out_zp)]
    return build


def _prelu_single(x_shape, alpha_shape):
    def build(net):
        x = net.input("x", x_shape, "int8", 0.04, 17)
        return [x], [net.prelu(x, alpha_shape)]
    return build


def _float_unary(kind: str, options=None, shape=(2, 3, 17)):
    def build(net):
        x = net.input("x", shape, "float32")
        return [x], [net.unary(kind, x, options=options)]
    return build


def _float_binary(kind: str, const: bool, act: str):
    def build(net):
        x = net.input("x", (1, 4, 3, 5), "float32")
        if const:
            c = net.b.tensor("c", (1, 1, 1, 5), "float32",
                             data=net.rng.standard_normal((1, 1, 1, 5)).astype(np.float32))
            return [x], [net.binary(kind, x, c, 0, 0, act=act)]
        z = net.input("z", (1, 4, 1, 5), "float32")
        return [x, z], [net.binary(kind, x, z, 0, 0, act=act)]
    return build


def coverage_builders() -> dict:
    """name -> builder(seed) -> .tflite bytes, for every coverage model."""
    singles = {
        "transpose_nhwc_to_nchw": _transpose((1, 4, 5, 6), [0, 3, 1, 2]),
        "transpose_nchw_to_nhwc": _transpose((1, 6, 4, 5), [0, 2, 3, 1]),
        "transpose_4d_reverse": _transpose((2, 3, 4, 5), [3, 2, 1, 0]),
        "transpose_3d": _transpose((3, 7, 5), [0, 2, 1]),
        "transpose_2d": _transpose((6, 9), [1, 0]),
        "add_const_scalar": _binary_const("ADD", (1,)),
        "add_const_channel_first": _binary_const("ADD", (1, 1, 1, 6), const_first=True, act="RELU"),
        "mul_const_scalar": _binary_const("MUL", (1,)),
        "mul_const_hw": _binary_const("MUL", (1, 5, 4, 1), act="RELU6"),
        "relu_int8": _relu_int8("RELU", 0.04, -128),
        "relu6_int8": _relu_int8("RELU6", 6.0 / 255, -128),
        "relu6_int8_rescale": _relu_int8("RELU6", 0.03, -100),
        "relu_n1_to_1_int8": _relu_int8("RELU_N1_TO_1", 2.0 / 255, 0),
        "prelu_channel": _prelu_single((1, 5, 4, 6), (1, 1, 6)),
        "prelu_full": _prelu_single((1, 3, 4, 5), (1, 3, 4, 5)),
        "prelu_rank2": _prelu_single((3, 7), (7,)),
        "float_relu": _float_unary("RELU"),
        "float_relu6": _float_unary("RELU6"),
        "float_relu_n1_to_1": _float_unary("RELU_N1_TO_1"),
        "float_l2_normalization": _float_unary("L2_NORMALIZATION", {"fused_activation_function": "NONE"},
                                               shape=(3, 64)),
        "float_add_const_relu6": _float_binary("ADD", True, "RELU6"),
        "float_mul_broadcast": _float_binary("MUL", False, "NONE"),
    }
    builders = {f"cov_{name}": (lambda seed, n=name, f=fn: _single(seed, n, f)) for name, fn in singles.items()}
    builders.update({f"cov_{fn.__name__}": fn for fn in (net_mcunet, net_multihead_detector,
                                                          net_two_inputs_two_outputs, net_prelu, net_float_tail,
                                                          net_float_island)})
    return builders

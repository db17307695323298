"""Lowerings of Larq Compute Engine's binary ops (DESIGN.md, "Binary networks in TFLite").

`CUSTOM:LceQuantize` (float32 or int8 -> bitpacked), `CUSTOM:LceBconv2d` (bitpacked ->
float32, int8 or bitpacked), `CUSTOM:LceDequantize` (bitpacked -> float32 or int8) and
`CUSTOM:LceBMaxPool2d` (bitpacked -> bitpacked), each one call of a `_b1` kernel of
firmware/kernels/binary/ (chosen in kernel_registry by op and tensor types), mixed
freely with the int8 builtin ops. Bitpacked tensors are int32 with the channel axis
packed (ceil(C / 32) words per pixel), so the planner places them at their packed size.

Every option outside what the kernels compute exactly, and every bitpacked tensor whose
shape disagrees with its channel count, is refused before any C is generated, with one
line naming the op index and the option or tensor (the registered checks below; the
front end runs them through lowering.check_op).

The derived constants follow LCE 0.16's Prepare / OneTimeSetup (bconv2d.cc) to the bit:
per output channel, in double from the float32 post multiplier m and bias b,
multiplier = (float)(-m / s) and bias = (float)((b + K * m) / s + z) (s, z: the int8
output's scale and zero point, 1 and 0 for float output); the fused activation's int32
range [lo, hi] clipped to [-K, K] becomes bounds on 2a: [K - hi, K - lo]. LCE's
interpreter runs with flush-to-zero and denormals-are-zero, so a denormal m or b reads
as 0, a constant that rounds to a denormal float is stored as a zero of its sign, a float
result below FLT_MIN is flushed (the kernel does it where the constants allow it:
flush_denormals), and LceQuantize packs a negative denormal input as +1 (x < 0 is false
for it under DAZ; checked against the interpreter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgereid.errors import FirmwareError
from edgereid.firmware import quantize_math as qm
from edgereid.firmware.kernel_abi import (BCONV_OUTPUT_TYPES, CONTEXT, BconvParams, BconvTransform, BmaxpoolParams,
                                          ConstRef, Dims, Scalar, StructArrayRef, StructRef, Tile, TensorRef)
from edgereid.firmware.kernel_registry import select_kernel
from edgereid.firmware.lowering import CArray, Layer, OpCheck, register_check, register_lowering
from edgereid.tflite.ir import Graph, Op, Tensor, custom_kind

QUANTIZE, DEQUANTIZE = custom_kind("LceQuantize"), custom_kind("LceDequantize")
BCONV2D, BMAXPOOL2D = custom_kind("LceBconv2d"), custom_kind("LceBMaxPool2d")
LCE_KINDS = (QUANTIZE, DEQUANTIZE, BCONV2D, BMAXPOOL2D)

# LCE's option encodings: tflite::Padding and tflite::ActivationFunctionType.
PADDINGS = {0: "SAME", 1: "VALID"}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
# CalculateActivationRange(activation) for int32 (LCE clips it to [-K, K]).
_ACT_RANGE = {"NONE": (-2**31, 2**31 - 1), "RELU": (0, 2**31 - 1), "RELU_N1_TO_1": (-1, 1), "RELU6": (0, 6)}
MAX_DEPTH = 1 << 22           # EREID_BCONV_MAX_DEPTH: K = KH * KW * channels per group
FLT_MIN = 2.0 ** -126
NO_DENORMAL_BOUND = 2.0 ** -100  # constants 0 or at least this large: y = x * m + b is never denormal


def words(channels: int) -> int:
    """int32 words of a bitpacked row of `channels` channels."""
    return (int(channels) + 31) // 32


def _label(t: Tensor) -> str:
    return f"tensor {t.index} {t.name!r}"


# ---- options and channel counts ------------------------------------------------------------

def _int_option(c: OpCheck, key: str, lo: int, hi: int, choices: dict | None = None):
    """A required integer option (LCE reads every one with AsInt32: a string or a missing key
    would silently read as 0)."""
    if key not in c.op.options:
        raise c.fail(f"option {key} is missing; expected an integer in [{lo}, {hi}]"
                     + (f" ({', '.join(f'{k} {v}' for k, v in choices.items())})" if choices else ""))
    value = c.op.options[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        what = f" ({', '.join(f'{k} {v}' for k, v in choices.items())})" if choices else ""
        raise c.fail(f"option {key} is {value!r}; expected an integer in [{lo}, {hi}]{what}")
    return int(value)


def bitpacked_channels(graph: Graph, tensor: int, seen: frozenset = frozenset()) -> tuple[int, Op] | None:
    """(channel count, producing op) of a bitpacked tensor written by an Lce op: LceQuantize's
    input channels, LceBconv2d's output channels, LceBMaxPool2d's input count; None if unknown."""
    op = graph.producer(tensor)
    if op is None or op.index in seen:
        return None
    if op.kind == QUANTIZE and op.inputs and op.inputs[0] >= 0:
        shape = graph.tensors[op.inputs[0]].shape
        return (int(shape[-1]), op) if shape else None
    if op.kind == BCONV2D and len(op.inputs) > 1 and op.inputs[1] >= 0:
        f = graph.tensors[op.inputs[1]]
        return (int(f.shape[0]), op) if len(f.shape) == 4 else None
    if op.kind == BMAXPOOL2D and op.inputs and op.inputs[0] >= 0:
        inner = bitpacked_channels(graph, op.inputs[0], seen | {op.index})
        return (inner[0], op) if inner else None
    return None


def _check_packed(c: OpCheck, role: str, slot: int, t: Tensor, channels: int, why: str) -> None:
    """A bitpacked tensor's last dim must be ceil(channels / 32)."""
    if not t.shape or t.shape[-1] != words(channels):
        raise c.fail_tensor(role, slot, t, "shape", f"{list(t.shape)} is bitpacked along its last axis; {why} gives "
                            f"{channels} channels, so it must end in {words(channels)} words (ceil({channels} / 32))")


def _check_producer_count(c: OpCheck, slot: int, t: Tensor, channels: int, what: str) -> None:
    """The channel count an op assumes for its bitpacked input equals the one its producer packed."""
    known = bitpacked_channels(c.graph, t.index)
    if known is not None and known[0] != channels:
        raise c.fail(f"{what} is {channels}; input {slot} {_label(t)} holds {known[0]} bitpacked channels "
                     f"(written by op {known[1].index} ({known[1].kind})); expected {known[0]}")


def _lce_dtypes(graph: Graph, op: Op, path) -> None:
    """Front-end dtype rule of the Lce ops (replaces the int8 one): the registered checks below
    name every tensor and dtype, so this only refuses constants where activations go."""
    c = OpCheck(graph, op, path)
    for slot, ti in enumerate(op.inputs[:1]):
        if ti >= 0 and graph.tensors[ti].is_const:
            raise c.fail_tensor("input", slot, graph.tensors[ti], "data", "is a constant; expected an activation")


# ---- LceQuantize / LceDequantize ---------------------------------------------------------------

@register_check(QUANTIZE)
def _check_quantize(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.dtype("input", 0, x, ("float32", "int8"))
    c.dtype("output", 0, y, ("int32",))
    c.rank("input", 0, x, range(1, 5))
    if len(y.shape) != len(x.shape) or tuple(y.shape[:-1]) != tuple(x.shape[:-1]):
        raise c.fail_tensor("output", 0, y, "shape", f"{list(y.shape)}; expected {list(x.shape[:-1])} + "
                            f"[{words(x.shape[-1])}] (the input's shape, last axis bitpacked)")
    _check_packed(c, "output", 0, y, x.shape[-1], f"the input {_label(x)} of shape {list(x.shape)}")
    if x.dtype == "int8" and len(x.scales) != 1:
        raise c.fail_tensor("input", 0, x, "quantization", "expected one scale and zero point (per tensor)")


@register_check(DEQUANTIZE)
def _check_dequantize(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.dtype("input", 0, x, ("int32",))
    c.dtype("output", 0, y, ("float32", "int8"))
    c.rank("output", 0, y, range(1, 5))
    if len(y.shape) != len(x.shape) or tuple(y.shape[:-1]) != tuple(x.shape[:-1]):
        raise c.fail_tensor("output", 0, y, "shape", f"{list(y.shape)}; expected {list(x.shape[:-1])} + "
                            "[channels] (the input's shape, last axis unpacked)")
    _check_packed(c, "input", 0, x, y.shape[-1], f"the output {_label(y)} of shape {list(y.shape)}")
    _check_producer_count(c, 0, x, int(y.shape[-1]), f"output {_label(y)} channel count")
    if y.dtype == "int8":
        _dequantize_s8_values(c, y)


def _dequantize_s8_values(c: OpCheck, y: Tensor) -> tuple[int, int]:
    """LCE's int8 unpack values: off = TfLiteRound(1.0f / scale) (float division);
    +1 -> min(127, zp + off), -1 -> max(-128, zp - off)."""
    if len(y.scales) != 1 or not (math.isfinite(y.scale) and y.scale > 0):
        raise c.fail_tensor("output", 0, y, "quantization.scale", f"{list(y.scales)}; expected one finite scale > 0")
    with np.errstate(over="ignore", divide="ignore"):
        inv = float(np.float32(1.0) / np.float32(y.scale))
    if not inv < 2.0 ** 30:
        raise c.fail_tensor("output", 0, y, "quantization.scale", f"{y.scale!r}: 1 / scale = {inv!r} does not fit "
                            "an int32 offset; expected 1 / scale < 2^30")
    off = qm.round_half_away(inv)
    return min(127, y.zero_point + off), max(-128, y.zero_point - off)


def _rows(t: Tensor) -> int:
    return t.num_elements // int(t.shape[-1])


@register_lowering(QUANTIZE, check_dtypes=_lce_dtypes)
def lower_quantize(graph: Graph, op: Op, prefix: str) -> Layer:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kernel = select_kernel(op.kind, x.dtype, None, y.dtype)
    rows, channels = _rows(x), int(x.shape[-1])
    if x.dtype == "float32":
        call = kernel.call((Scalar(rows), Scalar(channels), TensorRef(x.index, "const float *"),
                            TensorRef(y.index, "int32_t *")))
        # Each word is written after its 32 floats are read and lies at or before them: safe in place.
        return Layer(op, (x.index,), (y.index,), call, inplace_input=0)
    call = kernel.call((Scalar(rows), Scalar(channels), Scalar(x.zero_point), TensorRef(x.index, "const int8_t *"),
                        TensorRef(y.index, "int32_t *")))
    return Layer(op, (x.index,), (y.index,), call)


@register_lowering(DEQUANTIZE, check_dtypes=_lce_dtypes)
def lower_dequantize(graph: Graph, op: Op, prefix: str) -> Layer:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    kernel = select_kernel(op.kind, x.dtype, None, y.dtype)
    rows, channels = _rows(y), int(y.shape[-1])
    if y.dtype == "float32":
        call = kernel.call((Scalar(rows), Scalar(channels), TensorRef(x.index, "const int32_t *"),
                            TensorRef(y.index, "float *")))
    else:
        plus, minus = _dequantize_s8_values(OpCheck(graph, op), y)
        call = kernel.call((Scalar(rows), Scalar(channels), Scalar(plus), Scalar(minus),
                            TensorRef(x.index, "const int32_t *"), TensorRef(y.index, "int8_t *")))
    return Layer(op, (x.index,), (y.index,), call)


# ---- LceBMaxPool2d ------------------------------------------------------------------------------

def _geometry(c: OpCheck, axis: str, in_size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    out = qm.out_size(padding, in_size, k, stride, dilation)
    if out < 1:
        raise c.fail(f"{axis}: a {k}-tap window (dilation {dilation}) does not fit an input of {in_size} with "
                     f"{padding} padding; expected an output size >= 1")
    if (out - 1) * stride + (k - 1) * dilation + 1 + in_size > 2**31 - 1:
        raise c.fail(f"{axis}: window coordinates overflow int32")
    return out


@dataclass(frozen=True)
class PoolGeometry:
    kh: int
    kw: int
    sh: int
    sw: int
    padding: str
    out_h: int
    out_w: int


def _pool_geometry(c: OpCheck) -> PoolGeometry:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.dtype("input", 0, x, ("int32",))
    c.dtype("output", 0, y, ("int32",))
    c.rank("input", 0, x, (4,))
    padding = PADDINGS[_int_option(c, "padding", 0, 1, PADDINGS)]
    kh, kw = _int_option(c, "filter_height", 1, 2**31 - 1), _int_option(c, "filter_width", 1, 2**31 - 1)
    sh, sw = _int_option(c, "stride_height", 1, 2**31 - 1), _int_option(c, "stride_width", 1, 2**31 - 1)
    n, h, w, nw = x.shape
    out_h, out_w = _geometry(c, "height", h, kh, sh, 1, padding), _geometry(c, "width", w, kw, sw, 1, padding)
    c.expect_output_shape((n, out_h, out_w, nw), f"{padding} padding, {kh}x{kw} window, stride {sh}x{sw}, "
                          f"{nw} words per pixel")
    known = bitpacked_channels(c.graph, x.index)
    if known is not None:
        _check_packed(c, "input", 0, x, known[0], f"its producer op {known[1].index} ({known[1].kind})")
    return PoolGeometry(kh, kw, sh, sw, padding, out_h, out_w)


register_check(BMAXPOOL2D)(lambda c: _pool_geometry(c) and None)


@register_lowering(BMAXPOOL2D, check_dtypes=_lce_dtypes)
def lower_bmaxpool(graph: Graph, op: Op, prefix: str) -> Layer:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    geo = _pool_geometry(OpCheck(graph, op))
    pad_h = qm.padding_before(x.shape[1], geo.kh, geo.sh, 1, geo.out_h) if geo.padding == "SAME" else 0
    pad_w = qm.padding_before(x.shape[2], geo.kw, geo.sw, 1, geo.out_w) if geo.padding == "SAME" else 0
    params = StructRef(f"{prefix}_params", BmaxpoolParams(stride=Tile(geo.sh, geo.sw), padding=Tile(pad_h, pad_w)))
    call = select_kernel(op.kind, x.dtype, None, y.dtype).call((
        params, StructRef(f"{prefix}_in_dims", Dims.of(x.shape)), TensorRef(x.index, "const int32_t *"),
        StructRef(f"{prefix}_filter_dims", Dims(1, geo.kh, geo.kw, 1)),
        StructRef(f"{prefix}_out_dims", Dims.of(y.shape)),
        TensorRef(y.index, "int32_t *")))
    return Layer(op, (x.index,), (y.index,), call)


# ---- LceBconv2d ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BconvPlan:
    """Everything LceBconv2d's check derives, the lowering's input."""
    channels_in: int
    groups: int
    channels_out: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    padding: str
    pad_value: int
    activation: str
    out_h: int
    out_w: int
    depth: int                       # K = KH * KW * channels per group
    output_dtype: str
    transform: tuple = ()            # ((multiplier, bias) float32 per output channel) for float / int8
    clamp: tuple[int, int] = (0, 0)
    threshold: tuple = ()            # int32 per output channel for bitpacked output


def _ftz(v: float) -> np.float32:
    """double -> float as LCE's interpreter stores it: round to nearest, flush-to-zero."""
    f = np.float32(v)
    if f != 0 and abs(float(f)) < FLT_MIN:
        return np.float32(math.copysign(0.0, float(f)))
    return f


def _daz(v) -> float:
    """A float32 read under denormals-are-zero, as a double."""
    f = float(np.float32(v))
    return math.copysign(0.0, f) if f != 0 and abs(f) < FLT_MIN else f


def bconv_transform(mult: np.ndarray, bias: np.ndarray, depth: int, out_scale: float, out_zero_point: int):
    """Per output channel (multiplier, bias) float32 exactly as LCE's OneTimeSetup computes them."""
    scale, zp = float(np.float32(out_scale)), float(out_zero_point)
    out = []
    with np.errstate(over="ignore"):
        for m, b in zip(mult.reshape(-1), bias.reshape(-1)):
            pm, pb = _daz(m), _daz(b)
            out.append((_ftz(-1 * pm / scale), _ftz((pb + float(depth) * pm) / scale + zp)))
    return out


def _bconv_plan(c: OpCheck) -> BconvPlan:
    n_in = len(c.op.inputs)
    if n_in != 5:
        raise c.fail(f"has {n_in} inputs; expected 5 (input, filter, post_activation_multiplier, "
                     "post_activation_bias, output_threshold; the unused ones as -1)")
    if len(c.op.outputs) != 1:
        raise c.fail(f"has {len(c.op.outputs)} outputs; expected 1")
    x, f, y = c.input(0, "input"), c.input(1, "filter", const=True), c.output()
    c.dtype("input", 0, x, ("int32",))
    c.dtype("input", 1, f, ("int32",))
    c.dtype("output", 0, y, ("float32", "int8", "int32"))
    c.rank("input", 0, x, (4,))
    c.rank("input", 1, f, (4,))
    c.rank("output", 0, y, (4,))
    cin = _int_option(c, "channels_in", 1, 2**31 - 1)
    sh, sw = _int_option(c, "stride_height", 1, 2**31 - 1), _int_option(c, "stride_width", 1, 2**31 - 1)
    dh = _int_option(c, "dilation_height_factor", 1, 2**31 - 1)
    dw = _int_option(c, "dilation_width_factor", 1, 2**31 - 1)
    padding = PADDINGS[_int_option(c, "padding", 0, 1, PADDINGS)]
    pad_value = _int_option(c, "pad_values", 0, 1)
    activation = ACTIVATIONS[_int_option(c, "fused_activation_function", 0, 3, ACTIVATIONS)]
    n, h, w, in_words = x.shape
    if in_words != words(cin):
        raise c.fail_tensor("input", 0, x, "shape", f"{list(x.shape)} ends in {in_words} words; option channels_in "
                            f"{cin} is bitpacked in {words(cin)} words (ceil({cin} / 32))")
    _check_producer_count(c, 0, x, cin, "option channels_in")
    cout, kh, kw, f_words = f.shape
    if f_words == words(cin):
        groups = 1
    else:
        if f_words < 1 or words(cin) % f_words:
            raise c.fail_tensor("input", 1, f, "shape", f"{list(f.shape)}: {f_words} words per tap do not divide "
                                f"the {words(cin)} words of channels_in {cin}; expected {words(cin)} (groups 1) "
                                "or a divisor of it")
        groups = words(cin) // f_words
        if cin % groups or (cin // groups) % 32:
            raise c.fail(f"option channels_in is {cin} with groups {groups} (from filter {_label(f)} of shape "
                         f"{list(f.shape)}); expected a multiple of 32 input channels per group")
        if cout % groups:
            raise c.fail_tensor("input", 1, f, "shape", f"{list(f.shape)}: {cout} output channels for {groups} groups; "
                                "expected a multiple of the groups")
    per_group = cin // groups
    if padding == "SAME" and pad_value == 0 and cin % 2:
        raise c.fail(f"option pad_values is 0 with SAME padding and channels_in {cin}; expected an even "
                     "channels_in (LCE's reference kernel adds channels_in / 2 per padded tap, exact only for even "
                     "counts, and refuses odd ones) or pad_values 1")
    if padding == "SAME" and pad_value == 0 and y.dtype == "int32":
        raise c.fail(f"option pad_values is 0 with SAME padding and bitpacked output {_label(y)}; expected pad_values "
                     "1 or VALID padding (LCE writes bitpacked output only with valid or one-padding: its "
                     "interpreter reads the absent post_activation_multiplier for the zero-padding correction)")
    depth = kh * kw * per_group
    if depth > MAX_DEPTH:
        raise c.fail_tensor("input", 1, f, "shape", f"{list(f.shape)}: {kh}x{kw} taps of {per_group} channels "
                            f"({depth}); expected at most {MAX_DEPTH}")
    out_h = _geometry(c, "height", h, kh, sh, dh, padding)
    out_w = _geometry(c, "width", w, kw, sw, dw, padding)
    out_c = words(cout) if y.dtype == "int32" else cout
    c.expect_output_shape((n, out_h, out_w, out_c), f"{padding} padding, stride {sh}x{sw}, dilation {dh}x{dw}, "
                          f"filter {list(f.shape)}, {cout} output channels"
                          + (" bitpacked" if y.dtype == "int32" else ""))
    base = dict(channels_in=cin, groups=groups, channels_out=cout, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw,
                padding=padding, pad_value=pad_value, activation=activation, out_h=out_h, out_w=out_w,
                depth=depth, output_dtype=y.dtype)
    if y.dtype == "int32":
        t = c.input(4, "output_threshold", const=True)
        c.dtype("input", 4, t, ("int32",))
        if tuple(t.shape) != (cout,):
            raise c.fail_tensor("input", 4, t, "shape", f"{list(t.shape)}; expected [{cout}] (one per output channel)")
        # a in [0, K]: a threshold below -1 or above K decides as -1 or K do (the kernels take
        # them within [-1, K], so thr - a never wraps)
        return BconvPlan(**base, threshold=tuple(min(max(int(v), -1), depth) for v in t.array().reshape(-1)))
    mult, bias = c.input(2, "post_activation_multiplier", const=True), c.input(3, "post_activation_bias", const=True)
    for slot, t in ((2, mult), (3, bias)):
        c.dtype("input", slot, t, ("float32",))
        if tuple(t.shape) != (cout,):
            raise c.fail_tensor("input", slot, t, "shape", f"{list(t.shape)}; expected [{cout}] (one per output "
                                "channel)")
        values = t.array().astype(np.float64)
        if not np.all(np.isfinite(values)):
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise c.fail_tensor("input", slot, t, f"value[{bad}]", f"{values[bad]!r}; expected finite values")
    scale, zp = 1.0, 0
    if y.dtype == "int8":
        if len(y.scales) != 1 or not (math.isfinite(y.scale) and y.scale > 0):
            raise c.fail_tensor("output", 0, y, "quantization.scale", f"{list(y.scales)}; expected one finite "
                                "scale > 0")
        scale, zp = y.scale, y.zero_point
    transform = bconv_transform(mult.array(), bias.array(), depth, scale, zp)
    for ch, (m, b) in enumerate(transform):
        if not (np.isfinite(m) and np.isfinite(b)):
            raise c.fail(f"output channel {ch}: post_activation_multiplier {float(mult.array()[ch])!r} and bias "
                         f"{float(bias.array()[ch])!r} over output scale {scale!r} give the transform "
                         f"({float(m)!r}, {float(b)!r}); expected finite float32 values")
    lo, hi = _ACT_RANGE[activation]
    lo, hi = max(lo, -depth), min(hi, depth)
    return BconvPlan(**base, transform=tuple(transform), clamp=(depth - hi, depth - lo))


register_check(BCONV2D)(lambda c: _bconv_plan(c) and None)


def needs_flush(transform) -> bool:
    """True unless every multiplier and bias is 0 or at least 2^-100 in magnitude: then
    (float)x * m + b (x an integer) can never be denormal, and the kernel skips the check."""
    return any(v != 0 and abs(float(v)) < NO_DENORMAL_BOUND for pair in transform for v in pair)


class BinaryLayer(Layer):
    """A Layer whose per-channel output transform is a struct array (counted as weights too)."""

    transform_bytes: int = 0

    @property
    def weight_bytes(self) -> int:
        return super().weight_bytes + self.transform_bytes


@register_lowering(BCONV2D, check_dtypes=_lce_dtypes)
def lower_bconv2d(graph: Graph, op: Op, prefix: str) -> Layer:
    x, f, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    plan = _bconv_plan(OpCheck(graph, op))
    pad_h = qm.padding_before(x.shape[1], plan.kh, plan.sh, plan.dh, plan.out_h) if plan.padding == "SAME" else 0
    pad_w = qm.padding_before(x.shape[2], plan.kw, plan.sw, plan.dw, plan.out_w) if plan.padding == "SAME" else 0
    lo, hi = plan.clamp if plan.output_dtype != "int32" else (0, 0)
    flush = int(plan.output_dtype == "float32" and needs_flush(plan.transform))
    params = StructRef(f"{prefix}_params", BconvParams(
        channels_in=plan.channels_in, groups=plan.groups, stride=Tile(plan.sh, plan.sw), padding=Tile(pad_h, pad_w),
        dilation=Tile(plan.dh, plan.dw), pad_value=plan.pad_value, output_type=BCONV_OUTPUT_TYPES[plan.output_dtype],
        clamp_min=lo, clamp_max=hi, flush_denormals=flush))
    arrays = [CArray(f"{prefix}_filter", "int32_t", f.array().reshape(-1).astype(np.int64))]
    if plan.output_dtype == "int32":
        transform = ConstRef(None, "const ereid_bconv_transform *")
        arrays.append(CArray(f"{prefix}_threshold", "int32_t", np.array(plan.threshold, dtype=np.int64)))
        threshold = ConstRef(f"{prefix}_threshold", "const int32_t *")
    else:
        transform = StructArrayRef(f"{prefix}_transform", tuple(BconvTransform(float(m), float(b))
                                                                 for m, b in plan.transform))
        threshold = ConstRef(None, "const int32_t *")
    in_dims = StructRef(f"{prefix}_in_dims", Dims.of(x.shape))
    filter_dims = StructRef(f"{prefix}_filter_dims", Dims.of(f.shape))
    out_dims = StructRef(f"{prefix}_out_dims", Dims(y.shape[0], plan.out_h, plan.out_w, plan.channels_out))
    kernel = select_kernel(op.kind, x.dtype, f.dtype, y.dtype)
    call = kernel.call((CONTEXT, params, transform, threshold, in_dims, TensorRef(x.index, "const int32_t *"),
                        filter_dims, ConstRef(f"{prefix}_filter", "const int32_t *"), out_dims,
                        TensorRef(y.index, "void *")), size_args=(params, in_dims, filter_dims, out_dims))
    layer = BinaryLayer(op, (x.index,), (y.index,), call, arrays,
                        macs=y.shape[0] * plan.out_h * plan.out_w * plan.channels_out * plan.depth)
    layer.transform_bytes = 8 * len(plan.transform)
    return layer


__all__ = ["LCE_KINDS", "BconvPlan", "bconv_transform", "bitpacked_channels", "needs_flush", "words"]

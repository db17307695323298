"""Lower each TFLite op to one kernel call of firmware/include/ereid_nn.h.

Each lowering computes what TFLite's Prepare computes (multipliers, shifts, padding,
activation clamp) and returns a Layer: the constants to emit, the C statements of the
call, and what the planner needs (tensors read and written, aliasing, in-place).

The registry is open: `register_lowering("CUSTOM:LceBconv2d")(fn)` adds an op without
touching this file's core; `supported_ops()` is what the reader accepts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgereid.errors import FirmwareError
from edgereid.firmware import quantize_math as qm
from edgereid.tflite.ir import Graph, Op, Tensor


@dataclass(frozen=True)
class CArray:
    """A `static const` array in model.c."""
    name: str
    ctype: str            # "int8_t", "int32_t" or "double" (emitted as exact hex floats)
    values: np.ndarray    # 1-D


@dataclass
class Layer:
    op: Op
    reads: tuple[int, ...]             # activation tensors the call reads
    writes: tuple[int, ...]            # activation tensors it writes
    # C statements; `ptr(t)` gives the C pointer expression of tensor t. Every call
    # assigns `status`; the caller checks it.
    emit: Callable[[Callable[[int], str]], list[str]] | None
    arrays: list[CArray] = field(default_factory=list)
    decls: list[str] = field(default_factory=list)   # static const params structs
    functions: tuple[str, ...] = ()    # kernel functions called (selects C sources)
    alias: bool = False                # output is the input's bytes (RESHAPE): no code
    inplace_input: int | None = None   # reads[i] may share storage with writes[0]
    scratch_bytes: int = 0
    macs: int = 0

    @property
    def weight_bytes(self) -> int:
        size = {"int8_t": 1, "int32_t": 4, "double": 8}
        return int(sum(a.values.size * size[a.ctype] for a in self.arrays))


@dataclass(frozen=True)
class OpLowering:
    kind: str
    lower: Callable[[Graph, Op, str], Layer]     # (graph, op, C name prefix) -> Layer
    check_dtypes: Callable | None = None         # overrides the reader's int8 rule


_REGISTRY: dict[str, OpLowering] = {}


def register_lowering(kind: str, check_dtypes: Callable | None = None):
    def deco(fn):
        _REGISTRY[kind] = OpLowering(kind, fn, check_dtypes)
        return fn
    return deco


def supported_ops() -> frozenset[str]:
    return frozenset(_REGISTRY)


def registry_entry(kind: str) -> OpLowering:
    return _REGISTRY[kind]


def lower_graph(graph: Graph) -> list[Layer]:
    """One Layer per op, in graph order (layer index = op index)."""
    layers = []
    for op in graph.ops:
        entry = _REGISTRY.get(op.kind)
        if entry is None:
            raise FirmwareError(f"op {op.index} ({op.kind}) is not supported; supported: "
                                f"{', '.join(sorted(_REGISTRY))}")
        try:
            layers.append(entry.lower(graph, op, f"op{op.index}"))
        except FirmwareError:
            raise
        except (ValueError, KeyError, IndexError) as exc:
            raise FirmwareError(f"{graph.source}: op {op.index} ({op.kind}) cannot be lowered: {exc}") from None
    return layers


# ---- helpers -----------------------------------------------------------------

def _fail(graph: Graph, op: Op, what: str) -> FirmwareError:
    return FirmwareError(f"{graph.source}: op {op.index} ({op.kind}): {what}")


def dims4(shape) -> tuple[int, int, int, int]:
    """NHWC extended with leading 1s (RuntimeShape::ExtendedShape)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) > 4:
        raise ValueError(f"rank {len(shape)} > 4")
    return (1,) * (4 - len(shape)) + shape


def _dims_init(shape) -> str:
    n, h, w, c = dims4(shape)
    return f"{{{n}, {h}, {w}, {c}}}"


def _act_range(graph, op, out: Tensor) -> tuple[int, int]:
    activation = op.options.get("fused_activation_function", "NONE")
    try:
        return qm.activation_range(activation, out.scale, out.zero_point)
    except ValueError:
        raise _fail(graph, op, f"fused activation {activation} is not supported for int8; "
                    "supported: NONE, RELU, RELU6, RELU_N1_TO_1") from None


def _const(graph: Graph, op: Op, slot: int, what: str) -> Tensor:
    if slot >= len(op.inputs) or op.inputs[slot] < 0:
        raise _fail(graph, op, f"missing {what} (input {slot})")
    t = graph.tensors[op.inputs[slot]]
    if not t.is_const:
        raise _fail(graph, op, f"{what} (tensor {t.index} '{t.name}') must be a constant")
    return t


def _bias(graph: Graph, op: Op, slot: int, prefix: str, channels: int) -> tuple[list[CArray], str]:
    if len(op.inputs) <= slot or op.inputs[slot] < 0:
        return [], "NULL"
    b = _const(graph, op, slot, "bias")
    if b.dtype != "int32" or b.num_elements != channels:
        raise _fail(graph, op, f"bias tensor {b.index} must be int32 with {channels} values, "
                    f"got {b.dtype} {list(b.shape)}")
    return [CArray(f"{prefix}_bias", "int32_t", b.array().reshape(-1))], f"{prefix}_bias"


def _check_symmetric(graph, op, t: Tensor, what: str):
    if any(z != 0 for z in t.zero_points):
        raise _fail(graph, op, f"{what} tensor {t.index} has a non-zero zero point; int8 kernels expect 0")


def _status(call: str) -> list[str]:
    return [f"status = {call};"]


def _activation_io(graph: Graph, op: Op) -> tuple[Tensor, Tensor]:
    return graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]


# ---- convolutions --------------------------------------------------------------

def _conv_common(graph, op, prefix, depthwise: bool) -> Layer:
    x, y = _activation_io(graph, op)
    w = _const(graph, op, 1, "filter")
    _check_symmetric(graph, op, w, "filter")
    o = op.options
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise _fail(graph, op, f"expected 4-D input/filter/output, got {list(x.shape)}, {list(w.shape)}, {list(y.shape)}")
    _, in_h, in_w, in_c = x.shape
    batches, out_h, out_w, out_c = y.shape
    k_h, k_w = w.shape[1], w.shape[2]
    s_h, s_w = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    d_h, d_w = int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))
    padding = o.get("padding", "VALID")
    exp_h = qm.out_size(padding, in_h, k_h, s_h, d_h)
    exp_w = qm.out_size(padding, in_w, k_w, s_w, d_w)
    if (exp_h, exp_w) != (out_h, out_w):
        raise _fail(graph, op, f"output {out_h}x{out_w} does not match {padding} padding ({exp_h}x{exp_w})")
    pad_h = qm.padding_before(in_h, k_h, s_h, d_h, out_h)
    pad_w = qm.padding_before(in_w, k_w, s_w, d_w, out_w)
    if depthwise:
        if w.shape[0] != 1 or w.shape[3] != out_c or out_c % in_c:
            raise _fail(graph, op, f"depthwise filter {list(w.shape)} does not fit input channels {in_c} -> {out_c}")
    elif w.shape[0] != out_c or w.shape[3] != in_c:
        raise _fail(graph, op, f"filter {list(w.shape)} does not match {in_c} -> {out_c} channels "
                    "(grouped convolution is not supported)")
    mults, shifts = qm.conv_channel_multipliers(x.scale, w.scales, y.scale, out_c)
    act_min, act_max = _act_range(graph, op, y)
    arrays = [CArray(f"{prefix}_filter", "int8_t", w.array().reshape(-1))]
    bias_arrays, bias_name = _bias(graph, op, 2, prefix, out_c)
    arrays += bias_arrays
    arrays += [CArray(f"{prefix}_mult", "int32_t", np.array(mults, dtype=np.int64)),
               CArray(f"{prefix}_shift", "int32_t", np.array(shifts, dtype=np.int64))]
    common = (f"{-x.zero_point}, {y.zero_point}")
    tiles = f"{{{s_h}, {s_w}}}, {{{pad_h}, {pad_w}}}, {{{d_h}, {d_w}}}, {{{act_min}, {act_max}}}"
    if depthwise:
        ptype, fn = "ereid_dw_conv_params", "ereid_depthwise_conv_wrapper_s8"
        params = f"{{{common}, {out_c // in_c}, {tiles}}}"
        macs = batches * out_h * out_w * out_c * k_h * k_w
        size_fn = None
    else:
        ptype, fn = "ereid_conv_params", "ereid_convolve_wrapper_s8"
        params = f"{{{common}, {tiles}}}"
        macs = batches * out_h * out_w * out_c * k_h * k_w * in_c
        size_fn = "ereid_convolve_wrapper_s8_get_buffer_size"
    decls = [
        f"static const {ptype} {prefix}_params = {params};",
        f"static const ereid_per_channel_quant_params {prefix}_quant = {{{prefix}_mult, {prefix}_shift}};",
        f"static const ereid_dims {prefix}_in_dims = {_dims_init(x.shape)};",
        f"static const ereid_dims {prefix}_filter_dims = {_dims_init(w.shape)};",
        f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};",
    ]

    def emit(ptr):
        lines = []
        if size_fn:
            # Kernels report their scratch need; the plan reserved none, so refuse rather than overrun.
            lines.append(f"if ({size_fn}(&{prefix}_params, &{prefix}_in_dims, &{prefix}_filter_dims, "
                         f"&{prefix}_out_dims) > 0) return {op.index + 1};")
        lines += _status(f"{fn}(&ereid_no_scratch, &{prefix}_params, &{prefix}_quant, &{prefix}_in_dims, "
                         f"{ptr(x.index)}, &{prefix}_filter_dims, {prefix}_filter, {bias_name}, "
                         f"&{prefix}_out_dims, {ptr(y.index)})")
        return lines

    fns = (fn, size_fn) if size_fn else (fn,)
    return Layer(op, (x.index,), (y.index,), emit, arrays, decls, fns, macs=macs)


@register_lowering("CONV_2D")
def lower_conv_2d(graph, op, prefix):
    return _conv_common(graph, op, prefix, depthwise=False)


@register_lowering("DEPTHWISE_CONV_2D")
def lower_depthwise_conv_2d(graph, op, prefix):
    return _conv_common(graph, op, prefix, depthwise=True)


@register_lowering("FULLY_CONNECTED")
def lower_fully_connected(graph, op, prefix):
    x, y = _activation_io(graph, op)
    w = _const(graph, op, 1, "weights")
    _check_symmetric(graph, op, w, "weights")
    if len(w.shape) != 2:
        raise _fail(graph, op, f"weights must be 2-D [out, in], got {list(w.shape)}")
    if op.options.get("weights_format", 0) not in (0,):
        raise _fail(graph, op, "only the DEFAULT weights format is supported")
    units, depth = w.shape
    if x.num_elements % depth:
        raise _fail(graph, op, f"input of {x.num_elements} elements is not a multiple of depth {depth}")
    batches = x.num_elements // depth
    act_min, act_max = _act_range(graph, op, y)
    arrays = [CArray(f"{prefix}_filter", "int8_t", w.array().reshape(-1))]
    bias_arrays, bias_name = _bias(graph, op, 2, prefix, units)
    arrays += bias_arrays
    decls = [f"static const ereid_fc_params {prefix}_params = {{{-x.zero_point}, {-w.zero_point}, "
             f"{y.zero_point}, {{{act_min}, {act_max}}}}};",
             f"static const ereid_dims {prefix}_in_dims = {{{batches}, 1, 1, {depth}}};",
             f"static const ereid_dims {prefix}_filter_dims = {{{units}, 1, 1, {depth}}};",
             f"static const ereid_dims {prefix}_out_dims = {{{batches}, 1, 1, {units}}};"]
    # LiteRT's BUILTIN_REF FULLY_CONNECTED rescales in double and rounds once, half away
    # from zero (not MultiplyByQuantizedMultiplier): one double per weight scale.
    scales = qm.fully_connected_scales(x.scale, w.scales if w.is_per_channel else [w.scale], y.scale)
    if len(scales) not in (1, units):
        raise _fail(graph, op, f"{len(scales)} weight scales for {units} units")
    arrays.append(CArray(f"{prefix}_scale", "double", np.array(scales, dtype=np.float64)))
    decls.append(f"static const ereid_fc_rescale_params {prefix}_quant = {{{prefix}_scale, {len(scales)}}};")
    fn = "ereid_fully_connected_rescale_s8"

    def emit(ptr):
        return _status(f"{fn}(&ereid_no_scratch, &{prefix}_params, &{prefix}_quant, &{prefix}_in_dims, "
                       f"{ptr(x.index)}, &{prefix}_filter_dims, {prefix}_filter, {bias_name}, "
                       f"&{prefix}_out_dims, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, arrays, decls, (fn,), macs=batches * units * depth)


# ---- elementwise ---------------------------------------------------------------

def _binary_inputs(graph, op):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    for t in (a, b):
        if t.is_const:
            raise _fail(graph, op, f"constant operand tensor {t.index} is not supported")
    return a, b, y


def _binary_layer(graph, op, prefix, fn, ptype, params):
    a, b, y = _binary_inputs(graph, op)
    decls = [f"static const {ptype} {prefix}_params = {params};",
             f"static const ereid_dims {prefix}_in1_dims = {_dims_init(a.shape)};",
             f"static const ereid_dims {prefix}_in2_dims = {_dims_init(b.shape)};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};"]

    def emit(ptr):
        return _status(f"{fn}(&{prefix}_params, &{prefix}_in1_dims, {ptr(a.index)}, &{prefix}_in2_dims, "
                       f"{ptr(b.index)}, &{prefix}_out_dims, {ptr(y.index)})")

    # Element i of the output depends only on element i of a same-shape input: safe in place.
    inplace = next((i for i, t in enumerate((a, b)) if t.shape == y.shape and a.index != b.index), None)
    return Layer(op, (a.index, b.index), (y.index,), emit, [], decls, (fn,), inplace_input=inplace)


@register_lowering("ADD")
def lower_add(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    p = qm.add_params(a.scale, b.scale, y.scale)
    act_min, act_max = _act_range(graph, op, y)
    params = (f"{{{-a.zero_point}, {-b.zero_point}, {y.zero_point}, {p['left_shift']}, "
              f"{{{p['input1_multiplier']}, {p['input1_shift']}}}, {{{p['input2_multiplier']}, {p['input2_shift']}}}, "
              f"{{{p['output_multiplier']}, {p['output_shift']}}}, {{{act_min}, {act_max}}}}}")
    return _binary_layer(graph, op, prefix, "ereid_add_s8", "ereid_add_params", params)


@register_lowering("MUL")
def lower_mul(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    m, s = qm.mul_params(a.scale, b.scale, y.scale)
    act_min, act_max = _act_range(graph, op, y)
    params = (f"{{{-a.zero_point}, {-b.zero_point}, {y.zero_point}, {{{m}, {s}}}, {{{act_min}, {act_max}}}}}")
    return _binary_layer(graph, op, prefix, "ereid_mul_s8", "ereid_mul_params", params)


# ---- pooling and reductions ----------------------------------------------------

def _pool(graph, op, prefix, fn):
    x, y = _activation_io(graph, op)
    o = op.options
    k_h, k_w = int(o["filter_height"]), int(o["filter_width"])
    s_h, s_w = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    padding = o.get("padding", "VALID")
    _, in_h, in_w, _ = x.shape
    _, out_h, out_w, _ = y.shape
    if (qm.out_size(padding, in_h, k_h, s_h), qm.out_size(padding, in_w, k_w, s_w)) != (out_h, out_w):
        raise _fail(graph, op, f"output {out_h}x{out_w} does not match {padding} padding")
    if (x.scale, x.zero_point) != (y.scale, y.zero_point):
        raise _fail(graph, op, "input and output quantization must be equal for int8 pooling")
    pad_h = qm.padding_before(in_h, k_h, s_h, 1, out_h)
    pad_w = qm.padding_before(in_w, k_w, s_w, 1, out_w)
    act_min, act_max = _act_range(graph, op, y)
    decls = [f"static const ereid_pool_params {prefix}_params = {{{{{s_h}, {s_w}}}, {{{pad_h}, {pad_w}}}, "
             f"{{{act_min}, {act_max}}}}};",
             f"static const ereid_dims {prefix}_in_dims = {_dims_init(x.shape)};",
             f"static const ereid_dims {prefix}_filter_dims = {{1, {k_h}, {k_w}, 1}};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};"]

    def emit(ptr):
        return _status(f"{fn}(&ereid_no_scratch, &{prefix}_params, &{prefix}_in_dims, {ptr(x.index)}, "
                       f"&{prefix}_filter_dims, &{prefix}_out_dims, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, (fn,))


@register_lowering("MAX_POOL_2D")
def lower_max_pool(graph, op, prefix):
    return _pool(graph, op, prefix, "ereid_max_pool_s8")


@register_lowering("AVERAGE_POOL_2D")
def lower_avg_pool(graph, op, prefix):
    return _pool(graph, op, prefix, "ereid_avg_pool_s8")


@register_lowering("MEAN")
def lower_mean(graph, op, prefix):
    x, y = _activation_io(graph, op)
    axis_t = _const(graph, op, 1, "axis")
    axes = [int(a) for a in axis_t.array().reshape(-1)]
    rank = len(x.shape)
    keep_dims = bool(op.options.get("keep_dims", False))
    mask = 0
    for a in axes:
        if not -rank <= a < rank:
            raise _fail(graph, op, f"axis {a} out of range for rank {rank}")
        mask |= 1 << ((a % rank) + 4 - rank)
    # LiteRT's reduce.cc sends every int8 MEAN to reference_ops::QuantizedMeanOrSum:
    # one requantization of sum(x - zp_in) with 1/count folded into the multiplier.
    count = 1
    for d, n in enumerate(dims4(x.shape)):
        if mask & (1 << d):
            count *= n
    m, s = qm.mean_multiplier_with_count(x.scale, y.scale, count)
    mode_name = "EREID_MEAN_REQUANT"
    scale = float(np.float32(x.scale) / np.float32(y.scale))
    reduced = [1 if mask & (1 << d) else n for d, n in enumerate(dims4(x.shape))]
    decls = [f"static const ereid_mean_params {prefix}_params = {{{mode_name}, {mask}, {x.zero_point}, "
             f"{y.zero_point}, {{{m}, {s}}}, {_c_float(scale)}}};",
             f"static const ereid_dims {prefix}_in_dims = {_dims_init(x.shape)};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(reduced)};"]

    def emit(ptr):
        return _status(f"ereid_mean_s8(&{prefix}_params, &{prefix}_in_dims, {ptr(x.index)}, "
                       f"&{prefix}_out_dims, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_mean_s8",))


def _c_float(value: float) -> str:
    """A C float literal that parses back to the same float32 (9 significant digits suffice)."""
    f = float(np.float32(value))
    if math.isinf(f) or math.isnan(f):
        raise ValueError(f"non-finite float {value}")
    text = f"{f:.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


# ---- data movement -------------------------------------------------------------

def _lower_alias(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.nbytes != y.nbytes:
        raise _fail(graph, op, f"input has {x.nbytes} bytes, output {y.nbytes}")

    def emit(ptr):  # used only when the planner cannot alias (output is the graph output)
        return _status(f"ereid_reshape_s8({ptr(x.index)}, {ptr(y.index)}, {y.nbytes})")

    return Layer(op, (x.index,), (y.index,), emit, [], [], ("ereid_reshape_s8",), alias=True)


for _kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
    register_lowering(_kind)(_lower_alias)


@register_lowering("PAD")
@register_lowering("PADV2")
def lower_pad(graph, op, prefix):
    x, y = _activation_io(graph, op)
    pads = _const(graph, op, 1, "paddings").array().reshape(-1, 2).astype(int).tolist()
    if len(pads) != len(x.shape):
        raise _fail(graph, op, f"paddings has {len(pads)} rows for a rank-{len(x.shape)} input")
    pads = [[0, 0]] * (4 - len(pads)) + pads
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        pad_value = int(_const(graph, op, 2, "constant_values").array().reshape(-1)[0])
    else:
        pad_value = y.zero_point
    before = ", ".join(str(p[0]) for p in pads)
    after = ", ".join(str(p[1]) for p in pads)
    decls = [f"static const ereid_pad_params {prefix}_params = {{{{{before}}}, {{{after}}}, {pad_value}}};",
             f"static const ereid_dims {prefix}_in_dims = {_dims_init(x.shape)};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};"]

    def emit(ptr):
        return _status(f"ereid_pad_s8(&{prefix}_params, &{prefix}_in_dims, {ptr(x.index)}, "
                       f"&{prefix}_out_dims, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_pad_s8",))


@register_lowering("CONCATENATION")
def lower_concatenation(graph, op, prefix):
    y = graph.tensors[op.outputs[0]]
    xs = [graph.tensors[i] for i in op.inputs]
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _fail(graph, op, "fused activation on CONCATENATION is not supported")
    for t in xs:
        if t.is_const:
            raise _fail(graph, op, f"constant input tensor {t.index} is not supported")
        if (t.scale, t.zero_point) != (y.scale, y.zero_point):
            raise _fail(graph, op, f"input tensor {t.index} quantization differs from the output's")
    rank = len(y.shape)
    axis = int(op.options.get("axis", 0)) % rank + 4 - rank
    dims = ", ".join(_dims_init(t.shape) for t in xs)
    decls = [f"static const ereid_dims {prefix}_in_dims[{len(xs)}] = {{{dims}}};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};"]

    def emit(ptr):
        ptrs = ", ".join(ptr(t.index) for t in xs)
        return [f"{{ const int8_t *const {prefix}_inputs[{len(xs)}] = {{{ptrs}}};",
                f"  status = ereid_concatenation_s8({prefix}_inputs, {prefix}_in_dims, {len(xs)}, {axis}, "
                f"&{prefix}_out_dims, {ptr(y.index)}); }}"]

    return Layer(op, tuple(t.index for t in xs), (y.index,), emit, [], decls, ("ereid_concatenation_s8",))


@register_lowering("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest(graph, op, prefix):
    x, y = _activation_io(graph, op)
    o = op.options
    decls = [f"static const ereid_resize_params {prefix}_params = {{{int(bool(o.get('align_corners')))}, "
             f"{int(bool(o.get('half_pixel_centers')))}}};",
             f"static const ereid_dims {prefix}_in_dims = {_dims_init(x.shape)};",
             f"static const ereid_dims {prefix}_out_dims = {_dims_init(y.shape)};"]

    def emit(ptr):
        return _status(f"ereid_resize_nearest_s8(&{prefix}_params, &{prefix}_in_dims, {ptr(x.index)}, "
                       f"&{prefix}_out_dims, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_resize_nearest_s8",))


# ---- normalisation -------------------------------------------------------------

@register_lowering("SOFTMAX")
def lower_softmax(graph, op, prefix):
    x, y = _activation_io(graph, op)
    beta = float(op.options.get("beta", 1.0))
    if y.zero_point != -128 or abs(y.scale - 1.0 / 256) > 0.001 * (1.0 / 256):
        raise _fail(graph, op, f"int8 softmax output must have scale 1/256 and zero point -128, "
                    f"got {y.scale} and {y.zero_point}")
    # PreprocessSoftmaxScaling(beta, in_scale, 5) and CalculateInputRadius(5, shift, 31).
    real = min(beta * float(x.scale) * (1 << 26), float((1 << 31) - 1))
    mult, shift = qm.quantize_multiplier(real)
    diff_min = -math.floor(1.0 * ((1 << 5) - 1) * (1 << 26) / (1 << shift))
    depth = x.shape[-1]
    rows = x.num_elements // depth
    decls = [f"static const ereid_softmax_params {prefix}_params = {{{mult}, {shift}, {diff_min}}};"]

    def emit(ptr):
        return _status(f"ereid_softmax_s8(&{prefix}_params, {rows}, {depth}, {ptr(x.index)}, {ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_softmax_s8",))


@register_lowering("L2_NORMALIZATION")
def lower_l2norm(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if y.zero_point != 0 or abs(y.scale - 1.0 / 128) > 1e-6:
        raise _fail(graph, op, f"int8 L2 normalization output must have scale 1/128 and zero point 0, "
                    f"got {y.scale} and {y.zero_point}")
    depth = x.shape[-1]
    rows = x.num_elements // depth
    decls = [f"static const ereid_l2norm_params {prefix}_params = {{{x.zero_point}}};"]

    def emit(ptr):
        return _status(f"ereid_l2_normalization_s8(&{prefix}_params, {rows}, {depth}, {ptr(x.index)}, "
                       f"{ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_l2_normalization_s8",))


# ---- graph edges -----------------------------------------------------------------

@register_lowering("QUANTIZE")
def lower_quantize(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.dtype != "float32":
        raise _fail(graph, op, f"only float32 -> int8 QUANTIZE is supported, input is {x.dtype}")
    decls = [f"static const ereid_affine_quant_params {prefix}_params = {{{_c_float(y.scale)}, {y.zero_point}}};"]

    def emit(ptr):
        return _status(f"ereid_quantize_f32_s8(&{prefix}_params, {y.num_elements}, "
                       f"(const float *){ptr(x.index)}, {ptr(y.index)})")

    # Writing byte i after reading float i never clobbers a float not yet read.
    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_quantize_f32_s8",), inplace_input=0)


@register_lowering("DEQUANTIZE")
def lower_dequantize(graph, op, prefix):
    x, y = _activation_io(graph, op)
    decls = [f"static const ereid_affine_quant_params {prefix}_params = {{{_c_float(x.scale)}, {x.zero_point}}};"]

    def emit(ptr):
        return _status(f"ereid_dequantize_s8_f32(&{prefix}_params, {x.num_elements}, {ptr(x.index)}, "
                       f"(float *){ptr(y.index)})")

    return Layer(op, (x.index,), (y.index,), emit, [], decls, ("ereid_dequantize_s8_f32",))

"""Lower each TFLite op to one kernel call of firmware/include/ereid_nn.h.

Each lowering computes what TFLite's Prepare computes (multipliers, shifts, padding,
activation clamp) and returns a Layer: the constant arrays to emit, the kernel call as
typed values (`kernel_abi.KernelCall`: the C function, chosen by op and tensor types in
`kernel_registry`, and its arguments, params structs as dataclasses mirroring
ereid_nn_types.h), and what the planner needs (tensors read and written, aliasing,
in-place, the scratch the kernel's get_buffer_size rule asks for). codegen prints it.

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
from edgereid.firmware.kernel_abi import (CONTEXT, MEAN_REQUANT, Activation, AddParams, Address, AffineQuantParams,
                                          ConstRef, ConvParams, Dims, DwConvParams, FcParams, FcRescaleParams,
                                          KernelCall, L2NormParams, MeanParams, MulParams, PadParams,
                                          PerChannelQuant, PerTensorQuant, PoolParams, ResizeParams, Scalar,
                                          SoftmaxParams, StructArrayRef, StructRef, TensorList, TensorRef, Tile)
from edgereid.firmware.kernel_registry import select_kernel
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
    call: KernelCall | None            # the kernel call (typed); None: the layer has no code
    arrays: list[CArray] = field(default_factory=list)
    alias: bool = False                # output is the input's bytes (RESHAPE): no code when planned so
    inplace_input: int | None = None   # reads[i] may share storage with writes[0]
    macs: int = 0

    @property
    def functions(self) -> tuple[str, ...]:
        """Kernel functions called (selects the C sources)."""
        return self.call.functions if self.call else ()

    @property
    def scratch_bytes(self) -> int:
        """Scratch the kernel asked for (planned in the arena, passed in its ereid_context)."""
        return self.call.scratch_bytes if self.call else 0

    @property
    def kernel(self) -> str | None:
        """The kernel that runs: a wrapper's pick (its Python mirror) or the kernel called."""
        return (self.call.variant or self.call.function) if self.call else None

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
    d = Dims.of(shape)
    return d.n, d.h, d.w, d.c


def _act_range(graph, op, out: Tensor) -> Activation:
    activation = op.options.get("fused_activation_function", "NONE")
    try:
        return Activation(*qm.activation_range(activation, out.scale, out.zero_point))
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


def _bias(graph: Graph, op: Op, slot: int, prefix: str, channels: int) -> tuple[list[CArray], ConstRef]:
    if len(op.inputs) <= slot or op.inputs[slot] < 0:
        return [], ConstRef(None, "const int32_t *")
    b = _const(graph, op, slot, "bias")
    if b.dtype != "int32" or b.num_elements != channels:
        raise _fail(graph, op, f"bias tensor {b.index} must be int32 with {channels} values, "
                    f"got {b.dtype} {list(b.shape)}")
    return [CArray(f"{prefix}_bias", "int32_t", b.array().reshape(-1))], ConstRef(f"{prefix}_bias", "const int32_t *")


def _check_symmetric(graph, op, t: Tensor, what: str):
    if any(z != 0 for z in t.zero_points):
        raise _fail(graph, op, f"{what} tensor {t.index} has a non-zero zero point; int8 kernels expect 0")


def _activation_io(graph: Graph, op: Op) -> tuple[Tensor, Tensor]:
    return graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]


def _kernel(op: Op, x: Tensor, y: Tensor, w: Tensor | None = None):
    """The registered kernel for this op and these tensor types (kernel_registry)."""
    return select_kernel(op.kind, x.dtype, w.dtype if w is not None else None, y.dtype)


def _dims(prefix: str, what: str, shape) -> StructRef:
    return StructRef(f"{prefix}_{what}_dims", Dims.of(shape))


def _in(t: Tensor) -> TensorRef:
    return TensorRef(t.index, "const int8_t *")


def _out(t: Tensor) -> TensorRef:
    return TensorRef(t.index, "int8_t *")


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
    kernel = _kernel(op, x, y, w)
    mults, shifts = qm.conv_channel_multipliers(x.scale, w.scales, y.scale, out_c)
    act = _act_range(graph, op, y)
    arrays = [CArray(f"{prefix}_filter", "int8_t", w.array().reshape(-1))]
    bias_arrays, bias = _bias(graph, op, 2, prefix, out_c)
    arrays += bias_arrays
    arrays += [CArray(f"{prefix}_mult", "int32_t", np.array(mults, dtype=np.int64)),
               CArray(f"{prefix}_shift", "int32_t", np.array(shifts, dtype=np.int64))]
    tiles = dict(stride=Tile(s_h, s_w), padding=Tile(pad_h, pad_w), dilation=Tile(d_h, d_w), activation=act)
    if depthwise:
        values = DwConvParams(input_offset=-x.zero_point, output_offset=y.zero_point, ch_mult=out_c // in_c, **tiles)
        macs = batches * out_h * out_w * out_c * k_h * k_w
    else:
        values = ConvParams(input_offset=-x.zero_point, output_offset=y.zero_point, **tiles)
        macs = batches * out_h * out_w * out_c * k_h * k_w * in_c
    params = StructRef(f"{prefix}_params", values)
    quant = StructRef(f"{prefix}_quant", PerChannelQuant(Address(f"{prefix}_mult"), Address(f"{prefix}_shift")))
    in_dims, filter_dims, out_dims = _dims(prefix, "in", x.shape), _dims(prefix, "filter", w.shape), \
        _dims(prefix, "out", y.shape)
    call = kernel.call((CONTEXT, params, quant, in_dims, _in(x), filter_dims, ConstRef(f"{prefix}_filter", "const int8_t *"),
                        bias, out_dims, _out(y)), size_args=(params, in_dims, filter_dims, out_dims))
    return Layer(op, (x.index,), (y.index,), call, arrays, macs=macs)


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
    kernel = _kernel(op, x, y, w)
    act = _act_range(graph, op, y)
    arrays = [CArray(f"{prefix}_filter", "int8_t", w.array().reshape(-1))]
    bias_arrays, bias = _bias(graph, op, 2, prefix, units)
    arrays += bias_arrays
    # LiteRT's BUILTIN_REF FULLY_CONNECTED rescales in double and rounds once, half away
    # from zero (not MultiplyByQuantizedMultiplier): one double per weight scale.
    scales = qm.fully_connected_scales(x.scale, w.scales if w.is_per_channel else [w.scale], y.scale)
    if len(scales) not in (1, units):
        raise _fail(graph, op, f"{len(scales)} weight scales for {units} units")
    arrays.append(CArray(f"{prefix}_scale", "double", np.array(scales, dtype=np.float64)))
    params = StructRef(f"{prefix}_params", FcParams(input_offset=-x.zero_point, filter_offset=-w.zero_point,
                                                    output_offset=y.zero_point, activation=act))
    quant = StructRef(f"{prefix}_quant", FcRescaleParams(scale=Address(f"{prefix}_scale"), count=len(scales)))
    in_dims = StructRef(f"{prefix}_in_dims", Dims(batches, 1, 1, depth))
    filter_dims = StructRef(f"{prefix}_filter_dims", Dims(units, 1, 1, depth))
    out_dims = StructRef(f"{prefix}_out_dims", Dims(batches, 1, 1, units))
    call = kernel.call((CONTEXT, params, quant, in_dims, _in(x), filter_dims, ConstRef(f"{prefix}_filter", "const int8_t *"),
                        bias, out_dims, _out(y)), size_args=(params, in_dims, filter_dims, out_dims))
    return Layer(op, (x.index,), (y.index,), call, arrays, macs=batches * units * depth)


# ---- elementwise ---------------------------------------------------------------

def _binary_inputs(graph, op):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    for t in (a, b):
        if t.is_const:
            raise _fail(graph, op, f"constant operand tensor {t.index} is not supported")
    return a, b, y


def _binary_layer(graph, op, prefix, values):
    a, b, y = _binary_inputs(graph, op)
    call = _kernel(op, a, y).call((StructRef(f"{prefix}_params", values), _dims(prefix, "in1", a.shape), _in(a),
                                   _dims(prefix, "in2", b.shape), _in(b), _dims(prefix, "out", y.shape), _out(y)))
    # Element i of the output depends only on element i of a same-shape input: safe in place.
    inplace = next((i for i, t in enumerate((a, b)) if t.shape == y.shape and a.index != b.index), None)
    return Layer(op, (a.index, b.index), (y.index,), call, inplace_input=inplace)


@register_lowering("ADD")
def lower_add(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    p = qm.add_params(a.scale, b.scale, y.scale)
    values = AddParams(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=y.zero_point,
                       left_shift=p["left_shift"],
                       input1_quant=PerTensorQuant(p["input1_multiplier"], p["input1_shift"]),
                       input2_quant=PerTensorQuant(p["input2_multiplier"], p["input2_shift"]),
                       output_quant=PerTensorQuant(p["output_multiplier"], p["output_shift"]),
                       activation=_act_range(graph, op, y))
    return _binary_layer(graph, op, prefix, values)


@register_lowering("MUL")
def lower_mul(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    m, s = qm.mul_params(a.scale, b.scale, y.scale)
    values = MulParams(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=y.zero_point,
                       output_quant=PerTensorQuant(m, s), activation=_act_range(graph, op, y))
    return _binary_layer(graph, op, prefix, values)


# ---- pooling and reductions ----------------------------------------------------

def _pool(graph, op, prefix):
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
    params = StructRef(f"{prefix}_params", PoolParams(stride=Tile(s_h, s_w), padding=Tile(pad_h, pad_w),
                                                      activation=_act_range(graph, op, y)))
    in_dims = _dims(prefix, "in", x.shape)
    filter_dims = StructRef(f"{prefix}_filter_dims", Dims(1, k_h, k_w, 1))
    out_dims = _dims(prefix, "out", y.shape)
    call = _kernel(op, x, y).call((CONTEXT, params, in_dims, _in(x), filter_dims, out_dims, _out(y)),
                                  size_args=(params, in_dims, filter_dims, out_dims))
    return Layer(op, (x.index,), (y.index,), call)


@register_lowering("MAX_POOL_2D")
def lower_max_pool(graph, op, prefix):
    return _pool(graph, op, prefix)


@register_lowering("AVERAGE_POOL_2D")
def lower_avg_pool(graph, op, prefix):
    return _pool(graph, op, prefix)


@register_lowering("MEAN")
def lower_mean(graph, op, prefix):
    x, y = _activation_io(graph, op)
    axis_t = _const(graph, op, 1, "axis")
    axes = [int(a) for a in axis_t.array().reshape(-1)]
    rank = len(x.shape)
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
    scale = float(np.float32(x.scale) / np.float32(y.scale))   # unused by EREID_MEAN_REQUANT
    reduced = [1 if mask & (1 << d) else n for d, n in enumerate(dims4(x.shape))]
    params = StructRef(f"{prefix}_params", MeanParams(mode=MEAN_REQUANT, axis_mask=mask, input_zero_point=x.zero_point,
                                                      output_zero_point=y.zero_point, quant=PerTensorQuant(m, s),
                                                      scale=scale))
    call = _kernel(op, x, y).call((params, _dims(prefix, "in", x.shape), _in(x),
                                   StructRef(f"{prefix}_out_dims", Dims(*reduced)), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


# ---- data movement -------------------------------------------------------------

def _lower_alias(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.nbytes != y.nbytes:
        raise _fail(graph, op, f"input has {x.nbytes} bytes, output {y.nbytes}")
    # The call runs only when the planner cannot alias (output is the graph output).
    call = _kernel(op, x, y).call((_in(x), _out(y), Scalar(y.nbytes)))
    return Layer(op, (x.index,), (y.index,), call, alias=True)


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
    values = PadParams(before=Dims(*(p[0] for p in pads)), after=Dims(*(p[1] for p in pads)), pad_value=pad_value)
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", values), _dims(prefix, "in", x.shape), _in(x),
                                   _dims(prefix, "out", y.shape), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


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
    call = _kernel(op, xs[0], y).call((
        TensorList(f"{prefix}_inputs", tuple(t.index for t in xs)),
        StructArrayRef(f"{prefix}_in_dims", tuple(Dims.of(t.shape) for t in xs)),
        Scalar(len(xs)), Scalar(axis), _dims(prefix, "out", y.shape), _out(y)))
    return Layer(op, tuple(t.index for t in xs), (y.index,), call)


@register_lowering("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest(graph, op, prefix):
    x, y = _activation_io(graph, op)
    o = op.options
    values = ResizeParams(align_corners=int(bool(o.get("align_corners"))),
                          half_pixel_centers=int(bool(o.get("half_pixel_centers"))))
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", values), _dims(prefix, "in", x.shape), _in(x),
                                   _dims(prefix, "out", y.shape), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


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
    values = SoftmaxParams(input_multiplier=mult, input_left_shift=shift, diff_min=diff_min)
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", values), Scalar(rows), Scalar(depth), _in(x), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


@register_lowering("L2_NORMALIZATION")
def lower_l2norm(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if y.zero_point != 0 or abs(y.scale - 1.0 / 128) > 1e-6:
        raise _fail(graph, op, f"int8 L2 normalization output must have scale 1/128 and zero point 0, "
                    f"got {y.scale} and {y.zero_point}")
    depth = x.shape[-1]
    rows = x.num_elements // depth
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", L2NormParams(input_zero_point=x.zero_point)),
                                   Scalar(rows), Scalar(depth), _in(x), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


# ---- graph edges -----------------------------------------------------------------

@register_lowering("QUANTIZE")
def lower_quantize(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.dtype != "float32":
        raise _fail(graph, op, f"only float32 -> int8 QUANTIZE is supported, input is {x.dtype}")
    values = AffineQuantParams(scale=y.scale, zero_point=y.zero_point)
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", values), Scalar(y.num_elements),
                                   TensorRef(x.index, "const float *"), _out(y)))
    # Writing byte i after reading float i never clobbers a float not yet read.
    return Layer(op, (x.index,), (y.index,), call, inplace_input=0)


@register_lowering("DEQUANTIZE")
def lower_dequantize(graph, op, prefix):
    x, y = _activation_io(graph, op)
    values = AffineQuantParams(scale=x.scale, zero_point=x.zero_point)
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", values), Scalar(x.num_elements), _in(x),
                                   TensorRef(y.index, "float *")))
    return Layer(op, (x.index,), (y.index,), call)

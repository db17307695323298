"""Lower each TFLite op to one kernel call of firmware/include/ereid_nn.h.

Each lowering computes what TFLite's Prepare computes (multipliers, shifts, padding,
activation clamp) and returns a Layer: the constant arrays to emit, the kernel call as
typed values (`kernel_abi.KernelCall`: the C function, chosen by op and tensor types in
`kernel_registry`, and its arguments, params structs as dataclasses mirroring
ereid_nn_types.h), and what the planner needs (tensors read and written, aliasing,
in-place, the scratch the kernel's get_buffer_size rule asks for). codegen prints it.

The registry is open: `register_lowering("CUSTOM:LceBconv2d")(fn)` adds an op without
touching this file's core; `supported_ops()` is what the reader accepts. Every op kind
also needs a check (`register_check("CUSTOM:LceBconv2d")(fn)`, fn(OpCheck) validates
arity, options and the declared output shape, see "validation" below): a kind without
one is refused before any C is generated.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgereid.errors import FirmwareError
from edgereid.firmware import quantize_math as qm
from edgereid.firmware.kernel_abi import (CONTEXT, MEAN_REQUANT, Activation, AddParams, Address, AffineQuantParams,
                                          ConstRef, ConvParams, Dims, DwConvParams, FcIntRescaleParams, FcParams,
                                          KernelCall, L2NormParams, MeanParams, MulParams, PadParams,
                                          PerChannelQuant, PerTensorQuant, PoolParams, ResizeParams, Scalar,
                                          SoftmaxParams, StructArrayRef, StructRef, TensorList, TensorRef, Tile,
                                          FloatClampParams, PreluParams, ReluParams, TransposeParams)
from edgereid.firmware import kernel_registry as kreg
from edgereid.firmware.kernel_registry import select_kernel
from edgereid.tflite.ir import Graph, Op, Tensor


@dataclass(frozen=True)
class CArray:
    """A `static const` array in model.c."""
    name: str
    ctype: str            # "int8_t", "int32_t", "float" or "double" (floats emitted as exact hex floats)
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
        size = {"int8_t": 1, "int32_t": 4, "float": 4, "double": 8}
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
    """One Layer per op, in graph order (layer index = op index); each op is checked first
    (check_op), and every int32 the call passes is checked to fit (check_int32_args)."""
    layers = []
    for op in graph.ops:
        entry = _REGISTRY.get(op.kind)
        if entry is None:
            raise FirmwareError(f"{graph.source}: op {op.index} ({op.kind}) is not supported; supported: "
                                f"{', '.join(sorted(_REGISTRY))}")
        check_op(graph, op)
        try:
            layer = entry.lower(graph, op, f"op{op.index}")
        except FirmwareError:
            raise
        except (ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
            raise FirmwareError(f"{graph.source}: op {op.index} ({op.kind}) cannot be lowered: {exc}") from None
        check_int32_args(graph, layer)
        layers.append(layer)
    return layers


def _int32_fields(value, path: str):
    """(field path, int) of every int32_t field of a params struct value, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _int32_fields(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        yield path, int(value)


def check_int32_args(graph: Graph, layer: Layer) -> None:
    """Second line behind the checks: every integer a kernel call passes (struct fields,
    scalars) and every int32_t constant array fits int32, so C never gets a truncated value."""
    op = layer.op
    items = []
    if layer.call is not None:
        for arg in layer.call.args:
            if isinstance(arg, StructRef):
                items += list(_int32_fields(arg.value, arg.name))
            elif isinstance(arg, StructArrayRef):
                for k, v in enumerate(arg.values):
                    items += list(_int32_fields(v, f"{arg.name}[{k}]"))
            elif isinstance(arg, Scalar):
                items += list(_int32_fields(arg.value, "scalar"))
    for a in layer.arrays:
        if a.ctype == "int32_t" and a.values.size:
            items += [(f"{a.name}[min]", int(a.values.min())), (f"{a.name}[max]", int(a.values.max()))]
    for name, v in items:
        if not INT32_MIN <= v <= INT32_MAX:
            raise FirmwareError(f"{graph.source}: op {op.index} ({op.kind}) kernel argument {name} is {v}; "
                                f"expected an int32 in [{INT32_MIN}, {INT32_MAX}]")


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
    except (ValueError, OverflowError):
        raise _fail(graph, op, f"fused activation {activation} is not supported for int8; "
                    "supported: NONE, RELU, RELU6, RELU_N1_TO_1") from None


def _const(graph: Graph, op: Op, slot: int, what: str) -> Tensor:
    if slot >= len(op.inputs) or op.inputs[slot] < 0:
        raise _fail(graph, op, f"missing {what} (input {slot})")
    t = graph.tensors[op.inputs[slot]]
    if not t.is_const:
        raise _fail(graph, op, f"{what} ({_label(t)}) must be a constant")
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


# ---- validation: what each op computes from its inputs and options ------------------
#
# Before an op is lowered (and when the front end reads a model) its check runs: arity,
# which inputs are constants, ranks, options (strides, dilations, padding names, depth
# multipliers ...), the output shape the op computes from its inputs and options against
# the shape the file declares, and the ranges the int8 kernels compute exactly (int32
# accumulators, biases, requantization shifts). A check is registered per op kind
# (`register_check`); an op kind with a lowering but no check is refused, so an unchecked
# op never reaches codegen. Every failure is one line: file, op index and kind, tensor
# index and name, field, what was expected.

INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
GEOMETRY_MAX = 2**15 - 1     # strides, dilations, pooling windows: LiteRT's Prepare refuses more than INT16_MAX
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
PADDINGS = ("SAME", "VALID")


def _label(t: Tensor) -> str:
    return f"tensor {t.index} {t.name!r}"


class OpCheck:
    """One op under check: typed access to its tensors and options, one-line errors."""

    def __init__(self, graph: Graph, op: Op, where: str | None = None):
        self.graph, self.op = graph, op
        self.where = str(where) if where is not None else graph.source

    def fail(self, what: str) -> FirmwareError:
        return FirmwareError(f"{self.where}: op {self.op.index} ({self.op.kind}) {what}")

    def fail_tensor(self, role: str, slot: int, t: Tensor, field_: str, what: str) -> FirmwareError:
        return self.fail(f"{role} {slot} {_label(t)}: {field_}: {what}")

    def arity(self, inputs: tuple[int, int], outputs: int = 1) -> None:
        lo, hi = inputs
        n = len(self.op.inputs)
        if not lo <= n <= hi:
            want = f"{lo}" if lo == hi else (f"{lo} to {hi}" if hi < 1 << 30 else f"at least {lo}")
            raise self.fail(f"has {n} inputs; expected {want}")
        if len(self.op.outputs) != outputs:
            raise self.fail(f"has {len(self.op.outputs)} outputs; expected {outputs}")

    def input(self, slot: int, what: str, const: bool | None = False, optional: bool = False) -> Tensor | None:
        """Input `slot` (`what` names its role); const=True: must be a constant, False: an activation."""
        if slot >= len(self.op.inputs) or self.op.inputs[slot] < 0:
            if optional:
                return None
            raise self.fail(f"input {slot} ({what}) is omitted; expected a tensor")
        t = self.graph.tensors[self.op.inputs[slot]]
        if const is True and not t.is_const:
            raise self.fail_tensor("input", slot, t, what, "is an activation; expected a constant")
        if const is False and t.is_const:
            raise self.fail_tensor("input", slot, t, what, "is a constant; expected an activation")
        return t

    def output(self, slot: int = 0) -> Tensor:
        return self.graph.tensors[self.op.outputs[slot]]

    def rank(self, role: str, slot: int, t: Tensor, ranks) -> None:
        if len(t.shape) not in tuple(ranks):
            raise self.fail_tensor(role, slot, t, "shape", f"{list(t.shape)} has rank {len(t.shape)}; "
                                   f"expected rank {' or '.join(str(r) for r in ranks)}")

    def dtype(self, role: str, slot: int, t: Tensor, dtypes) -> None:
        if t.dtype not in dtypes:
            raise self.fail_tensor(role, slot, t, "dtype", f"is {t.dtype}; expected {' or '.join(dtypes)}")

    def option_int(self, key: str, default: int, lo: int = 1, hi: int = INT32_MAX) -> int:
        value = self.op.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
            raise self.fail(f"option {key} is {value!r}; expected an integer in [{lo}, {hi}]")
        return int(value)

    def option_choice(self, key: str, default: str, choices) -> str:
        value = self.op.options.get(key, default)
        if value not in choices:
            raise self.fail(f"option {key} is {value!r}; expected one of {', '.join(choices)}")
        return value

    def activation(self, choices=ACTIVATIONS) -> str:
        return self.option_choice("fused_activation_function", "NONE", choices)

    def expect_output_shape(self, expected, why: str, slot: int = 0) -> None:
        y = self.output(slot)
        expected = tuple(int(d) for d in expected)
        if tuple(y.shape) != expected:
            raise self.fail_tensor("output", slot, y, "shape", f"declared {list(y.shape)}; the op computes "
                                   f"{list(expected)} ({why})")

    def same_quant(self, role: str, slot: int, t: Tensor, ref: Tensor) -> None:
        if (t.scale, t.zero_point) != (ref.scale, ref.zero_point):
            raise self.fail_tensor(role, slot, t, "quantization", f"scale {t.scale!r}, zero point {t.zero_point}; "
                                   f"expected those of {_label(ref)} ({ref.scale!r}, {ref.zero_point}): "
                                   "this op moves bytes without requantizing")

    def const_ints(self, slot: int, what: str, shape=None) -> list[int]:
        """A constant int32/int64 input's values (flattened); `shape`: its required shape."""
        t = self.input(slot, what, const=True)
        self.dtype("input", slot, t, ("int32", "int64"))
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise self.fail_tensor("input", slot, t, "shape", f"{list(t.shape)}; expected {list(shape)}")
        return [int(v) for v in t.array().reshape(-1)]

    def multiplier(self, real: float, field_: str, tensors: str) -> tuple[int, int]:
        """quantize_multiplier(real) where the kernels can use it: finite, shift <= 30."""
        if not (math.isfinite(real) and real >= 0.0):
            raise self.fail(f"{field_} from the scales of {tensors} is {real!r}; expected a finite value >= 0")
        m, shift = qm.quantize_multiplier(real)
        if shift > 30:
            raise self.fail(f"{field_} from the scales of {tensors} is {real!r} (2^{shift - 1} or more); "
                            "expected less than 2^30: the int32 requantization would shift past 31 bits")
        return m, shift

    def requant_fits(self, bound: int, multiplier: int, shift: int, field_: str, tensors: str) -> None:
        """An int32 value of magnitude <= `bound` through MultiplyByQuantizedMultiplier(multiplier, shift)
        (x << left shift, doubling high multiply, rounding right shift) and then offset by a zero point
        stays inside int32: the kernels' and the reference's int32 arithmetic is then exact."""
        left, right = max(shift, 0), max(-shift, 0)
        if bound << left > INT32_MAX:
            raise self.fail(f"{field_}: values up to {bound} scaled by 2^{left} (from {tensors}) overflow int32; "
                            f"expected at most {INT32_MAX >> left}")
        out = ((((bound << left) * multiplier + (1 << 30)) >> 31) >> right) + 1
        if out + 128 > INT32_MAX:
            raise self.fail(f"{field_}: values up to {bound} requantize to about {out}; adding the output zero point "
                            f"overflows int32 (from {tensors})")


def max_abs_offset(zero_point: int) -> int:
    """The largest |q - zero_point| over int8 q."""
    return max(127 - zero_point, zero_point + 128)


def _per_channel_weights(c: OpCheck, slot: int, w: Tensor, channels: int, axis: int) -> None:
    """int8 constant weights: symmetric, one scale or one per output channel along `axis`."""
    c.dtype("input", slot, w, ("int8",))
    if not w.scales:
        raise c.fail_tensor("input", slot, w, "quantization", "missing; expected int8 scales")
    if any(z != 0 for z in w.zero_points):
        raise c.fail_tensor("input", slot, w, "quantization.zero_point", f"{list(w.zero_points)[:4]}...; "
                            "expected 0 (symmetric int8 weights)")
    if len(w.scales) not in (1, channels) or (len(w.scales) > 1 and w.quantized_dimension != axis):
        raise c.fail_tensor("input", slot, w, "quantization.scale", f"{len(w.scales)} scales along dimension "
                            f"{w.quantized_dimension}; expected 1 or {channels} along dimension {axis}")


def _bias_values(c: OpCheck, slot: int, channels: int) -> list[int] | None:
    b = c.input(slot, "bias", const=True, optional=True)
    if b is None:
        return None
    c.dtype("input", slot, b, ("int32",))
    if b.num_elements != channels:
        raise c.fail_tensor("input", slot, b, "shape", f"{list(b.shape)} holds {b.num_elements} values; "
                            f"expected {channels} (one per output channel)")
    return [int(v) for v in b.array().reshape(-1)]


def _accumulator_bounds(c: OpCheck, w: Tensor, x: Tensor, bias: list[int] | None, slot_axis: int) -> list[int]:
    """Per output channel, the largest |sum (x - zp_x) * w| + |bias| the int32 accumulator reaches;
    refuses a channel whose sum or sum + bias leaves int32 (signed overflow in C)."""
    weights = np.abs(np.moveaxis(w.array().astype(np.int64), slot_axis, 0).reshape(w.shape[slot_axis], -1))
    sums = [int(s) * max_abs_offset(x.zero_point) for s in weights.sum(axis=1)]
    bounds = []
    for ch, s in enumerate(sums):
        b = abs(bias[ch]) if bias is not None else 0
        if s + b > INT32_MAX:
            what = f"bias[{ch}] = {bias[ch]}" if bias is not None and b else "the accumulator"
            raise c.fail(f"output channel {ch}: {what} with |sum (x - zero point) * w| up to {s} overflows the int32 "
                         f"accumulator; expected |bias| + {s} <= {INT32_MAX}")
        bounds.append(s + b)
    return bounds


def _activation_clamp(c: OpCheck, y: Tensor) -> None:
    act = c.activation()
    try:
        lo, hi = qm.activation_range(act, y.scale, y.zero_point)
    except (OverflowError, ValueError):
        raise c.fail_tensor("output", 0, y, "quantization.scale", f"{y.scale!r} is too small to express the "
                            f"{act} clamp in int8") from None
    if lo > hi:
        raise c.fail_tensor("output", 0, y, "quantization", f"{act} clamp [{lo}, {hi}] is empty")


def _geometry(c: OpCheck, axis: str, in_size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    """ComputeOutSize; refuses an output size < 1 and coordinates that leave int32."""
    out = qm.out_size(padding, in_size, k, stride, dilation)
    if out < 1:
        raise c.fail(f"{axis}: a {k}-tap window (dilation {dilation}) does not fit an input of {in_size} with "
                     f"{padding} padding; expected an output size >= 1")
    extent = (out - 1) * stride + (k - 1) * dilation + 1
    if extent + in_size > INT32_MAX:
        raise c.fail(f"{axis}: window coordinates up to {extent} (stride {stride}, dilation {dilation}, {k} taps) "
                     "overflow int32")
    return out


_CHECKS: dict[str, Callable[[OpCheck], None]] = {}

# The newest operator-code version of each builtin op that LiteRT's reference resolver
# (BUILTIN_REF, ai-edge-litert 2.3.0) registers, measured; a newer version may mean other
# semantics, and LiteRT refuses it. A kind without an entry (custom ops) is not bounded.
MAX_OP_VERSIONS = {
    "CONV_2D": 8, "DEPTHWISE_CONV_2D": 6, "FULLY_CONNECTED": 14, "ADD": 5, "MUL": 7, "MAX_POOL_2D": 3,
    "AVERAGE_POOL_2D": 3, "MEAN": 3, "PAD": 6, "PADV2": 6, "CONCATENATION": 7, "RESHAPE": 1, "SQUEEZE": 1,
    "EXPAND_DIMS": 1, "RESIZE_NEAREST_NEIGHBOR": 4, "SOFTMAX": 3, "L2_NORMALIZATION": 2, "QUANTIZE": 6,
    "DEQUANTIZE": 9,
}


def register_check(*kinds: str):
    """Register `fn(check: OpCheck)` as the validation of op kinds `kinds` (see the section doc)."""
    def deco(fn):
        for kind in kinds:
            _CHECKS[kind] = fn
        return fn
    return deco


def has_check(kind: str) -> bool:
    return kind in _CHECKS


def check_op(graph: Graph, op: Op, where=None) -> None:
    """Validate `op` (registered check); a FirmwareError naming op, tensor and field if it fails."""
    c = OpCheck(graph, op, where)
    fn = _CHECKS.get(op.kind)
    if fn is None:
        raise c.fail("has a lowering but no registered check (lowering.register_check); expected one, so that "
                     "its output shape and options are validated before C is generated")
    newest = MAX_OP_VERSIONS.get(op.kind)
    if newest is not None and not 1 <= op.version <= newest:
        raise c.fail(f"has operator version {op.version}; expected 1 to {newest} (the versions LiteRT's reference "
                     "kernels implement)")
    fn(c)


def _quantized_bias_type(c: OpCheck) -> None:
    """The options' quantized_bias_type: unset (0) or INT32 (TensorType 2), the bias the int8 kernels add."""
    value = c.op.options.get("quantized_bias_type", 0)
    if value not in (0, 2):
        raise c.fail(f"option quantized_bias_type is {value!r}; expected 0 (unset) or 2 (INT32)")


def _check_conv(c: OpCheck) -> None:
    depthwise = c.op.kind == "DEPTHWISE_CONV_2D"
    c.arity((3, 3))       # LiteRT's int8 convolutions require the bias
    x, w, y = c.input(0, "input"), c.input(1, "filter", const=True), c.output()
    c.rank("input", 0, x, (4,))
    c.rank("input", 1, w, (4,))
    padding = c.option_choice("padding", "VALID", PADDINGS)
    s_h, s_w = c.option_int("stride_h", 1, hi=GEOMETRY_MAX), c.option_int("stride_w", 1, hi=GEOMETRY_MAX)
    d_h = c.option_int("dilation_h_factor", 1, hi=GEOMETRY_MAX)
    d_w = c.option_int("dilation_w_factor", 1, hi=GEOMETRY_MAX)
    _quantized_bias_type(c)
    n, in_h, in_w, in_c = x.shape
    if depthwise:
        out_c = w.shape[3]
        if w.shape[0] != 1 or out_c % in_c:
            raise c.fail_tensor("input", 1, w, "shape", f"{list(w.shape)}; expected [1, kh, kw, C * m] for "
                                f"{in_c} input channels")
        mult = c.option_int("depth_multiplier", out_c // in_c)
        if mult != out_c // in_c:
            raise c.fail(f"option depth_multiplier is {mult}; expected {out_c // in_c} (filter channels "
                         f"{out_c} / input channels {in_c})")
        axis = 3
    else:
        out_c = w.shape[0]
        if w.shape[3] != in_c:
            raise c.fail_tensor("input", 1, w, "shape", f"{list(w.shape)}; expected [O, kh, kw, {in_c}] "
                                "(grouped convolution is not supported)")
        axis = 0
    (_int4_weights if w.dtype == "int4" else _per_channel_weights)(c, 1, w, out_c, axis)
    k_h, k_w = w.shape[1], w.shape[2]
    out_h = _geometry(c, "height", in_h, k_h, s_h, d_h, padding)
    out_w = _geometry(c, "width", in_w, k_w, s_w, d_w, padding)
    c.expect_output_shape((n, out_h, out_w, out_c), f"{padding} padding, stride {s_h}x{s_w}, "
                          f"dilation {d_h}x{d_w}, filter {list(w.shape)}")
    c.input(2, "bias", const=True)
    bias = _bias_values(c, 2, out_c)
    _activation_clamp(c, y)
    bounds = _accumulator_bounds(c, w, x, bias, axis)
    scales = list(w.scales) * (out_c if len(w.scales) == 1 else 1)
    tensors = f"{_label(x)}, {_label(w)}, {_label(y)}"
    for ch, (bound, s) in enumerate(zip(bounds, scales)):
        m, shift = c.multiplier(float(x.scale) * float(s) / float(y.scale), f"output channel {ch} multiplier", tensors)
        c.requant_fits(bound, m, shift, f"output channel {ch}", tensors)


register_check("CONV_2D", "DEPTHWISE_CONV_2D")(_check_conv)


@register_check("FULLY_CONNECTED")
def _check_fully_connected(c: OpCheck) -> None:
    c.arity((2, 3))
    x, w, y = c.input(0, "input"), c.input(1, "weights", const=True), c.output()
    c.rank("input", 1, w, (2,))
    if c.op.options.get("weights_format", 0) not in (0, "DEFAULT"):
        raise c.fail(f"option weights_format is {c.op.options.get('weights_format')!r}; expected 0 (DEFAULT)")
    if c.op.options.get("quant_spec") is not None:
        raise c.fail("option quant_spec is set; expected none (per-tensor or per-channel int8 weights only)")
    _quantized_bias_type(c)
    units, depth = w.shape
    (_int4_weights if w.dtype == "int4" else _per_channel_weights)(c, 1, w, units, 0)
    if depth < 1 or x.num_elements % depth:
        raise c.fail_tensor("input", 0, x, "shape", f"{list(x.shape)} holds {x.num_elements} values; expected a "
                            f"multiple of the weights' depth {depth}")
    batches = x.num_elements // depth
    if c.op.options.get("keep_num_dims"):
        if not x.shape or x.shape[-1] != depth:
            raise c.fail_tensor("input", 0, x, "shape", f"{list(x.shape)}; keep_num_dims expects a last "
                                f"dimension of {depth}")
        c.expect_output_shape(tuple(x.shape[:-1]) + (units,), "keep_num_dims: input dims, last one = units")
    else:
        c.expect_output_shape((batches, units), f"[{x.num_elements} / depth {depth}, units {units}]")
    bias = _bias_values(c, 2, units)
    if bias is not None and len(w.scales) == 1:
        # LiteRT's GetQuantizedConvolutionMultipler (per-tensor weights): the bias must be quantized
        # with (about) input scale * weight scale, or Prepare refuses the op.
        b = c.input(2, "bias", const=True)
        drift = abs(float(x.scale) * float(w.scale) - float(b.scale)) / float(y.scale)
        if not drift <= 0.02:
            raise c.fail_tensor("input", 2, b, "quantization.scale", f"{b.scale!r}; expected about input scale * "
                                f"weight scale = {float(x.scale) * float(w.scale)!r} (|difference| / output scale "
                                f"= {drift:.3g}, at most 0.02)")
    _activation_clamp(c, y)
    _accumulator_bounds(c, w, x, bias, 0)
    for k, s in enumerate(w.scales):
        real = float(x.scale) * float(s) / float(y.scale)
        if not math.isfinite(real):
            raise c.fail(f"rescale[{k}] from the scales of {_label(x)}, {_label(w)}, {_label(y)} is {real!r}; "
                         "expected a finite value")


def broadcast_shape(a, b) -> tuple[int, ...] | None:
    """numpy/TFLite broadcasting of two shapes; None if they do not broadcast."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    out = []
    for da, db in zip(a, b):
        if da != db and 1 not in (da, db):
            return None
        out.append(db if da == 1 else da)
    return tuple(out)


@register_check("ADD", "MUL")
def _check_binary(c: OpCheck) -> None:
    c.arity((2, 2))
    # Either operand may be a constant (a hard-sigmoid's + 3 and * 1/6), not both.
    a, b, y = c.input(0, "input1", const=None), c.input(1, "input2", const=None), c.output()
    if a.is_const and b.is_const:
        raise c.fail("has two constant operands; expected at least one activation (fold the constant)")
    for slot, t in enumerate((a, b)):
        c.rank("input", slot, t, range(0, 5))
        c.dtype("input", slot, t, (y.dtype,))
        if t.is_const and t.dtype == "int8" and len(t.scales) != 1:
            raise c.fail_tensor("input", slot, t, "quantization", f"{len(t.scales)} scales; expected one "
                                "(a per-tensor quantized int8 constant)")
        if t.is_const and t.dtype == "float32" and not np.all(np.isfinite(t.array())):
            raise c.fail_tensor("input", slot, t, "values", "hold inf or NaN; expected finite float32 constants")
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        raise c.fail_tensor("input", 1, b, "shape", f"{list(b.shape)} does not broadcast with {list(a.shape)}")
    c.expect_output_shape(shape, f"broadcast of {list(a.shape)} and {list(b.shape)}")
    if y.dtype == "float32":   # float reference arithmetic: no quantization to check
        c.activation()
        return
    _activation_clamp(c, y)
    tensors = f"{_label(a)}, {_label(b)}, {_label(y)}"
    if c.op.kind == "ADD":
        twice_max = 2.0 * max(float(np.float32(a.scale)), float(np.float32(b.scale)))
        out_real = twice_max / float(np.float32(1 << 20) * np.float32(y.scale))
        if not (math.isfinite(out_real) and out_real < 1.0):
            raise c.fail_tensor("output", 0, y, "quantization.scale", f"{y.scale!r}; ADD needs 2 * max(input "
                                f"scales) / (2^20 * output scale) < 1, got {out_real!r}")
    else:
        m, shift = c.multiplier(float(a.scale) * float(b.scale) / float(y.scale), "multiplier", tensors)
        c.requant_fits(max_abs_offset(a.zero_point) * max_abs_offset(b.zero_point), m, shift, "product", tensors)


@register_check("MAX_POOL_2D", "AVERAGE_POOL_2D")
def _check_pool(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, (4,))
    padding = c.option_choice("padding", "VALID", PADDINGS)
    k_h, k_w = c.option_int("filter_height", 1, hi=GEOMETRY_MAX), c.option_int("filter_width", 1, hi=GEOMETRY_MAX)
    s_h, s_w = c.option_int("stride_h", 1, hi=GEOMETRY_MAX), c.option_int("stride_w", 1, hi=GEOMETRY_MAX)
    n, in_h, in_w, ch = x.shape
    out_h = _geometry(c, "height", in_h, k_h, s_h, 1, padding)
    out_w = _geometry(c, "width", in_w, k_w, s_w, 1, padding)
    c.expect_output_shape((n, out_h, out_w, ch), f"{padding} padding, {k_h}x{k_w} window, stride {s_h}x{s_w}")
    c.same_quant("output", 0, y, x)
    _activation_clamp(c, y)


@register_check("MEAN")
def _check_mean(c: OpCheck) -> None:
    c.arity((2, 2))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, range(1, 5))
    rank = len(x.shape)
    axes = c.const_ints(1, "axis")
    if not axes:
        raise c.fail(f"input 1 {_label(c.graph.tensors[c.op.inputs[1]])}: axis: empty; expected at least one axis")
    for a in axes:
        if not -rank <= a < rank:
            raise c.fail(f"input 1 {_label(c.graph.tensors[c.op.inputs[1]])}: axis: {a} is out of range; expected "
                         f"an axis in [{-rank}, {rank - 1}] of {list(x.shape)}")
    reduced = {a % rank for a in axes}
    if c.op.options.get("keep_dims"):
        expected = [1 if d in reduced else n for d, n in enumerate(x.shape)]
    else:
        expected = [n for d, n in enumerate(x.shape) if d not in reduced]
    c.expect_output_shape(expected, f"axes {sorted(reduced)} of {list(x.shape)}, "
                          f"keep_dims={bool(c.op.options.get('keep_dims'))}")
    count = math.prod(x.shape[d] for d in reduced)
    tensors = f"{_label(x)}, {_label(y)}"
    m, shift = c.multiplier(float(x.scale) / float(y.scale), "multiplier", tensors)
    m, shift = qm.mean_multiplier_with_count(x.scale, y.scale, count) if m else (0, 0)
    c.requant_fits(count * max_abs_offset(x.zero_point), m, shift, f"sum of {count} values", tensors)


@register_check("PAD", "PADV2")
def _check_pad(c: OpCheck) -> None:
    c.arity((2, 3) if c.op.kind == "PADV2" else (2, 2))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, range(1, 5))
    pads = c.const_ints(1, "paddings", shape=(len(x.shape), 2))
    for i, p in enumerate(pads):
        if p < 0:
            raise c.fail(f"input 1 {_label(c.graph.tensors[c.op.inputs[1]])}: paddings[{i // 2}][{i % 2}] is {p}; "
                         "expected >= 0")
    c.expect_output_shape([d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x.shape)],
                          f"input {list(x.shape)} + paddings {[pads[i:i + 2] for i in range(0, len(pads), 2)]}")
    c.same_quant("output", 0, y, x)
    if c.op.kind == "PADV2":
        v = c.input(2, "constant_values", const=True, optional=True)
        if v is not None:
            c.dtype("input", 2, v, ("int8",))
            if v.num_elements != 1:
                raise c.fail_tensor("input", 2, v, "shape", f"{list(v.shape)}; expected one value")
            if v.scales:
                c.same_quant("input", 2, v, y)


@register_check("CONCATENATION")
def _check_concatenation(c: OpCheck) -> None:
    c.arity((1, 1 << 30))
    xs = [c.input(i, f"input{i}") for i in range(len(c.op.inputs))]
    y = c.output()
    c.rank("output", 0, y, range(1, 5))
    rank = len(y.shape)
    axis = c.option_int("axis", 0, lo=-rank, hi=rank - 1) % rank
    c.option_choice("fused_activation_function", "NONE", ("NONE",))
    for i, t in enumerate(xs):
        c.rank("input", i, t, (rank,))
        if any(t.shape[d] != xs[0].shape[d] for d in range(rank) if d != axis):
            raise c.fail_tensor("input", i, t, "shape", f"{list(t.shape)}; expected the dims of "
                                f"{list(xs[0].shape)} except along axis {axis}")
        c.same_quant("input", i, t, y)
    expected = list(xs[0].shape)
    expected[axis] = sum(t.shape[axis] for t in xs)
    c.expect_output_shape(expected, f"inputs joined along axis {axis}")


def _reshape_target(c: OpCheck, x: Tensor) -> list[int] | None:
    """The shape RESHAPE computes (shape tensor, else new_shape option), -1 resolved; None if neither."""
    if len(c.op.inputs) > 1 and c.op.inputs[1] >= 0:
        t = c.input(1, "shape", const=True)
        if len(t.shape) > 1:
            raise c.fail_tensor("input", 1, t, "shape", f"{list(t.shape)}; expected a 1-D shape tensor")
        target = c.const_ints(1, "shape")
    elif c.op.options.get("new_shape"):
        target = [int(v) for v in c.op.options["new_shape"]]
    else:
        return None
    if sum(d == -1 for d in target) > 1 or any(d < -1 for d in target):
        raise c.fail(f"target shape {target}: expected sizes >= 0 and at most one -1")
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or x.num_elements % known:
            raise c.fail(f"target shape {target} cannot hold {x.num_elements} values")
        target = [x.num_elements // known if d == -1 else d for d in target]
    return target


@register_check("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _check_reshape(c: OpCheck) -> None:
    c.arity((1, 2))
    x, y = c.input(0, "input"), c.output()
    if y.num_elements != x.num_elements:
        raise c.fail_tensor("output", 0, y, "shape", f"{list(y.shape)} holds {y.num_elements} values; the input "
                            f"{list(x.shape)} holds {x.num_elements}")
    if c.op.kind == "RESHAPE":
        target = _reshape_target(c, x)
        if target is not None:
            c.expect_output_shape(target, "the reshape's target shape")
    elif c.op.kind == "SQUEEZE":
        dims = [int(d) for d in c.op.options.get("squeeze_dims", ()) or ()]
        rank = len(x.shape)
        if any(not -rank <= d < rank for d in dims):
            raise c.fail(f"option squeeze_dims is {dims}; expected axes in [{-rank}, {rank - 1}]")
        drop = {d % rank for d in dims} if dims else {d for d, n in enumerate(x.shape) if n == 1}
        c.expect_output_shape([n for d, n in enumerate(x.shape) if d not in drop], f"squeeze of {sorted(drop)}")
    else:
        axes = c.const_ints(1, "axis")
        if len(axes) != 1:
            raise c.fail(f"input 1 {_label(c.graph.tensors[c.op.inputs[1]])}: axis: {axes}; expected one axis")
        axis, rank = axes[0], len(x.shape) + 1
        if not -rank <= axis < rank:
            raise c.fail(f"axis {axis}: expected an axis in [{-rank}, {rank - 1}]")
        expected = list(x.shape)
        expected.insert(axis % rank, 1)
        c.expect_output_shape(expected, f"a 1 inserted at axis {axis % rank}")
    c.same_quant("output", 0, y, x)


@register_check("RESIZE_NEAREST_NEIGHBOR")
def _check_resize_nearest(c: OpCheck) -> None:
    c.arity((2, 2))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, (4,))
    size = c.const_ints(1, "size", shape=(2,))
    if c.graph.tensors[c.op.inputs[1]].dtype != "int32":
        raise c.fail_tensor("input", 1, c.graph.tensors[c.op.inputs[1]], "dtype", "expected int32")
    if min(size) < 1:
        raise c.fail(f"input 1 {_label(c.graph.tensors[c.op.inputs[1]])}: size: {size}; expected sizes >= 1")
    if c.op.options.get("align_corners") and c.op.options.get("half_pixel_centers"):
        raise c.fail("options align_corners and half_pixel_centers are both set; expected at most one")
    c.expect_output_shape((x.shape[0], size[0], size[1], x.shape[3]), f"the size tensor {size}")
    c.same_quant("output", 0, y, x)


@register_check("SOFTMAX")
def _check_softmax(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, range(1, 5))
    c.expect_output_shape(x.shape, "the input's shape")
    beta = c.op.options.get("beta", 1.0)
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise c.fail(f"option beta is {beta!r}; expected a finite value > 0")
    real = float(beta) * float(x.scale) * (1 << 26)
    if not real > 1.0:
        raise c.fail_tensor("input", 0, x, "quantization.scale", f"beta * scale * 2^26 = {real!r}; expected > 1 "
                            "(the int8 softmax input multiplier is a left shift)")


@register_check("L2_NORMALIZATION")
def _check_l2norm(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.rank("input", 0, x, range(1, 5))
    c.expect_output_shape(x.shape, "the input's shape")
    c.option_choice("fused_activation_function", "NONE", ("NONE",))
    if x.dtype == "float32":   # float reference arithmetic: no int32 sum to bound
        return
    depth = x.shape[-1]
    if depth * max_abs_offset(x.zero_point) ** 2 > INT32_MAX:
        raise c.fail_tensor("input", 0, x, "shape", f"last dimension {depth} with zero point {x.zero_point}: the "
                            f"int32 sum of squares overflows; expected at most "
                            f"{INT32_MAX // max_abs_offset(x.zero_point) ** 2} values per row")


@register_check("QUANTIZE", "DEQUANTIZE")
def _check_affine(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    if c.op.kind == "QUANTIZE":
        c.dtype("input", 0, x, ("float32",))
        c.dtype("output", 0, y, ("int8",))
    else:
        c.dtype("input", 0, x, ("int8",))
        c.dtype("output", 0, y, ("float32",))
    c.expect_output_shape(x.shape, "the input's shape")


# ---- int4 weights (TFLite INT4 filters of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) ------
#
# LiteRT runs these ops with int8 activations and INT4 filters (two per byte, element 2i in
# the low nibble), BUILTIN_REF included, as the same values stored as int8. The firmware keeps
# the filter packed (the const array holds the file's bytes) and calls the _s4 kernel the
# registry has for weight dtype "int4"; everything else (multipliers, clamps, the accumulator
# bounds, which see the unpacked values) is the int8 path's.

def int8_or_int4_weight_dtypes(graph: Graph, op: Op, path) -> None:
    """dtype rule of the weighted ops: int8 activations, an int8 or int4 constant filter (input 1),
    int8/int32 other constants (the front end's rule otherwise)."""
    for role, indices in (("input", op.inputs), ("output", op.outputs)):
        for slot, ti in enumerate(indices):
            if ti < 0:
                continue
            t = graph.tensors[ti]
            if not t.is_const:
                ok = t.dtype == "int8"
            elif role == "input" and slot == 1:
                ok = t.dtype in ("int8", "int4")
            else:
                ok = t.dtype in ("int8", "int32")
            if not ok:
                raise FirmwareError(f"{path}: op {op.index} ({op.kind}) {role} {slot} is {_label(t)} of dtype "
                                    f"{t.dtype}; expected int8 activations, an int8 or int4 constant filter, "
                                    "int32 bias")


def _int4_weights(c: OpCheck, slot: int, w: Tensor, channels: int, axis: int) -> None:
    """int4 constant weights: symmetric, one scale or one per output channel along `axis`."""
    c.dtype("input", slot, w, ("int4",))
    if not w.scales:
        raise c.fail_tensor("input", slot, w, "quantization", "missing; expected int4 scales")
    if any(z != 0 for z in w.zero_points):
        raise c.fail_tensor("input", slot, w, "quantization.zero_point", f"{list(w.zero_points)[:4]}...; "
                            "expected 0 (symmetric int4 weights)")
    if len(w.scales) not in (1, channels) or (len(w.scales) > 1 and w.quantized_dimension != axis):
        raise c.fail_tensor("input", slot, w, "quantization.scale", f"{len(w.scales)} scales along dimension "
                            f"{w.quantized_dimension}; expected 1 or {channels} along dimension {axis}")
    if w.data is None or len(w.data) < w.nbytes:
        raise c.fail_tensor("input", slot, w, "buffer", f"{0 if w.data is None else len(w.data)} bytes; expected "
                            f"{w.nbytes} (two int4 values per byte)")


def filter_values(w: Tensor) -> np.ndarray:
    """The filter's const array: int8 values, or an int4 filter's packed bytes as stored."""
    if w.dtype == "int4":
        return np.frombuffer(w.data, dtype=np.int8)[:w.nbytes].copy()
    return w.array().reshape(-1)


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
    arrays = [CArray(f"{prefix}_filter", "int8_t", filter_values(w))]
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


@register_lowering("CONV_2D", check_dtypes=int8_or_int4_weight_dtypes)
def lower_conv_2d(graph, op, prefix):
    return _conv_common(graph, op, prefix, depthwise=False)


@register_lowering("DEPTHWISE_CONV_2D", check_dtypes=int8_or_int4_weight_dtypes)
def lower_depthwise_conv_2d(graph, op, prefix):
    layer = _conv_common(graph, op, prefix, depthwise=True)
    # A 1x1 depthwise with a rescale of exactly 1.0 (an LCE binarizer's threshold) runs as an
    # add-and-clamp (ereid_depthwise_conv_1x1_unit_s8, same arguments, same bytes).
    arrays = {a.name: a.values for a in layer.arrays}
    values = {a.name: a.value for a in layer.call.args if isinstance(a, StructRef)}
    if graph.tensors[op.inputs[1]].dtype == "int8" and kreg.dw_conv_1x1_unit_applies(
            values[f"{prefix}_params"], values[f"{prefix}_in_dims"], values[f"{prefix}_filter_dims"],
            values[f"{prefix}_out_dims"], arrays[f"{prefix}_mult"], arrays[f"{prefix}_shift"],
            arrays.get(f"{prefix}_bias")):
        layer.call = kreg.DEPTHWISE_CONV_1X1_UNIT_S8.call(layer.call.args)
    return layer


@register_lowering("FULLY_CONNECTED", check_dtypes=int8_or_int4_weight_dtypes)
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
    arrays = [CArray(f"{prefix}_filter", "int8_t", filter_values(w))]
    bias_arrays, bias = _bias(graph, op, 2, prefix, units)
    arrays += bias_arrays
    # LiteRT's BUILTIN_REF FULLY_CONNECTED rescales in double and rounds once, half away
    # from zero (not MultiplyByQuantizedMultiplier): one double per weight scale, which the
    # kernel takes as its integer mantissa and exponent and reproduces without doubles.
    scales = qm.fully_connected_scales(x.scale, w.scales if w.is_per_channel else [w.scale], y.scale)
    if len(scales) not in (1, units):
        raise _fail(graph, op, f"{len(scales)} weight scales for {units} units")
    try:
        m_hi, m_lo, m_shift = qm.fully_connected_int_rescale(scales)
    except ValueError as exc:
        raise _fail(graph, op, str(exc)) from None
    for suffix, values in (("scale_mantissa_hi", m_hi), ("scale_mantissa_lo", m_lo), ("scale_shift", m_shift)):
        arrays.append(CArray(f"{prefix}_{suffix}", "int32_t", np.array(values, dtype=np.int32)))
    params = StructRef(f"{prefix}_params", FcParams(input_offset=-x.zero_point, filter_offset=-w.zero_point,
                                                    output_offset=y.zero_point, activation=act))
    quant = StructRef(f"{prefix}_quant", FcIntRescaleParams(mantissa_hi=Address(f"{prefix}_scale_mantissa_hi"),
                                                            mantissa_lo=Address(f"{prefix}_scale_mantissa_lo"),
                                                            shift=Address(f"{prefix}_scale_shift"),
                                                            count=len(scales)))
    in_dims = StructRef(f"{prefix}_in_dims", Dims(batches, 1, 1, depth))
    filter_dims = StructRef(f"{prefix}_filter_dims", Dims(units, 1, 1, depth))
    out_dims = StructRef(f"{prefix}_out_dims", Dims(batches, 1, 1, units))
    call = kernel.call((CONTEXT, params, quant, in_dims, _in(x), filter_dims, ConstRef(f"{prefix}_filter", "const int8_t *"),
                        bias, out_dims, _out(y)), size_args=(params, in_dims, filter_dims, out_dims))
    return Layer(op, (x.index,), (y.index,), call, arrays, macs=batches * units * depth)


# ---- elementwise ---------------------------------------------------------------

FLOAT_RUN_KINDS = ("ADD", "MUL", "RELU", "RELU6", "RELU_N1_TO_1", "L2_NORMALIZATION")


def int8_or_float_dtypes(graph: Graph, op: Op, path) -> None:
    """dtype rule of the ops that also run on float32 (FLOAT_RUN_KINDS): every activation int8 with
    int8/int32 constants (LiteRT's integer kernel), or every activation and constant float32 (its float
    reference arithmetic, reproduced operation for operation)."""
    acts = [graph.tensors[t] for t in op.inputs + op.outputs if t >= 0 and not graph.tensors[t].is_const]
    consts = [graph.tensors[t] for t in op.inputs if t >= 0 and graph.tensors[t].is_const]
    kinds = {t.dtype for t in acts}
    allowed = {"int8": ("int8", "int32"), "float32": ("float32",)}.get(kinds.pop()) if len(kinds) == 1 else None
    bad = next((t for t in consts if allowed is None or t.dtype not in allowed), None)
    if allowed is None or bad is not None:
        found = ", ".join(f"{_label(t)} {t.dtype}" for t in acts + consts)
        raise FirmwareError(f"{path}: op {op.index} ({op.kind}) has tensors {found}; expected every tensor int8 "
                            "(int32 constants allowed) or every tensor float32")


def _operand(graph, op, prefix, slot: int, t: Tensor) -> tuple[list[CArray], object]:
    """An ADD/MUL operand: an activation, or a constant emitted into model.c."""
    c_elem = "float" if t.dtype == "float32" else "int8_t"
    if not t.is_const:
        return [], TensorRef(t.index, f"const {c_elem} *")
    name = f"{prefix}_in{slot + 1}"
    return [CArray(name, c_elem, t.array().reshape(-1))], ConstRef(name, f"const {c_elem} *")


def _binary_inputs(graph, op):
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if a.is_const and b.is_const:
        raise _fail(graph, op, "both operands are constants; expected at least one activation")
    return a, b, y


def _binary_layer(graph, op, prefix, values):
    a, b, y = _binary_inputs(graph, op)
    (arrays_a, ref_a), (arrays_b, ref_b) = _operand(graph, op, prefix, 0, a), _operand(graph, op, prefix, 1, b)
    out = TensorRef(y.index, "float *" if y.dtype == "float32" else "int8_t *")
    act = a if not a.is_const else b
    call = _kernel(op, act, y).call((StructRef(f"{prefix}_params", values), _dims(prefix, "in1", a.shape), ref_a,
                                     _dims(prefix, "in2", b.shape), ref_b, _dims(prefix, "out", y.shape), out))
    reads = tuple(t.index for t in (a, b) if not t.is_const)
    # Element i of the output depends only on element i of a same-shape input: safe in place.
    inplace = next((i for i, ti in enumerate(reads) if graph.tensors[ti].shape == y.shape
                    and graph.tensors[ti].nbytes == y.nbytes and a.index != b.index), None)
    return Layer(op, reads, (y.index,), call, arrays=arrays_a + arrays_b, inplace_input=inplace)


def float_clamp(graph, op, activation: str, standalone: bool = False) -> FloatClampParams:
    """The float32 range LiteRT clamps to: a fused activation (CalculateActivationRange: NONE is
    [lowest, max] of float) or a standalone RELU (no upper bound), RELU6, RELU_N1_TO_1."""
    big = float(np.finfo(np.float32).max)
    ranges = {"NONE": (-big, big), "RELU": (0.0, big), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
    if activation not in ranges:
        raise _fail(graph, op, f"fused activation {activation} is not supported for float32; supported: "
                    f"{', '.join(ranges)}")
    lo, hi = ranges[activation]
    if standalone and activation == "RELU":
        return FloatClampParams(min=0.0, max=0.0, has_max=0)
    return FloatClampParams(min=lo, max=hi, has_max=1)


@register_lowering("ADD", check_dtypes=int8_or_float_dtypes)
def lower_add(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    if y.dtype == "float32":
        return _binary_layer(graph, op, prefix,
                             float_clamp(graph, op, op.options.get("fused_activation_function", "NONE")))
    p = qm.add_params(a.scale, b.scale, y.scale)
    values = AddParams(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=y.zero_point,
                       left_shift=p["left_shift"],
                       input1_quant=PerTensorQuant(p["input1_multiplier"], p["input1_shift"]),
                       input2_quant=PerTensorQuant(p["input2_multiplier"], p["input2_shift"]),
                       output_quant=PerTensorQuant(p["output_multiplier"], p["output_shift"]),
                       activation=_act_range(graph, op, y))
    return _binary_layer(graph, op, prefix, values)


@register_lowering("MUL", check_dtypes=int8_or_float_dtypes)
def lower_mul(graph, op, prefix):
    a, b, y = _binary_inputs(graph, op)
    if y.dtype == "float32":
        return _binary_layer(graph, op, prefix,
                             float_clamp(graph, op, op.options.get("fused_activation_function", "NONE")))
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


@register_lowering("L2_NORMALIZATION", check_dtypes=int8_or_float_dtypes)
def lower_l2norm(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.dtype == "float32":
        depth = x.shape[-1]
        call = _kernel(op, x, y).call((Scalar(x.num_elements // depth), Scalar(depth),
                                       TensorRef(x.index, "const float *"), TensorRef(y.index, "float *")))
        return Layer(op, (x.index,), (y.index,), call)
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


# ---- coverage: TRANSPOSE, the int8 RELU family, PRELU (issue 12 item 0) ----------------------
#
# Float32 ADD / MUL / L2_NORMALIZATION are in their sections above (one IEEE operation per
# reference step, so -ffp-contract=off keeps them exact); float32 RELU / RELU6 / RELU_N1_TO_1 are
# comparisons only. Other float ops are refused by the front end naming why.

# Measured as MAX_OP_VERSIONS above (the newest version BUILTIN_REF, ai-edge-litert 2.3.0, loads).
MAX_OP_VERSIONS.update({"TRANSPOSE": 8, "PRELU": 1, "RELU": 3, "RELU6": 3, "RELU_N1_TO_1": 1})


def transpose_perm4(perm, rank: int) -> tuple[int, int, int, int]:
    """A rank-`rank` permutation as the 4-D NHWC one the kernel takes (leading identity axes)."""
    lead = 4 - rank
    return tuple(range(lead)) + tuple(p + lead for p in perm)


@register_check("TRANSPOSE")
def _check_transpose(c: OpCheck) -> None:
    c.arity((2, 2))
    x, y = c.input(0, "input"), c.output()
    c.dtype("input", 0, x, ("int8",))
    rank = len(x.shape)
    perm = c.const_ints(1, "perm", shape=(rank,))
    if sorted(perm) != list(range(rank)):
        raise c.fail_tensor("input", 1, c.graph.tensors[c.op.inputs[1]], "values",
                            f"{perm}; expected a permutation of 0..{rank - 1} (the input's rank is {rank})")
    c.expect_output_shape([x.shape[p] for p in perm], f"input shape {list(x.shape)} permuted by {perm}")


@register_lowering("TRANSPOSE")
def lower_transpose(graph, op, prefix):
    x, y = _activation_io(graph, op)
    perm = [int(v) for v in _const(graph, op, 1, "perm").array().reshape(-1)]
    p4 = transpose_perm4(perm, len(x.shape))
    call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", TransposeParams(perm=Dims(*p4))),
                                   _dims(prefix, "in", x.shape), _in(x), _dims(prefix, "out", y.shape), _out(y)))
    return Layer(op, (x.index,), (y.index,), call)


RELU_RANGES = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def relu_params(x: Tensor, y: Tensor, kind: str) -> ReluParams:
    """LiteRT's ReluPrepare + QuantizedReluX: QuantizeMultiplier of s_in / s_out divided in float32,
    the range zp + roundf(bound / s_out) (float32 division, half away) clipped to int8."""
    lo, hi = RELU_RANGES[kind]
    m, shift = qm.quantize_multiplier(float(np.float32(x.scale) / np.float32(y.scale)))

    def q(v: float) -> int:
        return y.zero_point + qm.round_half_away(float(np.float32(v) / np.float32(y.scale)))
    act = Activation(max(-128, q(lo)), 127 if hi is None else min(127, q(hi)))
    return ReluParams(input_offset=-x.zero_point, output_offset=y.zero_point, quant=PerTensorQuant(m, shift),
                      activation=act)


@register_check("RELU", "RELU6", "RELU_N1_TO_1")
def _check_relu(c: OpCheck) -> None:
    c.arity((1, 1))
    x, y = c.input(0, "input"), c.output()
    c.expect_output_shape(x.shape, "the input's shape")
    if x.dtype == "float32":
        return
    tensors = f"{_label(x)}, {_label(y)}"
    real = float(np.float32(x.scale) / np.float32(y.scale))
    m, shift = c.multiplier(real, "multiplier", tensors)
    c.requant_fits(max_abs_offset(x.zero_point), m, shift, "rescale", tensors)
    p = relu_params(x, y, c.op.kind)
    if p.activation.min > p.activation.max:
        raise c.fail_tensor("output", 0, y, "quantization", f"{c.op.kind} range [{p.activation.min}, "
                            f"{p.activation.max}] is empty in int8")


def _lower_relu(graph, op, prefix):
    x, y = _activation_io(graph, op)
    if x.dtype == "float32":
        params = float_clamp(graph, op, op.kind, standalone=True)
        call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", params), Scalar(x.num_elements),
                                       TensorRef(x.index, "const float *"), TensorRef(y.index, "float *")))
    else:
        call = _kernel(op, x, y).call((StructRef(f"{prefix}_params", relu_params(x, y, op.kind)),
                                       Scalar(x.num_elements), _in(x), _out(y)))
    # Element i depends only on element i of the same-size input: safe in place.
    return Layer(op, (x.index,), (y.index,), call, inplace_input=0)


for _kind in RELU_RANGES:
    register_lowering(_kind, check_dtypes=int8_or_float_dtypes)(_lower_relu)


def prelu_multipliers(x: Tensor, alpha: Tensor, y: Tensor) -> tuple[float, float]:
    """PreluPrepare's real multipliers, computed in float32 as its C++ does (float operands)."""
    s_in, s_a, s_out = np.float32(x.scale), np.float32(alpha.scale), np.float32(y.scale)
    return float(s_in / s_out), float((s_in * s_a) / s_out)


@register_check("PRELU")
def _check_prelu(c: OpCheck) -> None:
    c.arity((2, 2))
    x, alpha, y = c.input(0, "input"), c.input(1, "alpha", const=True), c.output()
    c.dtype("input", 0, x, ("int8",))
    c.dtype("input", 1, alpha, ("int8",))
    c.rank("input", 1, alpha, range(0, 5))
    if len(alpha.scales) != 1:
        raise c.fail_tensor("input", 1, alpha, "quantization", f"{len(alpha.scales)} scales; expected one "
                            "(LiteRT's PRELU reads a per-tensor alpha scale)")
    shape = broadcast_shape(x.shape, alpha.shape)
    if shape is None:
        raise c.fail_tensor("input", 1, alpha, "shape", f"{list(alpha.shape)} does not broadcast with "
                            f"{list(x.shape)}")
    c.expect_output_shape(shape, f"broadcast of {list(x.shape)} and {list(alpha.shape)}")
    tensors = f"{_label(x)}, {_label(alpha)}, {_label(y)}"
    pos, neg = prelu_multipliers(x, alpha, y)
    m1, s1 = c.multiplier(pos, "multiplier 1", tensors)
    m2, s2 = c.multiplier(neg, "multiplier 2", tensors)
    c.requant_fits(max_abs_offset(x.zero_point), m1, s1, "positive rescale", tensors)
    c.requant_fits(max_abs_offset(x.zero_point) * max_abs_offset(alpha.zero_point), m2, s2, "negative rescale",
                   tensors)


@register_lowering("PRELU")
def lower_prelu(graph, op, prefix):
    x, y = _activation_io(graph, op)
    alpha = _const(graph, op, 1, "alpha")
    pos, neg = prelu_multipliers(x, alpha, y)
    values = PreluParams(input_offset=-x.zero_point, alpha_offset=-alpha.zero_point, output_offset=y.zero_point,
                         positive_quant=PerTensorQuant(*qm.quantize_multiplier(pos)),
                         negative_quant=PerTensorQuant(*qm.quantize_multiplier(neg)))
    name = f"{prefix}_alpha"
    call = _kernel(op, x, y, alpha).call((StructRef(f"{prefix}_params", values), _dims(prefix, "in", x.shape), _in(x),
                                          _dims(prefix, "alpha", alpha.shape), ConstRef(name, "const int8_t *"),
                                          _dims(prefix, "out", y.shape), _out(y)))
    inplace = 0 if x.shape == y.shape else None
    return Layer(op, (x.index,), (y.index,), call, arrays=[CArray(name, "int8_t", alpha.array().reshape(-1))],
                 inplace_input=inplace)

"""The C ABI of firmware/include/ereid_nn_types.h, described once.

Each params struct of the header is a frozen dataclass here, with its fields in the
header's order and each field's C type (`c_type` metadata). From this one description:

* lowerings build typed values (`ConvParams(input_offset=..., stride=Tile(1, 1), ...)`);
* `c_initializer` / `c_declaration` print them as C99 designated initialisers
  (`{.input_offset = 4, .stride = {.h = 1, .w = 1}, ...}`), so a field can never be
  filled by position into the wrong slot;
* `ctypes_struct` builds the ctypes layout the kernel tests call the library with
  (tests/firmware_harness.py); tests/test_firmware_kernels.py compiles the header and
  checks every size, offset and field type against it, so a drift fails.

A kernel call is a `KernelCall`: the C function and its arguments as typed values
(`StructRef`, `TensorRef`, `ConstRef`, `Scalar`, `TensorList`, `CONTEXT`), each with the C
parameter type it passes (`c_type`), checked against ereid_nn.h's prototypes by the tests.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

# ---- field types ----------------------------------------------------------------------

SCALAR_CTYPES = {"int32_t": ctypes.c_int32, "float": ctypes.c_float, "double": ctypes.c_double}
POINTER_CTYPES = {"void *": ctypes.c_void_p, "const int32_t *": ctypes.POINTER(ctypes.c_int32),
                  "const double *": ctypes.POINTER(ctypes.c_double)}

STRUCTS: dict[str, type] = {}      # C typedef name -> dataclass, in the header's order


def c_field(c_type) -> Any:
    """A struct field of C type `c_type`: a scalar or pointer type name, or a struct class."""
    return field(metadata={"c_type": c_type})


def c_struct(c_name: str):
    """Register a dataclass as the mirror of the C typedef `c_name`."""
    def deco(cls):
        cls = dataclass(frozen=True)(cls)
        cls.c_name = c_name
        STRUCTS[c_name] = cls
        return cls
    return deco


@dataclass(frozen=True)
class CField:
    name: str
    c_type: str            # "int32_t", "float", "double", a pointer type, or a struct typedef name

    @property
    def struct(self) -> type | None:
        return STRUCTS.get(self.c_type)


def struct_fields(cls) -> tuple[CField, ...]:
    """The C fields of a struct dataclass (class or instance), in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        t = f.metadata["c_type"]
        out.append(CField(f.name, t.c_name if isinstance(t, type) else t))
    return tuple(out)


@dataclass(frozen=True)
class Address:
    """A pointer field's value: `symbol + offset` (a static array of model.c)."""
    symbol: str
    offset: int = 0

    def c_expr(self) -> str:
        return f"{self.symbol} + {self.offset}" if self.offset else self.symbol


@dataclass(frozen=True)
class EnumConst:
    """An int32_t field holding a named enum constant of the header."""
    name: str
    value: int


# ---- the structs of ereid_nn_types.h, in its order --------------------------------------

@c_struct("ereid_context")
class Context:
    buf: Address | None = c_field("void *")
    size: int = c_field("int32_t")


@c_struct("ereid_dims")
class Dims:
    n: int = c_field("int32_t")
    h: int = c_field("int32_t")
    w: int = c_field("int32_t")
    c: int = c_field("int32_t")

    @classmethod
    def of(cls, shape) -> "Dims":
        """NHWC extended with leading 1s (RuntimeShape::ExtendedShape)."""
        shape = tuple(int(d) for d in shape)
        if len(shape) > 4:
            raise ValueError(f"rank {len(shape)} > 4")
        return cls(*((1,) * (4 - len(shape)) + shape))


@c_struct("ereid_tile")
class Tile:
    h: int = c_field("int32_t")
    w: int = c_field("int32_t")


@c_struct("ereid_activation")
class Activation:
    min: int = c_field("int32_t")
    max: int = c_field("int32_t")


@c_struct("ereid_per_tensor_quant_params")
class PerTensorQuant:
    multiplier: int = c_field("int32_t")
    shift: int = c_field("int32_t")


@c_struct("ereid_per_channel_quant_params")
class PerChannelQuant:
    multiplier: Address | None = c_field("const int32_t *")
    shift: Address | None = c_field("const int32_t *")


@c_struct("ereid_conv_params")
class ConvParams:
    input_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    stride: Tile = c_field(Tile)
    padding: Tile = c_field(Tile)
    dilation: Tile = c_field(Tile)
    activation: Activation = c_field(Activation)


@c_struct("ereid_dw_conv_params")
class DwConvParams:
    input_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    ch_mult: int = c_field("int32_t")
    stride: Tile = c_field(Tile)
    padding: Tile = c_field(Tile)
    dilation: Tile = c_field(Tile)
    activation: Activation = c_field(Activation)


@c_struct("ereid_fc_params")
class FcParams:
    input_offset: int = c_field("int32_t")
    filter_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    activation: Activation = c_field(Activation)


@c_struct("ereid_fc_rescale_params")
class FcRescaleParams:
    scale: Address | None = c_field("const double *")
    count: int = c_field("int32_t")


@c_struct("ereid_fc_int_rescale_params")
class FcIntRescaleParams:
    mantissa_hi: Address | None = c_field("const int32_t *")
    mantissa_lo: Address | None = c_field("const int32_t *")
    shift: Address | None = c_field("const int32_t *")
    count: int = c_field("int32_t")


@c_struct("ereid_pool_params")
class PoolParams:
    stride: Tile = c_field(Tile)
    padding: Tile = c_field(Tile)
    activation: Activation = c_field(Activation)


@c_struct("ereid_add_params")
class AddParams:
    input1_offset: int = c_field("int32_t")
    input2_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    left_shift: int = c_field("int32_t")
    input1_quant: PerTensorQuant = c_field(PerTensorQuant)
    input2_quant: PerTensorQuant = c_field(PerTensorQuant)
    output_quant: PerTensorQuant = c_field(PerTensorQuant)
    activation: Activation = c_field(Activation)


@c_struct("ereid_mul_params")
class MulParams:
    input1_offset: int = c_field("int32_t")
    input2_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    output_quant: PerTensorQuant = c_field(PerTensorQuant)
    activation: Activation = c_field(Activation)


@c_struct("ereid_mean_params")
class MeanParams:
    mode: EnumConst | int = c_field("int32_t")
    axis_mask: int = c_field("int32_t")
    input_zero_point: int = c_field("int32_t")
    output_zero_point: int = c_field("int32_t")
    quant: PerTensorQuant = c_field(PerTensorQuant)
    scale: float = c_field("float")


@c_struct("ereid_softmax_params")
class SoftmaxParams:
    input_multiplier: int = c_field("int32_t")
    input_left_shift: int = c_field("int32_t")
    diff_min: int = c_field("int32_t")


@c_struct("ereid_l2norm_params")
class L2NormParams:
    input_zero_point: int = c_field("int32_t")


@c_struct("ereid_pad_params")
class PadParams:
    before: Dims = c_field(Dims)
    after: Dims = c_field(Dims)
    pad_value: int = c_field("int32_t")


@c_struct("ereid_resize_params")
class ResizeParams:
    align_corners: int = c_field("int32_t")
    half_pixel_centers: int = c_field("int32_t")


@c_struct("ereid_affine_quant_params")
class AffineQuantParams:
    scale: float = c_field("float")
    zero_point: int = c_field("int32_t")


# Enumerations of the header: typedef name -> {constant: value}.
ENUMS: dict[str, dict[str, int]] = {
    "ereid_status": {"EREID_OK": 0, "EREID_ARG_ERROR": -1, "EREID_NO_IMPL_ERROR": -2, "EREID_BUFFER_ERROR": -3},
    "ereid_mean_mode": {"EREID_MEAN_REQUANT": 3},
}
MEAN_REQUANT = EnumConst("EREID_MEAN_REQUANT", ENUMS["ereid_mean_mode"]["EREID_MEAN_REQUANT"])


# ---- the emitter: C99 designated initialisers ----------------------------------------------

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


def c_int(value: int) -> str:
    """An int32 literal (INT32_MIN cannot be written as one: -2147483647 - 1)."""
    v = int(value)
    if not INT32_MIN <= v <= INT32_MAX:
        raise ValueError(f"{value} does not fit int32_t")
    return "(-2147483647 - 1)" if v == INT32_MIN else str(v)


def c_float(value: float) -> str:
    """A C float literal that parses back to the same float32 (9 significant digits suffice)."""
    f = float(np.float32(value))
    if math.isinf(f) or math.isnan(f):
        raise ValueError(f"non-finite float {value}")
    text = f"{f:.9g}"
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def _c_value(f: CField, value) -> str:
    if f.struct is not None:
        if not isinstance(value, f.struct):
            raise TypeError(f"field {f.name}: expected {f.struct.__name__}, got {type(value).__name__}")
        return c_initializer(value)
    if f.c_type in POINTER_CTYPES:
        if value is None:
            return "NULL"
        if not isinstance(value, Address):
            raise TypeError(f"field {f.name}: a pointer takes an Address or None, got {value!r}")
        return value.c_expr()
    if f.c_type == "int32_t":
        if isinstance(value, EnumConst):
            return value.name
        if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"field {f.name}: int32_t takes an int, got {value!r}")
        return c_int(value)
    if f.c_type == "float":
        return c_float(value)
    if f.c_type == "double":
        return float(value).hex()
    raise TypeError(f"field {f.name}: unknown C type {f.c_type}")


def c_initializer(value) -> str:
    """`{.field = value, ...}` for a struct value, nested structs included."""
    parts = [f".{f.name} = {_c_value(f, getattr(value, f.name))}" for f in struct_fields(value)]
    return "{" + ", ".join(parts) + "}"


def c_declaration(name: str, value) -> str:
    """`static const <type> name = {...};`"""
    return f"static const {type(value).c_name} {name} = {c_initializer(value)};"


def c_array_declaration(name: str, values) -> str:
    """`static const <type> name[n] = {{...}, ...};` for a non-empty sequence of one struct type."""
    values = list(values)
    if not values or len({type(v) for v in values}) != 1:
        raise ValueError(f"{name}: an array needs values of one struct type")
    body = ", ".join(c_initializer(v) for v in values)
    return f"static const {type(values[0]).c_name} {name}[{len(values)}] = {{{body}}};"


# ---- ctypes layouts from the same description ---------------------------------------------------

@functools.lru_cache(maxsize=None)
def ctypes_struct(cls) -> type[ctypes.Structure]:
    """A ctypes.Structure with the C layout of struct dataclass `cls` (or its C name)."""
    if isinstance(cls, str):
        cls = STRUCTS[cls]
    fields = []
    for f in struct_fields(cls):
        if f.struct is not None:
            fields.append((f.name, ctypes_struct(f.struct)))
        elif f.c_type in SCALAR_CTYPES:
            fields.append((f.name, SCALAR_CTYPES[f.c_type]))
        else:
            fields.append((f.name, POINTER_CTYPES[f.c_type]))
    return type(cls.c_name, (ctypes.Structure,), {"_fields_": fields})


def to_ctypes(value) -> ctypes.Structure:
    """The ctypes image of a struct value (pointer fields must be None: NULL)."""
    kwargs = {}
    for f in struct_fields(value):
        v = getattr(value, f.name)
        if f.struct is not None:
            kwargs[f.name] = to_ctypes(v)
        elif f.c_type in POINTER_CTYPES:
            if v is not None:
                raise ValueError(f"field {f.name}: only NULL pointers have a host image")
        else:
            kwargs[f.name] = v.value if isinstance(v, EnumConst) else v
    return ctypes_struct(type(value))(**kwargs)


# ---- typed kernel calls ------------------------------------------------------------------------

@dataclass(frozen=True)
class StructRef:
    """`&name`: a `static const` struct of model.c."""
    name: str
    value: Any

    @property
    def c_type(self) -> str:
        return f"const {type(self.value).c_name} *"


@dataclass(frozen=True)
class StructArrayRef:
    """`name`: a `static const` array of structs of model.c."""
    name: str
    values: tuple

    @property
    def c_type(self) -> str:
        return f"const {type(self.values[0]).c_name} *"


@dataclass(frozen=True)
class ConstRef:
    """A constant array of model.c (weights, bias), or NULL when `name` is None."""
    name: str | None
    c_type: str                     # e.g. "const int8_t *", "const int32_t *"


@dataclass(frozen=True)
class TensorRef:
    """An activation tensor: its place (caller's input/output buffer or the arena) is the plan's."""
    tensor: int
    c_type: str = "const int8_t *"  # "const int8_t *", "int8_t *", "const float *", "float *"


@dataclass(frozen=True)
class TensorList:
    """A local `const int8_t *const name[n]` of activation tensors (CONCATENATION's inputs)."""
    name: str
    tensors: tuple[int, ...]
    c_type: str = "const int8_t *const *"


@dataclass(frozen=True)
class Scalar:
    value: int
    c_type: str = "int32_t"


@dataclass(frozen=True)
class ScratchContext:
    """The layer's `ereid_context`: the scratch the plan reserved for it in the arena
    (`{NULL, 0}` when the call requested none)."""
    c_type: str = "const ereid_context *"


CONTEXT = ScratchContext()

Arg = Union[StructRef, StructArrayRef, ConstRef, TensorRef, TensorList, Scalar, ScratchContext]


@dataclass(frozen=True)
class BufferSizeCheck:
    """`function(args) > planned bytes` makes model.c refuse the layer instead of overrunning
    its scratch, should the Python mirror of a get_buffer_size rule drift from the C one."""
    function: str
    args: tuple[StructRef, ...]


@dataclass(frozen=True)
class KernelCall:
    function: str                               # the C kernel (a wrapper or a kernel)
    args: tuple[Arg, ...]                       # in prototype order
    scratch_bytes: int = 0                      # requested from the kernel's get_buffer_size rule
    buffer_size_check: BufferSizeCheck | None = None
    variant: str | None = None                  # what the wrapper dispatches to (its Python mirror)
    sources: tuple[Path, ...] = ()              # C files outside firmware/kernels defining `function`

    @property
    def functions(self) -> tuple[str, ...]:
        """The C functions model.c calls for this layer (selects the kernel sources)."""
        return (self.function,) + ((self.buffer_size_check.function,) if self.buffer_size_check else ())

    def declarations(self) -> list[StructRef | StructArrayRef]:
        """The `static const` structs this call needs, in argument order, each once."""
        seen, out = set(), []
        refs = list(self.args) + (list(self.buffer_size_check.args) if self.buffer_size_check else [])
        for a in refs:
            if isinstance(a, (StructRef, StructArrayRef)) and a.name not in seen:
                seen.add(a.name)
                out.append(a)
        return out


def declare(ref: StructRef | StructArrayRef) -> str:
    if isinstance(ref, StructArrayRef):
        return c_array_declaration(ref.name, ref.values)
    return c_declaration(ref.name, ref.value)


# ---- binary (1-bit) layers: Larq Compute Engine's ops (ereid_nn_types.h, appended there) -----------

@c_struct("ereid_bconv_params")
class BconvParams:
    channels_in: int = c_field("int32_t")
    groups: int = c_field("int32_t")
    stride: Tile = c_field(Tile)
    padding: Tile = c_field(Tile)
    dilation: Tile = c_field(Tile)
    pad_value: int = c_field("int32_t")
    output_type: EnumConst | int = c_field("int32_t")
    clamp_min: int = c_field("int32_t")
    clamp_max: int = c_field("int32_t")
    flush_denormals: int = c_field("int32_t")


@c_struct("ereid_bconv_transform")
class BconvTransform:
    multiplier: float = c_field("float")
    bias: float = c_field("float")


@c_struct("ereid_bmaxpool_params")
class BmaxpoolParams:
    stride: Tile = c_field(Tile)
    padding: Tile = c_field(Tile)


ENUMS["ereid_bconv_output_type"] = {"EREID_BCONV_OUT_F32": 1, "EREID_BCONV_OUT_S8": 2, "EREID_BCONV_OUT_B1": 3}
BCONV_OUTPUT_TYPES = {dtype: EnumConst(name, ENUMS["ereid_bconv_output_type"][name])
                      for dtype, name in (("float32", "EREID_BCONV_OUT_F32"), ("int8", "EREID_BCONV_OUT_S8"),
                                          ("int32", "EREID_BCONV_OUT_B1"))}


# ---- coverage ops: TRANSPOSE, int8 RELU family and PRELU, float32 clamps (ereid_nn_types.h, appended there) ----

@c_struct("ereid_transpose_params")
class TransposeParams:
    perm: Dims = c_field(Dims)


@c_struct("ereid_relu_params")
class ReluParams:
    input_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    quant: PerTensorQuant = c_field(PerTensorQuant)
    activation: Activation = c_field(Activation)


@c_struct("ereid_prelu_params")
class PreluParams:
    input_offset: int = c_field("int32_t")
    alpha_offset: int = c_field("int32_t")
    output_offset: int = c_field("int32_t")
    positive_quant: PerTensorQuant = c_field(PerTensorQuant)
    negative_quant: PerTensorQuant = c_field(PerTensorQuant)


@c_struct("ereid_float_clamp_params")
class FloatClampParams:
    min: float = c_field("float")
    max: float = c_field("float")
    has_max: int = c_field("int32_t")

"""Which C kernel runs an op: chosen by the op AND its tensor types.

An entry is keyed on (op kind, input dtype, weight dtype, output dtype) and names the
kernel, `ereid_<op>_<s8|s4|b1...>` as in CMSIS-NN. A variant for another weight type
(4-bit, binary) is one more `register_kernel(...)` call beside the int8 one, not an edit
of a lowering.

A CMSIS-NN style wrapper is described with its dispatch: the specialised kernels it
picks, in the order its C code tests them, each with a named predicate that mirrors
that test and the kernel's get_buffer_size rule. `Kernel.get_buffer_size(...)` then
mirrors `<wrapper>_get_buffer_size` in C: a lowering asks it how much scratch to request,
the planner places that scratch in the arena and model.c passes it in the
`ereid_context`; where the C library has the get_buffer_size function, model.c also
calls it and refuses the layer if it wants more than was planned.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgereid.errors import FirmwareError
from edgereid.firmware.kernel_abi import CONTEXT, BufferSizeCheck, ConvParams, Dims, DwConvParams, KernelCall, StructRef


def no_scratch(*_args) -> int:
    """get_buffer_size of a kernel that reads its input in place."""
    return 0


@dataclass(frozen=True)
class Variant:
    """One specialised kernel a wrapper may call: `when` is its named dispatch predicate
    (None: the fallback), `buffer_size` its get_buffer_size rule; both take the wrapper's
    get_buffer_size arguments (typed values)."""
    kernel: str
    when: Callable[..., bool] | None = None
    buffer_size: Callable[..., int] = no_scratch

    @property
    def predicate(self) -> str:
        return self.when.__name__ if self.when is not None else "otherwise"


@dataclass(frozen=True)
class Kernel:
    name: str                                    # the C entry point model.c calls
    variants: tuple[Variant, ...] = ()           # a wrapper's dispatch, in test order, fallback last
    buffer_size: Callable[..., int] = no_scratch  # a plain kernel's get_buffer_size rule
    buffer_size_function: str | None = None      # the C <name>_get_buffer_size, if the library has one
    sources: tuple[Path, ...] = ()               # C files outside firmware/kernels (extension kernels)

    def pick(self, *size_args) -> Variant | None:
        """The variant the wrapper dispatches to for these arguments (None for a plain kernel)."""
        for v in self.variants:
            if v.when is None or v.when(*size_args):
                return v
        if self.variants:
            raise FirmwareError(f"{self.name}: no variant applies and none is the fallback")
        return None

    def get_buffer_size(self, *size_args) -> int:
        """Scratch bytes the kernel needs for these arguments (mirror of the C rule)."""
        v = self.pick(*size_args)
        return int((v.buffer_size if v is not None else self.buffer_size)(*size_args))

    def call(self, args: tuple, size_args: tuple[StructRef, ...] = ()) -> KernelCall:
        """The typed call of this kernel, with the scratch its get_buffer_size rule asks for
        on `size_args` (the structs <name>_get_buffer_size takes, in its order)."""
        values = tuple(a.value for a in size_args)
        if not size_args and (self.variants or self.buffer_size is not no_scratch or self.buffer_size_function):
            raise FirmwareError(f"{self.name}: its dispatch / get_buffer_size rule needs the call's params "
                                "and dims, and the lowering passes none (size_args)")
        variant = self.pick(*values) if size_args else None
        scratch = self.get_buffer_size(*values) if size_args else 0
        if scratch < 0:
            raise FirmwareError(f"{self.name}: negative scratch size {scratch}")
        if scratch and CONTEXT not in args:
            raise FirmwareError(f"{self.name} needs {scratch} scratch bytes but its call takes no ereid_context")
        check = BufferSizeCheck(self.buffer_size_function, tuple(size_args)) if self.buffer_size_function else None
        return KernelCall(self.name, tuple(args), scratch, check, variant.kernel if variant else None,
                          tuple(self.sources))


@dataclass(frozen=True)
class KernelKey:
    op: str
    input: str            # dtype of the (first) activation input
    weight: str | None    # dtype of the constant weights; None for ops without
    output: str

    def __str__(self) -> str:
        w = f", weights {self.weight}" if self.weight else ""
        return f"{self.op} (input {self.input}{w}, output {self.output})"


_KERNELS: dict[KernelKey, Kernel] = {}


def register_kernel(op: str, input: str, weight: str | None, output: str, kernel: Kernel,
                    replace: bool = False) -> Kernel:
    key = KernelKey(op, input, weight, output)
    if key in _KERNELS and not replace and _KERNELS[key] != kernel:
        raise FirmwareError(f"a kernel for {key} is already registered ({_KERNELS[key].name}); "
                            "pass replace=True to override it")
    _KERNELS[key] = kernel
    return kernel


def unregister_kernel(op: str, input: str, weight: str | None, output: str) -> None:
    _KERNELS.pop(KernelKey(op, input, weight, output), None)


def registered_kernels() -> dict[KernelKey, Kernel]:
    return dict(_KERNELS)


def select_kernel(op: str, input: str, weight: str | None, output: str) -> Kernel:
    key = KernelKey(op, input, weight, output)
    kernel = _KERNELS.get(key)
    if kernel is None:
        have = sorted(str(k) for k in _KERNELS if k.op == op)
        raise FirmwareError(f"no kernel for {key}; registered for {op}: {', '.join(have) or 'none'}")
    return kernel


# ---- the int8 wrappers' dispatch predicates: Python mirrors of the C predicates of the same
# name (ereid_<name>, firmware/kernels/support/ereid_nn_support.h) the wrappers test ----------

def conv_1x1_applies(p: ConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> bool:
    """ereid_convolve_wrapper_s8 -> ereid_convolve_1x1_s8: 1x1 filter, no padding, strides in range."""
    return (filter_dims.h == 1 and filter_dims.w == 1 and p.padding.h == 0 and p.padding.w == 0
            and (output_dims.h - 1) * p.stride.h < input_dims.h and (output_dims.w - 1) * p.stride.w < input_dims.w)


def conv_3x3_applies(p: ConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> bool:
    """ereid_convolve_wrapper_s8 -> ereid_convolve_3x3_s8: 3x3 filter, dilation 1."""
    return filter_dims.h == 3 and filter_dims.w == 3 and p.dilation.h == 1 and p.dilation.w == 1


def dw_conv_3x3_applies(p: DwConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> bool:
    """ereid_depthwise_conv_wrapper_s8 -> ereid_depthwise_conv_3x3_s8: ch_mult 1, 3x3, dilation 1."""
    return (p.ch_mult == 1 and filter_dims.h == 3 and filter_dims.w == 3
            and p.dilation.h == 1 and p.dilation.w == 1)


def conv_im2col_buffer_size(p: ConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> int:
    """Scratch of every CONV_2D int8 variant: the im2col columns
    (ereid_conv_im2col_scratch_bytes, firmware/kernels/support/ereid_conv_im2col_s8.h):
    int16 columns of two pixels + an int8 gather column (K rounded up to 4), 6 int32 of
    requantization parameters and bias per output channel (the Helium path's blocks of 4
    channels), + 96 (alignment, a last partial block); 0 when that does not fit int32."""
    k4 = (filter_dims.h * filter_dims.w * filter_dims.c + 3) // 4 * 4
    size = 5 * k4 + 24 * output_dims.c + 96
    return 0 if size > 2**31 - 1 else size


CONVOLVE_WRAPPER_S8 = Kernel(
    "ereid_convolve_wrapper_s8",
    variants=(Variant("ereid_convolve_1x1_s8", conv_1x1_applies, conv_im2col_buffer_size),
              Variant("ereid_convolve_3x3_s8", conv_3x3_applies, conv_im2col_buffer_size),
              Variant("ereid_convolve_s8", None, conv_im2col_buffer_size)),
    buffer_size_function="ereid_convolve_wrapper_s8_get_buffer_size")

DEPTHWISE_CONV_WRAPPER_S8 = Kernel(
    "ereid_depthwise_conv_wrapper_s8",
    variants=(Variant("ereid_depthwise_conv_3x3_s8", dw_conv_3x3_applies),
              Variant("ereid_depthwise_conv_s8")))

register_kernel("CONV_2D", "int8", "int8", "int8", CONVOLVE_WRAPPER_S8)
register_kernel("DEPTHWISE_CONV_2D", "int8", "int8", "int8", DEPTHWISE_CONV_WRAPPER_S8)


def dw_conv_1x1_unit_applies(p: DwConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims,
                             multipliers, shifts, bias) -> bool:
    """ereid_depthwise_conv_1x1_unit_s8 runs its own loop (else it calls ereid_depthwise_conv_wrapper_s8):
    mirror of ereid_dw_conv_1x1_unit_applies (ereid_glue_dispatch.h). A 1x1 depthwise whose rescale is
    exactly 1.0 (the LCE exporter's binarizer threshold), |bias| <= 2^29, |input offset| <= 256."""
    return (p.ch_mult == 1 and filter_dims.h == 1 and filter_dims.w == 1 and p.stride.h == 1 and p.stride.w == 1
            and p.padding.h == 0 and p.padding.w == 0 and output_dims.h == input_dims.h
            and output_dims.w == input_dims.w and abs(p.input_offset) <= 256
            and all(int(m) == 1 << 30 for m in multipliers) and all(int(s) == 1 for s in shifts)
            and (bias is None or all(abs(int(b)) <= 1 << 29 for b in bias)))


DEPTHWISE_CONV_1X1_UNIT_S8 = Kernel("ereid_depthwise_conv_1x1_unit_s8")
# LiteRT's BUILTIN_REF FULLY_CONNECTED rescales in double (firmware/README.md, Conventions); the
# kernel reproduces that rounding in integers (ereid_fc_rescale.h), no double on the target.
register_kernel("FULLY_CONNECTED", "int8", "int8", "int8", Kernel("ereid_fully_connected_rescale_int_s8"))
# ADD and PRELU: wrappers taking the element-wise / per-channel kernels where the shapes allow
# (EREID_ADD_ELEMENTWISE_APPLIES, EREID_PRELU_CHANNEL_APPLIES in ereid_glue_dispatch.h), the
# broadcasting reference kernels (ereid_add_s8, ereid_prelu_s8) otherwise.
for _op, _name in (("ADD", "ereid_add_wrapper_s8"), ("MUL", "ereid_mul_s8"), ("MAX_POOL_2D", "ereid_max_pool_s8"),
                   ("AVERAGE_POOL_2D", "ereid_avg_pool_s8"), ("MEAN", "ereid_mean_s8"), ("PAD", "ereid_pad_s8"),
                   ("PADV2", "ereid_pad_s8"), ("CONCATENATION", "ereid_concatenation_s8"),
                   ("RESIZE_NEAREST_NEIGHBOR", "ereid_resize_nearest_s8"), ("SOFTMAX", "ereid_softmax_s8"),
                   ("L2_NORMALIZATION", "ereid_l2_normalization_s8"), ("RESHAPE", "ereid_reshape_s8"),
                   ("SQUEEZE", "ereid_reshape_s8"), ("EXPAND_DIMS", "ereid_reshape_s8")):
    register_kernel(_op, "int8", None, "int8", Kernel(_name))
register_kernel("QUANTIZE", "float32", None, "int8", Kernel("ereid_quantize_f32_s8"))
register_kernel("DEQUANTIZE", "int8", None, "float32", Kernel("ereid_dequantize_s8_f32"))
# Coverage ops (issue 12 item 0): TRANSPOSE, the int8 RELU family and PRELU, float32 ops at the graph's ends.
for _op, _name in (("TRANSPOSE", "ereid_transpose_s8"), ("RELU", "ereid_relu_s8"), ("RELU6", "ereid_relu_s8"),
                   ("RELU_N1_TO_1", "ereid_relu_s8")):
    register_kernel(_op, "int8", None, "int8", Kernel(_name))
register_kernel("PRELU", "int8", "int8", "int8", Kernel("ereid_prelu_wrapper_s8"))
for _op, _name in (("RELU", "ereid_relu_f32"), ("RELU6", "ereid_relu_f32"), ("RELU_N1_TO_1", "ereid_relu_f32"),
                   ("ADD", "ereid_add_f32"), ("MUL", "ereid_mul_f32"),
                   ("L2_NORMALIZATION", "ereid_l2_normalization_f32")):
    register_kernel(_op, "float32", None, "float32", Kernel(_name))


# ---- binary (1-bit) kernels: Larq Compute Engine's ops on bitpacked int32 tensors ----------------
# Python mirrors of EREID_BCONV_1X1_APPLIES / EREID_BCONV_3X3_APPLIES
# (firmware/kernels/binary/ereid_nn_binary.h), tested in that order by ereid_bconv2d_wrapper_b1.

def bconv_1x1_applies(p, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> bool:
    """ereid_bconv2d_wrapper_b1 -> ereid_bconv2d_1x1_b1: 1x1 filter, groups 1, no padding."""
    return filter_dims.h == 1 and filter_dims.w == 1 and p.groups == 1 and p.padding.h == 0 and p.padding.w == 0


def bconv_3x3_applies(p, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> bool:
    """ereid_bconv2d_wrapper_b1 -> ereid_bconv2d_3x3_b1: 3x3 filter, dilation 1, groups 1."""
    return (filter_dims.h == 3 and filter_dims.w == 3 and p.dilation.h == 1 and p.dilation.w == 1
            and p.groups == 1)


BCONV2D_WRAPPER_B1 = Kernel(
    "ereid_bconv2d_wrapper_b1",
    variants=(Variant("ereid_bconv2d_1x1_b1", bconv_1x1_applies),
              Variant("ereid_bconv2d_3x3_b1", bconv_3x3_applies),
              Variant("ereid_bconv2d_b1")),
    buffer_size_function="ereid_bconv2d_wrapper_b1_get_buffer_size")

# Bitpacked tensors are int32; LceBconv2d's filter is int32 (packed OHWI).
for _out in ("float32", "int8", "int32"):
    register_kernel("CUSTOM:LceBconv2d", "int32", "int32", _out, BCONV2D_WRAPPER_B1)
register_kernel("CUSTOM:LceQuantize", "float32", None, "int32", Kernel("ereid_bitpack_f32_b1"))
register_kernel("CUSTOM:LceQuantize", "int8", None, "int32", Kernel("ereid_bitpack_s8_b1"))
register_kernel("CUSTOM:LceDequantize", "int32", None, "float32", Kernel("ereid_unpack_b1_f32"))
register_kernel("CUSTOM:LceDequantize", "int32", None, "int8", Kernel("ereid_unpack_b1_s8"))
register_kernel("CUSTOM:LceBMaxPool2d", "int32", None, "int32", Kernel("ereid_bmaxpool2d_b1"))


# ---- int4 weights (_s4): int8 activations, filters packed two per byte (TFLite INT4) ----------
# The s4 wrappers test the same C predicates as the int8 ones (EREID_CONV_1X1_APPLIES,
# EREID_CONV_3X3_APPLIES, EREID_DW_CONV_3X3_APPLIES), so they share the Python mirrors.

def conv_s4_im2col_buffer_size(p: ConvParams, input_dims: Dims, filter_dims: Dims, output_dims: Dims) -> int:
    """Scratch of every CONV_2D int4 variant (ereid_conv_im2col_s4_scratch_bytes,
    firmware/kernels/support/ereid_conv_im2col_s4.h), the larger of the DSP path's (int16 columns
    of two pixels + an int8 gather column, K rounded up to 8, 16 bytes per output channel of
    requantization records, + 4 for alignment) and the Helium path's (ereid_conv_mve_s4.h: split
    columns of two pixels + a gather column, K rounded up to 32, a 96-byte block per 4 output
    channels, + 15 for alignment); 0 for an odd K (the paths need every channel's packed weights
    to start on a byte) or K > 65535 (16x sums exact in int32)."""
    k = filter_dims.h * filter_dims.w * filter_dims.c
    if k % 2 or k > 65535:
        return 0
    dsp = 5 * ((k + 7) // 8 * 8) + 16 * output_dims.c + 4
    mve = 15 + 3 * ((k + 31) // 32 * 32) + 96 * ((output_dims.c + 3) // 4)
    size = max(dsp, mve)
    return 0 if size > 2**31 - 1 else size


CONVOLVE_WRAPPER_S4 = Kernel(
    "ereid_convolve_wrapper_s4",
    variants=(Variant("ereid_convolve_1x1_s4", conv_1x1_applies, conv_s4_im2col_buffer_size),
              Variant("ereid_convolve_3x3_s4", conv_3x3_applies, conv_s4_im2col_buffer_size),
              Variant("ereid_convolve_s4", None, conv_s4_im2col_buffer_size)),
    buffer_size_function="ereid_convolve_wrapper_s4_get_buffer_size")

DEPTHWISE_CONV_WRAPPER_S4 = Kernel(
    "ereid_depthwise_conv_wrapper_s4",
    variants=(Variant("ereid_depthwise_conv_3x3_s4", dw_conv_3x3_applies),
              Variant("ereid_depthwise_conv_s4")))

register_kernel("CONV_2D", "int8", "int4", "int8", CONVOLVE_WRAPPER_S4)
register_kernel("DEPTHWISE_CONV_2D", "int8", "int4", "int8", DEPTHWISE_CONV_WRAPPER_S4)
# Same (integer) rescale and parameters as the int8 FULLY_CONNECTED (ereid_fully_connected_rescale_int_s8).
register_kernel("FULLY_CONNECTED", "int8", "int4", "int8", Kernel("ereid_fully_connected_s4"))

"""Run one edgereid kernel through ctypes on the parameters TFLite's Prepare() would derive.

Used by tests/test_firmware_kernels.py to compare the C kernels against LiteRT's
BUILTIN_REF byte for byte. The parameter derivations here are written from TFLite's
sources (quantization_util.cc, kernel_util.cc, add.cc, mul.cc, reduce.cc,
activations.cc, padding.h) independently of edgereid.firmware, so the test checks
the kernels, not a shared helper; only the struct layouts come from the firmware
compiler's description of the header (edgereid.firmware.kernel_abi), checked there.
"""
from __future__ import annotations

import ctypes as C
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgereid.firmware import kernel_abi as abi

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"

# The C test builds: include paths, warnings as errors, sanitizers, and the Cortex-M targets
# the kernels must compile for warning-free.
INCLUDES = [f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'kernels' / 'support'}"]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]
ARM_TARGETS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
    "cortex-m55": ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],  # no DSP: portable path
}


def need_tool(tool: str):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (tools/setup.sh installs it)")


def run_checked(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}\n{res.stdout}\n{res.stderr}"
    return res


def kernel_sources() -> list[Path]:
    return sorted((FIRMWARE / "kernels").rglob("*.c"))


def build_shared(out_dir: Path, extra_flags=()) -> Path:
    """The kernel library as a host shared object (gcc, C99, no sanitizers)."""
    lib = out_dir / "libereid_nn.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", *extra_flags,
           f"-I{FIRMWARE / 'include'}", f"-I{FIRMWARE / 'kernels' / 'support'}",
           *map(str, kernel_sources()), "-o", str(lib), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return lib


# ---- ctypes layouts of firmware/include/ereid_nn_types.h -------------------
# Built from the one description of the header (edgereid/firmware/kernel_abi.py), which
# test_firmware_kernels.py checks against the compiled header; positional construction
# follows the header's field order.

Dims = abi.ctypes_struct(abi.Dims)
Tile = abi.ctypes_struct(abi.Tile)
Activation = abi.ctypes_struct(abi.Activation)
Context = abi.ctypes_struct(abi.Context)
PerTensorQuant = abi.ctypes_struct(abi.PerTensorQuant)
PerChannelQuant = abi.ctypes_struct(abi.PerChannelQuant)
ConvParams = abi.ctypes_struct(abi.ConvParams)
DwConvParams = abi.ctypes_struct(abi.DwConvParams)
FcRescaleParams = abi.ctypes_struct(abi.FcRescaleParams)
FcIntRescaleParams = abi.ctypes_struct(abi.FcIntRescaleParams)
FcParams = abi.ctypes_struct(abi.FcParams)
PoolParams = abi.ctypes_struct(abi.PoolParams)
AddParams = abi.ctypes_struct(abi.AddParams)
MulParams = abi.ctypes_struct(abi.MulParams)
MeanParams = abi.ctypes_struct(abi.MeanParams)
SoftmaxParams = abi.ctypes_struct(abi.SoftmaxParams)
L2NormParams = abi.ctypes_struct(abi.L2NormParams)
PadParams = abi.ctypes_struct(abi.PadParams)
ResizeParams = abi.ctypes_struct(abi.ResizeParams)
AffineQuantParams = abi.ctypes_struct(abi.AffineQuantParams)


# ---- TFLite's Prepare-time arithmetic ----------------------------------------

def _round_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(m: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double rounding build)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = _round_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def activation_range(act: str, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (f / scale in float32)."""
    def q(f):
        return zp + _round_away(float(np.float32(f) / np.float32(scale)))
    if act == "RELU":
        return max(-128, q(0.0)), 127
    if act == "RELU6":
        return max(-128, q(0.0)), min(127, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(-128, q(-1.0)), min(127, q(1.0))
    return -128, 127


def padding_before(in_size, k, stride, dilation, out_size_):
    eff = (k - 1) * dilation + 1
    return max(0, ((out_size_ - 1) * stride + eff - in_size) // 2)


def dims4(shape) -> Dims:
    s = [1] * (4 - len(shape)) + [int(d) for d in shape]
    return Dims(*s)


def _i32(values):
    arr = (C.c_int32 * len(values))(*[int(v) for v in values])
    return arr


def _ptr8(a: np.ndarray):
    return a.ctypes.data_as(C.POINTER(C.c_int8))


def _ptr32(a: np.ndarray):
    return a.ctypes.data_as(C.POINTER(C.c_int32))


def _pair(v, default):
    if v is None:
        return list(default)
    if isinstance(v, int):
        return [v, v]
    return [int(v[0]), int(v[1])]


class KernelRunner:
    """Calls the kernel for a single-op spec given the interpreter that ran it."""

    def __init__(self, lib_path: Path):
        self.lib = C.CDLL(str(lib_path))

    def run(self, spec: dict, interp, inputs: list[np.ndarray]) -> np.ndarray:
        op = spec["ops"][0]
        details = {d["name"]: d for d in interp.get_tensor_details()}
        name = op.get("name", "t0")
        y = details[name]
        in_names = op.get("inputs") or [spec["inputs"][0].get("name", "input0")]
        xs = [details[n] for n in in_names]

        def q(d):
            qp = d["quantization_parameters"]
            return float(qp["scales"][0]), int(qp["zero_points"][0])

        y_scale, y_zp = q(y)
        out = np.zeros(y["shape"], dtype=np.int8)
        x = np.ascontiguousarray(inputs[0])
        x_scale, x_zp = q(xs[0])
        kind = op["op"]
        act = activation_range(op.get("activation", "NONE"), y_scale, y_zp)
        ctx = Context(None, 0)
        lib = self.lib

        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w_d, b_d = details[f"{name}_w"], details[f"{name}_b"]
            w = np.ascontiguousarray(interp.get_tensor(w_d["index"]))
            bias = np.ascontiguousarray(interp.get_tensor(b_d["index"]))
            w_scales = w_d["quantization_parameters"]["scales"]
            mults, shifts = zip(*[quantize_multiplier(float(x_scale) * float(s) / float(y_scale)) for s in w_scales])
            qp = PerChannelQuant(_i32(mults), _i32(shifts))
            kh, kw = _pair(op.get("kernel"), (3, 3))
            sh, sw = _pair(op.get("stride"), (1, 1))
            dh, dw = _pair(op.get("dilation"), (1, 1))
            _, ih, iw, _ = x.shape
            _, oh, ow, _ = out.shape
            ph, pw = padding_before(ih, kh, sh, dh, oh), padding_before(iw, kw, sw, dw, ow)
            if op.get("padding", "SAME") == "VALID":
                ph = pw = 0
            fd = dims4(w.shape)
            if kind == "CONV_2D":
                p = ConvParams(-x_zp, y_zp, Tile(sh, sw), Tile(ph, pw), Tile(dh, dw), Activation(*act))
                st = lib.ereid_convolve_wrapper_s8(C.byref(ctx), C.byref(p), C.byref(qp), C.byref(dims4(x.shape)),
                                                   _ptr8(x), C.byref(fd), _ptr8(w), _ptr32(bias),
                                                   C.byref(dims4(out.shape)), _ptr8(out))
            else:
                p = DwConvParams(-x_zp, y_zp, int(op.get("depth_multiplier", 1)), Tile(sh, sw), Tile(ph, pw),
                                 Tile(dh, dw), Activation(*act))
                st = lib.ereid_depthwise_conv_wrapper_s8(C.byref(ctx), C.byref(p), C.byref(qp),
                                                         C.byref(dims4(x.shape)), _ptr8(x), C.byref(fd), _ptr8(w),
                                                         _ptr32(bias), C.byref(dims4(out.shape)), _ptr8(out))
        elif kind == "FULLY_CONNECTED":
            w_d, b_d = details[f"{name}_w"], details[f"{name}_b"]
            w = np.ascontiguousarray(interp.get_tensor(w_d["index"]))
            bias = np.ascontiguousarray(interp.get_tensor(b_d["index"]))
            units, depth = w.shape
            batches = x.size // depth
            p = FcParams(-x_zp, 0, y_zp, Activation(*act))
            idims, fdims, odims = Dims(batches, 1, 1, depth), Dims(units, 1, 1, depth), Dims(batches, 1, 1, units)
            w_scales = w_d["quantization_parameters"]["scales"]
            # LiteRT's reference_integer_ops::FullyConnected[PerChannel](..., input_scale,
            # output_scale, filter_scale): round(double(acc) * (double(s_in) * double(s_w)
            # / double(s_out))), one double per weight scale.
            doubles = [float(x_scale) * float(s) / float(y_scale) for s in w_scales]
            dscales = (C.c_double * len(w_scales))(*doubles)
            qp = FcRescaleParams(dscales, len(w_scales))
            fn = lib.ereid_fully_connected_rescale_s8
            st = fn(C.byref(ctx), C.byref(p), C.byref(qp), C.byref(idims), _ptr8(x), C.byref(fdims), _ptr8(w),
                    _ptr32(bias), C.byref(odims), _ptr8(out))
            # The integer-only kernel generated firmware calls, each double split here with
            # math.frexp into scale = mantissa * 2^-shift (mantissa of 53 bits): same bytes.
            split = [(int(f * (1 << 53)), 53 - e) for f, e in map(math.frexp, doubles)]
            arr = [(C.c_int32 * len(split))(*vals) for vals in ([m >> 31 for m, _ in split],
                                                              [m & 0x7FFFFFFF for m, _ in split],
                                                              [sh for _, sh in split])]
            out_int = np.zeros_like(out)
            st_int = lib.ereid_fully_connected_rescale_int_s8(
                C.byref(ctx), C.byref(p), C.byref(FcIntRescaleParams(*arr, len(split))), C.byref(idims), _ptr8(x),
                C.byref(fdims), _ptr8(w), _ptr32(bias), C.byref(odims), _ptr8(out_int))
            if st_int != st or not np.array_equal(out_int, out):
                raise AssertionError(f"{name}: ereid_fully_connected_rescale_int_s8 differs from the double kernel")
        elif kind in ("ADD", "MUL"):
            x2 = np.ascontiguousarray(inputs[1])
            s2, zp2 = q(xs[1])
            if kind == "ADD":
                left_shift = 20
                twice_max = 2.0 * float(max(np.float32(x_scale), np.float32(s2)))
                m1 = quantize_multiplier(float(x_scale) / twice_max)
                m2 = quantize_multiplier(float(s2) / twice_max)
                mo = quantize_multiplier(twice_max / float(np.float32(1 << left_shift) * np.float32(y_scale)))
                p = AddParams(-x_zp, -zp2, y_zp, left_shift, PerTensorQuant(*m1), PerTensorQuant(*m2),
                              PerTensorQuant(*mo), Activation(*act))
                fn = lib.ereid_add_s8
            else:
                mo = quantize_multiplier(float(x_scale) * float(s2) / float(y_scale))
                p = MulParams(-x_zp, -zp2, y_zp, PerTensorQuant(*mo), Activation(*act))
                fn = lib.ereid_mul_s8
            st = fn(C.byref(p), C.byref(dims4(x.shape)), _ptr8(x), C.byref(dims4(x2.shape)), _ptr8(x2),
                    C.byref(dims4(out.shape)), _ptr8(out))
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            kh, kw = _pair(op.get("kernel"), (2, 2))
            sh, sw = _pair(op.get("stride"), (2, 2))
            _, ih, iw, _ = x.shape
            _, oh, ow, _ = out.shape
            ph, pw = (0, 0) if op.get("padding", "VALID") == "VALID" else \
                (padding_before(ih, kh, sh, 1, oh), padding_before(iw, kw, sw, 1, ow))
            p = PoolParams(Tile(sh, sw), Tile(ph, pw), Activation(*act))
            fn = lib.ereid_max_pool_s8 if kind == "MAX_POOL_2D" else lib.ereid_avg_pool_s8
            st = fn(C.byref(ctx), C.byref(p), C.byref(dims4(x.shape)), _ptr8(x), C.byref(Dims(1, kh, kw, 1)),
                    C.byref(dims4(out.shape)), _ptr8(out))
        elif kind == "MEAN":
            rank = x.ndim
            axes = sorted({int(a) % rank for a in op.get("axis", [1, 2])})
            keep = bool(op.get("keep_dims", True))
            offset = 4 - rank
            mask = sum(1 << (a + offset) for a in axes)
            out_shape4 = [1 if (i - offset) in axes else d for i, d in enumerate([1] * offset + list(x.shape))]
            count = int(np.prod([x.shape[a] for a in axes]))
            m, s = quantize_multiplier(float(x_scale) / float(y_scale))
            k = min(count.bit_length() - 1, 32, 31 + s)  # 1/count folded in, as QuantizedMeanOrSum
            p = MeanParams(3, mask, x_zp, y_zp, PerTensorQuant((m << k) // count, s - k), 0.0)
            st = lib.ereid_mean_s8(C.byref(p), C.byref(dims4(x.shape)), _ptr8(x), C.byref(Dims(*out_shape4)),
                                   _ptr8(out))
        elif kind == "PAD":
            pads = np.asarray(op["paddings"]).reshape(-1, 2)
            pads = np.concatenate([np.zeros((4 - len(pads), 2), int), pads])
            value = int(op["constant"]) if "constant" in op else y_zp
            p = PadParams(Dims(*pads[:, 0]), Dims(*pads[:, 1]), value)
            st = lib.ereid_pad_s8(C.byref(p), C.byref(dims4(x.shape)), _ptr8(x), C.byref(dims4(out.shape)),
                                  _ptr8(out))
        elif kind == "CONCATENATION":
            arrays = [np.ascontiguousarray(a) for a in inputs[:len(xs)]]
            rank = arrays[0].ndim
            axis = int(op.get("axis", -1)) % rank + (4 - rank)
            ptrs = (C.POINTER(C.c_int8) * len(arrays))(*[_ptr8(a) for a in arrays])
            dims = (Dims * len(arrays))(*[dims4(a.shape) for a in arrays])
            st = lib.ereid_concatenation_s8(ptrs, dims, len(arrays), axis, C.byref(dims4(out.shape)), _ptr8(out))
        elif kind == "SOFTMAX":
            beta = float(np.float32(op.get("beta", 1.0)))
            real = min(beta * float(x_scale) * float(1 << 26), float((1 << 31) - 1))
            mult, left_shift = quantize_multiplier(real)
            radius = math.floor(1.0 * ((1 << 5) - 1) * (1 << 26) / (1 << left_shift))
            p = SoftmaxParams(mult, left_shift, -int(radius))
            depth = x.shape[-1]
            st = lib.ereid_softmax_s8(C.byref(p), x.size // depth, depth, _ptr8(x), _ptr8(out))
        elif kind == "RESIZE_NEAREST_NEIGHBOR":
            p = ResizeParams(int(bool(op.get("align_corners"))), int(bool(op.get("half_pixel_centers"))))
            st = lib.ereid_resize_nearest_s8(C.byref(p), C.byref(dims4(x.shape)), _ptr8(x),
                                             C.byref(dims4(out.shape)), _ptr8(out))
        elif kind == "L2_NORMALIZATION":
            depth = x.shape[-1]
            st = lib.ereid_l2_normalization_s8(C.byref(L2NormParams(x_zp)), x.size // depth, depth, _ptr8(x),
                                               _ptr8(out))
        elif kind == "RESHAPE":
            st = lib.ereid_reshape_s8(_ptr8(x), _ptr8(out), x.size)
        else:
            raise ValueError(f"no kernel mapping for {kind}")
        if st != 0:
            raise RuntimeError(f"{kind} kernel returned status {st}")
        return out

    def quantize(self, x: np.ndarray, scale: float, zp: int) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.zeros(x.shape, np.int8)
        st = self.lib.ereid_quantize_f32_s8(C.byref(AffineQuantParams(scale, zp)), x.size,
                                            x.ctypes.data_as(C.POINTER(C.c_float)), _ptr8(out))
        assert st == 0
        return out

    def dequantize(self, x: np.ndarray, scale: float, zp: int) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.int8)
        out = np.zeros(x.shape, np.float32)
        st = self.lib.ereid_dequantize_s8_f32(C.byref(AffineQuantParams(scale, zp)), x.size, _ptr8(x),
                                              out.ctypes.data_as(C.POINTER(C.c_float)))
        assert st == 0
        return out

"""TFLite's Prepare-time quantization arithmetic, reproduced exactly.

Facts taken from tensorflow/lite/kernels/internal/quantization_util.cc, kernel_util.cc,
add.cc, mul.cc, reduce.cc, padding.h (double-rounding build, TFLITE_SINGLE_ROUNDING=0,
which is what LiteRT's BUILTIN_REF kernels and CMSIS-NN use). Where TFLite computes in
float32, we compute in numpy float32 so rounding matches to the bit.
"""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound: halves go away from zero (Python's round() goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """(int32 multiplier in Q0.31, shift) with real = multiplier * 2^(shift - 31); shift > 0 = left."""
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError(f"multiplier {real_multiplier!r} does not fit in Q0.31")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:  # everything would shift out: flush to zero as TFLite does
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one(real_multiplier: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: 0 < real < 1, shift <= 0."""
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier!r} is not in (0, 1)")
    multiplier, shift = quantize_multiplier(real_multiplier)
    if shift > 0:
        raise ValueError(f"multiplier {real_multiplier!r} gives a left shift {shift}")
    return multiplier, shift


def _f32(x) -> np.float32:
    return np.float32(x)


def activation_range(activation: str, out_scale: float, out_zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: quantize() divides in float32, rounds half away."""

    def quantize(value: float) -> int:
        return out_zero_point + round_half_away(float(_f32(value) / _f32(out_scale)))

    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    if activation == "NONE":
        return qmin, qmax
    raise ValueError(f"fused activation {activation} has no int8 range")


def conv_channel_multipliers(input_scale: float, filter_scales, output_scale: float,
                             channels: int) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams: per output channel, a per-tensor scale broadcast.

    effective = double(in_scale) * double(filter_scale[c]) / double(out_scale).
    """
    scales = list(filter_scales)
    if len(scales) == 1:
        scales = scales * channels
    if len(scales) != channels:
        raise ValueError(f"{len(scales)} filter scales for {channels} output channels")
    multipliers, shifts = [], []
    for s in scales:
        m, sh = quantize_multiplier(float(input_scale) * float(s) / float(output_scale))
        multipliers.append(m)
        shifts.append(sh)
    return multipliers, shifts


def fully_connected_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: double(input) * double(filter) / double(output).

    (Very old TFLite multiplied the two float scales in float32 first; LiteRT 2.x does it
    in double, and the float32 product changes the multiplier for most scale triples.)
    """
    return quantize_multiplier(float(input_scale) * float(filter_scale) / float(output_scale))


def fully_connected_scales(input_scale: float, filter_scales, output_scale: float) -> list[float]:
    """LiteRT's reference int8 FULLY_CONNECTED (what BUILTIN_REF runs) skips the
    fixed-point multiplier: reference_integer_ops::FullyConnected[PerChannel](...,
    input_scale, output_scale, filter_scale) rescales each accumulator with
    round(double(acc) * (double(s_in) * double(s_w) / double(s_out))), half away from
    zero. One double per weight scale, evaluated left to right as in the C++ (Python
    floats are IEEE doubles, so the bits are the same)."""
    return [float(input_scale) * float(s) / float(output_scale) for s in filter_scales]


def fully_connected_int_rescale(scales) -> tuple[list[int], list[int], list[int]]:
    """Each double FULLY_CONNECTED scale (fully_connected_scales) split exactly into
    (mantissa_hi, mantissa_lo, shift) with scale = (mantissa_hi * 2^31 + mantissa_lo) *
    2^-shift and the mantissa in [2^52, 2^53) (0 for a zero scale): what
    ereid_fully_connected_rescale_int_s8 takes to reproduce round(double(acc) * scale)
    without double arithmetic (firmware/kernels/support/ereid_fc_rescale.h)."""
    his, los, shifts = [], [], []
    for s in scales:
        s = float(s)
        if not math.isfinite(s) or s < 0.0:
            raise ValueError(f"FULLY_CONNECTED scale {s!r} is not a finite non-negative double")
        if s == 0.0:
            mantissa, shift = 0, 0
        else:
            frac, exp = math.frexp(s)              # s = frac * 2^exp, frac in [0.5, 1), subnormals too
            mantissa, shift = int(frac * (1 << 53)), 53 - exp   # exact: frac has 53 bits at most
        if math.ldexp(float(mantissa), -shift) != s or not -2000 < shift < 2000:
            raise ValueError(f"FULLY_CONNECTED scale {s!r} does not split exactly")
        his.append(mantissa >> 31)
        los.append(mantissa & 0x7FFFFFFF)
        shifts.append(shift)
    return his, los, shifts


def add_params(in1_scale: float, in2_scale: float, out_scale: float, left_shift: int = 20) -> dict:
    """add.cc int8 general path (also SUB): inputs rescaled to 2*max(in scales), output back."""
    twice_max = float(_f32(2.0) * max(_f32(in1_scale), _f32(in2_scale)))
    in1_m, in1_s = quantize_multiplier_smaller_than_one(float(in1_scale) / twice_max)
    in2_m, in2_s = quantize_multiplier_smaller_than_one(float(in2_scale) / twice_max)
    out_real = twice_max / float(_f32(1 << left_shift) * _f32(out_scale))
    out_m, out_s = quantize_multiplier_smaller_than_one(out_real)
    return {"left_shift": left_shift, "input1_multiplier": in1_m, "input1_shift": in1_s,
            "input2_multiplier": in2_m, "input2_shift": in2_s,
            "output_multiplier": out_m, "output_shift": out_s}


def mul_params(in1_scale: float, in2_scale: float, out_scale: float) -> tuple[int, int]:
    """mul.cc int8: double(in1) * double(in2) / double(out)."""
    return quantize_multiplier(float(in1_scale) * float(in2_scale) / float(out_scale))


def mean_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """reduce.cc PrepareMeanOrSum: double(in_scale) / double(out_scale)."""
    return quantize_multiplier(float(input_scale) / float(output_scale))


def mean_multiplier_with_count(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """reference_ops::QuantizedMeanOrSum (LiteRT): fold 1/count into the Prepare multiplier.

    k = floor(log2(count)) capped at 32 and at 31 + shift; m' = (m << k) // count; s' = s - k.
    """
    multiplier, shift = mean_multiplier(input_scale, output_scale)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((multiplier << k) // count), shift - k


def requantize_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """quantize.cc int8 -> int8 requantize: double(in_scale) / double(out_scale)."""
    return quantize_multiplier(float(input_scale) / float(output_scale))


def out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """ComputeOutSize (padding.h)."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    if padding == "VALID":
        return (in_size + stride - effective) // stride
    raise ValueError(f"padding {padding}")


def padding_before(in_size: int, filter_size: int, stride: int, dilation: int, out: int) -> int:
    """ComputePadding (padding.h): top/left padding; the odd extra goes bottom/right."""
    effective = (filter_size - 1) * dilation + 1
    return max(0, ((out - 1) * stride + effective - in_size) // 2)

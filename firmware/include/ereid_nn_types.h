/*
 * edgereid int8 kernel library: data types shared by every kernel.
 *
 * Layout and quantization follow TFLite exactly, so that a kernel fed with the
 * numbers TFLite computes in Prepare() gives the bytes TFLite's reference kernels
 * (BUILTIN_REF) give:
 *   - activations are int8 NHWC, biases int32;
 *   - conv weights OHWI, depthwise weights 1HWO (O = in_ch * ch_mult), FC weights OI;
 *   - "offset" fields are the negated input zero point (input_offset = -zp_in,
 *     filter_offset = -zp_filter) and the output zero point (output_offset = +zp_out),
 *     as in TFLite's *Params structs;
 *   - multiplier/shift pairs come from TFLite's QuantizeMultiplier (Q31 multiplier,
 *     shift > 0 = left shift); see firmware/README.md and edgereid/firmware/lowering.py
 *     for how each one is derived.
 *
 * edgereid/firmware/kernel_abi.py describes every struct below (same names, same field
 * order and types); the firmware compiler prints designated initialisers from it and the
 * kernel tests build their ctypes layouts from it. tests/test_firmware_kernels.py compiles
 * this header and fails on any difference: change both together.
 */
#ifndef EREID_NN_TYPES_H
#define EREID_NN_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    EREID_OK = 0,
    EREID_ARG_ERROR = -1,     /* a null pointer, a non-positive dimension, or dims that do not agree */
    EREID_NO_IMPL_ERROR = -2, /* a valid configuration no kernel of this build implements */
    EREID_BUFFER_ERROR = -3   /* a scratch buffer smaller than the kernel's *_get_buffer_size() */
} ereid_status;

/* Scratch memory handed to a kernel: `size` bytes at `buf` (16-byte aligned), planned in
 * the model's arena for this layer only. A kernel that needs scratch (im2col, bit-packing)
 * has a *_get_buffer_size() giving the bytes and returns EREID_BUFFER_ERROR when handed
 * less; one that needs none accepts {NULL, 0}, as every current int8 kernel does. */
typedef struct {
    void *buf;
    int32_t size;
} ereid_context;

/* A 4-D NHWC shape. Lower-rank tensors are extended with leading 1s, like
 * TFLite's RuntimeShape::ExtendedShape. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} ereid_dims;

typedef struct {
    int32_t h;
    int32_t w;
} ereid_tile;

/* Inclusive clamp applied to the quantized output: the fused activation
 * (NONE: [-128,127]; RELU: [zp,127]; RELU6: [zp, zp+round(6/scale)] clipped). */
typedef struct {
    int32_t min;
    int32_t max;
} ereid_activation;

typedef struct {
    int32_t multiplier; /* Q31, from QuantizeMultiplier */
    int32_t shift;      /* > 0: left shift, < 0: right shift (rounding) */
} ereid_per_tensor_quant_params;

typedef struct {
    const int32_t *multiplier; /* one per output channel */
    const int32_t *shift;
} ereid_per_channel_quant_params;

/* CONV_2D. padding = top/left padding (TFLite's PaddingValues.height/width);
 * the bottom/right side of SAME padding is implied by the bounds checks. */
typedef struct {
    int32_t input_offset;  /* -input zero point */
    int32_t output_offset; /* +output zero point */
    ereid_tile stride;
    ereid_tile padding;
    ereid_tile dilation;
    ereid_activation activation;
} ereid_conv_params;

/* DEPTHWISE_CONV_2D: output channel oc = ic * ch_mult + m. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult;
    ereid_tile stride;
    ereid_tile padding;
    ereid_tile dilation;
    ereid_activation activation;
} ereid_dw_conv_params;

/* FULLY_CONNECTED. */
typedef struct {
    int32_t input_offset;
    int32_t filter_offset; /* -filter zero point (0 for symmetric int8 weights) */
    int32_t output_offset;
    ereid_activation activation;
} ereid_fc_params;

/* FULLY_CONNECTED requantization as LiteRT's reference kernel does it (BUILTIN_REF,
 * reference_integer_ops::FullyConnected / FullyConnectedPerChannel with the scales):
 * out = (int32)round((double)acc * scale[o]) + output_offset, round half away from zero,
 * scale[o] = double(s_in) * double(s_w[o]) / double(s_out) computed by the caller in
 * IEEE double. count = 1 (per-tensor weights) or the number of output units. */
typedef struct {
    const double *scale;
    int32_t count;
} ereid_fc_rescale_params;

/* The same requantization without double arithmetic (ereid_fully_connected_rescale_int_s8,
 * what generated firmware calls): each double scale[o] split at build time into its integer
 * mantissa and exponent, scale[o] = (mantissa_hi[o] * 2^31 + mantissa_lo[o]) * 2^-shift[o],
 * mantissa in [2^52, 2^53) (or 0), so mantissa_hi in [0, 2^22) and mantissa_lo in [0, 2^31).
 * count = 1 (per-tensor weights) or the number of output units. */
typedef struct {
    const int32_t *mantissa_hi;
    const int32_t *mantissa_lo;
    const int32_t *shift;
    int32_t count;
} ereid_fc_int_rescale_params;

/* MAX_POOL_2D / AVERAGE_POOL_2D (input and output share scale and zero point). */
typedef struct {
    ereid_tile stride;
    ereid_tile padding;
    ereid_activation activation;
} ereid_pool_params;

/* ADD: TFLite's int8 scheme. Each input is offset, shifted left by left_shift (20),
 * rescaled by its own multiplier, summed, then rescaled to the output. */
typedef struct {
    int32_t input1_offset; /* -zp1 */
    int32_t input2_offset; /* -zp2 */
    int32_t output_offset; /* +zp_out */
    int32_t left_shift;    /* 20 for int8 */
    ereid_per_tensor_quant_params input1_quant; /* QuantizeMultiplierSmallerThanOneExp */
    ereid_per_tensor_quant_params input2_quant;
    ereid_per_tensor_quant_params output_quant;
    ereid_activation activation;
} ereid_add_params;

/* MUL: (in1 + off1) * (in2 + off2) rescaled once to the output. */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    ereid_per_tensor_quant_params output_quant;
    ereid_activation activation;
} ereid_mul_params;

/* MEAN int8 over any set of NHWC axes. LiteRT 2.x (ai-edge-litert, 2.4.6 checked
 * here) runs ONE integer algorithm for every int8 MEAN under BUILTIN_REF
 * (reference_ops::QuantizedMeanOrSum):
 *   out = clamp(MultiplyByQuantizedMultiplier(sum(x) - zp_in * count, m', s') + zp_out)
 * where (m, s) = QuantizeMultiplier(in_scale / out_scale) and the 1/count factor is
 * folded in: k = min(floor(log2 count), 32, 31 + s), m' = (m << k) / count, s' = s - k.
 * (Older TensorFlow Lite builds had three different algorithms; they are not
 * reproduced, so the enum starts at 3 to keep those numbers unused.) */
typedef enum {
    EREID_MEAN_REQUANT = 3
} ereid_mean_mode;

typedef struct {
    int32_t mode;               /* ereid_mean_mode */
    int32_t axis_mask;          /* bit d set: reduce NHWC dimension d (bit0 = N ... bit3 = C) */
    int32_t input_zero_point;
    int32_t output_zero_point;
    ereid_per_tensor_quant_params quant; /* the folded (m', s') above */
    float scale;                /* unused by EREID_MEAN_REQUANT (kept for layout stability) */
} ereid_mean_params;

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128), fixed-point
 * reference algorithm (gemmlowp exp / reciprocal). */
typedef struct {
    int32_t input_multiplier; /* PreprocessSoftmaxScaling(beta, in_scale, 5) */
    int32_t input_left_shift;
    int32_t diff_min;         /* -CalculateInputRadius(5, input_left_shift) */
} ereid_softmax_params;

/* L2_NORMALIZATION int8 -> int8 (output scale 1/128, zero point 0), over the last axis. */
typedef struct {
    int32_t input_zero_point;
} ereid_l2norm_params;

/* PAD / PADV2 on a 4-D NHWC tensor. */
typedef struct {
    ereid_dims before;  /* padding added before each dimension */
    ereid_dims after;   /* padding added after each dimension */
    int32_t pad_value;  /* PAD: output zero point; PADV2: the constant */
} ereid_pad_params;

/* RESIZE_NEAREST_NEIGHBOR. */
typedef struct {
    int32_t align_corners;      /* 0 or 1 */
    int32_t half_pixel_centers; /* 0 or 1 */
} ereid_resize_params;

/* QUANTIZE float -> int8 and DEQUANTIZE int8 -> float. */
typedef struct {
    float scale;
    int32_t zero_point;
} ereid_affine_quant_params;

/* ---- binary (1-bit) layers in Larq Compute Engine's format ---------------
 * A bitpacked tensor is int32 NHWC with the channel axis packed: channel c is bit c % 32
 * (LSB first) of word c / 32 of its pixel; bit 1 = -1, bit 0 = +1; every pixel starts a
 * new word and the unused bits of its last word are 0 (the kernels keep them 0). In an
 * ereid_dims of a bitpacked tensor, .c counts words. */

/* What LceBconv2d writes (the output tensor's type). */
typedef enum {
    EREID_BCONV_OUT_F32 = 1, /* float: y = (float)clamp(2a) * multiplier + bias (two roundings, no FMA) */
    EREID_BCONV_OUT_S8 = 2,  /* int8: saturate(round_half_away(y)) */
    EREID_BCONV_OUT_B1 = 3   /* bitpacked: bit = (a > threshold), thresholds within [-1, K] */
} ereid_bconv_output_type;

/* LceBconv2d. The accumulator a of an output is the number of differing bits, over the
 * filter taps and the words of the output channel's group, of input XOR filter: in [0, K],
 * K = filter h * w * channels_in / groups; the +-1 dot product is K - 2a. An out-of-image
 * tap (SAME padding) counts as an all +1 input word when pad_value is 1, and adds
 * (channels_in / groups) / 2 to a when pad_value is 0 (LCE's reference kernel). */
typedef struct {
    int32_t channels_in;     /* unpacked input channels, all groups (LCE's channels_in) */
    int32_t groups;          /* > 1 only with channels_in / groups a multiple of 32 */
    ereid_tile stride;
    ereid_tile padding;      /* top/left, as TFLite's ComputePaddingHeightWidth */
    ereid_tile dilation;
    int32_t pad_value;       /* 0 or 1 */
    int32_t output_type;     /* ereid_bconv_output_type */
    int32_t clamp_min;       /* F32 / S8: the fused activation as bounds on 2a */
    int32_t clamp_max;
    int32_t flush_denormals; /* F32: a result below FLT_MIN in magnitude becomes a zero of its sign */
} ereid_bconv_params;

/* F32 / S8 output transform of one output channel: multiplier = (float)(-m / s),
 * bias = (float)((b + K * m) / s + z) computed in double from the op's float32 post
 * multiplier m and bias b, with the output scale s and zero point z (1 and 0 for float). */
typedef struct {
    float multiplier;
    float bias;
} ereid_bconv_transform;

/* LceBMaxPool2d: the AND of the in-image words of each window (the max of +-1 values). */
typedef struct {
    ereid_tile stride;
    ereid_tile padding;      /* top/left */
} ereid_bmaxpool_params;

/* ---- coverage ops: TRANSPOSE, int8 RELU family and PRELU, float32 ops at the graph's
 * ends, each as LiteRT's reference kernel computes it (tests/test_firmware_coverage.py) ----- */

/* TRANSPOSE on a 4-D NHWC tensor: output dimension i is input dimension perm[i] (.n = 0,
 * .h = 1, .w = 2, .c = 3); a lower-rank permutation is extended with leading identity axes. */
typedef struct {
    ereid_dims perm;
} ereid_transpose_params;

/* RELU / RELU6 / RELU_N1_TO_1 on int8 (LiteRT's QuantizedReluX): the input is rescaled to
 * the output's quantization, then clamped:
 * out = clamp(output_offset + MultiplyByQuantizedMultiplier(x + input_offset, quant)). */
typedef struct {
    int32_t input_offset;                /* -zp_in */
    int32_t output_offset;               /* +zp_out */
    ereid_per_tensor_quant_params quant; /* QuantizeMultiplier(s_in / s_out), float32 division */
    ereid_activation activation;         /* [zp + round(lo / s_out), zp + round(hi / s_out)] within int8 */
} ereid_relu_params;

/* PRELU on int8 (reference_ops::BroadcastPrelu4DSlow): v = x + input_offset;
 * v >= 0: MBQM(v, positive_quant), else MBQM(v * (alpha + alpha_offset), negative_quant);
 * then + output_offset, saturated to int8. */
typedef struct {
    int32_t input_offset;                         /* -zp_in */
    int32_t alpha_offset;                         /* -zp_alpha */
    int32_t output_offset;                        /* +zp_out */
    ereid_per_tensor_quant_params positive_quant; /* QuantizeMultiplier(s_in / s_out), float32 arithmetic */
    ereid_per_tensor_quant_params negative_quant; /* QuantizeMultiplier(s_in * s_alpha / s_out), float32 */
} ereid_prelu_params;

/* A float32 clamp as LiteRT applies it: y = x < min ? min : (has_max && x > max ? max : x)
 * (so -0.0 and NaN pass through unchanged). RELU: [0, none]; RELU6: [0, 6];
 * RELU_N1_TO_1: [-1, 1]; a float ADD/MUL's fused activation: its range, NONE being
 * [-FLT_MAX, FLT_MAX] (an infinite sum becomes FLT_MAX, as in the reference). */
typedef struct {
    float min;
    float max;
    int32_t has_max; /* 0: no upper bound (standalone RELU: +inf stays +inf) */
} ereid_float_clamp_params;

#ifdef __cplusplus
}
#endif

#endif /* EREID_NN_TYPES_H */

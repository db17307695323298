/*
 * Internal helpers shared by the kernels:
 *   - argument checks: the prologues' shared || chains (EREID_*_INVALID), the
 *     conv / depthwise checks (ereid_*conv_args_valid) and the constraints under
 *     which a specialised kernel applies, which its wrapper tests too (EREID_*_APPLIES);
 *   - the int8 dot product, which takes the DSP path when EREID_USE_DSP is set and
 *     the scalar path otherwise (both give the same int32);
 *   - the requantization tails (bias, rescale, output offset, clamp);
 *   - the pooling window clipped to the input (EREID_POOL_WINDOW).
 * Broadcasting (ADD, MUL) is in ereid_bcast.h.
 *
 * Each helper compiles to the code its lines gave when written out in every kernel
 * (same object code with gcc and arm-none-eabi-gcc at -O2, so the instruction counts
 * the latency tables hold are unchanged). That is why the multi-argument checks are
 * macros: a static inline predicate returning the same chain moves branches and
 * registers around the whole kernel. The macros stop at the first failing check, left
 * to right; their arguments are names and member accesses without side effects, so
 * naming one twice is harmless.
 */
#ifndef EREID_NN_SUPPORT_H
#define EREID_NN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"
#include "ereid_dsp.h"
#include "ereid_nn_requant.h"

/* ---- Argument checks ----------------------------------------------------
 * A kernel's prologue: `if (EREID_..._INVALID(...) || <its own checks>) return
 * EREID_ARG_ERROR;`. An *_INVALID macro goes first in the chain (as the first
 * operand of ||, it expands to the chain the kernel would write out). */

static inline int ereid_dims_valid(const ereid_dims *d)
{
    return d != NULL && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

static inline int32_t ereid_dims_size(const ereid_dims *d)
{
    return d->n * d->h * d->w * d->c;
}

/* Activation range a kernel can honour: inside int8 and not inverted. */
static inline int ereid_activation_valid(const ereid_activation *act)
{
    return act->min >= EREID_INT8_MIN && act->max <= EREID_INT8_MAX && act->min <= act->max;
}

/* A kernel with one input and one output tensor: parameters, input or output missing,
 * or a shape not positive. */
#define EREID_IO_ARGS_INVALID(params, in_d, in, out_d, out)                                                   \
    ((params) == NULL || (in) == NULL || (out) == NULL || !ereid_dims_valid(in_d) || !ereid_dims_valid(out_d))

/* A kernel over the last axis (`rows` rows of `depth` values): SOFTMAX, L2_NORMALIZATION. */
#define EREID_ROWS_ARGS_INVALID(params, in, out, rows, depth)                                                 \
    ((params) == NULL || (in) == NULL || (out) == NULL || (rows) <= 0 || (depth) <= 0)

/* A flat element-wise kernel over `size` values: QUANTIZE, DEQUANTIZE. */
#define EREID_FLAT_ARGS_INVALID(params, in, out, size)                                                        \
    ((params) == NULL || (in) == NULL || (out) == NULL || (size) < 0)

/* A weighted op: parameters missing, its requantization parameters invalid
 * (`quant_invalid`: the kernel's own check, an expression that binds tighter than ||),
 * input, filter or output missing, or a shape not positive. */
#define EREID_WEIGHTED_ARGS_INVALID(p, quant_invalid, in_d, in, f_d, f, out_d, out)                           \
    ((p) == NULL || quant_invalid || (in) == NULL || (f) == NULL || (out) == NULL || !ereid_dims_valid(in_d) ||    \
     !ereid_dims_valid(f_d) || !ereid_dims_valid(out_d))

/* The same with per-channel requantization parameters q. */
#define EREID_PER_CHANNEL_ARGS_INVALID(p, q, in_d, in, f_d, f, out_d, out)                                    \
    EREID_WEIGHTED_ARGS_INVALID(p, (q) == NULL || (q)->multiplier == NULL || (q)->shift == NULL, in_d, in, f_d, f, \
                                out_d, out)

/* Stride and dilation positive, top/left padding not negative (CONV_2D, DEPTHWISE_CONV_2D). */
#define EREID_CONV_GEOMETRY_VALID(p)                                                                          \
    ((p)->stride.h > 0 && (p)->stride.w > 0 && (p)->dilation.h > 0 && (p)->dilation.w > 0 &&                  \
     (p)->padding.h >= 0 && (p)->padding.w >= 0)

/* Shared argument check of the CONV_2D kernels. */
static inline int ereid_conv_args_valid(const ereid_conv_params *p, const ereid_per_channel_quant_params *q,
                                        const ereid_dims *in_d, const int8_t *in, const ereid_dims *f_d,
                                        const int8_t *f, const ereid_dims *out_d, const int8_t *out)
{
    if (EREID_PER_CHANNEL_ARGS_INVALID(p, q, in_d, in, f_d, f, out_d, out)) {
        return 0;
    }
    return f_d->c == in_d->c && out_d->c == f_d->n && out_d->n == in_d->n && EREID_CONV_GEOMETRY_VALID(p) &&
           ereid_activation_valid(&p->activation);
}

/* Shared argument check of the DEPTHWISE_CONV_2D kernels. */
static inline int ereid_dw_conv_args_valid(const ereid_dw_conv_params *p, const ereid_per_channel_quant_params *q,
                                           const ereid_dims *in_d, const int8_t *in, const ereid_dims *f_d,
                                           const int8_t *f, const ereid_dims *out_d, const int8_t *out)
{
    if (EREID_PER_CHANNEL_ARGS_INVALID(p, q, in_d, in, f_d, f, out_d, out)) {
        return 0;
    }
    return p->ch_mult > 0 && f_d->n == 1 && f_d->c == in_d->c * p->ch_mult && out_d->c == f_d->c &&
           out_d->n == in_d->n && EREID_CONV_GEOMETRY_VALID(p) && ereid_activation_valid(&p->activation);
}

/* FULLY_CONNECTED shapes that do not agree: input {batches, ...depth}, filter
 * {out_depth, ...depth} (where depth and out_depth were read), output {batches, ...out_depth}. */
#define EREID_FC_SHAPE_INVALID(in_d, out_d, batches, depth, out_depth)                                        \
    ((in_d)->h * (in_d)->w * (in_d)->c != (depth) || (out_d)->n != (batches) ||                                 \
     (out_d)->h * (out_d)->w * (out_d)->c != (out_depth))

/* MAX_POOL_2D and AVERAGE_POOL_2D (filter_dims {1, kh, kw, 1}). */
#define EREID_POOL_ARGS_INVALID(p, in_d, in, f_d, out_d, out)                                                  \
    ((p) == NULL || (in) == NULL || (out) == NULL || (f_d) == NULL || !ereid_dims_valid(in_d) ||                 \
     !ereid_dims_valid(out_d) || (f_d)->h <= 0 || (f_d)->w <= 0 || (out_d)->n != (in_d)->n ||                   \
     (out_d)->c != (in_d)->c || (p)->stride.h <= 0 || (p)->stride.w <= 0 || !ereid_activation_valid(&(p)->activation))

/* ---- When a specialised kernel applies (the kernel and its wrapper agree) ---- */

/* ereid_convolve_1x1_s8: 1x1 filter, no padding, every output pixel reads inside the input. */
#define EREID_CONV_1X1_APPLIES(p, in_d, f_d, out_d)                                                          \
    ((f_d)->h == 1 && (f_d)->w == 1 && (p)->padding.h == 0 && (p)->padding.w == 0 &&                        \
     ((out_d)->h - 1) * (p)->stride.h < (in_d)->h && ((out_d)->w - 1) * (p)->stride.w < (in_d)->w)

/* ereid_convolve_3x3_s8: 3x3 filter, dilation 1. */
#define EREID_CONV_3X3_APPLIES(p, f_d) ((f_d)->h == 3 && (f_d)->w == 3 && (p)->dilation.h == 1 && (p)->dilation.w == 1)

/* ereid_depthwise_conv_3x3_s8: channel multiplier 1, 3x3 filter, dilation 1. */
#define EREID_DW_CONV_3X3_APPLIES(p, f_d)                                                                    \
    ((p)->ch_mult == 1 && (f_d)->h == 3 && (f_d)->w == 3 && (p)->dilation.h == 1 && (p)->dilation.w == 1)

/* ---- Dot products ------------------------------------------------------- */

/* sum_i (a[i] + a_offset) * (b[i] + b_offset) added to acc. */
static inline int32_t ereid_dot_s8_offsets2(const int8_t *a, int32_t a_offset, const int8_t *b,
                                            int32_t b_offset, int32_t n, int32_t acc)
{
#if EREID_USE_DSP
    if (b_offset == 0) {
        return ereid_dot_s8_offset(a, b, n, ereid_dup16(a_offset), a_offset, acc);
    }
    return ereid_dot_s8_offsets(a, b, n, a_offset, b_offset, acc);
#else
    for (int32_t i = 0; i < n; i++) {
        acc += ((int32_t)a[i] + a_offset) * ((int32_t)b[i] + b_offset);
    }
    return acc;
#endif
}

/* sum_i (a[i] + a_offset) * b[i] added to acc. */
static inline int32_t ereid_dot_s8(const int8_t *a, int32_t a_offset, const int8_t *b, int32_t n, int32_t acc)
{
    return ereid_dot_s8_offsets2(a, a_offset, b, 0, n, acc);
}

/* ---- Requantization tails ----------------------------------------------- */

/* Saturate to int8 (MEAN, L2_NORMALIZATION, SOFTMAX). */
static inline int8_t ereid_sat_s8(int32_t x)
{
    return (int8_t)ereid_clamp_i32(x, EREID_INT8_MIN, EREID_INT8_MAX);
}

/* Clamp to the activation range (inside int8) and narrow. */
static inline int8_t ereid_clamp_s8(int32_t x, const ereid_activation *act)
{
    return (int8_t)ereid_clamp_i32(x, act->min, act->max);
}

static inline int32_t ereid_add_bias(int32_t acc, const int32_t *bias, int32_t channel)
{
    return bias != NULL ? acc + bias[channel] : acc;
}

/* Bias, requantize, output offset and activation clamp: the common tail of
 * CONV_2D and DEPTHWISE_CONV_2D in TFLite's reference (and of FULLY_CONNECTED in
 * TFLM / CMSIS-NN, not in LiteRT: see ereid_finish_fc_f64_s8). */
static inline int8_t ereid_finish_s8(int32_t acc, const int32_t *bias, int32_t channel,
                                     int32_t multiplier, int32_t shift, int32_t output_offset,
                                     const ereid_activation *act)
{
    return ereid_clamp_s8(ereid_requantize(ereid_add_bias(acc, bias, channel), multiplier, shift) + output_offset,
                          act);
}

/* The tail of LiteRT's reference int8 FULLY_CONNECTED: bias, rescale in double with one
 * round half away from zero (ereid_rescale_round_f64), output offset (a wrapping int32
 * add, as the reference's add behaves on an out-of-range INT32_MIN), clamp. */
static inline int8_t ereid_finish_fc_f64_s8(int32_t acc, const int32_t *bias, int32_t channel, double scale,
                                            int32_t output_offset, const ereid_activation *act)
{
    return ereid_clamp_s8(ereid_add_wrap(ereid_rescale_round_f64(ereid_add_bias(acc, bias, channel), scale),
                                         output_offset),
                          act);
}

/* ---- Pooling windows ----------------------------------------------------
 * MAX_POOL_2D and AVERAGE_POOL_2D, along one axis: the window of output index
 * `out_index` starts at input index `origin` (negative in the top/left padding), and
 * its taps [start, end) are the ones inside the input (end <= start: none). Declares
 * the three const int32_t named by the last arguments (a macro, so the kernels compile
 * to the code the written-out lines give). */
#define EREID_POOL_WINDOW(out_index, stride, padding, filter_size, in_size, origin, start, end)              \
    const int32_t origin = (out_index) * (stride) - (padding);                                                \
    const int32_t start = ereid_max_i32(0, -(origin));                                                         \
    const int32_t end = ereid_min_i32(filter_size, (in_size) - (origin))

#endif /* EREID_NN_SUPPORT_H */

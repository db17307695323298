/*
 * Internal helpers shared by the kernels, all static inline so that a kernel
 * compiles to the code it would have with the lines written out:
 *   - argument checks (the prologues: pointers, shapes, parameter ranges, and the
 *     constraints under which a specialised kernel applies, which its wrapper shares);
 *   - the int8 dot product, which takes the DSP path when EREID_USE_DSP is set and
 *     the scalar path otherwise (both give the same int32);
 *   - the requantization tails (bias, rescale, output offset, clamp);
 *   - pooling windows clipped to the input, and broadcast strides (ADD, MUL).
 */
#ifndef EREID_NN_SUPPORT_H
#define EREID_NN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"
#include "ereid_dsp.h"
#include "ereid_nn_requant.h"

/* ---- Argument checks -----------------------------------------------------
 * The kernels' prologues: `if (EREID_..._INVALID(...) || <the kernel's own checks>)
 * return EREID_ARG_ERROR;`. The checks shared by several kernels are macros that
 * expand to the || chain a kernel would write out, so they compile to the same code
 * (a static inline predicate returning the && chain instead moves branches and
 * registers around the whole kernel, and so changes its instruction count). They
 * stop at the first failing check, left to right; every argument is a plain name, so
 * naming one twice is harmless. */

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

#define EREID_PER_CHANNEL_QUANT_INVALID(q) ((q) == NULL || (q)->multiplier == NULL || (q)->shift == NULL)

/* A weighted op: input, filter or output missing, or a shape not positive. */
#define EREID_WEIGHTED_ARGS_INVALID(in_d, in, f_d, f, out_d, out)                                             \
    ((in) == NULL || (f) == NULL || (out) == NULL || !ereid_dims_valid(in_d) || !ereid_dims_valid(f_d) ||        \
     !ereid_dims_valid(out_d))

/* Stride and dilation positive, top/left padding not negative (CONV_2D, DEPTHWISE_CONV_2D). */
#define EREID_CONV_GEOMETRY_VALID(p)                                                                          \
    ((p)->stride.h > 0 && (p)->stride.w > 0 && (p)->dilation.h > 0 && (p)->dilation.w > 0 &&                  \
     (p)->padding.h >= 0 && (p)->padding.w >= 0)

/* Shared argument check of the CONV_2D kernels. */
static inline int ereid_conv_args_valid(const ereid_conv_params *p, const ereid_per_channel_quant_params *q,
                                        const ereid_dims *in_d, const int8_t *in, const ereid_dims *f_d,
                                        const int8_t *f, const ereid_dims *out_d, const int8_t *out)
{
    if (p == NULL || EREID_PER_CHANNEL_QUANT_INVALID(q) || EREID_WEIGHTED_ARGS_INVALID(in_d, in, f_d, f, out_d, out)) {
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
    if (p == NULL || EREID_PER_CHANNEL_QUANT_INVALID(q) || EREID_WEIGHTED_ARGS_INVALID(in_d, in, f_d, f, out_d, out)) {
        return 0;
    }
    return p->ch_mult > 0 && f_d->n == 1 && f_d->c == in_d->c * p->ch_mult && out_d->c == f_d->c &&
           out_d->n == in_d->n && EREID_CONV_GEOMETRY_VALID(p) && ereid_activation_valid(&p->activation);
}

/* The FULLY_CONNECTED kernels, after each has checked p != NULL and its own
 * requantization parameters: input {batches, ...depth}, filter {units, ...depth},
 * output {batches, ...units}. */
#define EREID_FC_ARGS_INVALID(p, in_d, in, f_d, f, out_d, out)                                                 \
    (EREID_WEIGHTED_ARGS_INVALID(in_d, in, f_d, f, out_d, out) || !ereid_activation_valid(&(p)->activation) ||  \
     (in_d)->h * (in_d)->w * (in_d)->c != (f_d)->c || (out_d)->n != (in_d)->n ||                               \
     (out_d)->h * (out_d)->w * (out_d)->c != (f_d)->n)

/* MAX_POOL_2D and AVERAGE_POOL_2D (filter_dims {1, kh, kw, 1}). */
#define EREID_POOL_ARGS_INVALID(p, in_d, in, f_d, out_d, out)                                                  \
    ((p) == NULL || (in) == NULL || (out) == NULL || (f_d) == NULL || !ereid_dims_valid(in_d) ||                 \
     !ereid_dims_valid(out_d) || (f_d)->h <= 0 || (f_d)->w <= 0 || (out_d)->n != (in_d)->n ||                   \
     (out_d)->c != (in_d)->c || (p)->stride.h <= 0 || (p)->stride.w <= 0 || !ereid_activation_valid(&(p)->activation))

/* Each dimension of `a` equals the output's or is 1 (repeated). */
#define EREID_BCAST_COMPATIBLE(a, o)                                                                          \
    (((a)->n == (o)->n || (a)->n == 1) && ((a)->h == (o)->h || (a)->h == 1) && ((a)->w == (o)->w || (a)->w == 1) && \
     ((a)->c == (o)->c || (a)->c == 1))

/* ADD, MUL: an input or the output missing, a shape not positive, or an input that
 * does not broadcast to the output. */
#define EREID_BCAST_ARGS_INVALID(a_d, a, b_d, b, out_d, out)                                                   \
    ((a) == NULL || (b) == NULL || (out) == NULL || !ereid_dims_valid(a_d) || !ereid_dims_valid(b_d) ||          \
     !ereid_dims_valid(out_d) || !EREID_BCAST_COMPATIBLE(a_d, out_d) || !EREID_BCAST_COMPATIBLE(b_d, out_d))

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

/* Clamp to the activation range (inside int8) and narrow. */
static inline int8_t ereid_clamp_s8(int32_t x, const ereid_activation *act)
{
    return (int8_t)ereid_clamp_i32(x, act->min, act->max);
}

/* Saturate to int8. */
static inline int8_t ereid_sat_s8(int32_t x)
{
    return (int8_t)ereid_clamp_i32(x, EREID_INT8_MIN, EREID_INT8_MAX);
}

static inline int32_t ereid_add_bias(int32_t acc, const int32_t *bias, int32_t channel)
{
    return bias != NULL ? acc + bias[channel] : acc;
}

/* MultiplyByQuantizedMultiplier, output offset, activation clamp. */
static inline int8_t ereid_requant_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                      const ereid_activation *act)
{
    return ereid_clamp_s8(ereid_requantize(acc, multiplier, shift) + output_offset, act);
}

/* Bias, requantize, output offset and activation clamp: the common tail of
 * CONV_2D and DEPTHWISE_CONV_2D in TFLite's reference (and of FULLY_CONNECTED in
 * TFLM / CMSIS-NN, not in LiteRT: see ereid_finish_fc_f64_s8). */
static inline int8_t ereid_finish_s8(int32_t acc, const int32_t *bias, int32_t channel,
                                     int32_t multiplier, int32_t shift, int32_t output_offset,
                                     const ereid_activation *act)
{
    return ereid_requant_s8(ereid_add_bias(acc, bias, channel), multiplier, shift, output_offset, act);
}

/* ereid_finish_s8 with the channel's multiplier and shift taken from q. */
static inline int8_t ereid_finish_pc_s8(int32_t acc, const int32_t *bias, int32_t channel,
                                        const ereid_per_channel_quant_params *q, int32_t output_offset,
                                        const ereid_activation *act)
{
    const int32_t multiplier = q->multiplier[channel];
    const int32_t shift = q->shift[channel];
    return ereid_finish_s8(acc, bias, channel, multiplier, shift, output_offset, act);
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

/* ---- Pooling windows ---------------------------------------------------- */

/* One axis of a pooling window: it starts at input index `origin` (negative in the
 * padding) and its taps [start, end) are the ones inside the input. */
typedef struct {
    int32_t origin;
    int32_t start;
    int32_t end;
} ereid_window;

static inline ereid_window ereid_pool_window(int32_t out_index, int32_t stride, int32_t padding,
                                             int32_t filter_size, int32_t in_size)
{
    ereid_window win;
    win.origin = out_index * stride - padding;
    win.start = ereid_max_i32(0, -win.origin);
    win.end = ereid_min_i32(filter_size, in_size - win.origin);
    return win;
}

/* MAX_POOL_2D (is_max 1) and AVERAGE_POOL_2D (is_max 0) after their argument check:
 * the maximum, or the sum divided by the number of taps summed rounding half away from
 * zero, over each window clipped to the input, then the activation clamp. A window
 * wholly in the padding is an error for the average (TFLite rejects it too); for the
 * maximum it gives -128 before the clamp. Inlined with a constant is_max, each kernel
 * keeps only its own branch. */
static inline ereid_status ereid_pool_s8(const ereid_pool_params *p, const ereid_dims *in_d, const int8_t *input,
                                         const ereid_dims *f_d, const ereid_dims *out_d, int8_t *output,
                                         int is_max)
{
    const int32_t in_h = in_d->h, in_w = in_d->w, ch = in_d->c;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const ereid_window wy = ereid_pool_window(oy, p->stride.h, p->padding.h, f_d->h, in_h);
            for (int32_t ox = 0; ox < out_d->w; ox++) {
                const ereid_window wx = ereid_pool_window(ox, p->stride.w, p->padding.w, f_d->w, in_w);
                const int32_t count = (wy.end - wy.start) * (wx.end - wx.start);
                if (!is_max && (wy.end <= wy.start || wx.end <= wx.start)) {
                    return EREID_ARG_ERROR;
                }
                int8_t *out_px = output + ((b * out_d->h + oy) * out_d->w + ox) * ch;
                for (int32_t c = 0; c < ch; c++) {
                    int32_t acc = is_max ? EREID_INT8_MIN : 0;
                    for (int32_t fy = wy.start; fy < wy.end; fy++) {
                        const int32_t row_base = (b * in_h + wy.origin + fy) * in_w + wx.origin;
                        for (int32_t fx = wx.start; fx < wx.end; fx++) {
                            const int32_t v = input[(row_base + fx) * ch + c];
                            acc = is_max ? ereid_max_i32(acc, v) : acc + v;
                        }
                    }
                    if (!is_max) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    out_px[c] = ereid_clamp_s8(acc, &p->activation);
                }
            }
        }
    }
    return EREID_OK;
}

/* ---- Broadcasting (ADD, MUL) -------------------------------------------- */

/* Element steps of an operand along N, H, W, C as it is read for an output of shape o:
 * its own NHWC strides, 0 along a dimension it repeats. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} ereid_bcast_steps;

static inline ereid_bcast_steps ereid_bcast_steps_of(const ereid_dims *a, const ereid_dims *o)
{
    ereid_bcast_steps s;
    s.n = a->n == o->n ? a->h * a->w * a->c : 0;
    s.h = a->h == o->h ? a->w * a->c : 0;
    s.w = a->w == o->w ? a->c : 0;
    s.c = a->c == o->c ? 1 : 0;
    return s;
}

/* The operand's first element for output pixel (n, y, x). */
static inline const int8_t *ereid_bcast_pixel(const int8_t *base, const ereid_bcast_steps *s, int32_t n, int32_t y,
                                              int32_t x)
{
    return base + n * s->n + y * s->h + x * s->w;
}

#endif /* EREID_NN_SUPPORT_H */

/*
 * Internal helpers shared by the kernels: argument checks and the int8 dot
 * product, which takes the DSP path when EREID_USE_DSP is set and the scalar
 * path otherwise (both give the same int32).
 */
#ifndef EREID_NN_SUPPORT_H
#define EREID_NN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"
#include "ereid_dsp.h"
#include "ereid_nn_requant.h"

static inline int ereid_dims_valid(const ereid_dims *d)
{
    return d != NULL && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

static inline int32_t ereid_dims_size(const ereid_dims *d)
{
    return d->n * d->h * d->w * d->c;
}

/* sum_i (a[i] + a_offset) * b[i] added to acc. */
static inline int32_t ereid_dot_s8(const int8_t *a, int32_t a_offset, const int8_t *b, int32_t n, int32_t acc)
{
#if EREID_USE_DSP
    return ereid_dot_s8_offset(a, b, n, ereid_dup16(a_offset), a_offset, acc);
#else
    for (int32_t i = 0; i < n; i++) {
        acc += ((int32_t)a[i] + a_offset) * (int32_t)b[i];
    }
    return acc;
#endif
}

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

/* Bias, requantize, output offset and activation clamp: the common tail of
 * CONV_2D and DEPTHWISE_CONV_2D in TFLite's reference (and of FULLY_CONNECTED in
 * TFLM / CMSIS-NN, not in LiteRT: see ereid_finish_fc_f64_s8). */
static inline int8_t ereid_finish_s8(int32_t acc, const int32_t *bias, int32_t channel,
                                     int32_t multiplier, int32_t shift, int32_t output_offset,
                                     const ereid_activation *act)
{
    if (bias != NULL) {
        acc += bias[channel];
    }
    acc = ereid_requantize(acc, multiplier, shift);
    acc += output_offset;
    return (int8_t)ereid_clamp_i32(acc, act->min, act->max);
}

/* The tail of LiteRT's reference int8 FULLY_CONNECTED: bias, rescale in double with one
 * round half away from zero (ereid_rescale_round_f64), output offset (a wrapping int32
 * add, as the reference's add behaves on an out-of-range INT32_MIN), clamp. */
static inline int8_t ereid_finish_fc_f64_s8(int32_t acc, const int32_t *bias, int32_t channel, double scale,
                                            int32_t output_offset, const ereid_activation *act)
{
    if (bias != NULL) {
        acc += bias[channel];
    }
    acc = ereid_add_wrap(ereid_rescale_round_f64(acc, scale), output_offset);
    return (int8_t)ereid_clamp_i32(acc, act->min, act->max);
}

/* Activation range a kernel can honour: inside int8 and not inverted. */
static inline int ereid_activation_valid(const ereid_activation *act)
{
    return act->min >= EREID_INT8_MIN && act->max <= EREID_INT8_MAX && act->min <= act->max;
}

/* Shared argument check of the CONV_2D kernels. */
static inline int ereid_conv_args_valid(const ereid_conv_params *p, const ereid_per_channel_quant_params *q,
                                        const ereid_dims *in_d, const int8_t *in, const ereid_dims *f_d,
                                        const int8_t *f, const ereid_dims *out_d, const int8_t *out)
{
    if (p == NULL || q == NULL || q->multiplier == NULL || q->shift == NULL || in == NULL || f == NULL ||
        out == NULL || !ereid_dims_valid(in_d) || !ereid_dims_valid(f_d) || !ereid_dims_valid(out_d)) {
        return 0;
    }
    return f_d->c == in_d->c && out_d->c == f_d->n && out_d->n == in_d->n && p->stride.h > 0 &&
           p->stride.w > 0 && p->dilation.h > 0 && p->dilation.w > 0 && p->padding.h >= 0 &&
           p->padding.w >= 0 && ereid_activation_valid(&p->activation);
}

/* Shared argument check of the DEPTHWISE_CONV_2D kernels. */
static inline int ereid_dw_conv_args_valid(const ereid_dw_conv_params *p, const ereid_per_channel_quant_params *q,
                                           const ereid_dims *in_d, const int8_t *in, const ereid_dims *f_d,
                                           const int8_t *f, const ereid_dims *out_d, const int8_t *out)
{
    if (p == NULL || q == NULL || q->multiplier == NULL || q->shift == NULL || in == NULL || f == NULL ||
        out == NULL || !ereid_dims_valid(in_d) || !ereid_dims_valid(f_d) || !ereid_dims_valid(out_d)) {
        return 0;
    }
    return p->ch_mult > 0 && f_d->n == 1 && f_d->c == in_d->c * p->ch_mult && out_d->c == f_d->c &&
           out_d->n == in_d->n && p->stride.h > 0 && p->stride.w > 0 && p->dilation.h > 0 &&
           p->dilation.w > 0 && p->padding.h >= 0 && p->padding.w >= 0 &&
           ereid_activation_valid(&p->activation);
}

#endif /* EREID_NN_SUPPORT_H */

/*
 * When the fast int8 "glue" kernels of a binary network apply (ADD of two same-shape
 * tensors, PRELU with one alpha per channel, the 1x1 depthwise threshold in front of a
 * binarizer): the named predicates their wrappers test, and that each fast kernel
 * re-checks before it runs (kernel_registry.py mirrors them in Python).
 */
#ifndef EREID_GLUE_DISPATCH_H
#define EREID_GLUE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"

static inline int ereid_dims_equal(const ereid_dims *a, const ereid_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* ereid_add_wrapper_s8 -> ereid_add_elementwise_s8: both inputs of the output's shape, every
 * rescale a right shift (QuantizeMultiplierSmallerThanOneExp: shift in [-31, 0], multiplier
 * not INT32_MIN) and a left shift in [0, 30]. */
#define EREID_ADD_ELEMENTWISE_APPLIES(p, a_d, b_d, out_d)                                                     \
    (ereid_dims_equal(a_d, out_d) && ereid_dims_equal(b_d, out_d) && (p)->left_shift >= 0 &&                   \
     (p)->left_shift <= 30 && (p)->input1_quant.shift <= 0 && (p)->input1_quant.shift >= -31 &&                \
     (p)->input2_quant.shift <= 0 && (p)->input2_quant.shift >= -31 && (p)->output_quant.shift <= 0 &&         \
     (p)->output_quant.shift >= -31 && (p)->input1_quant.multiplier != INT32_MIN &&                             \
     (p)->input2_quant.multiplier != INT32_MIN && (p)->output_quant.multiplier != INT32_MIN)

/* ereid_prelu_wrapper_s8 -> ereid_prelu_channel_s8: input of the output's shape, alpha one
 * value per output channel ({1, 1, 1, C}), both rescales' shifts in [-31, 30] and
 * multipliers not INT32_MIN. */
#define EREID_PRELU_CHANNEL_APPLIES(p, in_d, alpha_d, out_d)                                                  \
    (ereid_dims_equal(in_d, out_d) && (alpha_d)->n == 1 && (alpha_d)->h == 1 && (alpha_d)->w == 1 &&           \
     (alpha_d)->c == (out_d)->c && (p)->positive_quant.shift <= 30 && (p)->positive_quant.shift >= -31 &&      \
     (p)->negative_quant.shift <= 30 && (p)->negative_quant.shift >= -31 &&                                    \
     (p)->positive_quant.multiplier != INT32_MIN && (p)->negative_quant.multiplier != INT32_MIN)

/* The rescale MultiplyByQuantizedMultiplier(acc, 2^30, 1) that is exactly acc for |acc| < 2^30:
 * a depthwise conv whose real multiplier is 1.0 (input scale = output scale, filter scale 1). */
#define EREID_UNIT_MULTIPLIER (1 << 30)
#define EREID_UNIT_SHIFT 1
#define EREID_UNIT_MAX_BIAS (1 << 29)
#define EREID_UNIT_MAX_OFFSET 256

/* ereid_depthwise_conv_1x1_unit_s8: 1x1 filter, channel multiplier 1, stride 1, no padding,
 * output the input's size, every channel's rescale the unit one, |bias| <= 2^29 and
 * |input_offset| <= 256 (so |w (x + offset) + bias| < 2^30 and the rescale is exact). */
static inline int ereid_dw_conv_1x1_unit_applies(const ereid_dw_conv_params *p,
                                                 const ereid_per_channel_quant_params *q,
                                                 const ereid_dims *in_d, const ereid_dims *f_d,
                                                 const int32_t *bias, const ereid_dims *out_d)
{
    if (p->ch_mult != 1 || f_d->h != 1 || f_d->w != 1 || p->stride.h != 1 || p->stride.w != 1 ||
        p->padding.h != 0 || p->padding.w != 0 || out_d->h != in_d->h || out_d->w != in_d->w ||
        p->input_offset > EREID_UNIT_MAX_OFFSET || p->input_offset < -EREID_UNIT_MAX_OFFSET) {
        return 0;
    }
    for (int32_t c = 0; c < out_d->c; c++) {
        if (q->multiplier[c] != EREID_UNIT_MULTIPLIER || q->shift[c] != EREID_UNIT_SHIFT ||
            (bias != NULL && (bias[c] > EREID_UNIT_MAX_BIAS || bias[c] < -EREID_UNIT_MAX_BIAS))) {
            return 0;
        }
    }
    return 1;
}

#endif /* EREID_GLUE_DISPATCH_H */

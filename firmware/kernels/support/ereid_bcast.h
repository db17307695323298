/*
 * 4-D broadcasting shared by ADD and MUL (included by those two kernels only: the
 * helpers are plain static functions, compiled as they were when each kernel had
 * its own copy, so the kernels' code is unchanged).
 */
#ifndef EREID_BCAST_H
#define EREID_BCAST_H

#include "ereid_nn_support.h"

/* Index step of one operand along a dimension: 0 where it is broadcast. */
static int32_t ereid_bcast_stride(int32_t extent, int32_t out_extent, int32_t stride)
{
    return extent == out_extent ? stride : 0;
}

/* Each dimension of `a` equals the output's or is 1 (repeated). */
static int ereid_bcast_compatible(const ereid_dims *a, const ereid_dims *o)
{
    return (a->n == o->n || a->n == 1) && (a->h == o->h || a->h == 1) && (a->w == o->w || a->w == 1) &&
           (a->c == o->c || a->c == 1);
}

/* Parameters, an input or the output missing, a shape not positive, or an input that
 * does not broadcast to the output (see EREID_IO_ARGS_INVALID). */
#define EREID_BCAST_ARGS_INVALID(params, a_d, a, b_d, b, out_d, out)                                          \
    ((params) == NULL || (a) == NULL || (b) == NULL || (out) == NULL || !ereid_dims_valid(a_d) ||                \
     !ereid_dims_valid(b_d) || !ereid_dims_valid(out_d) || !ereid_bcast_compatible(a_d, out_d) ||                \
     !ereid_bcast_compatible(b_d, out_d))

/* Declares s_n, s_h, s_w, s_c: the index steps of operand dims `a` along N, H, W, C of
 * output dims `o` (its NHWC strides, 0 where it is broadcast). */
#define EREID_BCAST_STRIDES(a, o, s_n, s_h, s_w, s_c)                                                         \
    const int32_t s_n = ereid_bcast_stride((a)->n, (o)->n, (a)->h * (a)->w * (a)->c);                         \
    const int32_t s_h = ereid_bcast_stride((a)->h, (o)->h, (a)->w * (a)->c);                                  \
    const int32_t s_w = ereid_bcast_stride((a)->w, (o)->w, (a)->c);                                           \
    const int32_t s_c = ereid_bcast_stride((a)->c, (o)->c, 1)

#endif /* EREID_BCAST_H */

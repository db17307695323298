/*
 * tflite::MultiplyByQuantizedMultiplier with its per-call constants hoisted, for the
 * element-wise int8 kernels that run it once or more per value (ADD, PRELU). Same result
 * as ereid_requantize (ereid_nn_requant.h) for every int32 input, by these identities:
 *   - SaturatingRoundingDoublingHighMul(a, b) is a * b / 2^31 rounded half up
 *     (gemmlowp's nudge of 1 - 2^30 for a negative product and the truncating division
 *     make negative ties round toward +inf too), i.e. (a * b + 2^30) >> 31; it saturates
 *     only for a = b = INT32_MIN, excluded by requiring multiplier != INT32_MIN;
 *     Helium's VQRDMULH computes exactly this, saturation included;
 *   - RoundingDivideByPOT(x, e) is (x >> e) + ((x & mask) > (mask >> 1) + [x < 0]) (the
 *     reference's own form, its mask and threshold computed once per call); on Helium
 *     VRSHL(VQADD(x, -[x < 0 and e > 0]), -e) (as ereid_conv_mve_s8.h).
 * The portable C is the reference the Helium paths are tested against (QEMU mps3-an547).
 */
#ifndef EREID_REQUANT_FAST_H
#define EREID_REQUANT_FAST_H

#include <stdint.h>

#include "ereid_mve.h"
#include "ereid_nn_types.h"

/* One MultiplyByQuantizedMultiplier(x, multiplier, shift) with its constants split out. */
typedef struct {
    int32_t multiplier;  /* != INT32_MIN */
    int32_t left_shift;  /* max(shift, 0) */
    int32_t right_shift; /* max(-shift, 0), <= 31 */
    int32_t mask;        /* 2^right_shift - 1 */
    int32_t threshold;   /* mask >> 1 */
} ereid_requant_fast;

/* The constants of `q`; 0 when it is outside what the fast form covers (shift outside
 * [-31, 30] or multiplier INT32_MIN): the caller then runs its reference kernel. */
static inline int ereid_requant_fast_init(ereid_requant_fast *r, const ereid_per_tensor_quant_params *q)
{
    if (q->multiplier == INT32_MIN || q->shift > 30 || q->shift < -31) {
        return 0;
    }
    r->multiplier = q->multiplier;
    r->left_shift = q->shift > 0 ? q->shift : 0;
    r->right_shift = q->shift > 0 ? 0 : -q->shift;
    r->mask = (int32_t)(((uint32_t)1 << r->right_shift) - 1u);
    r->threshold = r->mask >> 1;
    return 1;
}

/* ereid_requantize(x, multiplier, shift), bit for bit. */
static inline int32_t ereid_requant_fast_apply(const ereid_requant_fast *r, int32_t x)
{
    const int64_t ab = (int64_t)(int32_t)((uint32_t)x << r->left_shift) * r->multiplier;
    /* arithmetic >> of a negative value: implementation-defined in C99, arithmetic on every
     * compiler this library targets (as ereid_rdbpot relies on) */
    const int32_t h = (int32_t)((ab + (1LL << 30)) >> 31);
    const int32_t threshold = r->threshold + (h < 0 ? 1 : 0);
    return (h >> r->right_shift) + ((h & r->mask) > threshold ? 1 : 0);
}

#if EREID_USE_MVE
/* The same on four lanes. */
static inline int32x4_t ereid_requant_fast_mve(const ereid_requant_fast *r, int32x4_t x)
{
    x = vqrdmulhq_n_s32(vshlq_r_s32(x, r->left_shift), r->multiplier);
    if (r->right_shift > 0) {
        x = vrshlq_n_s32(vqaddq_s32(x, vshrq_n_s32(x, 31)), -r->right_shift);
    }
    return x;
}
#endif

#endif /* EREID_REQUANT_FAST_H */

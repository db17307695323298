/*
 * Helpers of the optimised DEPTHWISE_CONV_2D paths (channel multiplier 1).
 *
 * Offset folding: for an output pixel whose taps all lie inside the input,
 *     sum_t (x_t + input_offset) * w_t = sum_t x_t * w_t + input_offset * sum_t w_t,
 * so the second term joins the bias once per channel (the "folded bias") and the inner
 * loop multiplies raw int8. Pixels at the border skip the taps in the padding, so they
 * keep the offset per tap.
 *
 * Bounded requantization: the fast paths run only when every channel has
 * shift in [-21, -1], |bias| < 2^29 and |folded bias| < 2^29, |input_offset| <= 255 and
 * |output_offset| <= 255 (ereid_dw_fast_applies). Then every accumulator a satisfies
 * |a| < 2^29 + taps * 383 * 128 < 2^30 for taps <= 1024, so no int32 sum wraps (the
 * reference's int32 sums are the same numbers) and
 * tflite::MultiplyByQuantizedMultiplier(a, m, -e) + output_offset is, exactly:
 *   - y = SaturatingRoundingDoublingHighMul(a, m) = floor((a*m + 2^30) / 2^31) (gemmlowp's
 *     nudge 1 - 2^30 for a negative product, then truncation, is the same floor; the
 *     saturating case needs a = INT32_MIN) = SMMULR(2a, m) (ereid_dw_mulhr),
 *     2a fitting int32; |y| <= |a| + 1 < 2^30;
 *   - RoundingDivideByPOT(y, e) + output_offset, e >= 1: round half away from zero of
 *     y / 2^e is floor((y + 2^(e-1) - [y < 0]) / 2^e), and adding output_offset * 2^e
 *     inside the floor adds output_offset outside it, so it is
 *     (y + round_bias + (y >> 31)) >> e with round_bias = 2^(e-1) + output_offset * 2^e
 *     (per channel); |y + round_bias| < 2^30 + 2^20 + 2^29 for e <= 21: no overflow.
 */
#ifndef EREID_DW_SUPPORT_H
#define EREID_DW_SUPPORT_H

#include <stdint.h>

#include "ereid_nn_types.h"
#include "ereid_nn_requant.h"
#include "ereid_dsp.h"
#include "ereid_mve.h"

/* Keeps a pixel's inner loop out of its caller, so that it gets the registers to itself
 * (inlined, the caller's live values push the accumulators onto the stack). */
#if defined(__GNUC__)
#define EREID_DW_NOINLINE __attribute__((noinline))
#else
#define EREID_DW_NOINLINE
#endif

/* Channels whose folded biases and rounding constants a kernel keeps on the stack (a
 * pixel's loop overhead is paid once per block; Helium keeps no pre-extended weights, so
 * its blocks are larger for the same stack). */
#if EREID_USE_MVE
#define EREID_DW_BLOCK 64
#else
#define EREID_DW_BLOCK 32
#endif
/* Bound on |bias| and |folded bias| under which the fast paths' sums stay below 2^30. */
#define EREID_DW_BIAS_BOUND (1 << 29)
/* Most filter taps the bound above allows (2^29 + taps * 383 * 128 < 2^30). */
#define EREID_DW_MAX_TAPS 1024

/* Per-channel constants of one channel block. */
typedef struct {
#if !EREID_USE_MVE
    /* 3x3 filter of the block, sign-extended once: for each group of four channels and each
     * tap, the SXTB16 halfword pairs (channels 0 and 2, then 1 and 3), read with LDRD */
    uint32_t weights3x3[EREID_DW_BLOCK / 4][9][2];
#endif
    int32_t folded_bias[EREID_DW_BLOCK]; /* bias + input_offset * sum of the channel's taps */
    int32_t exponent[EREID_DW_BLOCK];    /* e = -shift, in [1, 21] */
    int32_t round_bias[EREID_DW_BLOCK];  /* 2^(e-1) + output_offset * 2^e */
#if EREID_USE_MVE
    /* Helium: per group of eight channels, the even channels' values then the odd ones'
     * (VMULLB / VMULLT split int16 lanes that way) */
    int32_t eo_folded_bias[EREID_DW_BLOCK];
    int32_t eo_bias[EREID_DW_BLOCK];
    int32_t eo_multiplier[EREID_DW_BLOCK];
    int32_t eo_shift[EREID_DW_BLOCK];
#endif
} ereid_dw_block;

static inline int32_t ereid_dw_tap_sum(const int8_t *filter, int32_t taps, int32_t channels, int32_t c)
{
    int32_t sum = 0;
    for (int32_t t = 0; t < taps; t++) {
        sum += filter[t * channels + c];
    }
    return sum;
}

/* Whether the fast paths apply to all `channels` channels (see the bounds above). */
static inline int ereid_dw_fast_applies(const ereid_per_channel_quant_params *q, const int8_t *filter, int32_t taps,
                                        int32_t channels, const int32_t *bias, int32_t input_offset,
                                        int32_t output_offset)
{
    if (taps > EREID_DW_MAX_TAPS || input_offset < -255 || input_offset > 255 || output_offset < -255 ||
        output_offset > 255) {
        return 0;
    }
    for (int32_t c = 0; c < channels; c++) {
        const int32_t b = bias != NULL ? bias[c] : 0;
        if (q->shift[c] > -1 || q->shift[c] < -21 || b <= -EREID_DW_BIAS_BOUND || b >= EREID_DW_BIAS_BOUND) {
            return 0;
        }
        /* |input_offset * sum| <= 255 * 128 * 1024 < 2^25: no overflow */
        const int32_t fb = b + input_offset * ereid_dw_tap_sum(filter, taps, channels, c);
        if (fb <= -EREID_DW_BIAS_BOUND || fb >= EREID_DW_BIAS_BOUND) {
            return 0;
        }
    }
    return 1;
}

/* Fill the constants of channels [c0, c0 + n), n <= EREID_DW_BLOCK. */
static inline void ereid_dw_block_init(ereid_dw_block *blk, const ereid_per_channel_quant_params *q,
                                       const int8_t *filter, int32_t taps, int32_t channels, const int32_t *bias,
                                       int32_t input_offset, int32_t output_offset, int32_t c0, int32_t n)
{
    for (int32_t j = 0; j < n; j++) {
        const int32_t c = c0 + j;
        const int32_t e = -q->shift[c];
        blk->folded_bias[j] = (bias != NULL ? bias[c] : 0) + input_offset * ereid_dw_tap_sum(filter, taps, channels, c);
        blk->exponent[j] = e;
        blk->round_bias[j] = (int32_t)(1u << (e - 1)) + output_offset * (int32_t)(1u << e);
    }
}

#if EREID_USE_MVE
/* The even/odd copies of the block's constants for whole groups of eight channels. */
static inline void ereid_dw_block_even_odd(ereid_dw_block *blk, const ereid_per_channel_quant_params *q,
                                           const int32_t *bias, int32_t c0, int32_t n)
{
    for (int32_t g = 0; g + 8 <= n; g += 8) {
        for (int32_t j = 0; j < 8; j++) {
            const int32_t src = g + (j < 4 ? 2 * j : 2 * (j - 4) + 1); /* channel within the block */
            blk->eo_folded_bias[g + j] = blk->folded_bias[src];
            blk->eo_bias[g + j] = bias != NULL ? bias[c0 + src] : 0;
            blk->eo_multiplier[g + j] = q->multiplier[c0 + src];
            blk->eo_shift[g + j] = q->shift[c0 + src];
        }
    }
}
#endif

#if EREID_USE_DSP && !EREID_USE_MVE
/* Sign-extend the 3x3 filter of channels [c0, c0 + n) into blk->weights3x3 (whole groups
 * of four channels; a last partial group is handled by the kernel's scalar tail). */
static inline void ereid_dw_block_weights3x3(ereid_dw_block *blk, const int8_t *filter, int32_t channels, int32_t c0,
                                             int32_t n)
{
    for (int32_t g = 0; g < n / 4; g++) {
        for (int32_t t = 0; t < 9; t++) {
            const uint32_t v = ereid_read_s8x4(filter + t * channels + c0 + 4 * g);
            blk->weights3x3[g][t][0] = ereid_sxtb16(v);
            blk->weights3x3[g][t][1] = ereid_sxtb16_ror8(v);
        }
    }
}
#endif

/* (a * b + 2^31) >> 32, the high word rounded: SMMULR on a DSP core. */
static inline int32_t ereid_dw_mulhr(int32_t a, int32_t b)
{
#if EREID_DSP_NATIVE
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * b + (1LL << 31)) >> 32);
#endif
}

/* MultiplyByQuantizedMultiplier(a, m, -e) + output_offset for |a| < 2^30 and e in [1, 21]
 * (see above; round_bias carries the output offset), clamped to [lo, hi]. */
static inline int8_t ereid_dw_requantize_s8(int32_t a, int32_t m, int32_t e, int32_t round_bias, int32_t lo,
                                            int32_t hi)
{
    const int32_t y = ereid_dw_mulhr(a * 2, m);
    const int32_t v = (y + round_bias + (y >> 31)) >> e;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#if EREID_USE_DSP
/* One depthwise tap of four channels with the input offset folded: a_k += x[k] * w[k] for
 * the int8 words at x + x_off and w + w_off (x_off, w_off byte offsets). On the target one
 * asm block (two loads, four SXTB16, SMLABB/SMLATT): as separate statements the compiler
 * hoists the SXTB16 of every tap of an unrolled loop and spills them. */
#if EREID_DSP_NATIVE
#define EREID_DW_TAP4(x, x_off, w, w_off, a0, a1, a2, a3)                                                     \
    do {                                                                                                      \
        uint32_t vx_, vw_, t0_, t1_;                                                                          \
        __asm__("ldr %[vx], [%[px], %[ox]]\n\t"                                                                \
                "ldr %[vw], [%[pw], %[ow]]\n\t"                                                                \
                "sxtb16 %[t0], %[vx]\n\t"                                                                     \
                "sxtb16 %[t1], %[vw]\n\t"                                                                     \
                "smlabb %[a0], %[t0], %[t1], %[a0]\n\t"                                                       \
                "smlatt %[a2], %[t0], %[t1], %[a2]\n\t"                                                       \
                "sxtb16 %[t0], %[vx], ror #8\n\t"                                                             \
                "sxtb16 %[t1], %[vw], ror #8\n\t"                                                             \
                "smlabb %[a1], %[t0], %[t1], %[a1]\n\t"                                                       \
                "smlatt %[a3], %[t0], %[t1], %[a3]"                                                           \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vx] "=&r"(vx_), [vw] "=&r"(vw_),   \
                  [t0] "=&r"(t0_), [t1] "=&r"(t1_)                                                            \
                : [px] "r"(x), [ox] "r"(x_off), [pw] "r"(w), [ow] "r"(w_off)                                  \
                : "memory");                                                                                  \
    } while (0)
/* The same with the input offset added per tap (off2: the offset in both halfwords;
 * |x + offset| <= 383 fits a halfword), for pixels at the border. */
#define EREID_DW_TAP4_OFFSET(x, w, off2, a0, a1, a2, a3)                                                      \
    do {                                                                                                      \
        uint32_t vx_, vw_, t0_, t1_;                                                                          \
        __asm__("ldr %[vx], [%[px]]\n\t"                                                                      \
                "ldr %[vw], [%[pw]]\n\t"                                                                      \
                "sxtb16 %[t0], %[vx]\n\t"                                                                     \
                "sadd16 %[t0], %[t0], %[o2]\n\t"                                                              \
                "sxtb16 %[t1], %[vw]\n\t"                                                                     \
                "smlabb %[a0], %[t0], %[t1], %[a0]\n\t"                                                       \
                "smlatt %[a2], %[t0], %[t1], %[a2]\n\t"                                                       \
                "sxtb16 %[t0], %[vx], ror #8\n\t"                                                             \
                "sadd16 %[t0], %[t0], %[o2]\n\t"                                                              \
                "sxtb16 %[t1], %[vw], ror #8\n\t"                                                             \
                "smlabb %[a1], %[t0], %[t1], %[a1]\n\t"                                                       \
                "smlatt %[a3], %[t0], %[t1], %[a3]"                                                           \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vx] "=&r"(vx_), [vw] "=&r"(vw_),   \
                  [t0] "=&r"(t0_), [t1] "=&r"(t1_)                                                            \
                : [px] "r"(x), [pw] "r"(w), [o2] "r"(off2)                                                    \
                : "memory");                                                                                  \
    } while (0)
/* One tap of four channels, offset folded, the weights pre-extended (ereid_dw_block's
 * weights3x3; `byte_off` a literal: 8 * tap). */
#define EREID_DW_TAP4_PRE(x, x_off, wg, byte_off, a0, a1, a2, a3)                                             \
    do {                                                                                                      \
        uint32_t vx_, t0_, we_, wo_;                                                                          \
        __asm__("ldr %[vx], [%[px], %[ox]]\n\t"                                                               \
                "ldrd %[we], %[wo], [%[pw], #" #byte_off "]\n\t"                                              \
                "sxtb16 %[t0], %[vx]\n\t"                                                                     \
                "smlabb %[a0], %[t0], %[we], %[a0]\n\t"                                                       \
                "smlatt %[a2], %[t0], %[we], %[a2]\n\t"                                                       \
                "sxtb16 %[t0], %[vx], ror #8\n\t"                                                             \
                "smlabb %[a1], %[t0], %[wo], %[a1]\n\t"                                                       \
                "smlatt %[a3], %[t0], %[wo], %[a3]"                                                           \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vx] "=&r"(vx_), [t0] "=&r"(t0_),   \
                  [we] "=&r"(we_), [wo] "=&r"(wo_)                                                            \
                : [px] "r"(x), [ox] "r"(x_off), [pw] "r"(wg)                                                  \
                : "memory");                                                                                  \
    } while (0)
/* The same for the first tap of a row (no input offset register). */
#define EREID_DW_TAP4_PRE0(x, wg, byte_off, a0, a1, a2, a3)                                                   \
    do {                                                                                                      \
        uint32_t vx_, t0_, we_, wo_;                                                                          \
        __asm__("ldr %[vx], [%[px]]\n\t"                                                                      \
                "ldrd %[we], %[wo], [%[pw], #" #byte_off "]\n\t"                                              \
                "sxtb16 %[t0], %[vx]\n\t"                                                                     \
                "smlabb %[a0], %[t0], %[we], %[a0]\n\t"                                                       \
                "smlatt %[a2], %[t0], %[we], %[a2]\n\t"                                                       \
                "sxtb16 %[t0], %[vx], ror #8\n\t"                                                             \
                "smlabb %[a1], %[t0], %[wo], %[a1]\n\t"                                                       \
                "smlatt %[a3], %[t0], %[wo], %[a3]"                                                           \
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [vx] "=&r"(vx_), [t0] "=&r"(t0_),   \
                  [we] "=&r"(we_), [wo] "=&r"(wo_)                                                            \
                : [px] "r"(x), [pw] "r"(wg)                                                                   \
                : "memory");                                                                                  \
    } while (0)
#else
#define EREID_DW_TAP4_PRE0(x, wg, byte_off, a0, a1, a2, a3) EREID_DW_TAP4_PRE(x, 0, wg, byte_off, a0, a1, a2, a3)
#define EREID_DW_TAP4_PRE(x, x_off, wg, byte_off, a0, a1, a2, a3)                                             \
    do {                                                                                                      \
        const uint32_t vx_ = ereid_read_s8x4((x) + (x_off));                                                  \
        const uint32_t xe_ = ereid_sxtb16(vx_), xo_ = ereid_sxtb16_ror8(vx_);                                 \
        const uint32_t *w_ = (wg) + (byte_off) / 4;                                                           \
        (a0) = ereid_smlabb(xe_, w_[0], a0);                                                                  \
        (a2) = ereid_smlatt(xe_, w_[0], a2);                                                                  \
        (a1) = ereid_smlabb(xo_, w_[1], a1);                                                                  \
        (a3) = ereid_smlatt(xo_, w_[1], a3);                                                                  \
    } while (0)
#define EREID_DW_TAP4_OFFSET(x, w, off2, a0, a1, a2, a3)                                                      \
    do {                                                                                                      \
        const uint32_t vx_ = ereid_read_s8x4(x), vw_ = ereid_read_s8x4(w);                                    \
        const uint32_t xe_ = ereid_sadd16(ereid_sxtb16(vx_), off2);                                           \
        const uint32_t xo_ = ereid_sadd16(ereid_sxtb16_ror8(vx_), off2);                                      \
        const uint32_t we_ = ereid_sxtb16(vw_), wo_ = ereid_sxtb16_ror8(vw_);                                 \
        (a0) = ereid_smlabb(xe_, we_, a0);                                                                    \
        (a2) = ereid_smlatt(xe_, we_, a2);                                                                    \
        (a1) = ereid_smlabb(xo_, wo_, a1);                                                                    \
        (a3) = ereid_smlatt(xo_, wo_, a3);                                                                    \
    } while (0)
#define EREID_DW_TAP4(x, x_off, w, w_off, a0, a1, a2, a3)                                                     \
    do {                                                                                                      \
        const uint32_t vx_ = ereid_read_s8x4((x) + (x_off)), vw_ = ereid_read_s8x4((w) + (w_off));            \
        const uint32_t xe_ = ereid_sxtb16(vx_), xo_ = ereid_sxtb16_ror8(vx_);                                 \
        const uint32_t we_ = ereid_sxtb16(vw_), wo_ = ereid_sxtb16_ror8(vw_);                                 \
        (a0) = ereid_smlabb(xe_, we_, a0);                                                                    \
        (a2) = ereid_smlatt(xe_, we_, a2);                                                                    \
        (a1) = ereid_smlabb(xo_, wo_, a1);                                                                    \
        (a3) = ereid_smlatt(xo_, wo_, a3);                                                                    \
    } while (0)
#endif
#endif /* EREID_USE_DSP */

#endif /* EREID_DW_SUPPORT_H */

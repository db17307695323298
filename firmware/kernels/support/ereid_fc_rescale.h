/*
 * LiteRT's int8 FULLY_CONNECTED requantization (BUILTIN_REF), in integer arithmetic only.
 *
 * The reference computes static_cast<int32_t>(round(double(acc) * scale)): one IEEE
 * double product (rounded to nearest, ties to even, to 53 significant bits), then one
 * round half away from zero (ereid_rescale_round_f64 in ereid_nn_requant.h does exactly
 * that in double). Here the double scale is given as its integer mantissa and exponent,
 * split at build time (edgereid/firmware/quantize_math.py, fully_connected_int_rescale):
 *
 *     scale = (mantissa_hi * 2^31 + mantissa_lo) * 2^-shift,  mantissa in [2^52, 2^53) or 0.
 *
 * The exact product P = |acc| * mantissa (< 2^84) is formed in base 2^31 with two 32x32->64
 * multiplies, rounded to 53 significant bits ties-to-even (the double product's rounding,
 * step for step), then shifted to an integer with a round half up of the magnitude
 * (= half away from zero). So every input gives the reference's int32, ties and
 * near-ties whose double product rounds onto a .5 included. A magnitude >= 2^31 gives
 * INT32_MIN for either sign, as the reference (x86-64 cvttsd2si) does for out-of-range
 * values and as -2^31 is anyway. No double and no float: no soft-float on Cortex-M4.
 */
#ifndef EREID_FC_RESCALE_H
#define EREID_FC_RESCALE_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"
#include "ereid_nn_requant.h"

/* Number of significant bits of x (0 for 0). */
static inline int32_t ereid_bit_length_u64(uint64_t x)
{
    const uint32_t hi = (uint32_t)(x >> 32);
    return hi ? 64 - ereid_clz_u32(hi) : 32 - ereid_clz_u32((uint32_t)x);
}

/* round_half_away(fl(acc * scale)) as a wrapped int32 (INT32_MIN when out of range), with
 * scale = (m_hi * 2^31 + m_lo) * 2^-shift; m_hi in [0, 2^22), m_lo in [0, 2^31). */
static inline int32_t ereid_rescale_round_exact(int32_t acc, int32_t m_hi, int32_t m_lo, int32_t shift)
{
    const uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc; /* |acc| <= 2^31 */
    const uint64_t lo = (uint64_t)a * (uint32_t)m_lo;                 /* < 2^62 */
    /* P = hi * 2^31 + lo31, hi < 2^53 */
    const uint64_t hi = (uint64_t)a * (uint32_t)m_hi + (lo >> 31);
    const uint32_t lo31 = (uint32_t)lo & 0x7FFFFFFFu;
    if (shift >= 32 && shift <= 85) {
        /* The usual scales (2^-33 .. 2^21): round P to 53 bits in place, then
         * mag = floor((P' + 2^(shift-1)) / 2^shift) = (hi' + 2^(shift-32)) >> (shift-31), for
         * 2^(shift-1) is a multiple of 2^31 and the low 31 bits of P' only matter through a
         * carry into hi. The rounding at bit d (d = bit_length(P) - 53 > 0) goes up when the
         * bits below d exceed half, or equal it with bit d set; going up carries into hi
         * when bits d..30 of P are all ones. */
        uint64_t h = hi;
        if ((hi >> 22) != 0) {
            const int32_t d = ereid_bit_length_u64(hi) - 22; /* 1..31 */
            const uint32_t mask = (1u << (d - 1) << 1) - 1u;  /* 2^d - 1, d = 31 included */
            const uint32_t rem = lo31 & mask, half = 1u << (d - 1);
            const uint32_t above = lo31 >> d; /* bits d..30 of P (none for d = 31) */
            const uint32_t odd = d < 31 ? (above & 1u) : (uint32_t)(hi & 1u);
            if ((rem > half || (rem == half && odd)) && above == (0x7FFFFFFFu >> d)) {
                h++;
            }
        }
        /* (h + 2^(s-1)) >> s, s = shift - 31 in [1, 54], on 32-bit halves (h < 2^54) */
        const uint32_t sh = (uint32_t)(shift - 31), h_lo = (uint32_t)h, h_hi = (uint32_t)(h >> 32);
        uint32_t mag_lo, mag_hi = 0;
        if (sh < 32) {
            const uint32_t r = 1u << (sh - 1), x_lo = h_lo + r, x_hi = h_hi + (x_lo < r ? 1u : 0u);
            mag_lo = (x_lo >> sh) | (x_hi << (32 - sh));
            mag_hi = x_hi >> sh;
        } else if (sh == 32) {
            mag_lo = h_hi + (h_lo >= 0x80000000u ? 1u : 0u);
        } else {
            mag_lo = (h_hi + (1u << (sh - 33))) >> (sh - 32);
        }
        if (mag_hi != 0 || mag_lo >= 0x80000000u) {
            return INT32_MIN;
        }
        return acc < 0 ? -(int32_t)mag_lo : (int32_t)mag_lo;
    }
    uint64_t q;    /* the double product's significand ... */
    int32_t d = 0; /* ... times 2^d is its exact value */
    if ((hi >> 22) == 0) {
        q = (hi << 31) | lo31; /* P < 2^53: the double product is exact */
    } else {
        d = ereid_bit_length_u64(hi) - 22; /* bit_length(P) - 53, in 1..31 */
        q = (hi << (31 - d)) | (lo31 >> d);
        const uint32_t rem = lo31 & ((1u << d) - 1u);
        const uint32_t half = 1u << (d - 1);
        if (rem > half || (rem == half && (q & 1u))) {
            q++; /* ties to even; q may become 2^53, still exact */
        }
    }
    /* |fl(acc * scale)| = q * 2^-k; round half up to an integer magnitude. */
    const int32_t k = shift - d;
    uint64_t mag;
    if (k > 0) {
        mag = k > 55 ? 0 : (q + (1ull << (k - 1))) >> k; /* q <= 2^53: k > 55 leaves < 1/4 */
    } else if (q == 0) {
        mag = 0;
    } else {
        mag = (-k >= 32 || q > (0x7FFFFFFFull >> -k)) ? 0x80000000ull : q << -k;
    }
    if (mag >= 0x80000000ull) {
        return INT32_MIN;
    }
    return acc < 0 ? -(int32_t)mag : (int32_t)mag;
}

/* The tail of LiteRT's reference int8 FULLY_CONNECTED without double arithmetic: bias,
 * exact rescale, output offset (a wrapping int32 add, as the reference's add behaves on
 * an out-of-range INT32_MIN), clamp. Same bytes as ereid_finish_fc_f64_s8. */
static inline int8_t ereid_finish_fc_exact_s8(int32_t acc, const int32_t *bias, int32_t channel, int32_t m_hi,
                                              int32_t m_lo, int32_t shift, int32_t output_offset,
                                              const ereid_activation *act)
{
    const int32_t x = bias != NULL ? (int32_t)((uint32_t)acc + (uint32_t)bias[channel]) : acc;
    const int32_t r = ereid_add_wrap(ereid_rescale_round_exact(x, m_hi, m_lo, shift), output_offset);
    return (int8_t)ereid_clamp_i32(r, act->min, act->max);
}

#endif /* EREID_FC_RESCALE_H */

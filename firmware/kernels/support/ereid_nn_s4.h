/*
 * Helpers of the int4-weight (_s4) kernels: reading packed int4 filters in place.
 *
 * A packed int4 tensor holds two elements per byte, element 2i in the low nibble of byte
 * i and 2i+1 in the high nibble (TFLite's INT4, CMSIS-NN's and TFLM's order); packing runs
 * over the flat tensor, so a filter row may start in the middle of a byte. The kernels
 * address a filter by element index and unpack nibbles inside their inner loops: no
 * unpacked copy of the filter is ever made.
 *
 * DSP path (EREID_USE_DSP): eight weights come from one 32-bit load. Masking with
 * 0xF0F0F0F0 puts each nibble in the top half of a byte, so SXTB16 yields 16 * w exactly
 * (no per-lane arithmetic shift exists); the eight input bytes are regrouped with two
 * halfword packs (PKHBT / PKHTB, which gcc emits for the plain C below) so that each SMLAD
 * lane pairs an input with its weight. The 16 * sum is exact and divided back by 16; with
 * |x + input_offset| <= 383 and |16 w| <= 128 a chunk of 32768 elements cannot overflow
 * int32, so longer dot products are split into such chunks.
 *
 * Helium path (EREID_USE_MVE, Cortex-M55): ereid_dot_s4_mve for rows starting on a byte, 32
 * elements per step; ereid_s4_mve_requantize for vector requantization (3x3 depthwise).
 */
#ifndef EREID_NN_S4_H
#define EREID_NN_S4_H

#include <stdint.h>

#include "ereid_nn_support.h"
#include "ereid_mve.h"

/* Input offsets the s4 kernels accept: -zero_point of an int8 tensor lies in [-127, 128];
 * the bound keeps |x + offset| <= 383 (the DSP lanes and the chunk bound above). */
#define EREID_S4_INPUT_OFFSET_VALID(offset) ((offset) >= -255 && (offset) <= 255)

/* The signed value of a nibble (0..15). */
static inline int32_t ereid_s4_nibble(uint32_t nibble)
{
    return (int32_t)(nibble ^ 8u) - 8;
}

/* Element e (>= 0) of a packed int4 tensor. */
static inline int32_t ereid_s4_at(const int8_t *packed, int32_t e)
{
    const uint32_t byte = (uint8_t)packed[e >> 1];
    return ereid_s4_nibble((e & 1) ? (byte >> 4) : (byte & 0xFu));
}

/* sum_i (a[i] + a_offset) * w[start + i], i < n, on the portable path: one byte (two
 * weights) per step after a possible half-byte head. */
static inline int32_t ereid_dot_s4_portable(const int8_t *a, int32_t a_offset, const int8_t *packed,
                                            int32_t start, int32_t n, int32_t acc)
{
    int32_t i = 0;
    if ((start & 1) && n > 0) {
        acc += ((int32_t)a[0] + a_offset) * ereid_s4_at(packed, start);
        i = 1;
    }
    const uint8_t *wb = (const uint8_t *)packed + ((start + i) >> 1);
    for (; i + 2 <= n; i += 2, wb++) {
        acc += ((int32_t)a[i] + a_offset) * ereid_s4_nibble(*wb & 0xFu) +
               ((int32_t)a[i + 1] + a_offset) * ereid_s4_nibble((uint32_t)*wb >> 4);
    }
    if (i < n) {
        acc += ((int32_t)a[i] + a_offset) * ereid_s4_at(packed, start + i);
    }
    return acc;
}

#if EREID_USE_DSP

#define EREID_S4_CHUNK 32768 /* elements per exact 16x partial sum (see the header comment) */

/* PKHBT a, b, LSL #16: low half of a, low half of b on top. PKHTB b, a, ASR #16: high half
 * of a at the bottom, high half of b on top. (gcc does not always find these for the C.) */
#if EREID_DSP_NATIVE
static inline uint32_t ereid_pack_lo16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t ereid_pack_hi16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}
#else
static inline uint32_t ereid_pack_lo16(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
static inline uint32_t ereid_pack_hi16(uint32_t a, uint32_t b) { return (a >> 16) | (b & 0xFFFF0000u); }
#endif

/* 16 * sum of 8 products (x[k] + off) * w[k], x from `a`, w from the nibble word p
 * (nibble k = w[k]), added to sum16. */
static inline int32_t ereid_s4_mac8(const int8_t *a, uint32_t p, uint32_t off2, int32_t sum16)
{
    const uint32_t xa = ereid_read_s8x4(a);
    const uint32_t xb = ereid_read_s8x4(a + 4);
    const uint32_t x0145 = ereid_pack_lo16(xa, xb);  /* bytes x0 x1 x4 x5 */
    const uint32_t x2367 = ereid_pack_hi16(xa, xb);  /* bytes x2 x3 x6 x7 */
    const uint32_t w_even = (p << 4) & 0xF0F0F0F0u; /* 16 * w0, w2, w4, w6 */
    const uint32_t w_odd = p & 0xF0F0F0F0u;         /* 16 * w1, w3, w5, w7 */
    sum16 = ereid_smlad(ereid_sadd16(ereid_sxtb16(x0145), off2), ereid_sxtb16(w_even), sum16);      /* 0, 4 */
    sum16 = ereid_smlad(ereid_sadd16(ereid_sxtb16_ror8(x0145), off2), ereid_sxtb16(w_odd), sum16);  /* 1, 5 */
    sum16 = ereid_smlad(ereid_sadd16(ereid_sxtb16(x2367), off2), ereid_sxtb16_ror8(w_even), sum16); /* 2, 6 */
    sum16 = ereid_smlad(ereid_sadd16(ereid_sxtb16_ror8(x2367), off2), ereid_sxtb16_ror8(w_odd), sum16); /* 3, 7 */
    return sum16;
}

/* 16 * sum over i in [0, n8) (n8 a multiple of 8) of (a[i] + off) * w[start + i]: weights
 * starting on a byte come 8 per aligned-step 32-bit load; starting mid-byte, each load
 * is shifted down a nibble and completed from the next byte (inside the filter). */
static inline int32_t ereid_s4_sum16(const int8_t *a, uint32_t off2, const uint8_t *packed, int32_t start,
                                     int32_t n8)
{
    const uint8_t *wp = packed + (start >> 1);
    int32_t sum16 = 0;
    uint32_t p;
    if ((start & 1) == 0) {
        for (int32_t i = 0; i < n8; i += 8, wp += 4) {
            memcpy(&p, wp, sizeof(p));
            sum16 = ereid_s4_mac8(a + i, p, off2, sum16);
        }
    } else {
        for (int32_t i = 0; i < n8; i += 8, wp += 4) {
            memcpy(&p, wp, sizeof(p));
            sum16 = ereid_s4_mac8(a + i, (p >> 4) | ((uint32_t)wp[4] << 28), off2, sum16);
        }
    }
    return sum16;
}

#endif /* EREID_USE_DSP */

#if EREID_USE_MVE

/* Helium: sum_i (a[i] + a_offset) * w[i], i < n32 (a multiple of 32), w packed from byte
 * `packed`: per 32 elements one VLD2 splits the inputs into even and odd elements, one load
 * of 16 bytes gives the even weights (low nibbles: VSHL #4, VSHR.S8 #4) and the odd ones
 * (high nibbles: VSHR.S8 #4); raw int8 products (VMLADAVA.S8) and the offset times the sum
 * of the weights, mod 2^32 as the reference's int32 sum. */
static inline int32_t ereid_dot_s4_mve(const int8_t *a, int32_t a_offset, const int8_t *packed, int32_t n32)
{
    int32_t dot = 0, weight_sum = 0;
    for (int32_t i = 0; i < n32; i += 32) {
        const int8x16x2_t x = vld2q_s8(a + i);
        const int8x16_t p = vld1q_s8(packed + (i >> 1));
        const int8x16_t w_even = vshrq_n_s8(vshlq_n_s8(p, 4), 4), w_odd = vshrq_n_s8(p, 4);
        dot = vmladavaq_s8(dot, x.val[0], w_even);
        dot = vmladavaq_s8(dot, x.val[1], w_odd);
        weight_sum = vaddvaq_s8(weight_sum, w_even);
        weight_sum = vaddvaq_s8(weight_sum, w_odd);
    }
    return (int32_t)((uint32_t)dot + (uint32_t)a_offset * (uint32_t)weight_sum);
}

/* MultiplyByQuantizedMultiplier(acc + bias, multiplier, shift) + output_offset, clamped, of 4
 * channels (one lane each): VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul and
 * RoundingDivideByPOT is VRSHL(VQADD(x, -[x < 0 and shift < 0]), shift) (round half away from
 * zero), as in ereid_conv_mve_s8.h. */
static inline int32x4_t ereid_s4_mve_requantize(int32x4_t acc, int32x4_t bias, int32x4_t multiplier, int32x4_t shift,
                                                int32_t output_offset, const ereid_activation *act)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t x = vqrdmulhq_s32(vshlq_s32(vaddq_s32(acc, bias), vmaxq_s32(shift, zero)), multiplier);
    const int32x4_t fixup = vandq_s32(vshrq_n_s32(x, 31), vshrq_n_s32(shift, 31)); /* -1: x < 0, shift < 0 */
    const int32x4_t y = vaddq_n_s32(vrshlq_s32(vqaddq_s32(x, fixup), vminq_s32(shift, zero)), output_offset);
    return vminq_s32(vmaxq_s32(y, vdupq_n_s32(act->min)), vdupq_n_s32(act->max));
}

#endif /* EREID_USE_MVE */

/* sum_i (a[i] + a_offset) * w[start + i] added to acc, w packed int4 from element `start`. */
static inline int32_t ereid_dot_s4(const int8_t *a, int32_t a_offset, const int8_t *packed, int32_t start,
                                   int32_t n, int32_t acc)
{
#if EREID_USE_MVE
    if ((start & 1) == 0 && n >= 32) {
        const int32_t n32 = n & ~31;
        acc = (int32_t)((uint32_t)acc + (uint32_t)ereid_dot_s4_mve(a, a_offset, packed + (start >> 1), n32));
        a += n32;
        start += n32;
        n -= n32;
    }
#endif
#if EREID_USE_DSP
    const uint32_t off2 = ereid_dup16(a_offset);
    int32_t i = 0;
    while (n - i >= 8) {
        const int32_t n8 = (n - i > EREID_S4_CHUNK ? EREID_S4_CHUNK : n - i) & ~7;
        acc += ereid_s4_sum16(a + i, off2, (const uint8_t *)packed, start + i, n8) / 16; /* exact */
        i += n8;
    }
    return ereid_dot_s4_portable(a + i, a_offset, packed, start + i, n - i, acc);
#else
    return ereid_dot_s4_portable(a, a_offset, packed, start, n, acc);
#endif
}

#endif /* EREID_NN_S4_H */

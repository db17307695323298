/*
 * The few ARMv7E-M DSP instructions the int8 inner loops use.
 *
 * EREID_USE_DSP is 1 when the SIMD path is compiled in:
 *   - on Arm with __ARM_FEATURE_DSP: the real instructions (inline asm, so no
 *     dependence on which ACLE intrinsics a toolchain ships);
 *   - anywhere with EREID_EMULATE_DSP defined: portable C that computes exactly
 *     what each instruction computes (including wrap-around), so the DSP path
 *     can be tested on a host under sanitizers.
 * Otherwise, or whenever EREID_NO_DSP is defined (to measure the portable loops
 * on a DSP-capable core), EREID_USE_DSP is 0 and kernels use their portable loops.
 */
#ifndef EREID_DSP_H
#define EREID_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(EREID_NO_DSP)
#define EREID_USE_DSP 0
#define EREID_DSP_NATIVE 0
#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1) && !defined(EREID_EMULATE_DSP)
#define EREID_USE_DSP 1
#define EREID_DSP_NATIVE 1
#elif defined(EREID_EMULATE_DSP)
#define EREID_USE_DSP 1
#define EREID_DSP_NATIVE 0
#else
#define EREID_USE_DSP 0
#define EREID_DSP_NATIVE 0
#endif

#if EREID_USE_DSP

/* Unaligned 32-bit load of four int8 (LDR handles unaligned on v7E-M; memcpy
 * lets the compiler emit it without breaking strict aliasing). */
static inline uint32_t ereid_read_s8x4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

#if EREID_DSP_NATIVE

/* SXTB16: sign-extend bytes 0 and 2 into two halfwords. */
static inline uint32_t ereid_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

/* SXTB16 of x rotated right by 8: bytes 1 and 3. */
static inline uint32_t ereid_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* SADD16: two independent 16-bit adds (wrapping). */
static inline uint32_t ereid_sadd16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* SMLAD: acc + lo(a)*lo(b) + hi(a)*hi(b), 32-bit wrapping. */
static inline int32_t ereid_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* SMLABB / SMLATT: one 16x16 product of the bottom (top) halves, accumulated. */
static inline int32_t ereid_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

static inline int32_t ereid_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* SXTAB16: a + SXTB16(x), two independent 16-bit adds (wrapping). */
static inline uint32_t ereid_sxtab16(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* SXTAB16 of x rotated right by 8: a + bytes 1 and 3. */
static inline uint32_t ereid_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* SMMULR: the high word of a*b, rounded (+2^31 before the shift). */
static inline int32_t ereid_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else /* emulation */

static inline uint32_t ereid_ror(uint32_t x, uint32_t r)
{
    return (x >> r) | (x << ((32u - r) & 31u));
}

static inline int16_t ereid_lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int16_t ereid_hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }

static inline uint32_t ereid_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)(uint16_t)lo) | ((uint32_t)(uint16_t)hi << 16);
}

static inline uint32_t ereid_sxtb16(uint32_t x)
{
    return ereid_pack16((int8_t)(uint8_t)(x & 0xFFu), (int8_t)(uint8_t)((x >> 16) & 0xFFu));
}

static inline uint32_t ereid_sxtb16_ror8(uint32_t x)
{
    return ereid_sxtb16(ereid_ror(x, 8));
}

static inline uint32_t ereid_sadd16(uint32_t a, uint32_t b)
{
    return ereid_pack16(ereid_lo16(a) + ereid_lo16(b), ereid_hi16(a) + ereid_hi16(b));
}

static inline int32_t ereid_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    const uint32_t p0 = (uint32_t)((int32_t)ereid_lo16(a) * ereid_lo16(b));
    const uint32_t p1 = (uint32_t)((int32_t)ereid_hi16(a) * ereid_hi16(b));
    return (int32_t)((uint32_t)acc + p0 + p1);
}

static inline int32_t ereid_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)ereid_lo16(a) * ereid_lo16(b)));
}

static inline int32_t ereid_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)ereid_hi16(a) * ereid_hi16(b)));
}

static inline uint32_t ereid_sxtab16(uint32_t a, uint32_t x)
{
    return ereid_sadd16(a, ereid_sxtb16(x));
}

static inline uint32_t ereid_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return ereid_sadd16(a, ereid_sxtb16_ror8(x));
}

static inline int32_t ereid_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}

#endif /* EREID_DSP_NATIVE */

/* Both halfwords set to v (for adding an input offset with SADD16). */
static inline uint32_t ereid_dup16(int32_t v)
{
    return ((uint32_t)(uint16_t)v) | ((uint32_t)(uint16_t)v << 16);
}

/* Dot product of n int8 pairs with (a + a_offset), accumulating into acc.
 * a_offset is in [-255, 255] so each offset lane fits int16 (|a+off| <= 383).
 * Pairs are summed in a different order than the scalar loop, but integer
 * addition is exact, so the result is identical. */
static inline int32_t ereid_dot_s8_offset(const int8_t *a, const int8_t *b, int32_t n,
                                          uint32_t a_offset_x2, int32_t a_offset, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t va = ereid_read_s8x4(a + i);
        const uint32_t vb = ereid_read_s8x4(b + i);
        const uint32_t a_even = ereid_sadd16(ereid_sxtb16(va), a_offset_x2);
        const uint32_t a_odd = ereid_sadd16(ereid_sxtb16_ror8(va), a_offset_x2);
        acc = ereid_smlad(a_even, ereid_sxtb16(vb), acc);
        acc = ereid_smlad(a_odd, ereid_sxtb16_ror8(vb), acc);
    }
    for (; i < n; i++) {
        acc += ((int32_t)a[i] + a_offset) * (int32_t)b[i];
    }
    return acc;
}

/* Same with an offset on both operands: (a + a_offset) * (b + b_offset),
 * offsets in [-255, 255] (FULLY_CONNECTED with a non-zero weight zero point). */
static inline int32_t ereid_dot_s8_offsets(const int8_t *a, const int8_t *b, int32_t n,
                                           int32_t a_offset, int32_t b_offset, int32_t acc)
{
    const uint32_t a_offset_x2 = ereid_dup16(a_offset);
    const uint32_t b_offset_x2 = ereid_dup16(b_offset);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t va = ereid_read_s8x4(a + i);
        const uint32_t vb = ereid_read_s8x4(b + i);
        const uint32_t a_even = ereid_sadd16(ereid_sxtb16(va), a_offset_x2);
        const uint32_t a_odd = ereid_sadd16(ereid_sxtb16_ror8(va), a_offset_x2);
        const uint32_t b_even = ereid_sadd16(ereid_sxtb16(vb), b_offset_x2);
        const uint32_t b_odd = ereid_sadd16(ereid_sxtb16_ror8(vb), b_offset_x2);
        acc = ereid_smlad(a_even, b_even, acc);
        acc = ereid_smlad(a_odd, b_odd, acc);
    }
    for (; i < n; i++) {
        acc += ((int32_t)a[i] + a_offset) * ((int32_t)b[i] + b_offset);
    }
    return acc;
}

/* Depthwise step for 4 adjacent channels: acc[k] += (a[k] + a_offset) * b[k].
 * SMLABB/SMLATT keep each channel in its own accumulator. */
static inline void ereid_mac4_s8_offset(const int8_t *a, const int8_t *b,
                                        uint32_t a_offset_x2, int32_t acc[4])
{
    const uint32_t va = ereid_read_s8x4(a);
    const uint32_t vb = ereid_read_s8x4(b);
    const uint32_t a_even = ereid_sadd16(ereid_sxtb16(va), a_offset_x2); /* channels 0, 2 */
    const uint32_t a_odd = ereid_sadd16(ereid_sxtb16_ror8(va), a_offset_x2); /* channels 1, 3 */
    const uint32_t b_even = ereid_sxtb16(vb);
    const uint32_t b_odd = ereid_sxtb16_ror8(vb);
    acc[0] = ereid_smlabb(a_even, b_even, acc[0]);
    acc[2] = ereid_smlatt(a_even, b_even, acc[2]);
    acc[1] = ereid_smlabb(a_odd, b_odd, acc[1]);
    acc[3] = ereid_smlatt(a_odd, b_odd, acc[3]);
}

#endif /* EREID_USE_DSP */

#endif /* EREID_DSP_H */

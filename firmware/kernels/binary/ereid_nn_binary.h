/*
 * Internal helpers of the binary (1-bit) kernels: Larq Compute Engine's bitpacked format
 * (ereid_nn_types.h), the XOR-popcount accumulation, LceBconv2d's argument checks, the
 * conditions under which a specialised binary convolution applies (tested by the kernel
 * and by ereid_bconv2d_wrapper_b1 alike, mirrored in edgereid/firmware/kernel_registry.py)
 * and its output stage (float, int8 or bitpacked).
 *
 * Paths, chosen at compile time:
 *   - portable C: SWAR popcounts (2-bit, 4-bit fields), several words summed per nibble
 *     or byte before one horizontal add;
 *   - Cortex-M4/M7/M33 (__ARM_FEATURE_DSP, no EREID_NO_DSP): the same SWAR steps, the
 *     horizontal add of four byte counts by USADA8 (one instruction);
 *   - Cortex-M4/M7 3x3 convolutions with one word per pixel: the nine words of an output
 *     channel counted in 71 instructions of Thumb-2 (ereid_bin_pop9_asm);
 *   - Cortex-M55 (__ARM_FEATURE_MVE & 1): Helium, four output channels per vector
 *     (ereid_bconv2d_3x3_b1.c).
 * EREID_NO_DSP (build_firmware(..., dsp=False)) compiles the portable C everywhere, so both
 * paths can be run and compared on one core; EREID_NO_MVE drops only the Helium path.
 * Integer addition is exact and the float output transform is the same two rounded
 * operations on every path, so every path writes the same bytes.
 */
#ifndef EREID_NN_BINARY_H
#define EREID_NN_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include "ereid_nn_types.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1) && !defined(EREID_NO_DSP)
#define EREID_BIN_USADA8 1
#endif
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(EREID_NO_MVE) && !defined(EREID_NO_DSP)
#define EREID_BIN_MVE 1
#include <arm_mve.h>
#endif

#define EREID_BIN_M1 0x55555555u
#define EREID_BIN_M2 0x33333333u
#define EREID_BIN_M4 0x0F0F0F0Fu

/* Words of a bitpacked row of `channels` channels. */
static inline int32_t ereid_bin_words(int32_t channels)
{
    return (channels + 31) / 32;
}

/* ---- popcount ---------------------------------------------------------------- */

/* Per nibble, the number of set bits of x (0..4). */
static inline uint32_t ereid_bin_nibbles(uint32_t x)
{
    x = x - ((x >> 1) & EREID_BIN_M1);
    return (x & EREID_BIN_M2) + ((x >> 2) & EREID_BIN_M2);
}

/* Per byte, the sum of the two nibbles of n (each <= 15). */
static inline uint32_t ereid_bin_bytes(uint32_t n)
{
    return (n & EREID_BIN_M4) + ((n >> 4) & EREID_BIN_M4);
}

/* The sum of the four bytes of b (each up to 255), added to acc. */
static inline uint32_t ereid_bin_hsum(uint32_t acc, uint32_t b)
{
#if defined(EREID_BIN_USADA8)
    uint32_t r;
    __asm__("usada8 %0, %1, %2, %3" : "=r"(r) : "r"(b), "r"(0u), "r"(acc));
    return r;
#else
    /* two halfword sums (<= 510), then their sum in the top half of one multiply */
    const uint32_t h = (b & 0x00FF00FFu) + ((b >> 8) & 0x00FF00FFu);
    return acc + ((h * 0x00010001u) >> 16);
#endif
}

static inline uint32_t ereid_bin_popcount(uint32_t x)
{
    return ereid_bin_hsum(0u, ereid_bin_bytes(ereid_bin_nibbles(x)));
}

/* Keep a constant in a register the compiler cannot see into: on Arm, an AND with a
 * register mask takes a shifted operand (one instruction for (x >> k) & m) and a
 * multiply-subtract takes a register multiplier (x - 3 * t in one MLS). */
#if defined(__GNUC__) && defined(__arm__)
#define EREID_BIN_OPAQUE(x) __asm__("" : "+r"(x))
#else
#define EREID_BIN_OPAQUE(x) ((void)0)
#endif

/* ereid_bin_nibbles with the masks and the 3 in registers: per nibble 4hi + lo - 3hi. */
static inline uint32_t ereid_bin_nibbles_r(uint32_t x, uint32_t m1, uint32_t m2, uint32_t three)
{
    x = x - ((x >> 1) & m1);
    return x - three * ((x >> 2) & m2);
}

/* popcount(x[k] ^ f[k]) over nine words, in Thumb-2 with DSP (M4, M7, M33, M55): three
 * groups of three words, each loaded by two LDMs, XORed, reduced to nibble counts (the
 * 2-bit step per word, then S - 3T for the three words at once), to byte counts, summed,
 * and the four bytes added by USAD8. x is advanced by 36 and restored; f is advanced by
 * 36 (to the next output channel's filter). 71 instructions. */
#if defined(EREID_BIN_USADA8) && defined(__thumb2__)
#define EREID_BIN_POP9_ASM 1
#define EREID_BIN_POP9_GROUP(last)                                                                            \
    "ldmia %[f]!, {r4, r5, r6}\n\t"                                                                           \
    "ldmia %[x]!, {r8, r9, r10}\n\t"                                                                          \
    "eor r4, r4, r8\n\t"                                                                                      \
    "eor r5, r5, r9\n\t"                                                                                      \
    "eor r6, r6, r10\n\t"                                                                                     \
    "and r8, %[m1], r4, lsr #1\n\t"                                                                           \
    "and r9, %[m1], r5, lsr #1\n\t"                                                                           \
    "and r10, %[m1], r6, lsr #1\n\t"                                                                          \
    "sub r4, r4, r8\n\t"                                                                                      \
    "sub r5, r5, r9\n\t"                                                                                      \
    "sub r6, r6, r10\n\t"                                                                                     \
    "add r8, r4, r5\n\t"                                                                                      \
    "add r8, r8, r6\n\t"                                                                                      \
    "and r4, %[m2], r4, lsr #2\n\t"                                                                           \
    "and r5, %[m2], r5, lsr #2\n\t"                                                                           \
    "and r6, %[m2], r6, lsr #2\n\t"                                                                           \
    "add r4, r4, r5\n\t"                                                                                      \
    "add r4, r4, r6\n\t"                                                                                      \
    "mls r8, %[three], r4, r8\n\t"                                                                            \
    "and r4, r8, #0xF0F0F0F0\n\t"                                                                             \
    "and r8, r8, #0x0F0F0F0F\n\t"                                                                             \
    last

static inline uint32_t ereid_bin_pop9_asm(const uint32_t **x, const int32_t **f, uint32_t m1, uint32_t m2,
                                          uint32_t three)
{
    uint32_t acc;
    const uint32_t *xp = *x;
    const int32_t *fp = *f;
    __asm__(EREID_BIN_POP9_GROUP("add %[acc], r8, r4, lsr #4\n\t")
            EREID_BIN_POP9_GROUP("add %[acc], %[acc], r8\n\tadd %[acc], %[acc], r4, lsr #4\n\t")
            EREID_BIN_POP9_GROUP("add %[acc], %[acc], r8\n\tadd %[acc], %[acc], r4, lsr #4\n\t")
            "movs r4, #0\n\t"
            "usad8 %[acc], %[acc], r4\n\t"
            "sub %[x], %[x], #36\n\t"
            : [acc] "=&r"(acc), [x] "+r"(xp), [f] "+r"(fp)
            : [m1] "r"(m1), [m2] "r"(m2), [three] "r"(three)
            : "r4", "r5", "r6", "r8", "r9", "r10", "cc", "memory");
    *x = xp;
    *f = fp;
    return acc;
}
#endif

/* popcount(a[i] ^ b[i]) summed over n words. Three words share a nibble sum (<= 12 per
 * nibble, <= 24 per byte once the nibbles are added), up to 10 such sums a byte sum
 * (<= 240) before the horizontal add. On Arm the masks and
 * the multipliers stay in registers (ereid_bin_nibbles_r); with Helium, four words per
 * vector: groups of three vectors without predication, then predicated loads for the
 * tail (inactive lanes read 0). A Harley-Seal carry-save tree over four or eight vectors
 * was measured slower on the BiRe-ID layers (its closing popcounts and register spills
 * cost more than it saves on runs under about 100 words). */
#if defined(EREID_BIN_MVE)
/* Helium: inlined into each caller's channel loop (the call's vector-register saves and mask
 * set-up cost about 15 instructions per output channel). */
#define EREID_BIN_POPCOUNT_INLINE __attribute__((always_inline))
#else
#define EREID_BIN_POPCOUNT_INLINE
#endif
static inline EREID_BIN_POPCOUNT_INLINE uint32_t ereid_bin_xor_popcount(const int32_t *a, const int32_t *b, int32_t n)
{
#if defined(EREID_BIN_MVE)
    const uint32x4_t m1 = vdupq_n_u32(EREID_BIN_M1), m2 = vdupq_n_u32(EREID_BIN_M2), m4 = vdupq_n_u32(EREID_BIN_M4);
    uint32_t total = 0;
    /* Whole groups of three vectors without predication (a predicated load costs the VPT
     * set-up on every vector). */
    for (; n >= 12; n -= 12, a += 12, b += 12) {
        uint32x4_t x0 = veorq_u32(vld1q_u32((const uint32_t *)a), vld1q_u32((const uint32_t *)b));
        uint32x4_t x1 = veorq_u32(vld1q_u32((const uint32_t *)a + 4), vld1q_u32((const uint32_t *)b + 4));
        uint32x4_t x2 = veorq_u32(vld1q_u32((const uint32_t *)a + 8), vld1q_u32((const uint32_t *)b + 8));
        x0 = vsubq_u32(x0, vandq_u32(vshrq_n_u32(x0, 1), m1));
        x1 = vsubq_u32(x1, vandq_u32(vshrq_n_u32(x1, 1), m1));
        x2 = vsubq_u32(x2, vandq_u32(vshrq_n_u32(x2, 1), m1));
        x0 = vaddq_u32(vandq_u32(x0, m2), vandq_u32(vshrq_n_u32(x0, 2), m2));
        x1 = vaddq_u32(vandq_u32(x1, m2), vandq_u32(vshrq_n_u32(x1, 2), m2));
        x2 = vaddq_u32(vandq_u32(x2, m2), vandq_u32(vshrq_n_u32(x2, 2), m2));
        x0 = vaddq_u32(vaddq_u32(x0, x1), x2); /* nibble counts <= 12 */
        x0 = vaddq_u32(vandq_u32(x0, m4), vandq_u32(vshrq_n_u32(x0, 4), m4));
        total = vaddvaq_u8(total, vreinterpretq_u8_u32(x0));
    }
    if (n > 0) { /* at most 11 words: three vectors, only a partial last one predicated */
        uint32x4_t s = vdupq_n_u32(0u);
        for (; n > 0; a += 4, b += 4, n -= 4) {
            uint32x4_t x;
            if (n >= 4) {
                x = veorq_u32(vld1q_u32((const uint32_t *)a), vld1q_u32((const uint32_t *)b));
            } else {
                const mve_pred16_t p = vctp32q((uint32_t)n);
                x = veorq_u32(vldrwq_z_u32((const uint32_t *)a, p), vldrwq_z_u32((const uint32_t *)b, p));
            }
            x = vsubq_u32(x, vandq_u32(vshrq_n_u32(x, 1), m1));
            s = vaddq_u32(s, vaddq_u32(vandq_u32(x, m2), vandq_u32(vshrq_n_u32(x, 2), m2)));
        }
        s = vaddq_u32(vandq_u32(s, m4), vandq_u32(vshrq_n_u32(s, 4), m4));
        total = vaddvaq_u8(total, vreinterpretq_u8_u32(s));
    }
    return total;
#else
    const uint32_t *pa = (const uint32_t *)a, *pb = (const uint32_t *)b;
    uint32_t m1 = EREID_BIN_M1, m2 = EREID_BIN_M2, three = 3u;
    EREID_BIN_OPAQUE(m1);
    EREID_BIN_OPAQUE(m2);
    EREID_BIN_OPAQUE(three);
    uint32_t total = 0;
#if defined(EREID_BIN_POP9_ASM)
    /* Thumb-2 with DSP: the three-word groups of ereid_bin_pop9_asm, byte counts summed over
     * up to 10 groups, then USADA8. */
    while (n >= 3) {
        int32_t groups = n / 3 < 10 ? n / 3 : 10;
        uint32_t bytes = 0;
        n -= 3 * groups;
        do {
            __asm__(EREID_BIN_POP9_GROUP("add %[acc], %[acc], r8\n\tadd %[acc], %[acc], r4, lsr #4\n\t")
                    : [acc] "+r"(bytes), [x] "+r"(pa), [f] "+r"(pb)
                    : [m1] "r"(m1), [m2] "r"(m2), [three] "r"(three)
                    : "r4", "r5", "r6", "r8", "r9", "r10", "cc", "memory");
        } while (--groups > 0);
        total = ereid_bin_hsum(total, bytes);
    }
#endif
    while (n >= 3) {
        uint32_t bytes = 0;
        int32_t groups = 0;
        while (n >= 3 && groups < 10) {
            const uint32_t s = ereid_bin_nibbles_r(pa[0] ^ pb[0], m1, m2, three) +
                               ereid_bin_nibbles_r(pa[1] ^ pb[1], m1, m2, three) +
                               ereid_bin_nibbles_r(pa[2] ^ pb[2], m1, m2, three);
            bytes += ereid_bin_bytes(s);
            pa += 3;
            pb += 3;
            n -= 3;
            groups++;
        }
        total = ereid_bin_hsum(total, bytes);
    }
    if (n > 0) {
        uint32_t s = ereid_bin_nibbles_r(pa[0] ^ pb[0], m1, m2, three);
        if (n > 1) {
            s += ereid_bin_nibbles_r(pa[1] ^ pb[1], m1, m2, three);
        }
        total = ereid_bin_hsum(total, ereid_bin_bytes(s));
    }
    return total;
#endif
}

/* popcount(runs[r][i] ^ f[r * len + i]) summed over nruns runs of len words each (the
 * filter contiguous across runs: a kernel row's or a tap's words, OHWI). A NULL run is
 * skipped (its filter words too). Nibble and byte sums carry across runs, one horizontal
 * add per 30 words. */
static inline uint32_t ereid_bin_xor_popcount_runs(const int32_t *const *runs, int32_t nruns, const int32_t *f,
                                                   int32_t len)
{
#if defined(EREID_BIN_MVE)
    uint32_t total = 0;
    for (int32_t r = 0; r < nruns; r++, f += len) {
        if (runs[r] != NULL) {
            total += ereid_bin_xor_popcount(runs[r], f, len);
        }
    }
    return total;
#else
    uint32_t m1 = EREID_BIN_M1, m2 = EREID_BIN_M2, three = 3u;
    EREID_BIN_OPAQUE(m1);
    EREID_BIN_OPAQUE(m2);
    EREID_BIN_OPAQUE(three);
    uint32_t total = 0, bytes = 0, nib = 0;
    int32_t in_nib = 0, in_bytes = 0;  /* words in nib (<= 3), nibble sums in bytes (<= 21) */
    for (int32_t r = 0; r < nruns; r++, f += len) {
        const uint32_t *pa = (const uint32_t *)runs[r];
        if (pa == NULL) {
            continue;
        }
        const uint32_t *pb = (const uint32_t *)f;
        for (int32_t i = 0; i < len; i++) {
            nib += ereid_bin_nibbles_r(pa[i] ^ pb[i], m1, m2, three);
            if (++in_nib == 3) {
                bytes += ereid_bin_bytes(nib);
                nib = 0;
                in_nib = 0;
                if (++in_bytes == 10) {
                    total = ereid_bin_hsum(total, bytes);
                    bytes = 0;
                    in_bytes = 0;
                }
            }
        }
    }
    return ereid_bin_hsum(total, bytes + ereid_bin_bytes(nib)); /* bytes <= 9 * 24 + 24 */
#endif
}

/* Words of zeros: the input of an out-of-image tap with pad_value 1 (+1 everywhere), for
 * taps of at most this many words. */
#define EREID_BIN_ZERO_WORDS 64
extern const int32_t ereid_bin_zero_words[EREID_BIN_ZERO_WORDS];

/* popcount(b[i]) summed over n words (an out-of-image tap with pad_value 1). */
static inline uint32_t ereid_bin_popcount_run(const int32_t *b, int32_t n)
{
    uint32_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        total += ereid_bin_popcount((uint32_t)b[i]);
    }
    return total;
}

/* ---- LceBconv2d ---------------------------------------------------------------- */

/* Largest filter extent (KH * KW * channels per group) a kernel accepts: 2a stays well
 * inside int32 and in float's exact integer range (2^24). */
#define EREID_BCONV_MAX_DEPTH (1 << 22)

/* Channel block of the kernels' accumulators (one output word when bitpacked). */
#define EREID_BCONV_BLOCK 32

/* A 1x1 filter with groups 1 (no padding: SAME pads a 1x1 filter by 0). */
#define EREID_BCONV_1X1_APPLIES(p, f_d)                                                                       \
    ((f_d)->h == 1 && (f_d)->w == 1 && (p)->groups == 1 && (p)->padding.h == 0 && (p)->padding.w == 0)

/* A 3x3 filter, dilation 1, groups 1. */
#define EREID_BCONV_3X3_APPLIES(p, f_d)                                                                       \
    ((f_d)->h == 3 && (f_d)->w == 3 && (p)->dilation.h == 1 && (p)->dilation.w == 1 && (p)->groups == 1)

/* Everything every LceBconv2d kernel checks before it reads anything. input_dims.c and
 * filter_dims.c count words; output_dims.c counts output channels (unpacked). */
static inline int ereid_bconv_args_valid(const ereid_bconv_params *p, const ereid_bconv_transform *transform,
                                         const int32_t *threshold, const ereid_dims *in_d, const int32_t *input,
                                         const ereid_dims *f_d, const int32_t *filter, const ereid_dims *out_d,
                                         const void *output)
{
    if (p == NULL || in_d == NULL || f_d == NULL || out_d == NULL || input == NULL || filter == NULL ||
        output == NULL) {
        return 0;
    }
    if (in_d->n <= 0 || in_d->h <= 0 || in_d->w <= 0 || in_d->c <= 0 || f_d->n <= 0 || f_d->h <= 0 ||
        f_d->w <= 0 || f_d->c <= 0 || out_d->n != in_d->n || out_d->h <= 0 || out_d->w <= 0 ||
        out_d->c != f_d->n) {
        return 0;
    }
    if (p->channels_in <= 0 || p->groups <= 0 || ereid_bin_words(p->channels_in) != in_d->c ||
        f_d->c * p->groups != in_d->c || out_d->c % p->groups != 0) {
        return 0;
    }
    if (p->groups > 1 && (p->channels_in % p->groups != 0 || (p->channels_in / p->groups) % 32 != 0)) {
        return 0;
    }
    if (p->stride.h <= 0 || p->stride.w <= 0 || p->dilation.h <= 0 || p->dilation.w <= 0 || p->padding.h < 0 ||
        p->padding.w < 0 || (p->pad_value != 0 && p->pad_value != 1)) {
        return 0;
    }
    if ((int64_t)f_d->h * f_d->w * (p->channels_in / p->groups) > EREID_BCONV_MAX_DEPTH) {
        return 0;
    }
    switch (p->output_type) {
    case EREID_BCONV_OUT_F32:
    case EREID_BCONV_OUT_S8:
        return transform != NULL && p->clamp_min <= p->clamp_max;
    case EREID_BCONV_OUT_B1:
        return threshold != NULL;
    default:
        return 0;
    }
}

/* int8 of y as LCE's int8 output transform: round half away from zero, saturate. y is
 * finite or +-inf (never NaN: the transform's constants are finite). Inside (-128, 127),
 * n = trunc(2y) is exact and round_half_away(y) = (n + 1) >> 1 for n >= 0, -((1 - n) >> 1)
 * below. */
static inline int8_t ereid_bconv_round_s8(float y)
{
    if (!(y < 127.0f)) {
        return 127;
    }
    if (!(y > -128.0f)) {
        return -128;
    }
    const int32_t n = (int32_t)(y + y);
    return (int8_t)(n >= 0 ? (n + 1) >> 1 : -((1 - n) >> 1));
}

/* The output stage of `count` consecutive output channels from `first` of one pixel:
 * accumulators acc[0..count) in, out_px = the pixel's output (channels_out values, or
 * ceil(channels_out / 32) words when bitpacked). A bitpacked block starts at a multiple
 * of 32 and holds at most 32 channels: it writes one whole word. */
static inline void ereid_bconv_store(const ereid_bconv_params *p, const ereid_bconv_transform *transform,
                                     const int32_t *threshold, const int32_t *acc, int32_t first, int32_t count,
                                     void *out_px)
{
    if (p->output_type == EREID_BCONV_OUT_B1) {
        uint32_t word = 0;
        for (int32_t i = 0; i < count; i++) {
            word |= (uint32_t)(acc[i] > threshold[first + i]) << i;
        }
        ((int32_t *)out_px)[first / 32] = (int32_t)word;
        return;
    }
    const int32_t lo = p->clamp_min, hi = p->clamp_max;
    const ereid_bconv_transform *t = transform + first;
    int32_t i0 = 0;
#if defined(EREID_BIN_MVE)
    /* Four channels per vector, as ereid_bconv2d_3x3_b1's Helium path (no FMA: VMUL then VADD;
     * VRINTA is round half away); float output whose results may be denormal stays scalar. */
    if (p->output_type == EREID_BCONV_OUT_S8 || !p->flush_denormals) {
        const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
        for (; i0 + 4 <= count; i0 += 4) {
            const int32x4_t xx = vmaxq_s32(vminq_s32(vshlq_n_s32(vldrwq_s32(acc + i0), 1), vhi), vlo);
            const float32x4x2_t mb = vld2q_f32(&t[i0].multiplier);
            const float32x4_t y = vaddq_f32(vmulq_f32(vcvtq_f32_s32(xx), mb.val[0]), mb.val[1]);
            if (p->output_type == EREID_BCONV_OUT_F32) {
                vstrwq_f32((float *)out_px + first + i0, y);
            } else {
                const int32x4_t q = vcvtq_s32_f32(vrndaq_f32(y));
                vstrbq_s32((int8_t *)out_px + first + i0, vmaxq_s32(vminq_s32(q, vdupq_n_s32(127)), vdupq_n_s32(-128)));
            }
        }
    }
#endif
    if (p->output_type == EREID_BCONV_OUT_F32) {
        float *out = (float *)out_px + first;
        for (int32_t i = i0; i < count; i++) {
            int32_t x = acc[i] * 2;
            x = x < lo ? lo : (x > hi ? hi : x);
            const float prod = (float)x * t[i].multiplier;
            float y = prod + t[i].bias;
            if (p->flush_denormals && y != 0.0f && y < 1.17549435e-38f && y > -1.17549435e-38f) {
                y = y * 0.0f; /* a zero with y's sign, as a flush-to-zero FPU gives */
            }
            out[i] = y;
        }
    } else {
        int8_t *out = (int8_t *)out_px + first;
        for (int32_t i = i0; i < count; i++) {
            int32_t x = acc[i] * 2;
            x = x < lo ? lo : (x > hi ? hi : x);
            const float prod = (float)x * t[i].multiplier;
            const float y = prod + t[i].bias;
            out[i] = ereid_bconv_round_s8(y);
        }
    }
}

/* Geometry of one LceBconv2d call, shared by its kernels. */
typedef struct {
    const int32_t *input;      /* batch 0 */
    const int32_t *filter;
    int32_t in_h, in_w, in_words;
    int32_t k_h, k_w, f_words; /* filter taps, words per tap (= words per group) */
    int32_t tap_words;         /* k_h * k_w * f_words: one output channel's filter */
    int32_t out_c, out_c_per_group, out_words_per_px; /* out_words_per_px: values or words per pixel */
    int32_t zero_count;        /* pad_value 0: added per out-of-image tap */
} ereid_bconv_geom;

static inline void ereid_bconv_geom_init(ereid_bconv_geom *g, const ereid_bconv_params *p, const ereid_dims *in_d,
                                         const int32_t *input, const ereid_dims *f_d, const int32_t *filter,
                                         const ereid_dims *out_d)
{
    g->input = input;
    g->filter = filter;
    g->in_h = in_d->h;
    g->in_w = in_d->w;
    g->in_words = in_d->c;
    g->k_h = f_d->h;
    g->k_w = f_d->w;
    g->f_words = f_d->c;
    g->tap_words = f_d->h * f_d->w * f_d->c;
    g->out_c = out_d->c;
    g->out_c_per_group = out_d->c / p->groups;
    g->out_words_per_px = p->output_type == EREID_BCONV_OUT_B1 ? ereid_bin_words(out_d->c) : out_d->c;
    g->zero_count = (p->channels_in / p->groups) / 2;
}

/* Accumulators of output channels [first, first + count) at output pixel (b, oy, ox), any
 * geometry: every tap checked against the image (ereid_bconv2d_b1.c). */
void ereid_bconv2d_pixel_b1(const ereid_bconv_params *p, const ereid_bconv_geom *g, int32_t b, int32_t oy,
                            int32_t ox, int32_t first, int32_t count, int32_t *acc);

/* Output pixel (b, oy, ox) written whole by the generic path (every block of channels). */
void ereid_bconv2d_pixel_out_b1(const ereid_bconv_params *p, const ereid_bconv_geom *g,
                                const ereid_bconv_transform *transform, const int32_t *threshold, int32_t b,
                                int32_t oy, int32_t ox, void *output);

/* Byte size of one output value or word. */
static inline int32_t ereid_bconv_out_elem_bytes(int32_t output_type)
{
    return output_type == EREID_BCONV_OUT_S8 ? 1 : 4;
}

#endif /* EREID_NN_BINARY_H */

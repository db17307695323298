/*
 * The im2col path of the int8 CONV_2D kernels on cores with the DSP extension (and its
 * host emulation, EREID_EMULATE_DSP), in the manner of CMSIS-NN's arm_convolve_s8:
 *
 *   - two output pixels at a time, each pixel's receptive field (K = kh*kw*C values) is
 *     gathered into an int8 column and widened to int16 with the input offset already
 *     added (SXTAB16), once, then reused by every output channel;
 *   - the inner loop computes 2 output channels x 2 pixels (4 accumulators): per 4 taps
 *     one LDM of both pixels' int16 words, one LDR + two SXTB16 per channel, 8 SMLAD
 *     (hand-scheduled asm on Arm, the same steps in C under EREID_EMULATE_DSP).
 *     SXTB16 splits 4 weights into (w0,w2),(w1,w3), so the columns are stored in that
 *     order, which is also the order SXTAB16 produces them in (no repacking);
 *   - requantization as MultiplyByQuantizedMultiplier, double rounding: with SMMULR
 *     where the layer's bounds make it exact (ereid_conv_fast_requant_ok), clamped four
 *     bytes at a time (SSUB8/SEL); otherwise the general form.
 *
 * Padding taps hold (zero point + input offset) = 0, so they add nothing, as in the
 * reference. Integer addition is exact, so the reordered sums equal the scalar ones.
 *
 * Scratch (ereid_conv_im2col_scratch_bytes), from the 4-byte-aligned start of ctx->buf:
 *   [int16 columns: 4*K4 bytes][int8 gather column: K4 bytes][ereid_conv_pair_requant
 *   per channel pair], K4 = K rounded up to 4. Group g (taps 4g..4g+3) of both pixels is
 * 16 bytes: pixel A's two words, then pixel B's; the K % 4 tail taps follow in natural
 * order (A's 4 slots, then B's). The Helium path (ereid_conv_mve_s8.h) lays out the same
 * scratch its own way (its header says how); the size covers both.
 */
#ifndef EREID_CONV_IM2COL_S8_H
#define EREID_CONV_IM2COL_S8_H

#include <stdint.h>
#include <string.h>

#include "ereid_nn_support.h"

/* Bytes of scratch the im2col path needs (0 when the size does not fit int32, which
 * turns the path off). Mirrored by kernel_registry.conv_im2col_buffer_size. */
static inline int32_t ereid_conv_im2col_scratch_bytes(const ereid_dims *filter_dims, const ereid_dims *output_dims)
{
    const int64_t k = (int64_t)filter_dims->h * filter_dims->w * filter_dims->c;
    const int64_t k4 = (k + 3) / 4 * 4;
    const int64_t bytes = 5 * k4 + 24 * (int64_t)output_dims->c + 96;
    return bytes > INT32_MAX ? 0 : (int32_t)bytes;
}

/* The im2col path runs when the build has it, the caller gave the scratch, and the
 * zero point (-input_offset) is an int8 value (padding taps are filled with it). */
static inline int ereid_conv_im2col_usable(const ereid_context *ctx, const ereid_conv_params *p,
                                           const ereid_dims *filter_dims, const ereid_dims *output_dims)
{
#if EREID_USE_DSP
    const int32_t need = ereid_conv_im2col_scratch_bytes(filter_dims, output_dims);
    return ctx != NULL && ctx->buf != NULL && need > 0 && ctx->size >= need && p->input_offset >= -127 &&
           p->input_offset <= 128;
#else
    (void)ctx;
    (void)p;
    (void)filter_dims;
    (void)output_dims;
    return 0;
#endif
}

/* The per-tile steps must inline into the channel loop: out of line, acc[] goes through
 * memory and every call saves and restores 9 registers (gcc's size heuristics decline
 * to inline them at -O2). */
#if defined(__GNUC__)
#define EREID_CONV_INLINE static inline __attribute__((always_inline))
#else
#define EREID_CONV_INLINE static inline
#endif

/* Where each output pixel's receptive field comes from. */
typedef enum {
    EREID_GATHER_1X1,    /* 1x1, no padding: the pixel's C channels are contiguous */
    EREID_GATHER_ANY     /* any filter, stride, dilation, padding */
} ereid_conv_gather;

/* Copy the receptive field of the output pixel whose top-left tap is (iy0, ix0) into
 * col (K int8), taps outside the input set to pad (the input zero point). */
static inline void ereid_conv_gather_s8(const ereid_conv_params *p, const ereid_dims *in_d, const int8_t *in_batch,
                                        const ereid_dims *f_d, int32_t iy0, int32_t ix0, int8_t pad, int8_t *col)
{
    const int32_t in_c = in_d->c, k_w = f_d->w, row_len = k_w * in_c;
    for (int32_t ky = 0; ky < f_d->h; ky++, col += row_len) {
        const int32_t iy = iy0 + ky * p->dilation.h;
        if (iy < 0 || iy >= in_d->h) {
            memset(col, pad, (size_t)row_len);
            continue;
        }
        const int8_t *row = in_batch + iy * in_d->w * in_c;
        if (p->dilation.w == 1 && ix0 >= 0 && ix0 + k_w <= in_d->w) {
            memcpy(col, row + ix0 * in_c, (size_t)row_len); /* the filter row's taps are contiguous */
            continue;
        }
        for (int32_t kx = 0; kx < k_w; kx++) {
            const int32_t ix = ix0 + kx * p->dilation.w;
            if (ix < 0 || ix >= in_d->w) {
                memset(col + kx * in_c, pad, (size_t)in_c);
            } else {
                memcpy(col + kx * in_c, row + ix * in_c, (size_t)in_c);
            }
        }
    }
}

#include "ereid_conv_mve_s8.h"

#if EREID_USE_DSP

/* Widen k int8 values + offset into pixel `lane` (0: A, 1: B) of the int16 columns. */
static inline void ereid_conv_widen_q15(const int8_t *src, int32_t k, int32_t offset, uint32_t *cols, int32_t lane)
{
    const uint32_t offset_x2 = ereid_dup16(offset);
    uint32_t *dst = cols + 2 * lane;
    for (int32_t g = k >> 2; g > 0; g--, src += 4, dst += 4) {
        const uint32_t v = ereid_read_s8x4(src);
        dst[0] = ereid_sxtab16(offset_x2, v);      /* taps 0, 2 */
        dst[1] = ereid_sxtab16_ror8(offset_x2, v); /* taps 1, 3 */
    }
    int16_t *tail = (int16_t *)(void *)dst;
    for (int32_t i = 0; i < (k & 3); i++) {
        tail[i] = (int16_t)(src[i] + offset);
    }
}

/* One group of 4 taps, 2 channels x 2 pixels: x points at the group's 4 words. */
static inline void ereid_conv_mac_group_2x2(const uint32_t *x, uint32_t w0, uint32_t w1, int32_t acc[4])
{
    const uint32_t w0_even = ereid_sxtb16(w0), w0_odd = ereid_sxtb16_ror8(w0);
    const uint32_t w1_even = ereid_sxtb16(w1), w1_odd = ereid_sxtb16_ror8(w1);
    acc[0] = ereid_smlad(w0_odd, x[1], ereid_smlad(w0_even, x[0], acc[0]));
    acc[1] = ereid_smlad(w0_odd, x[3], ereid_smlad(w0_even, x[2], acc[1]));
    acc[2] = ereid_smlad(w1_odd, x[1], ereid_smlad(w1_even, x[0], acc[2]));
    acc[3] = ereid_smlad(w1_odd, x[3], ereid_smlad(w1_even, x[2], acc[3]));
}

#if EREID_DSP_NATIVE
/* One group in the hand-scheduled loop: LDM of both pixels' 4 words, then per channel
 * LDR + 2 SXTB16 + 4 SMLAD (15 instructions for 16 MACs). */
#define EREID_CONV_MAC_GROUP_ASM                                                                              \
    "ldmia %[x]!, {%[a0], %[a1], %[b0], %[b1]}\n\t"                                                         \
    "ldr %[w], [%[w0]], #4\n\t"                                                                               \
    "sxtb16 %[t], %[w]\n\t"                                                                                   \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                                           \
    "smlad %[c00], %[t], %[a0], %[c00]\n\t"                                                                   \
    "smlad %[c01], %[t], %[b0], %[c01]\n\t"                                                                   \
    "smlad %[c00], %[w], %[a1], %[c00]\n\t"                                                                   \
    "smlad %[c01], %[w], %[b1], %[c01]\n\t"                                                                   \
    "ldr %[w], [%[w1]], #4\n\t"                                                                               \
    "sxtb16 %[t], %[w]\n\t"                                                                                   \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                                           \
    "smlad %[c10], %[t], %[a0], %[c10]\n\t"                                                                   \
    "smlad %[c11], %[t], %[b0], %[c11]\n\t"                                                                   \
    "smlad %[c10], %[w], %[a1], %[c10]\n\t"                                                                   \
    "smlad %[c11], %[w], %[b1], %[c11]\n\t"
#endif

/* acc[0..3] (ch0 A, ch0 B, ch1 A, ch1 B) += the dot products of `groups` groups. */
EREID_CONV_INLINE void ereid_conv_mac_2x2(const uint32_t *x, const int8_t *w0, const int8_t *w1, int32_t groups,
                                      int32_t acc[4])
{
#if EREID_DSP_NATIVE
    /* Four groups per iteration. 14 registers hold the loop's state, more than gcc keeps
     * out of the stack when it allocates the C version; LDM needs its registers named in
     * ascending order, hence the fixed r8-r11. */
    int32_t quads = groups >> 2;
    if (quads > 0) {
        int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
        register uint32_t a0 __asm__("r8");
        register uint32_t a1 __asm__("r9");
        register uint32_t b0 __asm__("r10");
        register uint32_t b1 __asm__("r11");
        uint32_t w, t;
        __asm__ volatile("1:\n\t" EREID_CONV_MAC_GROUP_ASM EREID_CONV_MAC_GROUP_ASM EREID_CONV_MAC_GROUP_ASM
                             EREID_CONV_MAC_GROUP_ASM "subs %[n], %[n], #1\n\t"
                                                      "bne 1b\n\t"
                         : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [x] "+r"(x),
                           [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(quads), [a0] "=&r"(a0), [a1] "=&r"(a1),
                           [b0] "=&r"(b0), [b1] "=&r"(b1), [w] "=&r"(w), [t] "=&r"(t)
                         :
                         : "cc", "memory");
        acc[0] = c00;
        acc[1] = c01;
        acc[2] = c10;
        acc[3] = c11;
    }
    for (int32_t g = 0; g < (groups & 3); g++, x += 4, w0 += 4, w1 += 4) {
        ereid_conv_mac_group_2x2(x, ereid_read_s8x4(w0), ereid_read_s8x4(w1), acc);
    }
#else
    for (int32_t g = 0; g < groups; g++, x += 4, w0 += 4, w1 += 4) {
        ereid_conv_mac_group_2x2(x, ereid_read_s8x4(w0), ereid_read_s8x4(w1), acc);
    }
#endif
}

/* MultiplyByQuantizedMultiplier, as ereid_requantize. For multiplier != INT32_MIN,
 * gemmlowp's SaturatingRoundingDoublingHighMul never saturates and its
 * nudge-then-truncate equals (a*b + 2^30) >> 31 for both signs. */
static inline int32_t ereid_conv_requant_exact(int32_t acc, int32_t multiplier, int32_t shift)
{
    if (multiplier == INT32_MIN) {
        return ereid_requantize(acc, multiplier, shift);
    }
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int64_t ab = (int64_t)ereid_shl_wrap(acc, left_shift) * multiplier + (1LL << 30);
    return ereid_rdbpot((int32_t)(ab >> 31), right_shift);
}

/* The same in 5 instructions where the layer allows it (ereid_conv_fast_requant_ok):
 * |acc| < 2^30 and a right shift e of 1..31. Then 2*acc does not overflow, and
 * SMMULR(2*acc, m) = (2*acc*m + 2^31) >> 32 = (acc*m + 2^30) >> 31 exactly; |r| < 2^30, so
 * RoundingDivideByPOT is one add without overflow: (r + 2^(e-1) - [r < 0]) >> e. */
static inline int32_t ereid_conv_requant_fast(int32_t acc, int32_t multiplier, int32_t right_shift, int32_t half)
{
    const int32_t r = ereid_smmulr(acc * 2, multiplier);
    return (r + half + (r >> 31)) >> right_shift;
}

/* Whether every channel of the layer can take ereid_conv_requant_fast: shift in -31..-1
 * and |bias| + K * 255 * 128 < 2^30 (|x + input_offset| <= 255, |w| <= 128). */
static inline int ereid_conv_fast_requant_ok(const ereid_per_channel_quant_params *q, const int32_t *bias,
                                             int32_t k, int32_t out_c)
{
    const int64_t dot_bound = (int64_t)k * 255 * 128;
    for (int32_t oc = 0; oc < out_c; oc++) {
        const int64_t b = bias != NULL ? bias[oc] : 0;
        if (q->shift[oc] > -1 || q->shift[oc] < -31 || (b < 0 ? -b : b) + dot_bound >= (1LL << 30)) {
            return 0;
        }
    }
    return 1;
}

#if EREID_DSP_NATIVE
/* Requantize (ereid_conv_requant_fast), offset, clamp and store the accumulators c00 c01
 * c10 c11 (ch0 A, ch0 B, ch1 A, ch1 B): 45 instructions for the 4 outputs. SMMULR, then
 * SSAT to int8, the four bytes packed [A0 A1 B0 B1] and clamped with SSUB8/SEL, two
 * STRH. The arguments name the asm operands holding the ereid_conv_pair_requant (RQ),
 * the ereid_conv_out_clamp (CL), the two output pointers and four scratch registers. */
#define EREID_CONV_STORE_ASM(RQ, CL, OA, OB, M0, M1, T, U)                                                            \
    "ldrd %[" M0 "], %[" M1 "], [%[" RQ "]]\n\t"                                                                      \
    "lsl %[c00], %[c00], #1\n\t"                                                                                      \
    "lsl %[c01], %[c01], #1\n\t"                                                                                      \
    "lsl %[c10], %[c10], #1\n\t"                                                                                      \
    "lsl %[c11], %[c11], #1\n\t"                                                                                      \
    "smmulr %[c00], %[c00], %[" M0 "]\n\t"                                                                            \
    "smmulr %[c01], %[c01], %[" M0 "]\n\t"                                                                            \
    "smmulr %[c10], %[c10], %[" M1 "]\n\t"                                                                            \
    "smmulr %[c11], %[c11], %[" M1 "]\n\t"                                                                            \
    "ldrd %[" M0 "], %[" M1 "], [%[" RQ "], #8]\n\t"                                                                  \
    "add %[" T "], %[" M0 "], %[c00], asr #31\n\t"                                                                    \
    "add %[c00], %[c00], %[" T "]\n\t"                                                                                \
    "add %[" T "], %[" M0 "], %[c01], asr #31\n\t"                                                                    \
    "add %[c01], %[c01], %[" T "]\n\t"                                                                                \
    "add %[" T "], %[" M1 "], %[c10], asr #31\n\t"                                                                    \
    "add %[c10], %[c10], %[" T "]\n\t"                                                                                \
    "add %[" T "], %[" M1 "], %[c11], asr #31\n\t"                                                                    \
    "add %[c11], %[c11], %[" T "]\n\t"                                                                                \
    "ldrd %[" M0 "], %[" M1 "], [%[" RQ "], #16]\n\t"                                                                 \
    "asr %[c00], %[c00], %[" M0 "]\n\t"                                                                               \
    "asr %[c01], %[c01], %[" M0 "]\n\t"                                                                               \
    "asr %[c10], %[c10], %[" M1 "]\n\t"                                                                               \
    "asr %[c11], %[c11], %[" M1 "]\n\t"                                                                               \
    "ldr %[" T "], [%[" CL "]]\n\t"                                                                                   \
    "add %[c00], %[c00], %[" T "]\n\t"                                                                                \
    "add %[c01], %[c01], %[" T "]\n\t"                                                                                \
    "add %[c10], %[c10], %[" T "]\n\t"                                                                                \
    "add %[c11], %[c11], %[" T "]\n\t"                                                                                \
    "ssat %[c00], #8, %[c00]\n\t"                                                                                     \
    "ssat %[c01], #8, %[c01]\n\t"                                                                                     \
    "ssat %[c10], #8, %[c10]\n\t"                                                                                     \
    "ssat %[c11], #8, %[c11]\n\t"                                                                                     \
    "pkhbt %[" T "], %[c00], %[c01], lsl #16\n\t"                                                                     \
    "pkhbt %[" U "], %[c10], %[c11], lsl #16\n\t"                                                                     \
    "uxtb16 %[" T "], %[" T "]\n\t"                                                                                   \
    "uxtb16 %[" U "], %[" U "]\n\t"                                                                                   \
    "orr %[" T "], %[" T "], %[" U "], lsl #8\n\t"                                                                    \
    "ldrd %[" M0 "], %[" M1 "], [%[" CL "], #4]\n\t"                                                                  \
    "ssub8 %[" U "], %[" T "], %[" M0 "]\n\t"                                                                         \
    "sel %[" T "], %[" T "], %[" M0 "]\n\t"                                                                           \
    "ssub8 %[" U "], %[" M1 "], %[" T "]\n\t"                                                                         \
    "sel %[" T "], %[" T "], %[" M1 "]\n\t"                                                                           \
    "strh %[" T "], [%[" OA "]]\n\t"                                                                                  \
    "lsr %[" T "], %[" T "], #16\n\t"                                                                                 \
    "strh %[" T "], [%[" OB "]]\n\t"
#endif

/* Per channel pair (2j, 2j+1; a lone last channel is paired with itself), for
 * ereid_conv_requant_fast: multipliers, halves 2^(e-1), right shifts e, and the biases
 * (0 without a bias tensor). 32 bytes; the asm reads it at these offsets. */
typedef struct {
    int32_t multiplier[2];
    int32_t half[2];
    int32_t right_shift[2];
    int32_t bias[2];
} ereid_conv_pair_requant;

/* Output offset and activation range, the last two as 4 int8 lanes (SSUB8/SEL clamp). */
typedef struct {
    int32_t output_offset;
    uint32_t act_min_x4;
    uint32_t act_max_x4;
} ereid_conv_out_clamp;

/* What the channel loop reads after each MAC loop. Read through a pointer, after the
 * asm's memory clobber, these are fresh short-lived loads, not values gcc keeps in
 * stack slots across the 14-register asm and reloads at every use. */
typedef struct {
    ereid_conv_out_clamp clamp;
    const ereid_conv_pair_requant *pairs; /* NULL: the exact requantization */
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t k;
    int32_t act_min;
    int32_t act_max;
} ereid_conv_im2col_layer;

/* Requantize, offset, clamp and store the 2 channels x 2 pixels of acc (out_a, out_b
 * point at channel oc of each pixel; oc1 is oc or oc + 1). */
EREID_CONV_INLINE void ereid_conv_store_2x2(const ereid_conv_im2col_layer *l, int32_t oc, int32_t oc1, int32_t acc[4],
                                        int8_t *out_a, int8_t *out_b)
{
#if EREID_DSP_NATIVE
    if (l->pairs != NULL && oc1 != oc) {
        /* 45 instructions for the 4 outputs: SMMULR requantization, SSAT to int8, the
         * four bytes packed [A0 A1 B0 B1] and clamped with SSUB8/SEL, two STRH. */
        int32_t c00 = acc[0], c01 = acc[1], c10 = acc[2], c11 = acc[3];
        uint32_t m0, m1, t, u;
        __asm__ volatile(EREID_CONV_STORE_ASM("rq", "cl", "oa", "ob", "m0", "m1", "t", "u")
            : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [m0] "=&r"(m0), [m1] "=&r"(m1),
              [t] "=&r"(t), [u] "=&r"(u)
            : [rq] "r"(&l->pairs[oc >> 1]), [cl] "r"(&l->clamp), [oa] "r"(out_a), [ob] "r"(out_b)
            : "cc", "memory");
        return;
    }
#endif
    int32_t r[4];
    if (l->pairs != NULL) {
        const ereid_conv_pair_requant *rq = &l->pairs[oc >> 1];
        for (int32_t i = 0; i < 4; i++) {
            r[i] = ereid_conv_requant_fast(acc[i], rq->multiplier[i >> 1], rq->right_shift[i >> 1],
                                           rq->half[i >> 1]);
        }
    } else {
        for (int32_t i = 0; i < 4; i++) {
            const int32_t c = i < 2 ? oc : oc1;
            r[i] = ereid_conv_requant_exact(acc[i], l->multiplier[c], l->shift[c]);
        }
    }
    const int32_t off = l->clamp.output_offset, lo = l->act_min, hi = l->act_max;
    out_a[0] = (int8_t)ereid_clamp_i32(r[0] + off, lo, hi);
    out_b[0] = (int8_t)ereid_clamp_i32(r[1] + off, lo, hi);
    out_a[oc1 - oc] = (int8_t)ereid_clamp_i32(r[2] + off, lo, hi);
    out_b[oc1 - oc] = (int8_t)ereid_clamp_i32(r[3] + off, lo, hi);
}

#if EREID_DSP_NATIVE
/* Every channel pair of two pixels in one asm (K a multiple of 16, fast requantization):
 * per pair the MAC loop, then the store sequence on the registers the loop frees; the
 * filter pointers run on from one pair to the next. The accumulators never leave
 * registers; the per-pair pointers live on the stack ("m"), as the MAC loop holds all
 * 14 allocatable registers. */
EREID_CONV_INLINE void ereid_conv_pairs_2x2_asm(const uint32_t *cols, const int8_t *filter, int32_t k,
                                                int32_t n_pairs, const ereid_conv_pair_requant *rq,
                                                const ereid_conv_out_clamp *cl, int8_t *out_a, int8_t *out_b)
{
    const int32_t quads = k >> 4;
    const int8_t *w0 = filter, *w1 = filter + k;
    int32_t c00, c01, c10, c11, n;
    const uint32_t *x;
    register uint32_t a0 __asm__("r8");
    register uint32_t a1 __asm__("r9");
    register uint32_t b0 __asm__("r10");
    register uint32_t b1 __asm__("r11");
    uint32_t w, t;
    __asm__ volatile(
        "2:\n\t"
        "ldr %[x], %[rq_m]\n\t"
        "ldrd %[c00], %[c10], [%[x], #24]\n\t"
        "mov %[c01], %[c00]\n\t"
        "mov %[c11], %[c10]\n\t"
        "ldr %[x], %[cols_m]\n\t"
        "ldr %[n], %[quads_m]\n\t"
        "1:\n\t" EREID_CONV_MAC_GROUP_ASM EREID_CONV_MAC_GROUP_ASM EREID_CONV_MAC_GROUP_ASM EREID_CONV_MAC_GROUP_ASM
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[x], %[rq_m]\n\t"
        "ldr %[n], %[cl_m]\n\t"
        "ldr %[b0], %[oa_m]\n\t"
        "ldr %[b1], %[ob_m]\n\t" EREID_CONV_STORE_ASM("x", "n", "b0", "b1", "a0", "a1", "w", "t")
        "add %[x], %[x], #32\n\t"
        "str %[x], %[rq_m]\n\t"
        "add %[b0], %[b0], #2\n\t"
        "str %[b0], %[oa_m]\n\t"
        "add %[b1], %[b1], #2\n\t"
        "str %[b1], %[ob_m]\n\t"
        "mov %[w0], %[w1]\n\t" /* channel 2j+2 starts where 2j+1 ended */
        "ldr %[t], %[k_m]\n\t"
        "add %[w1], %[w1], %[t]\n\t"
        "ldr %[t], %[pairs_m]\n\t"
        "subs %[t], %[t], #1\n\t"
        "str %[t], %[pairs_m]\n\t"
        "bne 2b\n\t"
        : [c00] "=&r"(c00), [c01] "=&r"(c01), [c10] "=&r"(c10), [c11] "=&r"(c11), [x] "=&r"(x), [w0] "+r"(w0),
          [w1] "+r"(w1), [n] "=&r"(n), [a0] "=&r"(a0), [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [w] "=&r"(w),
          [t] "=&r"(t), [rq_m] "+m"(rq), [oa_m] "+m"(out_a), [ob_m] "+m"(out_b), [pairs_m] "+m"(n_pairs)
        : [cols_m] "m"(cols), [quads_m] "m"(quads), [cl_m] "m"(cl), [k_m] "m"(k)
        : "cc", "memory");
}
#endif

/* Output channels oc and oc1 (oc1 == oc: a lone last channel) of two pixels. */
EREID_CONV_INLINE void ereid_conv_channels_2x2(const uint32_t *cols, const ereid_conv_im2col_layer *l, int32_t oc,
                                           int32_t oc1, int8_t *out_a, int8_t *out_b)
{
    const int32_t k = l->k, groups = k >> 2;
    const int8_t *w0 = l->filter + oc * k, *w1 = l->filter + oc1 * k;
    const int32_t b0 = l->bias != NULL ? l->bias[oc] : 0, b1 = l->bias != NULL ? l->bias[oc1] : 0;
    int32_t acc[4] = {b0, b0, b1, b1};
    ereid_conv_mac_2x2(cols, w0, w1, groups, acc);
    if (k & 3) {
        const int16_t *tail_x = (const int16_t *)(const void *)(cols + 4 * groups);
        for (int32_t i = 0; i < (k & 3); i++) {
            const int32_t wa = w0[4 * groups + i], wb = w1[4 * groups + i];
            acc[0] = ereid_add_wrap(acc[0], tail_x[i] * wa); /* wraps as SMLAD does */
            acc[1] = ereid_add_wrap(acc[1], tail_x[4 + i] * wa);
            acc[2] = ereid_add_wrap(acc[2], tail_x[i] * wb);
            acc[3] = ereid_add_wrap(acc[3], tail_x[4 + i] * wb);
        }
    }
    ereid_conv_store_2x2(l, oc, oc1, acc, out_a + oc, out_b + oc);
}

/* int8 replicated into the 4 bytes of a word. */
static inline uint32_t ereid_dup8(int32_t v)
{
    return (uint32_t)(uint8_t)v * 0x01010101u;
}

/* The whole convolution through im2col columns (ereid_conv_im2col_usable must hold). */
static inline void ereid_conv_im2col_s8(const ereid_context *ctx, const ereid_conv_params *p,
                                        const ereid_per_channel_quant_params *q, const ereid_dims *in_d,
                                        const int8_t *input, const ereid_dims *f_d, const int8_t *filter,
                                        const int32_t *bias, const ereid_dims *out_d, int8_t *output,
                                        ereid_conv_gather gather)
{
    const int32_t k = f_d->h * f_d->w * f_d->c, k4 = (k + 3) & ~3, out_c = out_d->c;
#if defined(EREID_CONV_MVE)
    if ((k & 15) == 0 && ereid_conv_mve_scratch_bytes(k, out_c) <= ctx->size) {
        ereid_conv_mve_s8(ctx->buf, p, q, in_d, input, f_d, filter, bias, out_d, output, gather == EREID_GATHER_1X1);
        return;
    }
#endif
    uint32_t *cols = (uint32_t *)(void *)(((uintptr_t)ctx->buf + 3u) & ~(uintptr_t)3u);
    int8_t *gathered = (int8_t *)(void *)(cols + k4);
    ereid_conv_pair_requant *pairs = (ereid_conv_pair_requant *)(void *)(gathered + k4);
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t out_hw = out_d->h * out_d->w, n_px = out_d->n * out_hw;
    const int fast = ereid_conv_fast_requant_ok(q, bias, k, out_c);
    if (fast) {
        for (int32_t oc = 0; oc < out_c; oc++) {
            const int32_t e = -q->shift[oc];
            for (int32_t dup = oc & 1; dup < (oc + 1 < out_c ? 1 + (oc & 1) : 2); dup++) {
                pairs[oc >> 1].multiplier[dup] = q->multiplier[oc];
                pairs[oc >> 1].half[dup] = (int32_t)(1u << (e - 1));
                pairs[oc >> 1].right_shift[dup] = e;
                pairs[oc >> 1].bias[dup] = bias != NULL ? bias[oc] : 0;
            }
        }
    }
    const ereid_conv_im2col_layer layer = {
        {p->output_offset, ereid_dup8(p->activation.min), ereid_dup8(p->activation.max)},
        fast ? pairs : NULL, filter, bias, q->multiplier, q->shift, k, p->activation.min, p->activation.max};
    for (int32_t px = 0; px < n_px; px += 2) {
        const int32_t lanes = px + 1 < n_px ? 2 : 1;
        for (int32_t lane = 0; lane < 2; lane++) {
            const int32_t i = px + (lane < lanes ? lane : 0);
            const int32_t b = i / out_hw, oy = (i % out_hw) / out_d->w, ox = i % out_d->w;
            const int32_t iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
            const int8_t *in_batch = input + b * in_d->h * in_d->w * in_d->c;
            const int8_t *src = gathered;
            if (gather == EREID_GATHER_1X1) {
                src = in_batch + (iy0 * in_d->w + ix0) * in_d->c;
            } else {
                ereid_conv_gather_s8(p, in_d, in_batch, f_d, iy0, ix0, pad, gathered);
            }
            ereid_conv_widen_q15(src, k, p->input_offset, cols, lane);
        }
        /* A lone last pixel fills both lanes; both store the same bytes. */
        int8_t *out_a = output + px * out_c, *out_b = lanes == 2 ? out_a + out_c : out_a;
        int32_t oc = 0;
#if EREID_DSP_NATIVE
        if (fast && (k & 15) == 0 && out_c >= 2) {
            ereid_conv_pairs_2x2_asm(cols, filter, k, out_c >> 1, pairs, &layer.clamp, out_a, out_b);
            oc = out_c & ~1;
        }
#endif
        for (; oc + 1 < out_c; oc += 2) {
            ereid_conv_channels_2x2(cols, &layer, oc, oc + 1, out_a, out_b);
        }
        if (oc < out_c) {
            ereid_conv_channels_2x2(cols, &layer, oc, oc, out_a, out_b);
        }
    }
}

#endif /* EREID_USE_DSP */

#endif /* EREID_CONV_IM2COL_S8_H */

/*
 * The im2col path of the int4-weight CONV_2D kernels on cores with the DSP extension (and
 * its host emulation), built like the int8 one (ereid_conv_im2col_s8.h) but self-contained
 * (that header's internals are tuned for int8 and change with it):
 *
 *   - two output pixels at a time, each pixel's receptive field (K values) gathered and
 *     widened to int16 with the input offset added, once, reused by every output channel;
 *   - the inner loop computes 2 output channels x 2 pixels per 8 taps: one 32-bit load of
 *     packed weights per channel, masked so each nibble sits in the top of a byte
 *     (SXTB16 then gives 16 * w exactly, ereid_nn_s4.h), four SXTB16 per channel and 16
 *     SMLAD. SXTB16 pairs taps (0,4), (2,6), (1,5), (3,7) of a byte-masked word, so the
 *     columns are stored in that order (PKHBT / PKHTB + SXTAB16 when widening);
 *   - the 16 * dot products are exact in int32 (K <= 65535, |x + offset| <= 255, |16 w| <=
 *     128) and shifted back by 4 (exact); then bias, requantization, clamp as every int8
 *     conv computes them (ereid_finish_s8, or its short SMMULR form where the layer allows);
 *   - on a native DSP core, for K a multiple of 8 and the short requantization, every channel
 *     pair of a pixel pair runs in one asm loop (ereid_conv_s4_pairs_2x2_asm: MAC loop, then
 *     requantization, clamp and stores in registers), as the int8 kernel's
 *     ereid_conv_pairs_2x2_asm does; 1x1 layers (short K) are dominated by that per-pair tail.
 *
 * With Helium (Cortex-M55) the whole convolution takes ereid_conv_mve_s4.h instead.
 *
 * The filter stays packed: channel oc's weights start at byte oc * K / 2, so the path
 * needs an even K (every channel starts on a byte); odd K uses the kernels' direct loops.
 *
 * Scratch (ereid_conv_im2col_s4_scratch_bytes), from the 4-byte-aligned start of ctx->buf:
 *   [int16 columns: 4*K8 bytes][int8 gather column: K8 bytes][ereid_conv_s4_pair per
 *   channel pair, for the asm pair loop], K8 = K rounded up to 8.
 * Group g (taps 8g..8g+7) of both pixels is 32 bytes: for tap pairs (0,4), (2,6), (1,5),
 * (3,7) in turn, pixel A's word then pixel B's (one LDRD each); the K % 8 tail taps follow
 * in natural order (A's 8 int16 slots, then B's).
 */
#ifndef EREID_CONV_IM2COL_S4_H
#define EREID_CONV_IM2COL_S4_H

#include <stdint.h>
#include <string.h>

#include "ereid_nn_s4.h"

/* The per-output tail and the channel-pair step are called once per 2x2 block; gcc otherwise
 * keeps them out of line, and their calls cost as much as a short MAC loop (1x1 layers). */
#if defined(__GNUC__)
#define EREID_S4_HOT_INLINE static inline __attribute__((always_inline))
#else
#define EREID_S4_HOT_INLINE static inline
#endif

/* Largest K whose 16x dot products stay exact in int32 (K * 255 * 128 < 2^31). */
#define EREID_CONV_S4_IM2COL_MAX_K 65535

/* Bytes of the Helium path's scratch (ereid_conv_mve_s4.h): 15 for alignment, split columns
 * of two pixels and a gather column (3 * K rounded up to 32), a 96-byte block per 4 output
 * channels. Every build asks for it, so that the size does not depend on the core. */
static inline int64_t ereid_conv_mve_s4_scratch_need(int64_t k, int64_t out_c)
{
    return 15 + 3 * ((k + 31) / 32 * 32) + 96 * ((out_c + 3) / 4);
}

/* Bytes of scratch the s4 im2col paths (DSP and Helium) need: the larger of the two; 0 when
 * they do not apply (odd K, K too large) or the size does not fit int32. Mirrored by
 * kernel_registry.conv_s4_im2col_buffer_size. */
static inline int32_t ereid_conv_im2col_s4_scratch_bytes(const ereid_dims *filter_dims, const ereid_dims *output_dims)
{
    const int64_t k = (int64_t)filter_dims->h * filter_dims->w * filter_dims->c;
    if ((k & 1) != 0 || k > EREID_CONV_S4_IM2COL_MAX_K) {
        return 0;
    }
    const int64_t k8 = (k + 7) / 8 * 8;
    /* + 4: ctx->buf may be unaligned; 16 per channel: the ereid_conv_s4_pair records */
    const int64_t dsp = 5 * k8 + 16 * (int64_t)output_dims->c + 4;
    const int64_t mve = ereid_conv_mve_s4_scratch_need(k, output_dims->c);
    const int64_t bytes = dsp > mve ? dsp : mve;
    return bytes > INT32_MAX ? 0 : (int32_t)bytes;
}

/* The path runs when the build has it, the caller gave the scratch, K allows it and the
 * zero point (-input_offset) is an int8 value (padding taps are filled with it). */
static inline int ereid_conv_im2col_s4_usable(const ereid_context *ctx, const ereid_conv_params *p,
                                              const ereid_dims *filter_dims, const ereid_dims *output_dims)
{
#if EREID_USE_DSP
    const int32_t need = ereid_conv_im2col_s4_scratch_bytes(filter_dims, output_dims);
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

/* Copy the receptive field of the output pixel whose top-left tap is (iy0, ix0) into col
 * (K int8, OHWI tap order), taps outside the input set to pad (the input zero point). */
static inline void ereid_conv_s4_gather(const ereid_conv_params *p, const ereid_dims *in_d, const int8_t *in_batch,
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

#include "ereid_conv_mve_s4.h"

#if EREID_USE_DSP

/* Widen k int8 values + offset into pixel `lane` (0: A, 1: B) of the s4 columns. */
static inline void ereid_conv_s4_widen(const int8_t *src, int32_t k, int32_t offset, uint32_t *cols, int32_t lane)
{
    const uint32_t offset_x2 = ereid_dup16(offset);
    uint32_t *dst = cols + lane;
    for (int32_t g = k >> 3; g > 0; g--, src += 8, dst += 8) {
        const uint32_t xa = ereid_read_s8x4(src), xb = ereid_read_s8x4(src + 4);
        const uint32_t x0145 = ereid_pack_lo16(xa, xb), x2367 = ereid_pack_hi16(xa, xb);
        dst[0] = ereid_sxtab16(offset_x2, x0145);      /* taps 0, 4 */
        dst[2] = ereid_sxtab16(offset_x2, x2367);      /* taps 2, 6 */
        dst[4] = ereid_sxtab16_ror8(offset_x2, x0145); /* taps 1, 5 */
        dst[6] = ereid_sxtab16_ror8(offset_x2, x2367); /* taps 3, 7 */
    }
    int16_t *tail = (int16_t *)(void *)(cols + 8 * (k >> 3)); /* A's slots at 0, B's at 8 */
    for (int32_t i = 0; i < (k & 7); i++) {
        tail[8 * lane + i] = (int16_t)(src[i] + offset);
    }
}

/* One group of 8 taps, 2 channels x 2 pixels: x points at the group's 8 words, p0 and p1
 * are the two channels' 8 packed weights. */
static inline void ereid_conv_s4_mac_group_2x2(const uint32_t *x, uint32_t p0, uint32_t p1, int32_t acc16[4])
{
    const uint32_t e0 = (p0 << 4) & 0xF0F0F0F0u, o0 = p0 & 0xF0F0F0F0u; /* 16 * even / odd taps */
    const uint32_t e1 = (p1 << 4) & 0xF0F0F0F0u, o1 = p1 & 0xF0F0F0F0u;
    const uint32_t w0[4] = {ereid_sxtb16(e0), ereid_sxtb16_ror8(e0), ereid_sxtb16(o0), ereid_sxtb16_ror8(o0)};
    const uint32_t w1[4] = {ereid_sxtb16(e1), ereid_sxtb16_ror8(e1), ereid_sxtb16(o1), ereid_sxtb16_ror8(o1)};
    for (int32_t j = 0; j < 4; j++) {
        acc16[0] = ereid_smlad(w0[j], x[2 * j], acc16[0]);
        acc16[1] = ereid_smlad(w0[j], x[2 * j + 1], acc16[1]);
        acc16[2] = ereid_smlad(w1[j], x[2 * j], acc16[2]);
        acc16[3] = ereid_smlad(w1[j], x[2 * j + 1], acc16[3]);
    }
}

#if EREID_DSP_NATIVE
/* One group of 8 taps, 2 channels x 2 pixels (36 instructions, 32 MACs): per channel one
 * load of 8 packed weights, masked so that SXTB16 gives 16 * w; 16 SMLAD. */
#define EREID_CONV_S4_MAC_GROUP_ASM \
    "ldr %[p0], [%[w0]], #4\n\t" \
    "ldr %[p1], [%[w1]], #4\n\t" \
    "lsl %[e0], %[p0], #4\n\t" \
    "and %[e0], %[e0], #0xF0F0F0F0\n\t" \
    "lsl %[e1], %[p1], #4\n\t" \
    "and %[e1], %[e1], #0xF0F0F0F0\n\t" \
    "ldrd %[xa], %[xb], [%[x]], #32\n\t" \
    "sxtb16 %[w], %[e0]\n\t" \
    "smlad %[c00], %[w], %[xa], %[c00]\n\t" \
    "smlad %[c01], %[w], %[xb], %[c01]\n\t" \
    "sxtb16 %[w], %[e1]\n\t" \
    "smlad %[c10], %[w], %[xa], %[c10]\n\t" \
    "smlad %[c11], %[w], %[xb], %[c11]\n\t" \
    "ldrd %[xa], %[xb], [%[x], #-24]\n\t" \
    "sxtb16 %[w], %[e0], ror #8\n\t" \
    "smlad %[c00], %[w], %[xa], %[c00]\n\t" \
    "smlad %[c01], %[w], %[xb], %[c01]\n\t" \
    "sxtb16 %[w], %[e1], ror #8\n\t" \
    "smlad %[c10], %[w], %[xa], %[c10]\n\t" \
    "smlad %[c11], %[w], %[xb], %[c11]\n\t" \
    "and %[p0], %[p0], #0xF0F0F0F0\n\t" \
    "and %[p1], %[p1], #0xF0F0F0F0\n\t" \
    "ldrd %[xa], %[xb], [%[x], #-16]\n\t" \
    "sxtb16 %[w], %[p0]\n\t" \
    "smlad %[c00], %[w], %[xa], %[c00]\n\t" \
    "smlad %[c01], %[w], %[xb], %[c01]\n\t" \
    "sxtb16 %[w], %[p1]\n\t" \
    "smlad %[c10], %[w], %[xa], %[c10]\n\t" \
    "smlad %[c11], %[w], %[xb], %[c11]\n\t" \
    "ldrd %[xa], %[xb], [%[x], #-8]\n\t" \
    "sxtb16 %[w], %[p0], ror #8\n\t" \
    "smlad %[c00], %[w], %[xa], %[c00]\n\t" \
    "smlad %[c01], %[w], %[xb], %[c01]\n\t" \
    "sxtb16 %[w], %[p1], ror #8\n\t" \
    "smlad %[c10], %[w], %[xa], %[c10]\n\t" \
    "smlad %[c11], %[w], %[xb], %[c11]\n\t"
#endif

/* acc16[0..3] (ch0 A, ch0 B, ch1 A, ch1 B) += 16 * the dot products of `groups` groups of
 * 8 taps; w0, w1: the two channels' packed weights (byte-aligned). */
static inline void ereid_conv_s4_mac_2x2(const uint32_t *x, const uint8_t *w0, const uint8_t *w1, int32_t groups,
                                         int32_t acc16[4])
{
#if EREID_DSP_NATIVE
    /* Hand-scheduled (39 instructions per 32 MACs): 14 registers hold the loop's state, the
     * loop's end stays in memory; gcc's allocation of the C version spills in the loop. */
    if (groups > 0) {
        int32_t c00 = acc16[0], c01 = acc16[1], c10 = acc16[2], c11 = acc16[3];
        const uint32_t *x_end = x + 8 * groups;
        uint32_t p0, p1, e0, e1, xa, xb, w;
        __asm__ volatile(
            "1:\n\t" EREID_CONV_S4_MAC_GROUP_ASM
            "ldr %[w], %[end]\n\t"
            "cmp %[x], %[w]\n\t"
            "bne 1b\n\t"
            : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11), [x] "+r"(x), [w0] "+r"(w0),
              [w1] "+r"(w1), [p0] "=&r"(p0), [p1] "=&r"(p1), [e0] "=&r"(e0), [e1] "=&r"(e1), [xa] "=&r"(xa),
              [xb] "=&r"(xb), [w] "=&r"(w)
            : [end] "m"(x_end)
            : "cc", "memory");
        acc16[0] = c00;
        acc16[1] = c01;
        acc16[2] = c10;
        acc16[3] = c11;
    }
#else
    for (int32_t g = 0; g < groups; g++, x += 8, w0 += 4, w1 += 4) {
        uint32_t p0, p1;
        memcpy(&p0, w0, sizeof(p0));
        memcpy(&p1, w1, sizeof(p1));
        ereid_conv_s4_mac_group_2x2(x, p0, p1, acc16);
    }
#endif
}

/* Whether every channel can take ereid_conv_s4_finish's short form: a right shift of 1..31
 * and |bias| + K * 255 * 8 < 2^30 (|x + input_offset| <= 255, |w| <= 8). */
static inline int ereid_conv_s4_fast_requant_ok(const ereid_per_channel_quant_params *q, const int32_t *bias,
                                                int32_t k, int32_t out_c)
{
    const int64_t dot_bound = (int64_t)k * 255 * 8;
    for (int32_t oc = 0; oc < out_c; oc++) {
        const int64_t b = bias != NULL ? bias[oc] : 0;
        if (q->shift[oc] > -1 || q->shift[oc] < -31 || (b < 0 ? -b : b) + dot_bound >= (1LL << 30)) {
            return 0;
        }
    }
    return 1;
}

/* What the channel loop reads after each MAC loop (through one pointer: the asm's memory
 * clobber makes every value a reload anyway, and one base keeps those loads short). */
typedef struct {
    const int8_t *filter;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    const ereid_activation *activation;
    int32_t k;
    int32_t output_offset;
    int32_t fast; /* ereid_conv_s4_fast_requant_ok */
} ereid_conv_s4_layer;

/* Bias, requantization, output offset and clamp of channel oc for two pixels' accumulators:
 * ereid_finish_s8, or where `fast` holds the same value in a few instructions: with
 * |acc| < 2^30, SMMULR(2 * acc, m) = (acc * m + 2^30) >> 31 is SaturatingRoundingDoublingHighMul
 * exactly, and RoundingDivideByPOT(r, e) = (r + 2^(e-1) - [r < 0]) >> e without overflow
 * (|r| <= 2^30). */
EREID_S4_HOT_INLINE void ereid_conv_s4_store_pair(const ereid_conv_s4_layer *l, int32_t oc, int32_t acc_a, int32_t acc_b,
                                            int8_t *out_a, int8_t *out_b)
{
    const int32_t m = l->multiplier[oc];
    if (l->fast) {
        const int32_t bias = l->bias != NULL ? l->bias[oc] : 0;
        const int32_t e = -l->shift[oc], half = (int32_t)(1u << (e - 1));
        const int32_t ra = ereid_smmulr((acc_a + bias) * 2, m), rb = ereid_smmulr((acc_b + bias) * 2, m);
        out_a[oc] = ereid_clamp_s8(((ra + half + (ra >> 31)) >> e) + l->output_offset, l->activation);
        out_b[oc] = ereid_clamp_s8(((rb + half + (rb >> 31)) >> e) + l->output_offset, l->activation);
        return;
    }
    out_a[oc] = ereid_finish_s8(acc_a, l->bias, oc, m, l->shift[oc], l->output_offset, l->activation);
    out_b[oc] = ereid_finish_s8(acc_b, l->bias, oc, m, l->shift[oc], l->output_offset, l->activation);
}

#if EREID_DSP_NATIVE
/* Per channel pair (2j, 2j+1), for the fast requantization: multipliers, halves 2^(e-1),
 * right shifts e, and twice the biases. 32 bytes; the asm reads it at these offsets. */
typedef struct {
    int32_t multiplier[2];
    int32_t half[2];
    int32_t right_shift[2];
    int32_t bias_x2[2];
} ereid_conv_s4_pair;

/* Output offset and activation range, the last two as 4 int8 lanes (SSUB8/SEL clamp). */
typedef struct {
    int32_t output_offset;
    uint32_t act_min_x4;
    uint32_t act_max_x4;
} ereid_conv_s4_clamp;

/* Requantize, offset, clamp and store the 16x accumulators c00 c01 c10 c11 (ch0 A, ch0 B,
 * ch1 A, ch1 B; fast requantization, ereid_conv_s4_store_pair): 2 * (acc + bias) is
 * (acc16 >> 3) + 2 * bias in one ADD (acc16 is a multiple of 16, the sum below 2^31 by the
 * fast bound), then SMMULR, the rounding shift, SSAT to int8, the four bytes packed
 * [A0 A1 B0 B1] and clamped with SSUB8/SEL, two STRH (48 instructions). The arguments name
 * the asm operands holding the ereid_conv_s4_pair (RQ), the ereid_conv_s4_clamp (CL), the
 * output pointers and four scratch registers. */
#define EREID_CONV_S4_STORE_ASM(RQ, CL, OA, OB, M0, M1, T, U)                                                         \
    "ldrd %[" M0 "], %[" M1 "], [%[" RQ "], #24]\n\t"                                                                 \
    "add %[c00], %[" M0 "], %[c00], asr #3\n\t"                                                                       \
    "add %[c01], %[" M0 "], %[c01], asr #3\n\t"                                                                       \
    "add %[c10], %[" M1 "], %[c10], asr #3\n\t"                                                                       \
    "add %[c11], %[" M1 "], %[c11], asr #3\n\t"                                                                       \
    "ldrd %[" M0 "], %[" M1 "], [%[" RQ "]]\n\t"                                                                      \
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

/* int8 replicated into the 4 bytes of a word. */
static inline uint32_t ereid_conv_s4_dup8(int32_t v)
{
    return (uint32_t)(uint8_t)v * 0x01010101u;
}

/* Every channel pair of two pixels in one asm (K a multiple of 8, fast requantization): per
 * pair the MAC loop (EREID_CONV_S4_MAC_GROUP_ASM), then the store sequence on the registers
 * the loop frees; the filter pointers run on from one pair to the next. The 14 registers
 * of the MAC loop hold its state; the per-pair pointers and the loop's end live on the
 * stack ("m"). */
static inline void ereid_conv_s4_pairs_2x2_asm(const uint32_t *cols, const int8_t *filter, int32_t k,
                                               int32_t n_pairs, const ereid_conv_s4_pair *rq,
                                               const ereid_conv_s4_clamp *cl, int8_t *out_a, int8_t *out_b)
{
    const uint32_t *x_end = cols + k; /* 8 words per group of 8 taps */
    const int32_t kb = k >> 1;        /* packed bytes of a channel */
    const uint8_t *w0 = (const uint8_t *)filter, *w1 = w0 + kb;
    int32_t c00, c01, c10, c11;
    const uint32_t *x;
    uint32_t p0, p1, e0, e1, xa, xb, w;
    __asm__ volatile(
        "2:\n\t"
        "movs %[c00], #0\n\t"
        "movs %[c01], #0\n\t"
        "movs %[c10], #0\n\t"
        "movs %[c11], #0\n\t"
        "ldr %[x], %[cols_m]\n\t"
        "1:\n\t" EREID_CONV_S4_MAC_GROUP_ASM
        "ldr %[w], %[end_m]\n\t"
        "cmp %[x], %[w]\n\t"
        "bne 1b\n\t"
        "ldr %[x], %[rq_m]\n\t"
        "ldr %[p0], %[cl_m]\n\t"
        "ldr %[p1], %[oa_m]\n\t"
        "ldr %[e0], %[ob_m]\n\t" EREID_CONV_S4_STORE_ASM("x", "p0", "p1", "e0", "e1", "xa", "xb", "w")
        "add %[x], %[x], #32\n\t"
        "str %[x], %[rq_m]\n\t"
        "add %[p1], %[p1], #2\n\t"
        "str %[p1], %[oa_m]\n\t"
        "add %[e0], %[e0], #2\n\t"
        "str %[e0], %[ob_m]\n\t"
        "mov %[w0], %[w1]\n\t" /* channel 2j+2 starts where 2j+1 ended */
        "ldr %[w], %[kb_m]\n\t"
        "add %[w1], %[w1], %[w]\n\t"
        "ldr %[w], %[pairs_m]\n\t"
        "subs %[w], %[w], #1\n\t"
        "str %[w], %[pairs_m]\n\t"
        "bne 2b\n\t"
        : [c00] "=&r"(c00), [c01] "=&r"(c01), [c10] "=&r"(c10), [c11] "=&r"(c11), [x] "=&r"(x), [w0] "+r"(w0),
          [w1] "+r"(w1), [p0] "=&r"(p0), [p1] "=&r"(p1), [e0] "=&r"(e0), [e1] "=&r"(e1), [xa] "=&r"(xa),
          [xb] "=&r"(xb), [w] "=&r"(w), [rq_m] "+m"(rq), [oa_m] "+m"(out_a), [ob_m] "+m"(out_b),
          [pairs_m] "+m"(n_pairs)
        : [cols_m] "m"(cols), [end_m] "m"(x_end), [cl_m] "m"(cl), [kb_m] "m"(kb)
        : "cc", "memory");
}
#endif

/* Output channels oc and oc1 (oc1 == oc: a lone last channel) of two pixels. */
EREID_S4_HOT_INLINE void ereid_conv_s4_channels_2x2(const uint32_t *cols, const ereid_conv_s4_layer *l, int32_t oc,
                                              int32_t oc1, int8_t *out_a, int8_t *out_b)
{
    const int32_t k = l->k, groups = k >> 3;
    int32_t acc16[4] = {0, 0, 0, 0};
    ereid_conv_s4_mac_2x2(cols, (const uint8_t *)l->filter + oc * (k >> 1),
                          (const uint8_t *)l->filter + oc1 * (k >> 1), groups, acc16);
    /* exact: each acc16 is 16 times an int32 (arithmetic shift, as the int8 path's requantization) */
    int32_t acc[4] = {acc16[0] >> 4, acc16[1] >> 4, acc16[2] >> 4, acc16[3] >> 4};
    if (k & 7) {
        const int16_t *tail_x = (const int16_t *)(const void *)(cols + 8 * groups);
        for (int32_t i = 0; i < (k & 7); i++) {
            const int32_t wa = ereid_s4_at(l->filter, oc * k + 8 * groups + i);
            const int32_t wb = ereid_s4_at(l->filter, oc1 * k + 8 * groups + i);
            acc[0] += tail_x[i] * wa;
            acc[1] += tail_x[8 + i] * wa;
            acc[2] += tail_x[i] * wb;
            acc[3] += tail_x[8 + i] * wb;
        }
    }
    ereid_conv_s4_store_pair(l, oc, acc[0], acc[1], out_a, out_b);
    ereid_conv_s4_store_pair(l, oc1, acc[2], acc[3], out_a, out_b);
}

/* The whole convolution through the s4 columns (ereid_conv_im2col_s4_usable must hold);
 * direct_1x1: a 1x1 filter without padding, whose receptive field is the input pixel. */
static inline void ereid_conv_im2col_s4(const ereid_context *ctx, const ereid_conv_params *p,
                                        const ereid_per_channel_quant_params *q, const ereid_dims *in_d,
                                        const int8_t *input, const ereid_dims *f_d, const int8_t *filter,
                                        const int32_t *bias, const ereid_dims *out_d, int8_t *output, int direct_1x1)
{
    const int32_t k = f_d->h * f_d->w * f_d->c, k8 = (k + 7) & ~7, out_c = out_d->c;
#if EREID_USE_MVE
    ereid_conv_mve_s4(ctx->buf, p, q, in_d, input, f_d, filter, bias, out_d, output, direct_1x1);
    return;
#endif
    uint32_t *cols = (uint32_t *)(void *)(((uintptr_t)ctx->buf + 3u) & ~(uintptr_t)3u);
    int8_t *gathered = (int8_t *)(void *)(cols + k8);
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t out_hw = out_d->h * out_d->w, n_px = out_d->n * out_hw;
    const ereid_conv_s4_layer layer = {filter, bias, q->multiplier, q->shift, &p->activation, k, p->output_offset,
                                       ereid_conv_s4_fast_requant_ok(q, bias, k, out_c)};
#if EREID_DSP_NATIVE
    /* The asm pair loop: K a multiple of 8 (no tail taps), the fast requantization. */
    ereid_conv_s4_pair *pairs = NULL;
    const ereid_conv_s4_clamp clamp = {p->output_offset, ereid_conv_s4_dup8(p->activation.min),
                                       ereid_conv_s4_dup8(p->activation.max)};
    if (layer.fast && (k & 7) == 0 && k > 0 && out_c >= 2) {
        pairs = (ereid_conv_s4_pair *)(void *)(gathered + k8);
        for (int32_t oc = 0; oc < (out_c & ~1); oc++) {
            const int32_t j = oc >> 1, lane = oc & 1;
            pairs[j].multiplier[lane] = q->multiplier[oc];
            pairs[j].right_shift[lane] = -q->shift[oc];
            pairs[j].half[lane] = (int32_t)(1u << (-q->shift[oc] - 1));
            pairs[j].bias_x2[lane] = bias != NULL ? 2 * bias[oc] : 0;
        }
    }
#endif
    for (int32_t px = 0; px < n_px; px += 2) {
        const int32_t lanes = px + 1 < n_px ? 2 : 1;
        for (int32_t lane = 0; lane < 2; lane++) {
            const int32_t i = px + (lane < lanes ? lane : 0);
            const int32_t b = i / out_hw, oy = (i % out_hw) / out_d->w, ox = i % out_d->w;
            const int32_t iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
            const int8_t *in_batch = input + b * in_d->h * in_d->w * in_d->c;
            const int8_t *src = gathered;
            if (direct_1x1) {
                src = in_batch + (iy0 * in_d->w + ix0) * in_d->c;
            } else {
                ereid_conv_s4_gather(p, in_d, in_batch, f_d, iy0, ix0, pad, gathered);
            }
            ereid_conv_s4_widen(src, k, p->input_offset, cols, lane);
        }
        /* A lone last pixel fills both lanes; both store the same bytes. */
        int8_t *out_a = output + px * out_c, *out_b = lanes == 2 ? out_a + out_c : out_a;
        int32_t oc = 0;
#if EREID_DSP_NATIVE
        if (pairs != NULL) {
            ereid_conv_s4_pairs_2x2_asm(cols, filter, k, out_c >> 1, pairs, &clamp, out_a, out_b);
            oc = out_c & ~1;
        }
#endif
        for (; oc + 1 < out_c; oc += 2) {
            ereid_conv_s4_channels_2x2(cols, &layer, oc, oc + 1, out_a, out_b);
        }
        if (oc < out_c) {
            ereid_conv_s4_channels_2x2(cols, &layer, oc, oc, out_a, out_b);
        }
    }
}

#endif /* EREID_USE_DSP */

#endif /* EREID_CONV_IM2COL_S4_H */

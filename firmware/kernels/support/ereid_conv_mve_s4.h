/*
 * The Helium (MVE, Cortex-M55) path of the int4-weight CONV_2D kernels, taken by
 * ereid_conv_im2col_s4 where the build has MVE (K even, as the DSP path):
 *
 *   - the input offset is folded into the bias once per call, as the int8 Helium path
 *     does (ereid_conv_mve_s8.h): sum (x + off) * w = sum x * w + off * sum w (mod 2^32,
 *     as the reference's int32 sum), so the inner loop multiplies raw int8; padding taps
 *     hold the zero point, x + off = 0 as in the reference;
 *   - the filter stays packed: 16 bytes (32 weights) per load, unpacked in the loop into
 *     the even taps (low nibbles: VSHL #4 then VSHR.S8 #4) and the odd taps (high
 *     nibbles: VSHR.S8 #4). Each pixel's receptive field is split once into even and
 *     odd taps (VLD2: 16 + 16 per 32 taps), reused by every output channel, so a chunk of
 *     32 taps is two VMLADAVA.S8 per pixel and channel;
 *   - 2 output pixels x 4 output channels per inner loop (8 scalar accumulators), the
 *     requantization on a vector of the 4 channels (VQRDMULH, VRSHL with the rounding
 *     fixup; see ereid_conv_mve_s8.h);
 *   - a last chunk of K % 32 taps loads its weights with a tail predicate (VCTP8: lanes
 *     past the channel's bytes are 0, nothing past the filter is read) and its column
 *     slots past K are 0.
 *
 * Scratch (ereid_conv_mve_s4_scratch_need, ereid_conv_im2col_s4.h), from the 16-byte-aligned start:
 *   [split columns: 2*K32 bytes; per chunk of 32 taps: A even, A odd, B even, B odd, 16
 *   bytes each][gather column: K32 bytes][ereid_conv_mve_s4_block per 4 output channels],
 *   K32 = K rounded up to 32.
 */
#ifndef EREID_CONV_MVE_S4_H
#define EREID_CONV_MVE_S4_H

#include <stdint.h>
#include <string.h>

#include "ereid_mve.h"
#include "ereid_nn_s4.h"

#if EREID_USE_MVE

/* Bias and requantization of 4 output channels, one vector lane each (96 bytes; the asm
 * block loop reads it at these offsets). */
typedef struct {
    int32_t bias[4];        /* bias + input_offset * sum of the channel's weights (mod 2^32) */
    int32_t bias_again[4];  /* the same: one LDM sets both pixels' 8 accumulators */
    int32_t multiplier[4];
    int32_t left_shift[4];  /* max(shift, 0) */
    int32_t right_shift[4]; /* -max(-shift, 0): VRSHL by a negative amount shifts right, rounding */
    int32_t fixup_mask[4];  /* -1 where the right shift is not 0 */
} ereid_conv_mve_s4_block;

/* ereid_conv_mve_s4_scratch_need (ereid_conv_im2col_s4.h) counts 96 bytes per block. */
typedef char ereid_conv_mve_s4_block_is_96_bytes[sizeof(ereid_conv_mve_s4_block) == 96 ? 1 : -1];

/* 16 packed bytes (32 weights) -> the even taps (low nibbles) and the odd taps (high). */
static inline void ereid_s4_mve_unpack(int8x16_t packed, int8x16_t *even, int8x16_t *odd)
{
    *even = vshrq_n_s8(vshlq_n_s8(packed, 4), 4);
    *odd = vshrq_n_s8(packed, 4);
}

/* Sum of the n (even) weights of a channel starting on byte w. */
static inline int32_t ereid_s4_mve_weight_sum(const int8_t *w, int32_t n)
{
    int32_t sum = 0;
    for (int32_t bytes = n >> 1; bytes > 0; bytes -= 16, w += 16) {
        int8x16_t even, odd;
        ereid_s4_mve_unpack(vldrbq_z_s8(w, vctp8q((uint32_t)bytes)), &even, &odd);
        sum = vaddvaq_s8(sum, even);
        sum = vaddvaq_s8(sum, odd);
    }
    return sum;
}

/* The block records of every channel (a last partial block padded with zeros). */
static inline void ereid_conv_mve_s4_prepare(const ereid_conv_params *p, const ereid_per_channel_quant_params *q,
                                             const int8_t *filter, const int32_t *bias, int32_t k, int32_t out_c,
                                             ereid_conv_mve_s4_block *blocks)
{
    const uint32_t offset = (uint32_t)p->input_offset;
    for (int32_t oc = 0; oc < ((out_c + 3) & ~3); oc++) {
        ereid_conv_mve_s4_block *b = &blocks[oc >> 2];
        const int32_t lane = oc & 3;
        if (oc >= out_c) {
            b->bias[lane] = b->bias_again[lane] = b->multiplier[lane] = 0;
            b->left_shift[lane] = b->right_shift[lane] = 0;
            b->fixup_mask[lane] = 0;
            continue;
        }
        const uint32_t sum = (uint32_t)ereid_s4_mve_weight_sum(filter + oc * (k >> 1), k);
        const int32_t b0 = bias != NULL ? bias[oc] : 0;
        b->bias[lane] = (int32_t)((uint32_t)b0 + offset * sum);
        b->bias_again[lane] = b->bias[lane];
        b->multiplier[lane] = q->multiplier[oc];
        b->left_shift[lane] = q->shift[oc] > 0 ? q->shift[oc] : 0;
        b->right_shift[lane] = q->shift[oc] > 0 ? 0 : q->shift[oc];
        b->fixup_mask[lane] = q->shift[oc] < 0 ? -1 : 0;
    }
}

/* Split k int8 taps into lane `lane` (0: A, 1: B) of the columns: per chunk of 32, the 16
 * even taps then the 16 odd ones; a last partial chunk zero-filled. */
static inline void ereid_conv_mve_s4_split(const int8_t *src, int32_t k, int8_t *cols, int32_t lane)
{
    int8_t *dst = cols + 32 * lane;
    int32_t i = 0;
    for (; i + 32 <= k; i += 32, dst += 64) {
        const int8x16x2_t x = vld2q_s8(src + i);
        vst1q_s8(dst, x.val[0]);
        vst1q_s8(dst + 16, x.val[1]);
    }
    if (i < k) {
        memset(dst, 0, 32);
        for (int32_t j = 0; i + 2 * j < k; j++) {
            dst[j] = src[i + 2 * j];
            dst[16 + j] = src[i + 2 * j + 1];
        }
    }
}

/* One chunk of 32 taps: both pixels' even and odd taps (q0-q3), then per channel 16 packed
 * bytes (q4), their even (q5) and odd (q4) nibbles, four VMLADAVA (36 instructions, 256 MACs). */
#define EREID_CONV_MVE_S4_CHANNEL_ASM(w, a, b)                                                                \
    "vldrb.8 q4, [%[" w "]], #16\n\t"                                                                         \
    "vshl.i8 q5, q4, #4\n\t"                                                                                  \
    "vshr.s8 q4, q4, #4\n\t"                                                                                  \
    "vshr.s8 q5, q5, #4\n\t"                                                                                  \
    "vmladava.s8 %[" a "], q0, q5\n\t"                                                                        \
    "vmladava.s8 %[" a "], q1, q4\n\t"                                                                        \
    "vmladava.s8 %[" b "], q2, q5\n\t"                                                                        \
    "vmladava.s8 %[" b "], q3, q4\n\t"
#define EREID_CONV_MVE_S4_CHUNK_ASM                                                                           \
    "vldrb.8 q0, [%[x]], #16\n\t"                                                                             \
    "vldrb.8 q1, [%[x]], #16\n\t"                                                                             \
    "vldrb.8 q2, [%[x]], #16\n\t"                                                                             \
    "vldrb.8 q3, [%[x]], #16\n\t" EREID_CONV_MVE_S4_CHANNEL_ASM("w0", "a0", "b0")                             \
    EREID_CONV_MVE_S4_CHANNEL_ASM("w1", "a1", "b1") EREID_CONV_MVE_S4_CHANNEL_ASM("w2", "a2", "b2")           \
    EREID_CONV_MVE_S4_CHANNEL_ASM("w3", "a3", "b3")

/* acc = {A ch0..3, B ch0..3} = bias + the dot products of the split columns with the
 * 4 channels' packed weights w[0..3] (k even). The full chunks run in asm: VMLADAVA
 * accumulates into an even core register, so the 8 accumulators are pinned to r0, r2,
 * ..., r12, lr as in ereid_conv_mve_s8.h (gcc's allocation of the intrinsics spills
 * accumulators in the loop); a last partial chunk (K % 32) in intrinsics. */
static inline void ereid_conv_mve_s4_mac_2x4(const int8_t *cols, const int8_t *const w[4], int32_t k,
                                             const int32_t bias[4], int32_t acc[8])
{
    const int32_t bytes = k >> 1, chunks = bytes >> 4; /* packed bytes of a channel; full chunks */
    const int8_t *x = cols + 64 * chunks;
    if (chunks > 0) {
        register int32_t a0 __asm__("r0") = bias[0];
        register int32_t a1 __asm__("r2") = bias[1];
        register int32_t a2 __asm__("r4") = bias[2];
        register int32_t a3 __asm__("r6") = bias[3];
        register int32_t b0 __asm__("r8") = bias[0];
        register int32_t b1 __asm__("r10") = bias[1];
        register int32_t b2 __asm__("r12") = bias[2];
        register int32_t b3 __asm__("lr") = bias[3];
        register const int8_t *xr __asm__("r1") = cols;
        register const int8_t *w0r __asm__("r3") = w[0];
        register const int8_t *w1r __asm__("r5") = w[1];
        register const int8_t *w2r __asm__("r7") = w[2];
        register const int8_t *w3r __asm__("r9") = w[3];
        register int32_t n __asm__("r11") = chunks;
        __asm__ volatile(
            "tst %[n], #1\n\t"
            "beq 2f\n\t" EREID_CONV_MVE_S4_CHUNK_ASM
            "2:\n\t"
            "lsrs %[n], %[n], #1\n\t"
            "beq 3f\n\t"
            "1:\n\t" EREID_CONV_MVE_S4_CHUNK_ASM EREID_CONV_MVE_S4_CHUNK_ASM
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            "3:\n\t"
            "ldr %[n], %[acc_m]\n\t"
            "stm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0), [b1] "+r"(b1),
              [b2] "+r"(b2), [b3] "+r"(b3), [x] "+r"(xr), [w0] "+r"(w0r), [w1] "+r"(w1r), [w2] "+r"(w2r),
              [w3] "+r"(w3r), [n] "+r"(n)
            : [acc_m] "m"(acc)
            : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11");
    } else {
        for (int32_t i = 0; i < 8; i++) {
            acc[i] = bias[i & 3];
        }
    }
    if (bytes & 15) {
        const mve_pred16_t tail = vctp8q((uint32_t)(bytes & 15));
        const int8x16_t xa_even = vld1q_s8(x), xa_odd = vld1q_s8(x + 16);
        const int8x16_t xb_even = vld1q_s8(x + 32), xb_odd = vld1q_s8(x + 48);
        for (int32_t c = 0; c < 4; c++) {
            int8x16_t even, odd;
            ereid_s4_mve_unpack(vldrbq_z_s8(w[c] + 16 * chunks, tail), &even, &odd);
            acc[c] = vmladavaq_s8(vmladavaq_s8(acc[c], xa_even, even), xa_odd, odd);
            acc[4 + c] = vmladavaq_s8(vmladavaq_s8(acc[4 + c], xb_even, even), xb_odd, odd);
        }
    }
}

/* Every full block of 4 output channels of two pixels in one asm, for K a multiple of 32
 * and every channel shifting right (no left shift, the rounding fixup on every lane): per
 * block the biases (one LDM), the MAC loop of ereid_conv_mve_s4_mac_2x4, the accumulators
 * moved into q4 (pixel A) and q5 (pixel B) through the stack (STM, two VLDRW), then the
 * requantization of ereid_conv_mve_s4_store_2x4 and two VSTRB.32. The filter pointers run
 * on from block to block; what the loop does not keep in registers (all 14 hold its state)
 * is on the stack ("m"). */
static inline void ereid_conv_mve_s4_blocks_2x4(const int8_t *cols, const int8_t *filter, int32_t k, int32_t n_blocks,
                                                const ereid_conv_mve_s4_block *blk, int32_t output_offset,
                                                const ereid_activation *act, int8_t *out_a, int8_t *out_b)
{
    const int32_t chunks = k >> 5, kb = k >> 1, act_min = act->min, act_max = act->max;
    int32_t acc_store[8];
    int32_t *acc = acc_store; /* STM's base, loaded from the stack after the MAC loop */
    register int32_t a0 __asm__("r0");
    register int32_t a1 __asm__("r2");
    register int32_t a2 __asm__("r4");
    register int32_t a3 __asm__("r6");
    register int32_t b0 __asm__("r8");
    register int32_t b1 __asm__("r10");
    register int32_t b2 __asm__("r12");
    register int32_t b3 __asm__("lr");
    register const int8_t *xr __asm__("r1");
    register const int8_t *w0r __asm__("r3") = filter;
    register const int8_t *w1r __asm__("r5");
    register const int8_t *w2r __asm__("r7");
    register const int8_t *w3r __asm__("r9");
    register int32_t n __asm__("r11");
    __asm__ volatile(
        "ldr %[n], %[min_m]\n\t"
        "vdup.32 q6, %[n]\n\t"
        "ldr %[n], %[max_m]\n\t"
        "vdup.32 q7, %[n]\n\t"
        "ldr %[x], %[kb_m]\n\t"
        "add %[w1], %[w0], %[x]\n\t"
        "add %[w2], %[w1], %[x]\n\t"
        "add %[w3], %[w2], %[x]\n\t"
        "4:\n\t"
        "ldr %[n], %[blk_m]\n\t"
        "ldm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t" /* both pixels' biases */
        "ldr %[x], %[cols_m]\n\t"
        "ldr %[n], %[chunks_m]\n\t"
        "tst %[n], #1\n\t"
        "beq 5f\n\t" EREID_CONV_MVE_S4_CHUNK_ASM
        "5:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 3f\n\t"
        "1:\n\t" EREID_CONV_MVE_S4_CHUNK_ASM EREID_CONV_MVE_S4_CHUNK_ASM
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:\n\t"
        "ldr %[n], %[acc_m]\n\t"
        "stm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
        "vldrw.32 q4, [%[n]]\n\t"
        "vldrw.32 q5, [%[n], #16]\n\t"
        "ldr %[n], %[blk_m]\n\t"
        "vldrw.32 q1, [%[n], #32]\n\t" /* multipliers */
        "vqrdmulh.s32 q4, q4, q1\n\t"
        "vqrdmulh.s32 q5, q5, q1\n\t"
        "vshr.s32 q2, q4, #31\n\t"
        "vshr.s32 q3, q5, #31\n\t"
        "vqadd.s32 q4, q4, q2\n\t"
        "vqadd.s32 q5, q5, q3\n\t"
        "vldrw.32 q1, [%[n], #64]\n\t" /* right shifts */
        "vrshl.s32 q4, q4, q1\n\t"
        "vrshl.s32 q5, q5, q1\n\t"
        "ldr %[x], %[off_m]\n\t"
        "vadd.i32 q4, q4, %[x]\n\t"
        "vadd.i32 q5, q5, %[x]\n\t"
        "vmax.s32 q4, q4, q6\n\t"
        "vmax.s32 q5, q5, q6\n\t"
        "vmin.s32 q4, q4, q7\n\t"
        "vmin.s32 q5, q5, q7\n\t"
        "ldr %[x], %[oa_m]\n\t"
        "vstrb.32 q4, [%[x]], #4\n\t"
        "str %[x], %[oa_m]\n\t"
        "ldr %[x], %[ob_m]\n\t"
        "vstrb.32 q5, [%[x]], #4\n\t"
        "str %[x], %[ob_m]\n\t"
        "add %[n], %[n], #96\n\t"
        "str %[n], %[blk_m]\n\t"
        "ldr %[x], %[kb_m]\n\t"
        "mov %[w0], %[w3]\n\t" /* channel 4j+4 starts where 4j+3 ended */
        "add %[w1], %[w0], %[x]\n\t"
        "add %[w2], %[w1], %[x]\n\t"
        "add %[w3], %[w2], %[x]\n\t"
        "ldr %[x], %[nb_m]\n\t"
        "subs %[x], %[x], #1\n\t"
        "str %[x], %[nb_m]\n\t"
        "bne 4b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0), [b1] "=&r"(b1),
          [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(xr), [w0] "+r"(w0r), [w1] "=&r"(w1r), [w2] "=&r"(w2r),
          [w3] "=&r"(w3r), [n] "=&r"(n), [blk_m] "+m"(blk), [oa_m] "+m"(out_a), [ob_m] "+m"(out_b),
          [nb_m] "+m"(n_blocks)
        : [cols_m] "m"(cols), [chunks_m] "m"(chunks), [kb_m] "m"(kb), [off_m] "m"(output_offset),
          [min_m] "m"(act_min), [max_m] "m"(act_max), [acc_m] "m"(acc)
        : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13",
          "d14", "d15");
}

/* MultiplyByQuantizedMultiplier, output offset, clamp and narrowing store of `lanes` (1..4)
 * channels of both pixels (acc = {A ch0..3, B ch0..3}); RoundingDivideByPOT is
 * VRSHL(VQADD(x, -[x < 0 and e > 0]), -e) (ereid_conv_mve_s8.h). */
static inline void ereid_conv_mve_s4_store_2x4(const int32_t acc[8], const ereid_conv_mve_s4_block *b,
                                               int32_t output_offset, const ereid_activation *act, int8_t *out_a,
                                               int8_t *out_b, int32_t lanes)
{
    const int32x4_t ls = vld1q_s32(b->left_shift), m = vld1q_s32(b->multiplier);
    const int32x4_t rs = vld1q_s32(b->right_shift), mask = vld1q_s32(b->fixup_mask);
    int32x4_t va = vqrdmulhq_s32(vshlq_s32(vld1q_s32(acc), ls), m);
    int32x4_t vb = vqrdmulhq_s32(vshlq_s32(vld1q_s32(acc + 4), ls), m);
    va = vrshlq_s32(vqaddq_s32(va, vandq_s32(vshrq_n_s32(va, 31), mask)), rs);
    vb = vrshlq_s32(vqaddq_s32(vb, vandq_s32(vshrq_n_s32(vb, 31), mask)), rs);
    const int32x4_t lo = vdupq_n_s32(act->min), hi = vdupq_n_s32(act->max);
    va = vminq_s32(vmaxq_s32(vaddq_n_s32(va, output_offset), lo), hi);
    vb = vminq_s32(vmaxq_s32(vaddq_n_s32(vb, output_offset), lo), hi);
    const mve_pred16_t p = vctp32q((uint32_t)lanes);
    vstrbq_p_s32(out_a, va, p);
    vstrbq_p_s32(out_b, vb, p);
}

/* The whole convolution on Helium (ereid_conv_mve_s4_scratch_need(k, out_c) bytes of
 * scratch, K even, input_offset in [-127, 128]); direct_1x1: the receptive field is the
 * input pixel. */
static inline void ereid_conv_mve_s4(void *scratch, const ereid_conv_params *p,
                                     const ereid_per_channel_quant_params *q, const ereid_dims *in_d,
                                     const int8_t *input, const ereid_dims *f_d, const int8_t *filter,
                                     const int32_t *bias, const ereid_dims *out_d, int8_t *output, int direct_1x1)
{
    const int32_t k = f_d->h * f_d->w * f_d->c, k32 = (k + 31) & ~31, out_c = out_d->c, kb = k >> 1;
    int8_t *cols = (int8_t *)(void *)(((uintptr_t)scratch + 15u) & ~(uintptr_t)15u);
    int8_t *gathered = cols + 2 * k32;
    ereid_conv_mve_s4_block *blocks = (ereid_conv_mve_s4_block *)(void *)(gathered + k32);
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t out_hw = out_d->h * out_d->w, n_px = out_d->n * out_hw;
    ereid_conv_mve_s4_prepare(p, q, filter, bias, k, out_c, blocks);
    int plain = (k & 31) == 0; /* the asm block loop: whole chunks, every channel shifting right */
    for (int32_t oc = 0; oc < out_c; oc++) {
        plain &= q->shift[oc] < 0;
    }
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
            ereid_conv_mve_s4_split(src, k, cols, lane);
        }
        /* A lone last pixel fills both lanes; both store the same bytes. */
        int8_t *out_a = output + px * out_c, *out_b = lanes == 2 ? out_a + out_c : out_a;
        int32_t oc = 0;
        if (plain && out_c >= 4) {
            ereid_conv_mve_s4_blocks_2x4(cols, filter, k, out_c >> 2, blocks, p->output_offset, &p->activation,
                                         out_a, out_b);
            oc = out_c & ~3;
        }
        for (; oc < out_c; oc += 4) {
            /* A last partial block re-reads its first channel's weights for the missing
             * lanes, which are not stored. */
            const int32_t n_ch = out_c - oc < 4 ? out_c - oc : 4;
            const int8_t *w0 = filter + oc * kb;
            const int8_t *const w[4] = {w0, n_ch > 1 ? w0 + kb : w0, n_ch > 2 ? w0 + 2 * kb : w0,
                                        n_ch > 3 ? w0 + 3 * kb : w0};
            int32_t acc[8];
            ereid_conv_mve_s4_mac_2x4(cols, w, k, blocks[oc >> 2].bias, acc);
            ereid_conv_mve_s4_store_2x4(acc, &blocks[oc >> 2], p->output_offset, &p->activation, out_a + oc,
                                        out_b + oc, n_ch);
        }
    }
}

#endif /* EREID_USE_MVE */

#endif /* EREID_CONV_MVE_S4_H */

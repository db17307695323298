/*
 * The Helium (MVE, Cortex-M55) path of the int8 CONV_2D kernels, taken by
 * ereid_conv_im2col_s8 where the build has MVE and K (= kh*kw*C) is a multiple of 16:
 *
 *   - the input offset is folded into the bias once per call: sum_k (x + off) * w =
 *     sum_k x * w + off * sum_k w (mod 2^32, as the reference's int32 sum), so the inner
 *     loop multiplies raw int8 with VMLADAVA.S8 (16 MACs per instruction); taps in the
 *     padding hold the zero point, x + off = 0 as in the reference;
 *   - 2 output pixels x 4 output channels per inner loop (8 scalar accumulators): per 16
 *     taps 2 input loads, 4 weight loads, 8 VMLADAVA. The two pixels' columns are
 *     interleaved in 16-byte chunks so one pointer walks both;
 *   - requantization on a vector of the 4 channels: VQRDMULH is gemmlowp's
 *     SaturatingRoundingDoublingHighMul exactly, and RoundingDivideByPOT is
 *     VRSHL(VQADD(x, -[x < 0 and e > 0]), -e) (round half away from zero; at INT32_MIN
 *     the saturated add gives the same quotient).
 *
 * Scratch (inside ereid_conv_im2col_scratch_bytes), from the 16-byte-aligned start:
 *   [interleaved columns: 2*K4 bytes][gather column: K4 bytes][ereid_conv_mve_block per
 *   4 output channels].
 */
#ifndef EREID_CONV_MVE_S8_H
#define EREID_CONV_MVE_S8_H

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && !defined(EREID_NO_MVE) && !defined(EREID_NO_DSP)
#define EREID_CONV_MVE 1
#include <arm_mve.h>

/* Requantization of 4 output channels, one vector lane each (96 bytes; the asm reads it
 * at these offsets). */
typedef struct {
    int32_t bias[4];       /* bias + input_offset * sum of the channel's weights */
    int32_t bias_again[4]; /* the same: one LDM sets both pixels' 8 accumulators */
    int32_t multiplier[4];
    int32_t left_shift[4];  /* max(shift, 0) */
    int32_t right_shift[4]; /* -max(-shift, 0): VRSHL by a negative amount shifts right, rounding */
    int32_t fixup_mask[4];  /* -1 where the right shift is not 0 */
} ereid_conv_mve_block;

/* The block records of every channel (a last partial block padded with zeros). */
static inline void ereid_conv_mve_prepare(const ereid_conv_params *p, const ereid_per_channel_quant_params *q,
                                          const int8_t *filter, const int32_t *bias, int32_t k, int32_t out_c,
                                          ereid_conv_mve_block *blocks)
{
    const uint32_t offset = (uint32_t)p->input_offset;
    for (int32_t oc = 0; oc < ((out_c + 3) & ~3); oc++) {
        ereid_conv_mve_block *b = &blocks[oc >> 2];
        const int32_t lane = oc & 3;
        if (oc >= out_c) {
            b->bias[lane] = b->bias_again[lane] = b->multiplier[lane] = 0;
            b->left_shift[lane] = b->right_shift[lane] = 0;
            b->fixup_mask[lane] = 0;
            continue;
        }
        int32_t sum = 0;
        const int8_t *w = filter + oc * k;
        for (int32_t i = 0; i < k; i += 16) {
            sum = vaddvaq_s8(sum, vld1q_s8(w + i));
        }
        const int32_t b0 = bias != NULL ? bias[oc] : 0;
        b->bias[lane] = (int32_t)((uint32_t)b0 + offset * (uint32_t)sum);
        b->bias_again[lane] = b->bias[lane];
        b->multiplier[lane] = q->multiplier[oc];
        b->left_shift[lane] = q->shift[oc] > 0 ? q->shift[oc] : 0;
        b->right_shift[lane] = q->shift[oc] > 0 ? 0 : q->shift[oc];
        b->fixup_mask[lane] = q->shift[oc] < 0 ? -1 : 0;
    }
}

/* Copy n (a multiple of 16) int8 into lane (0: A, 1: B) of the interleaved columns. */
static inline void ereid_conv_mve_interleave(const int8_t *src, int32_t n, int8_t *cols, int32_t lane)
{
    int8_t *dst = cols + 16 * lane;
    for (int32_t i = 0; i < n; i += 16, dst += 32) {
        vst1q_s8(dst, vld1q_s8(src + i));
    }
}

/* Layer-wide constants of the requantization tail. */
typedef struct {
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    int left_shifts;  /* some channel has shift > 0 */
    int all_right;    /* every channel has shift < 0: the rounding fixup needs no mask */
} ereid_conv_mve_tail;

/* RoundingDivideByPOT after VQRDMULH (see the header comment). */
static inline int32x4_t ereid_conv_mve_rdbpot(int32x4_t x, const ereid_conv_mve_block *b, int all_right)
{
    int32x4_t fix = vshrq_n_s32(x, 31);
    if (!all_right) {
        fix = vandq_s32(fix, vld1q_s32(b->fixup_mask));
    }
    return vrshlq_s32(vqaddq_s32(x, fix), vld1q_s32(b->right_shift));
}

/* ereid_conv_gather_s8 straight into lane `lane` of the interleaved columns, for C a
 * multiple of 16 (every tap is whole chunks): one pass instead of gather + interleave. */
static inline void ereid_conv_mve_gather(const ereid_conv_params *p, const ereid_dims *in_d, const int8_t *in_batch,
                                         const ereid_dims *f_d, int32_t iy0, int32_t ix0, int8_t pad, int8_t *cols,
                                         int32_t lane)
{
    const int32_t in_c = in_d->c, k_w = f_d->w;
    const int8x16_t pad_v = vdupq_n_s8(pad);
    int8_t *dst = cols + 16 * lane;
    for (int32_t ky = 0; ky < f_d->h; ky++) {
        const int32_t iy = iy0 + ky * p->dilation.h;
        if (iy < 0 || iy >= in_d->h) {
            for (int32_t i = 0; i < k_w * in_c; i += 16, dst += 32) {
                vst1q_s8(dst, pad_v);
            }
            continue;
        }
        const int8_t *row = in_batch + iy * in_d->w * in_c;
        if (p->dilation.w == 1 && ix0 >= 0 && ix0 + k_w <= in_d->w) {
            const int8_t *src = row + ix0 * in_c; /* the filter row's taps are contiguous */
            for (int32_t i = 0; i < k_w * in_c; i += 16, dst += 32) {
                vst1q_s8(dst, vld1q_s8(src + i));
            }
            continue;
        }
        for (int32_t kx = 0; kx < k_w; kx++) {
            const int32_t ix = ix0 + kx * p->dilation.w;
            const int inside = ix >= 0 && ix < in_d->w;
            const int8_t *src = row + (inside ? ix : 0) * in_c;
            for (int32_t i = 0; i < in_c; i += 16, dst += 32) {
                vst1q_s8(dst, inside ? vld1q_s8(src + i) : pad_v);
            }
        }
    }
}

/* MultiplyByQuantizedMultiplier, output offset, clamp and narrowing store of the 4
 * channels of both pixels (acc = {A ch0..3, B ch0..3}); `lanes` < 4: a last partial block. */
static inline void ereid_conv_mve_store_2x4(const int32_t acc[8], const ereid_conv_mve_block *b,
                                            const ereid_conv_mve_tail *t, int8_t *out_a, int8_t *out_b,
                                            int32_t lanes)
{
    int32x4_t va = vld1q_s32(acc), vb = vld1q_s32(acc + 4);
    if (t->left_shifts) {
        const int32x4_t ls = vld1q_s32(b->left_shift);
        va = vshlq_s32(va, ls);
        vb = vshlq_s32(vb, ls);
    }
    const int32x4_t m = vld1q_s32(b->multiplier);
    va = ereid_conv_mve_rdbpot(vqrdmulhq_s32(va, m), b, t->all_right);
    vb = ereid_conv_mve_rdbpot(vqrdmulhq_s32(vb, m), b, t->all_right);
    const int32x4_t lo = vdupq_n_s32(t->act_min), hi = vdupq_n_s32(t->act_max);
    va = vminq_s32(vmaxq_s32(vaddq_n_s32(va, t->output_offset), lo), hi);
    vb = vminq_s32(vmaxq_s32(vaddq_n_s32(vb, t->output_offset), lo), hi);
    if (lanes == 4) {
        vstrbq_s32(out_a, va);
        vstrbq_s32(out_b, vb);
    } else {
        const mve_pred16_t p = vctp32q((uint32_t)lanes);
        vstrbq_p_s32(out_a, va, p);
        vstrbq_p_s32(out_b, vb, p);
    }
}

/* One chunk of 16 taps: both pixels' 16 inputs, then per channel 16 weights and two
 * VMLADAVA (14 instructions, 128 MACs). */
#define EREID_CONV_MVE_CHUNK_ASM                                                                              \
    "vldrb.8 q0, [%[x]], #16\n\t"                                                                             \
    "vldrb.8 q1, [%[x]], #16\n\t"                                                                             \
    "vldrb.8 q2, [%[w0]], #16\n\t"                                                                            \
    "vmladava.s8 %[a0], q0, q2\n\t"                                                                           \
    "vmladava.s8 %[b0], q1, q2\n\t"                                                                           \
    "vldrb.8 q3, [%[w1]], #16\n\t"                                                                            \
    "vmladava.s8 %[a1], q0, q3\n\t"                                                                           \
    "vmladava.s8 %[b1], q1, q3\n\t"                                                                           \
    "vldrb.8 q2, [%[w2]], #16\n\t"                                                                            \
    "vmladava.s8 %[a2], q0, q2\n\t"                                                                           \
    "vmladava.s8 %[b2], q1, q2\n\t"                                                                           \
    "vldrb.8 q3, [%[w3]], #16\n\t"                                                                            \
    "vmladava.s8 %[a3], q0, q3\n\t"                                                                           \
    "vmladava.s8 %[b3], q1, q3\n\t"

/* acc = {A ch0..3, B ch0..3} = bias + the dot products of k16 chunks of the interleaved
 * columns x with the 4 channels' weights. VMLADAVA accumulates into an even core
 * register, so the 8 accumulators are pinned to r0, r2, ..., r12, lr (gcc spills
 * pointers out of the loop when it allocates the intrinsics version); STM then stores
 * them in lane order with one instruction. */
static inline void ereid_conv_mve_mac_2x4(const int8_t *x, const int8_t *w0, const int8_t *w1, const int8_t *w2,
                                          const int8_t *w3, int32_t k16, const int32_t bias[4], int32_t acc[8])
{
    register int32_t a0 __asm__("r0") = bias[0];
    register int32_t a1 __asm__("r2") = bias[1];
    register int32_t a2 __asm__("r4") = bias[2];
    register int32_t a3 __asm__("r6") = bias[3];
    register int32_t b0 __asm__("r8") = bias[0];
    register int32_t b1 __asm__("r10") = bias[1];
    register int32_t b2 __asm__("r12") = bias[2];
    register int32_t b3 __asm__("lr") = bias[3];
    register const int8_t *xr __asm__("r1") = x;
    register const int8_t *w0r __asm__("r3") = w0;
    register const int8_t *w1r __asm__("r5") = w1;
    register const int8_t *w2r __asm__("r7") = w2;
    register const int8_t *w3r __asm__("r9") = w3;
    register int32_t n __asm__("r11") = k16;
    __asm__ volatile(
        "tst %[n], #1\n\t"
        "beq 2f\n\t" EREID_CONV_MVE_CHUNK_ASM
        "2:\n\t"
        "lsrs %[n], %[n], #1\n\t"
        "beq 3f\n\t"
        "1:\n\t" EREID_CONV_MVE_CHUNK_ASM EREID_CONV_MVE_CHUNK_ASM
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "3:\n\t"
        "ldr %[n], %[acc_m]\n\t"
        "stm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b0] "+r"(b0), [b1] "+r"(b1),
          [b2] "+r"(b2), [b3] "+r"(b3), [x] "+r"(xr), [w0] "+r"(w0r), [w1] "+r"(w1r), [w2] "+r"(w2r),
          [w3] "+r"(w3r), [n] "+r"(n)
        : [acc_m] "m"(acc)
        : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7");
}

/* Block loop head, MAC loop (k16 % 4 chunks first, then 4 per iteration), accumulators into
 * q4 (pixel A) and q5 (pixel B). */
#define EREID_CONV_MVE_BLOCK_HEAD                                                                                     \
    "ldr %[n], %[min_m]\n\t"                                                                                          \
    "vdup.32 q6, %[n]\n\t"                                                                                            \
    "ldr %[n], %[max_m]\n\t"                                                                                          \
    "vdup.32 q7, %[n]\n\t"                                                                                            \
    "ldr %[x], %[k_m]\n\t"                                                                                            \
    "add %[w1], %[w0], %[x]\n\t"                                                                                      \
    "add %[w2], %[w1], %[x]\n\t"                                                                                      \
    "add %[w3], %[w2], %[x]\n\t"                                                                                      \
    "4:\n\t"                                                                                                          \
    "ldr %[n], %[blk_m]\n\t"                                                                                          \
    "ldm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t" /* both pixels' biases */                                      \
    "ldr %[x], %[cols_m]\n\t"                                                                                         \
    "ldr %[n], %[k16_m]\n\t"                                                                                          \
    "tst %[n], #1\n\t"                                                                                                \
    "beq 5f\n\t" EREID_CONV_MVE_CHUNK_ASM                                                                             \
    "5:\n\t"                                                                                                          \
    "tst %[n], #2\n\t"                                                                                                \
    "beq 2f\n\t" EREID_CONV_MVE_CHUNK_ASM EREID_CONV_MVE_CHUNK_ASM                                                    \
    "2:\n\t"                                                                                                          \
    "lsrs %[n], %[n], #2\n\t"                                                                                         \
    "beq 3f\n\t"                                                                                                      \
    "1:\n\t" EREID_CONV_MVE_CHUNK_ASM EREID_CONV_MVE_CHUNK_ASM EREID_CONV_MVE_CHUNK_ASM                               \
    EREID_CONV_MVE_CHUNK_ASM                                                                                          \
    "subs %[n], %[n], #1\n\t"                                                                                         \
    "bne 1b\n\t"                                                                                                      \
    "3:\n\t"                                                                                                          \
    "ldr %[n], %[acc_m]\n\t"                                                                                          \
    "stm %[n], {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"                                                                \
    "vldrw.32 q4, [%[n]]\n\t"                                                                                         \
    "vldrw.32 q5, [%[n], #16]\n\t"                                                                                    \
    "ldr %[n], %[blk_m]\n\t"
/* Left shifts (only where some channel has shift > 0). */
#define EREID_CONV_MVE_BLOCK_LEFT                                                                                     \
    "vldrw.32 q1, [%[n], #48]\n\t"                                                                                    \
    "vshl.s32 q4, q4, q1\n\t"                                                                                         \
    "vshl.s32 q5, q5, q1\n\t"
/* VQRDMULH, then the sign of each lane for the rounding fixup. */
#define EREID_CONV_MVE_BLOCK_MUL                                                                                      \
    "vldrw.32 q1, [%[n], #32]\n\t"                                                                                    \
    "vqrdmulh.s32 q4, q4, q1\n\t"                                                                                     \
    "vqrdmulh.s32 q5, q5, q1\n\t"                                                                                     \
    "vshr.s32 q2, q4, #31\n\t"                                                                                        \
    "vshr.s32 q3, q5, #31\n\t"
/* The fixup only where the right shift is not 0 (some channel has shift >= 0). */
#define EREID_CONV_MVE_BLOCK_MASK                                                                                     \
    "vldrw.32 q1, [%[n], #80]\n\t"                                                                                    \
    "vand q2, q2, q1\n\t"                                                                                             \
    "vand q3, q3, q1\n\t"
/* Rounding shift, offset, clamp, stores, next block. */
#define EREID_CONV_MVE_BLOCK_TAIL                                                                                     \
    "vqadd.s32 q4, q4, q2\n\t"                                                                                        \
    "vqadd.s32 q5, q5, q3\n\t"                                                                                        \
    "vldrw.32 q1, [%[n], #64]\n\t"                                                                                    \
    "vrshl.s32 q4, q4, q1\n\t"                                                                                        \
    "vrshl.s32 q5, q5, q1\n\t"                                                                                        \
    "ldr %[x], %[off_m]\n\t"                                                                                          \
    "vadd.i32 q4, q4, %[x]\n\t"                                                                                       \
    "vadd.i32 q5, q5, %[x]\n\t"                                                                                       \
    "vmax.s32 q4, q4, q6\n\t"                                                                                         \
    "vmax.s32 q5, q5, q6\n\t"                                                                                         \
    "vmin.s32 q4, q4, q7\n\t"                                                                                         \
    "vmin.s32 q5, q5, q7\n\t"                                                                                         \
    "ldr %[x], %[oa_m]\n\t"                                                                                           \
    "vstrb.32 q4, [%[x]], #4\n\t"                                                                                     \
    "str %[x], %[oa_m]\n\t"                                                                                           \
    "ldr %[x], %[ob_m]\n\t"                                                                                           \
    "vstrb.32 q5, [%[x]], #4\n\t"                                                                                     \
    "str %[x], %[ob_m]\n\t"                                                                                           \
    "add %[n], %[n], #96\n\t"                                                                                         \
    "str %[n], %[blk_m]\n\t"                                                                                          \
    "ldr %[x], %[k_m]\n\t"                                                                                            \
    "mov %[w0], %[w3]\n\t" /* channel 4j+4 starts where 4j+3 ended */                                                 \
    "add %[w1], %[w0], %[x]\n\t"                                                                                      \
    "add %[w2], %[w1], %[x]\n\t"                                                                                      \
    "add %[w3], %[w2], %[x]\n\t"                                                                                      \
    "ldr %[x], %[nb_m]\n\t"                                                                                           \
    "subs %[x], %[x], #1\n\t"                                                                                         \
    "str %[x], %[nb_m]\n\t"                                                                                           \
    "bne 4b\n\t"
/* Operands of the block loop (ereid_conv_mve_blocks_2x4). */
#define EREID_CONV_MVE_BLOCK_OPERANDS                                                                                 \
    : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [b0] "=&r"(b0), [b1] "=&r"(b1),                 \
    [b2] "=&r"(b2), [b3] "=&r"(b3), [x] "=&r"(xr), [w0] "+r"(w0r), [w1] "=&r"(w1r), [w2] "=&r"(w2r),                  \
    [w3] "=&r"(w3r), [n] "=&r"(n), [blk_m] "+m"(blk), [oa_m] "+m"(out_a), [ob_m] "+m"(out_b),                         \
    [nb_m] "+m"(n_blocks)                                                                                             \
    : [cols_m] "m"(cols), [k16_m] "m"(k16), [k_m] "m"(k), [off_m] "m"(output_offset), [min_m] "m"(act_min),           \
    [max_m] "m"(act_max), [acc_m] "m"(acc)                                                                            \
    : "cc", "memory", "d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10", "d11", "d12", "d13",         \
    "d14", "d15"

/* Every full block of 4 output channels of two pixels in one asm: per block the MAC loop
 * of ereid_conv_mve_mac_2x4, then the requantization of ereid_conv_mve_store_2x4 on the
 * accumulators moved into q4 (pixel A) and q5 (pixel B) by one STM and two VLDRW, then
 * two VSTRB.32. The filter pointers run on from block to block; what the loop does not keep in registers
 * (all 14 hold its state) is on the stack ("m"). `plain`: no channel shifts left and every
 * one right, the common case, which skips the left shift and the fixup's mask. */
static inline void ereid_conv_mve_blocks_2x4(const int8_t *cols, const int8_t *filter, int32_t k, int32_t n_blocks,
                                             const ereid_conv_mve_block *blk, const ereid_conv_mve_tail *t,
                                             int8_t *out_a, int8_t *out_b, int plain)
{
    const int32_t k16 = k >> 4, output_offset = t->output_offset, act_min = t->act_min, act_max = t->act_max;
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
    if (plain) {
        __asm__ volatile(EREID_CONV_MVE_BLOCK_HEAD EREID_CONV_MVE_BLOCK_MUL EREID_CONV_MVE_BLOCK_TAIL
                         EREID_CONV_MVE_BLOCK_OPERANDS);
    } else {
        __asm__ volatile(EREID_CONV_MVE_BLOCK_HEAD EREID_CONV_MVE_BLOCK_LEFT EREID_CONV_MVE_BLOCK_MUL
                             EREID_CONV_MVE_BLOCK_MASK EREID_CONV_MVE_BLOCK_TAIL EREID_CONV_MVE_BLOCK_OPERANDS);
    }
}

/* The whole convolution on Helium (K a multiple of 16, ereid_conv_im2col_usable). */
static inline void ereid_conv_mve_s8(void *scratch, const ereid_conv_params *p,
                                     const ereid_per_channel_quant_params *q, const ereid_dims *in_d,
                                     const int8_t *input, const ereid_dims *f_d, const int8_t *filter,
                                     const int32_t *bias, const ereid_dims *out_d, int8_t *output, int gather_1x1)
{
    const int32_t k = f_d->h * f_d->w * f_d->c, out_c = out_d->c, k16 = k >> 4;
    int8_t *cols = (int8_t *)(void *)(((uintptr_t)scratch + 15u) & ~(uintptr_t)15u);
    int8_t *gathered = cols + 2 * k;
    ereid_conv_mve_block *blocks = (ereid_conv_mve_block *)(void *)(gathered + k);
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t out_hw = out_d->h * out_d->w, n_px = out_d->n * out_hw;
    ereid_conv_mve_tail tail = {p->output_offset, p->activation.min, p->activation.max, 0, 1};
    for (int32_t oc = 0; oc < out_c; oc++) {
        tail.left_shifts |= q->shift[oc] > 0;
        tail.all_right &= q->shift[oc] < 0;
    }
    ereid_conv_mve_prepare(p, q, filter, bias, k, out_c, blocks);
    for (int32_t px = 0; px < n_px; px += 2) {
        const int32_t lanes = px + 1 < n_px ? 2 : 1;
        for (int32_t lane = 0; lane < 2; lane++) {
            const int32_t i = px + (lane < lanes ? lane : 0);
            const int32_t b = i / out_hw, oy = (i % out_hw) / out_d->w, ox = i % out_d->w;
            const int32_t iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
            const int8_t *in_batch = input + b * in_d->h * in_d->w * in_d->c;
            const int8_t *src = gathered;
            if (gather_1x1) {
                src = in_batch + (iy0 * in_d->w + ix0) * in_d->c;
            } else if ((in_d->c & 15) == 0) {
                ereid_conv_mve_gather(p, in_d, in_batch, f_d, iy0, ix0, pad, cols, lane);
                continue;
            } else {
                ereid_conv_gather_s8(p, in_d, in_batch, f_d, iy0, ix0, pad, gathered);
            }
            ereid_conv_mve_interleave(src, k, cols, lane);
        }
        int8_t *out_a = output + px * out_c, *out_b = lanes == 2 ? out_a + out_c : out_a;
        const int8_t *w = filter;
        const ereid_conv_mve_block *blk = blocks;
        int32_t acc[8];
        int32_t oc = 0;
        if (out_c >= 4) {
            ereid_conv_mve_blocks_2x4(cols, filter, k, out_c >> 2, blocks, &tail, out_a, out_b,
                                      !tail.left_shifts && tail.all_right);
            oc = out_c & ~3;
            w += oc * k;
            blk += oc >> 2;
        }
        for (; oc + 4 <= out_c; oc += 4, w += 4 * k, blk++) {
            ereid_conv_mve_mac_2x4(cols, w, w + k, w + 2 * k, w + 3 * k, k16, blk->bias, acc);
            ereid_conv_mve_store_2x4(acc, blk, &tail, out_a + oc, out_b + oc, 4);
        }
        if (oc < out_c) {
            /* A last partial block re-reads its first channel's weights for the missing
             * lanes, which are not stored. */
            const int32_t n_ch = out_c - oc;
            ereid_conv_mve_mac_2x4(cols, w, n_ch > 1 ? w + k : w, n_ch > 2 ? w + 2 * k : w, w, k16, blk->bias, acc);
            ereid_conv_mve_store_2x4(acc, blk, &tail, out_a + oc, out_b + oc, n_ch);
        }
    }
}

/* Scratch the Helium path uses (within ereid_conv_im2col_scratch_bytes's). */
static inline int64_t ereid_conv_mve_scratch_bytes(int32_t k, int32_t out_c)
{
    return 15 + 3 * (int64_t)k + (int64_t)sizeof(ereid_conv_mve_block) * ((out_c + 3) / 4);
}
#endif

#endif /* EREID_CONV_MVE_S8_H */

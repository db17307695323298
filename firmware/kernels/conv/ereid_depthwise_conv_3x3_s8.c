/* DEPTHWISE_CONV_2D int8, ch_mult 1, 3x3 filter, dilation 1: the common
 * MobileNet-style layer.
 *
 * Three paths, the same bytes (tests/c/test_kernels.c, QEMU vs LiteRT BUILTIN_REF):
 *   - portable: per pixel and channel, interior pixels skip the per-tap bounds checks;
 *   - ARMv7E-M DSP: four channels per step, one accumulator per channel (SMLABB/SMLATT);
 *     channels in blocks with the input offset folded into the bias and the weights
 *     sign-extended once (ereid_dw_support.h), so an interior pixel's tap is LDR, LDRD,
 *     two SXTB16 and four multiply-accumulates; border pixels run their in-range taps
 *     with the offset added per tap;
 *   - Helium (Cortex-M55): eight channels per step in int16 lanes (VMULLB / VMULLT into
 *     even / odd int32 accumulators), two interior pixels per step sharing the weight
 *     loads, vector requantization (VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul;
 *     VRSHL after a -1 on negative lanes is RoundingDivideByPOT).
 * The fast paths need shifts in [-21, -1], biases below 2^29 and offsets within +-255
 * (ereid_dw_fast_applies: every sum stays below 2^30, so the requantization can be
 * shortened exactly); any other layer runs the portable path. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"
#include "ereid_dw_support.h"
#include "ereid_mve.h"

/* Accumulate channels [ic, ic+n) of one output pixel over the in-bounds taps. */
static void ereid_dw3x3_pixel(const int8_t *in_batch, int32_t in_h, int32_t in_w, int32_t in_c, int32_t iy0,
                              int32_t ix0, const int8_t *filter, int32_t input_offset, int32_t ic, int32_t *acc,
                              int32_t n)
{
    const int interior = iy0 >= 0 && iy0 + 2 < in_h && ix0 >= 0 && ix0 + 2 < in_w;
    for (int32_t ky = 0; ky < 3; ky++) {
        const int32_t iy = iy0 + ky;
        if (!interior && (iy < 0 || iy >= in_h)) {
            continue;
        }
        for (int32_t kx = 0; kx < 3; kx++) {
            const int32_t ix = ix0 + kx;
            if (!interior && (ix < 0 || ix >= in_w)) {
                continue;
            }
            const int8_t *in_tap = in_batch + (iy * in_w + ix) * in_c + ic;
            const int8_t *f_tap = filter + (ky * 3 + kx) * in_c + ic;
#if EREID_USE_DSP
            if (n == 4) {
                ereid_mac4_s8_offset(in_tap, f_tap, ereid_dup16(input_offset), acc);
                continue;
            }
#endif
            for (int32_t k = 0; k < n; k++) {
                acc[k] += ((int32_t)in_tap[k] + input_offset) * (int32_t)f_tap[k];
            }
        }
    }
}

#if EREID_USE_MVE
/* Requantize four channels (lanes where p is set), add the output offset, clamp, store.
 * Shifts are <= 0 here (ereid_dw_fast_applies), so there is no left shift. */
static inline void ereid_dw3x3_store_mve(int32x4_t acc, const int32_t *mult, const int32_t *shift,
                                         int32_t output_offset, int32_t lo, int32_t hi, int8_t *out, mve_pred16_t p)
{
    const int32x4_t right = vldrwq_z_s32(shift, p); /* minus the right shift */
    acc = vqrdmulhq_s32(acc, vldrwq_z_s32(mult, p));
    acc = vrshlq_s32(vqaddq_s32(acc, vshrq_n_s32(vandq_s32(acc, right), 31)), right);
    acc = vminq_s32(vmaxq_s32(vaddq_n_s32(acc, output_offset), vdupq_n_s32(lo)), vdupq_n_s32(hi));
    vstrbq_p_s32(out, acc, p);
}

/* Requantize a group of eight channels of one pixel (even and odd channels' accumulators,
 * parameters in even/odd order at mult / shift): the rounding in int32, then a saturating
 * narrowing to int16 that puts the channels back in order (VQMOVNB / VQMOVNT), the output
 * offset added saturating, the clamp, one 8-byte store. Saturating at +-32767 keeps the
 * clamp exact: a value beyond it is beyond [lo, hi] minus any offset of +-255 too. */
static inline void ereid_dw3x3_store8_mve(int32x4_t ae, int32x4_t ao, const int32_t *mult, const int32_t *shift,
                                          int16_t output_offset, int16x8_t vlo, int16x8_t vhi, int8_t *out)
{
    const int32x4_t re = vldrwq_s32(shift), ro = vldrwq_s32(shift + 4);
    ae = vqrdmulhq_s32(ae, vldrwq_s32(mult));
    ao = vqrdmulhq_s32(ao, vldrwq_s32(mult + 4));
    ae = vrshlq_s32(vqaddq_s32(ae, vshrq_n_s32(vandq_s32(ae, re), 31)), re);
    ao = vrshlq_s32(vqaddq_s32(ao, vshrq_n_s32(vandq_s32(ao, ro), 31)), ro);
    int16x8_t v = vqmovnbq_s32(vdupq_n_s16(0), ae);
    v = vqmovntq_s32(v, ao);
    v = vminq_s16(vmaxq_s16(vqaddq_n_s16(v, output_offset), vlo), vhi);
    vstrbq_s16(out, v);
}

/* One output pixel, channels [c_begin, n) of the block (c_begin a multiple of 8): the pixel's taps inside the input are
 * `rows` x `cols` from the first one, at which x and w point (the block's first channel);
 * `acc_init` / `acc_init_eo` are the folded biases (offset 0: interior pixel) or the
 * biases (the offset added per tap: border pixel). Eight channels per step in int16
 * lanes (VMULLB / VMULLT: even and odd channels), a last partial group four at a time. */
static void ereid_dw3x3_pixel_mve(const int8_t *x, int32_t in_c, int32_t row_stride, const int8_t *w, int32_t rows,
                                  int32_t cols, int32_t input_offset, const int32_t *acc_init,
                                  const int32_t *acc_init_eo, const ereid_dw_block *blk, const int32_t *mult,
                                  const int32_t *shift, int32_t c_begin, int32_t n, const ereid_dw_conv_params *p,
                                  int8_t *out)
{
    const int16x8_t vlo16 = vdupq_n_s16((int16_t)p->activation.min), vhi16 = vdupq_n_s16((int16_t)p->activation.max);
    int32_t c = c_begin;
    for (; c + 8 <= n; c += 8) {
        int32x4_t ae = vldrwq_s32(acc_init_eo + c), ao = vldrwq_s32(acc_init_eo + c + 4);
        const int8_t *xr = x + c, *wr = w + c;
        for (int32_t ky = 0; ky < rows; ky++) {
            for (int32_t kx = 0; kx < cols; kx++) {
                const int16x8_t xv = vaddq_n_s16(vldrbq_s16(xr + kx * in_c), (int16_t)input_offset);
                const int16x8_t wv = vldrbq_s16(wr + kx * in_c);
                ae = vaddq_s32(ae, vmullbq_int_s16(xv, wv));
                ao = vaddq_s32(ao, vmulltq_int_s16(xv, wv));
            }
            xr += row_stride;
            wr += 3 * in_c;
        }
        ereid_dw3x3_store8_mve(ae, ao, blk->eo_multiplier + c, blk->eo_shift + c, (int16_t)p->output_offset, vlo16,
                               vhi16, out + c);
    }
    for (; c < n; c += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - c));
        int32x4_t acc = vldrwq_z_s32(acc_init + c, pr);
        const int8_t *xr = x + c, *wr = w + c;
        for (int32_t ky = 0; ky < rows; ky++) {
            for (int32_t kx = 0; kx < cols; kx++) {
                const int32x4_t xv = vaddq_n_s32(vldrbq_z_s32(xr + kx * in_c, pr), input_offset);
                acc = vaddq_s32(acc, vmulq_s32(xv, vldrbq_z_s32(wr + kx * in_c, pr)));
            }
            xr += row_stride;
            wr += 3 * in_c;
        }
        ereid_dw3x3_store_mve(acc, mult + c, shift + c, p->output_offset, p->activation.min, p->activation.max,
                              out + c, pr);
    }
}

/* Two output pixels with the same tap window (`rows` x `cols` in range from x / w, the
 * second pixel's taps x_step bytes further), the offset added per tap: border pixels of the
 * top and bottom rows side by side, or of the left and right columns one above the other.
 * Eight channels per step share the weight loads; a last partial group pixel by pixel. */
static void ereid_dw3x3_pair_mve(const int8_t *x, int32_t x_step, int32_t in_c, int32_t row_stride, const int8_t *w,
                                 int32_t rows, int32_t cols, const int32_t *acc_init, const ereid_dw_block *blk,
                                 const int32_t *mult, const int32_t *shift, int32_t n, const ereid_dw_conv_params *p,
                                 int8_t *out0, int8_t *out1)
{
    const int16x8_t vlo16 = vdupq_n_s16((int16_t)p->activation.min), vhi16 = vdupq_n_s16((int16_t)p->activation.max);
    const int16_t off16 = (int16_t)p->output_offset, in_off16 = (int16_t)p->input_offset;
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        int32x4_t ae0 = vldrwq_s32(blk->eo_bias + c), ao0 = vldrwq_s32(blk->eo_bias + c + 4);
        int32x4_t ae1 = ae0, ao1 = ao0;
        const int8_t *xr = x + c, *wr = w + c;
        for (int32_t ky = 0; ky < rows; ky++) {
            for (int32_t kx = 0; kx < cols; kx++) {
                const int16x8_t wv = vldrbq_s16(wr + kx * in_c);
                const int16x8_t x0 = vaddq_n_s16(vldrbq_s16(xr + kx * in_c), in_off16);
                const int16x8_t x1 = vaddq_n_s16(vldrbq_s16(xr + x_step + kx * in_c), in_off16);
                ae0 = vaddq_s32(ae0, vmullbq_int_s16(x0, wv));
                ao0 = vaddq_s32(ao0, vmulltq_int_s16(x0, wv));
                ae1 = vaddq_s32(ae1, vmullbq_int_s16(x1, wv));
                ao1 = vaddq_s32(ao1, vmulltq_int_s16(x1, wv));
            }
            xr += row_stride;
            wr += 3 * in_c;
        }
        const int32_t *me = blk->eo_multiplier + c, *se = blk->eo_shift + c;
        ereid_dw3x3_store8_mve(ae0, ao0, me, se, off16, vlo16, vhi16, out0 + c);
        ereid_dw3x3_store8_mve(ae1, ao1, me, se, off16, vlo16, vhi16, out1 + c);
    }
    if (c < n) {
        ereid_dw3x3_pixel_mve(x, in_c, row_stride, w, rows, cols, p->input_offset, acc_init, blk->eo_bias, blk, mult,
                              shift, c, n, p, out0);
        ereid_dw3x3_pixel_mve(x + x_step, in_c, row_stride, w, rows, cols, p->input_offset, acc_init, blk->eo_bias,
                              blk, mult, shift, c, n, p, out1);
    }
}

/* Two horizontally adjacent interior output pixels (top-left taps x and x + x_step),
 * channels [0, n) of the block, offset folded; eight channels per step. */
static void ereid_dw3x3_interior2_mve(const int8_t *x, int32_t x_step, int32_t in_c, int32_t row_stride,
                                      const int8_t *w, const ereid_dw_block *blk, const int32_t *mult,
                                      const int32_t *shift, int32_t n, const ereid_dw_conv_params *p, int8_t *out0,
                                      int8_t *out1)
{
    const int16x8_t vlo16 = vdupq_n_s16((int16_t)p->activation.min), vhi16 = vdupq_n_s16((int16_t)p->activation.max);
    const int16_t off16 = (int16_t)p->output_offset; /* within +-255 (ereid_dw_fast_applies) */
    const int32_t in_c2 = 2 * in_c, in_c3 = 3 * in_c;
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        int32x4_t ae0 = vldrwq_s32(blk->eo_folded_bias + c), ao0 = vldrwq_s32(blk->eo_folded_bias + c + 4);
        int32x4_t ae1 = ae0, ao1 = ao0;
        const int8_t *xr = x + c, *wr = w + c;
/* one tap, both pixels, the weights loaded once; one asm block so that the compiler
 * cannot hoist the loads of later taps (it then spills the accumulators); VLDRB.S16
 * takes a low base register ("l") */
#define EREID_DW3X3_TAP2_MVE(off)                                                                             \
    do {                                                                                                      \
        int16x8_t wv_, xv_;                                                                                   \
        int32x4_t t_;                                                                                         \
        __asm__("vldrb.s16 %q[w], [%[pw]]\n\t"                                                                \
                "vldrb.s16 %q[x], [%[p0]]\n\t"                                                                \
                "vmullb.s16 %q[t], %q[x], %q[w]\n\t"                                                          \
                "vadd.i32 %q[ae0], %q[ae0], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[x], %q[w]\n\t"                                                          \
                "vadd.i32 %q[ao0], %q[ao0], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[x], [%[p1]]\n\t"                                                                \
                "vmullb.s16 %q[t], %q[x], %q[w]\n\t"                                                          \
                "vadd.i32 %q[ae1], %q[ae1], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[x], %q[w]\n\t"                                                          \
                "vadd.i32 %q[ao1], %q[ao1], %q[t]"                                                            \
                : [ae0] "+w"(ae0), [ao0] "+w"(ao0), [ae1] "+w"(ae1), [ao1] "+w"(ao1), [w] "=&w"(wv_),             \
                  [x] "=&w"(xv_), [t] "=&w"(t_)                                                               \
                : [pw] "l"(wr + (off)), [p0] "l"(xr + (off)), [p1] "l"(xr + x_step + (off))                   \
                : "memory");                                                                                  \
    } while (0)
/* stride 1: the second pixel's tap kx is the first one's kx + 1, so a filter row reads
 * four input columns for both pixels (seven loads instead of nine); xa keeps the column
 * both pixels use next */
#define EREID_DW3X3_ROW2_S1_MVE()                                                                             \
    do {                                                                                                      \
        int16x8_t wv_, xa_, xb_;                                                                              \
        int32x4_t t_;                                                                                         \
        __asm__("vldrb.s16 %q[w], [%[w0]]\n\t"                                                                \
                "vldrb.s16 %q[xa], [%[x0]]\n\t"                                                               \
                "vmullb.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae0], %q[ae0], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao0], %q[ao0], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[xb], [%[x1]]\n\t"                                                               \
                "vmullb.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae1], %q[ae1], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao1], %q[ao1], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[w], [%[w1]]\n\t"                                                                \
                "vmullb.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae0], %q[ae0], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao0], %q[ao0], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[xa], [%[x2]]\n\t"                                                               \
                "vmullb.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae1], %q[ae1], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao1], %q[ao1], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[w], [%[w2]]\n\t"                                                                \
                "vmullb.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae0], %q[ae0], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xa], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao0], %q[ao0], %q[t]\n\t"                                                        \
                "vldrb.s16 %q[xb], [%[x3]]\n\t"                                                               \
                "vmullb.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ae1], %q[ae1], %q[t]\n\t"                                                        \
                "vmullt.s16 %q[t], %q[xb], %q[w]\n\t"                                                         \
                "vadd.i32 %q[ao1], %q[ao1], %q[t]"                                                            \
                : [ae0] "+w"(ae0), [ao0] "+w"(ao0), [ae1] "+w"(ae1), [ao1] "+w"(ao1), [w] "=&w"(wv_),             \
                  [xa] "=&w"(xa_), [xb] "=&w"(xb_), [t] "=&w"(t_)                                             \
                : [w0] "l"(wr), [w1] "l"(wr + in_c), [w2] "l"(wr + in_c2), [x0] "l"(xr), [x1] "l"(xr + in_c),     \
                  [x2] "l"(xr + in_c2), [x3] "l"(xr + in_c3)                                                  \
                : "memory");                                                                                  \
    } while (0)
        if (x_step == in_c) {
            for (int32_t ky = 0; ky < 3; ky++) {
                EREID_DW3X3_ROW2_S1_MVE();
                xr += row_stride;
                wr += in_c3;
            }
        } else {
            for (int32_t ky = 0; ky < 3; ky++) {
                EREID_DW3X3_TAP2_MVE(0);
                EREID_DW3X3_TAP2_MVE(in_c);
                EREID_DW3X3_TAP2_MVE(in_c2);
                xr += row_stride;
                wr += in_c3;
            }
        }
#undef EREID_DW3X3_ROW2_S1_MVE
#undef EREID_DW3X3_TAP2_MVE
        const int32_t *me = blk->eo_multiplier + c, *se = blk->eo_shift + c;
        ereid_dw3x3_store8_mve(ae0, ao0, me, se, off16, vlo16, vhi16, out0 + c);
        ereid_dw3x3_store8_mve(ae1, ao1, me, se, off16, vlo16, vhi16, out1 + c);
    }
    if (c < n) { /* the last partial group of eight, pixel by pixel */
        ereid_dw3x3_pixel_mve(x, in_c, row_stride, w, 3, 3, 0, blk->folded_bias, blk->eo_folded_bias, blk, mult,
                              shift, c, n, p, out0);
        ereid_dw3x3_pixel_mve(x + x_step, in_c, row_stride, w, 3, 3, 0, blk->folded_bias, blk->eo_folded_bias, blk,
                              mult, shift, c, n, p, out1);
    }
}
#elif EREID_USE_DSP
/* One interior output pixel, channels [0, n) of a block: x, w point at the top-left tap
 * of the block's first channel, mult / shift / out at the block's first channel. */
EREID_DW_NOINLINE static void ereid_dw3x3_interior_dsp(const int8_t *x, int32_t in_c, int32_t row_stride, const int8_t *w,
                                     const ereid_dw_block *blk, const int32_t *mult, int32_t n, int32_t lo,
                                     int32_t hi, int8_t *out)
{
    const int32_t in_c2 = 2 * in_c;
    int32_t c = 0;
    for (; c + 4 <= n; c += 4) {
        int32_t a0 = blk->folded_bias[c], a1 = blk->folded_bias[c + 1];
        int32_t a2 = blk->folded_bias[c + 2], a3 = blk->folded_bias[c + 3];
        const int8_t *xr = x + c;
        const uint32_t *wg = blk->weights3x3[c / 4][0];
        EREID_DW_TAP4_PRE0(xr, wg, 0, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c, wg, 8, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c2, wg, 16, a0, a1, a2, a3);
        xr += row_stride;
        EREID_DW_TAP4_PRE0(xr, wg, 24, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c, wg, 32, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c2, wg, 40, a0, a1, a2, a3);
        xr += row_stride;
        EREID_DW_TAP4_PRE0(xr, wg, 48, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c, wg, 56, a0, a1, a2, a3);
        EREID_DW_TAP4_PRE(xr, in_c2, wg, 64, a0, a1, a2, a3);
        out[c] = ereid_dw_requantize_s8(a0, mult[c], blk->exponent[c], blk->round_bias[c], lo, hi);
        out[c + 1] = ereid_dw_requantize_s8(a1, mult[c + 1], blk->exponent[c + 1], blk->round_bias[c + 1], lo, hi);
        out[c + 2] = ereid_dw_requantize_s8(a2, mult[c + 2], blk->exponent[c + 2], blk->round_bias[c + 2], lo, hi);
        out[c + 3] = ereid_dw_requantize_s8(a3, mult[c + 3], blk->exponent[c + 3], blk->round_bias[c + 3], lo, hi);
    }
    for (; c < n; c++) {
        int32_t acc = blk->folded_bias[c];
        for (int32_t t = 0; t < 9; t++) {
            acc += (int32_t)x[(t / 3) * row_stride + (t % 3) * in_c + c] * (int32_t)w[t * in_c + c];
        }
        out[c] = ereid_dw_requantize_s8(acc, mult[c], blk->exponent[c], blk->round_bias[c], lo, hi);
    }
}

/* One border output pixel, channels [0, n) of a block: its taps inside the input are
 * `rows` x `cols` from the first one, at which x and w point (the block's first
 * channel); the offset is added per tap (SADD16, |x + offset| <= 383 fits a halfword). */
EREID_DW_NOINLINE static void ereid_dw3x3_border_dsp(const int8_t *x, int32_t in_c, int32_t row_stride, const int8_t *w, int32_t rows,
                                   int32_t cols, const int32_t *bias, int32_t input_offset,
                                   const ereid_dw_block *blk, const int32_t *mult, int32_t n,
                                   int32_t lo, int32_t hi, int8_t *out)
{
    const uint32_t off2 = ereid_dup16(input_offset);
    int32_t c = 0;
    for (; c + 4 <= n; c += 4) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (bias != NULL) {
            a0 = bias[c];
            a1 = bias[c + 1];
            a2 = bias[c + 2];
            a3 = bias[c + 3];
        }
        const int8_t *xr = x + c, *wr = w + c;
        for (int32_t ky = 0; ky < rows; ky++) {
            const int8_t *xp = xr, *wp = wr;
            for (int32_t kx = 0; kx < cols; kx++) {
                EREID_DW_TAP4_OFFSET(xp, wp, off2, a0, a1, a2, a3);
                xp += in_c;
                wp += in_c;
            }
            xr += row_stride;
            wr += 3 * in_c;
        }
        out[c] = ereid_dw_requantize_s8(a0, mult[c], blk->exponent[c], blk->round_bias[c], lo, hi);
        out[c + 1] = ereid_dw_requantize_s8(a1, mult[c + 1], blk->exponent[c + 1], blk->round_bias[c + 1], lo, hi);
        out[c + 2] = ereid_dw_requantize_s8(a2, mult[c + 2], blk->exponent[c + 2], blk->round_bias[c + 2], lo, hi);
        out[c + 3] = ereid_dw_requantize_s8(a3, mult[c + 3], blk->exponent[c + 3], blk->round_bias[c + 3], lo, hi);
    }
    for (; c < n; c++) {
        int32_t acc = bias != NULL ? bias[c] : 0;
        for (int32_t ky = 0; ky < rows; ky++) {
            for (int32_t kx = 0; kx < cols; kx++) {
                acc += ((int32_t)x[ky * row_stride + kx * in_c + c] + input_offset) * (int32_t)w[(ky * 3 + kx) * in_c + c];
            }
        }
        out[c] = ereid_dw_requantize_s8(acc, mult[c], blk->exponent[c], blk->round_bias[c], lo, hi);
    }
}
#endif

#if EREID_USE_MVE || EREID_USE_DSP
/* The DSP / Helium path over all pixels, channels in blocks of EREID_DW_BLOCK. */
static void ereid_dw3x3_fast(const ereid_dw_conv_params *p, const ereid_per_channel_quant_params *q,
                             const ereid_dims *input_dims, const int8_t *input, const int8_t *filter,
                             const int32_t *bias, const ereid_dims *output_dims, int8_t *output)
{
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;
    const int32_t row_stride = in_w * in_c;
    ereid_dw_block blk;
    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * row_stride;
        for (int32_t c0 = 0; c0 < in_c; c0 += EREID_DW_BLOCK) {
            const int32_t n = in_c - c0 < EREID_DW_BLOCK ? in_c - c0 : EREID_DW_BLOCK;
            const int32_t *mult = q->multiplier + c0;
            ereid_dw_block_init(&blk, q, filter, 9, in_c, bias, p->input_offset, p->output_offset, c0, n);
#if EREID_USE_MVE
            ereid_dw_block_even_odd(&blk, q, bias, c0, n);
            /* the border pixels' accumulators start from the plain biases */
            int32_t bias_blk[EREID_DW_BLOCK];
            for (int32_t j = 0; j < n; j++) {
                bias_blk[j] = bias != NULL ? bias[c0 + j] : 0;
            }
#else
            ereid_dw_block_weights3x3(&blk, filter, in_c, c0, n);
#endif
#if EREID_USE_MVE
            int side_done = 0; /* this row's left / right border pixels were paired with the row above */
#endif
            for (int32_t oy = 0; oy < out_h; oy++) {
                const int32_t iy0 = oy * p->stride.h - p->padding.h;
                const int row_inside = iy0 >= 0 && iy0 + 2 < in_h;
                int8_t *out_row = output + (b * out_h + oy) * out_w * in_c + c0;
#if EREID_USE_MVE
                /* pair the left / right border pixels of this row with the next row's */
                const int pair_down = row_inside && !side_done && oy + 1 < out_h && iy0 + p->stride.h + 2 < in_h;
#endif
                for (int32_t ox = 0; ox < out_w; ox++) {
                    const int32_t ix0 = ox * p->stride.w - p->padding.w;
                    int8_t *out_px = out_row + ox * in_c;
                    if (!(row_inside && ix0 >= 0 && ix0 + 2 < in_w)) {
#if EREID_USE_MVE
                        if (row_inside && side_done) {
                            continue; /* written with the row above */
                        }
#endif
                        const int32_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = in_h - iy0 < 3 ? in_h - iy0 : 3;
                        const int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = in_w - ix0 < 3 ? in_w - ix0 : 3;
                        /* tap (0, 0) may lie outside the input: index from the pixel's first in-range tap
                         * (none when the window misses the input: bias only) */
                        const int none = ky1 <= ky0 || kx1 <= kx0;
                        const int8_t *x0 = none ? in_batch : in_batch + ((iy0 + ky0) * in_w + ix0 + kx0) * in_c + c0;
                        const int8_t *w0 = filter + (none ? 0 : (ky0 * 3 + kx0) * in_c + c0);
                        const int32_t rows = none ? 0 : ky1 - ky0, cols = none ? 0 : kx1 - kx0;
#if EREID_USE_MVE
                        if (pair_down) { /* (a window missing the input: bias only, for both) */
                            ereid_dw3x3_pair_mve(x0, none ? 0 : p->stride.h * row_stride, in_c, row_stride, w0, rows, cols,
                                                 bias_blk, &blk, mult, q->shift + c0, n, p, out_px,
                                                 out_px + out_w * in_c);
                        } else if (!none && !row_inside && ix0 >= 0 && ox + 1 < out_w &&
                                   ix0 + p->stride.w + 2 < in_w) {
                            /* top / bottom row: the next pixel has the same window */
                            ereid_dw3x3_pair_mve(x0, p->stride.w * in_c, in_c, row_stride, w0, rows, cols, bias_blk,
                                                 &blk, mult, q->shift + c0, n, p, out_px, out_px + in_c);
                            ox++;
                        } else {
                            ereid_dw3x3_pixel_mve(x0, in_c, row_stride, w0, rows, cols, p->input_offset, bias_blk,
                                                  blk.eo_bias, &blk, mult, q->shift + c0, 0, n, p, out_px);
                        }
#else
                        ereid_dw3x3_border_dsp(x0, in_c, row_stride, w0, rows, cols, bias != NULL ? bias + c0 : NULL,
                                               p->input_offset, &blk, mult, n, p->activation.min, p->activation.max,
                                               out_px);
#endif
                        continue;
                    }
                    const int8_t *x = in_batch + (iy0 * in_w + ix0) * in_c + c0;
#if EREID_USE_MVE
                    /* pair this pixel with the next one when that one is interior too */
                    if (ox + 1 < out_w && ix0 + p->stride.w + 2 < in_w) {
                        ereid_dw3x3_interior2_mve(x, p->stride.w * in_c, in_c, row_stride, filter + c0, &blk, mult,
                                                  q->shift + c0, n, p, out_px, out_px + in_c);
                        ox++;
                    } else {
                        ereid_dw3x3_pixel_mve(x, in_c, row_stride, filter + c0, 3, 3, 0, blk.folded_bias,
                                              blk.eo_folded_bias, &blk, mult, q->shift + c0, 0, n, p, out_px);
                    }
#else
                    ereid_dw3x3_interior_dsp(x, in_c, row_stride, filter + c0, &blk, mult, n,
                                             p->activation.min, p->activation.max, out_px);
#endif
                }
#if EREID_USE_MVE
                side_done = pair_down;
#endif
            }
        }
    }
}
#endif

ereid_status ereid_depthwise_conv_3x3_s8(const ereid_context *ctx,
                                         const ereid_dw_conv_params *dw_conv_params,
                                         const ereid_per_channel_quant_params *quant_params,
                                         const ereid_dims *input_dims, const int8_t *input,
                                         const ereid_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!ereid_dw_conv_args_valid(dw_conv_params, quant_params, input_dims, input, filter_dims, filter,
                                  output_dims, output) ||
        !EREID_DW_CONV_3X3_APPLIES(dw_conv_params, filter_dims)) {
        return EREID_ARG_ERROR;
    }
    const ereid_dw_conv_params *p = dw_conv_params;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;

#if EREID_USE_MVE || EREID_USE_DSP
    if (ereid_dw_fast_applies(quant_params, filter, 9, in_c, bias, p->input_offset, p->output_offset)) {
        ereid_dw3x3_fast(p, quant_params, input_dims, input, filter, bias, output_dims, output);
        return EREID_OK;
    }
#endif
    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * in_c;
                for (int32_t ic = 0; ic < in_c; ic += 4) {
                    const int32_t n = in_c - ic < 4 ? in_c - ic : 4;
                    int32_t acc[4] = {0, 0, 0, 0};
                    ereid_dw3x3_pixel(in_batch, in_h, in_w, in_c, iy0, ix0, filter, p->input_offset, ic, acc, n);
                    for (int32_t k = 0; k < n; k++) {
                        out_px[ic + k] = ereid_finish_s8(acc[k], bias, ic + k, quant_params->multiplier[ic + k],
                                                         quant_params->shift[ic + k], p->output_offset,
                                                         &p->activation);
                    }
                }
            }
        }
    }
    return EREID_OK;
}

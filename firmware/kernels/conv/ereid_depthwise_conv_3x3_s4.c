/* DEPTHWISE_CONV_2D with int8 activations and packed int4 weights, ch_mult 1, 3x3 filter,
 * dilation 1. Interior pixels skip the per-tap bounds checks. On the DSP path four
 * channels whose weights start on a byte boundary take one halfword of weights per tap:
 * spread to bytes 0 and 2 and masked, SXTB16 gives 16 * w (ereid_nn_s4.h), SMLABB/SMLATT
 * keep each channel in its own 16x accumulator (9 taps: |16x sum| < 2^31), divided back
 * exactly at the end. With Helium, an even channel count takes ereid_dw3x3_s4_mve_pixel. */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"

#if EREID_USE_MVE
/* Helium: 16 channels of one output pixel per step, int16 lanes. Per tap, one load of 16
 * inputs split into the even and odd channels (VMOVLB / VMOVLT), one load of their 8 weight
 * bytes into 16-bit lanes, whose low nibbles are the even channels' weights (VSHL #12, VSHR.S16
 * #12) and high nibbles the odd ones' (VSHL #8, VSHR.S16 #12), two VMUL.I16 + VADD.I16 (MVE
 * has no lane-wise vector-by-vector multiply-accumulate for integers). 16-bit sums are
 * exact: 9 taps * |x + input_offset| <= 383 * |w| <= 8 < 2^15. The sums go back to channel
 * order through VST2 and are requantized 4 channels at a time (ereid_s4_mve_requantize).
 * n (1..16) channels from ic: lanes past n load 0 (tail predicates) and are not stored; the
 * channel count is even, so every tap's weights of channel ic start on a byte. */
static void ereid_dw3x3_s4_mve_pixel(const int8_t *in_batch, int32_t in_h, int32_t in_w, int32_t in_c, int32_t iy0,
                                     int32_t ix0, const int8_t *filter, const ereid_dw_conv_params *p,
                                     const ereid_per_channel_quant_params *q, const int32_t *bias, int32_t ic,
                                     int32_t n, int8_t *out)
{
    const mve_pred16_t in_pred = vctp8q((uint32_t)n), w_pred = vctp16q((uint32_t)(n + 1) >> 1);
    int16x8_t acc_even = vdupq_n_s16(0), acc_odd = vdupq_n_s16(0);
    for (int32_t ky = 0; ky < 3; ky++) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= in_h) {
            continue;
        }
        for (int32_t kx = 0; kx < 3; kx++) {
            const int32_t ix = ix0 + kx;
            if (ix < 0 || ix >= in_w) {
                continue;
            }
            const int8x16_t x = vldrbq_z_s8(in_batch + (iy * in_w + ix) * in_c + ic, in_pred);
            const uint16x8_t wb = vldrbq_z_u16((const uint8_t *)filter + (((ky * 3 + kx) * in_c + ic) >> 1), w_pred);
            const int16x8_t w_even = vshrq_n_s16(vreinterpretq_s16_u16(vshlq_n_u16(wb, 12)), 12);
            const int16x8_t w_odd = vshrq_n_s16(vreinterpretq_s16_u16(vshlq_n_u16(wb, 8)), 12);
            acc_even = vaddq_s16(acc_even, vmulq_s16(vaddq_n_s16(vmovlbq_s8(x), (int16_t)p->input_offset), w_even));
            acc_odd = vaddq_s16(acc_odd, vmulq_s16(vaddq_n_s16(vmovltq_s8(x), (int16_t)p->input_offset), w_odd));
        }
    }
    int16_t sums[16];
    const int16x8x2_t pair = {{acc_even, acc_odd}};
    vst2q_s16(sums, pair);
    for (int32_t c = 0; c < n; c += 4) {
        const mve_pred16_t lanes = vctp32q((uint32_t)(n - c));
        const int32x4_t b = bias != NULL ? vldrwq_z_s32(bias + ic + c, lanes) : vdupq_n_s32(0);
        const int32x4_t y = ereid_s4_mve_requantize(vldrhq_s32(sums + c), b, vldrwq_z_s32(q->multiplier + ic + c, lanes),
                                                    vldrwq_z_s32(q->shift + ic + c, lanes), p->output_offset,
                                                    &p->activation);
        vstrbq_p_s32(out + ic + c, y, lanes);
    }
}
#endif

/* Accumulate channels [ic, ic+n) of one output pixel over the in-bounds taps. */
static void ereid_dw3x3_s4_pixel(const int8_t *in_batch, int32_t in_h, int32_t in_w, int32_t in_c, int32_t iy0,
                                 int32_t ix0, const int8_t *filter, int32_t input_offset, int32_t ic, int32_t *acc,
                                 int32_t n)
{
    const int interior = iy0 >= 0 && iy0 + 2 < in_h && ix0 >= 0 && ix0 + 2 < in_w;
#if EREID_USE_DSP
    const int simd = n == 4 && (in_c & 1) == 0; /* ic is a multiple of 4: every tap's weights start a byte */
    const uint32_t off2 = ereid_dup16(input_offset);
    int32_t acc16[4] = {0, 0, 0, 0};
#endif
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
            const int32_t f_tap = (ky * 3 + kx) * in_c + ic; /* element index */
#if EREID_USE_DSP
            if (simd) {
                const uint8_t *wb = (const uint8_t *)filter + (f_tap >> 1);
                const uint32_t q = (uint32_t)wb[0] | ((uint32_t)wb[1] << 16); /* bytes: w0w1, 0, w2w3, 0 */
                const uint32_t w02 = ereid_sxtb16((q << 4) & 0x00F000F0u);     /* 16 * (w0, w2) */
                const uint32_t w13 = ereid_sxtb16(q & 0x00F000F0u);            /* 16 * (w1, w3) */
                const uint32_t va = ereid_read_s8x4(in_tap);
                const uint32_t a02 = ereid_sadd16(ereid_sxtb16(va), off2);
                const uint32_t a13 = ereid_sadd16(ereid_sxtb16_ror8(va), off2);
                acc16[0] = ereid_smlabb(a02, w02, acc16[0]);
                acc16[2] = ereid_smlatt(a02, w02, acc16[2]);
                acc16[1] = ereid_smlabb(a13, w13, acc16[1]);
                acc16[3] = ereid_smlatt(a13, w13, acc16[3]);
                continue;
            }
#endif
            for (int32_t k = 0; k < n; k++) {
                acc[k] += ((int32_t)in_tap[k] + input_offset) * ereid_s4_at(filter, f_tap + k);
            }
        }
    }
#if EREID_USE_DSP
    for (int32_t k = 0; k < 4; k++) {
        acc[k] += acc16[k] / 16; /* exact: every product was a multiple of 16 */
    }
#endif
}

ereid_status ereid_depthwise_conv_3x3_s4(const ereid_context *ctx,
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
        !EREID_DW_CONV_3X3_APPLIES(dw_conv_params, filter_dims) ||
        !EREID_S4_INPUT_OFFSET_VALID(dw_conv_params->input_offset)) {
        return EREID_ARG_ERROR;
    }
    const ereid_dw_conv_params *p = dw_conv_params;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * in_c;
#if EREID_USE_MVE
                if ((in_c & 1) == 0) {
                    for (int32_t ic = 0; ic < in_c; ic += 16) {
                        ereid_dw3x3_s4_mve_pixel(in_batch, in_h, in_w, in_c, iy0, ix0, filter, p, quant_params, bias,
                                                 ic, in_c - ic < 16 ? in_c - ic : 16, out_px);
                    }
                    continue;
                }
#endif
                for (int32_t ic = 0; ic < in_c; ic += 4) {
                    const int32_t n = in_c - ic < 4 ? in_c - ic : 4;
                    int32_t acc[4] = {0, 0, 0, 0};
                    ereid_dw3x3_s4_pixel(in_batch, in_h, in_w, in_c, iy0, ix0, filter, p->input_offset, ic, acc, n);
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

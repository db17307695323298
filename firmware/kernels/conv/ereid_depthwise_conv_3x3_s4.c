/* DEPTHWISE_CONV_2D with int8 activations and packed int4 weights, ch_mult 1, 3x3 filter,
 * dilation 1. Interior pixels skip the per-tap bounds checks. On the DSP path four
 * channels whose weights start on a byte boundary take one halfword of weights per tap:
 * spread to bytes 0 and 2 and masked, SXTB16 gives 16 * w (ereid_nn_s4.h), SMLABB/SMLATT
 * keep each channel in its own 16x accumulator (9 taps: |16x sum| < 2^31), divided back
 * exactly at the end. */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"

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

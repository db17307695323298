/* DEPTHWISE_CONV_2D int8, any channel multiplier, filter size, stride,
 * dilation and padding. Reproduces reference_integer_ops::DepthwiseConvPerChannel.
 * With ch_mult 1 and the DSP path, four channels are accumulated at once. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_depthwise_conv_s8(const ereid_context *ctx,
                                     const ereid_dw_conv_params *dw_conv_params,
                                     const ereid_per_channel_quant_params *quant_params,
                                     const ereid_dims *input_dims, const int8_t *input,
                                     const ereid_dims *filter_dims, const int8_t *filter,
                                     const int32_t *bias,
                                     const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!ereid_dw_conv_args_valid(dw_conv_params, quant_params, input_dims, input, filter_dims, filter,
                                  output_dims, output)) {
        return EREID_ARG_ERROR;
    }
    const ereid_dw_conv_params *p = dw_conv_params;
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t ch_mult = p->ch_mult;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * out_c;
                int32_t ic = 0;
#if EREID_USE_DSP
                if (ch_mult == 1) {
                    const uint32_t offset_x2 = ereid_dup16(p->input_offset);
                    for (; ic + 4 <= in_c; ic += 4) {
                        int32_t acc[4] = {0, 0, 0, 0};
                        for (int32_t ky = 0; ky < k_h; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            if (iy < 0 || iy >= in_h) {
                                continue;
                            }
                            for (int32_t kx = 0; kx < k_w; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (ix < 0 || ix >= in_w) {
                                    continue;
                                }
                                ereid_mac4_s8_offset(in_batch + (iy * in_w + ix) * in_c + ic,
                                                     filter + (ky * k_w + kx) * out_c + ic, offset_x2, acc);
                            }
                        }
                        for (int32_t k = 0; k < 4; k++) {
                            out_px[ic + k] = ereid_finish_s8(acc[k], bias, ic + k, quant_params->multiplier[ic + k],
                                                             quant_params->shift[ic + k], p->output_offset,
                                                             &p->activation);
                        }
                    }
                }
#endif
                for (; ic < in_c; ic++) {
                    for (int32_t m = 0; m < ch_mult; m++) {
                        const int32_t oc = ic * ch_mult + m;
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < k_h; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            if (iy < 0 || iy >= in_h) {
                                continue;
                            }
                            for (int32_t kx = 0; kx < k_w; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (ix < 0 || ix >= in_w) {
                                    continue;
                                }
                                const int32_t in_val = in_batch[(iy * in_w + ix) * in_c + ic];
                                const int32_t f_val = filter[(ky * k_w + kx) * out_c + oc];
                                acc += (in_val + p->input_offset) * f_val;
                            }
                        }
                        out_px[oc] = ereid_finish_s8(acc, bias, oc, quant_params->multiplier[oc],
                                                     quant_params->shift[oc], p->output_offset, &p->activation);
                    }
                }
            }
        }
    }
    return EREID_OK;
}

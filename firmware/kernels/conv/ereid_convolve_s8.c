/* CONV_2D int8, any filter size / stride / dilation / padding.
 * Reproduces tflite::reference_integer_ops::ConvPerChannel. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"
#include "ereid_conv_im2col_s8.h"

ereid_status ereid_convolve_s8(const ereid_context *ctx,
                               const ereid_conv_params *conv_params,
                               const ereid_per_channel_quant_params *quant_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias,
                               const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!ereid_conv_args_valid(conv_params, quant_params, input_dims, input, filter_dims, filter, output_dims,
                               output)) {
        return EREID_ARG_ERROR;
    }
#if EREID_USE_DSP
    if (ereid_conv_im2col_usable(ctx, conv_params, filter_dims, output_dims)) {
        ereid_conv_im2col_s8(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                             output_dims, output, EREID_GATHER_ANY);
        return EREID_OK;
    }
#endif
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t input_offset = conv_params->input_offset;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy0 = oy * conv_params->stride.h - conv_params->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix0 = ox * conv_params->stride.w - conv_params->padding.w;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int8_t *f_oc = filter + oc * k_h * k_w * in_c;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < k_h; ky++) {
                        const int32_t iy = iy0 + ky * conv_params->dilation.h;
                        if (iy < 0 || iy >= in_h) {
                            continue; /* zero padding contributes nothing (padding value is the zero point) */
                        }
                        for (int32_t kx = 0; kx < k_w; kx++) {
                            const int32_t ix = ix0 + kx * conv_params->dilation.w;
                            if (ix < 0 || ix >= in_w) {
                                continue;
                            }
                            acc = ereid_dot_s8(in_batch + (iy * in_w + ix) * in_c, input_offset,
                                               f_oc + (ky * k_w + kx) * in_c, in_c, acc);
                        }
                    }
                    out_px[oc] = ereid_finish_s8(acc, bias, oc, quant_params->multiplier[oc],
                                                 quant_params->shift[oc], conv_params->output_offset,
                                                 &conv_params->activation);
                }
            }
        }
    }
    return EREID_OK;
}

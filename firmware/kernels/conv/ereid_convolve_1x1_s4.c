/* CONV_2D with int8 activations and packed int4 weights, 1x1 filter, no padding: each
 * output pixel is a matrix-vector product over the channels of one input pixel. */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"
#include "ereid_conv_im2col_s4.h"

ereid_status ereid_convolve_1x1_s4(const ereid_context *ctx,
                                   const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output)
{
    if (!ereid_conv_args_valid(conv_params, quant_params, input_dims, input, filter_dims, filter, output_dims,
                               output) ||
        !EREID_CONV_1X1_APPLIES(conv_params, input_dims, filter_dims, output_dims) ||
        !EREID_S4_INPUT_OFFSET_VALID(conv_params->input_offset)) {
        return EREID_ARG_ERROR;
    }
#if EREID_USE_DSP
    if (ereid_conv_im2col_s4_usable(ctx, conv_params, filter_dims, output_dims)) {
        ereid_conv_im2col_s4(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                             output_dims, output, 1);
        return EREID_OK;
    }
#else
    (void)ctx;
#endif
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    for (int32_t b = 0; b < input_dims->n; b++) {
        for (int32_t oy = 0; oy < out_h; oy++) {
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int8_t *in_px =
                    input + ((b * in_h + oy * conv_params->stride.h) * in_w + ox * conv_params->stride.w) * in_c;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int32_t acc = ereid_dot_s4(in_px, conv_params->input_offset, filter, oc * in_c, in_c, 0);
                    out_px[oc] = ereid_finish_s8(acc, bias, oc, quant_params->multiplier[oc],
                                                 quant_params->shift[oc], conv_params->output_offset,
                                                 &conv_params->activation);
                }
            }
        }
    }
    return EREID_OK;
}

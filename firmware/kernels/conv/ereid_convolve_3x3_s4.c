/* CONV_2D with int8 activations and packed int4 weights, 3x3 filter, dilation 1. The
 * three taps of a filter row are contiguous in the input (NHWC) and in the filter, so
 * when the whole row lies inside the input it is one dot product of length 3*C. */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"
#include "ereid_conv_im2col_s4.h"

ereid_status ereid_convolve_3x3_s4(const ereid_context *ctx,
                                   const ereid_conv_params *conv_params,
                                   const ereid_per_channel_quant_params *quant_params,
                                   const ereid_dims *input_dims, const int8_t *input,
                                   const ereid_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const ereid_dims *output_dims, int8_t *output)
{
    if (!ereid_conv_args_valid(conv_params, quant_params, input_dims, input, filter_dims, filter, output_dims,
                               output) ||
        !EREID_CONV_3X3_APPLIES(conv_params, filter_dims) ||
        !EREID_S4_INPUT_OFFSET_VALID(conv_params->input_offset)) {
        return EREID_ARG_ERROR;
    }
#if EREID_USE_DSP
    if (ereid_conv_im2col_s4_usable(ctx, conv_params, filter_dims, output_dims)) {
        ereid_conv_im2col_s4(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                             output_dims, output, 0);
        return EREID_OK;
    }
#else
    (void)ctx;
#endif
    const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
    const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
    const int32_t input_offset = conv_params->input_offset;

    for (int32_t b = 0; b < input_dims->n; b++) {
        const int8_t *in_batch = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy0 = oy * conv_params->stride.h - conv_params->padding.h;
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix0 = ox * conv_params->stride.w - conv_params->padding.w;
                const int row_inside = ix0 >= 0 && ix0 + 2 < in_w;
                int8_t *out_px = output + ((b * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc++) {
                    const int32_t f_oc = oc * 9 * in_c; /* element index of the channel's filter */
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < 3; ky++) {
                        const int32_t iy = iy0 + ky;
                        if (iy < 0 || iy >= in_h) {
                            continue;
                        }
                        const int8_t *in_row = in_batch + iy * in_w * in_c;
                        const int32_t f_row = f_oc + ky * 3 * in_c;
                        if (row_inside) {
                            acc = ereid_dot_s4(in_row + ix0 * in_c, input_offset, filter, f_row, 3 * in_c, acc);
                        } else {
                            for (int32_t kx = 0; kx < 3; kx++) {
                                const int32_t ix = ix0 + kx;
                                if (ix >= 0 && ix < in_w) {
                                    acc = ereid_dot_s4(in_row + ix * in_c, input_offset, filter, f_row + kx * in_c,
                                                       in_c, acc);
                                }
                            }
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

/* DEPTHWISE_CONV_2D with int8 activations and packed int4 weights (1HWO, two per byte,
 * element 2i in the low nibble), any channel multiplier, filter size, stride, dilation and
 * padding. Same arithmetic as ereid_depthwise_conv_s8
 * (reference_integer_ops::DepthwiseConvPerChannel on the unpacked values). Each weight is
 * read from its nibble in the inner loop; this kernel has one (portable) path, the
 * common 3x3 layer has DSP and Helium paths in ereid_depthwise_conv_3x3_s4. */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"

ereid_status ereid_depthwise_conv_s4(const ereid_context *ctx,
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
        !EREID_S4_INPUT_OFFSET_VALID(dw_conv_params->input_offset)) {
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
                for (int32_t ic = 0; ic < in_c; ic++) {
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
                                acc += (in_val + p->input_offset) * ereid_s4_at(filter, (ky * k_w + kx) * out_c + oc);
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

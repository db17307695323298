/* DEPTHWISE_CONV_2D int8, 1x1, channel multiplier 1, whose rescale is exactly 1.0 (the
 * threshold in front of a binarizer: edgereid/export/lce.py writes sign(BN(x)) as
 * w (x - T) with w = +-1, bias -w (T - zp), input scale = output scale). Where
 * ereid_dw_conv_1x1_unit_applies holds, MultiplyByQuantizedMultiplier(acc, 2^30, 1) is acc,
 * so each value is clamp(w_c (x + input_offset) + bias_c + output_offset): the same bytes as
 * ereid_depthwise_conv_wrapper_s8, which runs everywhere else. Helium: four channels per
 * vector, a channel block's constants held across the pixels. */
#include "ereid_nn.h"
#include "ereid_glue_dispatch.h"
#include "ereid_mve.h"
#include "ereid_nn_support.h"

ereid_status ereid_depthwise_conv_1x1_unit_s8(const ereid_context *ctx,
                                              const ereid_dw_conv_params *dw_conv_params,
                                              const ereid_per_channel_quant_params *quant_params,
                                              const ereid_dims *input_dims, const int8_t *input,
                                              const ereid_dims *filter_dims, const int8_t *filter,
                                              const int32_t *bias,
                                              const ereid_dims *output_dims, int8_t *output)
{
    if (!ereid_dw_conv_args_valid(dw_conv_params, quant_params, input_dims, input, filter_dims, filter,
                                  output_dims, output)) {
        return EREID_ARG_ERROR;
    }
    const ereid_dw_conv_params *p = dw_conv_params;
    if (!ereid_dw_conv_1x1_unit_applies(p, quant_params, input_dims, filter_dims, bias, output_dims)) {
        return ereid_depthwise_conv_wrapper_s8(ctx, p, quant_params, input_dims, input, filter_dims, filter, bias,
                                               output_dims, output);
    }
    const int32_t channels = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    const int32_t lo = p->activation.min, hi = p->activation.max;
    int32_t c = 0;
#if EREID_USE_MVE
    for (; c + 4 <= channels; c += 4) {
        const int32x4_t w = vldrbq_s32(filter + c);
        /* w (x + in_off) + bias + out_off = w x + k */
        int32x4_t k = vaddq_n_s32(vmulq_n_s32(w, p->input_offset), p->output_offset);
        if (bias != NULL) {
            k = vaddq_s32(k, vld1q_s32(bias + c));
        }
        const int32x4_t vlo = vdupq_n_s32(lo), vhi = vdupq_n_s32(hi);
        const int8_t *in = input + c;
        int8_t *out = output + c;
        for (int32_t i = 0; i < pixels; i++, in += channels, out += channels) {
            vstrbq_s32(out, vminq_s32(vmaxq_s32(vaddq_s32(vmulq_s32(vldrbq_s32(in), w), k), vlo), vhi));
        }
    }
#endif
    for (; c < channels; c++) {
        const int32_t w = filter[c];
        const int32_t k = w * p->input_offset + (bias != NULL ? bias[c] : 0) + p->output_offset;
        const int8_t *in = input + c;
        int8_t *out = output + c;
        for (int32_t i = 0; i < pixels; i++, in += channels, out += channels) {
            *out = (int8_t)ereid_clamp_i32(w * (int32_t)*in + k, lo, hi);
        }
    }
    return EREID_OK;
}

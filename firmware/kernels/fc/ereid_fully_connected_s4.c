/* FULLY_CONNECTED with int8 activations and packed int4 weights (OI, two per byte, element
 * 2i in the low nibble; a row starts mid-byte when the depth is odd), as LiteRT's
 * BUILTIN_REF computes it: the exact integer rescale of ereid_fully_connected_rescale_int_s8
 * (ereid_finish_fc_exact_s8, ereid_fc_rescale.h), the same parameters. int4 weights are
 * symmetric: filter_offset must be 0. The dot products are ereid_dot_s4's (DSP path; Helium
 * for rows that start on a byte, ereid_dot_s4_mve). */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"
#include "ereid_fc_rescale.h"

ereid_status ereid_fully_connected_s4(const ereid_context *ctx,
                                      const ereid_fc_params *fc_params,
                                      const ereid_fc_int_rescale_params *rescale,
                                      const ereid_dims *input_dims, const int8_t *input,
                                      const ereid_dims *filter_dims, const int8_t *filter,
                                      const int32_t *bias,
                                      const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (EREID_WEIGHTED_ARGS_INVALID(fc_params,
                                    rescale == NULL || rescale->mantissa_hi == NULL || rescale->mantissa_lo == NULL ||
                                        rescale->shift == NULL,
                                    input_dims, input, filter_dims, filter, output_dims, output) ||
        !ereid_activation_valid(&fc_params->activation) || fc_params->filter_offset != 0 ||
        !EREID_S4_INPUT_OFFSET_VALID(fc_params->input_offset)) {
        return EREID_ARG_ERROR;
    }
    const int32_t batches = input_dims->n;
    const int32_t depth = filter_dims->c;
    const int32_t out_depth = filter_dims->n;
    if (EREID_FC_SHAPE_INVALID(input_dims, output_dims, batches, depth, out_depth) ||
        (rescale->count != 1 && rescale->count != out_depth)) {
        return EREID_ARG_ERROR;
    }
    /* The rescale's exactness argument needs a mantissa below 2^53 (ereid_fc_rescale.h). */
    for (int32_t o = 0; o < rescale->count; o++) {
        if (rescale->mantissa_hi[o] < 0 || rescale->mantissa_hi[o] >= (1 << 22) || rescale->mantissa_lo[o] < 0) {
            return EREID_ARG_ERROR;
        }
    }
    const int32_t scale_step = rescale->count == 1 ? 0 : 1;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *in_row = input + b * depth;
        for (int32_t o = 0; o < out_depth; o++) {
            const int32_t acc = ereid_dot_s4(in_row, fc_params->input_offset, filter, o * depth, depth, 0);
            const int32_t s = o * scale_step;
            output[b * out_depth + o] = ereid_finish_fc_exact_s8(acc, bias, o, rescale->mantissa_hi[s],
                                                                 rescale->mantissa_lo[s], rescale->shift[s],
                                                                 fc_params->output_offset, &fc_params->activation);
        }
    }
    return EREID_OK;
}

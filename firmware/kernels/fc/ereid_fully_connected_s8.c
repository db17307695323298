/* FULLY_CONNECTED int8, per-tensor weight scale.
 * Reproduces reference_integer_ops::FullyConnected with the fixed-point multiplier
 * (TFLM / CMSIS-NN). LiteRT's BUILTIN_REF rescales in double instead:
 * ereid_fully_connected_rescale_s8, which generated firmware calls. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_fully_connected_s8(const ereid_context *ctx,
                                      const ereid_fc_params *fc_params,
                                      const ereid_per_tensor_quant_params *quant_params,
                                      const ereid_dims *input_dims, const int8_t *input,
                                      const ereid_dims *filter_dims, const int8_t *filter,
                                      const int32_t *bias,
                                      const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (EREID_WEIGHTED_ARGS_INVALID(fc_params, quant_params == NULL, input_dims, input, filter_dims, filter,
                                    output_dims, output) ||
        !ereid_activation_valid(&fc_params->activation)) {
        return EREID_ARG_ERROR;
    }
    const int32_t batches = input_dims->n;
    const int32_t depth = filter_dims->c;
    const int32_t out_depth = filter_dims->n;
    if (EREID_FC_SHAPE_INVALID(input_dims, output_dims, batches, depth, out_depth)) {
        return EREID_ARG_ERROR;
    }
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *in_row = input + b * depth;
        for (int32_t o = 0; o < out_depth; o++) {
            const int32_t acc = ereid_dot_s8_offsets2(in_row, fc_params->input_offset, filter + o * depth,
                                                      fc_params->filter_offset, depth, 0);
            output[b * out_depth + o] = ereid_finish_s8(acc, bias, o, quant_params->multiplier, quant_params->shift,
                                                        fc_params->output_offset, &fc_params->activation);
        }
    }
    return EREID_OK;
}

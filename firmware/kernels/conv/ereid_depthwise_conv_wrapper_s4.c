/* DEPTHWISE_CONV_2D with packed int4 weights, entry point: picks the specialised kernel the
 * shapes allow, with the int8 wrapper's predicate (EREID_DW_CONV_3X3_APPLIES). */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"

ereid_status ereid_depthwise_conv_wrapper_s4(const ereid_context *ctx,
                                             const ereid_dw_conv_params *dw_conv_params,
                                             const ereid_per_channel_quant_params *quant_params,
                                             const ereid_dims *input_dims, const int8_t *input,
                                             const ereid_dims *filter_dims, const int8_t *filter,
                                             const int32_t *bias,
                                             const ereid_dims *output_dims, int8_t *output)
{
    if (dw_conv_params == NULL || filter_dims == NULL) {
        return EREID_ARG_ERROR;
    }
    if (EREID_DW_CONV_3X3_APPLIES(dw_conv_params, filter_dims)) {
        return ereid_depthwise_conv_3x3_s4(ctx, dw_conv_params, quant_params, input_dims, input, filter_dims,
                                           filter, bias, output_dims, output);
    }
    return ereid_depthwise_conv_s4(ctx, dw_conv_params, quant_params, input_dims, input, filter_dims, filter,
                                   bias, output_dims, output);
}

/* CONV_2D with packed int4 weights, entry point: picks the specialised kernel the shapes
 * allow, with the int8 wrapper's predicates (EREID_CONV_1X1_APPLIES, EREID_CONV_3X3_APPLIES). */
#include "ereid_nn.h"
#include "ereid_nn_s4.h"
#include "ereid_conv_im2col_s4.h"

ereid_status ereid_convolve_wrapper_s4(const ereid_context *ctx,
                                       const ereid_conv_params *conv_params,
                                       const ereid_per_channel_quant_params *quant_params,
                                       const ereid_dims *input_dims, const int8_t *input,
                                       const ereid_dims *filter_dims, const int8_t *filter,
                                       const int32_t *bias,
                                       const ereid_dims *output_dims, int8_t *output)
{
    if (conv_params == NULL || filter_dims == NULL || input_dims == NULL || output_dims == NULL) {
        return EREID_ARG_ERROR;
    }
    if (EREID_CONV_1X1_APPLIES(conv_params, input_dims, filter_dims, output_dims)) {
        return ereid_convolve_1x1_s4(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                                     output_dims, output);
    }
    if (EREID_CONV_3X3_APPLIES(conv_params, filter_dims)) {
        return ereid_convolve_3x3_s4(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                                     output_dims, output);
    }
    return ereid_convolve_s4(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                             output_dims, output);
}

int32_t ereid_convolve_wrapper_s4_get_buffer_size(const ereid_conv_params *conv_params,
                                                  const ereid_dims *input_dims,
                                                  const ereid_dims *filter_dims,
                                                  const ereid_dims *output_dims)
{
    /* The im2col path's columns (every variant has one, for an even K; without this
     * scratch they read the input in place, slower). The packed filter is never copied. */
    (void)conv_params;
    (void)input_dims;
    if (filter_dims == NULL || output_dims == NULL) {
        return 0;
    }
    return ereid_conv_im2col_s4_scratch_bytes(filter_dims, output_dims);
}

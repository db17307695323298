/* CONV_2D int8 entry point: picks the specialised kernel the shapes allow. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"
#include "ereid_conv_im2col_s8.h"

ereid_status ereid_convolve_wrapper_s8(const ereid_context *ctx,
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
        return ereid_convolve_1x1_s8(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                                     output_dims, output);
    }
    if (EREID_CONV_3X3_APPLIES(conv_params, filter_dims)) {
        return ereid_convolve_3x3_s8(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                                     output_dims, output);
    }
    return ereid_convolve_s8(ctx, conv_params, quant_params, input_dims, input, filter_dims, filter, bias,
                             output_dims, output);
}

int32_t ereid_convolve_wrapper_s8_get_buffer_size(const ereid_conv_params *conv_params,
                                                  const ereid_dims *input_dims,
                                                  const ereid_dims *filter_dims,
                                                  const ereid_dims *output_dims)
{
    /* The im2col path's columns (every variant has one; without this scratch they read
     * the input in place, slower). */
    (void)conv_params;
    (void)input_dims;
    if (filter_dims == NULL || output_dims == NULL) {
        return 0;
    }
    return ereid_conv_im2col_scratch_bytes(filter_dims, output_dims);
}

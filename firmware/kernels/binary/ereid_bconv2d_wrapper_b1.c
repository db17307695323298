/* LceBconv2d entry point: picks the specialised kernel the geometry allows (the
 * conditions are in ereid_nn_binary.h; edgereid/firmware/kernel_registry.py mirrors
 * them as named predicates). Every kernel writes the same bytes. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_bconv2d_wrapper_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                      const ereid_bconv_transform *transform, const int32_t *threshold,
                                      const ereid_dims *input_dims, const int32_t *input,
                                      const ereid_dims *filter_dims, const int32_t *filter,
                                      const ereid_dims *output_dims, void *output)
{
    if (params == NULL || filter_dims == NULL) {
        return EREID_ARG_ERROR;
    }
    if (EREID_BCONV_1X1_APPLIES(params, filter_dims)) {
        return ereid_bconv2d_1x1_b1(ctx, params, transform, threshold, input_dims, input, filter_dims, filter,
                                    output_dims, output);
    }
    if (EREID_BCONV_3X3_APPLIES(params, filter_dims)) {
        return ereid_bconv2d_3x3_b1(ctx, params, transform, threshold, input_dims, input, filter_dims, filter,
                                    output_dims, output);
    }
    return ereid_bconv2d_b1(ctx, params, transform, threshold, input_dims, input, filter_dims, filter, output_dims,
                            output);
}

int32_t ereid_bconv2d_wrapper_b1_get_buffer_size(const ereid_bconv_params *params, const ereid_dims *input_dims,
                                                 const ereid_dims *filter_dims, const ereid_dims *output_dims)
{
    /* Every path reads input and filter in place and keeps its accumulators on the stack. */
    (void)params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}

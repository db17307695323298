/* MAX_POOL_2D int8. Reproduces reference_integer_ops::MaxPool: the maximum
 * over the filter window clipped to the input, then the activation clamp. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_max_pool_s8(const ereid_context *ctx,
                               const ereid_pool_params *pool_params,
                               const ereid_dims *input_dims, const int8_t *input,
                               const ereid_dims *filter_dims,
                               const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (EREID_POOL_ARGS_INVALID(pool_params, input_dims, input, filter_dims, output_dims, output)) {
        return EREID_ARG_ERROR;
    }
    return ereid_pool_s8(pool_params, input_dims, input, filter_dims, output_dims, output, 1);
}

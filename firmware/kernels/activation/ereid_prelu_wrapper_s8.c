/* PRELU int8 entry point: the per-channel kernel where alpha holds one value per output
 * channel and the input has the output's shape (EREID_PRELU_CHANNEL_APPLIES), the
 * broadcasting reference otherwise. */
#include "ereid_nn.h"
#include "ereid_glue_dispatch.h"

ereid_status ereid_prelu_wrapper_s8(const ereid_prelu_params *params,
                                    const ereid_dims *input_dims, const int8_t *input,
                                    const ereid_dims *alpha_dims, const int8_t *alpha,
                                    const ereid_dims *output_dims, int8_t *output)
{
    if (params != NULL && input_dims != NULL && alpha_dims != NULL && output_dims != NULL &&
        EREID_PRELU_CHANNEL_APPLIES(params, input_dims, alpha_dims, output_dims)) {
        return ereid_prelu_channel_s8(params, input_dims, input, alpha_dims, alpha, output_dims, output);
    }
    return ereid_prelu_s8(params, input_dims, input, alpha_dims, alpha, output_dims, output);
}

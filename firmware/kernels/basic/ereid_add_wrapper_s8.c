/* ADD int8 entry point: the element-wise kernel where both inputs have the output's shape
 * (EREID_ADD_ELEMENTWISE_APPLIES), the broadcasting reference otherwise. */
#include "ereid_nn.h"
#include "ereid_glue_dispatch.h"

ereid_status ereid_add_wrapper_s8(const ereid_add_params *params,
                                  const ereid_dims *input1_dims, const int8_t *input1,
                                  const ereid_dims *input2_dims, const int8_t *input2,
                                  const ereid_dims *output_dims, int8_t *output)
{
    if (params != NULL && input1_dims != NULL && input2_dims != NULL && output_dims != NULL &&
        EREID_ADD_ELEMENTWISE_APPLIES(params, input1_dims, input2_dims, output_dims)) {
        return ereid_add_elementwise_s8(params, input1_dims, input1, input2_dims, input2, output_dims, output);
    }
    return ereid_add_s8(params, input1_dims, input1, input2_dims, input2, output_dims, output);
}

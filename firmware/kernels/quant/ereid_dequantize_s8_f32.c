/* DEQUANTIZE int8 -> float: scale * (x - zero_point). The reference multiplies
 * in double and rounds to float; the exact product of a float and a 9-bit
 * integer fits a double, so one float multiply rounds to the same value. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_dequantize_s8_f32(const ereid_affine_quant_params *params,
                                     int32_t size, const int8_t *input, float *output)
{
    if (EREID_FLAT_ARGS_INVALID(params, input, output, size)) {
        return EREID_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++) {
        output[i] = params->scale * (float)((int32_t)input[i] - params->zero_point);
    }
    return EREID_OK;
}

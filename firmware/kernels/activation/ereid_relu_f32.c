/* RELU / RELU6 / RELU_N1_TO_1 float32 as LiteRT computes them (checked byte for byte,
 * -0.0 and NaN included): x < min ? min : (x > max ? max : x); comparisons only, so no
 * rounding is involved. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_relu_f32(const ereid_float_clamp_params *params,
                            int32_t size, const float *input, float *output)
{
    if (EREID_FLAT_ARGS_INVALID(params, input, output, size) || !(params->min <= params->max) ||
        (params->has_max != 0 && params->has_max != 1)) {
        return EREID_ARG_ERROR;
    }
    const float lo = params->min, hi = params->max;
    const int32_t has_max = params->has_max;
    for (int32_t i = 0; i < size; i++) {
        const float v = input[i];
        output[i] = v < lo ? lo : ((has_max && v > hi) ? hi : v);
    }
    return EREID_OK;
}

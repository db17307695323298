/* QUANTIZE float -> int8. Reproduces reference_ops::AffineQuantize: round half
 * away from zero of x / scale (a float division), plus the zero point, clamped. */
#include <math.h>

#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_quantize_f32_s8(const ereid_affine_quant_params *params,
                                   int32_t size, const float *input, int8_t *output)
{
    if (EREID_FLAT_ARGS_INVALID(params, input, output, size) || !(params->scale > 0.0f)) {
        return EREID_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++) {
        const float q = roundf(input[i] / params->scale);
        /* Exact while |q| < 2^24; beyond that the clamp decides and the sign is kept. */
        float v = q + (float)params->zero_point;
        v = v < (float)EREID_INT8_MAX ? v : (float)EREID_INT8_MAX;
        v = v > (float)EREID_INT8_MIN ? v : (float)EREID_INT8_MIN;
        output[i] = (int8_t)v; /* NaN is undefined in the reference too; here it lands on -128 */
    }
    return EREID_OK;
}

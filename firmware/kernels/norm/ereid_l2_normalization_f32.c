/* L2_NORMALIZATION float32 over the last axis, as reference_ops::L2Normalization computes
 * it: per row a sequential float sum of squares (each square rounded before the add: no
 * FMA, so build with -ffp-contract=off or an ISO C mode), sqrtf (correctly rounded),
 * max with epsilon 1e-6f, then one float division per element. */
#include <math.h>

#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_l2_normalization_f32(int32_t outer_size, int32_t depth,
                                        const float *input, float *output)
{
    if (input == NULL || output == NULL || outer_size <= 0 || depth <= 0) {
        return EREID_ARG_ERROR;
    }
    for (int32_t i = 0; i < outer_size; i++) {
        const float *row = input + i * depth;
        float squared = 0.0f;
        for (int32_t c = 0; c < depth; c++) {
            const float sq = row[c] * row[c];
            squared += sq;
        }
        float norm = sqrtf(squared);
        norm = norm < 1e-6f ? 1e-6f : norm; /* std::max(l2_norm, epsilon) */
        for (int32_t c = 0; c < depth; c++) {
            output[i * depth + c] = row[c] / norm;
        }
    }
    return EREID_OK;
}

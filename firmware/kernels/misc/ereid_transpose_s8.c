/* TRANSPOSE int8 on 4-D NHWC (reference_ops::Transpose): output index (i0, i1, i2, i3)
 * reads input index j with j[perm[k]] = i_k. Bytes move unchanged. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_transpose_s8(const ereid_transpose_params *params,
                                const ereid_dims *input_dims, const int8_t *input,
                                const ereid_dims *output_dims, int8_t *output)
{
    if (EREID_IO_ARGS_INVALID(params, input_dims, input, output_dims, output)) {
        return EREID_ARG_ERROR;
    }
    const int32_t perm[4] = {params->perm.n, params->perm.h, params->perm.w, params->perm.c};
    const int32_t in_ext[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t out_ext[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
    /* Input strides (elements) of each input dimension, NHWC row-major. */
    const int32_t in_stride[4] = {input_dims->h * input_dims->w * input_dims->c, input_dims->w * input_dims->c,
                                  input_dims->c, 1};
    int32_t seen = 0;
    for (int32_t k = 0; k < 4; k++) {
        if (perm[k] < 0 || perm[k] > 3 || (seen & (1 << perm[k])) != 0 || out_ext[k] != in_ext[perm[k]]) {
            return EREID_ARG_ERROR;
        }
        seen |= 1 << perm[k];
    }
    /* Step in the input for a step along each output dimension. */
    const int32_t s0 = in_stride[perm[0]], s1 = in_stride[perm[1]], s2 = in_stride[perm[2]], s3 = in_stride[perm[3]];
    int8_t *out = output;
    for (int32_t i0 = 0; i0 < out_ext[0]; i0++) {
        for (int32_t i1 = 0; i1 < out_ext[1]; i1++) {
            for (int32_t i2 = 0; i2 < out_ext[2]; i2++) {
                const int8_t *row = input + i0 * s0 + i1 * s1 + i2 * s2;
                for (int32_t i3 = 0; i3 < out_ext[3]; i3++) {
                    *out++ = row[i3 * s3];
                }
            }
        }
    }
    return EREID_OK;
}

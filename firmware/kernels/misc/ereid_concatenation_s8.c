/* CONCATENATION int8 along one NHWC axis. TFLite requires every int8 input to
 * share the output's scale and zero point, so this is a strided copy: for each
 * outer index, each input contributes one contiguous block. */
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_support.h"

static int32_t ereid_dim_at(const ereid_dims *d, int32_t axis)
{
    const int32_t ext[4] = {d->n, d->h, d->w, d->c};
    return ext[axis];
}

ereid_status ereid_concatenation_s8(const int8_t *const *inputs,
                                    const ereid_dims *input_dims,
                                    int32_t num_inputs, int32_t axis,
                                    const ereid_dims *output_dims, int8_t *output)
{
    if (inputs == NULL || input_dims == NULL || output == NULL || num_inputs <= 0 || axis < 0 || axis > 3 ||
        !ereid_dims_valid(output_dims)) {
        return EREID_ARG_ERROR;
    }
    int32_t axis_total = 0;
    for (int32_t i = 0; i < num_inputs; i++) {
        if (inputs[i] == NULL || !ereid_dims_valid(&input_dims[i])) {
            return EREID_ARG_ERROR;
        }
        for (int32_t d = 0; d < 4; d++) {
            if (d != axis && ereid_dim_at(&input_dims[i], d) != ereid_dim_at(output_dims, d)) {
                return EREID_ARG_ERROR;
            }
        }
        axis_total += ereid_dim_at(&input_dims[i], axis);
    }
    if (axis_total != ereid_dim_at(output_dims, axis)) {
        return EREID_ARG_ERROR;
    }
    int32_t outer = 1, inner = 1; /* elements before / after the axis */
    for (int32_t d = 0; d < axis; d++) {
        outer *= ereid_dim_at(output_dims, d);
    }
    for (int32_t d = axis + 1; d < 4; d++) {
        inner *= ereid_dim_at(output_dims, d);
    }
    int8_t *out = output;
    for (int32_t o = 0; o < outer; o++) {
        for (int32_t i = 0; i < num_inputs; i++) {
            const int32_t block = ereid_dim_at(&input_dims[i], axis) * inner;
            memcpy(out, inputs[i] + o * block, (size_t)block);
            out += block;
        }
    }
    return EREID_OK;
}

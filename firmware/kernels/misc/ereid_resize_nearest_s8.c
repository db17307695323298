/* RESIZE_NEAREST_NEIGHBOR int8. Reproduces reference_ops::ResizeNearestNeighbor,
 * whose source index is computed in float; built with -ffp-contract=off the
 * products below round exactly as the reference's do. */
#include <math.h>
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_support.h"

static int32_t ereid_nearest_index(int32_t out_index, int32_t in_size, int32_t out_size, int32_t align_corners,
                                   int32_t half_pixel_centers)
{
    const float scale = (align_corners && out_size > 1) ? (float)(in_size - 1) / (float)(out_size - 1)
                                                        : (float)in_size / (float)out_size;
    const float offset = half_pixel_centers ? 0.5f : 0.0f;
    const float pos = ((float)out_index + offset) * scale;
    int32_t v = align_corners ? (int32_t)roundf(pos) : (int32_t)floorf(pos);
    v = ereid_min_i32(v, in_size - 1);
    if (half_pixel_centers) {
        v = ereid_max_i32(0, v);
    }
    return v;
}

ereid_status ereid_resize_nearest_s8(const ereid_resize_params *params,
                                     const ereid_dims *input_dims, const int8_t *input,
                                     const ereid_dims *output_dims, int8_t *output)
{
    if (EREID_IO_ARGS_INVALID(params, input_dims, input, output_dims, output) || input_dims->n != output_dims->n ||
        input_dims->c != output_dims->c) {
        return EREID_ARG_ERROR;
    }
    const int32_t depth = input_dims->c;
    const int32_t row = input_dims->w * depth;
    int8_t *out = output;
    for (int32_t b = 0; b < output_dims->n; b++) {
        const int8_t *in_batch = input + b * input_dims->h * row;
        for (int32_t y = 0; y < output_dims->h; y++) {
            const int32_t iy = ereid_nearest_index(y, input_dims->h, output_dims->h, params->align_corners,
                                                   params->half_pixel_centers);
            for (int32_t x = 0; x < output_dims->w; x++) {
                const int32_t ix = ereid_nearest_index(x, input_dims->w, output_dims->w, params->align_corners,
                                                       params->half_pixel_centers);
                memcpy(out, in_batch + iy * row + ix * depth, (size_t)depth);
                out += depth;
            }
        }
    }
    return EREID_OK;
}

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
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ch = input_dims->c;
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            EREID_POOL_WINDOW(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, in_h, iy0, fy_start,
                              fy_end);
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                EREID_POOL_WINDOW(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, in_w, ix0,
                                  fx_start, fx_end);
                int8_t *out_px = output + ((b * output_dims->h + oy) * output_dims->w + ox) * ch;
                for (int32_t c = 0; c < ch; c++) {
                    int32_t max = EREID_INT8_MIN;
                    for (int32_t fy = fy_start; fy < fy_end; fy++) {
                        const int32_t row_base = (b * in_h + iy0 + fy) * in_w + ix0;
                        for (int32_t fx = fx_start; fx < fx_end; fx++) {
                            max = ereid_max_i32(max, input[(row_base + fx) * ch + c]);
                        }
                    }
                    out_px[c] = (int8_t)ereid_clamp_i32(max, pool_params->activation.min,
                                                        pool_params->activation.max);
                }
            }
        }
    }
    return EREID_OK;
}

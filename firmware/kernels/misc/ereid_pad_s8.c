/* PAD / PADV2 int8 on 4-D NHWC: the input copied into a frame of pad_value. */
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_pad_s8(const ereid_pad_params *params,
                          const ereid_dims *input_dims, const int8_t *input,
                          const ereid_dims *output_dims, int8_t *output)
{
    if (EREID_IO_ARGS_INVALID(params, input_dims, input, output_dims, output) || params->pad_value < EREID_INT8_MIN ||
        params->pad_value > EREID_INT8_MAX) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *bf = &params->before, *af = &params->after;
    if (bf->n < 0 || bf->h < 0 || bf->w < 0 || bf->c < 0 || af->n < 0 || af->h < 0 || af->w < 0 || af->c < 0 ||
        output_dims->n != bf->n + input_dims->n + af->n || output_dims->h != bf->h + input_dims->h + af->h ||
        output_dims->w != bf->w + input_dims->w + af->w || output_dims->c != bf->c + input_dims->c + af->c) {
        return EREID_ARG_ERROR;
    }
    memset(output, (int8_t)params->pad_value, (size_t)ereid_dims_size(output_dims));
    const int32_t in_c = input_dims->c, out_w = output_dims->w, out_c = output_dims->c;
    for (int32_t n = 0; n < input_dims->n; n++) {
        for (int32_t y = 0; y < input_dims->h; y++) {
            for (int32_t x = 0; x < input_dims->w; x++) {
                const int32_t out_px = (((n + bf->n) * output_dims->h + y + bf->h) * out_w + x + bf->w) * out_c;
                memcpy(output + out_px + bf->c, input + ((n * input_dims->h + y) * input_dims->w + x) * in_c,
                       (size_t)in_c);
            }
        }
    }
    return EREID_OK;
}

/* LceBconv2d with a 1x1 filter and groups 1 (any stride; no padding). Each output pixel
 * reads one input pixel's words, XOR-popcounted against each output channel's words as
 * one run (ereid_bin_xor_popcount). EREID_ARG_ERROR outside these constraints. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_bconv2d_1x1_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                  const ereid_bconv_transform *transform, const int32_t *threshold,
                                  const ereid_dims *input_dims, const int32_t *input,
                                  const ereid_dims *filter_dims, const int32_t *filter,
                                  const ereid_dims *output_dims, void *output)
{
    (void)ctx;
    if (!ereid_bconv_args_valid(params, transform, threshold, input_dims, input, filter_dims, filter, output_dims,
                                output) ||
        !EREID_BCONV_1X1_APPLIES(params, filter_dims) ||
        (output_dims->h - 1) * params->stride.h >= input_dims->h ||
        (output_dims->w - 1) * params->stride.w >= input_dims->w) {
        return EREID_ARG_ERROR;
    }
    const int32_t words = input_dims->c, out_c = output_dims->c;
    const int32_t px_bytes = (params->output_type == EREID_BCONV_OUT_B1 ? ereid_bin_words(out_c) : out_c) *
                             ereid_bconv_out_elem_bytes(params->output_type);
    uint8_t *out = (uint8_t *)output;
    int32_t acc[EREID_BCONV_BLOCK];
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t iy = oy * params->stride.h;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += px_bytes) {
                const int32_t ix = ox * params->stride.w;
                const int32_t *in = input + ((b * input_dims->h + iy) * input_dims->w + ix) * words;
                for (int32_t first = 0; first < out_c; first += EREID_BCONV_BLOCK) {
                    const int32_t count = out_c - first < EREID_BCONV_BLOCK ? out_c - first : EREID_BCONV_BLOCK;
                    const int32_t *f = filter + first * words;
                    for (int32_t i = 0; i < count; i++, f += words) {
                        acc[i] = (int32_t)ereid_bin_xor_popcount(in, f, words);
                    }
                    ereid_bconv_store(params, transform, threshold, acc, first, count, out);
                }
            }
        }
    }
    return EREID_OK;
}

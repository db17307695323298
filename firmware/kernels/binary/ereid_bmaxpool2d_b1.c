/* LceBMaxPool2d on a bitpacked tensor. Reproduces Larq Compute Engine's binary max pool:
 * the max of +-1 values is +1 (bit 0) unless every value is -1, so each output word is the
 * AND of the input words of its window clipped to the image (SAME: taps outside are
 * skipped). input_dims.c = output_dims.c = words per pixel; filter_dims: h, w used. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_bmaxpool2d_b1(const ereid_bmaxpool_params *params, const ereid_dims *input_dims,
                                 const int32_t *input, const ereid_dims *filter_dims,
                                 const ereid_dims *output_dims, int32_t *output)
{
    if (params == NULL || input_dims == NULL || filter_dims == NULL || output_dims == NULL || input == NULL ||
        output == NULL || input_dims->n <= 0 || input_dims->h <= 0 || input_dims->w <= 0 || input_dims->c <= 0 ||
        filter_dims->h <= 0 || filter_dims->w <= 0 || output_dims->n != input_dims->n || output_dims->h <= 0 ||
        output_dims->w <= 0 || output_dims->c != input_dims->c || params->stride.h <= 0 || params->stride.w <= 0 ||
        params->padding.h < 0 || params->padding.w < 0) {
        return EREID_ARG_ERROR;
    }
    const int32_t in_h = input_dims->h, in_w = input_dims->w, words = input_dims->c;
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t y0 = oy * params->stride.h - params->padding.h;
            const int32_t ys = y0 < 0 ? 0 : y0;
            const int32_t ye = y0 + filter_dims->h < in_h ? y0 + filter_dims->h : in_h;
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                const int32_t x0 = ox * params->stride.w - params->padding.w;
                const int32_t xs = x0 < 0 ? 0 : x0;
                const int32_t xe = x0 + filter_dims->w < in_w ? x0 + filter_dims->w : in_w;
                int32_t *out = output + ((b * output_dims->h + oy) * output_dims->w + ox) * words;
                for (int32_t w = 0; w < words; w++) {
                    uint32_t acc = 0xFFFFFFFFu;
                    for (int32_t y = ys; y < ye; y++) {
                        const int32_t *row = input + ((b * in_h + y) * in_w) * words + w;
                        for (int32_t x = xs; x < xe; x++) {
                            acc &= (uint32_t)row[x * words];
                        }
                    }
                    /* An empty window (no tap in the image) cannot happen for SAME or VALID
                     * geometry; keep the padding bits 0 anyway. */
                    out[w] = (int32_t)(ys < ye && xs < xe ? acc : 0u);
                }
            }
        }
    }
    return EREID_OK;
}

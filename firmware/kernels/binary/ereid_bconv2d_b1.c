/* LceBconv2d, any geometry: filter size, stride, dilation, SAME / VALID padding with
 * pad_value 0 or 1, groups, float / int8 / bitpacked output. Reproduces Larq Compute
 * Engine's reference kernel (BConv2DReference) with its output transforms (see
 * ereid_nn_types.h, ereid_bconv_params); the specialised kernels call the per-pixel
 * helpers below for the pixels they do not handle themselves. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

const int32_t ereid_bin_zero_words[EREID_BIN_ZERO_WORDS] = {0};

/* Taps of a filter the per-pixel path lists at once, and input words it gathers into one
 * contiguous block (beyond either: one tap at a time). */
#define EREID_BCONV_MAX_TAPS 64
#define EREID_BCONV_GATHER_WORDS 256

void ereid_bconv2d_pixel_b1(const ereid_bconv_params *p, const ereid_bconv_geom *g, int32_t b, int32_t oy,
                            int32_t ox, int32_t first, int32_t count, int32_t *acc)
{
    const int32_t iy0 = oy * p->stride.h - p->padding.h;
    const int32_t ix0 = ox * p->stride.w - p->padding.w;
    const int32_t nw = g->f_words, taps = g->k_h * g->k_w;
    if (taps <= EREID_BCONV_MAX_TAPS && (p->pad_value == 0 || nw <= EREID_BIN_ZERO_WORDS)) {
        /* The taps' input words for group 0 (an out-of-image tap: zeros for pad_value 1,
         * skipped and counted for pad_value 0). */
        const int32_t *run0[EREID_BCONV_MAX_TAPS];
        int32_t outside = 0, k = 0;
        for (int32_t ky = 0; ky < g->k_h; ky++) {
            const int32_t iy = iy0 + ky * p->dilation.h;
            for (int32_t kx = 0; kx < g->k_w; kx++, k++) {
                const int32_t ix = ix0 + kx * p->dilation.w;
                if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w) {
                    run0[k] = g->input + ((b * g->in_h + iy) * g->in_w + ix) * g->in_words;
                } else {
                    run0[k] = p->pad_value ? ereid_bin_zero_words : NULL;
                    outside += !p->pad_value;
                }
            }
        }
        int32_t group = -1;
        if (outside == 0 && g->tap_words <= EREID_BCONV_GATHER_WORDS) {
            /* Every tap has words: gather them once (per group) into one block, so each
             * output channel is one contiguous XOR-popcount with its filter. */
            int32_t block[EREID_BCONV_GATHER_WORDS];
            for (int32_t i = 0; i < count; i++) {
                const int32_t o = first + i, og = o / g->out_c_per_group;
                if (og != group) {
                    group = og;
                    for (k = 0; k < taps; k++) {
                        const int32_t *src = run0[k] == ereid_bin_zero_words ? run0[k] : run0[k] + group * nw;
                        for (int32_t w = 0; w < nw; w++) {
                            block[k * nw + w] = src[w];
                        }
                    }
                }
                acc[i] = (int32_t)ereid_bin_xor_popcount(block, g->filter + o * g->tap_words, g->tap_words);
            }
            return;
        }
        const int32_t *run[EREID_BCONV_MAX_TAPS];
        const int32_t extra = outside * g->zero_count;
        for (int32_t i = 0; i < count; i++) {
            const int32_t o = first + i, og = o / g->out_c_per_group;
            if (og != group) {
                group = og;
                for (k = 0; k < taps; k++) {
                    run[k] = (run0[k] == NULL || run0[k] == ereid_bin_zero_words) ? run0[k] : run0[k] + group * nw;
                }
            }
            acc[i] = extra + (int32_t)ereid_bin_xor_popcount_runs(run, taps, g->filter + o * g->tap_words, nw);
        }
        return;
    }
    for (int32_t i = 0; i < count; i++) {
        const int32_t o = first + i;
        const int32_t group = o / g->out_c_per_group;
        const int32_t *f = g->filter + o * g->tap_words;
        uint32_t a = 0;
        for (int32_t ky = 0; ky < g->k_h; ky++) {
            const int32_t iy = iy0 + ky * p->dilation.h;
            for (int32_t kx = 0; kx < g->k_w; kx++, f += nw) {
                const int32_t ix = ix0 + kx * p->dilation.w;
                if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w) {
                    const int32_t *in = g->input + ((b * g->in_h + iy) * g->in_w + ix) * g->in_words + group * nw;
                    a += ereid_bin_xor_popcount(in, f, nw);
                } else if (p->pad_value) {
                    a += ereid_bin_popcount_run(f, nw); /* an all +1 input word: bit 0 */
                } else {
                    a += (uint32_t)g->zero_count;
                }
            }
        }
        acc[i] = (int32_t)a;
    }
}

void ereid_bconv2d_pixel_out_b1(const ereid_bconv_params *p, const ereid_bconv_geom *g,
                                const ereid_bconv_transform *transform, const int32_t *threshold, int32_t b,
                                int32_t oy, int32_t ox, void *output)
{
    int32_t acc[EREID_BCONV_BLOCK];
    for (int32_t first = 0; first < g->out_c; first += EREID_BCONV_BLOCK) {
        const int32_t count = g->out_c - first < EREID_BCONV_BLOCK ? g->out_c - first : EREID_BCONV_BLOCK;
        ereid_bconv2d_pixel_b1(p, g, b, oy, ox, first, count, acc);
        ereid_bconv_store(p, transform, threshold, acc, first, count, output);
    }
}

ereid_status ereid_bconv2d_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                              const ereid_bconv_transform *transform, const int32_t *threshold,
                              const ereid_dims *input_dims, const int32_t *input,
                              const ereid_dims *filter_dims, const int32_t *filter,
                              const ereid_dims *output_dims, void *output)
{
    (void)ctx;
    if (!ereid_bconv_args_valid(params, transform, threshold, input_dims, input, filter_dims, filter, output_dims,
                                output)) {
        return EREID_ARG_ERROR;
    }
    ereid_bconv_geom g;
    ereid_bconv_geom_init(&g, params, input_dims, input, filter_dims, filter, output_dims);
    const int32_t px_bytes = g.out_words_per_px * ereid_bconv_out_elem_bytes(params->output_type);
    uint8_t *out = (uint8_t *)output;
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            for (int32_t ox = 0; ox < output_dims->w; ox++) {
                ereid_bconv2d_pixel_out_b1(params, &g, transform, threshold, b, oy, ox, out);
                out += px_bytes;
            }
        }
    }
    return EREID_OK;
}

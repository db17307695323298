/* LceBconv2d with a 3x3 filter, dilation 1, groups 1 (any stride, padding, pad_value,
 * output type).
 *
 * One word per pixel (channels_in <= 32): for each output pixel the nine input words are
 * gathered once (an out-of-image tap reads word 0, i.e. +1 everywhere, which is exactly
 * pad_value 1; for pad_value 0 such taps are masked out and (channels_in / 2) is added per
 * tap), then each output channel's nine XORs with its filter words are counted as three
 * nibble sums of three words, a byte sum and one horizontal add, and its output written
 * at once. More words per pixel: pixels whose nine taps are all in the image read three
 * row runs of 3 * words contiguous words (input and filter alike), the others go through
 * the generic per-pixel path (ereid_bconv2d_pixel_out_b1).
 * EREID_ARG_ERROR outside these constraints. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

/* popcount(x[k] ^ f[k]) (masked: & v[k]) over the nine taps, k = 3g .. 3g + 2 per group. */
#define EREID_B3_TAP(k) ereid_bin_nibbles_r(masked ? (x[k] ^ (uint32_t)f[k]) & v[k] : x[k] ^ (uint32_t)f[k], m1, m2, three)
#define EREID_B3_GROUP(g) ereid_bin_bytes(EREID_B3_TAP(3 * (g)) + EREID_B3_TAP(3 * (g) + 1) + EREID_B3_TAP(3 * (g) + 2))

/* One output pixel, channels [first, first + count): accumulator = the nine-tap count plus
 * `extra`, then the output stage of out_type (a constant at each call, so the stage is
 * specialised per type, as is `masked`). */
static inline __attribute__((always_inline)) void
ereid_b3_w1_block(const ereid_bconv_params *p, const ereid_bconv_transform *transform, const int32_t *threshold,
                  const int32_t *f, const uint32_t *x, const uint32_t *v, int32_t extra, int32_t first,
                  int32_t count, int clamp, void *out_px, int out_type, int masked)
{
    uint32_t m1 = EREID_BIN_M1, m2 = EREID_BIN_M2, three = 3u;
    EREID_BIN_OPAQUE(m1);
    EREID_BIN_OPAQUE(m2);
    EREID_BIN_OPAQUE(three);
    const int32_t lo = p->clamp_min, hi = p->clamp_max;
    const ereid_bconv_transform *t = transform + first;
    const int32_t *thr = threshold + first;
    float *out_f = (float *)out_px + first;
    int8_t *out_q = (int8_t *)out_px + first;
    uint32_t word = 0;
    (void)v;
    for (int32_t i = 0; i < count; i++) {
#if defined(EREID_BIN_POP9_ASM)
        int32_t a;
        if (masked) {
            const uint32_t bytes = EREID_B3_GROUP(0) + EREID_B3_GROUP(1) + EREID_B3_GROUP(2);
            a = (int32_t)ereid_bin_hsum((uint32_t)extra, bytes);
            f += 9;
        } else {
            a = (int32_t)ereid_bin_pop9_asm(&x, &f, m1, m2, three);
        }
#else
        const uint32_t bytes = EREID_B3_GROUP(0) + EREID_B3_GROUP(1) + EREID_B3_GROUP(2);
        const int32_t a = (int32_t)ereid_bin_hsum((uint32_t)extra, bytes);
        f += 9;
#endif
        if (out_type == EREID_BCONV_OUT_B1) {
            word |= (uint32_t)(a > thr[i]) << i;
            continue;
        }
        int32_t xx = a * 2;
        if (clamp) {
            xx = xx < lo ? lo : (xx > hi ? hi : xx);
        }
        const float prod = (float)xx * t[i].multiplier;
        float y = prod + t[i].bias;
        if (out_type == EREID_BCONV_OUT_F32) {
            if (p->flush_denormals && y != 0.0f && y < 1.17549435e-38f && y > -1.17549435e-38f) {
                y = y * 0.0f;
            }
            out_f[i] = y;
        } else {
            out_q[i] = ereid_bconv_round_s8(y);
        }
    }
    if (out_type == EREID_BCONV_OUT_B1) {
        ((int32_t *)out_px)[first / 32] = (int32_t)word;
    }
}

/* All channels of one pixel, one word per pixel; the switch picks the specialised stage. */
static void ereid_b3_w1_pixel(const ereid_bconv_params *p, const ereid_bconv_transform *transform,
                              const int32_t *threshold, const int32_t *filter, const uint32_t *x, const uint32_t *v,
                              int32_t extra, int32_t out_c, int clamp, void *out_px)
{
    for (int32_t first = 0; first < out_c; first += EREID_BCONV_BLOCK) {
        const int32_t count = out_c - first < EREID_BCONV_BLOCK ? out_c - first : EREID_BCONV_BLOCK;
        const int32_t *f = filter + first * 9;
        if (v != NULL) {
            ereid_b3_w1_block(p, transform, threshold, f, x, v, extra, first, count, clamp, out_px,
                              p->output_type, 1);
        } else if (p->output_type == EREID_BCONV_OUT_F32) {
            ereid_b3_w1_block(p, transform, threshold, f, x, v, 0, first, count, clamp, out_px,
                              EREID_BCONV_OUT_F32, 0);
        } else if (p->output_type == EREID_BCONV_OUT_S8) {
            ereid_b3_w1_block(p, transform, threshold, f, x, v, 0, first, count, clamp, out_px,
                              EREID_BCONV_OUT_S8, 0);
        } else {
            ereid_b3_w1_block(p, transform, threshold, f, x, v, 0, first, count, clamp, out_px,
                              EREID_BCONV_OUT_B1, 0);
        }
    }
}

ereid_status ereid_bconv2d_3x3_b1(const ereid_context *ctx, const ereid_bconv_params *params,
                                  const ereid_bconv_transform *transform, const int32_t *threshold,
                                  const ereid_dims *input_dims, const int32_t *input,
                                  const ereid_dims *filter_dims, const int32_t *filter,
                                  const ereid_dims *output_dims, void *output)
{
    (void)ctx;
    if (!ereid_bconv_args_valid(params, transform, threshold, input_dims, input, filter_dims, filter, output_dims,
                                output) ||
        !EREID_BCONV_3X3_APPLIES(params, filter_dims)) {
        return EREID_ARG_ERROR;
    }
    ereid_bconv_geom g;
    ereid_bconv_geom_init(&g, params, input_dims, input, filter_dims, filter, output_dims);
    const int32_t words = g.in_words, row = 3 * words, out_c = g.out_c;
    const int32_t sh = params->stride.h, sw = params->stride.w, ph = params->padding.h, pw = params->padding.w;
    const int32_t px_bytes = g.out_words_per_px * ereid_bconv_out_elem_bytes(params->output_type);
    const int32_t line = g.in_w * words; /* words of one input row */
    /* The clamp matters only when the activation range is narrower than [0, 2K]. */
    const int clamp = params->clamp_min > 0 || params->clamp_max < 2 * 9 * params->channels_in;
    uint8_t *out = (uint8_t *)output;
    int32_t acc[EREID_BCONV_BLOCK];
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t iy0 = oy * sh - ph;
            const int rows_inside = iy0 >= 0 && iy0 + 3 <= g.in_h;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += px_bytes) {
                const int32_t ix0 = ox * sw - pw;
                const int inside = rows_inside && ix0 >= 0 && ix0 + 3 <= g.in_w;
                if (words == 1) {
                    uint32_t x[9], v[9];
                    int32_t outside = 0;
                    for (int32_t k = 0; k < 9; k++) {
                        const int32_t iy = iy0 + k / 3, ix = ix0 + k % 3;
                        const int in_image = iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w;
                        x[k] = in_image ? (uint32_t)input[(b * g.in_h + iy) * g.in_w + ix] : 0u;
                        v[k] = in_image ? 0xFFFFFFFFu : 0u;
                        outside += !in_image;
                    }
                    const int masked = outside > 0 && params->pad_value == 0;
                    ereid_b3_w1_pixel(params, transform, threshold, filter, x, masked ? v : NULL,
                                      outside * g.zero_count, out_c, clamp, out);
                    continue;
                }
                if (!inside) {
                    ereid_bconv2d_pixel_out_b1(params, &g, transform, threshold, b, oy, ox, out);
                    continue;
                }
                const int32_t *in0 = input + ((b * g.in_h + iy0) * g.in_w + ix0) * words;
                const int32_t *in1 = in0 + line, *in2 = in1 + line;
                for (int32_t first = 0; first < out_c; first += EREID_BCONV_BLOCK) {
                    const int32_t count = out_c - first < EREID_BCONV_BLOCK ? out_c - first : EREID_BCONV_BLOCK;
                    const int32_t *f = filter + first * g.tap_words;
                    for (int32_t i = 0; i < count; i++, f += g.tap_words) {
                        acc[i] = (int32_t)(ereid_bin_xor_popcount(in0, f, row) +
                                           ereid_bin_xor_popcount(in1, f + row, row) +
                                           ereid_bin_xor_popcount(in2, f + 2 * row, row));
                    }
                    ereid_bconv_store(params, transform, threshold, acc, first, count, out);
                }
            }
        }
    }
    return EREID_OK;
}

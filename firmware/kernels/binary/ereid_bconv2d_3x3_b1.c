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
                  int32_t start, int32_t count, void *out_px, int out_type, int masked, int clamp, int flush)
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
    /* A bitpacked block already started by a vector path keeps its bits. */
    uint32_t word = (out_type == EREID_BCONV_OUT_B1 && start > 0) ? (uint32_t)((int32_t *)out_px)[first / 32] : 0u;
    (void)v;
    f += 9 * start;
    for (int32_t i = start; i < count; i++) {
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
            if (flush && y != 0.0f && y < 1.17549435e-38f && y > -1.17549435e-38f) {
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

#if defined(EREID_BIN_MVE)
/* Helium: four output channels per vector. Each tap's input word is broadcast, the four
 * channels' filter words of that tap gathered (offsets 0, 9, 18, 27 words), XORed; the nine
 * XOR vectors go through a carry-save adder tree (ones, twos, fours, eights) whose
 * counters are popcounted per lane (SWAR on vectors) and combined. Channels past the last
 * multiple of four take the scalar path. */
#define EREID_V_CSA(s_, c_, a_, b_, cin_)                                                                     \
    do {                                                                                                      \
        const uint32x4_t u_ = veorq_u32(a_, b_);                                                              \
        c_ = vorrq_u32(vandq_u32(a_, b_), vandq_u32(u_, cin_));                                               \
        s_ = veorq_u32(u_, cin_);                                                                             \
    } while (0)

static inline __attribute__((always_inline)) uint32x4_t ereid_v_nibbles(uint32x4_t v)
{
    v = vsubq_u32(v, vandq_u32(vshrq_n_u32(v, 1), vdupq_n_u32(EREID_BIN_M1)));
    return vmlaq_n_u32(v, vandq_u32(vshrq_n_u32(v, 2), vdupq_n_u32(EREID_BIN_M2)), 0xFFFFFFFDu); /* v - 3t */
}

/* Per lane, the sum of the four bytes of n's byte counts (n: nibble counts <= 12). */
static inline __attribute__((always_inline)) uint32x4_t ereid_v_hsum_nibbles(uint32x4_t n)
{
    const uint32x4_t b = vmlaq_n_u32(n, vandq_u32(vshrq_n_u32(n, 4), vdupq_n_u32(EREID_BIN_M4)), 0xFFFFFFF1u);
    return vshrq_n_u32(vmulq_n_u32(b, 0x01010101u), 24); /* bytes <= 24: the sum fits a byte */
}

/* The four channels' nine-tap counts: addr holds the byte addresses of their filters
 * (gathers with immediate offsets 0, 4, ..., 32), xv the nine input words broadcast. */
static inline __attribute__((always_inline)) int32x4_t ereid_v_pop9(uint32x4_t addr, const uint32x4_t *xv)
{
#define EREID_V_X(k) veorq_u32(xv[k], vldrwq_gather_base_u32(addr, 4 * (k)))
    uint32x4_t s, c1, c2, c3, c4, ones, t, f1;
    EREID_V_CSA(s, c1, EREID_V_X(0), EREID_V_X(1), EREID_V_X(2));
    EREID_V_CSA(s, c2, s, EREID_V_X(3), EREID_V_X(4));
    EREID_V_CSA(s, c3, s, EREID_V_X(5), EREID_V_X(6));
    EREID_V_CSA(ones, c4, s, EREID_V_X(7), EREID_V_X(8));
#undef EREID_V_X
    EREID_V_CSA(t, f1, c1, c2, c3);
    const uint32x4_t twos = veorq_u32(t, c4), f2 = vandq_u32(t, c4);
    const uint32x4_t fours = veorq_u32(f1, f2), eights = vandq_u32(f1, f2);
    const uint32x4_t a = vmlaq_n_u32(ereid_v_nibbles(ones), ereid_v_nibbles(twos), 2u);
    const uint32x4_t b = vmlaq_n_u32(ereid_v_nibbles(fours), ereid_v_nibbles(eights), 2u);
    return vreinterpretq_s32_u32(vmlaq_n_u32(ereid_v_hsum_nibbles(a), ereid_v_hsum_nibbles(b), 4u));
}

/* Channels [first, first + count) of one pixel in groups of four; returns how many were
 * written (a multiple of 4). clamp / flush / out_type constant at each call. */
static inline __attribute__((always_inline)) int32_t
ereid_b3_w1_block_mve(const ereid_bconv_params *p, const ereid_bconv_transform *transform, const int32_t *threshold,
                      const int32_t *f, const uint32_t *x, int32_t first, int32_t count, void *out_px, int out_type,
                      int clamp)
{
    uint32x4_t xv[9];
    for (int32_t k = 0; k < 9; k++) {
        xv[k] = vdupq_n_u32(x[k]);
    }
    /* byte addresses of the group's four filters: f + 36 * lane */
    uint32x4_t addr = vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), 36u), (uint32_t)(uintptr_t)f);
    const int32x4_t lo = vdupq_n_s32(p->clamp_min), hi = vdupq_n_s32(p->clamp_max);
    const int32_t groups = count / 4;
    uint32x4_t bit = vshlq_u32(vdupq_n_u32(1u), vreinterpretq_s32_u32(vidupq_n_u32(0u, 1)));
    uint32_t word = 0;
    for (int32_t gi = 0; gi < groups; gi++, addr = vaddq_n_u32(addr, 144u)) {
        const int32_t o = first + 4 * gi;
        const int32x4_t a = ereid_v_pop9(addr, xv);
        if (out_type == EREID_BCONV_OUT_B1) {
            const mve_pred16_t gt = vcmpgtq_s32(a, vldrwq_s32(threshold + o));
            word |= vaddvq_u32(vpselq_u32(bit, vdupq_n_u32(0u), gt));
            bit = vshlq_n_u32(bit, 4);
            continue;
        }
        int32x4_t xx = vshlq_n_s32(a, 1);
        if (clamp) {
            xx = vmaxq_s32(vminq_s32(xx, hi), lo);
        }
        const float32x4x2_t mb = vld2q_f32(&transform[o].multiplier);
        const float32x4_t prod = vmulq_f32(vcvtq_f32_s32(xx), mb.val[0]);
        const float32x4_t y = vaddq_f32(prod, mb.val[1]);
        if (out_type == EREID_BCONV_OUT_F32) {
            vstrwq_f32((float *)out_px + o, y);
        } else {
            int32x4_t q = vcvtq_s32_f32(vrndaq_f32(y));
            q = vmaxq_s32(vminq_s32(q, vdupq_n_s32(127)), vdupq_n_s32(-128));
            vstrbq_s32((int8_t *)out_px + o, q);
        }
    }
    if (out_type == EREID_BCONV_OUT_B1 && groups > 0) {
        /* the scalar tail ORs its bits into the same word */
        ((int32_t *)out_px)[first / 32] = (int32_t)word;
    }
    return 4 * groups;
}
#endif

/* Every output pixel, one word per pixel. The nine input words of a pixel are gathered
 * once (an out-of-image tap reads 0, which is pad_value 1; with pad_value 0 such a pixel
 * masks those taps and adds channels_in / 2 per tap), then each block of up to 32
 * channels runs the vector path (Helium) and the scalar path for what is left. out_type,
 * clamp and flush are constants at each call (one specialised copy per case). */
static inline __attribute__((always_inline)) void
ereid_b3_w1_all(const ereid_bconv_params *p, const ereid_bconv_geom *g, const ereid_bconv_transform *transform,
                const int32_t *threshold, const ereid_dims *out_d, uint8_t *out, int32_t px_bytes, int out_type,
                int clamp, int flush)
{
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->padding.h, pw = p->padding.w;
    const int32_t in_h = g->in_h, in_w = g->in_w, out_c = g->out_c;
    for (int32_t b = 0; b < out_d->n; b++) {
        for (int32_t oy = 0; oy < out_d->h; oy++) {
            const int32_t iy0 = oy * sh - ph;
            const int rows_inside = iy0 >= 0 && iy0 + 3 <= in_h;
            for (int32_t ox = 0; ox < out_d->w; ox++, out += px_bytes) {
                const int32_t ix0 = ox * sw - pw;
                uint32_t x[9], v[9];
                int32_t outside = 0;
                if (rows_inside && ix0 >= 0 && ix0 + 3 <= in_w) {
                    const int32_t *r0 = g->input + (b * in_h + iy0) * in_w + ix0;
                    const int32_t *r1 = r0 + in_w, *r2 = r1 + in_w;
                    x[0] = (uint32_t)r0[0], x[1] = (uint32_t)r0[1], x[2] = (uint32_t)r0[2];
                    x[3] = (uint32_t)r1[0], x[4] = (uint32_t)r1[1], x[5] = (uint32_t)r1[2];
                    x[6] = (uint32_t)r2[0], x[7] = (uint32_t)r2[1], x[8] = (uint32_t)r2[2];
                } else {
                    for (int32_t k = 0; k < 9; k++) {
                        const int32_t iy = iy0 + k / 3, ix = ix0 + k % 3;
                        const int in_image = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                        x[k] = in_image ? (uint32_t)g->input[(b * in_h + iy) * in_w + ix] : 0u;
                        v[k] = in_image ? 0xFFFFFFFFu : 0u;
                        outside += !in_image;
                    }
                }
                const int masked = outside > 0 && p->pad_value == 0;
                const int32_t extra = masked ? outside * g->zero_count : 0;
                for (int32_t first = 0; first < out_c; first += EREID_BCONV_BLOCK) {
                    const int32_t count = out_c - first < EREID_BCONV_BLOCK ? out_c - first : EREID_BCONV_BLOCK;
                    const int32_t *f = g->filter + first * 9;
                    if (masked) {
                        ereid_b3_w1_block(p, transform, threshold, f, x, v, extra, first, 0, count, out, out_type, 1,
                                          clamp, flush);
                        continue;
                    }
                    int32_t done = 0;
#if defined(EREID_BIN_MVE)
                    if (!flush) { /* the denormal flush stays scalar */
                        done = ereid_b3_w1_block_mve(p, transform, threshold, f, x, first, count, out, out_type, clamp);
                    }
#endif
                    if (done < count) {
                        ereid_b3_w1_block(p, transform, threshold, f, x, v, 0, first, done, count, out, out_type, 0,
                                          clamp, flush);
                    }
                }
            }
        }
    }
}

/* The specialised copies, chosen once per call. */
static void ereid_b3_w1_b1(const ereid_bconv_params *p, const ereid_bconv_geom *g, const int32_t *threshold,
                           const ereid_dims *out_d, uint8_t *out, int32_t px_bytes)
{
    ereid_b3_w1_all(p, g, NULL, threshold, out_d, out, px_bytes, EREID_BCONV_OUT_B1, 0, 0);
}

static void ereid_b3_w1_s8(const ereid_bconv_params *p, const ereid_bconv_geom *g,
                           const ereid_bconv_transform *transform, const ereid_dims *out_d, uint8_t *out,
                           int32_t px_bytes, int clamp)
{
    if (clamp) {
        ereid_b3_w1_all(p, g, transform, NULL, out_d, out, px_bytes, EREID_BCONV_OUT_S8, 1, 0);
    } else {
        ereid_b3_w1_all(p, g, transform, NULL, out_d, out, px_bytes, EREID_BCONV_OUT_S8, 0, 0);
    }
}

static void ereid_b3_w1_f32(const ereid_bconv_params *p, const ereid_bconv_geom *g,
                            const ereid_bconv_transform *transform, const ereid_dims *out_d, uint8_t *out,
                            int32_t px_bytes, int clamp)
{
    if (p->flush_denormals) {
        ereid_b3_w1_all(p, g, transform, NULL, out_d, out, px_bytes, EREID_BCONV_OUT_F32, 1, 1);
    } else if (clamp) {
        ereid_b3_w1_all(p, g, transform, NULL, out_d, out, px_bytes, EREID_BCONV_OUT_F32, 1, 0);
    } else {
        ereid_b3_w1_all(p, g, transform, NULL, out_d, out, px_bytes, EREID_BCONV_OUT_F32, 0, 0);
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
    if (words == 1) {
        if (params->output_type == EREID_BCONV_OUT_B1) {
            ereid_b3_w1_b1(params, &g, threshold, output_dims, out, px_bytes);
        } else if (params->output_type == EREID_BCONV_OUT_S8) {
            ereid_b3_w1_s8(params, &g, transform, output_dims, out, px_bytes, clamp);
        } else {
            ereid_b3_w1_f32(params, &g, transform, output_dims, out, px_bytes, clamp);
        }
        return EREID_OK;
    }
    int32_t acc[EREID_BCONV_BLOCK];
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            const int32_t iy0 = oy * sh - ph;
            const int rows_inside = iy0 >= 0 && iy0 + 3 <= g.in_h;
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += px_bytes) {
                const int32_t ix0 = ox * sw - pw;
                if (!rows_inside || ix0 < 0 || ix0 + 3 > g.in_w) {
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

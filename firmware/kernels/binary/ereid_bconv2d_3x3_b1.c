/* LceBconv2d with a 3x3 filter, dilation 1, groups 1 (any stride, padding, pad_value,
 * output type).
 *
 * One word per pixel (channels_in <= 32): for each output pixel the nine input words are
 * gathered once (an out-of-image tap reads word 0, i.e. +1 everywhere, which is exactly
 * pad_value 1; for pad_value 0 such taps are masked out and (channels_in / 2) is added per
 * tap), then each output channel's nine XORs with its filter words are counted as three
 * nibble sums of three words, a byte sum and one horizontal add, and its output written
 * at once (Cortex-M4/M7: ereid_bin_pop9_asm; Helium: four channels per vector; portable C
 * otherwise). More words per pixel: the per-pixel path (ereid_bconv2d_pixel_out_b1), which
 * gathers the nine taps' words into one block so each channel is one contiguous count.
 * EREID_ARG_ERROR outside these constraints. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

/* popcount(x[k] ^ f[k]) over the nine taps (portable), k = 3g .. 3g + 2 per group. */
#define EREID_B3_TAP(k) ereid_bin_nibbles_r(x[k] ^ (uint32_t)f[k], m1, m2, three)
#define EREID_B3_GROUP(g) ereid_bin_bytes(EREID_B3_TAP(3 * (g)) + EREID_B3_TAP(3 * (g) + 1) + EREID_B3_TAP(3 * (g) + 2))

/* One output pixel, channels [first + start, first + count) of a block: accumulator = the
 * nine-tap count, then the output stage of out_type (a constant at each call, as are clamp
 * and flush, so each case is a specialised copy). */
static inline __attribute__((always_inline)) void
ereid_b3_w1_block(const ereid_bconv_params *p, const ereid_bconv_transform *transform, const int32_t *threshold,
                  const int32_t *f, const uint32_t *x, int32_t first, int32_t start, int32_t count,
                  void *out_px, int out_type, int clamp, int flush)
{
    uint32_t m1 = EREID_BIN_M1, m2 = EREID_BIN_M2, three = 3u;
    EREID_BIN_OPAQUE(m1);
    EREID_BIN_OPAQUE(m2);
    EREID_BIN_OPAQUE(three);
    const int32_t lo = p->clamp_min, hi = p->clamp_max;
    /* Only the output type's own array is non-NULL: no pointer arithmetic on the other. */
    const ereid_bconv_transform *t = out_type == EREID_BCONV_OUT_B1 ? NULL : transform + first;
    const int32_t *thr = out_type == EREID_BCONV_OUT_B1 ? threshold + first : NULL;
    float *out_f = (float *)out_px + first;
    int8_t *out_q = (int8_t *)out_px + first;
    /* A bitpacked block already started by a vector path keeps its bits. */
    const uint32_t word = (out_type == EREID_BCONV_OUT_B1 && start > 0) ? (uint32_t)((int32_t *)out_px)[first / 32]
                                                                          : 0u;
    uint32_t bits = 0;
    f += 9 * start;
    for (int32_t i = start; i < count; i++) {
#if defined(EREID_BIN_POP9_ASM)
        const int32_t a = (int32_t)ereid_bin_pop9_asm(&x, &f, m1, m2, three);
#else
        const uint32_t bytes = EREID_B3_GROUP(0) + EREID_B3_GROUP(1) + EREID_B3_GROUP(2);
        const int32_t a = (int32_t)ereid_bin_hsum(0u, bytes);
        f += 9;
#endif
        if (out_type == EREID_BCONV_OUT_B1) {
            /* a > thr[i] is the sign of thr[i] - a (thresholds within [-1, K]: no wrap); the
             * bits enter at the top and move down one per channel */
            bits = (bits >> 1) | (((uint32_t)thr[i] - (uint32_t)a) & 0x80000000u);
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
    if (out_type == EREID_BCONV_OUT_B1 && count > start) {
        /* channel start sits at bit 32 - (count - start): move it to bit start */
        ((int32_t *)out_px)[first / 32] = (int32_t)(word | (bits >> (32 - count)));
    }
}

#if defined(EREID_BIN_MVE)
/* Helium: four output channels per vector. Each tap's input word is broadcast (xv: nine
 * vectors), the four channels' filter words of that tap gathered (q7 holds the four filter
 * addresses; immediate offsets 0, 4, ..., 32), XORed; the nine XOR vectors go through a
 * carry-save adder tree to ones, twos, fours, eights (per bit position the count is at most
 * 9, so fours and eights never overlap), whose popcounts per lane are the SWAR steps on
 * vectors: A = ones + 2 twos and B = fours + 2 eights as nibble counts (<= 12), byte
 * counts, one multiply per lane for the horizontal sum; acc = sum(A) + 4 sum(B). The
 * filter addresses advance by 144 bytes (the next four channels). Registers are named
 * (q0-q7): the tree needs all eight, and compiled code spilled. */
#define EREID_V_LOAD(q, k)                                                                                    \
    "vldrw.u32 " q ", [%[xv], #" #k "*16]\n\tvldrw.u32 q6, [q7, #" #k "*4]\n\tveor " q ", " q ", q6\n\t"
#define EREID_V_FA(s, c, x, t)                                                                                \
    "vand " t ", " s ", " c "\n\tveor " s ", " s ", " c "\n\tvand " c ", " s ", " x "\n\tvorr " c ", " c ", " t    \
    "\n\tveor " s ", " s ", " x "\n\t"
#define EREID_V_HA(a, b, carry) "vand " carry ", " a ", " b "\n\tveor " a ", " a ", " b "\n\t"
#define EREID_V_STAGE(mask, shift, q, op) "vshr.u32 q4, " q ", #" #shift "\n\tvand q4, q4, " mask "\n\t" op

static inline __attribute__((always_inline)) void ereid_v_pop9(const uint32_t *xv, uint32_t *addr, int32_t *acc)
{
    __asm__ volatile(
        "vldrw.u32 q7, [%[ad]]\n\t"
        /* s = q0, c1 = q1 */
        EREID_V_LOAD("q0", 0) EREID_V_LOAD("q1", 1) EREID_V_LOAD("q2", 2)
        EREID_V_FA("q0", "q1", "q2", "q3")
        /* s = q0, c2 = q2; T = q1 (w2), F = q3 (w4) */
        EREID_V_LOAD("q2", 3) EREID_V_LOAD("q3", 4)
        EREID_V_FA("q0", "q2", "q3", "q4")
        EREID_V_HA("q1", "q2", "q3")
        /* s = q0, c3 = q2; T = q1, F' = q4; F = q3, E = q5 (w8) */
        EREID_V_LOAD("q2", 5) EREID_V_LOAD("q4", 6)
        EREID_V_FA("q0", "q2", "q4", "q5")
        EREID_V_HA("q1", "q2", "q4")
        EREID_V_HA("q3", "q4", "q5")
        /* ones = q0, c4 = q2; twos = q1, F'' = q4; fours = q3, E2 = q2; eights = q5 */
        EREID_V_LOAD("q2", 7) EREID_V_LOAD("q4", 8)
        "vmov q6, q5\n\t"
        EREID_V_FA("q0", "q2", "q4", "q5")
        EREID_V_HA("q1", "q2", "q4")
        EREID_V_HA("q3", "q4", "q2")
        "veor q5, q6, q2\n\t"
        /* 2-bit, then 4-bit counts of q0, q1, q3, q5 */
        "vmov.i8 q2, #0x55\n\t"
        EREID_V_STAGE("q2", 1, "q0", "vsub.i32 q0, q0, q4\n\t")
        EREID_V_STAGE("q2", 1, "q1", "vsub.i32 q1, q1, q4\n\t")
        EREID_V_STAGE("q2", 1, "q3", "vsub.i32 q3, q3, q4\n\t")
        EREID_V_STAGE("q2", 1, "q5", "vsub.i32 q5, q5, q4\n\t")
        "vmov.i8 q2, #0x33\n\t"
        EREID_V_STAGE("q2", 2, "q0", "vmla.u32 q0, q4, %[m3]\n\t")
        EREID_V_STAGE("q2", 2, "q1", "vmla.u32 q1, q4, %[m3]\n\t")
        EREID_V_STAGE("q2", 2, "q3", "vmla.u32 q3, q4, %[m3]\n\t")
        EREID_V_STAGE("q2", 2, "q5", "vmla.u32 q5, q4, %[m3]\n\t")
        "vmla.u32 q0, q1, %[two]\n\t"
        "vmla.u32 q3, q5, %[two]\n\t"
        "vmov.i8 q2, #0x0f\n\t"
        EREID_V_STAGE("q2", 4, "q0", "vmla.u32 q0, q4, %[m15]\n\t")
        EREID_V_STAGE("q2", 4, "q3", "vmla.u32 q3, q4, %[m15]\n\t")
        "vmul.i32 q0, q0, %[k]\n\t"
        "vmul.i32 q3, q3, %[k]\n\t"
        "vshr.u32 q0, q0, #24\n\t"
        "vshr.u32 q3, q3, #24\n\t"
        "vmla.u32 q0, q3, %[four]\n\t"
        "vstrw.32 q0, [%[acc]]\n\t"
        "vadd.i32 q7, q7, %[step]\n\t"
        "vstrw.32 q7, [%[ad]]\n\t"
        :
        : [xv] "r"(xv), [ad] "r"(addr), [acc] "r"(acc), [m3] "r"(0xFFFFFFFDu), [m15] "r"(0xFFFFFFF1u),
          [two] "r"(2u), [four] "r"(4u), [k] "r"(0x01010101u), [step] "r"(144u)
        : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "memory");
}

/* Channels [first, first + count) of one pixel in groups of four; returns how many were
 * written (a multiple of 4). clamp / flush / out_type constant at each call. */
static inline __attribute__((always_inline)) int32_t
ereid_b3_w1_block_mve(const ereid_bconv_params *p, const ereid_bconv_transform *transform, const int32_t *threshold,
                      const int32_t *f, const uint32_t *x, int32_t first, int32_t count, void *out_px, int out_type,
                      int clamp)
{
    uint32_t xv[36], addr[4];
    int32_t acc[4];
    for (int32_t k = 0; k < 9; k++) {
        vstrwq_u32(xv + 4 * k, vdupq_n_u32(x[k]));
    }
    /* byte addresses of the group's four filters: f + 36 * lane */
    vstrwq_u32(addr, vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), 36u), (uint32_t)(uintptr_t)f));
    const int32x4_t lo = vdupq_n_s32(p->clamp_min), hi = vdupq_n_s32(p->clamp_max);
    const int32_t groups = count / 4;
    uint32_t word = 0;
    for (int32_t gi = 0; gi < groups; gi++) {
        const int32_t o = first + 4 * gi;
        ereid_v_pop9(xv, addr, acc);
        const int32x4_t a = vldrwq_s32(acc);
        if (out_type == EREID_BCONV_OUT_B1) {
            /* the predicate has four bits per lane: bits 0, 4, 8, 12 moved to 0..3 by one multiply
             * (no vector stays live across the asm, which uses all eight) */
            const uint32_t gt = (uint32_t)vcmpgtq_s32(a, vldrwq_s32(threshold + o)) & 0x1111u;
            word |= ((gt * 0x249u) >> 9 & 0xFu) << (o & 31);
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

/* A border pixel with pad_value 0 (out-of-image taps masked, channels_in / 2 added per
 * such tap): portable counts, the generic output stage. */
static void ereid_b3_w1_masked(const ereid_bconv_params *p, const ereid_bconv_transform *transform,
                               const int32_t *threshold, const int32_t *f, const uint32_t *x, const uint32_t *v,
                               int32_t extra, int32_t first, int32_t count, void *out_px)
{
    int32_t acc[EREID_BCONV_BLOCK];
    for (int32_t i = 0; i < count; i++, f += 9) {
        uint32_t bytes = 0;
        for (int32_t k = 0; k < 9; k += 3) {
            bytes += ereid_bin_bytes(ereid_bin_nibbles((x[k] ^ (uint32_t)f[k]) & v[k]) +
                                     ereid_bin_nibbles((x[k + 1] ^ (uint32_t)f[k + 1]) & v[k + 1]) +
                                     ereid_bin_nibbles((x[k + 2] ^ (uint32_t)f[k + 2]) & v[k + 2]));
        }
        acc[i] = (int32_t)ereid_bin_hsum((uint32_t)extra, bytes);
    }
    ereid_bconv_store(p, transform, threshold, acc, first, count, out_px);
}

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
                        ereid_b3_w1_masked(p, transform, threshold, f, x, v, extra, first, count, out);
                        continue;
                    }
                    int32_t done = 0;
#if defined(EREID_BIN_MVE)
                    if (!flush) { /* the denormal flush stays scalar */
                        done = ereid_b3_w1_block_mve(p, transform, threshold, f, x, first, count, out, out_type, clamp);
                    }
#endif
                    if (done < count) {
                        ereid_b3_w1_block(p, transform, threshold, f, x, first, done, count, out, out_type, clamp,
                                          flush);
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
    if (clamp) {
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
    const int32_t words = g.in_words;
    const int32_t px_bytes = g.out_words_per_px * ereid_bconv_out_elem_bytes(params->output_type);
    /* The clamp matters only when the activation range is narrower than [0, 2K]. */
    const int clamp = params->clamp_min > 0 || params->clamp_max < 2 * 9 * params->channels_in;
    uint8_t *out = (uint8_t *)output;
    /* Float output whose constants can make denormal results (multipliers or biases below
     * 2^-100, flush_denormals) is rare: it takes the generic per-pixel path. */
    const int generic = params->output_type == EREID_BCONV_OUT_F32 && params->flush_denormals;
    if (words == 1 && !generic) {
        if (params->output_type == EREID_BCONV_OUT_B1) {
            ereid_b3_w1_b1(params, &g, threshold, output_dims, out, px_bytes);
        } else if (params->output_type == EREID_BCONV_OUT_S8) {
            ereid_b3_w1_s8(params, &g, transform, output_dims, out, px_bytes, clamp);
        } else {
            ereid_b3_w1_f32(params, &g, transform, output_dims, out, px_bytes, clamp);
        }
        return EREID_OK;
    }
    /* Several words per pixel: each pixel's nine taps gathered into one block, each channel
     * one contiguous run (ereid_bconv2d_pixel_out_b1). */
    for (int32_t b = 0; b < output_dims->n; b++) {
        for (int32_t oy = 0; oy < output_dims->h; oy++) {
            for (int32_t ox = 0; ox < output_dims->w; ox++, out += px_bytes) {
                ereid_bconv2d_pixel_out_b1(params, &g, transform, threshold, b, oy, ox, out);
            }
        }
    }
    return EREID_OK;
}

/* FULLY_CONNECTED int8 as LiteRT's BUILTIN_REF computes it (per-tensor or per-channel
 * weight scales), without double arithmetic: the double rescale of
 * ereid_fully_connected_rescale_s8 reproduced exactly in integers (ereid_fc_rescale.h).
 * This is the kernel generated firmware calls.
 *
 * Dot products (weights with zero point 0, which is what TFLite allows for int8 FC):
 *   - Helium: 16 int8 per vector, four output units per pass over the input;
 *     sum (x + off) * w = sum x * w + off * sum w, both sums by VMLADAVA / VADDVA;
 *   - ARMv7E-M DSP: four units per pass, the input's SXTB16 + SADD16 shared by the four;
 *   - otherwise (and for a non-zero weight zero point) the plain loop.
 * All sums are exact (wrapping) int32, so the paths give the same bytes. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"
#include "ereid_fc_rescale.h"
#include "ereid_mve.h"

#if EREID_USE_MVE
/* acc[r] = sum_i (x[i] + x_offset) * w_r[i] for the four rows w + r * depth. */
static void ereid_fc_dot4_mve(const int8_t *x, int32_t x_offset, const int8_t *w, int32_t depth, int32_t acc[4])
{
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32_t d0 = 0, d1 = 0, d2 = 0, d3 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t i = 0; i < depth; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth - i));
        const int8x16_t vx = vldrbq_z_s8(x + i, p);
        const int8x16_t v0 = vldrbq_z_s8(w0 + i, p);
        const int8x16_t v1 = vldrbq_z_s8(w1 + i, p);
        const int8x16_t v2 = vldrbq_z_s8(w2 + i, p);
        const int8x16_t v3 = vldrbq_z_s8(w3 + i, p);
        d0 = vmladavaq_s8(d0, vx, v0);
        s0 = vaddvaq_s8(s0, v0);
        d1 = vmladavaq_s8(d1, vx, v1);
        s1 = vaddvaq_s8(s1, v1);
        d2 = vmladavaq_s8(d2, vx, v2);
        s2 = vaddvaq_s8(s2, v2);
        d3 = vmladavaq_s8(d3, vx, v3);
        s3 = vaddvaq_s8(s3, v3);
    }
    const uint32_t off = (uint32_t)x_offset;
    acc[0] = (int32_t)((uint32_t)d0 + off * (uint32_t)s0);
    acc[1] = (int32_t)((uint32_t)d1 + off * (uint32_t)s1);
    acc[2] = (int32_t)((uint32_t)d2 + off * (uint32_t)s2);
    acc[3] = (int32_t)((uint32_t)d3 + off * (uint32_t)s3);
}

static int32_t ereid_fc_dot1_mve(const int8_t *x, int32_t x_offset, const int8_t *w, int32_t depth)
{
    int32_t d = 0, s = 0;
    for (int32_t i = 0; i < depth; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth - i));
        const int8x16_t vw = vldrbq_z_s8(w + i, p);
        d = vmladavaq_s8(d, vldrbq_z_s8(x + i, p), vw);
        s = vaddvaq_s8(s, vw);
    }
    return (int32_t)((uint32_t)d + (uint32_t)x_offset * (uint32_t)s);
}
#elif EREID_USE_DSP
/* acc[r] = sum_i (x[i] + x_offset) * w_r[i] for the four rows w + r * depth. */
static void ereid_fc_dot4_dsp(const int8_t *x, int32_t x_offset, const int8_t *w, int32_t depth, int32_t acc[4])
{
    const uint32_t off2 = ereid_dup16(x_offset);
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i = 0;
    for (; i + 4 <= depth; i += 4) {
        const uint32_t vx = ereid_read_s8x4(x + i);
        const uint32_t xe = ereid_sadd16(ereid_sxtb16(vx), off2);
        const uint32_t xo = ereid_sadd16(ereid_sxtb16_ror8(vx), off2);
        uint32_t v = ereid_read_s8x4(w0 + i);
        a0 = ereid_smlad(xe, ereid_sxtb16(v), a0);
        a0 = ereid_smlad(xo, ereid_sxtb16_ror8(v), a0);
        v = ereid_read_s8x4(w1 + i);
        a1 = ereid_smlad(xe, ereid_sxtb16(v), a1);
        a1 = ereid_smlad(xo, ereid_sxtb16_ror8(v), a1);
        v = ereid_read_s8x4(w2 + i);
        a2 = ereid_smlad(xe, ereid_sxtb16(v), a2);
        a2 = ereid_smlad(xo, ereid_sxtb16_ror8(v), a2);
        v = ereid_read_s8x4(w3 + i);
        a3 = ereid_smlad(xe, ereid_sxtb16(v), a3);
        a3 = ereid_smlad(xo, ereid_sxtb16_ror8(v), a3);
    }
    for (; i < depth; i++) {
        const uint32_t xv = (uint32_t)((int32_t)x[i] + x_offset);
        a0 = (int32_t)((uint32_t)a0 + xv * (uint32_t)(int32_t)w0[i]);
        a1 = (int32_t)((uint32_t)a1 + xv * (uint32_t)(int32_t)w1[i]);
        a2 = (int32_t)((uint32_t)a2 + xv * (uint32_t)(int32_t)w2[i]);
        a3 = (int32_t)((uint32_t)a3 + xv * (uint32_t)(int32_t)w3[i]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

ereid_status ereid_fully_connected_rescale_int_s8(const ereid_context *ctx,
                                                  const ereid_fc_params *fc_params,
                                                  const ereid_fc_int_rescale_params *rescale,
                                                  const ereid_dims *input_dims, const int8_t *input,
                                                  const ereid_dims *filter_dims, const int8_t *filter,
                                                  const int32_t *bias,
                                                  const ereid_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (EREID_WEIGHTED_ARGS_INVALID(fc_params,
                                    rescale == NULL || rescale->mantissa_hi == NULL || rescale->mantissa_lo == NULL ||
                                        rescale->shift == NULL,
                                    input_dims, input, filter_dims, filter, output_dims, output) ||
        !ereid_activation_valid(&fc_params->activation)) {
        return EREID_ARG_ERROR;
    }
    const int32_t batches = input_dims->n;
    const int32_t depth = filter_dims->c;
    const int32_t out_depth = filter_dims->n;
    if (EREID_FC_SHAPE_INVALID(input_dims, output_dims, batches, depth, out_depth) ||
        (rescale->count != 1 && rescale->count != out_depth) || fc_params->input_offset < -255 ||
        fc_params->input_offset > 255 || fc_params->filter_offset < -255 || fc_params->filter_offset > 255) {
        return EREID_ARG_ERROR;
    }
    /* The rescale's exactness argument needs a mantissa below 2^53 (ereid_fc_rescale.h). */
    uint32_t out_of_range = 0; /* any mantissa_hi outside [0, 2^22) or negative mantissa_lo */
    for (int32_t o = 0; o < rescale->count; o++) {
        out_of_range |= ((uint32_t)rescale->mantissa_hi[o] >> 22) | ((uint32_t)rescale->mantissa_lo[o] >> 31);
    }
    if (out_of_range != 0) {
        return EREID_ARG_ERROR;
    }
    const int32_t scale_step = rescale->count == 1 ? 0 : 1;
    const int32_t in_off = fc_params->input_offset, f_off = fc_params->filter_offset;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *in_row = input + b * depth;
        int8_t *out_row = output + b * out_depth;
        int32_t o = 0;
#if EREID_USE_MVE || EREID_USE_DSP
        if (f_off == 0) {
            for (; o + 4 <= out_depth; o += 4) {
                int32_t acc[4];
#if EREID_USE_MVE
                ereid_fc_dot4_mve(in_row, in_off, filter + o * depth, depth, acc);
#else
                ereid_fc_dot4_dsp(in_row, in_off, filter + o * depth, depth, acc);
#endif
                for (int32_t r = 0; r < 4; r++) {
                    const int32_t s = (o + r) * scale_step;
                    out_row[o + r] = ereid_finish_fc_exact_s8(acc[r], bias, o + r, rescale->mantissa_hi[s],
                                                              rescale->mantissa_lo[s], rescale->shift[s],
                                                              fc_params->output_offset, &fc_params->activation);
                }
            }
        }
#endif
        for (; o < out_depth; o++) {
#if EREID_USE_MVE
            const int32_t acc = f_off == 0 ? ereid_fc_dot1_mve(in_row, in_off, filter + o * depth, depth)
                                           : ereid_dot_s8_offsets2(in_row, in_off, filter + o * depth, f_off, depth, 0);
#else
            const int32_t acc = ereid_dot_s8_offsets2(in_row, in_off, filter + o * depth, f_off, depth, 0);
#endif
            const int32_t s = o * scale_step;
            out_row[o] = ereid_finish_fc_exact_s8(acc, bias, o, rescale->mantissa_hi[s], rescale->mantissa_lo[s],
                                                  rescale->shift[s], fc_params->output_offset, &fc_params->activation);
        }
    }
    return EREID_OK;
}

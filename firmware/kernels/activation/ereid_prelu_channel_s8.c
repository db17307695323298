/* PRELU int8 with one alpha per channel, input of the output's shape: ereid_prelu_s8's
 * arithmetic (v = x - zp_in; v >= 0: MBQM(v, m1, s1), else MBQM(v * (alpha - zp_alpha), m2,
 * s2); + zp_out, saturated) with the rescales' constants hoisted (ereid_requant_fast.h).
 * Portable / DSP: the positive side depends on x alone, so its 256 outputs are tabulated
 * once per call where the tensor has more values than that. Helium: both sides on four
 * values per vector, the sign selecting. */
#include "ereid_nn.h"
#include "ereid_glue_dispatch.h"
#include "ereid_nn_support.h"
#include "ereid_requant_fast.h"

ereid_status ereid_prelu_channel_s8(const ereid_prelu_params *params,
                                    const ereid_dims *input_dims, const int8_t *input,
                                    const ereid_dims *alpha_dims, const int8_t *alpha,
                                    const ereid_dims *output_dims, int8_t *output)
{
    ereid_requant_fast pos, neg;
    /* Offsets are negated int8 zero points (as ereid_prelu_s8 checks): |v| and
     * |alpha + offset| <= 255, their product fits int32. */
    if (params == NULL || input == NULL || alpha == NULL || output == NULL || input_dims == NULL ||
        alpha_dims == NULL || !ereid_dims_valid(output_dims) ||
        !EREID_PRELU_CHANNEL_APPLIES(params, input_dims, alpha_dims, output_dims) ||
        params->input_offset < -EREID_INT8_MAX || params->input_offset > -EREID_INT8_MIN ||
        params->alpha_offset < -EREID_INT8_MAX || params->alpha_offset > -EREID_INT8_MIN ||
        !ereid_requant_fast_init(&pos, &params->positive_quant) ||
        !ereid_requant_fast_init(&neg, &params->negative_quant)) {
        return EREID_ARG_ERROR;
    }
    const int32_t channels = output_dims->c;
    const int32_t rows = output_dims->n * output_dims->h * output_dims->w;
    const int32_t in_off = params->input_offset, a_off = params->alpha_offset, out_off = params->output_offset;
#if EREID_USE_MVE
    const int32x4_t lo = vdupq_n_s32(EREID_INT8_MIN), hi = vdupq_n_s32(EREID_INT8_MAX);
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *in = input + r * channels;
        int8_t *out = output + r * channels;
        int32_t c = 0;
        for (; c + 4 <= channels; c += 4) {
            const int32x4_t v = vaddq_n_s32(vldrbq_s32(in + c), in_off);
            const int32x4_t a = vaddq_n_s32(vldrbq_s32(alpha + c), a_off);
            const int32x4_t p = ereid_requant_fast_mve(&pos, v);
            const int32x4_t n = ereid_requant_fast_mve(&neg, vmulq_s32(v, a));
            int32x4_t y = vpselq_s32(p, n, vcmpgeq_n_s32(v, 0));
            y = vminq_s32(vmaxq_s32(vaddq_n_s32(y, out_off), lo), hi);
            vstrbq_s32(out + c, y);
        }
        for (; c < channels; c++) {
            const int32_t v = (int32_t)in[c] + in_off;
            const int32_t y = v >= 0 ? ereid_requant_fast_apply(&pos, v)
                                     : ereid_requant_fast_apply(&neg, v * ((int32_t)alpha[c] + a_off));
            out[c] = ereid_sat_s8(ereid_add_wrap(y, out_off));
        }
    }
#else
    /* positive[x + 128]: the output of input value x where x + in_off >= 0 */
    int8_t positive[256];
    const int tabulate = rows * channels > 256;
    if (tabulate) {
        for (int32_t x = EREID_INT8_MIN; x <= EREID_INT8_MAX; x++) {
            const int32_t v = x + in_off;
            positive[x + 128] = v >= 0 ? ereid_sat_s8(ereid_add_wrap(ereid_requant_fast_apply(&pos, v), out_off)) : 0;
        }
    }
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *in = input + r * channels;
        int8_t *out = output + r * channels;
        for (int32_t c = 0; c < channels; c++) {
            const int32_t x = in[c];
            const int32_t v = x + in_off;
            if (v >= 0) {
                out[c] = tabulate ? positive[x + 128]
                                  : ereid_sat_s8(ereid_add_wrap(ereid_requant_fast_apply(&pos, v), out_off));
            } else {
                out[c] = ereid_sat_s8(
                    ereid_add_wrap(ereid_requant_fast_apply(&neg, v * ((int32_t)alpha[c] + a_off)), out_off));
            }
        }
    }
#endif
    return EREID_OK;
}

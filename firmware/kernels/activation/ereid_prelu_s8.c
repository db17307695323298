/* PRELU int8, as reference_ops::BroadcastPrelu4DSlow computes it: v = x - zp_in;
 * v >= 0 -> MBQM(v, m1, s1), else MBQM(v * (alpha - zp_alpha), m2, s2); + zp_out,
 * saturated to int8. Input and alpha broadcast to the output (ereid_bcast.h). */
#include "ereid_nn.h"
#include "ereid_bcast.h"

ereid_status ereid_prelu_s8(const ereid_prelu_params *params,
                            const ereid_dims *input_dims, const int8_t *input,
                            const ereid_dims *alpha_dims, const int8_t *alpha,
                            const ereid_dims *output_dims, int8_t *output)
{
    /* Offsets are negated int8 zero points, so |v| and |alpha + offset| stay <= 255 and their
     * product fits int32 comfortably. */
    if (EREID_BCAST_ARGS_INVALID(params, input_dims, input, alpha_dims, alpha, output_dims, output) ||
        params->input_offset < -EREID_INT8_MAX || params->input_offset > -EREID_INT8_MIN ||
        params->alpha_offset < -EREID_INT8_MAX || params->alpha_offset > -EREID_INT8_MIN ||
        params->positive_quant.shift > 30 || params->positive_quant.shift < -31 ||
        params->negative_quant.shift > 30 || params->negative_quant.shift < -31) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *a = input_dims, *b = alpha_dims, *o = output_dims;
    EREID_BCAST_STRIDES(a, o, sa_n, sa_h, sa_w, sa_c);
    EREID_BCAST_STRIDES(b, o, sb_n, sb_h, sb_w, sb_c);
    int8_t *out = output;
    for (int32_t n = 0; n < o->n; n++) {
        for (int32_t y = 0; y < o->h; y++) {
            for (int32_t x = 0; x < o->w; x++) {
                const int8_t *pa = input + n * sa_n + y * sa_h + x * sa_w;
                const int8_t *pb = alpha + n * sb_n + y * sb_h + x * sb_w;
                for (int32_t c = 0; c < o->c; c++) {
                    const int32_t v = (int32_t)pa[c * sa_c] + params->input_offset;
                    int32_t r;
                    if (v >= 0) {
                        r = ereid_requantize(v, params->positive_quant.multiplier, params->positive_quant.shift);
                    } else {
                        r = ereid_requantize(v * ((int32_t)pb[c * sb_c] + params->alpha_offset),
                                             params->negative_quant.multiplier, params->negative_quant.shift);
                    }
                    *out++ = ereid_sat_s8(ereid_add_wrap(r, params->output_offset));
                }
            }
        }
    }
    return EREID_OK;
}

/* ADD int8 with 4-D broadcasting. Reproduces reference_integer_ops::Add /
 * BroadcastAdd4DSlow: each input is offset, shifted left by left_shift (20),
 * rescaled with its own multiplier (SmallerThanOneExp), summed, rescaled to
 * the output, offset and clamped. */
#include "ereid_nn.h"
#include "ereid_bcast.h"

ereid_status ereid_add_s8(const ereid_add_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output)
{
    if (EREID_BCAST_ARGS_INVALID(params, input1_dims, input1, input2_dims, input2, output_dims, output) ||
        !ereid_activation_valid(&params->activation) || params->left_shift < 0 || params->left_shift > 30) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *a = input1_dims, *b = input2_dims, *o = output_dims;
    EREID_BCAST_STRIDES(a, o, sa_n, sa_h, sa_w, sa_c);
    EREID_BCAST_STRIDES(b, o, sb_n, sb_h, sb_w, sb_c);
    int8_t *out = output;

    for (int32_t n = 0; n < o->n; n++) {
        for (int32_t y = 0; y < o->h; y++) {
            for (int32_t x = 0; x < o->w; x++) {
                const int8_t *pa = input1 + n * sa_n + y * sa_h + x * sa_w;
                const int8_t *pb = input2 + n * sb_n + y * sb_h + x * sb_w;
                for (int32_t c = 0; c < o->c; c++) {
                    const int32_t in1 = ((int32_t)pa[c * sa_c] + params->input1_offset) * (1 << params->left_shift);
                    const int32_t in2 = ((int32_t)pb[c * sb_c] + params->input2_offset) * (1 << params->left_shift);
                    const int32_t scaled1 = ereid_requantize_smaller_than_one(in1, params->input1_quant.multiplier,
                                                                              params->input1_quant.shift);
                    const int32_t scaled2 = ereid_requantize_smaller_than_one(in2, params->input2_quant.multiplier,
                                                                              params->input2_quant.shift);
                    const int32_t raw_out = ereid_requantize_smaller_than_one(
                                                scaled1 + scaled2, params->output_quant.multiplier,
                                                params->output_quant.shift) +
                                            params->output_offset;
                    *out++ = (int8_t)ereid_clamp_i32(raw_out, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return EREID_OK;
}

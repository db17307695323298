/* ADD int8 with 4-D broadcasting. Reproduces reference_integer_ops::Add /
 * BroadcastAdd4DSlow: each input is offset, shifted left by left_shift (20),
 * rescaled with its own multiplier (SmallerThanOneExp), summed, rescaled to
 * the output, offset and clamped. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

/* One input's contribution: (x + offset) * 2^left_shift, rescaled by its multiplier. */
static inline int32_t ereid_add_scaled_input(int8_t x, int32_t offset, int32_t left_shift,
                                             const ereid_per_tensor_quant_params *quant)
{
    return ereid_requantize_smaller_than_one(((int32_t)x + offset) * (1 << left_shift), quant->multiplier,
                                             quant->shift);
}

ereid_status ereid_add_s8(const ereid_add_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output)
{
    if (params == NULL || EREID_BCAST_ARGS_INVALID(input1_dims, input1, input2_dims, input2, output_dims, output) ||
        !ereid_activation_valid(&params->activation) || params->left_shift < 0 || params->left_shift > 30) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *o = output_dims;
    const ereid_bcast_steps sa = ereid_bcast_steps_of(input1_dims, o), sb = ereid_bcast_steps_of(input2_dims, o);
    int8_t *out = output;

    for (int32_t n = 0; n < o->n; n++) {
        for (int32_t y = 0; y < o->h; y++) {
            for (int32_t x = 0; x < o->w; x++) {
                const int8_t *pa = ereid_bcast_pixel(input1, &sa, n, y, x);
                const int8_t *pb = ereid_bcast_pixel(input2, &sb, n, y, x);
                for (int32_t c = 0; c < o->c; c++) {
                    const int32_t scaled1 = ereid_add_scaled_input(pa[c * sa.c], params->input1_offset,
                                                                   params->left_shift, &params->input1_quant);
                    const int32_t scaled2 = ereid_add_scaled_input(pb[c * sb.c], params->input2_offset,
                                                                   params->left_shift, &params->input2_quant);
                    const int32_t raw_out = ereid_requantize_smaller_than_one(
                                                scaled1 + scaled2, params->output_quant.multiplier,
                                                params->output_quant.shift) +
                                            params->output_offset;
                    *out++ = ereid_clamp_s8(raw_out, &params->activation);
                }
            }
        }
    }
    return EREID_OK;
}

/* MUL int8 with 4-D broadcasting. Reproduces reference_integer_ops::Mul /
 * BroadcastMul4DSlow: (in1 + off1) * (in2 + off2), one MultiplyByQuantizedMultiplier,
 * output offset, clamp. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_mul_s8(const ereid_mul_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output)
{
    if (params == NULL || EREID_BCAST_ARGS_INVALID(input1_dims, input1, input2_dims, input2, output_dims, output) ||
        !ereid_activation_valid(&params->activation)) {
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
                    const int32_t in1 = (int32_t)pa[c * sa.c] + params->input1_offset;
                    const int32_t in2 = (int32_t)pb[c * sb.c] + params->input2_offset;
                    *out++ = ereid_requant_s8(in1 * in2, params->output_quant.multiplier, params->output_quant.shift,
                                              params->output_offset, &params->activation);
                }
            }
        }
    }
    return EREID_OK;
}

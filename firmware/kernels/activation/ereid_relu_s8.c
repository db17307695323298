/* RELU / RELU6 / RELU_N1_TO_1 int8, as LiteRT's QuantizedReluX (activations.cc) computes
 * them: the input requantized to the output's scale, offset, then clamped to the range. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_relu_s8(const ereid_relu_params *params,
                           int32_t size, const int8_t *input, int8_t *output)
{
    if (EREID_FLAT_ARGS_INVALID(params, input, output, size) || !ereid_activation_valid(&params->activation) ||
        params->quant.shift > 30 || params->quant.shift < -31 || params->input_offset < -EREID_INT8_MAX ||
        params->input_offset > -EREID_INT8_MIN) {
        return EREID_ARG_ERROR;
    }
    for (int32_t i = 0; i < size; i++) {
        const int32_t v = ereid_requantize((int32_t)input[i] + params->input_offset, params->quant.multiplier,
                                           params->quant.shift);
        output[i] = (int8_t)ereid_clamp_i32(ereid_add_wrap(v, params->output_offset), params->activation.min,
                                            params->activation.max);
    }
    return EREID_OK;
}

/* L2_NORMALIZATION int8 -> int8 (output scale 1/128, zero point 0) over the
 * last axis. Reproduces reference_integer_ops::L2Normalization, including
 * GetInvSqrtQuantizedMultiplierExp's Newton-Raphson 1/sqrt in Q3.28. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

/* tflite::GetInvSqrtQuantizedMultiplierExp with reverse_shift = -1. */
static void ereid_inv_sqrt_multiplier(int32_t input, int32_t *multiplier, int32_t *shift)
{
    if (input <= 1) {
        /* The reference treats 0 (invalid) like 1 to avoid overflow. */
        *multiplier = INT32_MAX;
        *shift = 0;
        return;
    }
    int32_t out_shift = 11;
    while (input >= (1 << 29)) {
        input /= 4;
        ++out_shift;
    }
    const int32_t max_left_shift_bits = ereid_clz_u32((uint32_t)input) - 1;
    const int32_t left_shift_bit_pairs = max_left_shift_bits / 2 - 1;
    out_shift -= left_shift_bit_pairs;
    input <<= 2 * left_shift_bit_pairs;
    /* Q3.28 Newton-Raphson for 1/sqrt, starting from 1, five iterations. */
    const int32_t fixedpoint_input = input >> 1;
    const int32_t half_input = ereid_sat_rounding_mul_by_pot(fixedpoint_input, -1);
    const int32_t half_three = (1 << 28) + (1 << 27); /* 1.5 in Q3.28 */
    int32_t x = 1 << 28;                              /* 1.0 in Q3.28 */
    for (int i = 0; i < 5; i++) {
        const int32_t x3 = ereid_sat_rounding_mul_by_pot(ereid_srdhm(ereid_srdhm(x, x), x), 6); /* Q9 -> Q3 */
        const int32_t diff = ereid_sub_wrap(ereid_srdhm(half_three, x), ereid_srdhm(half_input, x3)); /* Q6 */
        x = ereid_sat_rounding_mul_by_pot(diff, 3); /* Q6 -> Q3 */
    }
    const int32_t half_sqrt_2 = 1518500250; /* sqrt(2)/2 in Q0.31 */
    x = ereid_srdhm(x, half_sqrt_2);
    if (out_shift < 0) {
        x = ereid_shl_wrap(x, -out_shift);
        out_shift = 0;
    }
    *multiplier = x;
    *shift = -out_shift;
}

ereid_status ereid_l2_normalization_s8(const ereid_l2norm_params *params,
                                       int32_t outer_size, int32_t depth,
                                       const int8_t *input, int8_t *output)
{
    if (EREID_ROWS_ARGS_INVALID(params, input, output, outer_size, depth)) {
        return EREID_ARG_ERROR;
    }
    const int32_t output_scale_bits = 7; /* output is x * 2^7 / ||x|| */
    for (int32_t row = 0; row < outer_size; row++) {
        const int8_t *in = input + row * depth;
        int32_t acc = 0;
        for (int32_t c = 0; c < depth; c++) {
            const int32_t v = (int32_t)in[c] - params->input_zero_point;
            acc += v * v;
        }
        int32_t multiplier, shift;
        ereid_inv_sqrt_multiplier(acc, &multiplier, &shift);
        for (int32_t c = 0; c < depth; c++) {
            const int32_t v = (int32_t)in[c] - params->input_zero_point;
            const int32_t out = ereid_requantize(v, multiplier, shift + output_scale_bits);
            output[row * depth + c] = ereid_sat_s8(out);
        }
    }
    return EREID_OK;
}

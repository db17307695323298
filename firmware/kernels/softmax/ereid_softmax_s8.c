/* SOFTMAX int8 -> int8 over the last axis. Reproduces reference_ops::Softmax
 * (quantized, kReference): the input difference to the row maximum is scaled
 * into Q5.26, exp() is gemmlowp's fixed-point exp_on_negative_values, the sum
 * is kept in Q12.19 and inverted with one_over_one_plus_x_for_x_in_0_1. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

#define EREID_SOFTMAX_DIFF_INT_BITS 5   /* input to exp(): Q5.26 */
#define EREID_SOFTMAX_ACCUM_INT_BITS 12 /* sum of exps: Q12.19 */

/* exp(x) for x in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8). */
static int32_t ereid_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = ereid_add_wrap(a, 1 << 28); /* a + 1/8 */
    const int32_t x2 = ereid_srdhm(x, x);
    const int32_t x3 = ereid_srdhm(x2, x);
    const int32_t x4 = ereid_srdhm(x2, x2);
    const int32_t x4_over_4 = ereid_sat_rounding_mul_by_pot(x4, -2);
    const int32_t poly = ereid_sat_rounding_mul_by_pot(
        ereid_add_wrap(ereid_srdhm(ereid_add_wrap(x4_over_4, x3), constant_1_over_3), x2), -1);
    return ereid_add_wrap(constant_term, ereid_srdhm(constant_term, ereid_add_wrap(x, poly)));
}

/* gemmlowp::exp_on_negative_values for a Q5.26 input; returns Q0.31. */
static int32_t ereid_exp_on_negative_values_q5(int32_t a)
{
    const int32_t frac_bits = 31 - EREID_SOFTMAX_DIFF_INT_BITS; /* 26 */
    const int32_t one_quarter = 1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = ereid_sub_wrap(a & mask, one_quarter);
    /* Rescale<0> of a Q5 value: saturating left shift by 5. */
    int32_t result = ereid_exp_on_interval_between_negative_one_quarter_and_0_excl(
        ereid_sat_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, EREID_SOFTMAX_DIFF_INT_BITS));
    const int32_t remainder = ereid_sub_wrap(a_mod_quarter_minus_one_quarter, a);
    /* exp(-2^k) for k = -2 .. 4 in Q0.31; applied for each bit set in the remainder. */
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int32_t k = -2; k <= 4; k++) {
        if (EREID_SOFTMAX_DIFF_INT_BITS > k && (remainder & (1 << (frac_bits + k))) != 0) {
            result = ereid_srdhm(result, multipliers[k + 2]);
        }
    }
    /* With 5 integer bits no clamp at -32 is needed (gemmlowp: kIntegerBits > 5 only). */
    return a == 0 ? INT32_MAX : result;
}

/* exp(beta * s_in * input_diff) in Q0.31 for input_diff >= diff_min (<= 0). */
static inline int32_t ereid_softmax_exp_of_diff(int32_t input_diff, const ereid_softmax_params *params)
{
    const int32_t scaled_diff =
        ereid_requantize_greater_than_one(input_diff, params->input_multiplier, params->input_left_shift);
    return ereid_exp_on_negative_values_q5(scaled_diff);
}

ereid_status ereid_softmax_s8(const ereid_softmax_params *params,
                              int32_t num_rows, int32_t row_size,
                              const int8_t *input, int8_t *output)
{
    if (EREID_ROWS_ARGS_INVALID(params, input, output, num_rows, row_size) || params->input_left_shift < 0 ||
        params->input_left_shift > 31) {
        return EREID_ARG_ERROR;
    }
    for (int32_t row = 0; row < num_rows; row++) {
        const int8_t *in = input + row * row_size;
        int8_t *out = output + row * row_size;
        int32_t max_in_row = EREID_INT8_MIN;
        for (int32_t c = 0; c < row_size; c++) {
            max_in_row = ereid_max_i32(max_in_row, in[c]);
        }
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < row_size; c++) {
            const int32_t input_diff = (int32_t)in[c] - max_in_row;
            if (input_diff >= params->diff_min) {
                const int32_t exp_q0 = ereid_softmax_exp_of_diff(input_diff, params);
                /* Rescale<12> from Q0: rounding right shift by 12. */
                sum_of_exps = ereid_add_wrap(sum_of_exps,
                                             ereid_sat_rounding_mul_by_pot(exp_q0, -EREID_SOFTMAX_ACCUM_INT_BITS));
            }
        }
        /* tflite::GetReciprocal(sum_of_exps, 12, &num_bits_over_unit). */
        const int32_t headroom_plus_one = ereid_clz_u32((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = EREID_SOFTMAX_ACCUM_INT_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = ereid_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return EREID_ARG_ERROR; /* the reference TFLITE_CHECKs the same */
        }
        for (int32_t c = 0; c < row_size; c++) {
            const int32_t input_diff = (int32_t)in[c] - max_in_row;
            if (input_diff >= params->diff_min) {
                const int32_t exp_q0 = ereid_softmax_exp_of_diff(input_diff, params);
                const int32_t unsat = ereid_rdbpot(ereid_srdhm(shifted_scale, exp_q0), exponent);
                out[c] = ereid_sat_s8(unsat + EREID_INT8_MIN);
            } else {
                out[c] = EREID_INT8_MIN;
            }
        }
    }
    return EREID_OK;
}

/*
 * Fixed-point helpers reproducing TFLite's reference arithmetic bit for bit
 * (tensorflow/lite/kernels/internal/common.h and gemmlowp/fixedpoint.h with
 * TFLITE_SINGLE_ROUNDING off, which is how LiteRT's BUILTIN_REF is built):
 * a rounding doubling high multiply followed by a rounding right shift, i.e.
 * two roundings, ties away from zero in the first and up in magnitude in the second.
 */
#ifndef EREID_NN_REQUANT_H
#define EREID_NN_REQUANT_H

#include <float.h>
#include <stdint.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#error "ereid_rescale_round_f64 needs FLT_EVAL_METHOD 0 (use SSE2 / -mfpmath=sse on x86)"
#endif

#define EREID_INT8_MIN (-128)
#define EREID_INT8_MAX 127

static inline int32_t ereid_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t ereid_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t ereid_clamp_i32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Two's-complement wrapping shift: TFLite computes x * (1 << s) in int32 and
 * relies on wrap; in C that must go through uint32 to stay defined. */
static inline int32_t ereid_shl_wrap(int32_t x, int32_t s)
{
    return (int32_t)((uint32_t)x << s);
}

/* gemmlowp::SaturatingRoundingDoublingHighMul (int32). */
static inline int32_t ereid_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1LL - (1LL << 30));
    /* C99 '/' truncates toward zero, like the C++ the reference uses. */
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* gemmlowp::RoundingDivideByPOT: round half away from zero, exponent 0..31. */
static inline int32_t ereid_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative int: implementation-defined in C99,
     * arithmetic on every compiler this library targets (gcc, clang, armcc). */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32, int32, int). */
static inline int32_t ereid_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    return ereid_rdbpot(ereid_srdhm(ereid_shl_wrap(x, left_shift), multiplier), right_shift);
}

/* LiteRT's int8 FULLY_CONNECTED reference (BUILTIN_REF) does not use the fixed-point
 * multiplier at all: reference_integer_ops::FullyConnected(..., input_scale,
 * output_scale, filter_scale) computes
 *     static_cast<int32_t>(round(static_cast<double>(acc) * effective_scale))
 * with effective_scale = double(s_in) * double(s_w) / double(s_out). That is one IEEE
 * double multiply (correctly rounded) and one round half AWAY from zero. A single
 * fixed-point rounding ((x*m + 2^(30-shift)) >> (31-shift)) rounds exact negative
 * ties toward +inf and differs there; the double-rounding form above misses about 1 in
 * 2,000 outputs of a random FC layer (near ties). Out-of-range values follow x86-64's cvttsd2si, which is what the
 * reference build does with the (formally undefined) cast: INT32_MIN.
 * Needs FLT_EVAL_METHOD == 0 (no x87 excess precision); true on every Arm target and
 * on x86-64. Without a double FPU (Cortex-M4F/M33) the compiler's soft-float routines
 * are correctly rounded, so the result is the same. */
static inline int32_t ereid_rescale_round_f64(int32_t acc, double scale)
{
    const double v = (double)acc * scale;
    if (!(v > -2147483649.0 && v < 2147483648.0)) { /* NaN too */
        return INT32_MIN;
    }
    const int32_t t = (int32_t)v;         /* truncation toward zero; in range after the test above */
    const double frac = v - (double)t;    /* exact: the bits of v below the binary point */
    const int64_t r = (int64_t)t + (frac >= 0.5 ? 1 : 0) - (frac <= -0.5 ? 1 : 0);
    if (r > INT32_MAX || r < INT32_MIN) {
        return INT32_MIN;
    }
    return (int32_t)r;
}

/* tflite::MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t ereid_requantize_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return ereid_rdbpot(ereid_srdhm(x, multiplier), -shift);
}

/* tflite::MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0): no final rounding shift. */
static inline int32_t ereid_requantize_greater_than_one(int32_t x, int32_t multiplier, int32_t left_shift)
{
    return ereid_srdhm(ereid_shl_wrap(x, left_shift), multiplier);
}

/* gemmlowp::SaturatingRoundingMultiplyByPOT with a run-time exponent
 * (> 0: saturating left shift, < 0: rounding right shift). */
static inline int32_t ereid_sat_rounding_mul_by_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return ereid_shl_wrap(x, exponent);
    }
    if (exponent < 0) {
        return ereid_rdbpot(x, -exponent);
    }
    return x;
}

/* gemmlowp::RoundingHalfSum (int32). */
static inline int32_t ereid_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* Wrapping int32 add/sub, as gemmlowp's scalar FixedPoint operators behave. */
static inline int32_t ereid_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t ereid_sub_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* Count leading zeros of a uint32 (32 for 0), without relying on a builtin. */
static inline int32_t ereid_clz_u32(uint32_t x)
{
#if defined(__GNUC__)
    return x ? __builtin_clz(x) : 32;
#else
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* gemmlowp::one_over_one_plus_x_for_x_in_0_1 on Q0.31. */
static inline int32_t ereid_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = ereid_rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;     /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    const int32_t f2_one = 1 << 29;
    int32_t x = ereid_add_wrap(constant_48_over_17, ereid_srdhm(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; i++) {
        const int32_t half_denominator_times_x = ereid_srdhm(half_denominator, x);      /* Q2 */
        const int32_t one_minus = ereid_sub_wrap(f2_one, half_denominator_times_x);    /* Q2 */
        /* x * one_minus is Q4; Rescale<2> is a saturating left shift by 2. */
        x = ereid_add_wrap(x, ereid_sat_rounding_mul_by_pot(ereid_srdhm(x, one_minus), 2));
    }
    /* ExactMulByPot<-1> turns Q2 into Q1; Rescale<0> saturating-shifts left by 1. */
    return ereid_sat_rounding_mul_by_pot(x, 1);
}

#endif /* EREID_NN_REQUANT_H */

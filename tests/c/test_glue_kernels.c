/*
 * The fast int8 glue kernels of binary networks against the reference kernels they replace,
 * on random shapes, values and requantization parameters (ties and saturation included):
 *   ereid_add_wrapper_s8 / ereid_add_elementwise_s8      vs ereid_add_s8
 *   ereid_prelu_wrapper_s8 / ereid_prelu_channel_s8      vs ereid_prelu_s8
 *   ereid_depthwise_conv_1x1_unit_s8                     vs ereid_depthwise_conv_wrapper_s8
 * plus their argument checks and fallbacks. Usage: test_glue_kernels [iterations] [seed].
 * Host builds run the portable paths; the Helium paths run bit-exact models in QEMU.
 */
#include <stdlib.h>

#include "ereid_nn.h"
#include "test_support.h"

#define MAX_ELEMS (2 * 9 * 9 * 48)

static int8_t in1[MAX_ELEMS], in2[MAX_ELEMS], ref[MAX_ELEMS], got[MAX_ELEMS], alpha_v[64], filt[64];
static int32_t bias_v[64], mult_v[64], shift_v[64];

static void expect(const char *what, ereid_status s, ereid_status want)
{
    if (s != want) {
        if (failures < 20) {
            printf("FAIL %s: status %d, expected %d\n", what, (int)s, (int)want);
        }
        failures++;
    }
}

static ereid_dims random_dims(void)
{
    ereid_dims d = {rnd_range(1, 2), rnd_range(1, 9), rnd_range(1, 9), rnd_range(1, 48)};
    return d;
}

static void fill(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        p[i] = (int8_t)rnd_range(-128, 127);
    }
}

/* A multiplier in [2^30, 2^31) (QuantizeMultiplier's range), or a small one now and then. */
static int32_t random_multiplier(void)
{
    return rnd() % 8 == 0 ? rnd_range(1, 1 << 20) : (int32_t)((1u << 30) + (rnd() & 0x3fffffffu));
}

static ereid_activation random_activation(void)
{
    ereid_activation a = {-128, 127};
    if (rnd() % 3 == 0) {
        a.min = rnd_range(-128, 0);
        a.max = rnd_range(a.min, 127);
    }
    return a;
}

static void test_add(int iter)
{
    const ereid_dims d = random_dims();
    const int32_t n = d.n * d.h * d.w * d.c;
    ereid_add_params p;
    p.input1_offset = rnd_range(-127, 128);
    p.input2_offset = rnd_range(-127, 128);
    p.output_offset = rnd_range(-128, 127);
    p.left_shift = rnd() % 2 ? 20 : rnd_range(0, 22); /* |x + offset| << 22 < 2^30: the reference's sum fits */
    p.input1_quant.multiplier = random_multiplier();
    p.input1_quant.shift = rnd() % 2 ? rnd_range(-3, 0) : rnd_range(-31, 0);
    p.input2_quant.multiplier = random_multiplier();
    p.input2_quant.shift = rnd() % 2 ? rnd_range(-3, 0) : rnd_range(-31, 0);
    p.output_quant.multiplier = random_multiplier();
    p.output_quant.shift = rnd() % 2 ? rnd_range(-24, -14) : rnd_range(-31, 0);
    p.activation = random_activation();
    fill(in1, n);
    fill(in2, n);
    expect("add reference", ereid_add_s8(&p, &d, in1, &d, in2, &d, ref), EREID_OK);
    memset(got, 0, (size_t)n);
    expect("add elementwise", ereid_add_elementwise_s8(&p, &d, in1, &d, in2, &d, got), EREID_OK);
    check_equal("add elementwise", iter, ref, got, n);
    memset(got, 0, (size_t)n);
    expect("add wrapper", ereid_add_wrapper_s8(&p, &d, in1, &d, in2, &d, got), EREID_OK);
    check_equal("add wrapper", iter, ref, got, n);
    hash_bytes(got, n);
    /* a broadcast operand: the wrapper runs the reference, the element-wise kernel refuses */
    const ereid_dims row = {1, 1, 1, d.c};
    expect("add broadcast reference", ereid_add_s8(&p, &d, in1, &row, in2, &d, ref), EREID_OK);
    expect("add broadcast wrapper", ereid_add_wrapper_s8(&p, &d, in1, &row, in2, &d, got), EREID_OK);
    check_equal("add broadcast wrapper", iter, ref, got, n);
    if (n != d.c) {
        expect("add elementwise refuses broadcast", ereid_add_elementwise_s8(&p, &d, in1, &row, in2, &d, got),
               EREID_ARG_ERROR);
    }
}

static void test_prelu(int iter)
{
    ereid_dims d = random_dims();
    if (rnd() % 2) { /* more values than the positive side's table: the tabulated path */
        d.h = 9;
        d.w = 9;
    }
    const int32_t n = d.n * d.h * d.w * d.c;
    const ereid_dims ad = {1, 1, 1, d.c};
    ereid_prelu_params p;
    p.input_offset = rnd_range(-127, 128);
    p.alpha_offset = rnd() % 2 ? 0 : rnd_range(-127, 128);
    p.output_offset = rnd_range(-128, 127);
    p.positive_quant.multiplier = random_multiplier();
    p.positive_quant.shift = rnd() % 2 ? rnd_range(-2, 2) : rnd_range(-31, 30);
    p.negative_quant.multiplier = random_multiplier();
    p.negative_quant.shift = rnd() % 2 ? rnd_range(-9, -5) : rnd_range(-31, 30);
    fill(in1, n);
    fill(alpha_v, d.c);
    expect("prelu reference", ereid_prelu_s8(&p, &d, in1, &ad, alpha_v, &d, ref), EREID_OK);
    memset(got, 0, (size_t)n);
    expect("prelu channel", ereid_prelu_channel_s8(&p, &d, in1, &ad, alpha_v, &d, got), EREID_OK);
    check_equal("prelu channel", iter, ref, got, n);
    memset(got, 0, (size_t)n);
    expect("prelu wrapper", ereid_prelu_wrapper_s8(&p, &d, in1, &ad, alpha_v, &d, got), EREID_OK);
    check_equal("prelu wrapper", iter, ref, got, n);
    hash_bytes(got, n);
    const ereid_dims one = {1, 1, 1, 1};
    expect("prelu scalar alpha reference", ereid_prelu_s8(&p, &d, in1, &one, alpha_v, &d, ref), EREID_OK);
    expect("prelu scalar alpha wrapper", ereid_prelu_wrapper_s8(&p, &d, in1, &one, alpha_v, &d, got), EREID_OK);
    check_equal("prelu scalar alpha wrapper", iter, ref, got, n);
    if (d.c > 1) {
        expect("prelu channel refuses scalar alpha", ereid_prelu_channel_s8(&p, &d, in1, &one, alpha_v, &d, got),
               EREID_ARG_ERROR);
    }
}

static void test_dw_unit(int iter)
{
    ereid_dims d = random_dims();
    const int32_t n = d.n * d.h * d.w * d.c;
    const ereid_dims fd = {1, 1, 1, d.c};
    ereid_dw_conv_params p;
    memset(&p, 0, sizeof(p));
    p.input_offset = rnd() % 4 ? rnd_range(-127, 128) : rnd_range(-256, 256);
    p.output_offset = rnd_range(-128, 127);
    p.ch_mult = 1;
    p.stride.h = p.stride.w = 1;
    p.dilation.h = p.dilation.w = 1;
    p.activation = random_activation();
    const int sign_filter = rnd() % 2;
    for (int32_t c = 0; c < d.c; c++) {
        filt[c] = (int8_t)(sign_filter ? (rnd() % 2 ? 1 : -1) : rnd_range(-128, 127));
        bias_v[c] = rnd() % 2 ? rnd_range(-300, 300) : rnd_range(-(1 << 29), 1 << 29);
        mult_v[c] = 1 << 30;
        shift_v[c] = 1;
    }
    const int no_bias = rnd() % 5 == 0;
    const int32_t *bias = no_bias ? NULL : bias_v;
    if (rnd() % 6 == 0) { /* one channel outside the unit form: the kernel falls back */
        const int32_t c = rnd_range(0, d.c - 1);
        if (rnd() % 2) {
            mult_v[c] = random_multiplier();
            shift_v[c] = rnd_range(-8, 1);
        } else if (!no_bias) {
            bias_v[c] = (1 << 29) + rnd_range(1, 1000);
        }
    }
    const ereid_per_channel_quant_params q = {mult_v, shift_v};
    const ereid_context ctx = {NULL, 0};
    fill(in1, n);
    expect("dw unit reference",
           ereid_depthwise_conv_wrapper_s8(&ctx, &p, &q, &d, in1, &fd, filt, bias, &d, ref), EREID_OK);
    memset(got, 0, (size_t)n);
    expect("dw unit", ereid_depthwise_conv_1x1_unit_s8(&ctx, &p, &q, &d, in1, &fd, filt, bias, &d, got), EREID_OK);
    check_equal("dw unit", iter, ref, got, n);
    hash_bytes(got, n);
}

static void test_arg_checks(void)
{
    const ereid_dims d = {1, 2, 2, 4};
    ereid_add_params ap;
    memset(&ap, 0, sizeof(ap));
    ap.left_shift = 20;
    ap.input1_quant.multiplier = ap.input2_quant.multiplier = ap.output_quant.multiplier = 1 << 30;
    ap.activation.min = -128;
    ap.activation.max = 127;
    expect("add ok", ereid_add_elementwise_s8(&ap, &d, in1, &d, in2, &d, got), EREID_OK);
    expect("add null input", ereid_add_elementwise_s8(&ap, &d, NULL, &d, in2, &d, got), EREID_ARG_ERROR);
    expect("add wrapper null input", ereid_add_wrapper_s8(&ap, &d, NULL, &d, in2, &d, got), EREID_ARG_ERROR);
    expect("add null params", ereid_add_wrapper_s8(NULL, &d, in1, &d, in2, &d, got), EREID_ARG_ERROR);
    ereid_add_params bad = ap;
    bad.output_quant.multiplier = INT32_MIN;
    expect("add multiplier INT32_MIN", ereid_add_elementwise_s8(&bad, &d, in1, &d, in2, &d, got), EREID_ARG_ERROR);
    bad = ap;
    bad.activation.min = 5;
    bad.activation.max = 4;
    expect("add inverted activation", ereid_add_elementwise_s8(&bad, &d, in1, &d, in2, &d, got), EREID_ARG_ERROR);

    ereid_prelu_params pp;
    memset(&pp, 0, sizeof(pp));
    pp.positive_quant.multiplier = pp.negative_quant.multiplier = 1 << 30;
    const ereid_dims ad = {1, 1, 1, 4};
    expect("prelu ok", ereid_prelu_channel_s8(&pp, &d, in1, &ad, alpha_v, &d, got), EREID_OK);
    expect("prelu null alpha", ereid_prelu_channel_s8(&pp, &d, in1, &ad, NULL, &d, got), EREID_ARG_ERROR);
    expect("prelu wrapper null alpha", ereid_prelu_wrapper_s8(&pp, &d, in1, &ad, NULL, &d, got), EREID_ARG_ERROR);
    ereid_prelu_params pbad = pp;
    pbad.input_offset = 300;
    expect("prelu input offset", ereid_prelu_channel_s8(&pbad, &d, in1, &ad, alpha_v, &d, got), EREID_ARG_ERROR);
    pbad = pp;
    pbad.negative_quant.shift = 31;
    expect("prelu shift 31", ereid_prelu_channel_s8(&pbad, &d, in1, &ad, alpha_v, &d, got), EREID_ARG_ERROR);

    ereid_dw_conv_params dp;
    memset(&dp, 0, sizeof(dp));
    dp.ch_mult = 1;
    dp.stride.h = dp.stride.w = dp.dilation.h = dp.dilation.w = 1;
    dp.activation.min = -128;
    dp.activation.max = 127;
    for (int c = 0; c < 4; c++) {
        mult_v[c] = 1 << 30;
        shift_v[c] = 1;
    }
    const ereid_per_channel_quant_params q = {mult_v, shift_v};
    const ereid_dims fd = {1, 1, 1, 4};
    const ereid_context ctx = {NULL, 0};
    expect("dw unit ok", ereid_depthwise_conv_1x1_unit_s8(&ctx, &dp, &q, &d, in1, &fd, filt, NULL, &d, got),
           EREID_OK);
    expect("dw unit null filter", ereid_depthwise_conv_1x1_unit_s8(&ctx, &dp, &q, &d, in1, &fd, NULL, NULL, &d, got),
           EREID_ARG_ERROR);
    const ereid_dims fd_bad = {1, 1, 1, 3};
    expect("dw unit filter channels",
           ereid_depthwise_conv_1x1_unit_s8(&ctx, &dp, &q, &d, in1, &fd_bad, filt, NULL, &d, got), EREID_ARG_ERROR);
}

int main(int argc, char **argv)
{
    const int iterations = argc > 1 ? atoi(argv[1]) : 300;
    rng_state = argc > 2 ? (uint64_t)strtoull(argv[2], NULL, 10) * 2654435761ULL + 1 : 88172645463325252ULL;
    for (int i = 0; i < iterations; i++) {
        test_add(i);
        test_prelu(i);
        test_dw_unit(i);
    }
    test_arg_checks();
    printf("failures %d hash %016llx\n", failures, (unsigned long long)hash);
    return failures != 0;
}

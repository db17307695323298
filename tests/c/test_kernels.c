/*
 * Randomised self-consistency test of the edgereid int8 kernels (host build).
 *
 * For many random shapes and quantization parameters it checks that
 *   - ereid_convolve_s8, ereid_depthwise_conv_s8, ereid_fully_connected_s8 (and
 *     per-channel, and ereid_fully_connected_rescale_s8, LiteRT's double rescale)
 *     equal a naive scalar reference written here (in a DSP build,
 *     this is the DSP-path vs portable-path comparison);
 *   - the specialised 1x1 / 3x3 conv, the 3x3 depthwise and both wrappers equal
 *     the generic kernels;
 * and prints an FNV-1a hash of every output, so two builds (portable and
 * EREID_EMULATE_DSP) can be compared byte for byte. Exit status 0 = all equal.
 * Usage: test_kernels [iterations] [seed]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_requant.h"

#define MAX_ELEMS (2 * 12 * 12 * 40)
#define MAX_FILTER (24 * 5 * 5 * 20)
#define MAX_CH 64

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static uint64_t hash = 1469598103934665603ULL;
static void hash_bytes(const int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        hash ^= (uint8_t)p[i];
        hash *= 1099511628211ULL;
    }
}

static int failures;
static void check_equal(const char *what, int iter, const int8_t *a, const int8_t *b, int32_t n)
{
    if (memcmp(a, b, (size_t)n) != 0) {
        int32_t i = 0;
        while (a[i] == b[i]) {
            i++;
        }
        if (failures < 20) {
            printf("FAIL %s iteration %d: first difference at %d (%d vs %d)\n", what, iter, (int)i, a[i], b[i]);
        }
        failures++;
    }
}
static void check_status(const char *what, int iter, ereid_status st)
{
    if (st != EREID_OK) {
        if (failures < 20) {
            printf("FAIL %s iteration %d: status %d\n", what, iter, (int)st);
        }
        failures++;
    }
}

static int8_t input[MAX_ELEMS], filter[MAX_FILTER], out_a[MAX_ELEMS * 3], out_b[MAX_ELEMS * 3];
static int32_t bias[MAX_CH], mult[MAX_CH], shift[MAX_CH];
static double dscale[MAX_CH];

/* In "sensitive" iterations values are small and the requantization is the
 * identity (multiplier ~1.0, shift 0), so an accumulator that is off by one
 * changes the output byte; the other iterations use the full int8 range. */
static int sensitive;
static void random_quant(int32_t channels)
{
    for (int32_t c = 0; c < channels; c++) {
        mult[c] = sensitive ? INT32_MAX : rnd_range(1 << 30, INT32_MAX);
        shift[c] = sensitive ? 0 : rnd_range(-14, 1);
        bias[c] = sensitive ? rnd_range(-60, 60) : rnd_range(-20000, 20000);
    }
}
static void random_s8(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        p[i] = (int8_t)(sensitive ? rnd_range(-3, 3) : rnd_range(-128, 127));
    }
}
static int32_t random_offset(void)
{
    return sensitive ? rnd_range(-3, 3) : rnd_range(-127, 128);
}
static ereid_activation random_activation(int32_t zp)
{
    ereid_activation a = {-128, 127};
    switch (rnd() % 3) {
    case 1: a.min = zp; break;                                /* RELU */
    case 2: a.min = zp; a.max = ereid_min_i32(127, zp + 40); break; /* RELU6-like */
    default: break;
    }
    return a;
}
static int32_t conv_out(int32_t in, int32_t k, int32_t s, int32_t d, int32_t pad)
{
    return (in + 2 * pad - ((k - 1) * d + 1)) / s + 1;
}

/* Naive references: plain loops, no shared helpers beyond the requantizer. */
static void ref_conv(const ereid_conv_params *p, const ereid_dims *id, const ereid_dims *fd, const ereid_dims *od,
                     int8_t *out)
{
    for (int32_t b = 0; b < od->n; b++)
        for (int32_t y = 0; y < od->h; y++)
            for (int32_t x = 0; x < od->w; x++)
                for (int32_t oc = 0; oc < od->c; oc++) {
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < fd->h; ky++)
                        for (int32_t kx = 0; kx < fd->w; kx++)
                            for (int32_t ic = 0; ic < id->c; ic++) {
                                int32_t iy = y * p->stride.h - p->padding.h + ky * p->dilation.h;
                                int32_t ix = x * p->stride.w - p->padding.w + kx * p->dilation.w;
                                if (iy < 0 || iy >= id->h || ix < 0 || ix >= id->w) continue;
                                acc += (input[((b * id->h + iy) * id->w + ix) * id->c + ic] + p->input_offset) *
                                       filter[((oc * fd->h + ky) * fd->w + kx) * fd->c + ic];
                            }
                    acc = ereid_requantize(acc + bias[oc], mult[oc], shift[oc]) + p->output_offset;
                    out[((b * od->h + y) * od->w + x) * od->c + oc] =
                        (int8_t)ereid_clamp_i32(acc, p->activation.min, p->activation.max);
                }
}

static void ref_dw(const ereid_dw_conv_params *p, const ereid_dims *id, const ereid_dims *fd, const ereid_dims *od,
                   int8_t *out)
{
    for (int32_t b = 0; b < od->n; b++)
        for (int32_t y = 0; y < od->h; y++)
            for (int32_t x = 0; x < od->w; x++)
                for (int32_t oc = 0; oc < od->c; oc++) {
                    const int32_t ic = oc / p->ch_mult;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < fd->h; ky++)
                        for (int32_t kx = 0; kx < fd->w; kx++) {
                            int32_t iy = y * p->stride.h - p->padding.h + ky * p->dilation.h;
                            int32_t ix = x * p->stride.w - p->padding.w + kx * p->dilation.w;
                            if (iy < 0 || iy >= id->h || ix < 0 || ix >= id->w) continue;
                            acc += (input[((b * id->h + iy) * id->w + ix) * id->c + ic] + p->input_offset) *
                                   filter[(ky * fd->w + kx) * fd->c + oc];
                        }
                    acc = ereid_requantize(acc + bias[oc], mult[oc], shift[oc]) + p->output_offset;
                    out[((b * od->h + y) * od->w + x) * od->c + oc] =
                        (int8_t)ereid_clamp_i32(acc, p->activation.min, p->activation.max);
                }
}

static void test_conv(int iter)
{
    const ereid_context ctx = {NULL, 0};
    ereid_conv_params p;
    ereid_dims id, fd, od;
    const int kind = (int)(rnd() % 3); /* 0: 1x1, 1: 3x3, 2: generic */
    id.n = rnd_range(1, 2); id.h = rnd_range(1, 11); id.w = rnd_range(1, 11); id.c = rnd_range(1, 19);
    fd.n = rnd_range(1, 23); fd.c = id.c;
    fd.h = kind == 0 ? 1 : kind == 1 ? 3 : rnd_range(1, 5);
    fd.w = kind == 0 ? 1 : kind == 1 ? 3 : rnd_range(1, 5);
    p.stride.h = rnd_range(1, 3); p.stride.w = rnd_range(1, 3);
    p.dilation.h = kind == 2 ? rnd_range(1, 2) : 1; p.dilation.w = kind == 2 ? rnd_range(1, 2) : 1;
    p.padding.h = kind == 0 ? 0 : rnd_range(0, fd.h - 1); p.padding.w = kind == 0 ? 0 : rnd_range(0, fd.w - 1);
    od.n = id.n; od.c = fd.n;
    od.h = conv_out(id.h, fd.h, p.stride.h, p.dilation.h, p.padding.h);
    od.w = conv_out(id.w, fd.w, p.stride.w, p.dilation.w, p.padding.w);
    if (od.h <= 0 || od.w <= 0) return;
    p.input_offset = random_offset(); p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    random_s8(input, id.n * id.h * id.w * id.c);
    random_s8(filter, fd.n * fd.h * fd.w * fd.c);
    random_quant(fd.n);
    const ereid_per_channel_quant_params q = {mult, shift};
    const int32_t n_out = od.n * od.h * od.w * od.c;
    ref_conv(&p, &id, &fd, &od, out_a);
    check_status("convolve_s8", iter, ereid_convolve_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
    check_equal("convolve_s8 vs naive", iter, out_a, out_b, n_out);
    hash_bytes(out_b, n_out);
    if (kind == 0) {
        check_status("convolve_1x1", iter, ereid_convolve_1x1_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        check_equal("convolve_1x1_s8 vs generic", iter, out_a, out_b, n_out);
    } else if (kind == 1) {
        check_status("convolve_3x3", iter, ereid_convolve_3x3_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        check_equal("convolve_3x3_s8 vs generic", iter, out_a, out_b, n_out);
    }
    check_status("convolve_wrapper", iter,
                 ereid_convolve_wrapper_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
    check_equal("convolve_wrapper_s8 vs generic", iter, out_a, out_b, n_out);
}

static void test_dw(int iter)
{
    const ereid_context ctx = {NULL, 0};
    ereid_dw_conv_params p;
    ereid_dims id, fd, od;
    const int is3x3 = (int)(rnd() % 2);
    id.n = rnd_range(1, 2); id.h = rnd_range(1, 11); id.w = rnd_range(1, 11); id.c = rnd_range(1, 20);
    p.ch_mult = is3x3 ? 1 : rnd_range(1, 3);
    fd.n = 1; fd.c = id.c * p.ch_mult;
    fd.h = is3x3 ? 3 : rnd_range(1, 5); fd.w = is3x3 ? 3 : rnd_range(1, 5);
    p.stride.h = rnd_range(1, 3); p.stride.w = rnd_range(1, 3);
    p.dilation.h = is3x3 ? 1 : rnd_range(1, 2); p.dilation.w = is3x3 ? 1 : rnd_range(1, 2);
    p.padding.h = rnd_range(0, fd.h - 1); p.padding.w = rnd_range(0, fd.w - 1);
    od.n = id.n; od.c = fd.c;
    od.h = conv_out(id.h, fd.h, p.stride.h, p.dilation.h, p.padding.h);
    od.w = conv_out(id.w, fd.w, p.stride.w, p.dilation.w, p.padding.w);
    if (od.h <= 0 || od.w <= 0) return;
    p.input_offset = random_offset(); p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    random_s8(input, id.n * id.h * id.w * id.c);
    random_s8(filter, fd.h * fd.w * fd.c);
    random_quant(fd.c);
    const ereid_per_channel_quant_params q = {mult, shift};
    const int32_t n_out = od.n * od.h * od.w * od.c;
    ref_dw(&p, &id, &fd, &od, out_a);
    check_status("depthwise", iter, ereid_depthwise_conv_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
    check_equal("depthwise_conv_s8 vs naive", iter, out_a, out_b, n_out);
    hash_bytes(out_b, n_out);
    if (is3x3) {
        check_status("depthwise_3x3", iter,
                     ereid_depthwise_conv_3x3_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        check_equal("depthwise_conv_3x3_s8 vs generic", iter, out_a, out_b, n_out);
    }
    check_status("depthwise_wrapper", iter,
                 ereid_depthwise_conv_wrapper_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
    check_equal("depthwise_conv_wrapper_s8 vs generic", iter, out_a, out_b, n_out);
}

static void test_fc(int iter)
{
    const ereid_context ctx = {NULL, 0};
    ereid_fc_params p;
    const int32_t batches = rnd_range(1, 3), depth = rnd_range(1, 300), units = rnd_range(1, 40);
    const ereid_dims id = {batches, 1, 1, depth}, fd = {units, 1, 1, depth}, od = {batches, 1, 1, units};
    p.input_offset = random_offset();
    p.filter_offset = (rnd() % 2) ? 0 : random_offset();
    p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    random_s8(input, batches * depth);
    random_s8(filter, units * depth);
    random_quant(units);
    for (int pc = 0; pc < 2; pc++) {
        for (int32_t b = 0; b < batches; b++)
            for (int32_t o = 0; o < units; o++) {
                int32_t acc = 0;
                for (int32_t d = 0; d < depth; d++)
                    acc += (input[b * depth + d] + p.input_offset) * (filter[o * depth + d] + p.filter_offset);
                const int32_t m = pc ? mult[o] : mult[0], s = pc ? shift[o] : shift[0];
                acc = ereid_requantize(acc + bias[o], m, s) + p.output_offset; /* TFLM / CMSIS-NN FC */
                out_a[b * units + o] = (int8_t)ereid_clamp_i32(acc, p.activation.min, p.activation.max);
            }
        if (pc) {
            const ereid_per_channel_quant_params q = {mult, shift};
            check_status("fc_pc", iter,
                         ereid_fully_connected_per_channel_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        } else {
            const ereid_per_tensor_quant_params q = {mult[0], shift[0]};
            check_status("fc", iter, ereid_fully_connected_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        }
        check_equal(pc ? "fully_connected_per_channel_s8 vs naive" : "fully_connected_s8 vs naive", iter, out_a,
                    out_b, batches * units);
        hash_bytes(out_b, batches * units);
    }
    /* ereid_fully_connected_rescale_s8 (LiteRT BUILTIN_REF): round((double)acc * scale),
     * half away from zero, checked against libm's round(). Scales: the Q31 value of
     * (mult, shift), exact in a double, so sensitive iterations hit exact .5 ties of both
     * signs; otherwise a random double with all 53 bits set. */
    for (int32_t o = 0; o < units; o++) {
        const double q31 = ldexp((double)mult[o], (int)shift[o] - 31);
        dscale[o] = (sensitive || (rnd() & 1)) ? (sensitive ? ldexp(1.0, -(int)(rnd() % 3) - 1) : q31)
                                               : q31 * (1.0 + ldexp((double)rnd(), -40));
    }
    for (int pc = 0; pc < 2; pc++) {
        for (int32_t b = 0; b < batches; b++)
            for (int32_t o = 0; o < units; o++) {
                int32_t acc = 0;
                for (int32_t d = 0; d < depth; d++)
                    acc += (input[b * depth + d] + p.input_offset) * (filter[o * depth + d] + p.filter_offset);
                const double r = round((double)(acc + bias[o]) * dscale[pc ? o : 0]);
                out_a[b * units + o] = (int8_t)ereid_clamp_i32((int32_t)r + p.output_offset, p.activation.min,
                                                               p.activation.max);
            }
        const ereid_fc_rescale_params q = {dscale, pc ? units : 1};
        check_status("fc_rescale", iter,
                     ereid_fully_connected_rescale_s8(&ctx, &p, &q, &id, input, &fd, filter, bias, &od, out_b));
        check_equal(pc ? "fully_connected_rescale_s8 (per-channel) vs naive" : "fully_connected_rescale_s8 vs naive",
                    iter, out_a, out_b, batches * units);
        hash_bytes(out_b, batches * units);
    }
}

/* Requantizer edge cases that must not trip UBSan: extreme accumulators and shifts. */
static void test_requant_edges(void)
{
    const int32_t xs[] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX};
    const int32_t ms[] = {INT32_MIN, 1 << 30, INT32_MAX};
    const int32_t ss[] = {-31, -1, 0, 1, 7};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; j++)
            for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++) {
                const int32_t r = ereid_requantize(xs[i], ms[j], ss[k]);
                hash_bytes((const int8_t *)&r, 4);
            }
    /* LiteRT FC rescale: ties go away from zero (a single fixed-point rounding would send
     * -2.5 to -2), out-of-range and NaN give INT32_MIN (x86-64 cvttsd2si). */
    {
        const int32_t accs[] = {5, -5, 3, -3, 1, -1, INT32_MAX, INT32_MIN, 0};
        const int32_t want[] = {3, -3, 2, -2, 1, -1, INT32_MIN, INT32_MIN, 0};
        for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++) {
            const double scale = i < 6 ? 0.5 : 4.0;
            if (ereid_rescale_round_f64(accs[i], scale) != want[i]) {
                printf("FAIL ereid_rescale_round_f64(%ld, %g)\n", (long)accs[i], scale);
                failures++;
            }
        }
        if (ereid_rescale_round_f64(INT32_MIN, 1.0) != INT32_MIN || ereid_rescale_round_f64(INT32_MAX, 1.0) != INT32_MAX ||
            ereid_rescale_round_f64(-1, 0.49999999999999994) != 0 ||
            ereid_rescale_round_f64(1, 0.49999999999999994) != 0 || ereid_rescale_round_f64(1, NAN) != INT32_MIN) {
            printf("FAIL ereid_rescale_round_f64 identities\n");
            failures++;
        }
    }
    if (ereid_srdhm(INT32_MIN, INT32_MIN) != INT32_MAX || ereid_rdbpot(-3, 1) != -2 || ereid_rdbpot(3, 1) != 2 ||
        ereid_rdbpot(-5, 2) != -1) {
        printf("FAIL requantizer identities\n");
        failures++;
    }
}

int main(int argc, char **argv)
{
    const int iterations = argc > 1 ? atoi(argv[1]) : 300;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 12345u;
    if (rng_state == 0) rng_state = 1;
    test_requant_edges();
    for (int i = 0; i < iterations; i++) {
        sensitive = i % 2;
        test_conv(i);
        test_dw(i);
        test_fc(i);
    }
    printf("iterations %d failures %d hash %016llx\n", iterations, failures, (unsigned long long)hash);
    return failures == 0 ? 0 : 1;
}

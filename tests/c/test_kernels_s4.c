/*
 * Randomised test of the int4-weight (_s4) kernels (host build, run under ASan+UBSan by
 * tests/test_firmware_int4.py, portable and EREID_EMULATE_DSP builds).
 *
 * For random shapes (odd channel counts and depths included, so filter rows start in the
 * middle of a byte), quantization and int4 weights it checks that
 *   - ereid_convolve_s4 (and the 1x1, 3x3 and wrapper), ereid_depthwise_conv_s4 (and the
 *     3x3 and wrapper) equal a naive scalar reference on the unpacked weights written here;
 *   - ereid_fully_connected_s4 equals ereid_fully_connected_rescale_int_s8 given the same
 *     weights unpacked to int8 (one depth beyond the DSP path's 32768-element chunk);
 * that each argument check accepts a valid call and rejects null pointers, an input offset
 * outside [-255, 255], a non-zero FC weight offset, a specialised kernel outside its
 * constraints (its wrapper then falls back); and prints an FNV-1a hash of every output so
 * the portable and the emulated-DSP builds can be compared byte for byte.
 * Usage: test_kernels_s4 [iterations] [seed]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_requant.h"
#include "test_support.h"

#define MAX_ELEMS (2 * 12 * 12 * 40)
#define MAX_FILTER (24 * 5 * 5 * 20)
#define MAX_CH 64
#define BIG_DEPTH 33001 /* > EREID_S4_CHUNK and odd */

static void expect(const char *what, ereid_status got, ereid_status want)
{
    if (got != want) {
        printf("FAIL %s: status %d, expected %d\n", what, (int)got, (int)want);
        failures++;
    }
}

static int8_t input[MAX_ELEMS];
static int8_t weights[BIG_DEPTH * 3];          /* unpacked int4 values */
static int8_t packed[(BIG_DEPTH * 3 + 1) / 2]; /* the same, two per byte */
static int8_t out_a[MAX_ELEMS * 3], out_b[MAX_ELEMS * 3];
static int32_t mult[MAX_CH], shift[MAX_CH], bias[MAX_CH];

static void random_s8(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        p[i] = (int8_t)rnd_range(-128, 127);
    }
}
/* n random int4 values (the extremes -8 and 7 often), packed element 2i low nibble. */
static void random_s4(int32_t n)
{
    memset(packed, 0, sizeof(packed));
    for (int32_t i = 0; i < n; i++) {
        const int32_t r = rnd_range(0, 9);
        weights[i] = (int8_t)(r == 0 ? -8 : r == 1 ? 7 : rnd_range(-8, 7));
        const uint8_t nib = (uint8_t)(weights[i] & 0xF);
        packed[i >> 1] = (int8_t)(uint8_t)((uint8_t)packed[i >> 1] | ((i & 1) ? (uint8_t)(nib << 4) : nib));
    }
}
static void random_quant(int32_t channels)
{
    const int identity = rnd() % 2; /* identity rescale: an accumulator off by one shows */
    for (int32_t c = 0; c < channels; c++) {
        mult[c] = identity ? (int32_t)(1u << 30) : (int32_t)(0x40000000u + rnd() % 0x3FFFFFFFu);
        shift[c] = identity ? 1 : rnd_range(-12, 0);
        bias[c] = rnd_range(-5000, 5000);
    }
}
static ereid_activation random_activation(int32_t zp)
{
    ereid_activation a = {-128, 127};
    if (rnd() % 3 == 0) {
        a.min = zp < -128 ? -128 : zp;
        a.max = rnd_range(a.min, 127);
    }
    return a;
}
static int32_t conv_out(int32_t in, int32_t k, int32_t stride, int32_t dil, int32_t pad)
{
    const int32_t eff = (k - 1) * dil + 1;
    const int32_t span = in + 2 * pad - eff;
    return span < 0 ? 0 : span / stride + 1;
}
static int8_t finish(int32_t acc, int32_t c, int32_t out_off, const ereid_activation *act)
{
    const int32_t v = ereid_requantize(acc + bias[c], mult[c], shift[c]) + out_off;
    return (int8_t)ereid_clamp_i32(v, act->min, act->max);
}

static void ref_conv(const ereid_conv_params *p, const ereid_dims *id, const ereid_dims *fd, const ereid_dims *od,
                     int8_t *out)
{
    for (int32_t b = 0; b < od->n; b++)
        for (int32_t y = 0; y < od->h; y++)
            for (int32_t x = 0; x < od->w; x++)
                for (int32_t oc = 0; oc < od->c; oc++) {
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < fd->h; ky++)
                        for (int32_t kx = 0; kx < fd->w; kx++) {
                            const int32_t iy = y * p->stride.h - p->padding.h + ky * p->dilation.h;
                            const int32_t ix = x * p->stride.w - p->padding.w + kx * p->dilation.w;
                            if (iy < 0 || iy >= id->h || ix < 0 || ix >= id->w) continue;
                            for (int32_t ic = 0; ic < id->c; ic++) {
                                acc += (input[((b * id->h + iy) * id->w + ix) * id->c + ic] + p->input_offset) *
                                       weights[((oc * fd->h + ky) * fd->w + kx) * fd->c + ic];
                            }
                        }
                    out[((b * od->h + y) * od->w + x) * od->c + oc] = finish(acc, oc, p->output_offset,
                                                                            &p->activation);
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
                            const int32_t iy = y * p->stride.h - p->padding.h + ky * p->dilation.h;
                            const int32_t ix = x * p->stride.w - p->padding.w + kx * p->dilation.w;
                            if (iy < 0 || iy >= id->h || ix < 0 || ix >= id->w) continue;
                            acc += (input[((b * id->h + iy) * id->w + ix) * id->c + ic] + p->input_offset) *
                                   weights[(ky * fd->w + kx) * fd->c + oc];
                        }
                    out[((b * od->h + y) * od->w + x) * od->c + oc] = finish(acc, oc, p->output_offset,
                                                                            &p->activation);
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
    p.input_offset = rnd_range(-127, 128); p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    random_s8(input, id.n * id.h * id.w * id.c);
    random_s4(fd.n * fd.h * fd.w * fd.c);
    random_quant(fd.n);
    const ereid_per_channel_quant_params q = {mult, shift};
    const int32_t n_out = od.n * od.h * od.w * od.c;
    ref_conv(&p, &id, &fd, &od, out_a);
    expect("convolve_s4", ereid_convolve_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b), EREID_OK);
    check_equal("convolve_s4 vs naive", iter, out_a, out_b, n_out);
    hash_bytes(out_b, n_out);
    if (kind == 0) {
        memset(out_b, 0x5a, (size_t)n_out);
        expect("convolve_1x1_s4", ereid_convolve_1x1_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b),
               EREID_OK);
        check_equal("convolve_1x1_s4 vs naive", iter, out_a, out_b, n_out);
    } else if (kind == 1) {
        memset(out_b, 0x5a, (size_t)n_out);
        expect("convolve_3x3_s4", ereid_convolve_3x3_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b),
               EREID_OK);
        check_equal("convolve_3x3_s4 vs naive", iter, out_a, out_b, n_out);
    }
    memset(out_b, 0x5a, (size_t)n_out);
    expect("convolve_wrapper_s4",
           ereid_convolve_wrapper_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b), EREID_OK);
    check_equal("convolve_wrapper_s4 vs naive", iter, out_a, out_b, n_out);
    {
        /* The same calls with the scratch get_buffer_size asks for (the im2col path where the
         * build has it and K is even; 0 bytes for odd K), handed at an odd address. */
        static uint32_t conv_scratch[2048];
        const int32_t k = fd.h * fd.w * fd.c;
        const int32_t need = ereid_convolve_wrapper_s4_get_buffer_size(&p, &id, &fd, &od);
        const int32_t dsp = 5 * ((k + 7) / 8 * 8) + 16 * od.c + 4, mve = 15 + 3 * ((k + 31) / 32 * 32) + 96 * ((od.c + 3) / 4);
        const int32_t want = k % 2 ? 0 : dsp > mve ? dsp : mve; /* DSP or Helium columns, whichever is larger */
        if (need != want || need + 1 > (int32_t)sizeof(conv_scratch)) {
            printf("FAIL convolve_wrapper_s4_get_buffer_size: %d, expected %d\n", need, want);
            failures++;
            return;
        }
        const ereid_context sctx = {(char *)conv_scratch + 1, need};
        memset(out_b, 0x5a, (size_t)n_out);
        expect("convolve_s4 scratch", ereid_convolve_s4(&sctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b),
               EREID_OK);
        check_equal("convolve_s4 with scratch vs naive", iter, out_a, out_b, n_out);
        memset(out_b, 0x5a, (size_t)n_out);
        expect("convolve_wrapper_s4 scratch",
               ereid_convolve_wrapper_s4(&sctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b), EREID_OK);
        check_equal("convolve_wrapper_s4 with scratch vs naive", iter, out_a, out_b, n_out);
        hash_bytes(out_b, n_out);
    }
}

static void test_dw(int iter)
{
    const ereid_context ctx = {NULL, 0};
    ereid_dw_conv_params p;
    ereid_dims id, fd, od;
    const int is3x3 = (int)(rnd() % 2);
    id.n = rnd_range(1, 2); id.h = rnd_range(1, 11); id.w = rnd_range(1, 11); id.c = rnd_range(1, 19);
    p.ch_mult = is3x3 && rnd() % 2 ? 1 : rnd_range(1, 3);
    fd.n = 1; fd.c = id.c * p.ch_mult;
    fd.h = is3x3 ? 3 : rnd_range(1, 5); fd.w = is3x3 ? 3 : rnd_range(1, 5);
    p.stride.h = rnd_range(1, 3); p.stride.w = rnd_range(1, 3);
    p.dilation.h = is3x3 ? 1 : rnd_range(1, 2); p.dilation.w = is3x3 ? 1 : rnd_range(1, 2);
    p.padding.h = rnd_range(0, fd.h - 1); p.padding.w = rnd_range(0, fd.w - 1);
    od.n = id.n; od.c = fd.c;
    od.h = conv_out(id.h, fd.h, p.stride.h, p.dilation.h, p.padding.h);
    od.w = conv_out(id.w, fd.w, p.stride.w, p.dilation.w, p.padding.w);
    if (od.h <= 0 || od.w <= 0 || od.c > MAX_CH) return;
    p.input_offset = rnd_range(-127, 128); p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    random_s8(input, id.n * id.h * id.w * id.c);
    random_s4(fd.h * fd.w * fd.c);
    random_quant(fd.c);
    const ereid_per_channel_quant_params q = {mult, shift};
    const int32_t n_out = od.n * od.h * od.w * od.c;
    ref_dw(&p, &id, &fd, &od, out_a);
    expect("depthwise_conv_s4", ereid_depthwise_conv_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b),
           EREID_OK);
    check_equal("depthwise_conv_s4 vs naive", iter, out_a, out_b, n_out);
    hash_bytes(out_b, n_out);
    if (p.ch_mult == 1 && is3x3) {
        memset(out_b, 0x5a, (size_t)n_out);
        expect("depthwise_conv_3x3_s4",
               ereid_depthwise_conv_3x3_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b), EREID_OK);
        check_equal("depthwise_conv_3x3_s4 vs naive", iter, out_a, out_b, n_out);
    }
    memset(out_b, 0x5a, (size_t)n_out);
    expect("depthwise_conv_wrapper_s4",
           ereid_depthwise_conv_wrapper_s4(&ctx, &p, &q, &id, input, &fd, packed, bias, &od, out_b), EREID_OK);
    check_equal("depthwise_conv_wrapper_s4 vs naive", iter, out_a, out_b, n_out);
}

static int32_t m_hi[MAX_CH], m_lo[MAX_CH], m_shift[MAX_CH];

static void test_fc(int iter, int big)
{
    const ereid_context ctx = {NULL, 0};
    const int32_t batches = big ? 1 : rnd_range(1, 3);
    const int32_t depth = big ? BIG_DEPTH : rnd_range(1, 70);
    const int32_t units = big ? 3 : rnd_range(1, 13);
    const ereid_dims id = {batches, 1, 1, depth}, fd = {units, 1, 1, depth}, od = {batches, 1, 1, units};
    ereid_fc_params p;
    p.input_offset = rnd_range(-127, 128); p.filter_offset = 0; p.output_offset = rnd_range(-128, 127);
    p.activation = random_activation(p.output_offset);
    static int8_t fc_input[BIG_DEPTH * 3];
    random_s8(fc_input, batches * depth);
    random_s4(units * depth);
    const int32_t count = rnd() % 2 ? 1 : units;
    for (int32_t o = 0; o < units; o++) {
        m_hi[o] = rnd_range(1 << 21, (1 << 22) - 1); /* a mantissa in [2^52, 2^53) */
        m_lo[o] = (int32_t)(rnd() & 0x7FFFFFFFu);
        m_shift[o] = rnd_range(58, 70);
        bias[o] = rnd_range(-5000, 5000);
    }
    const ereid_fc_int_rescale_params r = {m_hi, m_lo, m_shift, count};
    expect("fully_connected_rescale_int_s8 (reference)",
           ereid_fully_connected_rescale_int_s8(&ctx, &p, &r, &id, fc_input, &fd, weights, bias, &od, out_a),
           EREID_OK);
    memset(out_b, 0x5a, (size_t)(batches * units));
    expect("fully_connected_s4", ereid_fully_connected_s4(&ctx, &p, &r, &id, fc_input, &fd, packed, bias, &od, out_b),
           EREID_OK);
    check_equal(big ? "fully_connected_s4 (depth > chunk) vs int8" : "fully_connected_s4 vs int8", iter, out_a,
                out_b, batches * units);
    hash_bytes(out_b, batches * units);
}

static void test_arg_checks(void)
{
    const ereid_context ctx = {NULL, 0};
    const ereid_dims d = {1, 4, 4, 4}, f1 = {2, 1, 1, 4}, f3 = {2, 3, 3, 4}, o1 = {1, 4, 4, 2}, o3 = {1, 2, 2, 2}, o3c = {1, 2, 2, 3};
    const ereid_per_channel_quant_params q = {mult, shift};
    ereid_conv_params c = {0};
    c.stride.h = c.stride.w = 1; c.dilation.h = c.dilation.w = 1;
    c.activation.min = -128; c.activation.max = 127;
    random_quant(MAX_CH);
    random_s4(200);
    expect("conv ok", ereid_convolve_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3, out_b), EREID_OK);
    expect("conv null filter", ereid_convolve_s4(&ctx, &c, &q, &d, input, &f3, NULL, bias, &o3, out_b),
           EREID_ARG_ERROR);
    expect("conv null quant", ereid_convolve_s4(&ctx, &c, NULL, &d, input, &f3, packed, bias, &o3, out_b),
           EREID_ARG_ERROR);
    expect("conv wrong out channels", ereid_convolve_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3c, out_b),
           EREID_ARG_ERROR);
    c.input_offset = 256;
    expect("conv offset out of range", ereid_convolve_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3, out_b),
           EREID_ARG_ERROR);
    expect("conv 3x3 offset out of range", ereid_convolve_3x3_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3,
                                                                 out_b), EREID_ARG_ERROR);
    expect("conv 1x1 offset out of range", ereid_convolve_1x1_s4(&ctx, &c, &q, &d, input, &f1, packed, bias, &o1,
                                                                 out_b), EREID_ARG_ERROR);
    c.input_offset = 0;
    expect("conv 1x1 ok", ereid_convolve_1x1_s4(&ctx, &c, &q, &d, input, &f1, packed, bias, &o1, out_b), EREID_OK);
    expect("conv 1x1 given 3x3", ereid_convolve_1x1_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3, out_b),
           EREID_ARG_ERROR);
    expect("conv 3x3 given 1x1", ereid_convolve_3x3_s4(&ctx, &c, &q, &d, input, &f1, packed, bias, &o1, out_b),
           EREID_ARG_ERROR);
    c.dilation.h = 2;
    {
        const ereid_dims o3d = {1, 0, 2, 2};
        expect("conv 3x3 dilated", ereid_convolve_3x3_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3, out_b),
               EREID_ARG_ERROR);
        expect("conv empty output", ereid_convolve_s4(&ctx, &c, &q, &d, input, &f3, packed, bias, &o3d, out_b),
               EREID_ARG_ERROR);
    }
    c.dilation.h = 1;
    expect("conv wrapper null", ereid_convolve_wrapper_s4(&ctx, NULL, &q, &d, input, &f3, packed, bias, &o3, out_b),
           EREID_ARG_ERROR);

    ereid_dw_conv_params w = {0};
    w.stride.h = w.stride.w = 1; w.dilation.h = w.dilation.w = 1; w.ch_mult = 1;
    w.activation.min = -128; w.activation.max = 127;
    const ereid_dims fdw = {1, 3, 3, 4}, odw = {1, 2, 2, 4}, fdw2 = {1, 3, 3, 8}, odw2 = {1, 2, 2, 8};
    expect("dw ok", ereid_depthwise_conv_s4(&ctx, &w, &q, &d, input, &fdw, packed, bias, &odw, out_b), EREID_OK);
    expect("dw 3x3 ok", ereid_depthwise_conv_3x3_s4(&ctx, &w, &q, &d, input, &fdw, packed, bias, &odw, out_b),
           EREID_OK);
    expect("dw null output", ereid_depthwise_conv_s4(&ctx, &w, &q, &d, input, &fdw, packed, bias, &odw, NULL),
           EREID_ARG_ERROR);
    w.input_offset = -256;
    expect("dw offset out of range", ereid_depthwise_conv_3x3_s4(&ctx, &w, &q, &d, input, &fdw, packed, bias, &odw,
                                                                 out_b), EREID_ARG_ERROR);
    w.input_offset = 0;
    w.ch_mult = 2;
    expect("dw 3x3 given ch_mult 2", ereid_depthwise_conv_3x3_s4(&ctx, &w, &q, &d, input, &fdw2, packed, bias,
                                                                 &odw2, out_b), EREID_ARG_ERROR);
    expect("dw wrapper falls back", ereid_depthwise_conv_wrapper_s4(&ctx, &w, &q, &d, input, &fdw2, packed, bias,
                                                                    &odw2, out_b), EREID_OK);
    expect("dw wrapper null", ereid_depthwise_conv_wrapper_s4(&ctx, NULL, &q, &d, input, &fdw2, packed, bias, &odw2,
                                                              out_b), EREID_ARG_ERROR);

    ereid_fc_params fp = {0};
    fp.activation.min = -128; fp.activation.max = 127;
    const ereid_dims fi = {1, 1, 1, 7}, ff = {3, 1, 1, 7}, fo = {1, 1, 1, 3}, fo_bad = {1, 1, 1, 4};
    int32_t hi[3] = {1 << 21, 1 << 21, 1 << 21}, lo[3] = {0, 0, 0}, sh[3] = {60, 60, 60};
    ereid_fc_int_rescale_params r = {hi, lo, sh, 3};
    expect("fc ok", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo, out_b), EREID_OK);
    expect("fc bad output shape", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo_bad,
                                                           out_b), EREID_ARG_ERROR);
    fp.filter_offset = 1;
    expect("fc weight offset", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo, out_b),
           EREID_ARG_ERROR);
    fp.filter_offset = 0;
    fp.input_offset = 300;
    expect("fc offset out of range", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo,
                                                              out_b), EREID_ARG_ERROR);
    fp.input_offset = 0;
    hi[1] = 1 << 22;
    expect("fc mantissa too large", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo,
                                                             out_b), EREID_ARG_ERROR);
    hi[1] = 1 << 21;
    r.count = 2;
    expect("fc scale count", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo, out_b),
           EREID_ARG_ERROR);
    r.mantissa_lo = NULL;
    r.count = 3;
    expect("fc null rescale", ereid_fully_connected_s4(&ctx, &fp, &r, &fi, input, &ff, packed, bias, &fo, out_b),
           EREID_ARG_ERROR);
}

int main(int argc, char **argv)
{
    const int iterations = argc > 1 ? atoi(argv[1]) : 200;
    rng_state = argc > 2 ? (uint64_t)strtoull(argv[2], NULL, 10) * 2654435761ULL + 1 : 88172645463325252ULL;
    for (int i = 0; i < iterations; i++) {
        test_conv(i);
        test_dw(i);
        test_fc(i, 0);
    }
    test_fc(iterations, 1);
    test_arg_checks();
    printf("failures %d hash %016llx\n", failures, (unsigned long long)hash);
    return failures != 0;
}

/* ADD int8 with 4-D broadcasting. Reproduces reference_integer_ops::Add /
 * BroadcastAdd4DSlow: each input is offset, shifted left by left_shift (20),
 * rescaled with its own multiplier (SmallerThanOneExp), summed, rescaled to
 * the output, offset and clamped. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

/* Index step of one operand along a dimension: 0 where it is broadcast. */
static int32_t ereid_bcast_stride(int32_t extent, int32_t out_extent, int32_t stride)
{
    return extent == out_extent ? stride : 0;
}

static int ereid_bcast_compatible(const ereid_dims *a, const ereid_dims *o)
{
    return (a->n == o->n || a->n == 1) && (a->h == o->h || a->h == 1) && (a->w == o->w || a->w == 1) &&
           (a->c == o->c || a->c == 1);
}

ereid_status ereid_add_s8(const ereid_add_params *params,
                          const ereid_dims *input1_dims, const int8_t *input1,
                          const ereid_dims *input2_dims, const int8_t *input2,
                          const ereid_dims *output_dims, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !ereid_dims_valid(input1_dims) ||
        !ereid_dims_valid(input2_dims) || !ereid_dims_valid(output_dims) ||
        !ereid_bcast_compatible(input1_dims, output_dims) || !ereid_bcast_compatible(input2_dims, output_dims) ||
        !ereid_activation_valid(&params->activation) || params->left_shift < 0 || params->left_shift > 30) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *a = input1_dims, *b = input2_dims, *o = output_dims;
    const int32_t a_sc = 1, a_sw = a->c, a_sh = a->w * a->c, a_sn = a->h * a->w * a->c;
    const int32_t b_sc = 1, b_sw = b->c, b_sh = b->w * b->c, b_sn = b->h * b->w * b->c;
    const int32_t sa_n = ereid_bcast_stride(a->n, o->n, a_sn), sa_h = ereid_bcast_stride(a->h, o->h, a_sh);
    const int32_t sa_w = ereid_bcast_stride(a->w, o->w, a_sw), sa_c = ereid_bcast_stride(a->c, o->c, a_sc);
    const int32_t sb_n = ereid_bcast_stride(b->n, o->n, b_sn), sb_h = ereid_bcast_stride(b->h, o->h, b_sh);
    const int32_t sb_w = ereid_bcast_stride(b->w, o->w, b_sw), sb_c = ereid_bcast_stride(b->c, o->c, b_sc);
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

/* ADD int8 of two tensors of the output's shape: ereid_add_s8's arithmetic (reference_integer_ops::
 * Add: offset, << left_shift, each input rescaled, summed, rescaled to the output, offset,
 * clamped) with the rescales' constants hoisted (ereid_requant_fast.h); portable / DSP: each
 * input's rescale tabulated per call on large tensors; Helium: four values per vector. */
#include "ereid_nn.h"
#include "ereid_glue_dispatch.h"
#include "ereid_nn_support.h"
#include "ereid_requant_fast.h"

ereid_status ereid_add_elementwise_s8(const ereid_add_params *params,
                                      const ereid_dims *input1_dims, const int8_t *input1,
                                      const ereid_dims *input2_dims, const int8_t *input2,
                                      const ereid_dims *output_dims, int8_t *output)
{
    ereid_requant_fast r1, r2, ro;
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || input1_dims == NULL ||
        input2_dims == NULL || !ereid_dims_valid(output_dims) ||
        !EREID_ADD_ELEMENTWISE_APPLIES(params, input1_dims, input2_dims, output_dims) ||
        !ereid_activation_valid(&params->activation) || !ereid_requant_fast_init(&r1, &params->input1_quant) ||
        !ereid_requant_fast_init(&r2, &params->input2_quant) || !ereid_requant_fast_init(&ro, &params->output_quant)) {
        return EREID_ARG_ERROR;
    }
    const int32_t size = ereid_dims_size(output_dims);
    const int32_t off1 = params->input1_offset, off2 = params->input2_offset, off_o = params->output_offset;
    const int32_t ls = params->left_shift, lo = params->activation.min, hi = params->activation.max;
    int32_t i = 0;
#if EREID_USE_MVE
    for (; i + 4 <= size; i += 4) {
        const int32x4_t a = vshlq_r_s32(vaddq_n_s32(vldrbq_s32(input1 + i), off1), ls);
        const int32x4_t b = vshlq_r_s32(vaddq_n_s32(vldrbq_s32(input2 + i), off2), ls);
        int32x4_t s = vaddq_s32(ereid_requant_fast_mve(&r1, a), ereid_requant_fast_mve(&r2, b));
        s = vaddq_n_s32(ereid_requant_fast_mve(&ro, s), off_o);
        vstrbq_s32(output + i, vminq_s32(vmaxq_s32(s, vdupq_n_s32(lo)), vdupq_n_s32(hi)));
    }
#else
    /* Each input's rescaled value depends on its int8 value alone: tabulated (256 int32 per
     * input, on the stack) where the tensor has more values than the two tables. */
    if (size > 512) {
        int32_t scaled1[256], scaled2[256];
        for (int32_t x = EREID_INT8_MIN; x <= EREID_INT8_MAX; x++) {
            scaled1[x + 128] = ereid_requant_fast_apply(&r1, (int32_t)((uint32_t)(x + off1) << ls));
            scaled2[x + 128] = ereid_requant_fast_apply(&r2, (int32_t)((uint32_t)(x + off2) << ls));
        }
        for (; i < size; i++) {
            const int32_t s = scaled1[input1[i] + 128] + scaled2[input2[i] + 128];
            output[i] = (int8_t)ereid_clamp_i32(ereid_requant_fast_apply(&ro, s) + off_o, lo, hi);
        }
    }
#endif
    for (; i < size; i++) {
        /* (x + offset) << left_shift wraps as the reference's int32 product does */
        const int32_t a = (int32_t)((uint32_t)((int32_t)input1[i] + off1) << ls);
        const int32_t b = (int32_t)((uint32_t)((int32_t)input2[i] + off2) << ls);
        const int32_t s = ereid_requant_fast_apply(&r1, a) + ereid_requant_fast_apply(&r2, b);
        output[i] = (int8_t)ereid_clamp_i32(ereid_requant_fast_apply(&ro, s) + off_o, lo, hi);
    }
    return EREID_OK;
}

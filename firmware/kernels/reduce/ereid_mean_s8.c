/* MEAN int8 over any set of NHWC axes. Reproduces LiteRT's
 * reference_ops::QuantizedMeanOrSum (compute_sum = false): integer sum of the raw
 * values, minus zp_in * count, one requantization with 1/count folded into the
 * multiplier (see ereid_mean_params), plus zp_out, clamped to int8. */
#include "ereid_nn.h"
#include "ereid_nn_support.h"

ereid_status ereid_mean_s8(const ereid_mean_params *params,
                           const ereid_dims *input_dims, const int8_t *input,
                           const ereid_dims *output_dims, int8_t *output)
{
    if (EREID_IO_ARGS_INVALID(params, input_dims, input, output_dims, output) || (params->axis_mask & ~0xF) != 0 ||
        params->mode != EREID_MEAN_REQUANT) {
        return EREID_ARG_ERROR;
    }
    const int32_t in_ext[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t out_ext[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
    int32_t red_ext[4]; /* how many input elements fold into each output index, per dimension */
    int32_t count = 1;
    for (int d = 0; d < 4; d++) {
        const int reduced = (params->axis_mask >> d) & 1;
        if (out_ext[d] != (reduced ? 1 : in_ext[d])) {
            return EREID_ARG_ERROR;
        }
        red_ext[d] = reduced ? in_ext[d] : 1;
        count *= red_ext[d];
    }
    const int32_t in_stride[4] = {in_ext[1] * in_ext[2] * in_ext[3], in_ext[2] * in_ext[3], in_ext[3], 1};
    const int32_t zp_times_count = params->input_zero_point * count;

    for (int32_t on = 0; on < out_ext[0]; on++) {
        for (int32_t oh = 0; oh < out_ext[1]; oh++) {
            for (int32_t ow = 0; ow < out_ext[2]; ow++) {
                for (int32_t oc = 0; oc < out_ext[3]; oc++) {
                    /* Kept dimensions index through the output position, reduced ones through red_ext. */
                    const int32_t base = on * in_stride[0] + oh * in_stride[1] + ow * in_stride[2] + oc;
                    int32_t sum = 0;
                    for (int32_t rn = 0; rn < red_ext[0]; rn++) {
                        for (int32_t rh = 0; rh < red_ext[1]; rh++) {
                            for (int32_t rw = 0; rw < red_ext[2]; rw++) {
                                const int32_t row =
                                    base + rn * in_stride[0] + rh * in_stride[1] + rw * in_stride[2];
                                for (int32_t rc = 0; rc < red_ext[3]; rc++) {
                                    sum += input[row + rc];
                                }
                            }
                        }
                    }
                    const int32_t acc = ereid_requantize(sum - zp_times_count, params->quant.multiplier,
                                                         params->quant.shift);
                    output[((on * out_ext[1] + oh) * out_ext[2] + ow) * out_ext[3] + oc] =
                        ereid_sat_s8(acc + params->output_zero_point);
                }
            }
        }
    }
    return EREID_OK;
}

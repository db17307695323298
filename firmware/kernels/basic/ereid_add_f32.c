/* ADD float32 with 4-D broadcasting, as reference_ops::Add / BroadcastAdd*DSlow compute
 * it: one IEEE single-precision add per element (nothing to fuse into an FMA), then the fused
 * activation's clamp min(max(v, lo), hi). */
#include "ereid_nn.h"
#include "ereid_bcast.h"

ereid_status ereid_add_f32(const ereid_float_clamp_params *params,
                           const ereid_dims *input1_dims, const float *input1,
                           const ereid_dims *input2_dims, const float *input2,
                           const ereid_dims *output_dims, float *output)
{
    if (EREID_BCAST_ARGS_INVALID(params, input1_dims, input1, input2_dims, input2, output_dims, output) ||
        !(params->min <= params->max) || (params->has_max != 0 && params->has_max != 1)) {
        return EREID_ARG_ERROR;
    }
    const ereid_dims *a = input1_dims, *b = input2_dims, *o = output_dims;
    EREID_BCAST_STRIDES(a, o, sa_n, sa_h, sa_w, sa_c);
    EREID_BCAST_STRIDES(b, o, sb_n, sb_h, sb_w, sb_c);
    const float lo = params->min, hi = params->max;
    const int32_t has_max = params->has_max;
    float *out = output;
    for (int32_t n = 0; n < o->n; n++) {
        for (int32_t y = 0; y < o->h; y++) {
            for (int32_t x = 0; x < o->w; x++) {
                const float *pa = input1 + n * sa_n + y * sa_h + x * sa_w;
                const float *pb = input2 + n * sb_n + y * sb_h + x * sb_w;
                for (int32_t c = 0; c < o->c; c++) {
                    const float v = pa[c * sa_c] + pb[c * sb_c];
                    *out++ = v < lo ? lo : ((has_max && v > hi) ? hi : v);
                }
            }
        }
    }
    return EREID_OK;
}

/* LceQuantize float -> bitpacked. Reproduces Larq Compute Engine's bitpacking: bit c of a
 * row is (x[c] < 0), so +0, -0 and NaN give bit 0 (+1); the unused bits of a row's last
 * word are 0. The test is on the float's bits (no FPU needed): x < 0 exactly when the
 * sign is set and the magnitude is neither zero nor NaN. Words are written after every
 * value they hold was read, so input == output (in place) is allowed. */
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_binary.h"

/* 1 when the float with bits u is < 0: u in [0x80000001, 0xFF800000]. */
#define EREID_F32_NEGATIVE(u) ((uint32_t)((u) - 0x80000001u) < 0x7F800000u)

ereid_status ereid_bitpack_f32_b1(int32_t rows, int32_t channels, const float *input, int32_t *output)
{
    if (input == NULL || output == NULL || rows < 0 || channels <= 0) {
        return EREID_ARG_ERROR;
    }
    const int32_t words = ereid_bin_words(channels);
    for (int32_t r = 0; r < rows; r++) {
        const float *in = input + (size_t)r * (size_t)channels;
        int32_t *out = output + (size_t)r * (size_t)words;
        for (int32_t w = 0; w < words; w++) {
            const int32_t n = channels - 32 * w < 32 ? channels - 32 * w : 32;
            const float *x = in + 32 * w;
            uint32_t word = 0;
            int32_t c = 0;
            for (; c + 4 <= n; c += 4) {
                uint32_t u[4];
                memcpy(u, x + c, sizeof u);
                word |= ((uint32_t)EREID_F32_NEGATIVE(u[0]) << c) | ((uint32_t)EREID_F32_NEGATIVE(u[1]) << (c + 1)) |
                        ((uint32_t)EREID_F32_NEGATIVE(u[2]) << (c + 2)) | ((uint32_t)EREID_F32_NEGATIVE(u[3]) << (c + 3));
            }
            for (; c < n; c++) {
                uint32_t u;
                memcpy(&u, x + c, sizeof u);
                word |= (uint32_t)EREID_F32_NEGATIVE(u) << c;
            }
            out[w] = (int32_t)word;
        }
    }
    return EREID_OK;
}

/* LceDequantize bitpacked -> float. Reproduces Larq Compute Engine's unpacking: bit 0 ->
 * +1.0f, bit 1 -> -1.0f, for the first `channels` bits of each row. */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_unpack_b1_f32(int32_t rows, int32_t channels, const int32_t *input, float *output)
{
    if (input == NULL || output == NULL || rows < 0 || channels <= 0) {
        return EREID_ARG_ERROR;
    }
    const int32_t words = ereid_bin_words(channels);
    for (int32_t r = 0; r < rows; r++) {
        const int32_t *in = input + (size_t)r * (size_t)words;
        float *out = output + (size_t)r * (size_t)channels;
        for (int32_t w = 0; w < words; w++) {
            uint32_t word = (uint32_t)in[w];
            const int32_t n = channels - 32 * w < 32 ? channels - 32 * w : 32;
            float *o = out + 32 * w;
            for (int32_t c = 0; c < n; c++, word >>= 1) {
                o[c] = (word & 1u) ? -1.0f : 1.0f;
            }
        }
    }
    return EREID_OK;
}

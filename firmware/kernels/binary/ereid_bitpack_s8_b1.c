/* LceQuantize int8 -> bitpacked. Reproduces Larq Compute Engine's bitpacking of an int8
 * tensor: bit c of a row is (q[c] < zero_point); the unused bits of a row's last word
 * are 0. Not in place (a row of words may be longer than its bytes). */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_bitpack_s8_b1(int32_t rows, int32_t channels, int32_t zero_point, const int8_t *input,
                                 int32_t *output)
{
    if (input == NULL || output == NULL || rows < 0 || channels <= 0 || zero_point < -128 || zero_point > 127) {
        return EREID_ARG_ERROR;
    }
    const int32_t words = ereid_bin_words(channels);
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *in = input + (size_t)r * (size_t)channels;
        int32_t *out = output + (size_t)r * (size_t)words;
        for (int32_t w = 0; w < words; w++) {
            const int32_t n = channels - 32 * w < 32 ? channels - 32 * w : 32;
            const int8_t *q = in + 32 * w;
            uint32_t word = 0;
            /* channel 32w + n - 1 first; q - zero_point in [-255, 255]: its sign is the bit */
            for (int32_t c = n - 1; c >= 0; c--) {
                word = (word << 1) - (uint32_t)((int32_t)(q[c] - zero_point) >> 31);
            }
            out[w] = (int32_t)word;
        }
    }
    return EREID_OK;
}

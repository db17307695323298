/* LceDequantize bitpacked -> int8. Reproduces Larq Compute Engine's unpacking to int8:
 * bit 0 -> plus_value = min(127, zp + off), bit 1 -> minus_value = max(-128, zp - off),
 * off = round_half_away(1.0f / scale) (the caller derives both). */
#include "ereid_nn.h"
#include "ereid_nn_binary.h"

ereid_status ereid_unpack_b1_s8(int32_t rows, int32_t channels, int32_t plus_value, int32_t minus_value,
                                const int32_t *input, int8_t *output)
{
    if (input == NULL || output == NULL || rows < 0 || channels <= 0 || plus_value < -128 || plus_value > 127 ||
        minus_value < -128 || minus_value > 127) {
        return EREID_ARG_ERROR;
    }
    const int32_t words = ereid_bin_words(channels);
    const int8_t plus = (int8_t)plus_value, minus = (int8_t)minus_value;
    for (int32_t r = 0; r < rows; r++) {
        const int32_t *in = input + (size_t)r * (size_t)words;
        int8_t *out = output + (size_t)r * (size_t)channels;
        for (int32_t w = 0; w < words; w++) {
            uint32_t word = (uint32_t)in[w];
            const int32_t n = channels - 32 * w < 32 ? channels - 32 * w : 32;
            int8_t *o = out + 32 * w;
            for (int32_t c = 0; c < n; c++, word >>= 1) {
                o[c] = (word & 1u) ? minus : plus;
            }
        }
    }
    return EREID_OK;
}

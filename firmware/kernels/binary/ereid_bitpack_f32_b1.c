/* LceQuantize float -> bitpacked. Reproduces Larq Compute Engine's bitpacking: bit c of a
 * row is (x[c] < 0) as its interpreter evaluates it, with denormals-are-zero: +0, -0, NaN
 * and negative denormals give bit 0 (+1); the unused bits of a row's last word are 0. The
 * test is on the float's bits (no FPU needed): the sign is set and the magnitude is a
 * normal number or infinity. Words are written after every value they hold was read, so
 * input == output (in place) is allowed. */
#include <string.h>

#include "ereid_nn.h"
#include "ereid_nn_binary.h"

/* The float with bits u is < 0 and not denormal: u in [0x80800000, 0xFF800000], i.e.
 * u - 0x80800000 < 0x7F000001 (unsigned). The comparison's borrow, as the high word of a
 * 64-bit difference, is all ones for bit 1: word = 2 * word - borrow adds the bit. */
static inline uint32_t ereid_f32_sign_bit_step(uint32_t word, uint32_t u)
{
    const uint32_t borrow = (uint32_t)(((uint64_t)(u - 0x80800000u) - 0x7F000001u) >> 32);
    return (word << 1) - borrow;
}

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
            /* channel 32w + n - 1 first: each step shifts the earlier bits up one */
            for (int32_t c = n - 1; c >= 0; c--) {
                uint32_t u;
                memcpy(&u, x + c, sizeof u);
                word = ereid_f32_sign_bit_step(word, u);
            }
            out[w] = (int32_t)word;
        }
    }
    return EREID_OK;
}

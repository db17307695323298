/*
 * What the randomised kernel tests share: a seeded xorshift RNG, an FNV-1a hash of every
 * output (so a portable and an EREID_EMULATE_DSP build can be compared byte for byte)
 * and the failure count with its first-difference report. Test programs only.
 */
#ifndef EREID_TEST_SUPPORT_H
#define EREID_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static uint64_t hash = 1469598103934665603ULL;
static void hash_bytes(const int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        hash ^= (uint8_t)p[i];
        hash *= 1099511628211ULL;
    }
}

static int failures;
/* `b` (the kernel under test) against `a` (the reference); the first 20 failures are printed. */
static void check_equal(const char *what, int iter, const int8_t *a, const int8_t *b, int32_t n)
{
    if (memcmp(a, b, (size_t)n) != 0) {
        int32_t i = 0;
        while (a[i] == b[i]) {
            i++;
        }
        if (failures < 20) {
            printf("FAIL %s iteration %d: first difference at %d (%d vs %d)\n", what, iter, (int)i, a[i], b[i]);
        }
        failures++;
    }
}

#endif

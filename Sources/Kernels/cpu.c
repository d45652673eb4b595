// Run-time choice between the AVX2/FMA kernels and the portable ones.
#include "simd_math.h"
#include <stdlib.h>
#include <string.h>

bool sk_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *off = getenv("SANKSHEP_NO_SIMD");
        bool disabled = off != NULL && strcmp(off, "0") != 0 && off[0] != '\0';
        __builtin_cpu_init();
        cached = !disabled && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached == 1;
}

bool sk_cpu_has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        const char *off = getenv("SANKSHEP_NO_AVX512");
        bool disabled = off != NULL && strcmp(off, "0") != 0 && off[0] != '\0';
        __builtin_cpu_init();
        cached = sk_cpu_has_avx2_fma() && !disabled && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return cached == 1;
}

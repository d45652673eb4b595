// Run-time choice of instruction set, made once per process: every kernel family (element-wise,
// GEMM, quantized) asks here, so the CPU checks and the environment switches live in one place.
//   SANKSHEP_NO_SIMD=1     portable C everywhere (to compare or to debug)
//   SANKSHEP_NO_AVX512=1   nothing above AVX2
#include "simd_math.h"
#include <stdlib.h>
#include <string.h>

static bool environment_flag(const char *name) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

bool sk_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = !environment_flag("SANKSHEP_NO_SIMD") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached == 1;
}

bool sk_cpu_has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = sk_cpu_has_avx2_fma() && !environment_flag("SANKSHEP_NO_AVX512") &&
                 __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return cached == 1;
}

bool sk_cpu_has_avx512_vnni(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        // avx512vnni implies the OS saves zmm state: the compiler's check reads XCR0 as well.
        cached = sk_cpu_has_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
    }
    return cached == 1;
}

bool sk_cpu_has_f16c(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = sk_cpu_has_avx2_fma() && __builtin_cpu_supports("f16c");
    }
    return cached == 1;
}

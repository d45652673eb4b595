// Run-time choice between the AVX2 + FMA + F16C kernels and the portable ones, made once.
#include "quant_common.h"
#include "quant_kernels.h"
#include <stdlib.h>

static int detected = -1;   // -1 unknown, 0 portable, 1 AVX2. Benign race: every thread computes the same.

bool sk_quant_has_avx2(void) {
    if (detected < 0) {
        int use = 0;
#if SK_X86
        __builtin_cpu_init();
        use = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
        const char *forced = getenv("SANKSHEP_NO_SIMD");
        if (forced && forced[0] == '1') use = 0;
        detected = use;
    }
    return detected == 1;
}

bool sk_quant_uses_avx2(void) { return sk_quant_has_avx2(); }

void sk_quant_set_simd(bool enabled) {
    detected = -1;
    if (!enabled) detected = 0;
    else (void)sk_quant_has_avx2();
}

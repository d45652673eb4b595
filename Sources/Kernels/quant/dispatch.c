// Run-time choice of the quantized kernels' instruction set, made once (see quant_kernels.h).
#include "quant_common.h"
#include "quant_kernels.h"
#include "kernels.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

// -1 unknown, else the sk_kernel_level in use. Benign race: every thread computes the same value.
static int selected = -1;

static bool environment_flag(const char *name) {
    const char *value = getenv(name);
    return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

int sk_quant_max_kernel_level(void) {
    int level = SK_KERNELS_PORTABLE;
#if SK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        level = SK_KERNELS_AVX2;
        // avx512vnni implies the OS saves zmm state: the compiler's check reads XCR0 as well.
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vnni"))
            level = SK_KERNELS_AVX512_VNNI;
    }
#endif
    return level;
}

int sk_quant_kernel_level(void) {
    if (selected < 0) {
        int level = sk_quant_max_kernel_level();
        if (environment_flag("SANKSHEP_NO_AVX512") && level > SK_KERNELS_AVX2) level = SK_KERNELS_AVX2;
        if (environment_flag("SANKSHEP_NO_SIMD")) level = SK_KERNELS_PORTABLE;
        selected = level;
    }
    return selected;
}

void sk_quant_set_kernel_level(int level) {
    selected = -1;
    if (level < 0) return;                       // back to detection and the environment
    int best = sk_quant_max_kernel_level();
    selected = level < best ? level : best;
}

const char *sk_quant_kernel_name(int level) {
    switch (level) {
    case SK_KERNELS_PORTABLE: return "portable";
    case SK_KERNELS_AVX2: return "avx2";
    case SK_KERNELS_AVX512_VNNI: return "avx512-vnni";
    default: return "unknown";
    }
}

bool sk_quant_has_avx2(void) { return sk_quant_kernel_level() >= SK_KERNELS_AVX2; }

bool sk_quant_uses_avx2(void) { return sk_quant_has_avx2(); }

void sk_quant_set_simd(bool enabled) { sk_quant_set_kernel_level(enabled ? -1 : SK_KERNELS_PORTABLE); }

void sk_quant_set_threads(int threads) {
    int blas_threads = openblas_get_num_threads();
    sk_set_threads(threads);
    openblas_set_num_threads(blas_threads);
}

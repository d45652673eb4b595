// The quantized kernels' instruction set: the best cpu.c allows, unless a test or benchmark chose one.
#include "quant_common.h"
#include "quant_kernels.h"
#include "kernels.h"
#include "../simd_math.h"
#include <cblas.h>

// -1: not chosen by sk_quant_set_kernel_level, so the best level. Benign race: every thread computes the same value.
static int selected = -1;

int sk_quant_max_kernel_level(void) {
    if (sk_cpu_has_avx512_vnni()) return SK_KERNELS_AVX512_VNNI;
    if (sk_cpu_has_f16c()) return SK_KERNELS_AVX2;
    return SK_KERNELS_PORTABLE;
}

int sk_quant_kernel_level(void) { return selected >= 0 ? selected : sk_quant_max_kernel_level(); }

void sk_quant_set_kernel_level(int level) {
    int best = sk_quant_max_kernel_level();
    selected = level < 0 ? -1 : (level < best ? level : best);
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

void sk_quant_set_threads(int threads) {
    int blas_threads = openblas_get_num_threads();
    sk_set_threads(threads);
    openblas_set_num_threads(blas_threads);
}

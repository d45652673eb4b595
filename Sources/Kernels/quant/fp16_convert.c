// Bulk float <-> half conversion: F16C eight at a time where available, the exact scalar routines
// (quant_common.h) for the tail and on other CPUs. Both round to nearest even.
#include "quant_common.h"
#include "quant_kernels.h"

#if SK_X86
SK_TARGET_AVX2 static void float_to_half_f16c(const float *x, uint16_t *h, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i packed = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(h + i), packed);
    }
    for (; i < n; i++) h[i] = sk_float_to_half_scalar(x[i]);
}

SK_TARGET_AVX2 static void half_to_float_f16c(const uint16_t *h, float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) x[i] = sk_half_to_float_scalar(h[i]);
}
#endif

void sk_float_to_half(const float *x, uint16_t *h, size_t n) {
#if SK_X86
    if (sk_quant_has_avx2()) { float_to_half_f16c(x, h, n); return; }
#endif
    for (size_t i = 0; i < n; i++) h[i] = sk_float_to_half_scalar(x[i]);
}

void sk_half_to_float(const uint16_t *h, float *x, size_t n) {
#if SK_X86
    if (sk_quant_has_avx2()) { half_to_float_f16c(h, x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = sk_half_to_float_scalar(h[i]);
}

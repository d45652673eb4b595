// Private helpers for the hand-written SIMD kernels: run-time CPU detection and an 8-wide exp.
// Not part of the public header; only the kernel .c files include it.
#ifndef SANKSHEP_SIMD_MATH_H
#define SANKSHEP_SIMD_MATH_H

#include <stdbool.h>
#include <immintrin.h>

// True when the CPU has AVX2 and FMA. Checked once; the answer cannot change while we run.
// SANKSHEP_NO_SIMD=1 in the environment forces the portable kernels (to compare or to debug).
bool sk_cpu_has_avx2_fma(void);

#define SK_AVX2 __attribute__((target("avx2,fma")))

// exp(x) for 8 floats. Range reduction x = n ln2 + r with |r| <= ln2/2, then a degree-7 Taylor
// polynomial for e^r (truncation error below 1e-8 relative) and 2^n built in the exponent bits.
// Inputs are clamped to [-87.3, 88.3] so the result stays finite and normal: callers that mask
// lanes afterwards (softmax) may multiply by zero without producing NaN.
SK_AVX2 static inline __m256 sk_exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln2 split in two so n * ln2_hi is exact in float (Cody and Waite).
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

// The AVX-512 kernels (gelu.c, gemm_avx512.c, ...) run when this holds: AVX-512 F/DQ on the CPU and
// OS, and neither SANKSHEP_NO_SIMD nor SANKSHEP_NO_AVX512 set (cpu.c).
bool sk_cpu_has_avx512(void);
// AVX-512 BW + VNNI as well (the quantized kernels' top level), and F16C with AVX2 (their middle one).
bool sk_cpu_has_avx512_vnni(void);
bool sk_cpu_has_f16c(void);

#define SK_AVX512F __attribute__((target("avx2,fma,avx512f,avx512dq")))

// exp(x) for 16 floats: sk_exp256's algorithm, lane for lane the same operations.
SK_AVX512F static inline __m512 sk_exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i exponent = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(exponent));
}

// Sum of the 8 lanes.
SK_AVX2 static inline float sk_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Maximum of the 8 lanes.
SK_AVX2 static inline float sk_hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif // SANKSHEP_SIMD_MATH_H

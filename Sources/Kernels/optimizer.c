// AdamW update and sum of squares: an AVX2 path picked at run time, and the plain loops it must agree with.
#include "optimizer_kernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SK_HAVE_X86 1
#endif

// ---------------------------------------------------------------- AdamW

void sk_adamw_update_reference(size_t n, float *params, const float *gradients, float *first_moment,
                               float *second_moment, const sk_adamw_scalars *s) {
    for (size_t i = 0; i < n; i++) {
        float g = gradients[i];
        float p = params[i] * s->decay_factor;
        float m = first_moment[i] + s->one_minus_beta1 * (g - first_moment[i]);
        float v = second_moment[i] * s->beta2 + (s->one_minus_beta2 * g) * g;
        first_moment[i] = m;
        second_moment[i] = v;
        float denominator = sqrtf(v) / s->bias_correction2_sqrt + s->epsilon;
        params[i] = p + (s->negative_step_size * m) / denominator;
    }
}

#ifdef SK_HAVE_X86
// Separate multiplies and adds (no FMA), so every lane rounds exactly as the reference loop does.
__attribute__((target("avx2")))
static void sk_adamw_update_avx2(size_t n, float *params, const float *gradients, float *first_moment,
                                 float *second_moment, const sk_adamw_scalars *s) {
    const __m256 decay = _mm256_set1_ps(s->decay_factor);
    const __m256 one_minus_beta1 = _mm256_set1_ps(s->one_minus_beta1);
    const __m256 beta2 = _mm256_set1_ps(s->beta2);
    const __m256 one_minus_beta2 = _mm256_set1_ps(s->one_minus_beta2);
    const __m256 correction = _mm256_set1_ps(s->bias_correction2_sqrt);
    const __m256 epsilon = _mm256_set1_ps(s->epsilon);
    const __m256 step = _mm256_set1_ps(s->negative_step_size);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gradients + i);
        __m256 p = _mm256_mul_ps(_mm256_loadu_ps(params + i), decay);
        __m256 m = _mm256_loadu_ps(first_moment + i);
        m = _mm256_add_ps(m, _mm256_mul_ps(one_minus_beta1, _mm256_sub_ps(g, m)));
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(second_moment + i), beta2);
        v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g));
        _mm256_storeu_ps(first_moment + i, m);
        _mm256_storeu_ps(second_moment + i, v);
        __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), correction), epsilon);
        _mm256_storeu_ps(params + i, _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(step, m), denominator)));
    }
    // Scalar tail: the reference loop on what is left.
    sk_adamw_update_reference(n - i, params + i, gradients + i, first_moment + i, second_moment + i, s);
}
#endif

void sk_adamw_update(size_t n, float *params, const float *gradients, float *first_moment,
                     float *second_moment, const sk_adamw_scalars *scalars) {
#ifdef SK_HAVE_X86
    if (__builtin_cpu_supports("avx2")) {
        sk_adamw_update_avx2(n, params, gradients, first_moment, second_moment, scalars);
        return;
    }
#endif
    sk_adamw_update_reference(n, params, gradients, first_moment, second_moment, scalars);
}

// ---------------------------------------------------------------- sum of squares

double sk_sum_of_squares_reference(const float *x, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; i++) total += (double)x[i] * (double)x[i];
    return total;
}

#ifdef SK_HAVE_X86
__attribute__((target("avx2,fma")))
static double sk_sum_of_squares_avx2(const float *x, size_t n) {
    double total = 0;
    size_t i = 0;
    // Blocks of 1024: 32 products per lane, small enough that float lanes lose nothing that matters.
    while (i + 32 <= n) {
        size_t block_end = i + 1024 <= n ? i + 1024 : n;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (; i + 32 <= block_end; i += 32) {
            __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
            __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
            a0 = _mm256_fmadd_ps(x0, x0, a0);
            a1 = _mm256_fmadd_ps(x1, x1, a1);
            a2 = _mm256_fmadd_ps(x2, x2, a2);
            a3 = _mm256_fmadd_ps(x3, x3, a3);
        }
        __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        // Widen the eight lanes to double before adding them up.
        __m256d low = _mm256_cvtps_pd(_mm256_castps256_ps128(sum));
        __m256d high = _mm256_cvtps_pd(_mm256_extractf128_ps(sum, 1));
        __m256d both = _mm256_add_pd(low, high);
        __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(both), _mm256_extractf128_pd(both, 1));
        total += _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
    }
    return total + sk_sum_of_squares_reference(x + i, n - i);
}
#endif

double sk_sum_of_squares(const float *x, size_t n) {
#ifdef SK_HAVE_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return sk_sum_of_squares_avx2(x, n);
#endif
    return sk_sum_of_squares_reference(x, n);
}

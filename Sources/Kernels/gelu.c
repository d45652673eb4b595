// Exact GELU, x * Phi(x) with Phi the standard normal CDF written through erf (Hugging Face
// "gelu", torch.nn.functional.gelu without approximation), forward fused with the bias add of the
// linear layer before it, and its derivative Phi(x) + x * phi(x).
#include "kernels.h"
#include "parallel.h"
#include "simd_math.h"
#include <math.h>

#define SK_SQRT1_2 0.70710678118654752f
#define SK_INV_SQRT_2PI 0.39894228040143268f

// ---------------------------------------------------------------- reference (libm erff)

void sk_bias_gelu_forward_reference(float *out, float *pre, const float *bias, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *p = pre + (long)r * cols;
        float *y = out + (long)r * cols;
        for (int c = 0; c < cols; c++) {
            if (bias) p[c] += bias[c];
            y[c] = 0.5f * p[c] * (1.0f + erff(p[c] * SK_SQRT1_2));
        }
    }
}

void sk_gelu_backward_reference(float *dpre, const float *pre, const float *dout, long n) {
    for (long i = 0; i < n; i++) {
        float x = pre[i];
        float cdf = 0.5f * (1.0f + erff(x * SK_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * SK_INV_SQRT_2PI;
        dpre[i] = dout[i] * (cdf + x * pdf);
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

// Phi(x) for 8 lanes. erfc(z), z >= 0, as t * exp(-z^2 + P(t)) with t = 1 / (1 + z/2): the
// Chebyshev fit in Numerical Recipes (section 6.2), fractional error below 1.2e-7 for every z,
// so the tail (large negative x) keeps its relative accuracy too.
SK_AVX2 static inline __m256 normal_cdf256(__m256 x) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign_bit, x), _mm256_set1_ps(SK_SQRT1_2));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 exponent = _mm256_fnmadd_ps(z, z, p);
    // half_tail = Phi(-|x|) = erfc(z) / 2
    __m256 half_tail = _mm256_mul_ps(_mm256_mul_ps(t, sk_exp256(exponent)), _mm256_set1_ps(0.5f));
    // x < 0: Phi(x) = half_tail; x >= 0: 1 - half_tail. blendv picks by the sign bit of x.
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), half_tail), half_tail, x);
}

SK_AVX2 static void bias_gelu_forward_avx2(float *out, float *pre, const float *bias, int rows, int cols) {
    int vec_end = cols & ~7;
    for (int r = 0; r < rows; r++) {
        float *p = pre + (long)r * cols;
        float *y = out + (long)r * cols;
        int c = 0;
        for (; c < vec_end; c += 8) {
            __m256 x = _mm256_loadu_ps(p + c);
            if (bias) { x = _mm256_add_ps(x, _mm256_loadu_ps(bias + c)); _mm256_storeu_ps(p + c, x); }
            _mm256_storeu_ps(y + c, _mm256_mul_ps(x, normal_cdf256(x)));
        }
        for (; c < cols; c++) {
            if (bias) p[c] += bias[c];
            y[c] = 0.5f * p[c] * (1.0f + erff(p[c] * SK_SQRT1_2));
        }
    }
}

SK_AVX2 static void gelu_backward_avx2(float *dpre, const float *pre, const float *dout, long n) {
    long vec_end = n & ~7L, i = 0;
    for (; i < vec_end; i += 8) {
        __m256 x = _mm256_loadu_ps(pre + i);
        __m256 pdf = _mm256_mul_ps(sk_exp256(_mm256_mul_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(-0.5f))),
                                   _mm256_set1_ps(SK_INV_SQRT_2PI));
        __m256 slope = _mm256_fmadd_ps(x, pdf, normal_cdf256(x));
        _mm256_storeu_ps(dpre + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), slope));
    }
    if (i < n) sk_gelu_backward_reference(dpre + i, pre + i, dout + i, n - i);
}

// ---------------------------------------------------------------- AVX-512 (the same arithmetic, 16 lanes)

SK_AVX512F static inline __m512 normal_cdf512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(SK_SQRT1_2));
    // t = 1 / d without the slow divide: vrcp14ps (relative error < 2^-14), then one Newton step
    // t' = t·(2 - d·t), which squares the error to below 2^-28, past float's own precision.
    __m512 d = _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(d);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(d, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 exponent = _mm512_fnmadd_ps(z, z, p);
    __m512 half_tail = _mm512_mul_ps(_mm512_mul_ps(t, sk_exp512(exponent)), _mm512_set1_ps(0.5f));
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0f), half_tail), half_tail);
}

SK_AVX512F static void bias_gelu_forward_avx512(float *out, float *pre, const float *bias, int rows, int cols) {
    int vec_end = cols & ~15;
    for (int r = 0; r < rows; r++) {
        float *p = pre + (long)r * cols;
        float *y = out + (long)r * cols;
        int c = 0;
        for (; c < vec_end; c += 16) {
            __m512 x = _mm512_loadu_ps(p + c);
            if (bias) { x = _mm512_add_ps(x, _mm512_loadu_ps(bias + c)); _mm512_storeu_ps(p + c, x); }
            _mm512_storeu_ps(y + c, _mm512_mul_ps(x, normal_cdf512(x)));
        }
        for (; c < cols; c++) {
            if (bias) p[c] += bias[c];
            y[c] = 0.5f * p[c] * (1.0f + erff(p[c] * SK_SQRT1_2));
        }
    }
}

SK_AVX512F static void gelu_backward_avx512(float *dpre, const float *pre, const float *dout, long n) {
    long vec_end = n & ~15L, i = 0;
    for (; i < vec_end; i += 16) {
        __m512 x = _mm512_loadu_ps(pre + i);
        __m512 pdf = _mm512_mul_ps(sk_exp512(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f))),
                                   _mm512_set1_ps(SK_INV_SQRT_2PI));
        __m512 slope = _mm512_fmadd_ps(x, pdf, normal_cdf512(x));
        _mm512_storeu_ps(dpre + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), slope));
    }
    if (i < n) sk_gelu_backward_reference(dpre + i, pre + i, dout + i, n - i);
}

// ---------------------------------------------------------------- dispatch

// Below this many elements the work (about 20 µs) stays on the calling thread.
enum { SK_GELU_PARALLEL_ELEMENTS = 1 << 15 };

typedef struct { float *out, *pre; const float *bias; const float *dout; int cols; long n; } gelu_job;

static void bias_gelu_rows(float *out, float *pre, const float *bias, int rows, int cols) {
    if (sk_cpu_has_avx512()) bias_gelu_forward_avx512(out, pre, bias, rows, cols);
    else if (sk_cpu_has_avx2_fma()) bias_gelu_forward_avx2(out, pre, bias, rows, cols);
    else sk_bias_gelu_forward_reference(out, pre, bias, rows, cols);
}

static void bias_gelu_part(void *context, int begin, int end) {
    const gelu_job *job = context;
    long offset = (long)begin * job->cols;
    bias_gelu_rows(job->out + offset, job->pre + offset, job->bias, end - begin, job->cols);
}

void sk_bias_gelu_forward(float *out, float *pre, const float *bias, int rows, int cols) {
    if ((long)rows * cols < SK_GELU_PARALLEL_ELEMENTS || rows < 2) { bias_gelu_rows(out, pre, bias, rows, cols); return; }
    gelu_job job = { .out = out, .pre = pre, .bias = bias, .cols = cols };
    sk_parallel_for(rows, bias_gelu_part, &job);
}

static void gelu_backward_range(float *dpre, const float *pre, const float *dout, long n) {
    if (sk_cpu_has_avx512()) gelu_backward_avx512(dpre, pre, dout, n);
    else if (sk_cpu_has_avx2_fma()) gelu_backward_avx2(dpre, pre, dout, n);
    else sk_gelu_backward_reference(dpre, pre, dout, n);
}

// Parts are blocks of 1024 elements (the last one shorter).
static void gelu_backward_part(void *context, int begin, int end) {
    const gelu_job *job = context;
    long first = (long)begin * 1024, last = (long)end * 1024;
    if (last > job->n) last = job->n;
    gelu_backward_range(job->out + first, job->pre + first, job->dout + first, last - first);
}

void sk_gelu_backward(float *dpre, const float *pre, const float *dout, long n) {
    if (n < SK_GELU_PARALLEL_ELEMENTS) { gelu_backward_range(dpre, pre, dout, n); return; }
    gelu_job job = { .out = dpre, .pre = (float *)pre, .dout = dout, .n = n };
    sk_parallel_for((int)((n + 1023) / 1024), gelu_backward_part, &job);
}

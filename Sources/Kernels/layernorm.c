// LayerNorm over the last dimension, forward and backward (as torch.nn.LayerNorm: biased variance,
// eps inside the square root). The forward keeps mean and 1/std per row for the backward.
#include "kernels.h"
#include "parallel.h"
#include "simd_math.h"
#include <math.h>

// ---------------------------------------------------------------- reference

void sk_layernorm_forward_reference(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, int rows, int cols, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * cols;
        float *y = out + (long)r * cols;
        float m = 0.0f;
        for (int c = 0; c < cols; c++) m += x[c];
        m /= cols;
        float v = 0.0f;
        for (int c = 0; c < cols; c++) { float d = x[c] - m; v += d * d; }
        v /= cols;
        float s = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < cols; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[r] = m;
        rstd[r] = s;
    }
}

void sk_layernorm_backward_reference(float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, const float *mean,
                                     const float *rstd, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * cols;
        const float *dy = dout + (long)r * cols;
        float *dx = dinp + (long)r * cols;
        float m = mean[r], s = rstd[r];
        // Two row means the input gradient needs: of dnorm and of dnorm * norm.
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int c = 0; c < cols; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = dy[c] * weight[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= cols;
        dnorm_norm_mean /= cols;
        for (int c = 0; c < cols; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = dy[c] * weight[c];
            if (dweight) dweight[c] += norm * dy[c];
            if (dbias) dbias[c] += dy[c];
            dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

SK_AVX2 static void layernorm_forward_avx2(float *out, float *mean, float *rstd, const float *inp,
                                          const float *weight, const float *bias, int rows, int cols, float eps) {
    int vec_end = cols & ~7;
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * cols;
        float *y = out + (long)r * cols;
        __m256 acc = _mm256_setzero_ps();
        int c = 0;
        for (; c < vec_end; c += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + c));
        float m = sk_hsum256(acc);
        for (; c < cols; c++) m += x[c];
        m /= cols;
        __m256 vm = _mm256_set1_ps(m);
        acc = _mm256_setzero_ps();
        for (c = 0; c < vec_end; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        float v = sk_hsum256(acc);
        for (; c < cols; c++) { float d = x[c] - m; v += d * d; }
        v /= cols;
        float s = 1.0f / sqrtf(v + eps);
        __m256 vs = _mm256_set1_ps(s);
        for (c = 0; c < vec_end; c += 8) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            _mm256_storeu_ps(y + c, _mm256_fmadd_ps(norm, _mm256_loadu_ps(weight + c), _mm256_loadu_ps(bias + c)));
        }
        for (; c < cols; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[r] = m;
        rstd[r] = s;
    }
}

// The same three passes on 16 lanes (AVX-512 CPUs): mean, variance around it, normalise and scale.
SK_AVX512F static void layernorm_forward_avx512(float *out, float *mean, float *rstd, const float *inp,
                                               const float *weight, const float *bias, int rows, int cols, float eps) {
    int vec_end = cols & ~15;
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * cols;
        float *y = out + (long)r * cols;
        __m512 acc = _mm512_setzero_ps();
        int c = 0;
        for (; c < vec_end; c += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(x + c));
        float m = _mm512_reduce_add_ps(acc);
        for (; c < cols; c++) m += x[c];
        m /= cols;
        __m512 vm = _mm512_set1_ps(m);
        acc = _mm512_setzero_ps();
        for (c = 0; c < vec_end; c += 16) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c), vm);
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        float v = _mm512_reduce_add_ps(acc);
        for (; c < cols; c++) { float d = x[c] - m; v += d * d; }
        v /= cols;
        float s = 1.0f / sqrtf(v + eps);
        __m512 vs = _mm512_set1_ps(s);
        for (c = 0; c < vec_end; c += 16) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), vs);
            _mm512_storeu_ps(y + c, _mm512_fmadd_ps(norm, _mm512_loadu_ps(weight + c), _mm512_loadu_ps(bias + c)));
        }
        for (; c < cols; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[r] = m;
        rstd[r] = s;
    }
}

SK_AVX2 static void layernorm_backward_avx2(float *dinp, float *dweight, float *dbias, const float *dout,
                                           const float *inp, const float *weight, const float *mean,
                                           const float *rstd, int rows, int cols) {
    int vec_end = cols & ~7;
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * cols;
        const float *dy = dout + (long)r * cols;
        float *dx = dinp + (long)r * cols;
        float m = mean[r], s = rstd[r];
        __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s);
        __m256 acc_dnorm = _mm256_setzero_ps(), acc_dnorm_norm = _mm256_setzero_ps();
        int c = 0;
        for (; c < vec_end; c += 8) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            __m256 dnorm = _mm256_mul_ps(_mm256_loadu_ps(dy + c), _mm256_loadu_ps(weight + c));
            acc_dnorm = _mm256_add_ps(acc_dnorm, dnorm);
            acc_dnorm_norm = _mm256_fmadd_ps(dnorm, norm, acc_dnorm_norm);
        }
        float dnorm_mean = sk_hsum256(acc_dnorm), dnorm_norm_mean = sk_hsum256(acc_dnorm_norm);
        for (; c < cols; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = dy[c] * weight[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= cols;
        dnorm_norm_mean /= cols;
        __m256 vdm = _mm256_set1_ps(dnorm_mean), vdnm = _mm256_set1_ps(dnorm_norm_mean);
        for (c = 0; c < vec_end; c += 8) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            __m256 dyv = _mm256_loadu_ps(dy + c);
            __m256 dnorm = _mm256_mul_ps(dyv, _mm256_loadu_ps(weight + c));
            if (dweight) _mm256_storeu_ps(dweight + c, _mm256_fmadd_ps(norm, dyv, _mm256_loadu_ps(dweight + c)));
            if (dbias) _mm256_storeu_ps(dbias + c, _mm256_add_ps(_mm256_loadu_ps(dbias + c), dyv));
            __m256 g = _mm256_fnmadd_ps(norm, vdnm, _mm256_sub_ps(dnorm, vdm));
            _mm256_storeu_ps(dx + c, _mm256_fmadd_ps(g, vs, _mm256_loadu_ps(dx + c)));
        }
        for (; c < cols; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = dy[c] * weight[c];
            if (dweight) dweight[c] += norm * dy[c];
            if (dbias) dbias[c] += dy[c];
            dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}

// ---------------------------------------------------------------- dispatch

static void layernorm_forward_rows(float *out, float *mean, float *rstd, const float *inp,
                                   const float *weight, const float *bias, int rows, int cols, float eps) {
    if (sk_cpu_has_avx512()) layernorm_forward_avx512(out, mean, rstd, inp, weight, bias, rows, cols, eps);
    else if (sk_cpu_has_avx2_fma()) layernorm_forward_avx2(out, mean, rstd, inp, weight, bias, rows, cols, eps);
    else sk_layernorm_forward_reference(out, mean, rstd, inp, weight, bias, rows, cols, eps);
}

typedef struct {
    float *out, *mean, *rstd;
    const float *inp, *weight, *bias;
    int cols;
    float eps;
} layernorm_job;

static void layernorm_forward_part(void *context, int begin, int end) {
    const layernorm_job *job = context;
    long offset = (long)begin * job->cols;
    layernorm_forward_rows(job->out + offset, job->mean + begin, job->rstd + begin, job->inp + offset, job->weight,
                           job->bias, end - begin, job->cols, job->eps);
}

// Rows are independent: from this many values on (a few µs of work) they are split over the threads.
enum { SK_LAYERNORM_PARALLEL_VALUES = 1 << 14 };

void sk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int rows, int cols, float eps) {
    if ((long)rows * cols < SK_LAYERNORM_PARALLEL_VALUES || rows < 2) {
        layernorm_forward_rows(out, mean, rstd, inp, weight, bias, rows, cols, eps);
        return;
    }
    layernorm_job job = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight, .bias = bias,
                         .cols = cols, .eps = eps};
    sk_parallel_for(rows, layernorm_forward_part, &job);
}

void sk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int rows, int cols) {
    if (sk_cpu_has_avx2_fma()) layernorm_backward_avx2(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, cols);
    else sk_layernorm_backward_reference(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, cols);
}

// LayerNorm over the last dimension, forward and backward (as torch.nn.LayerNorm: biased variance,
// eps inside the square root). The forward keeps mean and 1/std per row for the backward.
#include "kernels.h"
#include "simd_math.h"
#include "parallel.h"
#include <math.h>
#include <stdlib.h>

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

// Rows are split across the kernel threads when a call has enough work to pay for waking them.
#define LN_PARALLEL_MIN_ELEMENTS 16384

typedef struct {
    float *out, *mean, *rstd, *dinp, *dweight, *dbias;
    float *partials;        // backward: (parts - 1) x (dweight, dbias) for parts 1..
    const float *inp, *weight, *bias, *dout, *saved_mean, *saved_rstd;
    int rows, cols, parts;
    float eps;
} ln_job;

static void ln_forward_rows(void *context, int begin, int end) {
    const ln_job *j = context;
    long offset = (long)begin * j->cols;
    if (sk_cpu_has_avx2_fma())
        layernorm_forward_avx2(j->out + offset, j->mean + begin, j->rstd + begin, j->inp + offset, j->weight, j->bias, end - begin, j->cols, j->eps);
    else
        sk_layernorm_forward_reference(j->out + offset, j->mean + begin, j->rstd + begin, j->inp + offset, j->weight, j->bias, end - begin, j->cols, j->eps);
}

static void ln_backward_rows(const ln_job *j, int begin, int end, float *dweight, float *dbias) {
    long offset = (long)begin * j->cols;
    if (sk_cpu_has_avx2_fma())
        layernorm_backward_avx2(j->dinp + offset, dweight, dbias, j->dout + offset, j->inp + offset, j->weight,
                                j->saved_mean + begin, j->saved_rstd + begin, end - begin, j->cols);
    else
        sk_layernorm_backward_reference(j->dinp + offset, dweight, dbias, j->dout + offset, j->inp + offset, j->weight,
                                        j->saved_mean + begin, j->saved_rstd + begin, end - begin, j->cols);
}

// Part p of the backward: its share of rows, with weight and bias gradients summed into its own
// partial buffers (parts > 0) so threads never add into the same floats.
static void ln_backward_part(void *context, int begin, int end) {
    const ln_job *j = context;
    for (int part = begin; part < end; part++) {
        int first = (int)((long)j->rows * part / j->parts), last = (int)((long)j->rows * (part + 1) / j->parts);
        float *dweight = j->dweight, *dbias = j->dbias;
        if (part > 0) {
            dweight = j->dweight ? j->partials + (long)(part - 1) * 2 * j->cols : NULL;
            dbias = j->dbias ? j->partials + (long)(part - 1) * 2 * j->cols + j->cols : NULL;
        }
        ln_backward_rows(j, first, last, dweight, dbias);
    }
}

void sk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int rows, int cols, float eps) {
    ln_job job = { .out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight, .bias = bias,
                   .rows = rows, .cols = cols, .eps = eps };
    if ((long)rows * cols >= LN_PARALLEL_MIN_ELEMENTS) sk_parallel_for(rows, ln_forward_rows, &job);
    else ln_forward_rows(&job, 0, rows);
}

void sk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int rows, int cols) {
    ln_job job = { .dinp = dinp, .dweight = dweight, .dbias = dbias, .dout = dout, .inp = inp, .weight = weight,
                   .saved_mean = mean, .saved_rstd = rstd, .rows = rows, .cols = cols, .parts = 1 };
    int threads = sk_get_threads();
    if (threads < 2 || (long)rows * cols < LN_PARALLEL_MIN_ELEMENTS || rows < threads) {
        ln_backward_rows(&job, 0, rows, dweight, dbias);
        return;
    }
    // Partial weight and bias gradients of parts 1.. (part 0 adds straight into the caller's).
    float *partials = calloc((size_t)(threads - 1) * 2 * cols, sizeof(float));
    if (!partials) { ln_backward_rows(&job, 0, rows, dweight, dbias); return; }
    job.partials = partials;
    job.parts = threads;
    sk_parallel_for(threads, ln_backward_part, &job);
    for (int part = 1; part < threads; part++) {
        const float *p = partials + (long)(part - 1) * 2 * cols;
        for (int c = 0; c < cols; c++) {
            if (dweight) dweight[c] += p[c];
            if (dbias) dbias[c] += p[cols + c];
        }
    }
    free(partials);
}

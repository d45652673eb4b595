// Attention softmax over keys with the padding mask, forward and backward.
// Padding keys get probability exactly 0 (Hugging Face adds the most negative float to their scores,
// whose exponential is 0). A query row whose keys are all padding gets a uniform row, as Hugging
// Face's additive mask gives when every score is the same huge negative number.
#include "kernels.h"
#include "simd_math.h"
#include <math.h>

// ---------------------------------------------------------------- reference

void sk_masked_softmax_rows_reference(float *probs, const float *scores, const float *key_mask, long rows, int T) {
    for (long row = 0; row < rows; row++) {
        const float *s = scores + row * T;
        float *p = probs + row * T;
        float max = -INFINITY;
        for (int k = 0; k < T; k++) if (key_mask[k] != 0.0f && s[k] > max) max = s[k];
        if (max == -INFINITY) { for (int k = 0; k < T; k++) p[k] = 1.0f / T; continue; }
        float sum = 0.0f;
        for (int k = 0; k < T; k++) { p[k] = key_mask[k] != 0.0f ? expf(s[k] - max) : 0.0f; sum += p[k]; }
        float inv = 1.0f / sum;
        for (int k = 0; k < T; k++) p[k] *= inv;
    }
}

void sk_attention_softmax_forward_reference(float *probs, const float *scores, const float *key_mask,
                                            int batch, int heads, int T) {
    for (int b = 0; b < batch; b++) {
        long offset = (long)b * heads * T * T;
        sk_masked_softmax_rows_reference(probs + offset, scores + offset, key_mask + (long)b * T, (long)heads * T, T);
    }
}

void sk_softmax_backward_reference(float *dscores, const float *probs, const float *dprobs, int rows, int cols) {
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * cols, *dp = dprobs + r * cols;
        float *ds = dscores + r * cols;
        float dot = 0.0f;
        for (int k = 0; k < cols; k++) dot += p[k] * dp[k];
        for (int k = 0; k < cols; k++) ds[k] = p[k] * (dp[k] - dot);
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

SK_AVX2 static void masked_softmax_rows_avx2(float *probs, const float *scores, const float *mask, long rows, int T) {
    int vec_end = T & ~7;
    const __m256 zero = _mm256_setzero_ps();
    for (long row = 0; row < rows; row++) {
        const float *s = scores + row * T;
        float *p = probs + row * T;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        int k = 0;
        for (; k < vec_end; k += 8) {
            __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(mask + k), zero, _CMP_NEQ_OQ);
            vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_loadu_ps(s + k), keep));
        }
        float max = sk_hmax256(vmax);
        for (; k < T; k++) if (mask[k] != 0.0f && s[k] > max) max = s[k];
        if (max == -INFINITY) { for (k = 0; k < T; k++) p[k] = 1.0f / T; continue; }
        __m256 vm = _mm256_set1_ps(max), vsum = zero;
        for (k = 0; k < vec_end; k += 8) {
            __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(mask + k), zero, _CMP_NEQ_OQ);
            __m256 e = _mm256_and_ps(sk_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + k), vm)), keep);
            _mm256_storeu_ps(p + k, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        float sum = sk_hsum256(vsum);
        for (; k < T; k++) { p[k] = mask[k] != 0.0f ? expf(s[k] - max) : 0.0f; sum += p[k]; }
        __m256 vinv = _mm256_set1_ps(1.0f / sum);
        for (k = 0; k < vec_end; k += 8) _mm256_storeu_ps(p + k, _mm256_mul_ps(_mm256_loadu_ps(p + k), vinv));
        float inv = 1.0f / sum;
        for (; k < T; k++) p[k] *= inv;
    }
}

SK_AVX2 static void softmax_backward_avx2(float *dscores, const float *probs, const float *dprobs, int rows, int cols) {
    int vec_end = cols & ~7;
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * cols, *dp = dprobs + r * cols;
        float *ds = dscores + r * cols;
        __m256 acc = _mm256_setzero_ps();
        int k = 0;
        for (; k < vec_end; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(p + k), _mm256_loadu_ps(dp + k), acc);
        float dot = sk_hsum256(acc);
        for (; k < cols; k++) dot += p[k] * dp[k];
        __m256 vdot = _mm256_set1_ps(dot);
        for (k = 0; k < vec_end; k += 8)
            _mm256_storeu_ps(ds + k, _mm256_mul_ps(_mm256_loadu_ps(p + k), _mm256_sub_ps(_mm256_loadu_ps(dp + k), vdot)));
        for (; k < cols; k++) ds[k] = p[k] * (dp[k] - dot);
    }
}

// ---------------------------------------------------------------- dispatch

void sk_masked_softmax_rows(float *probs, const float *scores, const float *key_mask, long rows, int T) {
    if (sk_cpu_has_avx2_fma()) masked_softmax_rows_avx2(probs, scores, key_mask, rows, T);
    else sk_masked_softmax_rows_reference(probs, scores, key_mask, rows, T);
}

void sk_attention_softmax_forward(float *probs, const float *scores, const float *key_mask,
                                  int batch, int heads, int T) {
    // Every query row of batch b shares b's key mask: heads * T rows per batch.
    for (int b = 0; b < batch; b++) {
        long offset = (long)b * heads * T * T;
        sk_masked_softmax_rows(probs + offset, scores + offset, key_mask + (long)b * T, (long)heads * T, T);
    }
}

void sk_softmax_backward(float *dscores, const float *probs, const float *dprobs, int rows, int cols) {
    if (sk_cpu_has_avx2_fma()) softmax_backward_avx2(dscores, probs, dprobs, rows, cols);
    else sk_softmax_backward_reference(dscores, probs, dprobs, rows, cols);
}

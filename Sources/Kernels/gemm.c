// GEMM through OpenBLAS, with the plain loop it must agree with.
#include "kernels.h"
#include <cblas.h>

static int sk_threads = 1;

void sk_set_threads(int threads) {
    if (threads < 1) threads = 1;
    sk_threads = threads;
    openblas_set_num_threads(threads);
}

int sk_get_threads(void) { return sk_threads; }

void sk_sgemm(bool transpose_a, bool transpose_b, int M, int N, int K,
              float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sk_sgemm_strided_batched(bool transpose_a, bool transpose_b, int M, int N, int K,
                              float alpha, const float *A, int lda, long stride_a,
                              const float *B, int ldb, long stride_b,
                              float beta, float *C, int ldc, long stride_c, int batch) {
    for (int b = 0; b < batch; b++) {
        sk_sgemm(transpose_a, transpose_b, M, N, K, alpha, A + b * stride_a, lda,
                 B + b * stride_b, ldb, beta, C + b * stride_c, ldc);
    }
}

void sk_sgemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double sum = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transpose_a ? A[k * lda + m] : A[m * lda + k];
                float b = transpose_b ? B[n * ldb + k] : B[k * ldb + n];
                sum += (double)a * (double)b;
            }
            float previous = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
            C[m * ldc + n] = alpha * (float)sum + previous;
        }
    }
}

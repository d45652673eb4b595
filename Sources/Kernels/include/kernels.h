// Sankshep compute kernels.
//
// Every buffer is row-major float32 unless its name says otherwise. Shapes are given in comments as
// (rows, cols). The caller owns every pointer; no kernel allocates or keeps a pointer after return.
//
// Each fast kernel has a plain reference kernel beside it (suffix `_reference`) that states the
// mathematics in the simplest loop; tests compare the two.
#ifndef SANKSHEP_KERNELS_H
#define SANKSHEP_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------- threads

/// Number of threads OpenBLAS (and the host's own parallel loops) may use.
void sk_set_threads(int threads);
int sk_get_threads(void);

// ---------------------------------------------------------------- GEMM (OpenBLAS)

/// C = alpha * op(A) @ op(B) + beta * C, where op(X) is X or X^T.
/// op(A): (M, K), op(B): (K, N), C: (M, N) with leading dimension ldc.
/// lda/ldb are the leading dimensions of A and B as stored (before op).
void sk_sgemm(bool transpose_a, bool transpose_b, int M, int N, int K,
              float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/// Batched strided GEMM: for b in 0..<batch, C_b = alpha * op(A_b) @ op(B_b) + beta * C_b,
/// with A_b = A + b * stride_a (etc.). Used by attention for (batch * heads) small products.
void sk_sgemm_strided_batched(bool transpose_a, bool transpose_b, int M, int N, int K,
                              float alpha, const float *A, int lda, long stride_a,
                              const float *B, int ldb, long stride_b,
                              float beta, float *C, int ldc, long stride_c, int batch);

/// The plain triple loop that sk_sgemm must agree with.
void sk_sgemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_KERNELS_H

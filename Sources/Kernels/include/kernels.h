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

/// C = alpha * A @ B^T + beta * C on AVX-512 (gemm_avx512.c), one thread. Returns false, touching
/// nothing, when the CPU has no AVX-512 (or SANKSHEP_NO_AVX512=1) or memory for the packed strip
/// runs out; sk_sgemm then uses OpenBLAS. sk_sgemm calls it for every product of this shape.
bool sk_sgemm_nt_avx512(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);
bool sk_sgemm_nt_avx512_available(void);

/// The same product on AVX2 + FMA (gemm_avx2.c), one thread, nothing packed: dot products of rows of A
/// and rows of B. Returns false, touching nothing, when the CPU lacks AVX2/FMA (or SANKSHEP_NO_SIMD=1).
/// sk_sgemm calls it on CPUs without AVX-512 for products of this shape with few rows.
bool sk_sgemm_nt_avx2(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc);
bool sk_sgemm_nt_avx2_available(void);

/// The plain triple loop that sk_sgemm must agree with.
void sk_sgemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);

// ---------------------------------------------------------------- LayerNorm (layernorm.c)

/// out = (inp - mean) / sqrt(var + eps) * weight + bias over each row, biased variance.
/// inp, out: (rows, cols); weight, bias: (cols); mean, rstd (out): (rows), kept for the backward.
void sk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int rows, int cols, float eps);
void sk_layernorm_forward_reference(float *out, float *mean, float *rstd, const float *inp,
                                    const float *weight, const float *bias, int rows, int cols, float eps);

/// Accumulates (+=) into dinp (rows, cols), dweight (cols) and dbias (cols) from dout (rows, cols),
/// the forward's input and its saved mean and rstd. dweight or dbias may be NULL (not wanted).
void sk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int rows, int cols);
void sk_layernorm_backward_reference(float *dinp, float *dweight, float *dbias, const float *dout,
                                     const float *inp, const float *weight, const float *mean,
                                     const float *rstd, int rows, int cols);

// ---------------------------------------------------------------- GELU, exact erf form (gelu.c)

/// pre (rows, cols) += bias (cols) when bias is not NULL (in place: the backward needs it), then
/// out (rows, cols) = pre * Phi(pre).
void sk_bias_gelu_forward(float *out, float *pre, const float *bias, int rows, int cols);
void sk_bias_gelu_forward_reference(float *out, float *pre, const float *bias, int rows, int cols);

/// dpre (n) = dout * GELU'(pre), written (not accumulated); dpre may be dout.
void sk_gelu_backward(float *dpre, const float *pre, const float *dout, long n);
void sk_gelu_backward_reference(float *dpre, const float *pre, const float *dout, long n);

// ---------------------------------------------------------------- attention softmax (softmax.c)

/// Softmax over the last axis of scores (batch, heads, T, T), keys whose key_mask (batch, T) entry
/// is 0 get probability 0. probs may be scores (in place).
void sk_attention_softmax_forward(float *probs, const float *scores, const float *key_mask,
                                  int batch, int heads, int T);
void sk_attention_softmax_forward_reference(float *probs, const float *scores, const float *key_mask,
                                            int batch, int heads, int T);

/// Softmax of each row of scores (rows, T) over keys, one key_mask (T) for every row (keys with 0 get
/// probability 0): the query rows of one sequence, e.g. only its [CLS] row per head. probs may be scores.
void sk_masked_softmax_rows(float *probs, const float *scores, const float *key_mask, long rows, int T);
void sk_masked_softmax_rows_reference(float *probs, const float *scores, const float *key_mask, long rows, int T);

/// One attention head without dropout (attention.c): probs (T, T) = masked softmax(scale * Q K^T) under
/// key_mask (T), context (T, dh) = probs @ V, with Q, K, V (T, dh) views of row stride ld and context of
/// row stride ldc. Returns false, touching nothing, where it has no fast path (no AVX2 + FMA, T > 512,
/// dh > 256, out of memory): the caller then uses GEMMs. Each thread keeps a (dh, T) copy of K for it.
bool sk_attention_head_forward(float *probs, float *context, int ldc, const float *q, const float *k,
                               const float *v, int ld, const float *key_mask, int T, int dh, float scale);
void sk_attention_head_forward_reference(float *probs, float *context, int ldc, const float *q, const float *k,
                                         const float *v, int ld, const float *key_mask, int T, int dh, float scale);

/// dscores (rows, cols) = probs * (dprobs - sum(dprobs * probs) over the row); dscores may be dprobs.
void sk_softmax_backward(float *dscores, const float *probs, const float *dprobs, int rows, int cols);
void sk_softmax_backward_reference(float *dscores, const float *probs, const float *dprobs, int rows, int cols);

// ---------------------------------------------------------------- element-wise (elementwise.c)

/// out (n) = a + b. out may be a or b.
void sk_add(float *out, const float *a, const float *b, long n);
/// out (n) += a.
void sk_accumulate(float *out, const float *a, long n);
/// out (n) = a * b. out may be a or b.
void sk_mul(float *out, const float *a, const float *b, long n);
/// Every row of out (rows, cols) = row (cols): a bias written before a GEMM with beta = 1.
void sk_broadcast_rows(float *out, const float *row, int rows, int cols);
/// sums (cols) += column sums of inp (rows, cols): the gradient of a bias.
void sk_add_column_sums(float *sums, const float *inp, int rows, int cols);
/// mask (n) = 0 with probability p, else 1 / (1 - p) (inverted dropout). Deterministic in
/// (seed, stream, index): the same arguments give the same mask on every machine.
void sk_dropout_mask(float *mask, long n, float p, uint64_t seed, uint64_t stream);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_KERNELS_H

// C = alpha · A · Bᵀ + beta · C on AVX2 + FMA, the product every linear layer's forward is, for the
// row counts inference has (one comment of ~32 tokens up to a batch of them).
//
// Why our own kernel: OpenBLAS (Haswell kernels, see gemm_avx512.c) packs both operands on every
// call and, at a few dozen rows, reaches about half of an AVX2 core's FMA rate on x (M, K) · W (N, K)ᵀ.
// Here rows of A meet rows of B directly in dot products, 8 inputs per FMA, with nothing packed:
// a register tile is 3 rows of A times 4 rows of B (12 accumulators, 3 + 4 loads per 12 FMAs), each
// summed across its lanes once per block of K (the K/8 FMAs per output dwarf that reduction).
//
// Blocking, so that every load hits a near cache: K is cut into blocks of NT2_KC inputs; for one block
// the 4 rows of B (4 · NT2_KC floats, 8 KB) stay in L1 while every row tile of A passes (M · NT2_KC
// floats, 64 KB at 32 rows, in L2). A later block adds its partial sums to C, so C holds the sum over
// the blocks done so far. alpha and beta apply in the first block's store; later blocks add alpha · partial.
#include "kernels.h"
#include "simd_math.h"
#include <stdint.h>

enum { NT2_MR = 3, NT2_NR = 4, NT2_KC = 512 };

// The lanes of a K tail (1..7 floats) that maskload reads; the others are zero and read nothing.
static const int32_t tail_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// Sums of each of 4 vectors across its 8 lanes, as the 4 lanes of one xmm: (Σa, Σb, Σc, Σd).
static inline __attribute__((always_inline)) SK_AVX2 __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);   // (a01 a23 b01 b23 | a45 a67 b45 b67), ...
    __m256 abcd = _mm256_hadd_ps(ab, cd);                             // (a0-3 b0-3 c0-3 d0-3 | a4-7 ...)
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// C[0:mr, 0:nr] (+)= alpha · A[0:mr, 0:kc] · B[0:nr, 0:kc]ᵀ (+ beta · C in the first block). mr, nr
// are constants at every call site, so the 12 accumulators stay in registers.
static inline __attribute__((always_inline)) SK_AVX2 void dot_tile(int mr, int nr, int kc, const float *A, int lda,
                                                                      const float *B, int ldb, float alpha, float beta,
                                                                      bool first_block, float *C, int ldc) {
    __m256 acc[NT2_MR][NT2_NR];
    for (int r = 0; r < NT2_MR; r++)
        for (int c = 0; c < NT2_NR; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 b[NT2_NR];
        for (int c = 0; c < nr; c++) b[c] = _mm256_loadu_ps(B + (size_t)c * ldb + k);
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_loadu_ps(A + (size_t)r * lda + k);
            for (int c = 0; c < nr; c++) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
        }
    }
    if (k < kc) {
        __m256i lanes = _mm256_loadu_si256((const __m256i *)(tail_lanes + 8 - (kc - k)));
        __m256 b[NT2_NR];
        for (int c = 0; c < nr; c++) b[c] = _mm256_maskload_ps(B + (size_t)c * ldb + k, lanes);
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_maskload_ps(A + (size_t)r * lda + k, lanes);
            for (int c = 0; c < nr; c++) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float sums[4];
        _mm_storeu_ps(sums, sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        float *out = C + (size_t)r * ldc;
        for (int c = 0; c < nr; c++) {
            float value = alpha * sums[c];
            // beta == 0 never reads C in the first block, which may hold anything (as BLAS does).
            if (!first_block) out[c] += value;
            else out[c] = beta != 0.0f ? value + beta * out[c] : value;
        }
    }
}

#define NT2_TILE_FOR_ROWS(NR)                                                                        \
    switch (mr) {                                                                                    \
    case 3: dot_tile(3, NR, kc, a, lda, b, ldb, alpha, beta, first_block, c, ldc); break;            \
    case 2: dot_tile(2, NR, kc, a, lda, b, ldb, alpha, beta, first_block, c, ldc); break;            \
    default: dot_tile(1, NR, kc, a, lda, b, ldb, alpha, beta, first_block, c, ldc); break;           \
    }

SK_AVX2 static void dot_product(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                                    float beta, float *C, int ldc) {
    for (int n0 = 0; n0 < N; n0 += NT2_NR) {
        int nr = N - n0 < NT2_NR ? N - n0 : NT2_NR;
        for (int k0 = 0; k0 < K; k0 += NT2_KC) {
            int kc = K - k0 < NT2_KC ? K - k0 : NT2_KC;
            bool first_block = k0 == 0;
            const float *b = B + (size_t)n0 * ldb + k0;
            for (int m = 0; m < M; m += NT2_MR) {
                int mr = M - m < NT2_MR ? M - m : NT2_MR;
                const float *a = A + (size_t)m * lda + k0;
                float *c = C + (size_t)m * ldc + n0;
                switch (nr) {
                case 4: NT2_TILE_FOR_ROWS(4) break;
                case 3: NT2_TILE_FOR_ROWS(3) break;
                case 2: NT2_TILE_FOR_ROWS(2) break;
                default: NT2_TILE_FOR_ROWS(1) break;
                }
            }
        }
    }
}

bool sk_sgemm_nt_avx2_available(void) { return sk_cpu_has_avx2_fma(); }

bool sk_sgemm_nt_avx2(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc) {
    if (!sk_sgemm_nt_avx2_available() || K <= 0) return false;
    dot_product(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return true;
}

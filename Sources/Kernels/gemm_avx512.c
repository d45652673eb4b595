// C = alpha · A · Bᵀ + beta · C on AVX-512, the product every linear layer's forward is.
//
// Why our own kernel for this one case: the OpenBLAS this machine kind gets is pinned to its Haswell
// kernels (OPENBLAS_CORETYPE, because older OpenBLAS builds compute wrong results on newer CPUs), so
// on a CPU with AVX-512 it runs at half the vector width. The forward of a linear layer, x (M, K)
// times W (N, K) transposed, is ~93% of an FP32 inference forward; this kernel does it with zmm
// registers and leaves every other GEMM shape to OpenBLAS.
//
// Blocking, as the FP16 kernel: B is packed per call into panels of 16 output columns, each panel K
// rows of 16 floats (a transposed strip: one zmm per k), three panels at a time (48 columns, K·192
// bytes: 590 KB for K = 3072, inside L2). A register tile is 8 rows of A times those 3 panels: 24
// accumulators, 3 weight rows and a broadcast of A[m, k]. Packing reads each element of B once per
// call, so it costs 1/M of the product.
#include "kernels.h"
#include "simd_math.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SK_AVX512 __attribute__((target("avx2,fma,avx512f")))

enum { NT_NR = 16, NT_NP = 3, NT_MR = 8, NT_COLUMNS = NT_NR * NT_NP };
// From this many rows of A on, packing B pays for itself (measured: at 32 rows the dot products are
// faster, at 1024 the packed tiles).
enum { SK_NT_PACK_MIN_ROWS = 128 };

// The packed strip of this thread: grows to the largest K seen, never shrinks.
static _Thread_local float *packed_strip = NULL;
static _Thread_local size_t packed_capacity = 0;

static float *strip_for(int K) {
    size_t floats = (size_t)NT_COLUMNS * (size_t)K;
    if (floats > packed_capacity) {
        free(packed_strip);
        packed_strip = aligned_alloc(64, ((floats * sizeof(float)) + 63) / 64 * 64);
        packed_capacity = packed_strip ? floats : 0;
    }
    return packed_strip;
}

// Strip (K, np · 16): strip[k · 48 + c] = B[n0 + c, k]; columns past N are zero.
static void pack_columns(const float *B, int ldb, int n0, int columns, int N, int K, float *strip) {
    for (int c = 0; c < columns; c++) {
        int n = n0 + c;
        if (n < N) {
            const float *row = B + (size_t)n * ldb;
            for (int k = 0; k < K; k++) strip[(size_t)k * NT_COLUMNS + c] = row[k];
        } else {
            for (int k = 0; k < K; k++) strip[(size_t)k * NT_COLUMNS + c] = 0.0f;
        }
    }
}

static inline __attribute__((always_inline)) SK_AVX512 void tile(int mr, int np, int K, const float *A, int lda,
                                                                const float *strip, float alpha, float beta,
                                                                float *C, int ldc, int n0, int N) {
    __m512 acc[NT_MR][NT_NP];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < np; c++) acc[r][c] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 w[NT_NP];
        for (int c = 0; c < np; c++) w[c] = _mm512_load_ps(strip + (size_t)k * NT_COLUMNS + c * NT_NR);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            for (int c = 0; c < np; c++) acc[r][c] = _mm512_fmadd_ps(a, w[c], acc[r][c]);
        }
    }
    const __m512 alphas = _mm512_set1_ps(alpha), betas = _mm512_set1_ps(beta);
    for (int c = 0; c < np; c++) {
        int first = n0 + c * NT_NR;
        int valid = N - first < NT_NR ? N - first : NT_NR;
        __mmask16 lanes = (__mmask16)((1u << valid) - 1u);
        for (int r = 0; r < mr; r++) {
            float *out = C + (size_t)r * ldc + first;
            __m512 value = _mm512_mul_ps(alphas, acc[r][c]);
            // beta == 0 never reads C, which may hold anything (as BLAS does).
            if (beta != 0.0f) value = _mm512_add_ps(value, _mm512_mul_ps(betas, _mm512_maskz_loadu_ps(lanes, out)));
            _mm512_mask_storeu_ps(out, lanes, value);
        }
    }
}

#define NT_TILE_FOR_ROWS(NP)                                                                     \
    switch (mr) {                                                                                \
    case 8: tile(8, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 7: tile(7, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 6: tile(6, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 5: tile(5, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 4: tile(4, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 3: tile(3, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    case 2: tile(2, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                    \
    default: tile(1, NP, K, a, lda, strip, alpha, beta, c, ldc, n0, N); break;                   \
    }

SK_AVX512 static void product(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc, float *strip) {
    for (int n0 = 0; n0 < N; n0 += NT_COLUMNS) {
        int columns = N - n0 < NT_COLUMNS ? N - n0 : NT_COLUMNS;
        int np = (columns + NT_NR - 1) / NT_NR;
        pack_columns(B, ldb, n0, np * NT_NR, N, K, strip);
        for (int m = 0; m < M; m += NT_MR) {
            int mr = M - m < NT_MR ? M - m : NT_MR;
            const float *a = A + (size_t)m * lda;
            float *c = C + (size_t)m * ldc;
            if (np == 3) { NT_TILE_FOR_ROWS(3) }
            else if (np == 2) { NT_TILE_FOR_ROWS(2) }
            else { NT_TILE_FOR_ROWS(1) }
        }
    }
}

// Few rows: packing B would cost more than it saves, so rows of A and rows of B meet directly in
// dot products, 16 inputs per FMA, 4 rows of A × 6 rows of B per tile (24 accumulators), each summed
// across its lanes once at the end (the K/16 FMAs per output dwarf that reduction).
enum { DOT_MR = 4, DOT_NR = 6 };

static inline __attribute__((always_inline)) SK_AVX512 void dot_tile(int mr, int nr, int K, const float *A, int lda,
                                                                    const float *B, int ldb, float alpha, float beta,
                                                                    float *C, int ldc) {
    __m512 acc[DOT_MR][DOT_NR];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) acc[r][c] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 b[DOT_NR];
        for (int c = 0; c < nr; c++) b[c] = _mm512_loadu_ps(B + (size_t)c * ldb + k);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_loadu_ps(A + (size_t)r * lda + k);
            for (int c = 0; c < nr; c++) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
        }
    }
    if (k < K) {   // the tail, with masked loads (masked-off lanes read nothing and are zero)
        __mmask16 lanes = (__mmask16)((1u << (K - k)) - 1u);
        __m512 b[DOT_NR];
        for (int c = 0; c < nr; c++) b[c] = _mm512_maskz_loadu_ps(lanes, B + (size_t)c * ldb + k);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_maskz_loadu_ps(lanes, A + (size_t)r * lda + k);
            for (int c = 0; c < nr; c++) acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) {
            float *out = C + (size_t)r * ldc + c;
            float value = alpha * _mm512_reduce_add_ps(acc[r][c]);
            *out = beta != 0.0f ? value + beta * *out : value;
        }
}

#define DOT_TILE_FOR_ROWS(NR)                                                                    \
    switch (mr) {                                                                                \
    case 4: dot_tile(4, NR, K, a, lda, b, ldb, alpha, beta, c, ldc); break;                      \
    case 3: dot_tile(3, NR, K, a, lda, b, ldb, alpha, beta, c, ldc); break;                      \
    case 2: dot_tile(2, NR, K, a, lda, b, ldb, alpha, beta, c, ldc); break;                      \
    default: dot_tile(1, NR, K, a, lda, b, ldb, alpha, beta, c, ldc); break;                     \
    }

SK_AVX512 static void dot_product(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc) {
    for (int n0 = 0; n0 < N; n0 += DOT_NR) {
        int nr = N - n0 < DOT_NR ? N - n0 : DOT_NR;
        const float *b = B + (size_t)n0 * ldb;
        for (int m = 0; m < M; m += DOT_MR) {
            int mr = M - m < DOT_MR ? M - m : DOT_MR;
            const float *a = A + (size_t)m * lda;
            float *c = C + (size_t)m * ldc + n0;
            switch (nr) {
            case 6: DOT_TILE_FOR_ROWS(6) break;
            case 5: DOT_TILE_FOR_ROWS(5) break;
            case 4: DOT_TILE_FOR_ROWS(4) break;
            case 3: DOT_TILE_FOR_ROWS(3) break;
            case 2: DOT_TILE_FOR_ROWS(2) break;
            default: DOT_TILE_FOR_ROWS(1) break;
            }
        }
    }
}

bool sk_sgemm_nt_avx512_available(void) { return sk_cpu_has_avx512(); }

bool sk_sgemm_nt_avx512(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    if (!sk_sgemm_nt_avx512_available() || K <= 0) return false;
    if (M < SK_NT_PACK_MIN_ROWS) {
        dot_product(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return true;
    }
    float *strip = strip_for(K);
    if (!strip) return false;   // out of memory: the caller falls back to OpenBLAS
    product(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, strip);
    return true;
}

// One attention head's forward without dropout, for inference and evaluation:
//   probs (T, T) = masked softmax(scale · Q Kᵀ),   context (T, dh) = probs · V
// Q, K, V are (T, dh) views with row stride ld (the fused QKV buffer); context has row stride ldc.
//
// Why a kernel of its own: at the lengths comments have (T ≈ 10..128) each product is a few tens of
// thousands of multiply-adds, so two library GEMM calls per head spend much of their time on set-up
// (a batch of 32 comments runs 384 heads per layer). Here K is transposed once into a (dh, T) block,
// so scores come out 16 keys at a time from broadcasts of q (no horizontal sums), and context rows
// accumulate probs[i, j] · V[j, :] in registers; 4 query rows per tile keep enough FMA chains going.
#include "kernels.h"
#include "simd_math.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

void sk_attention_head_forward_reference(float *probs, float *context, int ldc, const float *q, const float *k,
                                         const float *v, int ld, const float *key_mask, int T, int dh, float scale) {
    for (int i = 0; i < T; i++) {
        float *p = probs + (long)i * T;
        for (int j = 0; j < T; j++) {
            double dot = 0.0;
            for (int d = 0; d < dh; d++) dot += (double)q[(long)i * ld + d] * (double)k[(long)j * ld + d];
            p[j] = scale * (float)dot;
        }
    }
    sk_masked_softmax_rows_reference(probs, probs, key_mask, T, T);
    for (int i = 0; i < T; i++)
        for (int d = 0; d < dh; d++) {
            double sum = 0.0;
            for (int j = 0; j < T; j++) sum += (double)probs[(long)i * T + j] * (double)v[(long)j * ld + d];
            context[(long)i * ldc + d] = (float)sum;
        }
}

enum { ATTENTION_MAX_T = 512, ATTENTION_MAX_DH = 256, ATTENTION_ROWS = 4 };

#define SK_ALWAYS_INLINE static inline __attribute__((always_inline))

// Scores of query rows [i0, i0 + rows) against keys [j0, j0 + 16 · blocks); rows and blocks are
// constants at every call site, so the accumulators stay in registers.
SK_ALWAYS_INLINE SK_AVX512F void scores_tile(float *probs, const float *q, int ld, int T, int dh, const float *kt,
                                            int Tp, int i0, int rows, int j0, int blocks, __m512 scales) {
    __m512 acc[ATTENTION_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_setzero_ps();
    for (int d = 0; d < dh; d++) {
        const float *ktd = kt + (long)d * Tp + j0;
        __m512 keys[4];
        for (int b = 0; b < blocks; b++) keys[b] = _mm512_loadu_ps(ktd + 16 * b);
        for (int r = 0; r < rows; r++) {
            __m512 qd = _mm512_set1_ps(q[(long)(i0 + r) * ld + d]);
            for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_fmadd_ps(qd, keys[b], acc[r][b]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) {
            int first = j0 + 16 * b, valid = T - first < 16 ? T - first : 16;
            _mm512_mask_storeu_ps(probs + (long)(i0 + r) * T + first, (__mmask16)((1u << valid) - 1u),
                                  _mm512_mul_ps(scales, acc[r][b]));
        }
}

// Context rows [i0, i0 + rows), columns [d0, d0 + 16 · blocks), the last block masked to dh.
SK_ALWAYS_INLINE SK_AVX512F void mix_tile(float *context, int ldc, const float *probs, const float *v, int ld, int T,
                                         int dh, int i0, int rows, int d0, int blocks) {
    __mmask16 lanes[4];
    for (int b = 0; b < blocks; b++) {
        int valid = dh - (d0 + 16 * b) < 16 ? dh - (d0 + 16 * b) : 16;
        lanes[b] = (__mmask16)((1u << valid) - 1u);
    }
    __m512 acc[ATTENTION_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_setzero_ps();
    for (int j = 0; j < T; j++) {
        const float *vj = v + (long)j * ld + d0;
        __m512 values[4];
        for (int b = 0; b < blocks; b++) values[b] = _mm512_maskz_loadu_ps(lanes[b], vj + 16 * b);
        for (int r = 0; r < rows; r++) {
            __m512 pj = _mm512_set1_ps(probs[(long)(i0 + r) * T + j]);
            for (int b = 0; b < blocks; b++) acc[r][b] = _mm512_fmadd_ps(pj, values[b], acc[r][b]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) _mm512_mask_storeu_ps(context + (long)(i0 + r) * ldc + d0 + 16 * b, lanes[b], acc[r][b]);
}

// One instance per (rows, blocks) pair.
#define ATTENTION_FOR_BLOCKS(CALL, ROWS)                                           \
    switch (blocks) {                                                              \
    case 4: CALL(ROWS, 4); break;                                                  \
    case 3: CALL(ROWS, 3); break;                                                  \
    case 2: CALL(ROWS, 2); break;                                                  \
    default: CALL(ROWS, 1); break;                                                 \
    }
#define SCORES(ROWS, BLOCKS) scores_tile(probs, q, ld, T, dh, kt, Tp, i0, ROWS, j0, BLOCKS, scales)
#define MIX(ROWS, BLOCKS) mix_tile(context, ldc, probs, v, ld, T, dh, i0, ROWS, d0, BLOCKS)

// K transposed: kt[d · Tp + j] = K[j, d], Tp = T rounded up to 16 (padding keys are 0).
SK_AVX512F static void scores_avx512(float *probs, const float *q, const float *k, int ld, int T, int dh,
                                     float scale, float *kt) {
    int Tp = (T + 15) & ~15;
    for (int j = 0; j < T; j++)
        for (int d = 0; d < dh; d++) kt[(long)d * Tp + j] = k[(long)j * ld + d];
    for (int d = 0; d < dh; d++)
        for (int j = T; j < Tp; j++) kt[(long)d * Tp + j] = 0.0f;
    const __m512 scales = _mm512_set1_ps(scale);
    for (int j0 = 0; j0 < T; j0 += 64) {
        int blocks = (T - j0 + 15) / 16 < 4 ? (T - j0 + 15) / 16 : 4;
        int i0 = 0;
        for (; i0 + ATTENTION_ROWS <= T; i0 += ATTENTION_ROWS) { ATTENTION_FOR_BLOCKS(SCORES, ATTENTION_ROWS) }
        for (; i0 < T; i0++) { ATTENTION_FOR_BLOCKS(SCORES, 1) }
    }
}

// context[i, :] = Σ_j probs[i, j] · V[j, :].
SK_AVX512F static void mix_avx512(float *context, int ldc, const float *probs, const float *v, int ld, int T, int dh) {
    for (int d0 = 0; d0 < dh; d0 += 64) {
        int blocks = (dh - d0 + 15) / 16 < 4 ? (dh - d0 + 15) / 16 : 4;
        int i0 = 0;
        for (; i0 + ATTENTION_ROWS <= T; i0 += ATTENTION_ROWS) { ATTENTION_FOR_BLOCKS(MIX, ATTENTION_ROWS) }
        for (; i0 < T; i0++) { ATTENTION_FOR_BLOCKS(MIX, 1) }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA
//
// The same two steps on 8-lane ymm registers (16 of them, not 32): 4 query rows times up to 2 blocks of
// 8 keys (or 8 context columns) per tile, 8 accumulators. Lanes past T (or dh) are masked on store.

// maskstore lanes for the first `valid` (1..8) floats of a block.
static const int32_t attention_tail_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

SK_ALWAYS_INLINE SK_AVX2 __m256i first_lanes(int valid) {
    return _mm256_loadu_si256((const __m256i *)(attention_tail_lanes + 8 - (valid < 8 ? valid : 8)));
}

SK_ALWAYS_INLINE SK_AVX2 void scores_tile_avx2(float *probs, const float *q, int ld, int T, int dh, const float *kt,
                                              int Tp, int i0, int rows, int j0, int blocks, __m256 scales) {
    __m256 acc[ATTENTION_ROWS][2];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm256_setzero_ps();
    for (int d = 0; d < dh; d++) {
        const float *ktd = kt + (long)d * Tp + j0;
        __m256 keys[2];
        for (int b = 0; b < blocks; b++) keys[b] = _mm256_loadu_ps(ktd + 8 * b);
        for (int r = 0; r < rows; r++) {
            __m256 qd = _mm256_set1_ps(q[(long)(i0 + r) * ld + d]);
            for (int b = 0; b < blocks; b++) acc[r][b] = _mm256_fmadd_ps(qd, keys[b], acc[r][b]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) {
            int first = j0 + 8 * b;
            _mm256_maskstore_ps(probs + (long)(i0 + r) * T + first, first_lanes(T - first), _mm256_mul_ps(scales, acc[r][b]));
        }
}

SK_ALWAYS_INLINE SK_AVX2 void mix_tile_avx2(float *context, int ldc, const float *probs, const float *v, int ld, int T,
                                           int dh, int i0, int rows, int d0, int blocks) {
    __m256i lanes[2];
    for (int b = 0; b < blocks; b++) lanes[b] = first_lanes(dh - (d0 + 8 * b));
    __m256 acc[ATTENTION_ROWS][2];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) acc[r][b] = _mm256_setzero_ps();
    for (int j = 0; j < T; j++) {
        const float *vj = v + (long)j * ld + d0;
        __m256 values[2];
        for (int b = 0; b < blocks; b++) values[b] = _mm256_maskload_ps(vj + 8 * b, lanes[b]);
        for (int r = 0; r < rows; r++) {
            __m256 pj = _mm256_set1_ps(probs[(long)(i0 + r) * T + j]);
            for (int b = 0; b < blocks; b++) acc[r][b] = _mm256_fmadd_ps(pj, values[b], acc[r][b]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) _mm256_maskstore_ps(context + (long)(i0 + r) * ldc + d0 + 8 * b, lanes[b], acc[r][b]);
}

#define ATTENTION_AVX2_FOR_BLOCKS(CALL, ROWS)                                      \
    switch (blocks) {                                                              \
    case 2: CALL(ROWS, 2); break;                                                  \
    default: CALL(ROWS, 1); break;                                                 \
    }
#define SCORES_AVX2(ROWS, BLOCKS) scores_tile_avx2(probs, q, ld, T, dh, kt, Tp, i0, ROWS, j0, BLOCKS, scales)
#define MIX_AVX2(ROWS, BLOCKS) mix_tile_avx2(context, ldc, probs, v, ld, T, dh, i0, ROWS, d0, BLOCKS)

// kt as in scores_avx512, Tp = T rounded up to 8.
SK_AVX2 static void scores_avx2(float *probs, const float *q, const float *k, int ld, int T, int dh, float scale,
                                float *kt) {
    int Tp = (T + 7) & ~7;
    for (int j = 0; j < T; j++)
        for (int d = 0; d < dh; d++) kt[(long)d * Tp + j] = k[(long)j * ld + d];
    for (int d = 0; d < dh; d++)
        for (int j = T; j < Tp; j++) kt[(long)d * Tp + j] = 0.0f;
    const __m256 scales = _mm256_set1_ps(scale);
    for (int j0 = 0; j0 < T; j0 += 16) {
        int blocks = T - j0 > 8 ? 2 : 1;
        int i0 = 0;
        for (; i0 + ATTENTION_ROWS <= T; i0 += ATTENTION_ROWS) { ATTENTION_AVX2_FOR_BLOCKS(SCORES_AVX2, ATTENTION_ROWS) }
        for (; i0 < T; i0++) { ATTENTION_AVX2_FOR_BLOCKS(SCORES_AVX2, 1) }
    }
}

SK_AVX2 static void mix_avx2(float *context, int ldc, const float *probs, const float *v, int ld, int T, int dh) {
    for (int d0 = 0; d0 < dh; d0 += 16) {
        int blocks = dh - d0 > 8 ? 2 : 1;
        int i0 = 0;
        for (; i0 + ATTENTION_ROWS <= T; i0 += ATTENTION_ROWS) { ATTENTION_AVX2_FOR_BLOCKS(MIX_AVX2, ATTENTION_ROWS) }
        for (; i0 < T; i0++) { ATTENTION_AVX2_FOR_BLOCKS(MIX_AVX2, 1) }
    }
}

// This thread's transposed-K block: grows to the largest (dh, T) seen, never shrinks.
static _Thread_local float *transposed = NULL;
static _Thread_local size_t transposed_capacity = 0;

bool sk_attention_head_forward(float *probs, float *context, int ldc, const float *q, const float *k,
                               const float *v, int ld, const float *key_mask, int T, int dh, float scale) {
    bool avx512 = sk_cpu_has_avx512();
    if (!(avx512 || sk_cpu_has_avx2_fma()) || T > ATTENTION_MAX_T || dh > ATTENTION_MAX_DH || T < 1 || dh < 1) return false;
    size_t needed = (size_t)dh * (size_t)((T + 15) & ~15);
    if (needed > transposed_capacity) {
        free(transposed);
        transposed = aligned_alloc(64, (needed * sizeof(float) + 63) / 64 * 64);
        transposed_capacity = transposed ? needed : 0;
        if (!transposed) return false;
    }
    if (avx512) scores_avx512(probs, q, k, ld, T, dh, scale, transposed);
    else scores_avx2(probs, q, k, ld, T, dh, scale, transposed);
    sk_masked_softmax_rows(probs, probs, key_mask, T, T);
    if (avx512) mix_avx512(context, ldc, probs, v, ld, T, dh);
    else mix_avx2(context, ldc, probs, v, ld, T, dh);
    return true;
}

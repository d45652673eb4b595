// INT8 × INT8 linear layer: y = (xq · Wqᵀ) · row_scale · channel_scale + b, summed exactly in int32.
//
// Why vpmaddubsw cannot saturate here. `_mm256_maddubs_epi16(u, s)` multiplies unsigned bytes u by
// signed bytes s and adds neighbouring products into int16 with saturation. Both our operands are
// signed, so we use the sign trick (as ggml does): u = |x| and s = sign(w, x), i.e. w negated where
// x < 0, so u · s = x · w. Then:
//   * x in [-128, 127] gives |x| <= 128 (|-128| is 0x80, which read as unsigned is exactly 128);
//   * weights are quantized to [-127, 127], never -128, so negating w cannot wrap and |s| <= 127;
//   * each int16 lane holds two products: |u0·s0 + u1·s1| <= 2 · 128 · 127 = 32512 <= 32767.
// So no lane ever saturates and the int16 result is exact; `_mm256_madd_epi16(·, 1)` then widens
// pairs to int32 for the accumulation. (A weight of -128 could produce 2 · 128 · 128 = 32768 and
// saturate; that is why sk_quantize_weights_int8_per_channel clamps to ±127.)
//
// Blocking. W is packed once into panels of INT8_NR output channels: for each 32-input chunk the
// panel holds INT8_NR × 32 consecutive bytes, so the inner loop reads one sequential stream. A
// register tile is up to INT8_MR rows of x times one panel; each loaded 32-byte W chunk is used for
// INT8_MR rows and each x chunk for INT8_NR channels. Rows of x are taken in blocks that stay in L2
// while every panel passes by, and whole panels (hence W) are split between threads.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"
#include <stdlib.h>

// The output step computes (float)sum * (row_scale * channel_scale) + bias in every path; forbid
// fusing it into an FMA in the AVX2 functions so all paths give identical floats.
#pragma STDC FP_CONTRACT OFF

enum {
    INT8_CHUNK = 32,           // inputs per step: one ymm of int8
    INT8_NR = 2,               // output channels per panel
    INT8_MR = 4,               // rows of x per register tile
    INT8_X_BLOCK_BYTES = 96 * 1024,   // quantized activations kept hot in L2 while panels stream
    INT8_PARALLEL_MACS = 1 << 20,     // below this, a second thread costs more than it saves
};

int sk_int8_padded_k(int K) { return sk_round_up(K, INT8_CHUNK); }

size_t sk_int8_packed_bytes(int N, int K) {
    return (size_t)sk_round_up(N, INT8_NR) * (size_t)sk_int8_padded_k(K);
}

size_t sk_int8_weights_bytes(int N, int K) { return sk_int8_packed_bytes(N, K) + (size_t)N * sizeof(float); }

// ---------------------------------------------------------------- quantization

void sk_quantize_weights_int8_per_channel(const float *W, int N, int K, int8_t *Wq, float *scales) {
    for (int n = 0; n < N; n++) {
        const float *row = W + (size_t)n * K;
        float amax = 0.0f;
        for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[k]));
        float scale = amax / 127.0f;
        float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
        scales[n] = scale;
        for (int k = 0; k < K; k++) Wq[(size_t)n * K + k] = (int8_t)sk_round_clamp(row[k] * inverse, -127, 127);
    }
}

void sk_dequantize_weights_int8(const int8_t *Wq, const float *scales, int N, int K, float *W) {
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) W[(size_t)n * K + k] = (float)Wq[(size_t)n * K + k] * scales[n];
}

void sk_pack_weights_int8(const int8_t *Wq, int N, int K, int8_t *packed) {
    int Kp = sk_int8_padded_k(K);
    int panels = sk_round_up(N, INT8_NR) / INT8_NR;
    for (int p = 0; p < panels; p++) {
        int8_t *panel = packed + (size_t)p * INT8_NR * Kp;
        for (int j = 0; j < Kp / INT8_CHUNK; j++) {
            for (int c = 0; c < INT8_NR; c++) {
                int n = p * INT8_NR + c;
                int8_t *destination = panel + ((size_t)j * INT8_NR + c) * INT8_CHUNK;
                for (int i = 0; i < INT8_CHUNK; i++) {
                    int k = j * INT8_CHUNK + i;
                    destination[i] = (n < N && k < K) ? Wq[(size_t)n * K + k] : 0;
                }
            }
        }
    }
}

// Activation quantization: one scale per row, values rounded to nearest even and clamped to ±127.
static float row_inverse_scale(const float *row, int K, float static_scale, float *scale) {
    if (static_scale > 0.0f) { *scale = static_scale; return 1.0f / static_scale; }
    float amax = 0.0f;
    for (int k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[k]));
    *scale = amax / 127.0f;
    return amax > 0.0f ? 127.0f / amax : 0.0f;
}

static void quantize_row_portable(const float *row, int K, int Kp, float inverse, int8_t *out) {
    for (int k = 0; k < K; k++) out[k] = (int8_t)sk_round_clamp(row[k] * inverse, -127, 127);
    for (int k = K; k < Kp; k++) out[k] = 0;
}

#if SK_X86
SK_TARGET_AVX2 float sk_row_amax_avx2(const float *row, int K) {
    const __m256 magnitude_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 amax = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) amax = _mm256_max_ps(amax, _mm256_and_ps(_mm256_loadu_ps(row + k), magnitude_mask));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float result = _mm_cvtss_f32(m);
    for (; k < K; k++) result = fmaxf(result, fabsf(row[k]));
    return result;
}

SK_TARGET_AVX2 void sk_quantize_row_avx2(const float *row, int K, int Kp, float inverse, int8_t *out) {
    const __m256 scale = _mm256_set1_ps(inverse);
    const __m256 low = _mm256_set1_ps(-127.0f), high = _mm256_set1_ps(127.0f);
    // packs_epi32/packs_epi16 interleave the 128-bit lanes; this permutation puts the 32 bytes back in order.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256i q[4];
        for (int v = 0; v < 4; v++) {
            // Clamp in float first: the conversion then cannot overflow and the packs cannot clip.
            __m256 scaled = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(row + k + 8 * v), scale), low), high);
            q[v] = _mm256_cvtps_epi32(scaled);   // MXCSR default: nearest, ties to even
        }
        __m256i words = _mm256_packs_epi32(q[0], q[1]);
        __m256i words2 = _mm256_packs_epi32(q[2], q[3]);
        __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, words2), order);
        _mm256_storeu_si256((__m256i *)(out + k), bytes);
    }
    for (; k < K; k++) out[k] = (int8_t)sk_round_clamp(row[k] * inverse, -127, 127);
    for (; k < Kp; k++) out[k] = 0;
}
#endif

void sk_quantize_rows_int8(const float *x, int M, int K, float static_scale, int8_t *xq, float *row_scales) {
    int Kp = sk_int8_padded_k(K);
    bool avx2 = sk_quant_has_avx2();
    for (int m = 0; m < M; m++) {
        const float *row = x + (size_t)m * K;
        int8_t *out = xq + (size_t)m * Kp;
#if SK_X86
        if (avx2) {
            float inverse;
            if (static_scale > 0.0f) { row_scales[m] = static_scale; inverse = 1.0f / static_scale; }
            else {
                float amax = sk_row_amax_avx2(row, K);
                row_scales[m] = amax / 127.0f;
                inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
            }
            sk_quantize_row_avx2(row, K, Kp, inverse, out);
            continue;
        }
#endif
        (void)avx2;
        float inverse = row_inverse_scale(row, K, static_scale, &row_scales[m]);
        quantize_row_portable(row, K, Kp, inverse, out);
    }
}

// ---------------------------------------------------------------- reference

void sk_linear_int8_reference(const int8_t *xq, int ldx, const float *row_scales, int M, int K,
                              const int8_t *Wq, const float *weight_scales, const float *bias, int N, float *y) {
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            int32_t sum = 0;
            for (int k = 0; k < K; k++) sum += (int32_t)xq[(size_t)m * ldx + k] * (int32_t)Wq[(size_t)n * K + k];
            float value = (float)sum * (row_scales[m] * weight_scales[n]);
            y[(size_t)m * N + n] = bias ? value + bias[n] : value;
        }
    }
}

// ---------------------------------------------------------------- fast kernel

typedef struct {
    const int8_t *xq;          // (M, Kp)
    const float *row_scales;   // (M)
    int M, Kp;
    const int8_t *packed;      // panels of INT8_NR channels
    const float *weight_scales, *bias;
    int N;
    float *y;                  // (M, N)
    bool avx2;
} int8_job;

// Writes one finished tile: sums (mr, INT8_NR) -> y rows m.., channels n0.. (only the real channels).
static inline void store_tile(const int8_job *job, int m, int mr, int n0, int32_t sums[INT8_MR][INT8_NR]) {
    int valid = job->N - n0 < INT8_NR ? job->N - n0 : INT8_NR;
    for (int r = 0; r < mr; r++) {
        float *out = job->y + (size_t)(m + r) * job->N + n0;
        for (int c = 0; c < valid; c++) {
            float value = (float)sums[r][c] * (job->row_scales[m + r] * job->weight_scales[n0 + c]);
            out[c] = job->bias ? value + job->bias[n0 + c] : value;
        }
    }
}

// Portable tile, same packed layout: plain loops the compiler may vectorise for the baseline ISA.
SK_INLINE void tile_portable(int mr, const int8_t *x, int ldx, const int8_t *panel, int chunks,
                             int32_t sums[INT8_MR][INT8_NR]) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < INT8_NR; c++) sums[r][c] = 0;
    for (int j = 0; j < chunks; j++) {
        const int8_t *w = panel + (size_t)j * INT8_NR * INT8_CHUNK;
        for (int r = 0; r < mr; r++) {
            const int8_t *xr = x + (size_t)r * ldx + (size_t)j * INT8_CHUNK;
            for (int c = 0; c < INT8_NR; c++) {
                int32_t sum = 0;
                for (int i = 0; i < INT8_CHUNK; i++) sum += (int32_t)xr[i] * (int32_t)w[c * INT8_CHUNK + i];
                sums[r][c] += sum;
            }
        }
    }
}

#if SK_X86
SK_INLINE SK_TARGET_AVX2 int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// mr rows of x (row stride ldx) times one panel over `chunks` 32-byte chunks (see the top comment
// for why the maddubs sums are exact).
SK_INLINE SK_TARGET_AVX2 void tile_avx2(int mr, const int8_t *x, int ldx, const int8_t *panel, int chunks,
                                        int32_t sums[INT8_MR][INT8_NR]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[INT8_MR][INT8_NR];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < INT8_NR; c++) acc[r][c] = _mm256_setzero_si256();
    for (int j = 0; j < chunks; j++) {
        const int8_t *wj = panel + (size_t)j * INT8_NR * INT8_CHUNK;
        __m256i w[INT8_NR];
        for (int c = 0; c < INT8_NR; c++) w[c] = _mm256_loadu_si256((const __m256i *)(wj + c * INT8_CHUNK));
        for (int r = 0; r < mr; r++) {
            __m256i xr = _mm256_loadu_si256((const __m256i *)(x + (size_t)r * ldx + (size_t)j * INT8_CHUNK));
            __m256i magnitude = _mm256_sign_epi8(xr, xr);                  // |x| as unsigned bytes
            for (int c = 0; c < INT8_NR; c++) {
                __m256i signed_w = _mm256_sign_epi8(w[c], xr);             // w · sign(x)
                __m256i pairs = _mm256_maddubs_epi16(magnitude, signed_w); // exact int16, see above
                acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < INT8_NR; c++) sums[r][c] = hsum_epi32(acc[r][c]);
}

SK_TARGET_AVX2 static void panels_avx2(const int8_job *job, int m0, int m1, int p0, int p1) {
    int chunks = job->Kp / INT8_CHUNK;
    for (int p = p0; p < p1; p++) {
        const int8_t *panel = job->packed + (size_t)p * INT8_NR * job->Kp;
        for (int m = m0; m < m1; m += INT8_MR) {
            const int8_t *x = job->xq + (size_t)m * job->Kp;
            int32_t sums[INT8_MR][INT8_NR];
            int mr = m1 - m < INT8_MR ? m1 - m : INT8_MR;
            switch (mr) {   // constant mr lets the compiler keep the tile in registers
            case 4: tile_avx2(4, x, job->Kp, panel, chunks, sums); break;
            case 3: tile_avx2(3, x, job->Kp, panel, chunks, sums); break;
            case 2: tile_avx2(2, x, job->Kp, panel, chunks, sums); break;
            default: tile_avx2(1, x, job->Kp, panel, chunks, sums); break;
            }
            store_tile(job, m, mr, p * INT8_NR, sums);
        }
    }
}
#endif

static void panels_portable(const int8_job *job, int m0, int m1, int p0, int p1) {
    int chunks = job->Kp / INT8_CHUNK;
    for (int p = p0; p < p1; p++) {
        const int8_t *panel = job->packed + (size_t)p * INT8_NR * job->Kp;
        for (int m = m0; m < m1; m += INT8_MR) {
            int32_t sums[INT8_MR][INT8_NR];
            int mr = m1 - m < INT8_MR ? m1 - m : INT8_MR;
            tile_portable(mr, job->xq + (size_t)m * job->Kp, job->Kp, panel, chunks, sums);
            store_tile(job, m, mr, p * INT8_NR, sums);
        }
    }
}

// One thread's share: panels [p0, p1) against every row of x, a block of rows at a time.
static void run_panels(void *context, int p0, int p1) {
    const int8_job *job = context;
    int block = job->Kp > 0 ? INT8_X_BLOCK_BYTES / job->Kp / INT8_MR * INT8_MR : job->M;
    if (block < INT8_MR) block = INT8_MR;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->avx2) { panels_avx2(job, m0, m1, p0, p1); continue; }
#endif
        panels_portable(job, m0, m1, p0, p1);
    }
}

void sk_linear_int8(const int8_t *xq, const float *row_scales, int M, int K,
                    const int8_t *packed, const float *weight_scales, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0) return;
    int8_job job = {
        .xq = xq, .row_scales = row_scales, .M = M, .Kp = sk_int8_padded_k(K), .packed = packed,
        .weight_scales = weight_scales, .bias = bias, .N = N, .y = y, .avx2 = sk_quant_has_avx2(),
    };
    int panels = sk_round_up(N, INT8_NR) / INT8_NR;
    if ((double)M * N * job.Kp >= INT8_PARALLEL_MACS) sk_parallel_for(panels, run_panels, &job);
    else run_panels(&job, 0, panels);
}

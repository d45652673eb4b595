// INT8 × INT8 linear layer: y = (xq · Wqᵀ) · row_scale · channel_scale + b, summed exactly in int32.
//
// Packed layout (one for every path, made once at load time). Output channels are cut into panels of
// INT8_NR = 16 (one int32 lane each in a zmm register); inputs into steps of 4 (the bytes one int32
// lane sums). For each step a panel holds 64 bytes: channel c's 4 inputs at bytes 4c..4c+3. The
// bytes are stored *offset*: u = w + 128 in [1, 255], with padding (k >= K or n >= N) stored as 128,
// i.e. weight 0. So a panel is one sequential stream and every step is one 64-byte load.
//
// AVX-512 VNNI (`vpdpbusd`): a lane adds u0·x0 + u1·x1 + u2·x2 + u3·x3 (u unsigned, x signed bytes)
// to its int32 without any intermediate saturation. Broadcasting a row's 4 activations to all lanes
// gives 16 channels' partial sums per instruction, and
//     Σ_k u·x = Σ_k (w + 128)·x = Σ_k w·x + 128 · Σ_k x,
// so subtracting 128 · (row sum of xq) per row gives the exact product. The int32 arithmetic wraps
// modulo 2^32, so the intermediate sum needs no range argument: the final one fits (see the header).
//
// AVX2 (`vpmaddubsw` + `vpmaddwd`): the same layout, bytes flipped back to w = u - 128 and the sign
// trick (as ggml does) so that vpmaddubsw cannot saturate: with a = |x| (unsigned) and b = sign(w, x),
// a · b = x · w and each int16 lane holds |a0·b0 + a1·b1| <= 2 · 128 · 127 = 32512 <= 32767, because
// weights are quantized to [-127, 127], never -128 (sk_quantize_weights_int8_per_channel clamps).
// vpmaddwd by 1 then widens the pairs to int32 lanes, 8 channels per ymm. |x| is made once per call for
// all rows (not per row and step in the tile), so the inner loop spends its vector ALUs on the products.
//
// Blocking. A register tile is up to MR rows of x times NP panels; every loaded weight step serves MR
// rows and every broadcast activation NP panels. Rows of x are taken in blocks that stay in L2 while
// the panels stream past, and whole panels (hence W) are split between threads.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"
#include <stdlib.h>

// The output step computes (float)sum * (row_scale * channel_scale) + bias in every path; forbid
// fusing it into an FMA in the SIMD functions so all paths give identical floats.
#pragma STDC FP_CONTRACT OFF

enum {
    INT8_CHUNK = 32,                  // activation rows are padded to a multiple of this (one ymm)
    INT8_STEP = 4,                    // inputs per int32 lane
    INT8_NR = SK_PANEL_CHANNELS,      // output channels per panel
    INT8_STEP_BYTES = INT8_NR * INT8_STEP,
    INT8_OFFSET = 128,                // stored weight byte = w + 128
    INT8_X_BLOCK_BYTES = 256 * 1024,   // quantized activations kept hot in L2 while panels stream
    INT8_PARALLEL_MACS = 1 << 21,     // below this, a second thread costs more than it saves
    INT8_BLOCK_ROWS = 8,              // row blocks are a multiple of the largest register tile
};

int sk_int8_padded_k(int K) { return sk_round_up(K, INT8_CHUNK); }

static int panels_of(int N) { return (N + INT8_NR - 1) / INT8_NR; }

size_t sk_int8_packed_bytes(int N, int K) {
    return (size_t)panels_of(N) * INT8_NR * (size_t)sk_int8_padded_k(K);
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

// Byte of weight (n, k) inside the packed layout: panel n / 16, its step k / 4 (quant_kernels.h).
static inline uint8_t *packed_byte(const int8_t *packed, int Kp, int n, int k) {
    sk_int8_panel_step *steps = (sk_int8_panel_step *)packed;
    return &steps[(size_t)(n / INT8_NR) * (Kp / INT8_STEP) + k / INT8_STEP].offset_weights[n % INT8_NR][k % INT8_STEP];
}

void sk_pack_weights_int8(const int8_t *Wq, int N, int K, int8_t *packed) {
    int Kp = sk_int8_padded_k(K);
    memset(packed, INT8_OFFSET, sk_int8_packed_bytes(N, K));   // padding: weight 0
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            *packed_byte(packed, Kp, n, k) = (uint8_t)((int)Wq[(size_t)n * K + k] + INT8_OFFSET);
}

void sk_unpack_weights_int8(const int8_t *packed, int N, int K, int8_t *Wq) {
    int Kp = sk_int8_padded_k(K);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            Wq[(size_t)n * K + k] = (int8_t)((int)*packed_byte(packed, Kp, n, k) - INT8_OFFSET);
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

#if SK_X86
// AVX-512 twins of sk_row_amax_avx2 and sk_quantize_row_avx2: the same operations on 16 lanes (max,
// multiply, clamp in float, convert with ties to even), so every level gives the same bytes.
SK_TARGET_AVX512_VNNI static float row_amax_avx512(const float *row, int K) {
    __m512 amax = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(row + k)));
    float result = _mm512_reduce_max_ps(amax);
    for (; k < K; k++) result = fmaxf(result, fabsf(row[k]));
    return result;
}

SK_TARGET_AVX512_VNNI static void quantize_row_avx512(const float *row, int K, int Kp, float inverse, int8_t *out) {
    const __m512 scale = _mm512_set1_ps(inverse);
    const __m512 low = _mm512_set1_ps(-127.0f), high = _mm512_set1_ps(127.0f);
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 scaled = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(row + k), scale), low), high);
        _mm_storeu_si128((__m128i *)(out + k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(scaled)));
    }
    for (; k < K; k++) out[k] = (int8_t)sk_round_clamp(row[k] * inverse, -127, 127);
    for (; k < Kp; k++) out[k] = 0;
}
#endif

typedef struct {
    const float *x;
    int K;
    float static_scale;
    int8_t *xq;
    float *row_scales;
} quantize_rows_job;

// Rows [m0, m1) of sk_quantize_rows_int8; rows are independent, so threads may take any share.
static void quantize_rows(void *context, int m0, int m1) {
    const quantize_rows_job *job = context;
    int K = job->K, Kp = sk_int8_padded_k(K);
    int level = sk_quant_kernel_level();
    bool avx2 = level >= SK_KERNELS_AVX2;
    for (int m = m0; m < m1; m++) {
        const float *row = job->x + (size_t)m * K;
        int8_t *out = job->xq + (size_t)m * Kp;
#if SK_X86
        if (avx2) {
            // The same scale in both SIMD levels: the fixed one, or max|x| / 127 of the row.
            float inverse;
            if (job->static_scale > 0.0f) { job->row_scales[m] = job->static_scale; inverse = 1.0f / job->static_scale; }
            else {
                float amax = level >= SK_KERNELS_AVX512_VNNI ? row_amax_avx512(row, K) : sk_row_amax_avx2(row, K);
                job->row_scales[m] = amax / 127.0f;
                inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
            }
            if (level >= SK_KERNELS_AVX512_VNNI) quantize_row_avx512(row, K, Kp, inverse, out);
            else sk_quantize_row_avx2(row, K, Kp, inverse, out);
            continue;
        }
#endif
        (void)avx2;
        float inverse = row_inverse_scale(row, K, job->static_scale, &job->row_scales[m]);
        quantize_row_portable(row, K, Kp, inverse, out);
    }
}

// Below this many activations one thread quantizes them all (a few µs of work).
enum { INT8_QUANTIZE_PARALLEL_VALUES = 1 << 16 };

void sk_quantize_rows_int8(const float *x, int M, int K, float static_scale, int8_t *xq, float *row_scales) {
    quantize_rows_job job = {.x = x, .K = K, .static_scale = static_scale, .xq = xq, .row_scales = row_scales};
    if ((long)M * K >= INT8_QUANTIZE_PARALLEL_VALUES) sk_parallel_for(M, quantize_rows, &job);
    else quantize_rows(&job, 0, M);
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

// ---------------------------------------------------------------- fast kernels

typedef struct {
    const int8_t *xq;          // (M, Kp)
    const float *row_scales;   // (M)
    int M, Kp;
    const uint8_t *packed;     // panels of INT8_NR channels, offset bytes
    const float *weight_scales, *bias;
    int N;
    float *y;                  // (M, N)
    int level;                 // sk_quant_kernel_level() when the call began
    const int32_t *row_sums;   // (M) Σ_k xq[m, k], for the VNNI offset; NULL on the other levels
    const uint8_t *magnitudes; // (M, Kp) |xq| as unsigned bytes, for the AVX2 level; NULL on the others
} int8_job;

enum { INT8_SCALAR_MR = 4 };

// One panel's exact sums for `mr` rows into y (quant_common.h): the AVX2 and portable paths share it.
static inline void store_panel(const int8_job *job, int m, int mr, int n0, int32_t sums[][INT8_NR]) {
    sk_store_panel_sums(job->y, job->N, job->row_scales, job->weight_scales, job->bias, m, mr, n0, sums);
}

// Portable: up to INT8_SCALAR_MR rows times one panel, in plain loops over the packed layout.
static void panel_portable(const int8_job *job, int m, int mr, int p) {
    const uint8_t *panel = job->packed + (size_t)p * INT8_NR * job->Kp;
    int32_t sums[INT8_SCALAR_MR][INT8_NR] = {{0}};
    for (int s = 0; s < job->Kp / INT8_STEP; s++) {
        const uint8_t *w = panel + (size_t)s * INT8_STEP_BYTES;
        for (int r = 0; r < mr; r++) {
            const int8_t *x = job->xq + (size_t)(m + r) * job->Kp + (size_t)s * INT8_STEP;
            for (int c = 0; c < INT8_NR; c++)
                for (int i = 0; i < INT8_STEP; i++)
                    sums[r][c] += (int32_t)x[i] * ((int32_t)w[c * INT8_STEP + i] - INT8_OFFSET);
        }
    }
    store_panel(job, m, mr, p * INT8_NR, sums);
}

static void panels_portable(const int8_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++)
        for (int m = m0; m < m1; m += INT8_SCALAR_MR)
            panel_portable(job, m, m1 - m < INT8_SCALAR_MR ? m1 - m : INT8_SCALAR_MR, p);
}

#if SK_X86

// AVX2: `mr` rows times one panel, as two ymm halves of 8 channels (see the top comment).
SK_INLINE SK_TARGET_AVX2 void panel_avx2(const int8_job *job, int m, int mr, int p) {
    const uint8_t *panel = job->packed + (size_t)p * INT8_NR * job->Kp;
    const int8_t *x = job->xq + (size_t)m * job->Kp;
    const int8_t *xm = (const int8_t *)job->magnitudes + (size_t)m * job->Kp;
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256i acc[INT8_SCALAR_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int s = 0; s < job->Kp / INT8_STEP; s++) {
        const uint8_t *wp = panel + (size_t)s * INT8_STEP_BYTES;
        __m256i w0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)wp), flip);        // channels 0-7
        __m256i w1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wp + 32)), flip); // channels 8-15
        for (int r = 0; r < mr; r++) {
            size_t at = (size_t)r * job->Kp + (size_t)s * INT8_STEP;
            __m256i xb = _mm256_set1_epi32(sk_load_i32(x + at));
            // |x| as unsigned bytes, made once per call (absolute_rows): a broadcast load instead of a
            // vpsignb per row and step, which competes with the products for the vector ALUs.
            __m256i magnitude = _mm256_set1_epi32(sk_load_i32(xm + at));
            acc[r][0] = _mm256_add_epi32(acc[r][0],
                _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w0, xb)), ones));
            acc[r][1] = _mm256_add_epi32(acc[r][1],
                _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(w1, xb)), ones));
        }
    }
    int32_t sums[INT8_SCALAR_MR][INT8_NR];
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)sums[r], acc[r][0]);
        _mm256_storeu_si256((__m256i *)(sums[r] + 8), acc[r][1]);
    }
    store_panel(job, m, mr, p * INT8_NR, sums);
}

SK_TARGET_AVX2 static void panels_avx2(const int8_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        for (int m = m0; m < m1; m += INT8_SCALAR_MR) {
            switch (m1 - m < INT8_SCALAR_MR ? m1 - m : INT8_SCALAR_MR) {   // constant mr: tile in registers
            case 4: panel_avx2(job, m, 4, p); break;
            case 3: panel_avx2(job, m, 3, p); break;
            case 2: panel_avx2(job, m, 2, p); break;
            default: panel_avx2(job, m, 1, p); break;
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512 VNNI

enum { VNNI_MR = 8, VNNI_NP = 3 };   // 24 accumulators + 3 weight steps + 1 broadcast of 32 zmm

// `mr` rows times `np` panels starting at panel p; row_sums[r] = Σ_k xq[m + r, k]. `upcoming`, when
// not NULL, is the next tile's first panel: its weights are prefetched into L2 step by step, so that
// with few rows (one sequence at a time) the next panels' trip from memory overlaps this tile's work
// instead of following it.
SK_INLINE SK_TARGET_AVX512_VNNI void tile_vnni(const int8_job *job, int m, int mr, int p, int np,
                                               const int32_t *row_sums, const uint8_t *upcoming) {
    const size_t panel_bytes = (size_t)INT8_NR * job->Kp;
    const uint8_t *panel = job->packed + (size_t)p * panel_bytes;
    const int8_t *x = job->xq + (size_t)m * job->Kp;
    __m512i acc[VNNI_MR][VNNI_NP];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < np; c++) acc[r][c] = _mm512_setzero_si512();
    const int steps = job->Kp / INT8_STEP;
    for (int s = 0; s < steps; s++) {
        __m512i w[VNNI_NP];
        for (int c = 0; c < np; c++)
            w[c] = _mm512_loadu_si512((const void *)(panel + c * panel_bytes + (size_t)s * INT8_STEP_BYTES));
        if (upcoming)
            for (int c = 0; c < VNNI_NP; c++)
                _mm_prefetch((const char *)(upcoming + c * panel_bytes + (size_t)s * INT8_STEP_BYTES), _MM_HINT_T1);
        for (int r = 0; r < mr; r++) {
            __m512i xb = _mm512_set1_epi32(sk_load_i32(x + (size_t)r * job->Kp + (size_t)s * INT8_STEP));
            for (int c = 0; c < np; c++) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], w[c], xb);
        }
    }
    // Output: remove the offset, then (float)sum · (row scale · channel scale) + bias, as store_panel.
    for (int c = 0; c < np; c++) {
        int n0 = (p + c) * INT8_NR;
        int valid = job->N - n0 < INT8_NR ? job->N - n0 : INT8_NR;
        for (int r = 0; r < mr; r++) {
            __m512i sum = _mm512_sub_epi32(acc[r][c], _mm512_set1_epi32(INT8_OFFSET * row_sums[r]));
            sk_store_dequantized_avx512(job->y + (size_t)(m + r) * job->N + n0, sum, job->row_scales[m + r],
                                        job->weight_scales + n0, job->bias ? job->bias + n0 : NULL, valid);
        }
    }
}

// sums[m] = Σ_k xq[m, k] for `rows` rows of Kp bytes (Kp a multiple of 32): vpdpbusd with all-ones
// unsigned bytes adds four signed bytes per lane, 64 per instruction.
SK_TARGET_AVX512_VNNI static void row_sums_vnni(const int8_t *xq, int rows, int Kp, int32_t *sums) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (int m = 0; m < rows; m++) {
        const int8_t *row = xq + (size_t)m * Kp;
        __m512i acc = _mm512_setzero_si512();
        int k = 0;
        for (; k + 64 <= Kp; k += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512((const void *)(row + k)));
        if (k < Kp)   // the last 32 bytes (Kp is a multiple of 32)
            acc = _mm512_dpbusd_epi32(acc, ones, _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(row + k))));
        sums[m] = _mm512_reduce_add_epi32(acc);
    }
}

// One instance per (rows, panels) pair, so both are constants inside the tile.
#define VNNI_TILE_FOR_ROWS(NP)                                                   \
    switch (mr) {                                                                \
    case 8: tile_vnni(job, m, 8, p, NP, sums, upcoming); break;                            \
    case 7: tile_vnni(job, m, 7, p, NP, sums, upcoming); break;                            \
    case 6: tile_vnni(job, m, 6, p, NP, sums, upcoming); break;                            \
    case 5: tile_vnni(job, m, 5, p, NP, sums, upcoming); break;                            \
    case 4: tile_vnni(job, m, 4, p, NP, sums, upcoming); break;                            \
    case 3: tile_vnni(job, m, 3, p, NP, sums, upcoming); break;                            \
    case 2: tile_vnni(job, m, 2, p, NP, sums, upcoming); break;                            \
    default: tile_vnni(job, m, 1, p, NP, sums, upcoming); break;                           \
    }

SK_TARGET_AVX512_VNNI static void panels_vnni(const int8_job *job, int m0, int m1, int p0, int p1,
                                              const int32_t *row_sums) {
    for (int p = p0; p < p1; p += VNNI_NP) {
        int np = p1 - p < VNNI_NP ? p1 - p : VNNI_NP;
        // The next panels are prefetched during the second row tile (the first brings this tile's
        // own weights in), or during the only one.
        const uint8_t *next = p + VNNI_NP < p1 ? job->packed + (size_t)(p + VNNI_NP) * INT8_NR * job->Kp : NULL;
        int prefetching_row = m1 - m0 > VNNI_MR ? m0 + VNNI_MR : m0;
        for (int m = m0; m < m1; m += VNNI_MR) {
            int mr = m1 - m < VNNI_MR ? m1 - m : VNNI_MR;
            const int32_t *sums = row_sums + (m - m0);
            const uint8_t *upcoming = m == prefetching_row ? next : NULL;
            if (np == 3) { VNNI_TILE_FOR_ROWS(3) }
            else if (np == 2) { VNNI_TILE_FOR_ROWS(2) }
            else { VNNI_TILE_FOR_ROWS(1) }
        }
    }
}
#endif

// One thread's share: panels [p0, p1) against every row of x, a block of rows at a time.
static void run_panels(void *context, int p0, int p1) {
    const int8_job *job = context;
    int block = job->Kp > 0 ? INT8_X_BLOCK_BYTES / job->Kp / INT8_BLOCK_ROWS * INT8_BLOCK_ROWS : job->M;
    if (block < INT8_BLOCK_ROWS) block = INT8_BLOCK_ROWS;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->level >= SK_KERNELS_AVX512_VNNI) { panels_vnni(job, m0, m1, p0, p1, job->row_sums + m0); continue; }
        if (job->level >= SK_KERNELS_AVX2) { panels_avx2(job, m0, m1, p0, p1); continue; }
#endif
        panels_portable(job, m0, m1, p0, p1);
    }
}

// This thread's row sums for the VNNI offset: grows to the largest M seen, never shrinks.
static _Thread_local int32_t *row_sums_buffer = NULL;
static _Thread_local size_t row_sums_capacity = 0;

#if SK_X86
// magnitudes (count) = |xq| as unsigned bytes (|-128| = 128 fits): the AVX2 tiles' unsigned operand.
SK_TARGET_AVX2 static void absolute_rows(const int8_t *xq, size_t count, uint8_t *magnitudes) {
    size_t i = 0;   // count is a multiple of 32 (rows of Kp bytes)
    for (; i + 32 <= count; i += 32)
        _mm256_storeu_si256((__m256i *)(magnitudes + i), _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(xq + i))));
}

// This thread's |xq| for the AVX2 level: grows to the largest M · Kp seen, never shrinks.
static _Thread_local uint8_t *magnitudes_buffer = NULL;
static _Thread_local size_t magnitudes_capacity = 0;
#endif

void sk_linear_int8(const int8_t *xq, const float *row_scales, int M, int K,
                    const int8_t *packed, const float *weight_scales, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0) return;
    int8_job job = {
        .xq = xq, .row_scales = row_scales, .M = M, .Kp = sk_int8_padded_k(K), .packed = (const uint8_t *)packed,
        .weight_scales = weight_scales, .bias = bias, .N = N, .y = y, .level = sk_quant_kernel_level(),
    };
#if SK_X86
    if (job.level >= SK_KERNELS_AVX512_VNNI) {
        // Once per call, before the panels are shared out: every chunk needs the sums of every row.
        if ((size_t)M > row_sums_capacity) {
            int32_t *grown = realloc(row_sums_buffer, (size_t)M * sizeof(int32_t));
            if (grown) { row_sums_buffer = grown; row_sums_capacity = (size_t)M; }
        }
        if ((size_t)M <= row_sums_capacity) {
            row_sums_vnni(xq, M, job.Kp, row_sums_buffer);
            job.row_sums = row_sums_buffer;
        } else {
            job.level = SK_KERNELS_AVX2;   // out of memory for M sums: the AVX2 path needs none
        }
    }
    if (job.level == SK_KERNELS_AVX2) {
        size_t bytes = (size_t)M * (size_t)job.Kp;
        if (bytes > magnitudes_capacity) {
            uint8_t *grown = realloc(magnitudes_buffer, bytes);
            if (grown) { magnitudes_buffer = grown; magnitudes_capacity = bytes; }
        }
        if (bytes <= magnitudes_capacity) {
            absolute_rows(xq, bytes, magnitudes_buffer);
            job.magnitudes = magnitudes_buffer;
        } else {
            job.level = SK_KERNELS_PORTABLE;   // out of memory for |xq|: the portable path needs none
        }
    }
#endif
    int panels = panels_of(N);
    if ((double)M * N * job.Kp >= INT8_PARALLEL_MACS) sk_parallel_for(panels, run_panels, &job);
    else run_panels(&job, 0, panels);
}

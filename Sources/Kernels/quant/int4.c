// INT4 group-wise linear layer with integer group scales:
//
//   W[n, k] = (u[n, k] - 8) · s[n, g(k)] · D[n]          u in [0, 15], s in [-127, 127], D float
//   y[m, n] = dx[m] · D[n] · Σ_k s[n, g(k)] · (u[n, k] - 8) · xq[m, k] + b[n]
//
// Why integer group scales. With a float scale per group (ggml's q4_0), every 32-input block's
// integer dot product must be converted to float and multiplied by its own scale: per block and
// per (row, channel) a vpmaddubsw, a vpmaddwd, a convert and an FMA, plus the scale products. That
// made INT4 2.5x slower than INT8. Here a group's scale is a small integer s under one float scale
// per channel (as k-quants' super-blocks do), so `vpmaddwd` multiplies the int16 pair sums by s
// instead of by 1 -- the same instruction INT8 spends on widening -- and the whole row accumulates
// exactly in int32, converted to float once per output. The activations are quantized per row (as
// dynamic INT8) so their scale dx[m] also leaves the sum.
//
// The offset of 8. Codes are unsigned so `vpmaddubsw(u, x)` needs no sign trick:
//   Σ s·(u - 8)·x = Σ s·u·x - 8·Σ_g s_g·(Σ_{k in g} x_k),
// and the group sums of x are made once per row when the activations are quantized
// (sk_int4_activation_sums), so the correction is one short int16 dot product per output.
//
// Exactness: |u·x0 + u·x1| <= 2·15·128 = 3840 fits int16 (no vpmaddubsw saturation); times |s| <= 127
// fits int32; the whole sum is at most K·15·128·127, inside int32 for K <= 8192 (checked by
// sk_int4_shape_ok). So the fast and reference kernels agree bit for bit.
//
// Packed run-time layout: output channels in pairs; for each 32-input chunk the pair's 32 bytes hold
// channel 2p's codes in the low nibbles and channel 2p+1's in the high nibbles, input i at byte i,
// so one load and three instructions give both channels' 32 codes in input order. After all panels,
// the group scales widened to int16, one row of Gp (groups rounded up to 16) per channel, zero-padded.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"

// The output step computes (float)sum * (row_scale * channel_scale) + bias in every path; forbid
// fusing it into an FMA in the AVX2 functions so all paths give identical floats.
#pragma STDC FP_CONTRACT OFF

enum {
    Q4_CHUNK = 32,
    Q4_MR = 4,                  // rows of x per register tile
    Q4_NR = 2,                  // channels per panel (low and high nibbles)
    Q4_GROUP_PAD = 16,          // int16 group scales / sums per ymm
    Q4_MAX_K = 8192,            // keeps K·15·128·127 inside int32
    Q4_X_BLOCK_BYTES = 96 * 1024,
    Q4_PARALLEL_MACS = 1 << 20,
};

bool sk_int4_shape_ok(int K, int group) {
    return (group == 32 || group == 64 || group == 128) && K > 0 && K % group == 0 && K <= Q4_MAX_K;
}

int sk_int4_padded_groups(int K, int group) { return sk_round_up(K / group, Q4_GROUP_PAD); }

size_t sk_int4_codes_bytes(int N, int K) { return (size_t)N * (size_t)K / 2; }

static int pairs_of(int N) { return (N + Q4_NR - 1) / Q4_NR; }

size_t sk_int4_packed_bytes(int N, int K, int group) {
    size_t panels = (size_t)pairs_of(N) * (size_t)K;
    size_t scales = (size_t)pairs_of(N) * Q4_NR * (size_t)sk_int4_padded_groups(K, group) * sizeof(int16_t);
    return panels + scales;
}

static const int16_t *packed_scales(const void *packed, int N, int K) {
    return (const int16_t *)((const uint8_t *)packed + (size_t)pairs_of(N) * K);
}

// ---------------------------------------------------------------- storage layout

static inline int storage_code(const uint8_t *codes, int K, int n, int k) {
    uint8_t byte = codes[(size_t)n * (K / 2) + k / 2];
    return k % 2 == 0 ? byte & 0x0f : byte >> 4;
}

void sk_quantize_weights_int4(const float *W, int N, int K, int group, uint8_t *codes, int8_t *group_scales,
                              float *channel_scales) {
    int groups = K / group;
    for (int n = 0; n < N; n++) {
        const float *row = W + (size_t)n * K;
        // Each group's ideal scale d_g = w* / -8 (w* its weight of largest magnitude, as ggml does),
        // so w* becomes code 0 exactly and the rest round into [-8, 7].
        float largest_d = 0.0f;
        for (int g = 0; g < groups; g++) {
            float extreme = 0.0f;
            for (int i = 0; i < group; i++) if (fabsf(row[g * group + i]) > fabsf(extreme)) extreme = row[g * group + i];
            largest_d = fmaxf(largest_d, fabsf(extreme / 8.0f));
        }
        float D = largest_d / 127.0f;
        channel_scales[n] = D;
        for (int g = 0; g < groups; g++) {
            const float *w = row + g * group;
            float extreme = 0.0f;
            for (int i = 0; i < group; i++) if (fabsf(w[i]) > fabsf(extreme)) extreme = w[i];
            // s rounds AWAY from zero, so the stored step is never smaller than d_g and w* cannot clip.
            float ratio = D > 0.0f ? (extreme / -8.0f) / D : 0.0f;
            float magnitude = fminf(ceilf(fabsf(ratio)), 127.0f);
            int s = (int)(ratio < 0.0f ? -magnitude : magnitude);
            group_scales[(size_t)n * groups + g] = (int8_t)s;
            // Codes against the step as stored, so dequantization gives what was meant.
            float step = (float)s * D;
            float inverse = step != 0.0f ? 1.0f / step : 0.0f;
            for (int i = 0; i < group; i++) {
                int k = g * group + i;
                int u = sk_round_clamp(w[i] * inverse, -8, 7) + 8;
                uint8_t *byte = codes + (size_t)n * (K / 2) + k / 2;
                *byte = k % 2 == 0 ? (uint8_t)((*byte & 0xf0) | u) : (uint8_t)((*byte & 0x0f) | (u << 4));
            }
        }
    }
}

void sk_dequantize_weights_int4(const uint8_t *codes, const int8_t *group_scales, const float *channel_scales,
                                int N, int K, int group, float *W) {
    int groups = K / group;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int s = group_scales[(size_t)n * groups + k / group];
            W[(size_t)n * K + k] = (float)((storage_code(codes, K, n, k) - 8) * s) * channel_scales[n];
        }
}

void sk_pack_weights_int4(const uint8_t *codes, const int8_t *group_scales, int N, int K, int group, void *packed) {
    int groups = K / group, Gp = sk_int4_padded_groups(K, group), pairs = pairs_of(N);
    uint8_t *panels = packed;
    for (int p = 0; p < pairs; p++) {
        for (int k = 0; k < K; k++) {
            int low = storage_code(codes, K, Q4_NR * p, k);
            int high = Q4_NR * p + 1 < N ? storage_code(codes, K, Q4_NR * p + 1, k) : 8;   // padding: weight 0
            panels[(size_t)p * K + k] = (uint8_t)(low | (high << 4));
        }
    }
    int16_t *scales = (int16_t *)(panels + (size_t)pairs * K);
    for (int n = 0; n < pairs * Q4_NR; n++)
        for (int g = 0; g < Gp; g++)
            scales[(size_t)n * Gp + g] = (n < N && g < groups) ? group_scales[(size_t)n * groups + g] : 0;
}

void sk_unpack_weights_int4(const void *packed, int N, int K, int group, uint8_t *codes, int8_t *group_scales) {
    int groups = K / group, Gp = sk_int4_padded_groups(K, group);
    const uint8_t *panels = packed;
    const int16_t *scales = packed_scales(packed, N, K);
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k += 2) {
            uint8_t a = panels[(size_t)(n / Q4_NR) * K + k], b = panels[(size_t)(n / Q4_NR) * K + k + 1];
            int shift = (n % Q4_NR) * 4;
            codes[(size_t)n * (K / 2) + k / 2] = (uint8_t)(((a >> shift) & 0x0f) | (((b >> shift) & 0x0f) << 4));
        }
        for (int g = 0; g < groups; g++) group_scales[(size_t)n * groups + g] = (int8_t)scales[(size_t)n * Gp + g];
    }
}

void sk_int4_activation_sums(const int8_t *xq, int M, int K, int group, int16_t *sums) {
    int groups = K / group, Gp = sk_int4_padded_groups(K, group);
    for (int m = 0; m < M; m++) {
        for (int g = 0; g < Gp; g++) {
            int sum = 0;
            if (g < groups)
                for (int i = 0; i < group; i++) sum += xq[(size_t)m * K + g * group + i];
            sums[(size_t)m * Gp + g] = (int16_t)sum;   // |sum| <= 128 · 128: fits
        }
    }
}

// ---------------------------------------------------------------- reference

void sk_linear_int4_reference(const int8_t *xq, const float *row_scales, int M, int K, int group,
                              const uint8_t *codes, const int8_t *group_scales, const float *channel_scales,
                              const float *bias, int N, float *y) {
    int groups = K / group;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            int32_t sum = 0;
            for (int k = 0; k < K; k++)
                sum += (int32_t)group_scales[(size_t)n * groups + k / group] * (storage_code(codes, K, n, k) - 8) *
                       (int32_t)xq[(size_t)m * K + k];
            float value = (float)sum * (row_scales[m] * channel_scales[n]);
            y[(size_t)m * N + n] = bias ? value + bias[n] : value;
        }
    }
}

// ---------------------------------------------------------------- fast kernel

typedef struct {
    const int8_t *xq;              // (M, K)
    const float *row_scales;       // (M)
    const int16_t *sums;           // (M, Gp)
    int M, K, group, Gp;
    const uint8_t *panels;         // (pairs, K)
    const int16_t *scales;         // (2 · pairs, Gp)
    const float *channel_scales, *bias;
    int N;
    float *y;                      // (M, N)
    bool avx2;
} int4_job;

static inline void store_tile(const int4_job *job, int m, int mr, int n0, int32_t sums[Q4_MR][Q4_NR]) {
    int valid = job->N - n0 < Q4_NR ? job->N - n0 : Q4_NR;
    for (int r = 0; r < mr; r++) {
        float *out = job->y + (size_t)(m + r) * job->N + n0;
        for (int c = 0; c < valid; c++) {
            float value = (float)sums[r][c] * (job->row_scales[m + r] * job->channel_scales[n0 + c]);
            out[c] = job->bias ? value + job->bias[n0 + c] : value;
        }
    }
}

// Portable tile: the same integer sums, from the packed layout, in plain loops.
static void tile_portable(const int4_job *job, int m, int mr, int p, int32_t sums[Q4_MR][Q4_NR]) {
    const uint8_t *panel = job->panels + (size_t)p * job->K;
    for (int r = 0; r < mr; r++) {
        const int8_t *x = job->xq + (size_t)(m + r) * job->K;
        const int16_t *sx = job->sums + (size_t)(m + r) * job->Gp;
        for (int c = 0; c < Q4_NR; c++) {
            const int16_t *s = job->scales + (size_t)(Q4_NR * p + c) * job->Gp;
            int32_t sum = 0;
            for (int g = 0; g < job->K / job->group; g++) {
                int32_t dot = 0;
                for (int i = 0; i < job->group; i++) {
                    int k = g * job->group + i;
                    dot += ((panel[k] >> (4 * c)) & 0x0f) * (int32_t)x[k];
                }
                sum += s[g] * (dot - 8 * sx[g]);
            }
            sums[r][c] = sum;
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

// `mr` rows of x times channel pair p. `chunks_per_group` (G / 32) and `mr` are constants at every
// call site, so the chunk loop unrolls and the tile stays in registers.
SK_INLINE SK_TARGET_AVX2 void tile_avx2(const int4_job *job, int m, int mr, int p, int chunks_per_group,
                                        int32_t sums[Q4_MR][Q4_NR]) {
    const int K = job->K, group = chunks_per_group * Q4_CHUNK, groups = K / group, Gp = job->Gp;
    const uint8_t *panel = job->panels + (size_t)p * K;
    const int16_t *scale_low = job->scales + (size_t)(Q4_NR * p) * Gp, *scale_high = scale_low + Gp;
    const int8_t *x = job->xq + (size_t)m * K;
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    __m256i acc[Q4_MR][Q4_NR];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < groups; g++) {
        const __m256i s0 = _mm256_set1_epi16(scale_low[g]), s1 = _mm256_set1_epi16(scale_high[g]);
        for (int j = 0; j < chunks_per_group; j++) {
            const int k = g * group + j * Q4_CHUNK;
            __m256i bytes = _mm256_loadu_si256((const __m256i *)(panel + k));
            __m256i u0 = _mm256_and_si256(bytes, low_nibbles);                      // channel 2p
            __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles); // channel 2p + 1
            for (int r = 0; r < mr; r++) {
                __m256i xr = _mm256_loadu_si256((const __m256i *)(x + (size_t)r * K + k));
                // u·x pair sums (exact int16), then times the group scale and widened in one vpmaddwd.
                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(u0, xr), s0));
                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(u1, xr), s1));
            }
        }
    }
    // The offset: minus 8 · Σ_g s_g · (Σ x over g), 16 groups per step (padding groups are zero).
    for (int r = 0; r < mr; r++) {
        const int16_t *sx = job->sums + (size_t)(m + r) * Gp;
        for (int v = 0; v < Gp; v += Q4_GROUP_PAD) {
            __m256i group_sums = _mm256_loadu_si256((const __m256i *)(sx + v));
            __m256i c0 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(scale_low + v)), group_sums);
            __m256i c1 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(scale_high + v)), group_sums);
            acc[r][0] = _mm256_sub_epi32(acc[r][0], _mm256_slli_epi32(c0, 3));
            acc[r][1] = _mm256_sub_epi32(acc[r][1], _mm256_slli_epi32(c1, 3));
        }
    }
    for (int r = 0; r < mr; r++) {
        sums[r][0] = hsum_epi32(acc[r][0]);
        sums[r][1] = hsum_epi32(acc[r][1]);
    }
}

// One instance per (group size, rows) pair, so both are constants inside the tile.
#define Q4_TILE_FOR_GROUP(CHUNKS)                                              \
    switch (mr) {                                                              \
    case 4: tile_avx2(job, m, 4, p, CHUNKS, sums); break;                      \
    case 3: tile_avx2(job, m, 3, p, CHUNKS, sums); break;                      \
    case 2: tile_avx2(job, m, 2, p, CHUNKS, sums); break;                      \
    default: tile_avx2(job, m, 1, p, CHUNKS, sums); break;                     \
    }

SK_TARGET_AVX2 static void tile_avx2_for(const int4_job *job, int m, int mr, int p, int32_t sums[Q4_MR][Q4_NR]) {
    switch (job->group) {
    case 32: Q4_TILE_FOR_GROUP(1) break;
    case 64: Q4_TILE_FOR_GROUP(2) break;
    default: Q4_TILE_FOR_GROUP(4) break;
    }
}

SK_TARGET_AVX2 static void panels_avx2(const int4_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            int32_t sums[Q4_MR][Q4_NR];
            tile_avx2_for(job, m, mr, p, sums);
            store_tile(job, m, mr, p * Q4_NR, sums);
        }
    }
}
#endif

static void panels_portable(const int4_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            int32_t sums[Q4_MR][Q4_NR];
            tile_portable(job, m, mr, p, sums);
            store_tile(job, m, mr, p * Q4_NR, sums);
        }
    }
}

// One thread's share: channel pairs [p0, p1) against every row of x, a block of rows at a time.
static void run_pairs(void *context, int p0, int p1) {
    const int4_job *job = context;
    int block = Q4_X_BLOCK_BYTES / job->K / Q4_MR * Q4_MR;
    if (block < Q4_MR) block = Q4_MR;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->avx2) { panels_avx2(job, m0, m1, p0, p1); continue; }
#endif
        panels_portable(job, m0, m1, p0, p1);
    }
}

void sk_linear_int4(const int8_t *xq, const float *row_scales, const int16_t *sums, int M, int K, int group,
                    const void *packed, const float *channel_scales, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0 || !sk_int4_shape_ok(K, group)) return;
    int4_job job = {
        .xq = xq, .row_scales = row_scales, .sums = sums, .M = M, .K = K, .group = group,
        .Gp = sk_int4_padded_groups(K, group), .panels = packed, .scales = packed_scales(packed, N, K),
        .channel_scales = channel_scales, .bias = bias, .N = N, .y = y, .avx2 = sk_quant_has_avx2(),
    };
    int pairs = pairs_of(N);
    if ((double)M * N * K >= Q4_PARALLEL_MACS) sk_parallel_for(pairs, run_pairs, &job);
    else run_pairs(&job, 0, pairs);
}

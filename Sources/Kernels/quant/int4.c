// INT4 group-wise linear layer: y[m, n] = Σ_groups d_x · d_w · Σ_k xq · (code - 8) + b[n].
//
// W stays in its 4-bit blocks (quant_kernels.h describes them); per 32 inputs the kernel expands
// 16 bytes into 32 unsigned codes c in [0, 15] and multiplies them with the int8 activations using
// `vpmaddubsw` (unsigned × signed). The offset of 8 is removed afterwards with the activations'
// own pair sums: Σ (c - 8)·x = Σ c·x - Σ 8·x, where Σ 8·x comes from one more `vpmaddubsw` with a
// vector of eights per row chunk (shared by every channel of the tile). Nothing saturates:
// |c0·x0 + c1·x1| <= 2·15·128 = 3840 and |8·x0 + 8·x1| <= 2048, far inside int16.
// Each 32-input chunk's int32 sums are converted to float and accumulated with the scale d_x · d_w
// (larger groups share the scale across their 32-input chunks).
//
// Tiling as in int8.c: up to Q4_MR rows of x × Q4_NR rows of W per register tile, rows of x in
// blocks that stay in L2, channels split between threads. The rows of W are read in their storage
// layout (no repacking): Q4_NR sequential streams.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"
#include <assert.h>

_Static_assert(sizeof(sk_block_q4_32) == 2 + 16, "a 32-input block is a half scale and 16 bytes");
_Static_assert(sizeof(sk_block_q4_64) == 2 + 32, "a 64-input block is a half scale and 32 bytes");
_Static_assert(sizeof(sk_block_q4_128) == 2 + 64, "a 128-input block is a half scale and 64 bytes");

enum {
    Q4_CHUNK = 32,
    Q4_MR = 4,
    Q4_NR = 2,
    Q4_X_BLOCK_BYTES = 96 * 1024,
    Q4_PARALLEL_MACS = 1 << 20,
};

bool sk_int4_shape_ok(int K, int group) {
    return (group == 32 || group == 64 || group == 128) && K > 0 && K % group == 0;
}

static size_t block_bytes(int group) { return 2 + (size_t)group / 2; }
static size_t row_bytes(int K, int group) { return (size_t)(K / group) * block_bytes(group); }

size_t sk_int4_weights_bytes(int N, int K, int group) { return (size_t)N * row_bytes(K, group); }

// ---------------------------------------------------------------- quantization

void sk_quantize_weights_int4(const float *W, int N, int K, int group, void *blocks) {
    uint8_t *out = blocks;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < K / group; g++) {
            const float *w = W + (size_t)n * K + (size_t)g * group;
            uint8_t *block = out + ((size_t)n * (K / group) + g) * block_bytes(group);
            float extreme = 0.0f;   // the signed weight of largest magnitude
            for (int i = 0; i < group; i++) if (fabsf(w[i]) > fabsf(extreme)) extreme = w[i];
            float d = extreme / -8.0f;
            if (d > 65504.0f) d = 65504.0f;            // stay finite in half precision
            if (d < -65504.0f) d = -65504.0f;
            uint16_t d_half = sk_float_to_half_scalar(d);
            // Codes are computed against the scale as stored, so dequantization sees what was meant.
            float stored = sk_half_to_float_scalar(d_half);
            float inverse = stored != 0.0f ? 1.0f / stored : 0.0f;
            memcpy(block, &d_half, 2);
            uint8_t *qs = block + 2;
            for (int s = 0; s < group / Q4_CHUNK; s++) {
                for (int j = 0; j < 16; j++) {
                    int low = sk_round_clamp(w[s * 32 + j] * inverse, -8, 7) + 8;
                    int high = sk_round_clamp(w[s * 32 + j + 16] * inverse, -8, 7) + 8;
                    qs[s * 16 + j] = (uint8_t)(low | (high << 4));
                }
            }
        }
    }
}

void sk_dequantize_weights_int4(const void *blocks, int N, int K, int group, float *W) {
    const uint8_t *in = blocks;
    for (int n = 0; n < N; n++) {
        for (int g = 0; g < K / group; g++) {
            const uint8_t *block = in + ((size_t)n * (K / group) + g) * block_bytes(group);
            uint16_t d_half;
            memcpy(&d_half, block, 2);
            float d = sk_half_to_float_scalar(d_half);
            float *w = W + (size_t)n * K + (size_t)g * group;
            for (int s = 0; s < group / Q4_CHUNK; s++) {
                for (int j = 0; j < 16; j++) {
                    uint8_t byte = block[2 + s * 16 + j];
                    w[s * 32 + j] = (float)((int)(byte & 0x0f) - 8) * d;
                    w[s * 32 + j + 16] = (float)((int)(byte >> 4) - 8) * d;
                }
            }
        }
    }
}

void sk_quantize_rows_int8_grouped(const float *x, int M, int K, int group, int8_t *xq, float *scales) {
    bool avx2 = sk_quant_has_avx2();
    int groups = K / group;
    for (int m = 0; m < M; m++) {
        for (int g = 0; g < groups; g++) {
            const float *in = x + (size_t)m * K + (size_t)g * group;
            int8_t *out = xq + (size_t)m * K + (size_t)g * group;
#if SK_X86
            if (avx2) {
                float amax = sk_row_amax_avx2(in, group);
                scales[(size_t)m * groups + g] = amax / 127.0f;
                sk_quantize_row_avx2(in, group, group, amax > 0.0f ? 127.0f / amax : 0.0f, out);
                continue;
            }
#endif
            (void)avx2;
            float amax = 0.0f;
            for (int i = 0; i < group; i++) amax = fmaxf(amax, fabsf(in[i]));
            scales[(size_t)m * groups + g] = amax / 127.0f;
            float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
            for (int i = 0; i < group; i++) out[i] = (int8_t)sk_round_clamp(in[i] * inverse, -127, 127);
        }
    }
}

// ---------------------------------------------------------------- reference

void sk_linear_int4_reference(const int8_t *xq, const float *x_scales, int M, int K, int group,
                              const void *blocks, const float *bias, int N, float *y) {
    const uint8_t *in = blocks;
    int groups = K / group;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double sum = 0.0;
            for (int g = 0; g < groups; g++) {
                const uint8_t *block = in + ((size_t)n * groups + g) * block_bytes(group);
                uint16_t d_half;
                memcpy(&d_half, block, 2);
                const int8_t *x = xq + (size_t)m * K + (size_t)g * group;
                int32_t dot = 0;
                for (int s = 0; s < group / Q4_CHUNK; s++) {
                    for (int j = 0; j < 16; j++) {
                        uint8_t byte = block[2 + s * 16 + j];
                        dot += (int32_t)x[s * 32 + j] * ((int)(byte & 0x0f) - 8);
                        dot += (int32_t)x[s * 32 + j + 16] * ((int)(byte >> 4) - 8);
                    }
                }
                sum += (double)dot * x_scales[(size_t)m * groups + g] * sk_half_to_float_scalar(d_half);
            }
            y[(size_t)m * N + n] = (float)sum + (bias ? bias[n] : 0.0f);
        }
    }
}

// ---------------------------------------------------------------- fast kernel

typedef struct {
    const int8_t *xq;          // (M, K)
    const float *x_scales;     // (M, K/G)
    int M, K, group;
    const uint8_t *blocks;
    const float *bias;
    int N;
    float *y;
    bool avx2;
} int4_job;

static inline void store_tile(const int4_job *job, int m, int mr, int n0, int nr, float sums[Q4_MR][Q4_NR]) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++)
            job->y[(size_t)(m + r) * job->N + n0 + c] = sums[r][c] + (job->bias ? job->bias[n0 + c] : 0.0f);
}

// Portable tile: integer dot per 32-input chunk, scaled and summed in float like the AVX2 tile.
SK_INLINE void tile_portable(const int4_job *job, int m, int mr, int n0, int nr, float sums[Q4_MR][Q4_NR]) {
    int groups = job->K / job->group, chunks_per_group = job->group / Q4_CHUNK;
    size_t bb = block_bytes(job->group), rb = row_bytes(job->K, job->group);
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) sums[r][c] = 0.0f;
    for (int g = 0; g < groups; g++) {
        for (int c = 0; c < nr; c++) {
            const uint8_t *block = job->blocks + (size_t)(n0 + c) * rb + (size_t)g * bb;
            uint16_t d_half;
            memcpy(&d_half, block, 2);
            float dw = sk_half_to_float_scalar(d_half);
            for (int r = 0; r < mr; r++) {
                const int8_t *x = job->xq + (size_t)(m + r) * job->K + (size_t)g * job->group;
                int32_t dot = 0;
                for (int s = 0; s < chunks_per_group; s++) {
                    const uint8_t *qs = block + 2 + s * 16;
                    for (int j = 0; j < 16; j++) {
                        dot += (int32_t)x[s * 32 + j] * ((int)(qs[j] & 0x0f) - 8);
                        dot += (int32_t)x[s * 32 + j + 16] * ((int)(qs[j] >> 4) - 8);
                    }
                }
                sums[r][c] += (float)dot * (job->x_scales[(size_t)(m + r) * groups + g] * dw);
            }
        }
    }
}

#if SK_X86
SK_INLINE SK_TARGET_AVX2 float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SK_INLINE SK_TARGET_AVX2 void tile_avx2(const int4_job *job, int m, int mr, int n0, int nr, float sums[Q4_MR][Q4_NR]) {
    const int K = job->K, groups = K / job->group, chunks_per_group = job->group / Q4_CHUNK;
    const size_t bb = block_bytes(job->group), rb = row_bytes(K, job->group);
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f), eights = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    const int8_t *x = job->xq + (size_t)m * K;
    const float *xs = job->x_scales + (size_t)m * groups;
    __m256 acc[Q4_MR][Q4_NR];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) acc[r][c] = _mm256_setzero_ps();
    for (int g = 0; g < groups; g++) {
        const uint8_t *block[Q4_NR];
        float dw[Q4_NR];
        for (int c = 0; c < nr; c++) {
            block[c] = job->blocks + (size_t)(n0 + c) * rb + (size_t)g * bb;
            dw[c] = _cvtsh_ss(*(const uint16_t *)block[c]);
        }
        __m256 scale[Q4_MR][Q4_NR];
        for (int r = 0; r < mr; r++)
            for (int c = 0; c < nr; c++) scale[r][c] = _mm256_set1_ps(xs[(size_t)r * groups + g] * dw[c]);
        for (int s = 0; s < chunks_per_group; s++) {
            __m256i codes[Q4_NR];
            for (int c = 0; c < nr; c++) {
                // 16 bytes -> 32 codes: low nibbles are inputs 0..15, high nibbles 16..31.
                __m128i packed = _mm_loadu_si128((const __m128i *)(block[c] + 2 + s * 16));
                __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
                codes[c] = _mm256_and_si256(both, low_nibbles);
            }
            int k = g * job->group + s * Q4_CHUNK;
            for (int r = 0; r < mr; r++) {
                __m256i xr = _mm256_loadu_si256((const __m256i *)(x + (size_t)r * K + k));
                __m256i offset = _mm256_maddubs_epi16(eights, xr);            // 8·(x0 + x1) per pair
                for (int c = 0; c < nr; c++) {
                    __m256i pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(codes[c], xr), offset);
                    __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
                    acc[r][c] = _mm256_fmadd_ps(dot, scale[r][c], acc[r][c]);
                }
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < nr; c++) sums[r][c] = hsum_ps(acc[r][c]);
}

SK_TARGET_AVX2 static void channels_avx2(const int4_job *job, int m0, int m1, int n0, int n1) {
    for (int n = n0; n < n1; n += Q4_NR) {
        int nr = n1 - n < Q4_NR ? n1 - n : Q4_NR;
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            float sums[Q4_MR][Q4_NR];
            if (nr == Q4_NR) {
                switch (mr) {   // constant shapes let the compiler keep the tile in registers
                case 4: tile_avx2(job, m, 4, n, Q4_NR, sums); break;
                case 3: tile_avx2(job, m, 3, n, Q4_NR, sums); break;
                case 2: tile_avx2(job, m, 2, n, Q4_NR, sums); break;
                default: tile_avx2(job, m, 1, n, Q4_NR, sums); break;
                }
            } else {
                tile_avx2(job, m, mr, n, nr, sums);
            }
            store_tile(job, m, mr, n, nr, sums);
        }
    }
}
#endif

static void channels_portable(const int4_job *job, int m0, int m1, int n0, int n1) {
    for (int n = n0; n < n1; n += Q4_NR) {
        int nr = n1 - n < Q4_NR ? n1 - n : Q4_NR;
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            float sums[Q4_MR][Q4_NR];
            tile_portable(job, m, mr, n, nr, sums);
            store_tile(job, m, mr, n, nr, sums);
        }
    }
}

// One thread's share: channel pairs [p0, p1) against every row of x, a block of rows at a time.
static void run_pairs(void *context, int p0, int p1) {
    const int4_job *job = context;
    int n0 = p0 * Q4_NR, n1 = p1 * Q4_NR < job->N ? p1 * Q4_NR : job->N;
    int block = Q4_X_BLOCK_BYTES / job->K / Q4_MR * Q4_MR;
    if (block < Q4_MR) block = Q4_MR;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->avx2) { channels_avx2(job, m0, m1, n0, n1); continue; }
#endif
        channels_portable(job, m0, m1, n0, n1);
    }
}

void sk_linear_int4(const int8_t *xq, const float *x_scales, int M, int K, int group,
                    const void *blocks, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0 || !sk_int4_shape_ok(K, group)) return;
    int4_job job = {
        .xq = xq, .x_scales = x_scales, .M = M, .K = K, .group = group, .blocks = blocks,
        .bias = bias, .N = N, .y = y, .avx2 = sk_quant_has_avx2(),
    };
    int pairs = (N + Q4_NR - 1) / Q4_NR;
    if ((double)M * N * K >= Q4_PARALLEL_MACS) sk_parallel_for(pairs, run_pairs, &job);
    else run_pairs(&job, 0, pairs);
}

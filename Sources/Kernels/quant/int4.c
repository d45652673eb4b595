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
// Exactness: |u·x0 + u·x1| <= 2·15·128 = 3840 fits int16 (no vpmaddubsw saturation; vpdpbusd has no
// intermediate rounding at all); a group's Σ (u - 8)·x times |s| <= 127 fits int32; the whole sum is at
// most K·15·128·127, inside int32 for K <= 8192 (checked by sk_int4_shape_ok). So every path and the
// reference kernel agree bit for bit.
//
// Packed run-time layout (one for every path). Output channels in panels of Q4_NR = 16 (the int32
// lanes of a zmm), inputs in steps of 4 (the bytes one lane sums). For each pair of steps (8 inputs)
// a panel holds 64 bytes: byte 4c + i has channel c's code for input 8t + i in its low nibble and for
// input 8t + 4 + i in its high nibble. So one 64-byte load and three instructions (and, shift, and)
// give two steps of codes for 16 channels, ready for vpdpbusd (or, as two 32-byte halves of 8 channels,
// for vpmaddubsw). Padding channels hold code 8 (weight 0). After all panels: the group scales s as
// int8, for each panel and group the 16 channels' scales (padding channels 0).
//
// AVX-512 VNNI: a group's sum starts at -8 · (Σ x over the group) (the offset, broadcast per row),
// collects vpdpbusd(u, x) over the group's steps, and is multiplied by the channels' s (vpmulld) into
// the row's total. AVX2: vpmaddubsw(u, x) pair sums of two steps added in int16, then vpmaddwd by the
// channels' s (each duplicated to a pair) widens them to int32 with the scale applied, and the offset
// leaves as 8 · s · (Σ x over the group) once per group.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"

// The output step computes (float)sum * (row_scale * channel_scale) + bias in every path; forbid
// fusing it into an FMA in the AVX2 functions so all paths give identical floats.
#pragma STDC FP_CONTRACT OFF

enum {
    Q4_STEP = 4,                // inputs per int32 lane
    Q4_PAIR_INPUTS = 8,         // inputs per 64-byte panel step: two steps, low and high nibbles
    Q4_PAIR_BYTES = sizeof(sk_int4_panel_pair),
    Q4_MR = 4,                  // rows of x per register tile
    Q4_NR = SK_PANEL_CHANNELS,  // channels per panel
    Q4_GROUP_PAD = 16,          // the activation group sums' row length is a multiple of this
    Q4_MAX_K = 8192,            // keeps K·15·128·127 inside int32
    Q4_X_BLOCK_BYTES = 96 * 1024,
    Q4_PARALLEL_MACS = 1 << 20,
};

bool sk_int4_shape_ok(int K, int group) {
    return (group == 32 || group == 64 || group == 128) && K > 0 && K % group == 0 && K <= Q4_MAX_K;
}

int sk_int4_padded_groups(int K, int group) { return sk_round_up(K / group, Q4_GROUP_PAD); }

size_t sk_int4_codes_bytes(int N, int K) { return (size_t)N * (size_t)K / 2; }

static int panels_of(int N) { return (N + Q4_NR - 1) / Q4_NR; }

static size_t panel_code_bytes(int K) { return (size_t)(K / Q4_PAIR_INPUTS) * Q4_PAIR_BYTES; }

size_t sk_int4_packed_bytes(int N, int K, int group) {
    return (size_t)panels_of(N) * (panel_code_bytes(K) + (size_t)(K / group) * Q4_NR);
}

static const int8_t *packed_scales(const void *packed, int N, int K) {
    return (const int8_t *)((const uint8_t *)packed + (size_t)panels_of(N) * panel_code_bytes(K));
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
            // (u - 8) · fl(s · D): the group's step first, as one float, which is what a format with a
            // float scale per group stores (compressed-tensors' pack-quantized), so its weights are these.
            W[(size_t)n * K + k] = (float)(storage_code(codes, K, n, k) - 8) * ((float)s * channel_scales[n]);
        }
}

// Byte of code (n, k) inside the packed layout, and the nibble (0 low, 4 high) it sits in.
static inline size_t packed_code_index(int K, int n, int k, int *shift) {
    int t = k / Q4_PAIR_INPUTS, within = k % Q4_PAIR_INPUTS;
    *shift = within < Q4_STEP ? 0 : 4;
    return (size_t)(n / Q4_NR) * panel_code_bytes(K) + (size_t)t * Q4_PAIR_BYTES + (size_t)(n % Q4_NR) * Q4_STEP
         + (size_t)(within % Q4_STEP);
}

void sk_pack_weights_int4(const uint8_t *codes, const int8_t *group_scales, int N, int K, int group, void *packed) {
    int groups = K / group, panels = panels_of(N);
    uint8_t *bytes = packed;
    memset(bytes, 0x88, (size_t)panels * panel_code_bytes(K));   // padding channels: code 8, weight 0
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            int shift;
            uint8_t *byte = bytes + packed_code_index(K, n, k, &shift);
            *byte = (uint8_t)((*byte & ~(0x0f << shift)) | (storage_code(codes, K, n, k) << shift));
        }
    int8_t *scales = (int8_t *)packed_scales(packed, N, K);
    for (int p = 0; p < panels; p++)
        for (int g = 0; g < groups; g++)
            for (int c = 0; c < Q4_NR; c++) {
                int n = p * Q4_NR + c;
                scales[((size_t)p * groups + g) * Q4_NR + c] = n < N ? group_scales[(size_t)n * groups + g] : 0;
            }
}

void sk_unpack_weights_int4(const void *packed, int N, int K, int group, uint8_t *codes, int8_t *group_scales) {
    int groups = K / group;
    const uint8_t *bytes = packed;
    const int8_t *scales = packed_scales(packed, N, K);
    memset(codes, 0, sk_int4_codes_bytes(N, K));
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            int shift;
            int code = (bytes[packed_code_index(K, n, k, &shift)] >> shift) & 0x0f;
            codes[(size_t)n * (K / 2) + k / 2] |= (uint8_t)(k % 2 == 0 ? code : code << 4);
        }
        for (int g = 0; g < groups; g++)
            group_scales[(size_t)n * groups + g] = scales[((size_t)(n / Q4_NR) * groups + g) * Q4_NR + n % Q4_NR];
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

// ---------------------------------------------------------------- fast kernels

typedef struct {
    const int8_t *xq;              // (M, K)
    const float *row_scales;       // (M)
    const int16_t *sums;           // (M, Gp)
    int M, K, group, groups, Gp;
    const uint8_t *codes;          // panels of Q4_NR channels
    const int8_t *scales;          // (panels, groups, Q4_NR)
    const float *channel_scales, *bias;
    int N;
    float *y;                      // (M, N)
    int level;                     // sk_quant_kernel_level() when the call began
} int4_job;

static inline const uint8_t *panel_codes(const int4_job *job, int p) {
    return job->codes + (size_t)p * panel_code_bytes(job->K);
}

static inline const int8_t *panel_group_scales(const int4_job *job, int p, int g) {
    return ((const sk_int4_panel_scales *)job->scales)[(size_t)p * job->groups + g].scales;
}

// One panel's exact sums for `mr` rows into y (quant_common.h): the AVX2 and portable paths share it.
static inline void store_panel(const int4_job *job, int m, int mr, int n0, int32_t sums[][Q4_NR]) {
    sk_store_panel_sums(job->y, job->N, job->row_scales, job->channel_scales, job->bias, m, mr, n0, sums);
}

// Portable: up to Q4_MR rows times one panel, in plain loops over the packed layout.
static void panel_portable(const int4_job *job, int m, int mr, int p) {
    const uint8_t *codes = panel_codes(job, p);
    int32_t sums[Q4_MR][Q4_NR] = {{0}};
    for (int g = 0; g < job->groups; g++) {
        const int8_t *s = panel_group_scales(job, p, g);
        for (int r = 0; r < mr; r++) {
            const int8_t *x = job->xq + (size_t)(m + r) * job->K;
            for (int c = 0; c < Q4_NR; c++) {
                int32_t dot = 0;
                for (int k = g * job->group; k < (g + 1) * job->group; k++) {
                    int t = k / Q4_PAIR_INPUTS, within = k % Q4_PAIR_INPUTS;
                    uint8_t byte = codes[(size_t)t * Q4_PAIR_BYTES + c * Q4_STEP + within % Q4_STEP];
                    int u = within < Q4_STEP ? byte & 0x0f : byte >> 4;
                    dot += (u - 8) * (int32_t)x[k];
                }
                sums[r][c] += s[c] * dot;
            }
        }
    }
    store_panel(job, m, mr, p * Q4_NR, sums);
}

static void panels_portable(const int4_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++)
        for (int m = m0; m < m1; m += Q4_MR)
            panel_portable(job, m, m1 - m < Q4_MR ? m1 - m : Q4_MR, p);
}

#if SK_X86

// AVX2: `mr` rows times one panel as two ymm halves of 8 channels (see the top comment).
SK_INLINE SK_TARGET_AVX2 void panel_avx2(const int4_job *job, int m, int mr, int p, int pairs_per_group) {
    const uint8_t *codes = panel_codes(job, p);
    const int8_t *x = job->xq + (size_t)m * job->K;
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i acc[Q4_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < job->groups; g++) {
        // The 16 channels' s as int16, each duplicated to the pair vpmaddwd multiplies.
        __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)panel_group_scales(job, p, g)));
        __m256i low = _mm256_unpacklo_epi16(s, s), high = _mm256_unpackhi_epi16(s, s);
        __m256i scale[2] = {_mm256_permute2x128_si256(low, high, 0x20), _mm256_permute2x128_si256(low, high, 0x31)};
        for (int t = g * pairs_per_group; t < (g + 1) * pairs_per_group; t++) {
            const uint8_t *step = codes + (size_t)t * Q4_PAIR_BYTES;
            __m256i u_first[2], u_second[2];
            for (int h = 0; h < 2; h++) {
                __m256i bytes = _mm256_loadu_si256((const __m256i *)(step + 32 * h));
                u_first[h] = _mm256_and_si256(bytes, nibble);                        // inputs 8t .. 8t+3
                u_second[h] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble); // inputs 8t+4 .. 8t+7
            }
            for (int r = 0; r < mr; r++) {
                const int8_t *xr = x + (size_t)r * job->K + (size_t)t * Q4_PAIR_INPUTS;
                __m256i x_first = _mm256_set1_epi32(sk_load_i32(xr)), x_second = _mm256_set1_epi32(sk_load_i32(xr + 4));
                for (int h = 0; h < 2; h++) {
                    __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(u_first[h], x_first),
                                                     _mm256_maddubs_epi16(u_second[h], x_second));   // <= 7680
                    acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(pairs, scale[h]));
                }
            }
        }
        // The offset: minus 8 · s · (Σ x over the group), the sum as an int16 pair (sum, 0).
        for (int r = 0; r < mr; r++) {
            __m256i group_sum = _mm256_set1_epi32((uint16_t)job->sums[(size_t)(m + r) * job->Gp + g]);
            for (int h = 0; h < 2; h++)
                acc[r][h] = _mm256_sub_epi32(acc[r][h], _mm256_slli_epi32(_mm256_madd_epi16(scale[h], group_sum), 3));
        }
    }
    int32_t sums[Q4_MR][Q4_NR];
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_si256((__m256i *)sums[r], acc[r][0]);
        _mm256_storeu_si256((__m256i *)(sums[r] + 8), acc[r][1]);
    }
    store_panel(job, m, mr, p * Q4_NR, sums);
}

#define Q4_AVX2_FOR_GROUP(PAIRS)                                                \
    switch (mr) {                                                               \
    case 4: panel_avx2(job, m, 4, p, PAIRS); break;                             \
    case 3: panel_avx2(job, m, 3, p, PAIRS); break;                             \
    case 2: panel_avx2(job, m, 2, p, PAIRS); break;                             \
    default: panel_avx2(job, m, 1, p, PAIRS); break;                            \
    }

SK_TARGET_AVX2 static void panels_avx2(const int4_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            switch (job->group) {   // group size and rows constant inside the tile
            case 32: Q4_AVX2_FOR_GROUP(4) break;
            case 64: Q4_AVX2_FOR_GROUP(8) break;
            default: Q4_AVX2_FOR_GROUP(16) break;
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512 VNNI

enum { Q4_VNNI_NP = 2 };   // 4 rows × 2 panels: 8 group sums + 8 totals + 4 code vectors + broadcasts

SK_INLINE SK_TARGET_AVX512_VNNI void tile_vnni(const int4_job *job, int m, int mr, int p, int np, int pairs_per_group) {
    const size_t panel_bytes = panel_code_bytes(job->K);
    const uint8_t *codes = panel_codes(job, p);
    const int8_t *x = job->xq + (size_t)m * job->K;
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    __m512i total[Q4_MR][Q4_VNNI_NP];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < np; c++) total[r][c] = _mm512_setzero_si512();
    for (int g = 0; g < job->groups; g++) {
        __m512i group_sum[Q4_MR][Q4_VNNI_NP];
        for (int r = 0; r < mr; r++) {
            // Start at the offset's share, -8 · Σ x: the group's sum is then Σ (u - 8) · x.
            __m512i start = _mm512_set1_epi32(-8 * (int32_t)job->sums[(size_t)(m + r) * job->Gp + g]);
            for (int c = 0; c < np; c++) group_sum[r][c] = start;
        }
        for (int t = g * pairs_per_group; t < (g + 1) * pairs_per_group; t++) {
            __m512i u_first[Q4_VNNI_NP], u_second[Q4_VNNI_NP];
            for (int c = 0; c < np; c++) {
                __m512i bytes = _mm512_loadu_si512((const void *)(codes + c * panel_bytes + (size_t)t * Q4_PAIR_BYTES));
                u_first[c] = _mm512_and_si512(bytes, nibble);
                u_second[c] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), nibble);
            }
            for (int r = 0; r < mr; r++) {
                const int8_t *xr = x + (size_t)r * job->K + (size_t)t * Q4_PAIR_INPUTS;
                __m512i x_first = _mm512_set1_epi32(sk_load_i32(xr)), x_second = _mm512_set1_epi32(sk_load_i32(xr + 4));
                for (int c = 0; c < np; c++) {
                    group_sum[r][c] = _mm512_dpbusd_epi32(group_sum[r][c], u_first[c], x_first);
                    group_sum[r][c] = _mm512_dpbusd_epi32(group_sum[r][c], u_second[c], x_second);
                }
            }
        }
        for (int c = 0; c < np; c++) {
            __m512i s = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)panel_group_scales(job, p + c, g)));
            for (int r = 0; r < mr; r++) total[r][c] = _mm512_add_epi32(total[r][c], _mm512_mullo_epi32(group_sum[r][c], s));
        }
    }
    // Output: (float)sum · (row scale · channel scale) + bias, as store_panel does.
    for (int c = 0; c < np; c++) {
        int n0 = (p + c) * Q4_NR;
        int valid = job->N - n0 < Q4_NR ? job->N - n0 : Q4_NR;
        for (int r = 0; r < mr; r++)
            sk_store_dequantized_avx512(job->y + (size_t)(m + r) * job->N + n0, total[r][c], job->row_scales[m + r],
                                        job->channel_scales + n0, job->bias ? job->bias + n0 : NULL, valid);
    }
}

#define Q4_VNNI_FOR_ROWS(NP, PAIRS)                                             \
    switch (mr) {                                                               \
    case 4: tile_vnni(job, m, 4, p, NP, PAIRS); break;                          \
    case 3: tile_vnni(job, m, 3, p, NP, PAIRS); break;                          \
    case 2: tile_vnni(job, m, 2, p, NP, PAIRS); break;                          \
    default: tile_vnni(job, m, 1, p, NP, PAIRS); break;                         \
    }

#define Q4_VNNI_FOR_GROUP(PAIRS)                                                \
    if (np == 2) { Q4_VNNI_FOR_ROWS(2, PAIRS) } else { Q4_VNNI_FOR_ROWS(1, PAIRS) }

SK_TARGET_AVX512_VNNI static void panels_vnni(const int4_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p += Q4_VNNI_NP) {
        int np = p1 - p < Q4_VNNI_NP ? p1 - p : Q4_VNNI_NP;
        for (int m = m0; m < m1; m += Q4_MR) {
            int mr = m1 - m < Q4_MR ? m1 - m : Q4_MR;
            switch (job->group) {
            case 32: Q4_VNNI_FOR_GROUP(4) break;
            case 64: Q4_VNNI_FOR_GROUP(8) break;
            default: Q4_VNNI_FOR_GROUP(16) break;
            }
        }
    }
}
#endif

// One thread's share: panels [p0, p1) against every row of x, a block of rows at a time.
static void run_panels(void *context, int p0, int p1) {
    const int4_job *job = context;
    int block = Q4_X_BLOCK_BYTES / job->K / Q4_MR * Q4_MR;
    if (block < Q4_MR) block = Q4_MR;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->level >= SK_KERNELS_AVX512_VNNI) { panels_vnni(job, m0, m1, p0, p1); continue; }
        if (job->level >= SK_KERNELS_AVX2) { panels_avx2(job, m0, m1, p0, p1); continue; }
#endif
        panels_portable(job, m0, m1, p0, p1);
    }
}

void sk_linear_int4(const int8_t *xq, const float *row_scales, const int16_t *sums, int M, int K, int group,
                    const void *packed, const float *channel_scales, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0 || !sk_int4_shape_ok(K, group)) return;
    int4_job job = {
        .xq = xq, .row_scales = row_scales, .sums = sums, .M = M, .K = K, .group = group, .groups = K / group,
        .Gp = sk_int4_padded_groups(K, group), .codes = packed, .scales = packed_scales(packed, N, K),
        .channel_scales = channel_scales, .bias = bias, .N = N, .y = y, .level = sk_quant_kernel_level(),
    };
    int panels = panels_of(N);
    if ((double)M * N * K >= Q4_PARALLEL_MACS) sk_parallel_for(panels, run_panels, &job);
    else run_panels(&job, 0, panels);
}

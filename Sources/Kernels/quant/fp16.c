// FP16-weight linear layer: y = x · Wᵀ + b with W held as IEEE half and the arithmetic in float.
//
// The packed layout is a transposed strip per 16 output channels: panel p holds, for k = 0..K-1,
// the 16 halves W[16p .. 16p+15, k]. One step of the register tile converts those 16 weights with
// F16C (two `vcvtph2ps`) and multiplies them into up to FP16_MR rows of x, each x[m, k] broadcast
// once: 2 conversions feed 2·FP16_MR FMAs, so the conversion costs little and each converted
// panel row is reused across rows of x. Accumulators hold whole output rows of the tile (no
// horizontal sums). Rows of x go in blocks that stay in L2 while the panels stream past, and the
// panels are split between threads. With AVX-512 one zmm holds a whole panel row: one `vcvtph2ps`
// per panel and step feeds FP16_ZMM_MR FMAs, and three panels share each broadcast of x.
#include "quant_common.h"
#include "quant_kernels.h"
#include "parallel.h"

enum {
    FP16_NR = 16,                      // output channels per panel (two ymm of float)
    FP16_MR = 6,                       // rows of x per tile: 12 accumulators + 2 weights + 1 broadcast
    FP16_X_BLOCK_BYTES = 128 * 1024,
    FP16_PARALLEL_MACS = 1 << 20,
};

size_t sk_fp16_packed_bytes(int N, int K) {
    return (size_t)((N + FP16_NR - 1) / FP16_NR) * FP16_NR * (size_t)K * sizeof(uint16_t);
}

void sk_pack_weights_fp16(const uint16_t *Wh, int N, int K, uint16_t *packed) {
    int panels = (N + FP16_NR - 1) / FP16_NR;
    for (int p = 0; p < panels; p++) {
        uint16_t *panel = packed + (size_t)p * FP16_NR * K;
        for (int k = 0; k < K; k++) {
            for (int c = 0; c < FP16_NR; c++) {
                int n = p * FP16_NR + c;
                panel[(size_t)k * FP16_NR + c] = n < N ? Wh[(size_t)n * K + k] : 0;
            }
        }
    }
}

void sk_unpack_weights_fp16(const uint16_t *packed, int N, int K, uint16_t *Wh) {
    for (int n = 0; n < N; n++) {
        const uint16_t *panel = packed + (size_t)(n / FP16_NR) * FP16_NR * K;
        for (int k = 0; k < K; k++) Wh[(size_t)n * K + k] = panel[(size_t)k * FP16_NR + n % FP16_NR];
    }
}

void sk_linear_fp16_reference(const float *x, int M, int K, const uint16_t *Wh, const float *bias, int N, float *y) {
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double sum = 0.0;
            for (int k = 0; k < K; k++) sum += (double)x[(size_t)m * K + k] * sk_half_to_float_scalar(Wh[(size_t)n * K + k]);
            y[(size_t)m * N + n] = (float)sum + (bias ? bias[n] : 0.0f);
        }
    }
}

typedef struct {
    const float *x;            // (M, K)
    int M, K;
    const uint16_t *packed;
    const float *bias;
    int N;
    float *y;                  // (M, N)
    int level;                 // sk_quant_kernel_level() when the call began
} fp16_job;

// Adds the bias and writes the real channels of a finished tile.
static inline void store_tile(const fp16_job *job, int m, int mr, int n0, float sums[FP16_MR][FP16_NR]) {
    int valid = job->N - n0 < FP16_NR ? job->N - n0 : FP16_NR;
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < valid; c++)
            job->y[(size_t)(m + r) * job->N + n0 + c] = sums[r][c] + (job->bias ? job->bias[n0 + c] : 0.0f);
}

SK_INLINE void tile_portable(const fp16_job *job, int m, int mr, const uint16_t *panel, float sums[FP16_MR][FP16_NR]) {
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < FP16_NR; c++) sums[r][c] = 0.0f;
    for (int k = 0; k < job->K; k++) {
        float w[FP16_NR];
        for (int c = 0; c < FP16_NR; c++) w[c] = sk_half_to_float_scalar(panel[(size_t)k * FP16_NR + c]);
        for (int r = 0; r < mr; r++) {
            float xv = job->x[(size_t)(m + r) * job->K + k];
            for (int c = 0; c < FP16_NR; c++) sums[r][c] += xv * w[c];
        }
    }
}

#if SK_X86
SK_INLINE SK_TARGET_AVX2 void tile_avx2(const fp16_job *job, int m, int mr, const uint16_t *panel, float sums[FP16_MR][FP16_NR]) {
    const int K = job->K;
    const float *x = job->x + (size_t)m * K;
    __m256 acc[FP16_MR][2];
    for (int r = 0; r < mr; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(panel + (size_t)k * FP16_NR)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(panel + (size_t)k * FP16_NR + 8)));
        for (int r = 0; r < mr; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)r * K + k);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_ps(sums[r], acc[r][0]);
        _mm256_storeu_ps(sums[r] + 8, acc[r][1]);
    }
}

SK_TARGET_AVX2 static void panels_avx2(const fp16_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        const uint16_t *panel = job->packed + (size_t)p * FP16_NR * job->K;
        for (int m = m0; m < m1; m += FP16_MR) {
            int mr = m1 - m < FP16_MR ? m1 - m : FP16_MR;
            float sums[FP16_MR][FP16_NR];
            switch (mr) {   // constant mr lets the compiler keep the tile in registers
            case 6: tile_avx2(job, m, 6, panel, sums); break;
            case 5: tile_avx2(job, m, 5, panel, sums); break;
            case 4: tile_avx2(job, m, 4, panel, sums); break;
            case 3: tile_avx2(job, m, 3, panel, sums); break;
            case 2: tile_avx2(job, m, 2, panel, sums); break;
            default: tile_avx2(job, m, 1, panel, sums); break;
            }
            store_tile(job, m, mr, p * FP16_NR, sums);
        }
    }
}

// ---------------------------------------------------------------- AVX-512

enum { FP16_ZMM_MR = 8, FP16_ZMM_NP = 3 };   // 24 accumulators + 3 weight rows + 1 broadcast of 32 zmm

SK_INLINE SK_TARGET_AVX512_VNNI void tile_avx512(const fp16_job *job, int m, int mr, int p, int np) {
    const int K = job->K;
    const size_t panel_halves = (size_t)FP16_NR * K;
    const uint16_t *panel = job->packed + (size_t)p * panel_halves;
    const float *x = job->x + (size_t)m * K;
    __m512 acc[FP16_ZMM_MR][FP16_ZMM_NP];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < np; c++) acc[r][c] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 w[FP16_ZMM_NP];
        for (int c = 0; c < np; c++)
            w[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(panel + c * panel_halves + (size_t)k * FP16_NR)));
        for (int r = 0; r < mr; r++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)r * K + k]);
            for (int c = 0; c < np; c++) acc[r][c] = _mm512_fmadd_ps(xv, w[c], acc[r][c]);
        }
    }
    for (int c = 0; c < np; c++) {
        int n0 = (p + c) * FP16_NR;
        int valid = job->N - n0 < FP16_NR ? job->N - n0 : FP16_NR;
        __mmask16 lanes = (__mmask16)((1u << valid) - 1u);
        __m512 bias = job->bias ? _mm512_maskz_loadu_ps(lanes, job->bias + n0) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++)
            _mm512_mask_storeu_ps(job->y + (size_t)(m + r) * job->N + n0, lanes, _mm512_add_ps(acc[r][c], bias));
    }
}

#define FP16_ZMM_FOR_ROWS(NP)                                                   \
    switch (mr) {                                                               \
    case 8: tile_avx512(job, m, 8, p, NP); break;                               \
    case 7: tile_avx512(job, m, 7, p, NP); break;                               \
    case 6: tile_avx512(job, m, 6, p, NP); break;                               \
    case 5: tile_avx512(job, m, 5, p, NP); break;                               \
    case 4: tile_avx512(job, m, 4, p, NP); break;                               \
    case 3: tile_avx512(job, m, 3, p, NP); break;                               \
    case 2: tile_avx512(job, m, 2, p, NP); break;                               \
    default: tile_avx512(job, m, 1, p, NP); break;                              \
    }

SK_TARGET_AVX512_VNNI static void panels_avx512(const fp16_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p += FP16_ZMM_NP) {
        int np = p1 - p < FP16_ZMM_NP ? p1 - p : FP16_ZMM_NP;
        for (int m = m0; m < m1; m += FP16_ZMM_MR) {
            int mr = m1 - m < FP16_ZMM_MR ? m1 - m : FP16_ZMM_MR;
            if (np == 3) { FP16_ZMM_FOR_ROWS(3) }
            else if (np == 2) { FP16_ZMM_FOR_ROWS(2) }
            else { FP16_ZMM_FOR_ROWS(1) }
        }
    }
}
#endif

static void panels_portable(const fp16_job *job, int m0, int m1, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        const uint16_t *panel = job->packed + (size_t)p * FP16_NR * job->K;
        for (int m = m0; m < m1; m += FP16_MR) {
            int mr = m1 - m < FP16_MR ? m1 - m : FP16_MR;
            float sums[FP16_MR][FP16_NR];
            tile_portable(job, m, mr, panel, sums);
            store_tile(job, m, mr, p * FP16_NR, sums);
        }
    }
}

static void run_panels(void *context, int p0, int p1) {
    const fp16_job *job = context;
    int block = job->K > 0 ? FP16_X_BLOCK_BYTES / (job->K * (int)sizeof(float)) / FP16_MR * FP16_MR : job->M;
    if (block < FP16_MR) block = FP16_MR;
    for (int m0 = 0; m0 < job->M; m0 += block) {
        int m1 = job->M - m0 < block ? job->M : m0 + block;
#if SK_X86
        if (job->level >= SK_KERNELS_AVX512_VNNI) { panels_avx512(job, m0, m1, p0, p1); continue; }
        if (job->level >= SK_KERNELS_AVX2) { panels_avx2(job, m0, m1, p0, p1); continue; }
#endif
        panels_portable(job, m0, m1, p0, p1);
    }
}

void sk_linear_fp16(const float *x, int M, int K, const uint16_t *packed, const float *bias, int N, float *y) {
    if (M <= 0 || N <= 0) return;
    fp16_job job = {.x = x, .M = M, .K = K, .packed = packed, .bias = bias, .N = N, .y = y, .level = sk_quant_kernel_level()};
    int panels = (N + FP16_NR - 1) / FP16_NR;
    if ((double)M * N * K >= FP16_PARALLEL_MACS) sk_parallel_for(panels, run_panels, &job);
    else run_panels(&job, 0, panels);
}

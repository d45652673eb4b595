// Memory-bound element-wise helpers of the transformer: residual adds, bias broadcast and bias
// gradients, dropout masks. They move data at memory speed already with the compiler's baseline
// vectorisation, so they have no separate SIMD path; a large residual add is split over the kernel
// threads, since one core alone does not saturate the memory bus.
#include "kernels.h"
#include "parallel.h"
#include "simd_math.h"

static void add_range_portable(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// The same loop compiled for AVX-512: a residual add at batch 1 is small enough to run from cache,
// where the baseline build's 4-wide SSE loop, not memory, is the limit.
SK_AVX512F static void add_range_avx512(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void add_range(float *out, const float *a, const float *b, long n) {
    if (sk_cpu_has_avx512()) add_range_avx512(out, a, b, n);
    else add_range_portable(out, a, b, n);
}

enum { SK_ADD_BLOCK = 4096, SK_ADD_PARALLEL_ELEMENTS = 1 << 17 };

typedef struct { float *out; const float *a, *b; long n; } add_job;

// Blocks [begin, end) of SK_ADD_BLOCK elements, the last one shorter.
static void add_blocks(void *context, int begin, int end) {
    const add_job *job = context;
    long first = (long)begin * SK_ADD_BLOCK, last = (long)end * SK_ADD_BLOCK;
    if (last > job->n) last = job->n;
    add_range(job->out + first, job->a + first, job->b + first, last - first);
}

void sk_add(float *out, const float *a, const float *b, long n) {
    if (n < SK_ADD_PARALLEL_ELEMENTS) { add_range(out, a, b, n); return; }
    add_job job = {.out = out, .a = a, .b = b, .n = n};
    sk_parallel_for((int)((n + SK_ADD_BLOCK - 1) / SK_ADD_BLOCK), add_blocks, &job);
}

void sk_accumulate(float *out, const float *a, long n) {
    for (long i = 0; i < n; i++) out[i] += a[i];
}

void sk_mul(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void sk_broadcast_rows(float *out, const float *row, int rows, int cols) {
    for (long r = 0; r < rows; r++) {
        float *o = out + r * cols;
        for (int c = 0; c < cols; c++) o[c] = row[c];
    }
}

void sk_add_column_sums(float *sums, const float *inp, int rows, int cols) {
    for (long r = 0; r < rows; r++) {
        const float *x = inp + r * cols;
        for (int c = 0; c < cols; c++) sums[c] += x[c];
    }
}

// splitmix64's output function on a counter: every (seed, stream, index) gives an independent
// 64-bit value, so a mask can be regenerated or filled in any order and by any thread.
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sk_dropout_mask(float *mask, long n, float p, uint64_t seed, uint64_t stream) {
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t base = seed ^ mix64(stream + 0xD1B54A32D192ED03ULL);
    for (long i = 0; i < n; i++) {
        uint64_t bits = mix64(base + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL);
        float u = (float)(bits >> 40) * (1.0f / 16777216.0f);     // uniform in [0, 1), 24 bits
        mask[i] = u < p ? 0.0f : scale;
    }
}

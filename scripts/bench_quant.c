// Timing of the quantized linear kernels against OpenBLAS sgemm on the same shapes.
// Not a test: run by hand with scripts/bench_quant.sh [group] [sgemm|int8|int4|fp16]. Prints one line per (kernel, shape, threads)
// with the best time of several repetitions and the GFLOP/s equivalent (2·M·N·K per call).
#include "kernels.h"
#include "quant_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static double now(void) { return clock_seconds(CLOCK_MONOTONIC); }
// Process CPU time: on a shared, oversubscribed machine the single-thread figure stays meaningful
// (time spent descheduled is not counted); with 2 threads it adds up both threads' time.
static double cpu_now(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

typedef struct {
    int M, N, K, group;
    float *x, *W, *bias, *y;
    int8_t *xq, *Wq, *packed8;
    float *row_scales, *weight_scales, *channel_scales4;
    int16_t *group_sums;
    void *packed4;
    uint16_t *Wh, *packed16;
} problem;

typedef void (*kernel_fn)(problem *);

static void run_sgemm(problem *p) {
    sk_sgemm(false, true, p->M, p->N, p->K, 1.0f, p->x, p->K, p->W, p->K, 0.0f, p->y, p->N);
}
// Dynamic INT8 as a layer runs it: quantize the activations, then the integer product.
static void run_int8(problem *p) {
    sk_quantize_rows_int8(p->x, p->M, p->K, 0.0f, p->xq, p->row_scales);
    sk_linear_int8(p->xq, p->row_scales, p->M, p->K, p->packed8, p->weight_scales, p->bias, p->N, p->y);
}
// INT4 as a layer runs it: per-row int8 activations and their group sums, then the product.
static void run_int4(problem *p) {
    sk_quantize_rows_int8(p->x, p->M, p->K, 0.0f, p->xq, p->row_scales);
    sk_int4_activation_sums(p->xq, p->M, p->K, p->group, p->group_sums);
    sk_linear_int4(p->xq, p->row_scales, p->group_sums, p->M, p->K, p->group, p->packed4, p->channel_scales4,
                   p->bias, p->N, p->y);
}
static void run_fp16(problem *p) { sk_linear_fp16(p->x, p->M, p->K, p->packed16, p->bias, p->N, p->y); }

static double best_seconds(kernel_fn fn, problem *p, double *best_cpu) {
    fn(p);   // warm caches and the thread pool
    double best = 1e9;
    *best_cpu = 1e9;
    for (int round = 0; round < 7; round++) {
        int calls = 0;
        double start = now(), cpu_start = cpu_now(), elapsed;
        do { fn(p); calls++; elapsed = now() - start; } while (elapsed < 0.06);
        double cpu = cpu_now() - cpu_start;
        if (elapsed / calls < best) best = elapsed / calls;
        if (cpu / calls < *best_cpu) *best_cpu = cpu / calls;
    }
    return best;
}

int main(int argc, char **argv) {
    int shapes[][3] = {{1, 768, 768}, {1, 768, 3072}, {32, 768, 768}, {32, 768, 3072}, {32, 3072, 768}, {1024, 768, 3072}};
    int group = argc > 1 ? atoi(argv[1]) : 32;
    const char *only = argc > 2 ? argv[2] : NULL;
    printf("best kernels: %s, int4 group %d\n", sk_quant_kernel_name(sk_quant_max_kernel_level()), group);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p = {.M = shapes[s][0], .K = shapes[s][1], .N = shapes[s][2], .group = group};
        int M = p.M, N = p.N, K = p.K, Kp = sk_int8_padded_k(K);
        p.x = malloc(sizeof(float) * M * K);
        p.W = malloc(sizeof(float) * N * K);
        p.bias = malloc(sizeof(float) * N);
        p.y = malloc(sizeof(float) * M * N);
        for (long i = 0; i < (long)M * K; i++) p.x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < (long)N * K; i++) p.W[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.1f;
        for (int i = 0; i < N; i++) p.bias[i] = 0.01f * i;
        p.xq = malloc((size_t)M * Kp);
        p.row_scales = malloc(sizeof(float) * M);
        p.group_sums = malloc(sizeof(int16_t) * M * sk_int4_padded_groups(K, group));
        p.Wq = malloc((size_t)N * K);
        p.weight_scales = malloc(sizeof(float) * N);
        p.packed8 = malloc(sk_int8_packed_bytes(N, K));
        sk_quantize_weights_int8_per_channel(p.W, N, K, p.Wq, p.weight_scales);
        sk_pack_weights_int8(p.Wq, N, K, p.packed8);
        uint8_t *codes4 = malloc(sk_int4_codes_bytes(N, K));
        int8_t *group_scales4 = malloc((size_t)N * (K / group));
        p.channel_scales4 = malloc(sizeof(float) * N);
        sk_quantize_weights_int4(p.W, N, K, group, codes4, group_scales4, p.channel_scales4);
        p.packed4 = malloc(sk_int4_packed_bytes(N, K, group));
        sk_pack_weights_int4(codes4, group_scales4, N, K, group, p.packed4);
        free(codes4);
        free(group_scales4);
        p.Wh = malloc(sizeof(uint16_t) * N * K);
        sk_float_to_half(p.W, p.Wh, (size_t)N * K);
        p.packed16 = malloc(sk_fp16_packed_bytes(N, K));
        sk_pack_weights_fp16(p.Wh, N, K, p.packed16);

        struct { const char *name; kernel_fn fn; } kernels[] = {
            {"sgemm", run_sgemm}, {"int8", run_int8}, {"int4", run_int4}, {"fp16", run_fp16}};
        for (int threads = 1; threads <= 2; threads++) {
            sk_set_threads(threads);
            for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++) {
                if (only && strcmp(only, kernels[k].name) != 0) continue;
                // Every SIMD level the CPU has (the portable one is for correctness, not speed).
                for (int level = sk_quant_max_kernel_level(); level >= SK_KERNELS_AVX2; level--) {
                    if (k == 0 && level != sk_quant_max_kernel_level()) continue;   // sgemm: OpenBLAS's own choice
                    sk_quant_set_kernel_level(level);
                    double cpu, seconds = best_seconds(kernels[k].fn, &p, &cpu);
                    printf("%-6s %-11s M=%-5d K=%-5d N=%-5d threads=%d  wall %9.1f us %7.1f GFLOP/s   cpu %9.1f us %7.1f GFLOP/s\n",
                           kernels[k].name, k == 0 ? (sk_sgemm_nt_avx512_available() ? "avx512+blas" : sk_sgemm_nt_avx2_available() ? "avx2+blas" : "openblas") : sk_quant_kernel_name(level), M, K, N, threads,
                           seconds * 1e6, 2.0 * M * N * K / seconds * 1e-9, cpu * 1e6, 2.0 * M * N * K / cpu * 1e-9);
                }
                sk_quant_set_kernel_level(-1);
            }
        }
        free(p.x); free(p.W); free(p.bias); free(p.y); free(p.xq); free(p.row_scales); free(p.group_sums); free(p.channel_scales4);
        free(p.Wq); free(p.weight_scales); free(p.packed8); free(p.packed4); free(p.Wh); free(p.packed16);
    }
    return 0;
}

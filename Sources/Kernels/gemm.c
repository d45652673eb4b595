// GEMM through OpenBLAS (or, for a linear layer's forward, gemm_avx512.c / gemm_avx2.c), split across the
// kernels' own thread pool, with the plain loop it must agree with.
//
// OpenBLAS always runs single-threaded here: its worker threads busy-wait (sched_yield) between calls,
// and on a 2-core machine they fight the host's own threads (the parallel loops of parallel.c, the
// optimizer) for the second core. Instead a large product is cut into column (or row) slices, one per
// thread of sk_parallel_for, each a single-threaded OpenBLAS call; a small one (attention heads at
// batch 1, head linears) stays on the calling thread, where waking a second thread costs more than
// it saves. One pool serves GEMMs and element-wise loops, so nothing spins against anything else.
#include "kernels.h"
#include "parallel.h"
#include <cblas.h>

static int sk_threads = 1;

// Below this many multiply-adds a product runs on the calling thread alone (about 20 µs of work).
enum { SK_SGEMM_PARALLEL_MACS = 1 << 19 };
// Slices start at multiples of this many columns/rows: OpenBLAS's register tiles stay whole and
// every slice of C starts on a 64-byte boundary when the row does.
enum { SK_SGEMM_SLICE_ALIGN = 16 };
// Below this many rows a linear layer's forward uses the AVX2 dot-product kernel on CPUs without AVX-512.
enum { SK_SGEMM_NT_AVX2_MAX_ROWS = 128 };

void sk_set_threads(int threads) {
    if (threads < 1) threads = 1;
    sk_threads = threads;
    openblas_set_num_threads(1);
}

int sk_get_threads(void) { return sk_threads; }

static void sgemm_one_thread(bool transpose_a, bool transpose_b, int M, int N, int K,
                             float alpha, const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc) {
    // A linear layer's forward (x · Wᵀ) on AVX-512 when the CPU has it, at any number of rows
    // (gemm_avx512.c picks dot products or packed strips by the row count).
    if (!transpose_a && transpose_b && sk_sgemm_nt_avx512(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    // Without AVX-512, the same product at the row counts of inference on AVX2 + FMA (gemm_avx2.c);
    // from SK_SGEMM_NT_AVX2_MAX_ROWS rows on, OpenBLAS's packed kernels win.
    if (!transpose_a && transpose_b && M < SK_SGEMM_NT_AVX2_MAX_ROWS &&
        sk_sgemm_nt_avx2(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

typedef struct {
    bool transpose_a, transpose_b, split_columns;
    int M, N, K, parts, blocks;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} sgemm_job;

// Parts [begin, end) of the job: a contiguous range of SK_SGEMM_SLICE_ALIGN-wide blocks of C's
// columns (or rows), cut as evenly as the blocks allow.
static void sgemm_parts(void *context, int begin, int end) {
    const sgemm_job *job = context;
    int extent = job->split_columns ? job->N : job->M;
    int first = (int)((long)job->blocks * begin / job->parts) * SK_SGEMM_SLICE_ALIGN;
    int last = (int)((long)job->blocks * end / job->parts) * SK_SGEMM_SLICE_ALIGN;
    if (last > extent) last = extent;
    if (first >= last) return;
    int count = last - first;
    if (job->split_columns) {
        // C[:, first:last] = op(A) @ op(B)[:, first:last]; op(B) column j is row j of B when transposed.
        const float *b = job->transpose_b ? job->B + (long)first * job->ldb : job->B + first;
        sgemm_one_thread(job->transpose_a, job->transpose_b, job->M, count, job->K, job->alpha, job->A, job->lda,
                         b, job->ldb, job->beta, job->C + first, job->ldc);
    } else {
        // C[first:last, :] = op(A)[first:last, :] @ op(B); op(A) row i is column i of A when transposed.
        const float *a = job->transpose_a ? job->A + first : job->A + (long)first * job->lda;
        sgemm_one_thread(job->transpose_a, job->transpose_b, count, job->N, job->K, job->alpha, a, job->lda,
                         job->B, job->ldb, job->beta, job->C + (long)first * job->ldc, job->ldc);
    }
}

void sk_sgemm(bool transpose_a, bool transpose_b, int M, int N, int K,
              float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    int threads = sk_threads;
    // Split the longer side of C: the weights' output features in a linear layer, the rows in a
    // weight gradient whose output side is short.
    bool split_columns = N >= M;
    int extent = split_columns ? N : M;
    int blocks = (extent + SK_SGEMM_SLICE_ALIGN - 1) / SK_SGEMM_SLICE_ALIGN;
    if (threads < 2 || (double)M * N * K < SK_SGEMM_PARALLEL_MACS || blocks < 2) {
        sgemm_one_thread(transpose_a, transpose_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int parts = threads < blocks ? threads : blocks;
    sgemm_job job = {
        .transpose_a = transpose_a, .transpose_b = transpose_b, .split_columns = split_columns,
        .M = M, .N = N, .K = K, .parts = parts, .blocks = blocks, .alpha = alpha, .beta = beta,
        .A = A, .B = B, .C = C, .lda = lda, .ldb = ldb, .ldc = ldc,
    };
    // Inside another parallel loop (or with the pool busy) this runs every part on this thread.
    sk_parallel_for(parts, sgemm_parts, &job);
}

void sk_sgemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double sum = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transpose_a ? A[k * lda + m] : A[m * lda + k];
                float b = transpose_b ? B[n * ldb + k] : B[k * ldb + n];
                sum += (double)a * (double)b;
            }
            float previous = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
            C[m * ldc + n] = alpha * (float)sum + previous;
        }
    }
}

// Persistent pthread pool behind sk_parallel_for.
//
// The quantized linear layers take 50 µs to a few ms, so waking sleeping threads through a condition
// variable on every call would cost a noticeable share. Workers therefore spin for a short while
// after each job (about 100 µs) watching a generation counter, and only then go to sleep on the
// condition variable; back-to-back layers of a forward pass find them awake.
#include "parallel.h"
#include "kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define sk_cpu_relax() _mm_pause()
#else
#define sk_cpu_relax() ((void)0)
#endif

enum { SK_MAX_THREADS = 64, SK_SPIN_ROUNDS = 20000 };

typedef struct {
    pthread_mutex_t mutex;          // guards sleeping workers and starting threads
    pthread_cond_t wake;
    pthread_mutex_t busy;           // held by the one caller that owns the pool during a loop
    int started_workers;
    unsigned start_generation[SK_MAX_THREADS];
    // The job being run; written by the owner before `generation` is bumped.
    sk_parallel_fn fn;
    void *context;
    int n, parts;
    atomic_uint generation;
    atomic_int remaining;           // workers that have not yet acknowledged this generation
} sk_pool;

static sk_pool pool = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local bool inside_parallel_loop = false;

static void run_part(int part, int parts, int n, sk_parallel_fn fn, void *context) {
    int begin = (int)((long)n * part / parts);
    int end = (int)((long)n * (part + 1) / parts);
    if (begin < end) fn(context, begin, end);
}

static void *worker_main(void *argument) {
    int worker = (int)(long)argument;       // 1-based: part 0 belongs to the calling thread
    inside_parallel_loop = true;
    // The generation current when this worker was started (the owner holds the pool then, so it
    // cannot move): the worker must take part in the very next one.
    unsigned seen = pool.start_generation[worker];
    for (;;) {
        unsigned now = seen;
        for (int spin = 0; spin < SK_SPIN_ROUNDS; spin++) {
            now = atomic_load_explicit(&pool.generation, memory_order_acquire);
            if (now != seen) break;
            sk_cpu_relax();
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.mutex);
            while ((now = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mutex);
            pthread_mutex_unlock(&pool.mutex);
        }
        seen = now;
        if (worker < pool.parts) run_part(worker, pool.parts, pool.n, pool.fn, pool.context);
        // Every worker acknowledges every generation, taking part or not, so none can still be
        // reading this job's fields when the owner writes the next one.
        atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
    }
    return NULL;
}

/// Starts workers until `wanted` exist (or thread creation fails); returns how many exist.
/// Called only by the thread that holds `pool.busy`.
static int ensure_workers(int wanted) {
    pthread_mutex_lock(&pool.mutex);
    while (pool.started_workers < wanted) {
        pthread_t thread;
        pool.start_generation[pool.started_workers + 1] = atomic_load(&pool.generation);
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(long)(pool.started_workers + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.started_workers += 1;
    }
    int workers = pool.started_workers;
    pthread_mutex_unlock(&pool.mutex);
    return workers;
}

static sk_parallel_backend_fn backend_run = NULL;
static const void *backend_data = NULL;

void sk_parallel_set_backend(sk_parallel_backend_fn run, const void *backend) {
    backend_run = run;
    backend_data = backend;
}

void sk_parallel_for(int n, sk_parallel_fn fn, void *context) {
    if (n <= 0) return;
    if (backend_run) { backend_run(backend_data, n, fn, context); return; }
    int threads = sk_get_threads();
    if (threads > SK_MAX_THREADS) threads = SK_MAX_THREADS;
    if (threads > n) threads = n;
    if (threads < 2 || inside_parallel_loop || pthread_mutex_trylock(&pool.busy) != 0) {
        fn(context, 0, n);
        return;
    }
    int workers = ensure_workers(threads - 1);
    int parts = workers + 1 < threads ? workers + 1 : threads;
    if (parts < 2) {
        pthread_mutex_unlock(&pool.busy);
        fn(context, 0, n);
        return;
    }
    pool.fn = fn;
    pool.context = context;
    pool.n = n;
    pool.parts = parts;
    // Every started worker wakes on a new generation; only those with worker < parts do work.
    atomic_store_explicit(&pool.remaining, workers, memory_order_relaxed);
    pthread_mutex_lock(&pool.mutex);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);

    inside_parallel_loop = true;
    run_part(0, parts, n, fn, context);
    inside_parallel_loop = false;
    // Spin briefly (the worker usually finishes within microseconds of us), then yield the core:
    // on a machine with more runnable threads than cores the worker may be waiting for ours.
    for (int spin = 0; atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0; spin++) {
        if (spin < SK_SPIN_ROUNDS) sk_cpu_relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool.busy);
}

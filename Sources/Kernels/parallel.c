// Persistent pthread pool behind sk_parallel_for.
//
// The quantized linear layers take 10 µs to a few ms, so waking sleeping threads through a condition
// variable on every call would cost a noticeable share. Workers therefore spin for a short while
// after each job (about 100 µs) watching a generation counter, and only then go to sleep on the
// condition variable; back-to-back layers of a forward pass find them awake.
//
// Work is claimed, not assigned. A loop is cut into a fixed number of contiguous chunks (so results
// never depend on which thread ran what), and every thread, the caller included, takes the next
// unclaimed chunk until none is left. The caller waits only for chunks another thread has already
// started. Why: on a machine that runs other programs too, a worker may not get a core for several
// milliseconds; with a fixed share per thread the caller then sat idle until the scheduler let the
// worker run (seen: a 3.5 ms forward taking 33 ms whenever another process was busy). Now the caller
// simply does the late worker's chunks itself.
//
// The claim word packs (generation << 32 | next chunk), so a claim made for one loop can never be
// taken as a claim on the next: the compare-and-swap fails once the generation has moved on. The
// loop's fields are written before its generation is published and are not touched again until every
// claimed chunk is done, so a thread that won a claim reads the fields of the loop it claimed from.
#include "parallel.h"
#include "kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define sk_cpu_relax() _mm_pause()
#else
#define sk_cpu_relax() ((void)0)
#endif

enum {
    SK_MAX_THREADS = 64,
    SK_SPIN_ROUNDS = 20000,
    SK_CHUNKS_PER_THREAD = 8,    // enough to rebalance around a late thread, few enough to keep ranges long (4 took a
                                 // 32×32 INT8 forward ~4% longer)
};

typedef struct {
    pthread_mutex_t mutex;          // guards sleeping workers and starting threads
    pthread_cond_t wake;
    pthread_mutex_t busy;           // held by the one caller that owns the pool during a loop
    int started_workers;
    // The loop being run; written by the owner before `generation` and `claim` are published.
    sk_parallel_fn fn;
    void *context;
    int n, chunks, parts;           // parts: threads that may take part (the caller is thread 0)
    atomic_uint generation;         // what sleeping and spinning workers watch
    atomic_uint_least64_t claim;    // generation << 32 | index of the next unclaimed chunk
    atomic_int done;                // chunks finished in the current loop
} sk_pool;

static sk_pool pool = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local bool inside_parallel_loop = false;

static sk_parallel_backend_fn backend_run = NULL;
static const void *backend_data = NULL;

void sk_parallel_set_backend(sk_parallel_backend_fn run, const void *backend) {
    backend_run = run;
    backend_data = backend;
}

// Takes and runs chunks of loop `generation` until none is left (or the loop is another one).
static void run_chunks(uint32_t generation) {
    for (;;) {
        uint64_t word = atomic_load_explicit(&pool.claim, memory_order_acquire);
        if ((uint32_t)(word >> 32) != generation) return;
        uint32_t chunk = (uint32_t)word;
        // Safe to read: the loop cannot finish while a chunk is unclaimed, so its fields stand.
        int chunks = pool.chunks;
        if ((int)chunk >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &word, word + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        int n = pool.n;
        int begin = (int)((long)n * chunk / chunks), end = (int)((long)n * (chunk + 1) / chunks);
        if (begin < end) pool.fn(pool.context, begin, end);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker_main(void *argument) {
    int worker = (int)(long)argument;       // 1-based: the caller is thread 0
    inside_parallel_loop = true;
    unsigned seen = 0;                      // a worker started during loop g may still help with g
    for (;;) {
        unsigned now = atomic_load_explicit(&pool.generation, memory_order_acquire);
        for (int spin = 0; now == seen && spin < SK_SPIN_ROUNDS; spin++) {
            sk_cpu_relax();
            now = atomic_load_explicit(&pool.generation, memory_order_acquire);
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.mutex);
            while ((now = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mutex);
            pthread_mutex_unlock(&pool.mutex);
        }
        seen = now;
        // `parts` is read before claiming: if the loop has moved on, run_chunks finds another
        // generation in the claim word and takes nothing, whatever `parts` said.
        if (worker < pool.parts) run_chunks(now);
    }
    return NULL;
}

/// Starts workers until `wanted` exist (or thread creation fails); returns how many exist.
/// Called only by the thread that holds `pool.busy`.
static int ensure_workers(int wanted) {
    pthread_mutex_lock(&pool.mutex);
    while (pool.started_workers < wanted) {
        pthread_t thread;
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
    // The chunking depends only on n and the thread setting, never on timing.
    int chunks = threads * SK_CHUNKS_PER_THREAD;
    if (chunks > n) chunks = n;
    pool.fn = fn;
    pool.context = context;
    pool.n = n;
    pool.chunks = chunks;
    pool.parts = parts;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint32_t generation = atomic_load_explicit(&pool.generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&pool.claim, (uint64_t)generation << 32, memory_order_release);
    pthread_mutex_lock(&pool.mutex);
    atomic_store_explicit(&pool.generation, generation, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);

    inside_parallel_loop = true;
    run_chunks(generation);
    inside_parallel_loop = false;
    // Every chunk is claimed; wait for those other threads are still running. Spin briefly, then
    // yield the core: on a busy machine the thread we wait for may need ours.
    for (int spin = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; spin++) {
        if (spin < SK_SPIN_ROUNDS) sk_cpu_relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool.busy);
}

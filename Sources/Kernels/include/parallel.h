// A small persistent thread pool for the kernels' own parallel loops.
//
// Threads are started on first use and live until the process ends. The number of threads taking
// part in a loop is `sk_get_threads()` (kernels.h), so OpenBLAS and these loops follow one setting.
#ifndef SANKSHEP_PARALLEL_H
#define SANKSHEP_PARALLEL_H

#ifdef __cplusplus
extern "C" {
#endif

/// One contiguous share of a parallel loop: handle items [begin, end) of the loop.
typedef void (*sk_parallel_fn)(void *context, int begin, int end);

/// Cuts [0, n) into contiguous ranges (at most 8 per thread, never more than n; the cut depends only
/// on n and `sk_get_threads()`) and calls `fn` once per range, on the calling thread and up to
/// `sk_get_threads() - 1` pool threads, whichever is free first; returns when every range is done.
/// Runs `fn(context, 0, n)` on the calling thread alone when only one thread is allowed, when n < 2,
/// when called from inside a parallel loop, or when another thread is already using the pool.
/// `context` is only borrowed for the duration of the call.
void sk_parallel_for(int n, sk_parallel_fn fn, void *context);

/// Someone else's parallel loop that sk_parallel_for hands its work to: `run(backend, n, fn, context)`
/// must call fn over [0, n) in contiguous ranges and return when all are done.
typedef void (*sk_parallel_backend_fn)(const void *backend, int n, sk_parallel_fn fn, void *context);

/// From now on sk_parallel_for runs every loop through `run` (NULL: back to this library's own pool).
/// A plugin library carries its own copy of these kernels; pointing it at the host's pool (the
/// `parallel_for` host service) keeps one set of threads on the machine. Call it before any loop
/// runs (a plugin's init), not while loops are in flight.
void sk_parallel_set_backend(sk_parallel_backend_fn run, const void *backend);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_PARALLEL_H

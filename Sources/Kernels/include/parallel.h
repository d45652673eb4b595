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

/// Splits [0, n) into at most `sk_get_threads()` contiguous, nearly equal ranges and calls `fn` once
/// per range, one of them on the calling thread; returns when every range is done.
/// Runs `fn(context, 0, n)` on the calling thread alone when only one thread is allowed, when n < 2,
/// when called from inside a parallel loop, or when another thread is already using the pool.
/// `context` is only borrowed for the duration of the call.
void sk_parallel_for(int n, sk_parallel_fn fn, void *context);

#ifdef __cplusplus
}
#endif

#endif // SANKSHEP_PARALLEL_H

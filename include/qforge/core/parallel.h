// The CPU threading policy: one thread count for all of qforge and parallel_for over index
// ranges, built on OpenMP. Why OpenMP and not a hand-written pool: libgomp keeps its team warm
// (fork/join in microseconds), it is already a dependency of the kernels, and all OpenMP code in
// the process shares one runtime that knows about nesting and OMP_NUM_THREADS; a second, private
// pool would sit beside it and fight it for the same cores.
#pragma once

#include <cstdint>
#include <functional>

namespace qforge {

// Threads parallel_for may use. Default: QFORGE_NUM_THREADS if set to an integer in
// [1, kMaxThreads] (other values log a warning and are ignored), else OpenMP's default
// (OMP_NUM_THREADS or the number of cores). Read once, at first use.
int num_threads();

// Sets the thread count for later parallel_for calls (clamped to kMaxThreads). n <= 0 restores
// the default, re-reading QFORGE_NUM_THREADS. Does not change OpenMP's global settings, so
// other OpenMP users (OpenBLAS) are unaffected.
void set_num_threads(int n);

inline constexpr int kMaxThreads = 1024;

// True while the calling thread runs inside a parallel_for chunk or any active OpenMP region.
bool in_parallel_region();

// Calls fn(chunk_begin, chunk_end) over contiguous, disjoint chunks covering [begin, end) once.
// Chunks hold at least max(grain, 1) indices (except when the whole range is smaller), and
// there are min(num_threads(), (end - begin) / grain) of them, sized as evenly as possible:
// the split depends only on (begin, end, grain, num_threads()), so results that depend on chunk
// boundaries (e.g. per-chunk partial sums) are reproducible for a given thread count.
// Runs inline, as a single chunk, when only one chunk would result or when called from inside a
// parallel region (nested calls never oversubscribe). Returns after every chunk has finished.
// fn must not throw: an exception escaping an OpenMP worker terminates the program. Report
// failures through captured state (e.g. one Status per chunk) instead.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace qforge

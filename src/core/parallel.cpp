// parallel_for on OpenMP: deterministic even chunking, inline execution for small or nested
// ranges, and the process-wide thread count (QFORGE_NUM_THREADS / set_num_threads).
#include "qforge/core/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "qforge/core/log.h"

namespace qforge {
namespace {

// 0 = not yet initialized.
std::atomic<int> g_num_threads{0};
std::mutex g_init_mutex;

// Set while this thread runs a parallel_for chunk, so nested calls run inline even when the
// OpenMP runtime would allow nested teams.
thread_local bool t_in_chunk = false;

int default_num_threads() {
  const int omp_default = std::clamp(omp_get_max_threads(), 1, kMaxThreads);
  const char* env = std::getenv("QFORGE_NUM_THREADS");
  if (env == nullptr || *env == '\0') return omp_default;
  const std::string_view text(env);
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > kMaxThreads) {
    log_warn("QFORGE_NUM_THREADS='{}' is not an integer in [1, {}]; using {} threads", text,
             kMaxThreads, omp_default);
    return omp_default;
  }
  return value;
}

// Chunk c of n_chunks over n indices: the first n % n_chunks chunks get one extra index.
// Written without c * n so that it cannot overflow for any int64 range.
int64_t chunk_start(int64_t c, int64_t n, int64_t n_chunks) {
  const int64_t base = n / n_chunks;
  const int64_t extra = n % n_chunks;
  return c * base + std::min(c, extra);
}

class ChunkScope {
 public:
  ChunkScope() : previous_(t_in_chunk) { t_in_chunk = true; }
  ~ChunkScope() { t_in_chunk = previous_; }
  ChunkScope(const ChunkScope&) = delete;
  ChunkScope& operator=(const ChunkScope&) = delete;

 private:
  bool previous_;
};

}  // namespace

int num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  std::lock_guard<std::mutex> lock(g_init_mutex);
  n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_num_threads();
    g_num_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_init_mutex);
  g_num_threads.store(n <= 0 ? default_num_threads() : std::min(n, kMaxThreads),
                      std::memory_order_relaxed);
}

bool in_parallel_region() {
  return t_in_chunk || omp_in_parallel() != 0;
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  // end - begin can overflow int64 for extreme arguments; unsigned arithmetic is exact here.
  const auto span = static_cast<uint64_t>(end) - static_cast<uint64_t>(begin);
  grain = std::max<int64_t>(grain, 1);
  const uint64_t max_chunks = span / static_cast<uint64_t>(grain);
  const auto n_chunks =
      static_cast<int64_t>(std::min<uint64_t>(max_chunks, static_cast<uint64_t>(num_threads())));
  if (n_chunks <= 1 || in_parallel_region() || span > static_cast<uint64_t>(INT64_MAX)) {
    // No ChunkScope here: a top-level single chunk leaves nested loops free to go parallel.
    fn(begin, end);
    return;
  }
  const auto n = static_cast<int64_t>(span);
  // One chunk per thread, chunk c on thread c (schedule(static, 1)).
#pragma omp parallel for num_threads(static_cast <int>(n_chunks)) schedule(static, 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    ChunkScope scope;
    fn(begin + chunk_start(c, n, n_chunks), begin + chunk_start(c + 1, n, n_chunks));
  }
}

}  // namespace qforge

// The paged attention driver of paged_attention.h: dispatch of the per-target kernels
// (paged_attention-inl.h) and the (sequence, kv head, query block) task loop: scores tile by
// tile, row softmax, values accumulated tile by tile.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/paged_attention.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "backend/cpu/paged_attention-inl.h"
#include "hwy/highway.h"

#if HWY_ONCE
#include <algorithm>
#include <array>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/vector_ops.h"
#include "qforge/core/error.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/scalar.h"

namespace qforge::cpu {

HWY_EXPORT(PagedDecodeFp8);
HWY_EXPORT(PagedDecodeInt8);

namespace {

// The 256 E4M3FN values as floats (NaN codes decode to NaN; the writer never stores them).
const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<size_t>(c)] = e4m3fn_to_float(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

// Multiply-adds below which a whole call runs on the calling thread: a fork/join costs a
// scheduler time slice when the other core is busy (see kDecodeGrainMacs in attention.cpp;
// measured here: 4 x 16-token prefill of stories260K took 80 ms with 2 threads at 1 << 17,
// 1 ms on one thread, on the shared 2-core machine).
constexpr int64_t kInlineMacs = int64_t{1} << 20;

struct Task {
  const PagedAttentionParams* p;
  int64_t kv_head;
  int64_t t0;  // first query token of the block
};

void check_params(const PagedAttentionParams& p) {
  QF_CHECK(p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 && p.head_dim > 0);
  QF_CHECK(p.pos0 >= 0 && p.n_tokens >= 0 && p.kv.block_size > 0);
  QF_CHECK(p.block_table != nullptr || p.n_tokens == 0);
  const bool quantized =
      p.kv.dtype == PagedKvDType::kFp8E4M3FN || p.kv.dtype == PagedKvDType::kInt8;
  QF_CHECK(!quantized || (p.kv.k_scale != nullptr && p.kv.v_scale != nullptr));
}

// Rows [slot0, slot0 + n) of KV head g of page `page` as F32: a pointer into the page (F32
// storage) or into `tile` after decoding.
const float* page_rows(const PagedKvLayer& kv, const void* pages, const float* scales, int32_t page,
                       int64_t g, int64_t slot0, int64_t n, int64_t head_dim, float* tile) {
  const int64_t elem = paged_kv_dtype_bytes(kv.dtype);
  const auto* base = static_cast<const uint8_t*>(pages) + page * kv.page_stride +
                     g * kv.head_stride + slot0 * head_dim * elem;
  const int64_t count = n * head_dim;
  switch (kv.dtype) {
    case PagedKvDType::kF32:
      return reinterpret_cast<const float*>(base);
    case PagedKvDType::kF16:
      convert_to_f32(base, DType::F16, count, tile);
      break;
    case PagedKvDType::kBF16:
      convert_to_f32(base, DType::BF16, count, tile);
      break;
    case PagedKvDType::kFp8E4M3FN:
      HWY_DYNAMIC_DISPATCH(PagedDecodeFp8)(base, count, scales[g], fp8_table().data(), tile);
      break;
    case PagedKvDType::kInt8:
      HWY_DYNAMIC_DISPATCH(PagedDecodeInt8)
      (reinterpret_cast<const int8_t*>(base), count, scales[g], tile);
      break;
  }
  return tile;
}

struct TaskScratch {
  std::vector<float> scores;
  std::vector<float> tile;
};

void run_task(const Task& task, TaskScratch& s) {
  const PagedAttentionParams& p = *task.p;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t hd = p.head_dim;
  const int64_t q_stride = p.n_heads * hd;
  const int64_t bs = p.kv.block_size;
  const int64_t g = task.kv_head;
  const int64_t t0 = task.t0;
  const int64_t nt = std::min(kPagedAttentionQueryBlock, p.n_tokens - t0);
  const int64_t lo = attention_first_key(p.pos0 + t0, p.window);
  const int64_t hi = p.pos0 + t0 + nt;  // exclusive
  const int64_t nk = hi - lo;
  const int64_t rows = nt * group;
  s.scores.resize(static_cast<size_t>(rows * nk));
  if (p.kv.dtype != PagedKvDType::kF32) s.tile.resize(static_cast<size_t>(bs * hd));
  // Row r: query token t0 + r / group, head g * group + r % group.
  const auto row_query = [&](int64_t r) {
    return p.q + (t0 + r / group) * q_stride + (g * group + r % group) * hd;
  };
  const auto row_out = [&](int64_t r) {
    return p.out + (t0 + r / group) * q_stride + (g * group + r % group) * hd;
  };
  const auto row_range = [&](int64_t r, int64_t* first, int64_t* last) {
    const int64_t pos = p.pos0 + t0 + r / group;
    *first = attention_first_key(pos, p.window);
    *last = pos + 1;  // exclusive
  };
  const int64_t page_first = lo / bs;
  const int64_t page_last = (hi - 1) / bs;

  // Calls visit(r, rows, ka, kb) for each query row r and each page span [ka, kb) of the keys
  // it attends to, pages in key order; `rows` points at key ka decoded to F32.
  const auto for_each_page_span = [&](const void* pages, const float* scales, auto&& visit) {
    for (int64_t pi = page_first; pi <= page_last; ++pi) {
      const int64_t a = std::max(lo, pi * bs);
      const int64_t b = std::min(hi, (pi + 1) * bs);
      const float* page = page_rows(p.kv, pages, scales, p.block_table[pi], g, a - pi * bs, b - a,
                                    hd, s.tile.data());
      for (int64_t r = 0; r < rows; ++r) {
        int64_t first = 0, last = 0;
        row_range(r, &first, &last);
        const int64_t ka = std::max(a, first);
        const int64_t kb = std::min(b, last);
        if (ka < kb) visit(r, page + (ka - a) * hd, ka, kb);
      }
    }
  };
  // Pass 1: scores, one page of keys at a time.
  for_each_page_span(p.kv.k_pages, p.kv.k_scale,
                     [&](int64_t r, const float* k, int64_t ka, int64_t kb) {
                       attention_scores(row_query(r), k, kb - ka, hd, p.scale,
                                        s.scores.data() + r * nk + (ka - lo));
                     });
  // Pass 2: softmax over each row's keys.
  for (int64_t r = 0; r < rows; ++r) {
    int64_t first = 0, last = 0;
    row_range(r, &first, &last);
    softmax(s.scores.data() + r * nk + (first - lo), last - first);
    std::fill(row_out(r), row_out(r) + hd, 0.0f);
  }
  // Pass 3: out += probabilities x values, one page of values at a time (keys in order).
  for_each_page_span(
      p.kv.v_pages, p.kv.v_scale, [&](int64_t r, const float* v, int64_t ka, int64_t kb) {
        attention_accumulate(s.scores.data() + r * nk + (ka - lo), v, kb - ka, hd, row_out(r));
      });
}

}  // namespace

int64_t paged_kv_dtype_bytes(PagedKvDType dtype) {
  switch (dtype) {
    case PagedKvDType::kF32:
      return 4;
    case PagedKvDType::kF16:
    case PagedKvDType::kBF16:
      return 2;
    default:
      return 1;
  }
}

void paged_kv_decode_row(const void* src, PagedKvDType dtype, float scale, int64_t n, float* dst) {
  switch (dtype) {
    case PagedKvDType::kF32:
      std::copy_n(static_cast<const float*>(src), n, dst);
      break;
    case PagedKvDType::kF16:
      convert_to_f32(src, DType::F16, n, dst);
      break;
    case PagedKvDType::kBF16:
      convert_to_f32(src, DType::BF16, n, dst);
      break;
    case PagedKvDType::kFp8E4M3FN:
      HWY_DYNAMIC_DISPATCH(PagedDecodeFp8)
      (static_cast<const uint8_t*>(src), n, scale, fp8_table().data(), dst);
      break;
    case PagedKvDType::kInt8:
      HWY_DYNAMIC_DISPATCH(PagedDecodeInt8)(static_cast<const int8_t*>(src), n, scale, dst);
      break;
  }
}

void paged_attention_batch(const PagedAttentionParams* seqs, int64_t n_seqs) {
  std::vector<Task> tasks;
  int64_t macs = 0;
  for (int64_t i = 0; i < n_seqs; ++i) {
    const PagedAttentionParams& p = seqs[i];
    check_params(p);
    for (int64_t g = 0; g < p.n_kv_heads; ++g) {
      for (int64_t t0 = 0; t0 < p.n_tokens; t0 += kPagedAttentionQueryBlock) {
        tasks.push_back({&p, g, t0});
      }
    }
    macs += 2 * p.n_tokens * p.n_heads * (p.pos0 + p.n_tokens) * p.head_dim;
  }
  const auto n = static_cast<int64_t>(tasks.size());
  if (n == 0) return;
  const int64_t grain = macs < kInlineMacs ? n : 1;
  parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    TaskScratch scratch;
    for (int64_t t = begin; t < end; ++t) run_task(tasks[static_cast<size_t>(t)], scratch);
  });
}

void paged_attention(const PagedAttentionParams& p) {
  paged_attention_batch(&p, 1);
}

}  // namespace qforge::cpu
#endif  // HWY_ONCE

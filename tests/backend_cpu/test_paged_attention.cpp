// Paged attention: kernel == scalar oracle for every page storage type on every compiled target
// (MHA/GQA/MQA, windows, odd head_dim, pages of 1 and 16 tokens in shuffled order); F32 pages ==
// the contiguous cpu::attention; FP8/INT8 pages == F32 pages holding the fake-quantized values,
// bit for bit; and chunking the queries never changes a bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/paged_attention.h"
#include "kernel_test_util.h"
#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/core/simd.h"
#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"
#include "qforge/model/kv_cache_quant.h"

namespace qforge::cpu {
namespace {

using test::random_floats;
using test::relative_l2;

struct Case {
  int64_t n_tokens, n_heads, n_kv_heads, head_dim, pos0, window, block_size;
};

// A page pool holding a contiguous cache ([n_kv_heads, len, head_dim] K and V) in shuffled pages.
struct Pages {
  std::vector<uint8_t> k, v;
  std::vector<int32_t> table;
  std::vector<float> k_scale, v_scale;
  PagedKvLayer layer;
};

Pages make_pages(const std::vector<float>& k, const std::vector<float>& v, int64_t n_kv_heads,
                 int64_t len, int64_t head_dim, int64_t block_size, PagedKvDType dtype,
                 uint64_t seed) {
  Pages p;
  const int64_t n_pages = (len + block_size - 1) / block_size;
  const int64_t pool = n_pages + 3;  // a few unused pages
  const int64_t elem = paged_kv_dtype_bytes(dtype);
  const int64_t head_stride = block_size * head_dim * elem + 8;  // padded: strides are honoured
  const int64_t page_stride = n_kv_heads * head_stride;
  p.k.assign(static_cast<size_t>(pool * page_stride), 0xEE);
  p.v.assign(static_cast<size_t>(pool * page_stride), 0xEE);
  std::vector<int32_t> ids(static_cast<size_t>(pool));
  std::iota(ids.begin(), ids.end(), 0);
  Rng rng(seed);
  for (size_t i = ids.size(); i > 1; --i) std::swap(ids[i - 1], ids[rng.uniform_int(i)]);
  p.table.assign(ids.begin(), ids.begin() + n_pages);
  for (int64_t g = 0; g < n_kv_heads; ++g) {
    p.k_scale.push_back(0.02f + 0.01f * static_cast<float>(g));
    p.v_scale.push_back(0.03f - 0.005f * static_cast<float>(g));
  }
  for (int64_t g = 0; g < n_kv_heads; ++g) {
    for (int64_t pos = 0; pos < len; ++pos) {
      const int64_t off = p.table[pos / block_size] * page_stride + g * head_stride +
                          (pos % block_size) * head_dim * elem;
      for (int kv = 0; kv < 2; ++kv) {
        const float* src = (kv == 0 ? k : v).data() + (g * len + pos) * head_dim;
        uint8_t* dst = (kv == 0 ? p.k : p.v).data() + off;
        const float scale = (kv == 0 ? p.k_scale : p.v_scale)[g];
        for (int64_t i = 0; i < head_dim; ++i) {
          switch (dtype) {
            case PagedKvDType::kF32:
              std::memcpy(dst + i * 4, src + i, 4);
              break;
            case PagedKvDType::kF16: {
              const uint16_t c = float_to_f16(src[i]);
              std::memcpy(dst + i * 2, &c, 2);
              break;
            }
            case PagedKvDType::kBF16: {
              const uint16_t c = float_to_bf16(src[i]);
              std::memcpy(dst + i * 2, &c, 2);
              break;
            }
            default:
              break;
          }
        }
        if (dtype == PagedKvDType::kFp8E4M3FN) {
          quantize_row_fp8(src, head_dim, scale, ScalarFormat::E4M3FN, dst);
        } else if (dtype == PagedKvDType::kInt8) {
          quantize_row_int8(src, head_dim, scale, reinterpret_cast<int8_t*>(dst));
        }
      }
    }
  }
  p.layer.k_pages = p.k.data();
  p.layer.v_pages = p.v.data();
  p.layer.page_stride = page_stride;
  p.layer.head_stride = head_stride;
  p.layer.block_size = block_size;
  p.layer.dtype = dtype;
  p.layer.k_scale = p.k_scale.data();
  p.layer.v_scale = p.v_scale.data();
  return p;
}

PagedAttentionParams params_for(const Case& c, const std::vector<float>& q, const Pages& pages,
                                float* out) {
  PagedAttentionParams p;
  p.q = q.data();
  p.out = out;
  p.n_tokens = c.n_tokens;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.pos0 = c.pos0;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.kv = pages.layer;
  p.block_table = pages.table.data();
  return p;
}

const std::vector<Case> kCases = {
    {1, 4, 4, 16, 0, 0, 16},    // first token: one key
    {1, 8, 4, 8, 37, 0, 16},    // decode, GQA 2:1, head_dim 8 (stories260K)
    {1, 8, 4, 8, 37, 0, 1},     // block size 1
    {3, 6, 2, 64, 10, 0, 4},    // small batch of queries
    {1, 4, 1, 64, 50, 16, 16},  // MQA with a sliding window
    {40, 4, 2, 32, 5, 0, 16},   // prefill over several query blocks and pages
    {40, 4, 4, 32, 20, 9, 8},   // prefill with a window
    {19, 2, 1, 17, 3, 0, 5},    // odd head_dim, odd block size
};

const PagedKvDType kDTypes[] = {PagedKvDType::kF32, PagedKvDType::kF16, PagedKvDType::kBF16,
                                PagedKvDType::kFp8E4M3FN, PagedKvDType::kInt8};

TEST(PagedAttention, MatchesRefForEveryStorageOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (const Case& c : kCases) {
      const int64_t len = c.pos0 + c.n_tokens;
      const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 1 + c.n_tokens);
      const auto k = random_floats(c.n_kv_heads * len * c.head_dim, 2 + c.head_dim);
      const auto v = random_floats(c.n_kv_heads * len * c.head_dim, 3 + c.head_dim);
      for (PagedKvDType dtype : kDTypes) {
        const Pages pages = make_pages(k, v, c.n_kv_heads, len, c.head_dim, c.block_size, dtype, 7);
        const int64_t n_out = c.n_tokens * c.n_heads * c.head_dim;
        std::vector<float> got(n_out, -7.0f), want(n_out, 7.0f);
        paged_attention(params_for(c, q, pages, got.data()));
        paged_attention_ref(params_for(c, q, pages, want.data()));
        EXPECT_LT(relative_l2(got.data(), want.data(), n_out), 2e-6)
            << target.name << " dtype=" << static_cast<int>(dtype) << " tokens=" << c.n_tokens
            << " heads=" << c.n_heads << "/" << c.n_kv_heads << " d=" << c.head_dim
            << " pos0=" << c.pos0 << " window=" << c.window << " block=" << c.block_size;
      }
    }
  }
}

TEST(PagedAttention, F32PagesMatchContiguousAttention) {
  for (const Case& c : kCases) {
    const int64_t len = c.pos0 + c.n_tokens;
    const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 11);
    const auto k = random_floats(c.n_kv_heads * len * c.head_dim, 12);
    const auto v = random_floats(c.n_kv_heads * len * c.head_dim, 13);
    const Pages pages =
        make_pages(k, v, c.n_kv_heads, len, c.head_dim, c.block_size, PagedKvDType::kF32, 3);
    const int64_t n_out = c.n_tokens * c.n_heads * c.head_dim;
    std::vector<float> paged(n_out), contiguous(n_out);
    paged_attention(params_for(c, q, pages, paged.data()));
    AttentionParams a;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.out = contiguous.data();
    a.n_tokens = c.n_tokens;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.capacity = len;
    a.pos0 = c.pos0;
    a.window = c.window;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    attention(a);
    EXPECT_LT(relative_l2(paged.data(), contiguous.data(), n_out), 1e-6)
        << "tokens=" << c.n_tokens << " block=" << c.block_size;
    if (c.n_tokens < kAttentionGemmMinTokens) {
      // The decode path of cpu::attention does the same arithmetic per key.
      EXPECT_LT(relative_l2(paged.data(), contiguous.data(), n_out), 1e-7);
    }
  }
}

TEST(PagedAttention, QuantizedPagesEqualFakeQuantizedF32PagesBitForBit) {
  const Case c{21, 4, 2, 32, 11, 0, 8};
  const int64_t len = c.pos0 + c.n_tokens;
  const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 21);
  const auto k = random_floats(c.n_kv_heads * len * c.head_dim, 22);
  const auto v = random_floats(c.n_kv_heads * len * c.head_dim, 23);
  for (PagedKvDType dtype : {PagedKvDType::kFp8E4M3FN, PagedKvDType::kInt8}) {
    const Pages quant = make_pages(k, v, c.n_kv_heads, len, c.head_dim, c.block_size, dtype, 5);
    // The same values as kv_cache_fake_quantize leaves them in an F32 cache.
    std::vector<float> kf = k, vf = v;
    const KvCacheDType kd = dtype == PagedKvDType::kInt8 ? KvCacheDType::kInt8 : KvCacheDType::kFp8;
    for (int64_t g = 0; g < c.n_kv_heads; ++g) {
      kv_cache_fake_quantize(kd, quant.k_scale[g], kf.data() + g * len * c.head_dim,
                             len * c.head_dim);
      kv_cache_fake_quantize(kd, quant.v_scale[g], vf.data() + g * len * c.head_dim,
                             len * c.head_dim);
    }
    const Pages f32 =
        make_pages(kf, vf, c.n_kv_heads, len, c.head_dim, c.block_size, PagedKvDType::kF32, 9);
    // Decoded page rows are the fake-quantized values exactly.
    std::vector<float> row(c.head_dim);
    for (int64_t pos : {int64_t{0}, len - 1}) {
      const int64_t off = quant.table[pos / c.block_size] * quant.layer.page_stride +
                          quant.layer.head_stride + (pos % c.block_size) * c.head_dim;
      paged_kv_decode_row(quant.k.data() + off, dtype, quant.k_scale[1], c.head_dim, row.data());
      EXPECT_EQ(0, std::memcmp(row.data(), kf.data() + (len + pos) * c.head_dim,
                               c.head_dim * sizeof(float)));
    }
    const int64_t n_out = c.n_tokens * c.n_heads * c.head_dim;
    std::vector<float> a(n_out), b(n_out);
    paged_attention(params_for(c, q, quant, a.data()));
    paged_attention(params_for(c, q, f32, b.data()));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n_out * sizeof(float)))
        << "dtype " << static_cast<int>(dtype);
  }
}

TEST(PagedAttention, ChunkingAndThreadsNeverChangeABit) {
  const Case c{37, 8, 2, 64, 0, 0, 4};  // enough work to run on several threads
  const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 31);
  const auto k = random_floats(c.n_kv_heads * c.n_tokens * c.head_dim, 32);
  const auto v = random_floats(c.n_kv_heads * c.n_tokens * c.head_dim, 33);
  const Pages pages =
      make_pages(k, v, c.n_kv_heads, c.n_tokens, c.head_dim, c.block_size, PagedKvDType::kBF16, 1);
  const int64_t row = c.n_heads * c.head_dim;
  std::vector<float> whole(c.n_tokens * row), chunked(c.n_tokens * row), one(c.n_tokens * row);
  paged_attention(params_for(c, q, pages, whole.data()));
  // Chunks of 5, 1, 20, ... tokens, as chunked prefill might cut them.
  const int64_t cuts[] = {5, 1, 20, 3, 8};
  int64_t t = 0;
  for (int64_t n : cuts) {
    Case part = c;
    part.pos0 = t;
    part.n_tokens = n;
    std::vector<float> qpart(q.begin() + t * row, q.begin() + (t + n) * row);
    paged_attention(params_for(part, qpart, pages, chunked.data() + t * row));
    t += n;
  }
  ASSERT_EQ(t, c.n_tokens);
  EXPECT_EQ(0, std::memcmp(whole.data(), chunked.data(), whole.size() * sizeof(float)));
  const int threads = num_threads();
  set_num_threads(1);
  paged_attention(params_for(c, q, pages, one.data()));
  set_num_threads(threads);
  EXPECT_EQ(0, std::memcmp(whole.data(), one.data(), whole.size() * sizeof(float)));
}

}  // namespace
}  // namespace qforge::cpu

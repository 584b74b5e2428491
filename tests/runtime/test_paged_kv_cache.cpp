// PagedKvCache: pages come from and return to one free list (the free count returns to the total,
// no fragmentation after many sequences of different lengths), reservations that do not fit
// change nothing, rows read back as stored (F32 exact, F16/BF16 rounded, FP8/INT8 ==
// kv_cache_fake_quantize bit for bit), and bad options are errors naming the field.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/formats/scalar.h"
#include "qforge/runtime/paged_kv_cache.h"

namespace qforge {
namespace {

PagedKvCacheOptions options(int64_t block_size, int64_t n_blocks,
                            KvCacheStorage storage = KvCacheStorage::kF32) {
  PagedKvCacheOptions o;
  o.n_layers = 2;
  o.n_kv_heads = 2;
  o.head_dim = 8;
  o.block_size = block_size;
  o.n_blocks = n_blocks;
  o.storage = storage;
  return o;
}

TEST(PagedKvCache, PagesReturnToThePoolWithoutFragmentation) {
  for (int64_t bs : {1, 16}) {
    auto cache = PagedKvCache::create(options(bs, 64)).value();
    Rng rng(bs);
    std::vector<PagedKvCache::SeqId> live;
    for (int round = 0; round < 200; ++round) {
      if (!live.empty() && (rng.uniform() < 0.4 || cache->free_blocks() == 0)) {
        const size_t i = rng.uniform_int(live.size());
        cache->release(live[i]);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      const auto seq = cache->add_sequence();
      const int64_t len = 1 + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(3 * bs)));
      if (cache->try_reserve(seq, len)) {
        EXPECT_GE(cache->capacity(seq), len);
        EXPECT_EQ(cache->capacity(seq), cache->blocks_for(len) * bs);
        // Grow in place (decode appends).
        if (cache->try_reserve(seq, len + bs)) EXPECT_GE(cache->capacity(seq), len + bs);
        live.push_back(seq);
      } else {
        cache->release(seq);
      }
      // Pages owned by live sequences + free pages == the pool; no page owned twice.
      std::vector<int> owner(64, 0);
      int64_t owned = 0;
      for (auto s : live) {
        for (int32_t p : cache->block_table(s)) {
          ASSERT_TRUE(p >= 0 && p < 64);
          EXPECT_EQ(owner[static_cast<size_t>(p)]++, 0);
          ++owned;
        }
      }
      EXPECT_EQ(owned + cache->free_blocks(), 64);
    }
    for (auto s : live) cache->release(s);
    EXPECT_EQ(cache->free_blocks(), cache->total_blocks());
    EXPECT_EQ(cache->live_sequences(), 0);
  }
}

TEST(PagedKvCache, ReservationThatDoesNotFitChangesNothing) {
  auto cache = PagedKvCache::create(options(4, 3)).value();
  const auto a = cache->add_sequence();
  ASSERT_TRUE(cache->try_reserve(a, 9));  // 3 pages
  EXPECT_EQ(cache->free_blocks(), 0);
  const auto b = cache->add_sequence();
  EXPECT_FALSE(cache->try_reserve(b, 1));
  EXPECT_EQ(cache->capacity(b), 0);
  EXPECT_FALSE(cache->try_reserve(a, 13));
  EXPECT_EQ(cache->capacity(a), 12);
  cache->release(a);
  EXPECT_TRUE(cache->try_reserve(b, 12));
  cache->release(b);
  EXPECT_EQ(cache->free_blocks(), 3);
}

TEST(PagedKvCache, RowsReadBackAsStored) {
  const KvCacheStorage kinds[] = {KvCacheStorage::kF32, KvCacheStorage::kF16, KvCacheStorage::kBF16,
                                  KvCacheStorage::kFp8, KvCacheStorage::kInt8};
  for (KvCacheStorage storage : kinds) {
    PagedKvCacheOptions o = options(3, 8, storage);
    if (storage == KvCacheStorage::kInt8 || storage == KvCacheStorage::kFp8) {
      o.quant.dtype = storage == KvCacheStorage::kInt8 ? KvCacheDType::kInt8 : KvCacheDType::kFp8;
      o.quant.per_head = true;
      o.quant.k_scale = {0.01f, 0.02f, 0.03f, 0.04f};
      o.quant.v_scale = {0.05f, 0.06f, 0.07f, 0.08f};
    }
    auto cache = PagedKvCache::create(o).value();
    const auto seq = cache->add_sequence();
    ASSERT_TRUE(cache->try_reserve(seq, 7));
    const int64_t kv_dim = 16;
    Rng rng(1);
    std::vector<float> k(7 * kv_dim), v(7 * kv_dim);
    for (float& x : k) x = static_cast<float>(rng.normal(0, 1));
    for (float& x : v) x = static_cast<float>(rng.normal(0, 1));
    cache->write(seq, 1, 0, 4, k.data(), kv_dim, v.data(), kv_dim);
    cache->write(seq, 1, 4, 3, k.data() + 4 * kv_dim, kv_dim, v.data() + 4 * kv_dim, kv_dim);
    std::vector<float> row(8), want(8);
    for (int64_t pos = 0; pos < 7; ++pos) {
      for (int64_t g = 0; g < 2; ++g) {
        for (bool value : {false, true}) {
          const float* src = (value ? v : k).data() + pos * kv_dim + g * 8;
          std::copy_n(src, 8, want.begin());
          switch (storage) {
            case KvCacheStorage::kF16:
              for (float& x : want) x = f16_to_float(float_to_f16(x));
              break;
            case KvCacheStorage::kBF16:
              for (float& x : want) x = bf16_to_float(float_to_bf16(x));
              break;
            case KvCacheStorage::kFp8:
            case KvCacheStorage::kInt8: {
              const float scale = (value ? o.quant.v_scale : o.quant.k_scale)[2 + g];
              kv_cache_fake_quantize(o.quant.dtype, scale, want.data(), 8);
              break;
            }
            default:
              break;
          }
          cache->read_row(seq, 1, pos, g, value, row.data());
          EXPECT_EQ(0, std::memcmp(row.data(), want.data(), 8 * sizeof(float)))
              << kv_cache_storage_name(storage) << " pos " << pos << " head " << g;
        }
      }
    }
  }
}

TEST(PagedKvCache, BadOptionsAreErrors) {
  auto r = PagedKvCache::create(options(0, 4));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("block_size = 0"), std::string::npos) << r.error().message();
  r = PagedKvCache::create(options(4, 4, KvCacheStorage::kInt8));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("int8 storage needs calibrated INT8 KV scales"),
            std::string::npos)
      << r.error().message();
  // FP8 without scales: unit scales.
  auto fp8 = PagedKvCache::create(options(4, 4, KvCacheStorage::kFp8));
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ((*fp8)->k_scales(1)[0], 1.0f);
  EXPECT_EQ((*fp8)->bytes_per_token(), 2u * 2 * 2 * 8);
}

}  // namespace
}  // namespace qforge

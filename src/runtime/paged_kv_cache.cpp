// PagedKvCache (include/qforge/runtime/paged_kv_cache.h): the page pool, the free list, block
// tables and the K/V row encoders (F16/BF16 rounding, FP8/INT8 codes through formats/quantize.h,
// the same functions kv_cache_fake_quantize uses).
#include "qforge/runtime/paged_kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "backend/cpu/paged_attention.h"
#include "qforge/core/log.h"
#include "qforge/formats/quantize.h"
#include "qforge/formats/scalar.h"

namespace qforge {

PagedKvCacheOptions paged_kv_cache_options(const ModelConfig& config, const BuildConfig& build,
                                           KvCacheStorage storage, const KvCacheQuant& quant) {
  PagedKvCacheOptions o;
  o.n_layers = config.num_hidden_layers;
  o.n_kv_heads = config.num_key_value_heads;
  o.head_dim = config.head_dim;
  o.block_size = build.kv_cache_block_size;
  o.storage = storage;
  o.quant = quant;
  const int64_t per_seq = (build.max_seq_len + o.block_size - 1) / o.block_size;
  o.n_blocks = build.kv_cache_blocks > 0 ? build.kv_cache_blocks : build.max_batch_size * per_seq;
  return o;
}

void PagedKvCache::FreeBytes::operator()(uint8_t* p) const {
  ::operator delete[](p, std::align_val_t{64});
}

Result<std::unique_ptr<PagedKvCache>> PagedKvCache::create(const PagedKvCacheOptions& o) {
  const auto positive = [](const char* field, int64_t v) -> Status {
    if (v < 1) {
      return make_error(ErrorCode::kInvalidArgument, "paged KV cache: {} = {} must be >= 1", field,
                        v);
    }
    return ok_status();
  };
  QF_TRY(positive("n_layers", o.n_layers));
  QF_TRY(positive("n_kv_heads", o.n_kv_heads));
  QF_TRY(positive("head_dim", o.head_dim));
  QF_TRY(positive("block_size", o.block_size));
  QF_TRY(positive("n_blocks", o.n_blocks));
  if (o.n_blocks > (int64_t{1} << 31) - 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "paged KV cache: n_blocks = {} exceeds the page-id range 2^31 - 1",
                      o.n_blocks);
  }
  auto cache = std::unique_ptr<PagedKvCache>(new PagedKvCache());
  PagedKvCache& c = *cache;
  c.options_ = o;
  const bool quantized = o.storage == KvCacheStorage::kFp8 || o.storage == KvCacheStorage::kInt8;
  if (quantized) {
    const KvCacheDType want =
        o.storage == KvCacheStorage::kFp8 ? KvCacheDType::kFp8 : KvCacheDType::kInt8;
    KvCacheQuant q = o.quant;
    if (q.dtype != want) {
      if (want == KvCacheDType::kInt8) {
        return make_error(ErrorCode::kInvalidArgument,
                          "paged KV cache: int8 storage needs calibrated INT8 KV scales but the "
                          "model has {} (quantize with --kv-cache int8, or pick fp8/f16)",
                          q.enabled() ? kv_cache_dtype_name(q.dtype) : "none");
      }
      if (q.enabled()) {
        log_warn(
            "paged KV cache: fp8 storage with {} scales from the checkpoint; using unit "
            "scales",
            kv_cache_dtype_name(q.dtype));
      }
      q = kv_cache_quant_unit_scales(want, o.n_layers);
    }
    QF_TRY(validate_kv_cache_quant(q, o.n_layers, o.n_kv_heads).context("paged KV cache"));
    for (int64_t l = 0; l < o.n_layers; ++l) {
      for (int64_t g = 0; g < o.n_kv_heads; ++g) {
        c.k_scales_.push_back(q.k(l, g, o.n_kv_heads));
        c.v_scales_.push_back(q.v(l, g, o.n_kv_heads));
      }
    }
    c.options_.quant = q;
  }
  c.head_stride_ = o.block_size * o.head_dim * kv_cache_storage_bytes(o.storage);
  c.page_stride_ = 2 * o.n_kv_heads * c.head_stride_;
  c.layer_bytes_ = static_cast<uint64_t>(c.page_stride_) * static_cast<uint64_t>(o.n_blocks);
  c.pool_bytes_ = c.layer_bytes_ * static_cast<uint64_t>(o.n_layers);
  auto* raw =
      static_cast<uint8_t*>(::operator new[](c.pool_bytes_, std::align_val_t{64}, std::nothrow));
  if (raw == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "paged KV cache: cannot allocate {} pages of {} positions ({:.3f} GB); "
                      "lower kv_cache_blocks, max_batch_size or max_seq_len",
                      o.n_blocks, o.block_size, static_cast<double>(c.pool_bytes_) / 1e9);
  }
  c.pool_.reset(raw);
  // Highest ids on top of the stack: pages are handed out from id 0 up.
  c.free_.resize(static_cast<size_t>(o.n_blocks));
  for (int64_t i = 0; i < o.n_blocks; ++i) c.free_[static_cast<size_t>(i)] = o.n_blocks - 1 - i;
  return cache;
}

uint64_t PagedKvCache::bytes_per_token() const {
  return 2 * static_cast<uint64_t>(options_.n_layers * options_.n_kv_heads * options_.head_dim *
                                   kv_cache_storage_bytes(options_.storage));
}

PagedKvCache::SeqId PagedKvCache::add_sequence() {
  SeqId id = 0;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<SeqId>(seqs_.size());
    seqs_.emplace_back();
  }
  seqs_[static_cast<size_t>(id)].live = true;
  ++live_;
  return id;
}

bool PagedKvCache::try_reserve(SeqId seq, int64_t n_tokens) {
  Sequence& s = seqs_.at(static_cast<size_t>(seq));
  QF_CHECK(s.live);
  const int64_t need = blocks_for(n_tokens) - static_cast<int64_t>(s.table.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    s.table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void PagedKvCache::release(SeqId seq) {
  Sequence& s = seqs_.at(static_cast<size_t>(seq));
  QF_CHECK(s.live);
  // Pages go back in reverse so the next sequence gets the same ids in the same order.
  for (auto it = s.table.rbegin(); it != s.table.rend(); ++it) free_.push_back(*it);
  s.table.clear();
  s.table.shrink_to_fit();
  s.live = false;
  free_ids_.push_back(seq);
  --live_;
}

int64_t PagedKvCache::capacity(SeqId seq) const {
  return static_cast<int64_t>(block_table(seq).size()) * options_.block_size;
}

const std::vector<int32_t>& PagedKvCache::block_table(SeqId seq) const {
  const Sequence& s = seqs_.at(static_cast<size_t>(seq));
  QF_CHECK(s.live);
  return s.table;
}

const float* PagedKvCache::k_scales(int64_t layer) const {
  return k_scales_.empty() ? nullptr : k_scales_.data() + layer * options_.n_kv_heads;
}
const float* PagedKvCache::v_scales(int64_t layer) const {
  return v_scales_.empty() ? nullptr : v_scales_.data() + layer * options_.n_kv_heads;
}

uint8_t* PagedKvCache::element(SeqId seq, int64_t layer, int64_t pos, int64_t head, bool value) {
  const std::vector<int32_t>& table = block_table(seq);
  const int64_t bs = options_.block_size;
  return pool_.get() + static_cast<uint64_t>(layer) * layer_bytes_ +
         static_cast<uint64_t>(table[static_cast<size_t>(pos / bs)]) * page_stride_ +
         (value ? value_offset() : 0) + head * head_stride_ +
         (pos % bs) * options_.head_dim * kv_cache_storage_bytes(options_.storage);
}

void PagedKvCache::write(SeqId seq, int64_t layer, int64_t pos0, int64_t n, const float* k,
                         int64_t k_stride, const float* v, int64_t v_stride) {
  QF_CHECK(layer >= 0 && layer < options_.n_layers && pos0 >= 0 && pos0 + n <= capacity(seq));
  const int64_t hd = options_.head_dim;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t g = 0; g < options_.n_kv_heads; ++g) {
      for (int kv = 0; kv < 2; ++kv) {
        const float* src = (kv == 0 ? k + t * k_stride : v + t * v_stride) + g * hd;
        uint8_t* dst = element(seq, layer, pos0 + t, g, kv == 1);
        const float scale =
            k_scales_.empty()
                ? 1.0f
                : (kv == 0 ? k_scales_
                           : v_scales_)[static_cast<size_t>(layer * options_.n_kv_heads + g)];
        switch (options_.storage) {
          case KvCacheStorage::kF32:
            std::memcpy(dst, src, static_cast<size_t>(hd) * sizeof(float));
            break;
          case KvCacheStorage::kF16:
          case KvCacheStorage::kBF16: {
            auto* out = reinterpret_cast<uint16_t*>(dst);
            const bool bf16 = options_.storage == KvCacheStorage::kBF16;
            for (int64_t i = 0; i < hd; ++i) {
              out[i] = bf16 ? float_to_bf16(src[i]) : float_to_f16(src[i]);
            }
            break;
          }
          case KvCacheStorage::kFp8:
            quantize_row_fp8(src, hd, scale, ScalarFormat::E4M3FN, dst);
            break;
          case KvCacheStorage::kInt8:
            quantize_row_int8(src, hd, scale, reinterpret_cast<int8_t*>(dst));
            break;
        }
      }
    }
  }
}

void PagedKvCache::read_row(SeqId seq, int64_t layer, int64_t pos, int64_t head, bool value,
                            float* out) const {
  QF_CHECK(pos >= 0 && pos < capacity(seq));
  auto* self = const_cast<PagedKvCache*>(this);
  const uint8_t* src = self->element(seq, layer, pos, head, value);
  static constexpr cpu::PagedKvDType kDTypes[] = {
      cpu::PagedKvDType::kF32, cpu::PagedKvDType::kF16, cpu::PagedKvDType::kBF16,
      cpu::PagedKvDType::kFp8E4M3FN, cpu::PagedKvDType::kInt8};
  const float* scales = value ? v_scales(layer) : k_scales(layer);
  cpu::paged_kv_decode_row(src, kDTypes[static_cast<int>(options_.storage)],
                           scales ? scales[head] : 1.0f, options_.head_dim, out);
}

}  // namespace qforge

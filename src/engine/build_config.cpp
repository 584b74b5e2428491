// BuildConfig names, parsing and validation (include/qforge/engine/build_config.h).
#include "qforge/engine/build_config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace qforge {
namespace {

std::string lower(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

constexpr std::array<std::pair<KvCacheStorage, const char*>, 5> kKvNames = {{
    {KvCacheStorage::kF32, "f32"},
    {KvCacheStorage::kF16, "f16"},
    {KvCacheStorage::kBF16, "bf16"},
    {KvCacheStorage::kFp8, "fp8"},
    {KvCacheStorage::kInt8, "int8"},
}};

// Upper bounds that keep every product of limits far from int64 overflow.
constexpr int64_t kMaxSeqLen = int64_t{1} << 24;
constexpr int64_t kMaxBatch = int64_t{1} << 16;

}  // namespace

std::string_view backend_name(Backend backend) {
  return backend == Backend::kCpu ? "cpu" : "cuda";
}

Result<Backend> parse_backend(std::string_view text) {
  const std::string s = lower(text);
  if (s == "cpu") return Backend::kCpu;
  if (s == "cuda" || s == "gpu") return Backend::kCuda;
  return make_error(ErrorCode::kInvalidArgument, "backend '{}' is unknown; expected cpu or cuda",
                    text);
}

std::string_view kv_cache_storage_name(KvCacheStorage s) {
  for (const auto& [value, name] : kKvNames) {
    if (value == s) return name;
  }
  return "?";
}

Result<KvCacheStorage> parse_kv_cache_storage(std::string_view text) {
  std::string s = lower(text);
  if (s == "float32" || s == "fp32") s = "f32";
  if (s == "float16" || s == "fp16" || s == "half") s = "f16";
  if (s == "bfloat16") s = "bf16";
  if (s == "fp8_e4m3" || s == "e4m3") s = "fp8";
  for (const auto& [value, name] : kKvNames) {
    if (s == name) return value;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "KV-cache type '{}' is unknown; expected f32, f16, bf16, fp8 or int8", text);
}

int64_t kv_cache_storage_bytes(KvCacheStorage s) {
  switch (s) {
    case KvCacheStorage::kF32:
      return 4;
    case KvCacheStorage::kF16:
    case KvCacheStorage::kBF16:
      return 2;
    case KvCacheStorage::kFp8:
    case KvCacheStorage::kInt8:
      return 1;
  }
  return 4;
}

int64_t effective_max_num_tokens(const BuildConfig& c) {
  return c.max_num_tokens > 0 ? c.max_num_tokens : std::max(c.max_input_len, c.max_batch_size);
}

KvCacheStorage resolve_kv_cache_storage(const BuildConfig& c, KvCacheDType checkpoint_kv) {
  if (c.kv_cache_storage) return *c.kv_cache_storage;
  if (checkpoint_kv == KvCacheDType::kFp8) return KvCacheStorage::kFp8;
  if (checkpoint_kv == KvCacheDType::kInt8) return KvCacheStorage::kInt8;
  if (c.precision == DType::F16) return KvCacheStorage::kF16;
  if (c.precision == DType::BF16) return KvCacheStorage::kBF16;
  return KvCacheStorage::kF32;
}

int64_t effective_kv_cache_blocks(const BuildConfig& c) {
  if (c.kv_cache_blocks > 0) return c.kv_cache_blocks;
  const int64_t per_seq = (c.max_seq_len + c.kv_cache_block_size - 1) / c.kv_cache_block_size;
  return per_seq * c.max_batch_size;
}

Status validate_build_config(const BuildConfig& c) {
  const auto range = [](const char* field, int64_t v, int64_t lo, int64_t hi) -> Status {
    if (v < lo || v > hi) {
      return make_error(ErrorCode::kInvalidArgument,
                        "build config: {} = {} is out of range [{}, {}]", field, v, lo, hi);
    }
    return ok_status();
  };
  QF_TRY(range("max_input_len", c.max_input_len, 1, kMaxSeqLen));
  QF_TRY(range("max_seq_len", c.max_seq_len, 1, kMaxSeqLen));
  QF_TRY(range("max_batch_size", c.max_batch_size, 1, kMaxBatch));
  QF_TRY(range("max_num_tokens", c.max_num_tokens, 0, kMaxSeqLen));
  QF_TRY(range("kv_cache_block_size", c.kv_cache_block_size, 1, 1024));
  QF_TRY(range("kv_cache_blocks", c.kv_cache_blocks, 0, int64_t{1} << 30));
  if (c.max_input_len > c.max_seq_len) {
    return make_error(ErrorCode::kInvalidArgument,
                      "build config: max_input_len {} exceeds max_seq_len {} (a prompt must leave "
                      "room for at least itself)",
                      c.max_input_len, c.max_seq_len);
  }
  if ((c.kv_cache_block_size & (c.kv_cache_block_size - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "build config: kv_cache_block_size {} must be a power of two",
                      c.kv_cache_block_size);
  }
  if (c.max_num_tokens != 0 && c.max_num_tokens < c.max_batch_size) {
    return make_error(ErrorCode::kInvalidArgument,
                      "build config: max_num_tokens {} is below max_batch_size {} (one decode step "
                      "of a full batch carries max_batch_size tokens)",
                      c.max_num_tokens, c.max_batch_size);
  }
  if (c.precision != DType::F32 && c.precision != DType::F16 && c.precision != DType::BF16) {
    return make_error(ErrorCode::kInvalidArgument,
                      "build config: precision {} is not supported; expected float32, float16 or "
                      "bfloat16",
                      dtype_name(c.precision));
  }
  if (c.backend != Backend::kCpu) {
    return make_error(ErrorCode::kUnsupported,
                      "build config: backend '{}' has no engine builder in this version (cpu only)",
                      backend_name(c.backend));
  }
  return ok_status();
}

}  // namespace qforge

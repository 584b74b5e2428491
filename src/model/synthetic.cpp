// write_synthetic_checkpoint (include/qforge/model/synthetic.h): safetensors shards whose
// headers are computed up front from the tensor list, then filled by streaming deterministic
// random values block by block (each block of kBlockElems elements has its own Rng stream, so
// the bytes do not depend on the thread count).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "qforge/core/mmap_file.h"
#include "qforge/core/parallel.h"
#include "qforge/core/rng.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/safetensors.h"
#include "qforge/model/synthetic.h"

namespace qforge {
namespace {

constexpr int64_t kBlockElems = 1 << 16;  // one Rng stream per block
constexpr int64_t kChunkElems = 1 << 24;  // elements generated per write (64 MB of F32)
constexpr double kInitStd = 0.02;         // transformers' initializer_range
constexpr double kOutlierScale = 20.0;

enum class Kind { kMatrix, kNorm, kBias };

Kind kind_of(const std::string& name) {
  if (name.find("norm") != std::string::npos) return Kind::kNorm;
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) return Kind::kBias;
  return Kind::kMatrix;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

struct PlannedTensor {
  TensorSpec spec;
  int64_t numel = 0;
  uint64_t bytes = 0;
  int shard = 0;
  uint64_t begin = 0;  // offset in its shard's data section
};

// The hidden channels that carry outliers: the first `n` of a seeded permutation.
std::vector<int64_t> outlier_channels(int64_t hidden, int64_t n, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(hidden));
  for (int64_t i = 0; i < hidden; ++i) all[i] = i;
  Rng rng(seed, fnv1a("outlier-channels"));
  rng.shuffle(std::span<int64_t>(all));
  all.resize(static_cast<size_t>(std::min(n, hidden)));
  std::sort(all.begin(), all.end());
  return all;
}

// Values [begin, begin + count) of one tensor, as F32.
void generate(const PlannedTensor& t, uint64_t seed, const std::vector<int64_t>& outliers,
              int64_t begin, int64_t count, float* out) {
  const Kind kind = kind_of(t.spec.name);
  const uint64_t stream = fnv1a(t.spec.name);
  const bool layer_norm = kind == Kind::kNorm && !outliers.empty() &&
                          (t.spec.name.find("input_layernorm") != std::string::npos ||
                           t.spec.name.find("post_attention_layernorm") != std::string::npos);
  const int64_t first_block = begin / kBlockElems;
  const int64_t last_block = (begin + count - 1) / kBlockElems;
  parallel_for(first_block, last_block + 1, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      Rng rng(seed, stream * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(b));
      const int64_t block_begin = b * kBlockElems;
      const int64_t block_end = std::min(block_begin + kBlockElems, t.numel);
      for (int64_t i = block_begin; i < block_end; ++i) {
        const double z = rng.normal(0.0, kInitStd);  // drawn for every element: stream position
        if (i < begin || i >= begin + count) continue;
        double v = kind == Kind::kNorm ? 1.0 + z : z;
        if (layer_norm && std::binary_search(outliers.begin(), outliers.end(), i)) {
          v *= kOutlierScale;
        }
        out[i - begin] = static_cast<float>(v);
      }
    }
  });
}

void encode(const float* src, int64_t n, DType dtype, std::vector<std::byte>& dst) {
  dst.resize(static_cast<size_t>(n) * static_cast<size_t>(dtype_size(dtype)));
  if (dtype == DType::F32) {
    std::memcpy(dst.data(), src, dst.size());
    return;
  }
  auto* out = reinterpret_cast<uint16_t*>(dst.data());
  parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      out[i] = dtype == DType::BF16 ? float_to_bf16(src[i]) : float_to_f16(src[i]);
    }
  });
}

std::string shard_name(int shard, int n_shards) {
  if (n_shards == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, n_shards);
}

Result<std::string> shard_header(const std::vector<PlannedTensor>& tensors, int shard,
                                 DType dtype) {
  QF_ASSIGN_OR_RETURN(std::string_view dtype_str, safetensors_dtype_name(dtype));
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}, {"producer", "qforge synth"}};
  for (const PlannedTensor& t : tensors) {
    if (t.shard != shard) continue;
    h[t.spec.name] = {{"dtype", std::string(dtype_str)},
                      {"shape", t.spec.shape},
                      {"data_offsets", {t.begin, t.begin + t.bytes}}};
  }
  std::string json = h.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + json;
}

}  // namespace

Status write_synthetic_checkpoint(const ModelConfig& config, const SynthOptions& o,
                                  const std::filesystem::path& dir, const SynthProgress& progress) {
  QF_TRY(validate_model_config(config).context("synthetic checkpoint config"));
  if (o.dtype != DType::F32 && o.dtype != DType::F16 && o.dtype != DType::BF16) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--dtype {} is not supported for synthetic checkpoints (use f32, f16 or "
                      "bf16)",
                      dtype_name(o.dtype));
  }
  if (o.outlier_channels < 0 || o.outlier_channels > config.hidden_size) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--outlier-channels {} is out of range; expected 0 to hidden_size = {}",
                      o.outlier_channels, config.hidden_size);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create output directory '{}': {}", dir.string(),
                      ec.message());
  }

  // Plan: tensors in checkpoint order, cut into shards of at most max_shard_bytes.
  std::vector<PlannedTensor> tensors;
  uint64_t shard_bytes = 0;
  int shard = 0;
  uint64_t total_bytes = 0;
  for (TensorSpec& spec : model_tensor_specs(config)) {
    PlannedTensor t;
    t.numel = 1;
    for (int64_t d : spec.shape) t.numel *= d;
    t.bytes = static_cast<uint64_t>(t.numel) * static_cast<uint64_t>(dtype_size(o.dtype));
    if (shard_bytes > 0 && shard_bytes + t.bytes > o.max_shard_bytes) {
      ++shard;
      shard_bytes = 0;
    }
    t.shard = shard;
    t.begin = shard_bytes;
    t.spec = std::move(spec);
    shard_bytes += t.bytes;
    total_bytes += t.bytes;
    tensors.push_back(std::move(t));
  }
  const int n_shards = shard + 1;
  const std::vector<int64_t> outliers =
      outlier_channels(config.hidden_size, o.outlier_channels, o.seed);

  ModelConfig written = config;
  written.torch_dtype = o.dtype;
  QF_TRY(write_file_atomic(dir / "config.json", hf_config_json(written)));

  std::vector<float> values;
  std::vector<std::byte> encoded;
  uint64_t done_bytes = 0;
  int64_t done_tensors = 0;
  for (int s = 0; s < n_shards; ++s) {
    const std::filesystem::path path = dir / shard_name(s, n_shards);
    QF_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::create(path));
    QF_ASSIGN_OR_RETURN(std::string header, shard_header(tensors, s, o.dtype));
    QF_TRY(file.write(header));
    for (const PlannedTensor& t : tensors) {
      if (t.shard != s) continue;
      for (int64_t begin = 0; begin < t.numel; begin += kChunkElems) {
        const int64_t count = std::min(kChunkElems, t.numel - begin);
        values.resize(static_cast<size_t>(count));
        generate(t, o.seed, outliers, begin, count, values.data());
        encode(values.data(), count, o.dtype, encoded);
        QF_TRY(file.write(encoded).context(fmt::format("writing '{}'", path.string())));
        done_bytes += encoded.size();
      }
      ++done_tensors;
      if (progress) progress(done_tensors, static_cast<int64_t>(tensors.size()), done_bytes);
    }
    QF_TRY(file.commit());
  }
  if (n_shards > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_bytes}};
    nlohmann::ordered_json map;
    for (const PlannedTensor& t : tensors) map[t.spec.name] = shard_name(t.shard, n_shards);
    index["weight_map"] = map;
    QF_TRY(write_file_atomic(dir / "model.safetensors.index.json", index.dump(2) + "\n"));
  }
  return ok_status();
}

}  // namespace qforge

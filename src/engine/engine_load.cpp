// load_engine / open_engine (include/qforge/engine/engine.h): checks what the engine was built
// for (format, version, backend, CPU target), verifies the header and every tensor checksum,
// then maps the weights and opens each packed linear in place.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "engine/engine_checksum.h"
#include "engine/engine_file_writer.h"
#include "engine/engine_metadata.h"
#include "engine/packed_linear_json.h"
#include "qforge/core/log.h"
#include "qforge/core/simd.h"
#include "qforge/engine/engine.h"
#include "qforge/engine/packed_linear.h"
#include "qforge/io/safetensors.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using namespace engine_detail;

Result<std::string> metadata(const SafetensorsFile& f, const char* key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) {
    return make_error(ErrorCode::kFormat, "{}: engine metadata '{}' is missing", f.path(), key);
  }
  return it->second;
}

Status check_identity(const SafetensorsFile& f) {
  auto it = f.metadata().find(kFormatKey);
  if (it == f.metadata().end() || it->second != kFormatValue) {
    return make_error(ErrorCode::kFormat,
                      "{}: not a qforge engine (a safetensors file without '{}' metadata); build "
                      "one with `qforge build --checkpoint DIR --output FILE.engine`",
                      f.path(), kFormatKey);
  }
  QF_ASSIGN_OR_RETURN(std::string version, metadata(f, kVersionKey));
  if (version != std::to_string(kEngineFormatVersion)) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: engine format version {}; this qforge reads version {} (rebuild the "
                      "engine with this qforge)",
                      f.path(), version, kEngineFormatVersion);
  }
  QF_ASSIGN_OR_RETURN(std::string backend, metadata(f, kBackendKey));
  if (backend != backend_name(Backend::kCpu)) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: the engine was built for the '{}' backend; this loader runs cpu engines",
                      f.path(), backend);
  }
  QF_ASSIGN_OR_RETURN(std::string target, metadata(f, kCpuTargetKey));
  std::string here;
  for (const SimdTarget& t : simd_targets()) {
    if (t.name == target) return ok_status();
    here += (here.empty() ? "" : ", ") + t.name;
  }
  return make_error(ErrorCode::kUnsupported,
                    "{}: the engine was built for CPU target {} (its kernels were chosen and laid "
                    "out for it) and this CPU runs {}; rebuild the engine on this machine",
                    f.path(), target, here);
}

Status verify_checksums(const SafetensorsFile& f) {
  std::vector<HeaderTensor> tensors;
  for (const auto& t : f.tensors()) {
    QF_ASSIGN_OR_RETURN(std::string_view dt, safetensors_dtype_name(t.dtype));
    tensors.push_back({t.name, std::string(dt),
                       std::vector<int64_t>(t.shape.dims().begin(), t.shape.dims().end()), t.begin,
                       t.end});
  }
  QF_ASSIGN_OR_RETURN(std::string header_sum, metadata(f, kHeaderChecksumKey));
  const std::string canon = canonical_header(f.metadata(), tensors);
  uint64_t want = 0;
  if (!parse_checksum_hex(header_sum, &want) ||
      checksum64(std::as_bytes(std::span<const char>(canon))) != want) {
    return make_error(ErrorCode::kFormat,
                      "{}: the engine header fails its checksum (the file is corrupted; rebuild "
                      "it or copy it again)",
                      f.path());
  }
  QF_ASSIGN_OR_RETURN(std::string sums_text, metadata(f, kChecksumsKey));
  QF_ASSIGN_OR_RETURN(nlohmann::json sums, parse_metadata_json(kChecksumsKey, sums_text));
  if (!sums.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: '{}' is not an object", f.path(), kChecksumsKey);
  }
  for (const auto& t : f.tensors()) {
    if (t.name.rfind(kPadPrefix, 0) == 0) continue;
    auto it = sums.find(t.name);
    uint64_t expect = 0;
    if (it == sums.end() || !it->is_string() ||
        !parse_checksum_hex(it->get<std::string>(), &expect)) {
      return make_error(ErrorCode::kFormat, "{}: tensor '{}' has no valid checksum entry", f.path(),
                        t.name);
    }
    if (checksum64_parallel(f.tensor_bytes(t)) != expect) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' (bytes {}..{} of the data) fails its checksum: the file "
                        "is corrupted (rebuild the engine or copy it again)",
                        f.path(), t.name, t.begin, t.end);
    }
  }
  return ok_status();
}

Result<std::shared_ptr<const Tokenizer>> engine_tokenizer(const SafetensorsFile& f, int64_t vocab) {
  const SafetensorsTensorInfo* info = f.find(kTokenizerTensor);
  if (info == nullptr) return std::shared_ptr<const Tokenizer>();
  const auto bytes = f.tensor_bytes(*info);
  QF_ASSIGN_OR_RETURN(std::string kind, metadata(f, kTokenizerKindKey));
  const std::string source = f.path() + " (embedded tokenizer)";
  std::unique_ptr<Tokenizer> tok;
  if (kind == "json") {
    std::string config;
    if (auto it = f.metadata().find(kTokenizerConfigKey); it != f.metadata().end()) {
      config = it->second;
    }
    QF_ASSIGN_OR_RETURN(
        tok, parse_tokenizer_json(
                 std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                 source, config));
  } else if (kind == "sentencepiece") {
    QF_ASSIGN_OR_RETURN(tok, parse_sentencepiece_model(bytes, source));
  } else if (kind == "llama2c") {
    QF_ASSIGN_OR_RETURN(tok, parse_llama2c_tokenizer(bytes, source, vocab));
  } else {
    return make_error(ErrorCode::kFormat, "{}: tokenizer kind '{}' is unknown", f.path(), kind);
  }
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

// The KV-cache element type the engine runs with.
KvCacheStorage resolve_kv_storage(const BuildConfig& bc, const KvCacheQuant& kv) {
  if (bc.kv_cache_storage) return *bc.kv_cache_storage;
  if (kv.dtype == KvCacheDType::kFp8) return KvCacheStorage::kFp8;
  if (kv.dtype == KvCacheDType::kInt8) return KvCacheStorage::kInt8;
  if (bc.precision == DType::F16) return KvCacheStorage::kF16;
  if (bc.precision == DType::BF16) return KvCacheStorage::kBF16;
  return KvCacheStorage::kF32;
}

}  // namespace

Result<Engine> load_engine(const std::string& path) {
  QF_ASSIGN_OR_RETURN(SafetensorsFile file,
                      SafetensorsFile::open(path).context(fmt::format("opening engine {}", path)));
  QF_TRY(check_identity(file));
  QF_TRY(verify_checksums(file));
  Engine engine;
  engine.path = path;
  QF_ASSIGN_OR_RETURN(std::string bc_text, metadata(file, kBuildConfigKey));
  QF_ASSIGN_OR_RETURN(nlohmann::json bc_json, parse_metadata_json(kBuildConfigKey, bc_text));
  QF_ASSIGN_OR_RETURN(engine.build_config, build_config_from_json(bc_json).context(path));

  LoadedModel loaded;
  QF_ASSIGN_OR_RETURN(std::string mc_text, metadata(file, kModelConfigKey));
  QF_ASSIGN_OR_RETURN(loaded.config, model_config_from_text(mc_text).context(path));
  QF_ASSIGN_OR_RETURN(std::string kv_text, metadata(file, kKvCacheKey));
  QF_ASSIGN_OR_RETURN(nlohmann::json kv_json, parse_metadata_json(kKvCacheKey, kv_text));
  QF_ASSIGN_OR_RETURN(loaded.kv_cache_quant, kv_cache_quant_from_json(kv_json).context(path));
  loaded.format = "qforge-engine";
  loaded.weights.set_source(path);

  // Packed linears: info from the metadata, blobs in the file.
  QF_ASSIGN_OR_RETURN(std::string lin_text, metadata(file, kLinearsKey));
  QF_ASSIGN_OR_RETURN(nlohmann::json lin_json, parse_metadata_json(kLinearsKey, lin_text));
  if (!lin_json.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: '{}' is not an object", path, kLinearsKey);
  }
  std::map<std::string, PackedLinearInfo> infos;
  for (const auto& [module, j] : lin_json.items()) {
    QF_ASSIGN_OR_RETURN(PackedLinearInfo info, packed_linear_info_from_json(j).context(
                                                   fmt::format("{}: {}", path, module)));
    if (file.find(module + kPackedSuffix) == nullptr) {
      return make_error(ErrorCode::kFormat, "{}: linear '{}' has no tensor '{}{}'", path, module,
                        module, kPackedSuffix);
    }
    loaded.factory_linears.insert(module);
    infos.emplace(module, std::move(info));
  }
  for (const auto& t : file.tensors()) {
    if (t.name.rfind(kPadPrefix, 0) == 0 || t.name == kTokenizerTensor) continue;
    if (t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, kPackedSuffix) == 0) continue;
    QF_ASSIGN_OR_RETURN(TensorView v, file.view(t));
    QF_TRY(loaded.weights.add(t.name, v, file.keep_alive()));
  }
  const std::shared_ptr<const void> keep = file.keep_alive();
  const WeightMatrixFactory factory =
      [&](const ModelWeights& w, const std::string& name) -> Result<std::unique_ptr<WeightMatrix>> {
    const std::string module = name.substr(0, name.rfind('.'));
    auto it = infos.find(module);
    if (it == infos.end()) return dense_weight_matrix_factory(w, name);
    const SafetensorsTensorInfo* t = file.find(module + kPackedSuffix);
    const auto bytes = file.tensor_bytes(*t);
    return open_packed_linear(it->second,
                              std::span<const uint8_t>(
                                  reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                              keep)
        .context(fmt::format("{}: {}", path, module));
  };
  QF_ASSIGN_OR_RETURN(auto tok, engine_tokenizer(file, loaded.config.vocab_size));
  engine.tokenizer = std::move(tok);
  engine.kv_cache_storage = resolve_kv_storage(engine.build_config, loaded.kv_cache_quant);
  QF_ASSIGN_OR_RETURN(engine.model, Model::create(std::move(loaded), factory).context(path));
  return engine;
}

}  // namespace qforge

// load_engine / open_engine (include/qforge/engine/engine.h): checks what the engine was built
// for (format, version, backend, CPU target), verifies the header and every tensor checksum,
// then maps the weights and opens each packed linear in place.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <map>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "engine/engine_checksum.h"
#include "engine/engine_file_writer.h"
#include "engine/engine_metadata.h"
#include "engine/packed_linear_json.h"
#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/simd.h"
#include "qforge/engine/engine.h"
#include "qforge/engine/packed_linear.h"
#include "qforge/io/safetensors.h"
#include "qforge/tokenizer/tokenizer_formats.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using namespace engine_detail;

// The engine file's bytes (mapped, or read into anonymous memory) with its parsed header.
struct EngineImage {
  std::string path;
  std::shared_ptr<const void> keep_alive;
  std::span<const std::byte> bytes;  // the whole file
  SafetensorsHeader header;
  std::map<std::string, size_t> index;  // tensor name -> header.tensors position

  const std::map<std::string, std::string>& metadata() const { return header.metadata; }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return header.tensors; }
  const SafetensorsTensorInfo* find(const std::string& name) const {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &header.tensors[it->second];
  }
  std::span<const std::byte> tensor_bytes(const SafetensorsTensorInfo& t) const {
    return bytes.subspan(static_cast<size_t>(header.data_offset + t.begin),
                         static_cast<size_t>(t.end - t.begin));
  }
};

// Anonymous memory for a whole engine, 2 MiB aligned and advised for transparent huge pages:
// streaming weights from huge pages avoids the TLB misses and 4 KiB prefetch-stream restarts of
// page-cache pages (docs/PERFORMANCE.md, "engine weights: mmap vs anonymous memory").
struct AnonBuffer {
  void* base = nullptr;
  size_t mapped = 0;
  std::byte* data = nullptr;
  ~AnonBuffer() {
    if (base != nullptr) ::munmap(base, mapped);
  }
};

Result<std::shared_ptr<AnonBuffer>> read_into_anonymous_memory(const std::string& path,
                                                               uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "{}: cannot open: {}", path, std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a regular file", path);
  }
  *size = static_cast<uint64_t>(st.st_size);
  constexpr size_t kHuge = size_t{2} << 20;
  auto buf = std::make_shared<AnonBuffer>();
  buf->mapped = (static_cast<size_t>(st.st_size) + 2 * kHuge - 1) / kHuge * kHuge;
  buf->base =
      ::mmap(nullptr, buf->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf->base == MAP_FAILED) {
    buf->base = nullptr;
    return make_error(ErrorCode::kIo, "{}: cannot allocate {} bytes for the engine: {}", path,
                      buf->mapped, std::strerror(errno));
  }
  const auto addr = reinterpret_cast<uintptr_t>(buf->base);
  buf->data = reinterpret_cast<std::byte*>((addr + kHuge - 1) / kHuge * kHuge);
  ::madvise(buf->data, buf->mapped - kHuge, MADV_HUGEPAGE);
  for (uint64_t off = 0; off < *size;) {
    const ssize_t n = ::pread(fd, buf->data + off, std::min<uint64_t>(*size - off, 64 << 20),
                              static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return make_error(ErrorCode::kIo, "{}: read failed at byte {}: {}", path, off,
                        n < 0 ? std::strerror(errno) : "unexpected end of file");
    }
    off += static_cast<uint64_t>(n);
  }
  return buf;
}

Result<EngineImage> open_image(const std::string& path, bool use_mmap) {
  EngineImage img;
  img.path = path;
  if (use_mmap) {
    QF_ASSIGN_OR_RETURN(MmapFile f, MmapFile::open(path));
    auto shared = std::make_shared<MmapFile>(std::move(f));
    img.bytes = shared->bytes();
    img.keep_alive = std::move(shared);
  } else {
    uint64_t size = 0;
    QF_ASSIGN_OR_RETURN(auto buf, read_into_anonymous_memory(path, &size));
    img.bytes = std::span<const std::byte>(buf->data, static_cast<size_t>(size));
    img.keep_alive = std::move(buf);
  }
  QF_ASSIGN_OR_RETURN(img.header, parse_safetensors_header(img.bytes, path));
  for (size_t i = 0; i < img.header.tensors.size(); ++i) img.index[img.header.tensors[i].name] = i;
  return img;
}

Result<std::string> metadata(const EngineImage& f, const char* key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end()) {
    return make_error(ErrorCode::kFormat, "{}: engine metadata '{}' is missing", f.path, key);
  }
  return it->second;
}

Status check_identity(const EngineImage& f) {
  auto it = f.metadata().find(kFormatKey);
  if (it == f.metadata().end() || it->second != kFormatValue) {
    return make_error(ErrorCode::kFormat,
                      "{}: not a qforge engine (a safetensors file without '{}' metadata); build "
                      "one with `qforge build --checkpoint DIR --output FILE.engine`",
                      f.path, kFormatKey);
  }
  QF_ASSIGN_OR_RETURN(std::string version, metadata(f, kVersionKey));
  if (version != std::to_string(kEngineFormatVersion)) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: engine format version {}; this qforge reads version {} (rebuild the "
                      "engine with this qforge)",
                      f.path, version, kEngineFormatVersion);
  }
  QF_ASSIGN_OR_RETURN(std::string backend, metadata(f, kBackendKey));
  if (backend != backend_name(Backend::kCpu)) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: the engine was built for the '{}' backend; this loader runs cpu engines",
                      f.path, backend);
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
                    f.path, target, here);
}

Status verify_checksums(const EngineImage& f) {
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
                      f.path);
  }
  QF_ASSIGN_OR_RETURN(std::string sums_text, metadata(f, kChecksumsKey));
  QF_ASSIGN_OR_RETURN(nlohmann::json sums, parse_metadata_json(kChecksumsKey, sums_text));
  if (!sums.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: '{}' is not an object", f.path, kChecksumsKey);
  }
  for (const auto& t : f.tensors()) {
    if (t.name.rfind(kPadPrefix, 0) == 0) continue;
    auto it = sums.find(t.name);
    uint64_t expect = 0;
    if (it == sums.end() || !it->is_string() ||
        !parse_checksum_hex(it->get<std::string>(), &expect)) {
      return make_error(ErrorCode::kFormat, "{}: tensor '{}' has no valid checksum entry", f.path,
                        t.name);
    }
    if (checksum64_parallel(f.tensor_bytes(t)) != expect) {
      return make_error(ErrorCode::kFormat,
                        "{}: tensor '{}' (bytes {}..{} of the data) fails its checksum: the file "
                        "is corrupted (rebuild the engine or copy it again)",
                        f.path, t.name, t.begin, t.end);
    }
  }
  return ok_status();
}

Result<std::shared_ptr<const Tokenizer>> engine_tokenizer(const EngineImage& f, int64_t vocab) {
  const SafetensorsTensorInfo* info = f.find(kTokenizerTensor);
  if (info == nullptr) return std::shared_ptr<const Tokenizer>();
  const auto bytes = f.tensor_bytes(*info);
  QF_ASSIGN_OR_RETURN(std::string kind, metadata(f, kTokenizerKindKey));
  const std::string source = f.path + " (embedded tokenizer)";
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
    return make_error(ErrorCode::kFormat, "{}: tokenizer kind '{}' is unknown", f.path, kind);
  }
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

}  // namespace

Result<Engine> load_engine(const std::string& path, const EngineLoadOptions& options) {
  QF_ASSIGN_OR_RETURN(
      EngineImage file,
      open_image(path, options.use_mmap).context(fmt::format("opening engine {}", path)));
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
    QF_ASSIGN_OR_RETURN(TensorView v,
                        TensorView::from_bytes(file.tensor_bytes(t), t.dtype, t.shape));
    QF_TRY(loaded.weights.add(t.name, v, file.keep_alive));
  }
  const std::shared_ptr<const void> keep = file.keep_alive;
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
  engine.kv_cache_storage =
      resolve_kv_cache_storage(engine.build_config, loaded.kv_cache_quant.dtype);
  QF_ASSIGN_OR_RETURN(engine.model, Model::create(std::move(loaded), factory).context(path));
  return engine;
}

}  // namespace qforge

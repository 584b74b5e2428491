// describe_checkpoint: headers-only descriptions of HF directories, safetensors files, GGUF and
// llama2.c checkpoints for `qforge inspect`. Files are validated exactly as the loaders do.
#include "qforge/io/checkpoint_info.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "io/hf_index.h"
#include "io/io_util.h"
#include "io/quant_checkpoint_load.h"
#include "qforge/core/mmap_file.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_config.h"
#include "qforge/io/llama2c.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void add_safetensors(CheckpointInfo& info, const SafetensorsFile& file, const std::string& shard) {
  for (const auto& t : file.tensors()) {
    CheckpointTensor ct;
    ct.name = t.name;
    ct.stored = t.name;
    ct.dtype = lower(safetensors_dtype_name(t.dtype).value_or("?"));
    ct.shape.assign(t.shape.begin(), t.shape.end());
    ct.numel = t.shape.numel();
    ct.nbytes = t.end - t.begin;
    ct.file = shard;
    info.tensors.push_back(std::move(ct));
  }
  for (const auto& [k, v] : file.metadata()) {
    const std::pair<std::string, std::string> kv(k, v);
    if (std::find(info.metadata.begin(), info.metadata.end(), kv) == info.metadata.end()) {
      info.metadata.push_back(kv);
    }
  }
  info.file_bytes += file.file_bytes();
}

Status describe_hf_dir(CheckpointInfo& info, const fs::path& dir) {
  QF_ASSIGN_OR_RETURN(ModelConfig config, load_hf_config(dir));
  info.config = config;
  std::error_code ec;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    QF_ASSIGN_OR_RETURN(auto weight_map, io_detail::read_shard_index(index));
    std::set<std::string> shards;
    for (const auto& [name, shard] : weight_map) shards.insert(shard);
    for (const auto& shard : shards) {
      QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(dir / shard));
      for (const auto& t : file.tensors()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != shard) {
          return make_error(ErrorCode::kFormat,
                            "{}: shard {} holds tensor '{}' but the index maps it to {}",
                            index.string(), shard, io_detail::printable(t.name),
                            it == weight_map.end() ? std::string("nothing") : it->second);
        }
      }
      add_safetensors(info, file, shard);
    }
    std::set<std::string> held;
    for (const auto& t : info.tensors) held.insert(t.name);
    for (const auto& [name, shard] : weight_map) {
      if (held.count(name) == 0) {
        return make_error(ErrorCode::kFormat,
                          "{}: tensor '{}' is mapped to {} but that shard does not contain it",
                          index.string(), io_detail::printable(name), shard);
      }
    }
    info.detail = fmt::format("Hugging Face safetensors, {} shards", shards.size());
    return ok_status();
  }
  QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(dir / "model.safetensors"));
  add_safetensors(info, file, "");
  info.detail = "Hugging Face safetensors, 1 file";
  return ok_status();
}

Status describe_safetensors(CheckpointInfo& info, const fs::path& path) {
  QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(path));
  add_safetensors(info, file, "");
  info.detail = fmt::format("safetensors, header {} bytes", file.header_bytes());
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec)) {
    info.config_note = "no config.json beside the file";
    return ok_status();
  }
  auto config = load_hf_config(dir);
  if (config.ok()) {
    info.config = *config;
  } else {
    info.config_note = config.error().to_string();
  }
  return ok_status();
}

Status describe_gguf(CheckpointInfo& info, const fs::path& path) {
  QF_ASSIGN_OR_RETURN(GgufFile g, GgufFile::open(path));
  info.detail = fmt::format("GGUF v{}, alignment {}, {} metadata keys", g.version(), g.alignment(),
                            g.metadata().size());
  info.file_bytes = g.file_bytes();
  for (const auto& [k, v] : g.metadata()) info.metadata.emplace_back(k, v.to_string());
  for (const auto& t : g.tensors()) {
    CheckpointTensor ct;
    ct.name = gguf_to_hf_tensor_name(t.name);
    ct.stored = t.name;
    ct.dtype = gguf_tensor_type_info(t.type)->name;
    ct.shape.assign(t.ne.rbegin(), t.ne.rend());
    ct.numel = t.shape().numel();
    ct.nbytes = t.nbytes;
    info.tensors.push_back(std::move(ct));
  }
  auto config = gguf_model_config(g);
  if (config.ok()) {
    info.config = *config;
  } else {
    info.config_note = config.error().to_string();
  }
  return ok_status();
}

Status describe_llama2c(CheckpointInfo& info, const fs::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path));
  QF_ASSIGN_OR_RETURN(Llama2cHeader h, parse_llama2c_header(file.bytes(), path.string()));
  info.file_bytes = file.size();
  info.config = llama2c_config(h);
  info.detail = h.version == 0 ? std::string("llama2.c legacy v0 (fp32)")
                : h.version == 1
                    ? std::string("llama2.c ak42 v1 (fp32)")
                    : fmt::format("llama2.c ak42 v2 (int8 Q8_0, group {})", h.group_size);
  for (auto& [name, shape] : llama2c_tensor_list(h)) {
    CheckpointTensor ct;
    ct.name = name;
    ct.stored = name;
    ct.shape.assign(shape.begin(), shape.end());
    ct.numel = shape.numel();
    const bool quantized = h.version == 2 && shape.ndim() == 2;
    ct.dtype = quantized ? fmt::format("q8_0/g{}", h.group_size) : "f32";
    ct.nbytes = quantized ? static_cast<uint64_t>(ct.numel + 4 * (ct.numel / h.group_size))
                          : static_cast<uint64_t>(ct.numel) * 4;
    info.tensors.push_back(std::move(ct));
  }
  return ok_status();
}

}  // namespace

int64_t CheckpointInfo::total_params() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.numel;
  return n;
}

bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      // Compare digit runs by length (after leading zeros), then lexically.
      std::string_view ra(a.data() + i, ei - i), rb(b.data() + j, ej - j);
      while (ra.size() > 1 && ra[0] == '0') ra.remove_prefix(1);
      while (rb.size() > 1 && rb[0] == '0') rb.remove_prefix(1);
      if (ra.size() != rb.size()) return ra.size() < rb.size();
      if (ra != rb) return ra < rb;
      i = ei;
      j = ej;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

Result<CheckpointInfo> describe_checkpoint(const std::string& path) {
  QF_ASSIGN_OR_RETURN(CheckpointFormat format, detect_checkpoint_format(path));
  CheckpointInfo info;
  info.path = path;
  info.format = format;
  switch (format) {
    case CheckpointFormat::HfDirectory: {
      QF_TRY(describe_hf_dir(info, path));
      QF_ASSIGN_OR_RETURN(auto quant, io_detail::read_quant_checkpoint_info(path));
      if (quant) {
        info.detail += fmt::format(
            "; quantized {} ({} layout{}{})", quant_algo_name(quant->quant_algo),
            quant_export_format_name(quant->format),
            quant->group_size > 0 ? fmt::format(", group {}", quant->group_size) : "",
            quant->kv_cache_quant_algo != QuantAlgo::NO_QUANT
                ? fmt::format(", KV cache {}", quant_algo_name(quant->kv_cache_quant_algo))
                : "");
      }
      break;
    }
    case CheckpointFormat::Safetensors:
      QF_TRY(describe_safetensors(info, path));
      break;
    case CheckpointFormat::Gguf:
      QF_TRY(describe_gguf(info, path));
      break;
    case CheckpointFormat::Llama2c:
      QF_TRY(describe_llama2c(info, path));
      break;
  }
  std::stable_sort(info.tensors.begin(), info.tensors.end(),
                   [](const CheckpointTensor& a, const CheckpointTensor& b) {
                     return natural_less(a.name, b.name);
                   });
  return info;
}

}  // namespace qforge

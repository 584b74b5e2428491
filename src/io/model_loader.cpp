// load_model: detects the checkpoint layout (HF directory, single safetensors file, GGUF,
// llama2.c) and loads it into a LoadedModel. HF shards are validated against
// model.safetensors.index.json (every tensor mapped to exactly the shard that holds it).
#include "qforge/io/model_loader.h"

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "io/hf_index.h"
#include "io/io_util.h"
#include "io/quant_checkpoint_load.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_config.h"
#include "qforge/io/llama2c.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

// Adds one safetensors tensor: F32/F16/BF16 as an mmap view (copied only when misaligned),
// F64 (and FP8 unless `raw_fp8`: a quantized checkpoint's codes) widened to F32, integer
// tensors as views.
Status add_safetensors_tensor(ModelWeights& w, const SafetensorsFile& file,
                              const SafetensorsTensorInfo& info, bool raw_fp8) {
  QF_ASSIGN_OR_RETURN(TensorView view, file.view(info));
  const DType dt = info.dtype;
  const bool fp8 = dt == DType::F8_E4M3FN || dt == DType::F8_E5M2;
  if (dt == DType::F64 || (fp8 && !raw_fp8)) {
    QF_ASSIGN_OR_RETURN(Tensor out, Tensor::empty(DType::F32, info.shape));
    float* dst = out.data_as<float>();
    const auto bytes = file.tensor_bytes(info);
    for (int64_t i = 0; i < info.shape.numel(); ++i) {
      if (dt == DType::F64) {
        double d;
        std::memcpy(&d, bytes.data() + 8 * i, 8);
        dst[i] = static_cast<float>(d);
      } else {
        const auto code = static_cast<uint8_t>(bytes[i]);
        dst[i] = dt == DType::F8_E4M3FN ? e4m3fn_to_float(code) : e5m2_to_float(code);
      }
    }
    return w.add(info.name, out.view(), out.storage());
  }
  if (dtype_size(dt) > 1 && !view.is_aligned(static_cast<size_t>(dtype_size(dt)))) {
    QF_ASSIGN_OR_RETURN(Tensor copy, Tensor::copy_of(view));
    return w.add(info.name, copy.view(), copy.storage());
  }
  return w.add(info.name, view, file.keep_alive());
}

Status load_sharded(const fs::path& dir, ModelWeights& w, bool raw_fp8) {
  const fs::path index_path = dir / "model.safetensors.index.json";
  const std::string ip = index_path.string();
  QF_ASSIGN_OR_RETURN(auto weight_map, io_detail::read_shard_index(index_path));
  std::set<std::string> shards;
  for (const auto& [name, shard] : weight_map) shards.insert(shard);
  size_t found = 0;
  for (const auto& shard : shards) {
    QF_ASSIGN_OR_RETURN(SafetensorsFile file, SafetensorsFile::open(dir / shard));
    for (const auto& info : file.tensors()) {
      auto it = weight_map.find(info.name);
      if (it == weight_map.end() || it->second != shard) {
        return make_error(ErrorCode::kFormat,
                          "{}: shard {} holds tensor '{}' but the index maps it to {} (stale or "
                          "mismatched index?)",
                          ip, shard, io_detail::printable(info.name),
                          it == weight_map.end() ? std::string("nothing") : it->second);
      }
      QF_TRY(add_safetensors_tensor(w, file, info, raw_fp8));
      ++found;
    }
  }
  if (found != weight_map.size()) {
    for (const auto& [name, shard] : weight_map) {
      if (!w.contains(name)) {
        return make_error(ErrorCode::kFormat,
                          "{}: tensor '{}' is mapped to {} but that shard does not contain it", ip,
                          io_detail::printable(name), shard);
      }
    }
  }
  return ok_status();
}

Result<LoadedModel> load_hf(const fs::path& dir, const fs::path& single_file) {
  LoadedModel model;
  model.format = "hf-safetensors";
  QF_ASSIGN_OR_RETURN(model.config, load_hf_config(dir));
  model.weights.set_source((single_file.empty() ? dir : single_file).string());
  QF_ASSIGN_OR_RETURN(auto quant, io_detail::read_quant_checkpoint_info(dir));
  const bool raw_fp8 = quant.has_value();
  std::error_code ec;
  if (single_file.empty() && fs::exists(dir / "model.safetensors.index.json", ec)) {
    QF_TRY(load_sharded(dir, model.weights, raw_fp8));
  } else {
    const fs::path file = single_file.empty() ? dir / "model.safetensors" : single_file;
    if (!fs::exists(file, ec)) {
      return make_error(ErrorCode::kNotFound,
                        "{}: no model.safetensors or model.safetensors.index.json (expected a "
                        "Hugging Face checkpoint directory)",
                        dir.string());
    }
    QF_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::open(file));
    for (const auto& info : st.tensors()) {
      QF_TRY(add_safetensors_tensor(model.weights, st, info, raw_fp8));
    }
  }
  if (quant) QF_TRY(io_detail::attach_quantized_layers(model, *quant));
  QF_TRY(validate_model_weights(model.config, model.weights, &model.quantized_linears));
  return model;
}

}  // namespace

const char* checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::HfDirectory:
      return "hf-dir";
    case CheckpointFormat::Safetensors:
      return "safetensors";
    case CheckpointFormat::Gguf:
      return "gguf";
    case CheckpointFormat::Llama2c:
      return "llama2c";
  }
  return "unknown";
}

Result<CheckpointFormat> detect_checkpoint_format(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return make_error(ErrorCode::kNotFound, "{}: no such file or directory", path);
  }
  if (fs::is_directory(status)) return CheckpointFormat::HfDirectory;
  if (!fs::is_regular_file(status)) {
    // A FIFO would block the open below forever; a device is no model.
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: not a regular file or directory (a FIFO, socket or device?); expected "
                      "a model file (.gguf, .safetensors, llama2.c .bin) or an HF directory",
                      path);
  }
  std::ifstream in(path, std::ios::binary);
  char head[9] = {};
  in.read(head, sizeof(head));
  const auto got = in.gcount();
  if (got >= 4 && std::memcmp(head, "GGUF", 4) == 0) return CheckpointFormat::Gguf;
  if (got == 9 && head[8] == '{') return CheckpointFormat::Safetensors;
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".safetensors") return CheckpointFormat::Safetensors;
  if (ext == ".gguf") return CheckpointFormat::Gguf;
  return CheckpointFormat::Llama2c;
}

Result<LoadedModel> load_model(const std::string& path) {
  QF_ASSIGN_OR_RETURN(CheckpointFormat format, detect_checkpoint_format(path));
  switch (format) {
    case CheckpointFormat::HfDirectory:
      return load_hf(path, {});
    case CheckpointFormat::Safetensors: {
      const fs::path file(path);
      const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
      // The file's own errors first: they are more specific than a missing config.
      QF_TRY(SafetensorsFile::open(file));
      std::error_code ec;
      if (!fs::exists(dir / "config.json", ec)) {
        return make_error(ErrorCode::kNotFound,
                          "{}: no config.json next to the safetensors file (a model needs its "
                          "Hugging Face config; `qforge inspect` works without one)",
                          path);
      }
      return load_hf(dir, file);
    }
    case CheckpointFormat::Gguf:
      return load_gguf_model(fs::path(path));
    case CheckpointFormat::Llama2c:
      return load_llama2c(path);
  }
  return make_error(ErrorCode::kInternal, "load_model: unhandled format");
}

}  // namespace qforge

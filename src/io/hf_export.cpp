// Hugging Face checkpoint export (hf_export.h): each tensor of a LoadedModel is permuted to the
// HalfSplit RoPE layout when needed, converted to the target dtype in chunks and streamed into
// safetensors files of a temp directory, which is renamed over the output only when complete.
#include "qforge/io/hf_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>

#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/parallel.h"
#include "qforge/core/path_guard.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/safetensors.h"
#include "qforge/model/synthetic.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChunkElems = int64_t{1} << 20;  // elements converted per write (4 MiB of F32)
constexpr int64_t kParallelGrain = int64_t{1} << 16;

bool is_export_dtype(DType d) {
  return d == DType::F32 || d == DType::F16 || d == DType::BF16;
}

float load_element(const std::byte* p, DType dtype) {
  if (dtype == DType::F32) {
    float x;
    std::memcpy(&x, p, 4);
    return x;
  }
  uint16_t code;
  std::memcpy(&code, p, 2);
  return dtype == DType::BF16 ? bf16_to_float(code) : f16_to_float(code);
}

// Writes elements [begin, begin + count) of the contiguous `src` as `out` codes into dst.
// Returns the element index (relative to the tensor) of the first finite value that overflows
// F16, or -1.
int64_t encode_range(const TensorView& src, int64_t begin, int64_t count, DType out,
                     std::vector<std::byte>& dst) {
  const int64_t in_size = dtype_size(src.dtype());
  const int64_t out_size = dtype_size(out);
  dst.resize(static_cast<size_t>(count * out_size));
  const std::byte* in = static_cast<const std::byte*>(src.data()) + begin * in_size;
  if (src.dtype() == out) {
    std::memcpy(dst.data(), in, dst.size());
    return -1;
  }
  std::atomic<int64_t> first_overflow{std::numeric_limits<int64_t>::max()};
  const DType in_type = src.dtype();
  parallel_for(0, count, kParallelGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float x = load_element(in + i * in_size, in_type);
      std::byte* o = dst.data() + i * out_size;
      if (out == DType::F32) {
        std::memcpy(o, &x, 4);
        continue;
      }
      const uint16_t code = out == DType::BF16 ? float_to_bf16(x) : float_to_f16(x);
      if (out == DType::F16 && (code & 0x7FFF) == 0x7C00 && std::isfinite(x)) {
        int64_t seen = first_overflow.load();
        while (i < seen && !first_overflow.compare_exchange_weak(seen, i)) {
        }
      }
      std::memcpy(o, &code, 2);
    }
  });
  const int64_t overflow = first_overflow.load();
  return overflow == std::numeric_limits<int64_t>::max() ? -1 : begin + overflow;
}

struct PlannedTensor {
  std::string name;
  TensorView source;          // as loaded
  int64_t permute_heads = 0;  // > 0: rows go Interleaved -> HalfSplit with this many heads
  uint64_t bytes = 0;         // in the output dtype
  int shard = 0;
  uint64_t begin = 0;  // data offset inside its shard
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Heads to permute a tensor by when the source rotates interleaved pairs: q/k projections (and
// their biases) per head, the per-head q/k norms (qwen3) as one head of head_dim.
int64_t permute_heads_for(const std::string& name, const ModelConfig& c) {
  if (c.rope_layout != RopeLayout::Interleaved) return 0;
  if (ends_with(name, ".self_attn.q_proj.weight") || ends_with(name, ".self_attn.q_proj.bias")) {
    return c.num_attention_heads;
  }
  if (ends_with(name, ".self_attn.k_proj.weight") || ends_with(name, ".self_attn.k_proj.bias")) {
    return c.num_key_value_heads;
  }
  if (ends_with(name, ".self_attn.q_norm.weight") || ends_with(name, ".self_attn.k_norm.weight")) {
    return 1;
  }
  return 0;
}

std::string shard_name(int shard, int n_shards) {
  if (n_shards == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, n_shards);
}

// The shard's tensors in the reference writer's order (one dtype, so by name) with their data
// offsets assigned.
std::vector<PlannedTensor*> order_shard(std::vector<PlannedTensor>& tensors, int shard) {
  std::vector<PlannedTensor*> out;
  for (PlannedTensor& t : tensors) {
    if (t.shard == shard) out.push_back(&t);
  }
  std::sort(out.begin(), out.end(),
            [](const PlannedTensor* a, const PlannedTensor* b) { return a->name < b->name; });
  uint64_t offset = 0;
  for (PlannedTensor* t : out) {
    t->begin = offset;
    offset += t->bytes;
  }
  return out;
}

// 8-byte little-endian length + compact JSON padded with spaces to a multiple of 8, as
// SafetensorsWriter (and the reference library) lays it out.
Result<std::string> shard_header(const std::vector<PlannedTensor*>& tensors, DType dtype) {
  QF_ASSIGN_OR_RETURN(std::string_view dtype_str, safetensors_dtype_name(dtype));
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}};
  for (const PlannedTensor* t : tensors) {
    std::vector<int64_t> shape(t->source.shape().begin(), t->source.shape().end());
    h[t->name] = {{"dtype", std::string(dtype_str)},
                  {"shape", shape},
                  {"data_offsets", {t->begin, t->begin + t->bytes}}};
  }
  std::string json = h.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kSafetensorsMaxHeaderBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: a shard header of {} bytes exceeds the safetensors "
                      "limit of {} bytes (lower max_shard_bytes)",
                      json.size(), kSafetensorsMaxHeaderBytes);
  }
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + json;
}

// Streams one tensor (permuted, converted) into `file`.
Status write_tensor(const PlannedTensor& t, DType out, AtomicFileWriter& file,
                    std::vector<std::byte>& buffer) {
  TensorView src = t.source;
  Tensor holder;  // owns a permuted or gathered copy
  if (t.permute_heads > 0) {
    QF_ASSIGN_OR_RETURN(holder, rope_rows_interleaved_to_half_split(src, t.permute_heads)
                                    .context(fmt::format("tensor '{}'", t.name)));
    src = holder.view();
  } else if (!src.is_contiguous()) {
    QF_ASSIGN_OR_RETURN(holder, Tensor::copy_of(src));
    src = holder.view();
  }
  const int64_t n = src.numel();
  for (int64_t begin = 0; begin < n; begin += kChunkElems) {
    const int64_t count = std::min(kChunkElems, n - begin);
    const int64_t overflow = encode_range(src, begin, count, out, buffer);
    if (overflow >= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "export_hf_checkpoint: tensor '{}' element {} = {} overflows f16 (max "
                        "65504); export as bf16 or f32",
                        t.name, overflow,
                        load_element(static_cast<const std::byte*>(src.data()) +
                                         overflow * dtype_size(src.dtype()),
                                     src.dtype()));
    }
    QF_TRY(file.write(buffer).context(fmt::format("writing '{}'", t.name)));
  }
  return ok_status();
}

// Removes the temp directory unless the export reached the final rename.
class TempDir {
 public:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  ~TempDir() {
    if (!released_) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  void release() { released_ = true; }

 private:
  fs::path path_;
  bool released_ = false;
};

Status copy_file_atomic(const fs::path& from, const fs::path& to) {
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(from));
  return write_file_atomic(to, file.bytes());
}

// A tokenizer file to copy and the name it gets in the checkpoint.
struct TokenizerCopy {
  fs::path source;
  std::string dest;
};

// Loads the tokenizer (so that an unreadable file fails here, not at quantize time) and picks
// its checkpoint name from what it turned out to be.
Result<TokenizerCopy> check_tokenizer(const fs::path& path, const ModelConfig& config) {
  QF_ASSIGN_OR_RETURN(auto tok, load_tokenizer(path.string(), config.vocab_size));
  const std::string kind = tok->kind();
  TokenizerCopy copy{path, ""};
  if (kind.rfind("sentencepiece", 0) == 0) {
    copy.dest = "tokenizer.model";
  } else if (kind.rfind("hf-", 0) == 0) {
    copy.dest = "tokenizer.json";
  } else if (kind == "llama2c") {
    copy.dest = "tokenizer.bin";
  } else {
    return make_error(ErrorCode::kUnsupported,
                      "{}: a {} tokenizer cannot be copied into a Hugging Face checkpoint (pass a "
                      "tokenizer.json, a SentencePiece .model or a llama2.c tokenizer.bin)",
                      path.string(), kind);
  }
  if (tok->vocab_size() > config.vocab_size) {
    log_warn(
        "{}: the tokenizer has {} tokens but the model's vocabulary is {}; ids past {} "
        "have no embedding",
        path.string(), tok->vocab_size(), config.vocab_size, config.vocab_size - 1);
  }
  return copy;
}

Result<std::optional<TokenizerCopy>> plan_tokenizer(const LoadedModel& model,
                                                    const HfExportOptions& o) {
  if (!o.tokenizer_path.empty()) {
    std::error_code ec;
    if (!fs::is_regular_file(o.tokenizer_path, ec)) {
      return make_error(ErrorCode::kNotFound, "export_hf_checkpoint: tokenizer {} is not a file",
                        o.tokenizer_path);
    }
    QF_ASSIGN_OR_RETURN(TokenizerCopy copy,
                        check_tokenizer(o.tokenizer_path, model.config).context("tokenizer"));
    return std::optional<TokenizerCopy>(std::move(copy));
  }
  const std::string& source = model.weights.source();
  const fs::path found = source.empty() ? fs::path() : find_tokenizer_beside(source);
  if (found.empty()) {
    log_warn(
        "no tokenizer found beside {} (looked for tokenizer.model, tokenizer.json, "
        "tok*.model, tokenizer.bin, tok*.bin); the checkpoint has none: pass one with "
        "--tokenizer{}",
        source.empty() ? std::string("the model") : source,
        model.format == "gguf" ? " (the GGUF's embedded vocabulary is not converted)" : "");
    return std::optional<TokenizerCopy>();
  }
  auto copy = check_tokenizer(found, model.config);
  if (!copy.ok()) {
    log_warn("skipping the tokenizer found beside the model: {}", copy.error().to_string());
    return std::optional<TokenizerCopy>();
  }
  return std::optional<TokenizerCopy>(std::move(*copy));
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);  // best effort: the rename is already visible
  ::close(fd);
}

// Checks the output path and returns (target, whether a non-empty directory is replaced).
Result<std::pair<fs::path, bool>> check_target(const fs::path& dir, bool overwrite) {
  fs::path target = dir.lexically_normal();
  if (!target.empty() && target.filename().empty()) target = target.parent_path();
  if (target.empty() || target == "." || target == ".." || target == target.root_path()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: output '{}' must name a directory to create",
                      dir.string());
  }
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(target, ec);
  if (!fs::exists(st)) return std::make_pair(target, false);
  if (fs::is_symlink(st)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: output {} is a symbolic link; give the directory "
                      "itself",
                      target.string());
  }
  if (!fs::is_directory(st)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: output {} exists and is not a directory",
                      target.string());
  }
  const bool empty = fs::is_empty(target, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "export_hf_checkpoint: cannot list {}: {}", target.string(),
                      ec.message());
  }
  if (empty) return std::make_pair(target, false);
  if (!overwrite) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: output {} already exists and is not empty (pass "
                      "--overwrite to replace it)",
                      target.string());
  }
  return std::make_pair(target, true);
}

// Moves the finished temp directory to `target`, replacing a non-empty one by way of a rename
// aside (restored if the second rename fails).
Status move_into_place(const fs::path& temp, const fs::path& target, bool replace) {
  static std::atomic<int> counter{0};
  std::error_code ec;
  fs::path old;
  if (replace) {
    old = target;
    old += fmt::format(".old.{}.{}", ::getpid(), counter++);
    fs::rename(target, old, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "export_hf_checkpoint: cannot move {} aside to {}: {}",
                        target.string(), old.string(), ec.message());
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code restore;
    if (replace) fs::rename(old, target, restore);
    return make_error(ErrorCode::kIo, "export_hf_checkpoint: cannot rename {} to {}: {}",
                      temp.string(), target.string(), ec.message());
  }
  fsync_directory(target.has_parent_path() ? target.parent_path() : fs::path("."));
  if (replace) {
    fs::remove_all(old, ec);
    if (ec) {
      log_warn("export_hf_checkpoint: could not remove the replaced checkpoint {}: {}",
               old.string(), ec.message());
    }
  }
  return ok_status();
}

}  // namespace

Result<Tensor> rope_rows_interleaved_to_half_split(const TensorView& w, int64_t n_heads) {
  if (w.ndim() < 1 || w.ndim() > 2 || n_heads <= 0 || w.dim(0) % n_heads != 0 ||
      (w.dim(0) / n_heads) % 2 != 0 || dtype_is_sub_byte(w.dtype())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "rope_rows_interleaved_to_half_split: {} does not split into {} heads of "
                      "even size (expected a byte-sized [n_heads * head_dim(, cols)] tensor)",
                      w.to_string(), n_heads);
  }
  Tensor gathered;  // a contiguous copy of a strided view
  if (!w.is_contiguous()) {
    QF_ASSIGN_OR_RETURN(gathered, Tensor::copy_of(w));
  }
  const TensorView in = gathered.defined() ? gathered.view() : w;
  QF_ASSIGN_OR_RETURN(Tensor out, Tensor::empty(w.dtype(), w.shape()));
  const int64_t rows = w.dim(0);
  const int64_t hd = rows / n_heads;
  const size_t row_bytes = static_cast<size_t>(in.row_numel() * dtype_size(w.dtype()));
  const auto* from = static_cast<const std::byte*>(in.data());
  auto* to = static_cast<std::byte*>(out.mutable_data());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t src_row = h * hd + 2 * i + s;
        const int64_t dst_row = h * hd + s * (hd / 2) + i;
        std::memcpy(to + dst_row * row_bytes, from + src_row * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

fs::path find_tokenizer_beside(const fs::path& source) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(source, ec) ? source : source.parent_path();
  const fs::path base = dir.empty() ? fs::path(".") : dir;
  std::vector<std::string> tok_model;
  std::vector<std::string> tok_bin;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tok", 0) != 0 || !entry.is_regular_file(ec)) continue;
    if (ends_with(name, ".model")) tok_model.push_back(name);
    if (ends_with(name, ".bin")) tok_bin.push_back(name);
  }
  std::sort(tok_model.begin(), tok_model.end());
  std::sort(tok_bin.begin(), tok_bin.end());
  std::vector<std::string> order = {"tokenizer.model", "tokenizer.json"};
  order.insert(order.end(), tok_model.begin(), tok_model.end());
  order.push_back("tokenizer.bin");
  order.insert(order.end(), tok_bin.begin(), tok_bin.end());
  for (const std::string& name : order) {
    if (fs::is_regular_file(base / name, ec)) return base / name;
  }
  return {};
}

Status export_hf_checkpoint(const LoadedModel& model, const fs::path& dir,
                            const HfExportOptions& options, HfExportReport* report) {
  const ModelConfig& config = model.config;
  if (!is_export_dtype(options.dtype)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "export_hf_checkpoint: dtype {} is not supported (f32, f16 or bf16)",
                      dtype_name(options.dtype));
  }
  if (!model.quantized_linears.empty()) {
    return make_error(ErrorCode::kUnsupported,
                      "export_hf_checkpoint: {} is a quantized checkpoint ({} quantized linears); "
                      "converting it would drop its scales (load it with qforge directly)",
                      model.weights.source(), model.quantized_linears.size());
  }
  QF_TRY(validate_model_config(config).context("export_hf_checkpoint"));

  // Plan: every tensor the config implies, in checkpoint order, cut into shards.
  std::vector<PlannedTensor> tensors;
  const int64_t out_size = dtype_size(options.dtype);
  uint64_t shard_bytes = 0;
  int shard = 0;
  uint64_t total_bytes = 0;
  for (const TensorSpec& spec : model_tensor_specs(config)) {
    QF_ASSIGN_OR_RETURN(TensorView view, model.weights.get(spec.name));
    QF_ASSIGN_OR_RETURN(Shape want, Shape::from(spec.shape));
    if (!(view.shape() == want)) {
      return make_error(ErrorCode::kFormat,
                        "export_hf_checkpoint: tensor '{}' has shape {} but the config implies {}",
                        spec.name, view.shape(), want);
    }
    if (!is_export_dtype(view.dtype())) {
      return make_error(ErrorCode::kUnsupported,
                        "export_hf_checkpoint: tensor '{}' is {} (expected f32, f16 or bf16)",
                        spec.name, dtype_name(view.dtype()));
    }
    PlannedTensor t;
    t.name = spec.name;
    t.source = view;
    t.permute_heads = permute_heads_for(spec.name, config);
    t.bytes = static_cast<uint64_t>(view.numel() * out_size);
    if (shard_bytes > 0 && shard_bytes + t.bytes > options.max_shard_bytes) {
      ++shard;
      shard_bytes = 0;
    }
    t.shard = shard;
    shard_bytes += t.bytes;
    total_bytes += t.bytes;
    tensors.push_back(std::move(t));
  }
  const int n_shards = shard + 1;
  if (model.weights.tensors().size() > tensors.size()) {
    log_warn(
        "export_hf_checkpoint: {} tensor(s) of {} that the config does not use are not "
        "written",
        model.weights.tensors().size() - tensors.size(), model.weights.source());
  }
  QF_ASSIGN_OR_RETURN(auto checked, check_target(dir, options.overwrite));
  const fs::path target = checked.first;
  const bool replace = checked.second;
  QF_ASSIGN_OR_RETURN(std::optional<TokenizerCopy> tokenizer, plan_tokenizer(model, options));
  // The output directory (replaced wholesale with --overwrite, or written into) must not be,
  // hold or sit inside the model or the tokenizer being copied.
  {
    std::vector<fs::path> inputs = {model.weights.source(), options.tokenizer_path};
    if (tokenizer) inputs.push_back(tokenizer->source);
    QF_TRY(
        check_output_path(target, inputs, OutputKind::kDirectory, "export_hf_checkpoint: output"));
  }

  std::error_code ec;
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "export_hf_checkpoint: cannot create directory {}: {}",
                      parent.string(), ec.message());
  }
  static std::atomic<int> counter{0};
  fs::path temp_path = target;
  temp_path += fmt::format(".tmp.{}.{}", ::getpid(), counter++);
  fs::remove_all(temp_path, ec);
  if (!fs::create_directory(temp_path, ec) || ec) {
    return make_error(ErrorCode::kIo,
                      "export_hf_checkpoint: cannot create {} beside the output: {} (is {} "
                      "writable?)",
                      temp_path.string(), ec ? ec.message() : "it exists", parent.string());
  }
  TempDir temp(temp_path);
  HfExportReport rep;

  ModelConfig written = config;
  written.rope_layout = RopeLayout::HalfSplit;
  written.torch_dtype = options.dtype;
  QF_TRY(write_file_atomic(temp.path() / "config.json", hf_config_json(written)));
  rep.files.push_back("config.json");

  std::vector<std::byte> buffer;
  uint64_t done_bytes = 0;
  int64_t done_tensors = 0;
  for (int s = 0; s < n_shards; ++s) {
    const std::vector<PlannedTensor*> ordered = order_shard(tensors, s);
    const std::string name = shard_name(s, n_shards);
    QF_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::create(temp.path() / name));
    QF_ASSIGN_OR_RETURN(std::string header, shard_header(ordered, options.dtype));
    QF_TRY(file.write(header));
    for (const PlannedTensor* t : ordered) {
      QF_TRY(write_tensor(*t, options.dtype, file, buffer).context(name));
      done_bytes += t->bytes;
      ++done_tensors;
      if (options.progress) {
        options.progress(done_tensors, static_cast<int64_t>(tensors.size()), done_bytes);
      }
    }
    QF_TRY(file.commit());
    rep.files.push_back(name);
  }
  if (n_shards > 1) {
    std::vector<const PlannedTensor*> by_name;
    for (const PlannedTensor& t : tensors) by_name.push_back(&t);
    std::sort(by_name.begin(), by_name.end(),
              [](const PlannedTensor* a, const PlannedTensor* b) { return a->name < b->name; });
    nlohmann::ordered_json map;
    for (const PlannedTensor* t : by_name) map[t->name] = shard_name(t->shard, n_shards);
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_bytes}};
    index["weight_map"] = map;
    QF_TRY(write_file_atomic(temp.path() / "model.safetensors.index.json", index.dump(2) + "\n"));
    rep.files.push_back("model.safetensors.index.json");
  }

  if (tokenizer) {
    QF_TRY(copy_file_atomic(tokenizer->source, temp.path() / tokenizer->dest));
    rep.files.push_back(tokenizer->dest);
    rep.tokenizer_source = tokenizer->source;
    // HF tokenizers read their added/special tokens from these (load_tokenizer does too).
    for (const char* side : {"tokenizer_config.json", "special_tokens_map.json"}) {
      const fs::path p = tokenizer->source.parent_path() / side;
      if (fs::is_regular_file(p, ec)) {
        QF_TRY(copy_file_atomic(p, temp.path() / side));
        rep.files.push_back(side);
      }
    }
  }
  const fs::path source = model.weights.source();
  if (!source.empty() && fs::is_directory(source, ec) &&
      fs::is_regular_file(source / "generation_config.json", ec)) {
    QF_TRY(copy_file_atomic(source / "generation_config.json",
                            temp.path() / "generation_config.json"));
    rep.files.push_back("generation_config.json");
  }

  fsync_directory(temp.path());
  QF_TRY(move_into_place(temp.path(), target, replace));
  temp.release();
  rep.n_tensors = static_cast<int64_t>(tensors.size());
  rep.tensor_bytes = total_bytes;
  rep.permuted_qk = config.rope_layout == RopeLayout::Interleaved;
  if (report != nullptr) *report = std::move(rep);
  return ok_status();
}

}  // namespace qforge

// llama2.c checkpoint reader: legacy v0 fp32 (run.c), ak42 v1 fp32 and v2 Q8_0 (export.py,
// runq.c). Every header field is bounds-checked and the implied file size must equal the real
// size exactly, so a truncated or padded file is rejected before any tensor is touched.
#include <cmath>
#include <cstring>

#include "io/io_util.h"
#include "qforge/core/mmap_file.h"
#include "qforge/io/llama2c.h"

namespace qforge {
namespace {

using io_detail::ByteReader;

constexpr uint64_t kLegacyHeaderBytes = 28;
constexpr uint64_t kAk42HeaderBytes = 256;

struct Dims {
  int64_t vocab, dim, hidden, layers, kv_dim, head_dim, seq_len;
};

Dims dims_of(const Llama2cHeader& h) {
  const int64_t head_dim = h.dim / h.n_heads;
  return {h.vocab_size, h.dim,    h.hidden_dim, h.n_layers, head_dim * h.n_kv_heads,
          head_dim,     h.seq_len};
}

// Element counts of the quantizable (matrix) tensors in file order, stacked over layers.
struct MatrixCounts {
  int64_t embed, wq, wk, wv, wo, w1, w2, w3, wcls;
};

MatrixCounts matrix_counts(const Dims& d, bool shared) {
  return {d.vocab * d.dim,
          d.layers * d.dim * d.dim,
          d.layers * d.kv_dim * d.dim,
          d.layers * d.kv_dim * d.dim,
          d.layers * d.dim * d.dim,
          d.layers * d.hidden * d.dim,
          d.layers * d.dim * d.hidden,
          d.layers * d.hidden * d.dim,
          shared ? 0 : d.vocab * d.dim};
}

Error header_field(std::string_view file, std::string_view field, int64_t value,
                   std::string_view expected) {
  return make_error(ErrorCode::kFormat,
                    "{}: llama2.c header field {} = {} is invalid (expected {})", file, field,
                    value, expected);
}

// Checks the 7 ints with llama2.c's own names, then the derived config's bounds. The caps of
// validate_model_config keep every size computed below far from 64-bit overflow.
Status check_header(const Llama2cHeader& h, std::string_view file) {
  const std::pair<const char*, int32_t> fields[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"vocab_size", h.vocab_size},
      {"seq_len", h.seq_len}};
  for (const auto& [name, value] : fields) {
    if (value <= 0) {
      return header_field(file, name, value,
                          "a positive integer; is this really a llama2.c checkpoint?");
    }
  }
  if (h.dim % h.n_heads != 0) {
    return header_field(file, "n_heads", h.n_heads,
                        fmt::format("a divisor of dim {} (head_dim = dim / n_heads)", h.dim));
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    return header_field(file, "n_kv_heads", h.n_kv_heads,
                        fmt::format("a divisor of n_heads {}", h.n_heads));
  }
  return ok_status();
}

uint64_t expected_size(const Llama2cHeader& h) {
  const Dims d = dims_of(h);
  const MatrixCounts m = matrix_counts(d, h.shared_classifier);
  const auto norms = static_cast<uint64_t>(2 * d.layers * d.dim + d.dim);
  const auto matrices =
      static_cast<uint64_t>(m.embed + m.wq + m.wk + m.wv + m.wo + m.w1 + m.w2 + m.w3 + m.wcls);
  if (h.version == 0) {
    const auto freq_cis = static_cast<uint64_t>(d.seq_len * d.head_dim);  // real + imag halves
    return kLegacyHeaderBytes + 4 * (norms + matrices + freq_cis);
  }
  if (h.version == 1) return kAk42HeaderBytes + 4 * (norms + matrices);
  // Version 2: int8 per element plus one fp32 scale per group.
  return kAk42HeaderBytes + 4 * norms + matrices + 4 * (matrices / h.group_size);
}

ModelConfig config_of_header(const Llama2cHeader& h) {
  ModelConfig c;
  c.architecture = Architecture::Llama;
  c.model_type = "llama2c";
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.rope_layout = RopeLayout::Interleaved;
  c.tie_word_embeddings = h.shared_classifier;
  c.torch_dtype = DType::F32;
  // llama2.c tokenizers: 0 <unk>, 1 BOS, 2 EOS.
  if (h.vocab_size > 2) {
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
  }
  return c;
}

// Reads an fp32 tensor block of `count` elements and returns its bytes (a view into the file).
Result<std::span<const std::byte>> take_f32(ByteReader& r, int64_t count, std::string_view name) {
  return r.take(static_cast<uint64_t>(count) * 4, name);
}

// Dequantizes `layers` Q8_0 tensors of `count` elements each into one stacked F32 tensor. Each
// layer's tensor is stored as int8 q[count] followed by fp32 scale[count / group_size] (runq.c
// quantizes every layer's matrix separately).
Result<Tensor> take_q80(ByteReader& r, int64_t layers, int64_t count, int32_t group_size,
                        std::string_view name) {
  QF_ASSIGN_OR_RETURN(Tensor out, Tensor::empty(DType::F32, {layers * count}));
  for (int64_t l = 0; l < layers; ++l) {
    QF_ASSIGN_OR_RETURN(auto q, r.take(static_cast<uint64_t>(count), name));
    QF_ASSIGN_OR_RETURN(auto s, r.take(static_cast<uint64_t>(count / group_size) * 4, name));
    float* dst = out.data_as<float>() + l * count;
    const auto* qs = reinterpret_cast<const int8_t*>(q.data());
    for (int64_t g = 0; g < count / group_size; ++g) {
      float scale;
      std::memcpy(&scale, s.data() + g * 4, 4);
      for (int64_t j = g * group_size; j < (g + 1) * group_size; ++j) {
        dst[j] = static_cast<float>(qs[j]) * scale;
      }
    }
  }
  return out;
}

// Adds `layers` tensors of shape [rows, cols] that lie back to back in `bytes` (fp32).
Status add_stacked(ModelWeights& w, std::span<const std::byte> bytes, int64_t layers, int64_t rows,
                   int64_t cols, const char* suffix, const std::shared_ptr<const void>& keep) {
  const uint64_t per_layer = static_cast<uint64_t>(rows * cols) * 4;
  for (int64_t l = 0; l < layers; ++l) {
    Shape shape = cols == 1 ? Shape{rows} : Shape{rows, cols};
    QF_ASSIGN_OR_RETURN(
        TensorView v,
        TensorView::from_bytes(bytes.subspan(l * per_layer, per_layer), DType::F32, shape));
    QF_TRY(w.add(fmt::format("model.layers.{}.{}", l, suffix), v, keep));
  }
  return ok_status();
}

Status add_stacked(ModelWeights& w, const Tensor& t, int64_t layers, int64_t rows, int64_t cols,
                   const char* suffix) {
  return add_stacked(w, t.view().bytes(), layers, rows, cols, suffix, t.storage());
}

Status add_single(ModelWeights& w, std::span<const std::byte> bytes, Shape shape, const char* name,
                  const std::shared_ptr<const void>& keep) {
  QF_ASSIGN_OR_RETURN(TensorView v, TensorView::from_bytes(bytes, DType::F32, shape));
  return w.add(name, v, keep);
}

}  // namespace

Result<Llama2cHeader> parse_llama2c_header(std::span<const std::byte> bytes,
                                           std::string_view file) {
  ByteReader r(bytes, file);
  Llama2cHeader h;
  QF_ASSIGN_OR_RETURN(uint32_t first, r.read<uint32_t>("header"));
  int32_t vocab_signed = 0;
  if (first == kLlama2cMagic) {
    QF_ASSIGN_OR_RETURN(int32_t version, r.read<int32_t>("version"));
    if (version != 1 && version != 2) {
      return header_field(file, "version", version,
                          "1 (fp32) or 2 (int8 Q8_0) after the ak42 magic");
    }
    h.version = version;
    h.header_bytes = kAk42HeaderBytes;
    QF_TRY(r.need(kAk42HeaderBytes - 8, "the 256-byte ak42 header"));
  } else {
    QF_TRY(r.seek(0, "header"));
    h.version = 0;
    h.header_bytes = kLegacyHeaderBytes;
  }
  int32_t* params[] = {&h.dim,        &h.hidden_dim, &h.n_layers, &h.n_heads,
                       &h.n_kv_heads, &vocab_signed, &h.seq_len};
  for (int32_t* p : params) {
    QF_ASSIGN_OR_RETURN(*p, r.read<int32_t>("header"));
  }
  if (h.version == 0) {
    // Legacy: a negative vocab_size says the classifier is stored separately (not shared).
    h.shared_classifier = vocab_signed > 0;
    h.vocab_size = vocab_signed == INT32_MIN ? 0 : std::abs(vocab_signed);
  } else {
    h.vocab_size = vocab_signed;
    QF_ASSIGN_OR_RETURN(uint8_t shared, r.read<uint8_t>("shared_classifier"));
    if (shared > 1) return header_field(file, "shared_classifier", shared, "0 or 1");
    h.shared_classifier = shared == 1;
    if (h.version == 2) {
      QF_ASSIGN_OR_RETURN(h.group_size, r.read<int32_t>("group_size"));
    }
  }
  QF_TRY(check_header(h, file));
  QF_TRY(
      validate_model_config(config_of_header(h)).context(fmt::format("{}: llama2.c header", file)));
  if (h.version == 2) {
    if (h.group_size <= 0 || h.dim % h.group_size != 0 || h.hidden_dim % h.group_size != 0) {
      return header_field(
          file, "group_size", h.group_size,
          fmt::format("a positive divisor of dim {} and hidden_dim {}", h.dim, h.hidden_dim));
    }
  }
  h.expected_file_bytes = expected_size(h);
  if (h.expected_file_bytes != bytes.size()) {
    return make_error(ErrorCode::kFormat,
                      "{}: llama2.c version {} header (dim {}, hidden_dim {}, n_layers {}, n_heads "
                      "{}, n_kv_heads {}, vocab_size {}, seq_len {}{}) implies {} bytes but the "
                      "file has {} bytes (truncated download, wrong header, or not a llama2.c "
                      "checkpoint?)",
                      file, h.version, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads,
                      h.vocab_size, h.seq_len,
                      h.shared_classifier ? ", shared classifier" : ", separate classifier",
                      h.expected_file_bytes, bytes.size());
  }
  return h;
}

Result<LoadedModel> load_llama2c_bytes(std::span<const std::byte> bytes, std::string_view file,
                                       std::shared_ptr<const void> keep_alive) {
  QF_ASSIGN_OR_RETURN(Llama2cHeader h, parse_llama2c_header(bytes, file));
  const Dims d = dims_of(h);
  const MatrixCounts m = matrix_counts(d, h.shared_classifier);
  LoadedModel model;
  model.config = config_of_header(h);
  model.format = h.version == 2 ? "llama2c-q80" : "llama2c";
  ModelWeights& w = model.weights;
  w.set_source(std::string(file));
  ByteReader r(bytes, file);
  QF_TRY(r.seek(h.header_bytes, "tensor data"));

  std::span<const std::byte> rms_att, rms_ffn, rms_final;
  if (h.version != 0) {
    QF_ASSIGN_OR_RETURN(rms_att, take_f32(r, d.layers * d.dim, "rms_att"));
    QF_ASSIGN_OR_RETURN(rms_ffn, take_f32(r, d.layers * d.dim, "rms_ffn"));
    QF_ASSIGN_OR_RETURN(rms_final, take_f32(r, d.dim, "rms_final"));
  }
  if (h.version == 2) {
    const int32_t gs = h.group_size;
    const int64_t L = d.layers;
    QF_ASSIGN_OR_RETURN(Tensor embed, take_q80(r, 1, m.embed, gs, "tok_embeddings"));
    QF_ASSIGN_OR_RETURN(Tensor wq, take_q80(r, L, m.wq / L, gs, "wq"));
    QF_ASSIGN_OR_RETURN(Tensor wk, take_q80(r, L, m.wk / L, gs, "wk"));
    QF_ASSIGN_OR_RETURN(Tensor wv, take_q80(r, L, m.wv / L, gs, "wv"));
    QF_ASSIGN_OR_RETURN(Tensor wo, take_q80(r, L, m.wo / L, gs, "wo"));
    QF_ASSIGN_OR_RETURN(Tensor w1, take_q80(r, L, m.w1 / L, gs, "w1"));
    QF_ASSIGN_OR_RETURN(Tensor w2, take_q80(r, L, m.w2 / L, gs, "w2"));
    QF_ASSIGN_OR_RETURN(Tensor w3, take_q80(r, L, m.w3 / L, gs, "w3"));
    QF_TRY(add_single(w, embed.view().bytes(), {d.vocab, d.dim}, "model.embed_tokens.weight",
                      embed.storage()));
    QF_TRY(add_stacked(w, rms_att, d.layers, d.dim, 1, "input_layernorm.weight", keep_alive));
    QF_TRY(add_stacked(w, wq, d.layers, d.dim, d.dim, "self_attn.q_proj.weight"));
    QF_TRY(add_stacked(w, wk, d.layers, d.kv_dim, d.dim, "self_attn.k_proj.weight"));
    QF_TRY(add_stacked(w, wv, d.layers, d.kv_dim, d.dim, "self_attn.v_proj.weight"));
    QF_TRY(add_stacked(w, wo, d.layers, d.dim, d.dim, "self_attn.o_proj.weight"));
    QF_TRY(
        add_stacked(w, rms_ffn, d.layers, d.dim, 1, "post_attention_layernorm.weight", keep_alive));
    QF_TRY(add_stacked(w, w1, d.layers, d.hidden, d.dim, "mlp.gate_proj.weight"));
    QF_TRY(add_stacked(w, w2, d.layers, d.dim, d.hidden, "mlp.down_proj.weight"));
    QF_TRY(add_stacked(w, w3, d.layers, d.hidden, d.dim, "mlp.up_proj.weight"));
    QF_TRY(add_single(w, rms_final, {d.dim}, "model.norm.weight", keep_alive));
    if (!h.shared_classifier) {
      QF_ASSIGN_OR_RETURN(Tensor wcls, take_q80(r, 1, m.wcls, gs, "wcls"));
      QF_TRY(
          add_single(w, wcls.view().bytes(), {d.vocab, d.dim}, "lm_head.weight", wcls.storage()));
    }
  } else {
    QF_ASSIGN_OR_RETURN(auto embed, take_f32(r, m.embed, "tok_embeddings"));
    if (h.version == 0) {
      QF_ASSIGN_OR_RETURN(rms_att, take_f32(r, d.layers * d.dim, "rms_att"));
    }
    QF_ASSIGN_OR_RETURN(auto wq, take_f32(r, m.wq, "wq"));
    QF_ASSIGN_OR_RETURN(auto wk, take_f32(r, m.wk, "wk"));
    QF_ASSIGN_OR_RETURN(auto wv, take_f32(r, m.wv, "wv"));
    QF_ASSIGN_OR_RETURN(auto wo, take_f32(r, m.wo, "wo"));
    if (h.version == 0) {
      QF_ASSIGN_OR_RETURN(rms_ffn, take_f32(r, d.layers * d.dim, "rms_ffn"));
    }
    QF_ASSIGN_OR_RETURN(auto w1, take_f32(r, m.w1, "w1"));
    QF_ASSIGN_OR_RETURN(auto w2, take_f32(r, m.w2, "w2"));
    QF_ASSIGN_OR_RETURN(auto w3, take_f32(r, m.w3, "w3"));
    if (h.version == 0) {
      QF_ASSIGN_OR_RETURN(rms_final, take_f32(r, d.dim, "rms_final"));
      // freq_cis_real and freq_cis_imag: legacy RoPE tables, unused (RoPE is recomputed).
      QF_TRY(r.take(static_cast<uint64_t>(d.seq_len * d.head_dim) * 4, "freq_cis"));
    }
    const auto& k = keep_alive;
    QF_TRY(add_single(w, embed, {d.vocab, d.dim}, "model.embed_tokens.weight", k));
    QF_TRY(add_stacked(w, rms_att, d.layers, d.dim, 1, "input_layernorm.weight", k));
    QF_TRY(add_stacked(w, wq, d.layers, d.dim, d.dim, "self_attn.q_proj.weight", k));
    QF_TRY(add_stacked(w, wk, d.layers, d.kv_dim, d.dim, "self_attn.k_proj.weight", k));
    QF_TRY(add_stacked(w, wv, d.layers, d.kv_dim, d.dim, "self_attn.v_proj.weight", k));
    QF_TRY(add_stacked(w, wo, d.layers, d.dim, d.dim, "self_attn.o_proj.weight", k));
    QF_TRY(add_stacked(w, rms_ffn, d.layers, d.dim, 1, "post_attention_layernorm.weight", k));
    QF_TRY(add_stacked(w, w1, d.layers, d.hidden, d.dim, "mlp.gate_proj.weight", k));
    QF_TRY(add_stacked(w, w2, d.layers, d.dim, d.hidden, "mlp.down_proj.weight", k));
    QF_TRY(add_stacked(w, w3, d.layers, d.hidden, d.dim, "mlp.up_proj.weight", k));
    QF_TRY(add_single(w, rms_final, {d.dim}, "model.norm.weight", k));
    if (!h.shared_classifier) {
      QF_ASSIGN_OR_RETURN(auto wcls, take_f32(r, m.wcls, "wcls"));
      QF_TRY(add_single(w, wcls, {d.vocab, d.dim}, "lm_head.weight", k));
    }
  }
  if (r.remaining() != 0) {
    return make_error(ErrorCode::kInternal, "{}: {} bytes left after the last tensor", file,
                      r.remaining());
  }
  return model;
}

ModelConfig llama2c_config(const Llama2cHeader& header) {
  return config_of_header(header);
}

std::vector<std::pair<std::string, Shape>> llama2c_tensor_list(const Llama2cHeader& h) {
  const Dims d = dims_of(h);
  std::vector<std::pair<std::string, Shape>> out;
  out.emplace_back("model.embed_tokens.weight", Shape{d.vocab, d.dim});
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    out.emplace_back(p + "input_layernorm.weight", Shape{d.dim});
    out.emplace_back(p + "self_attn.q_proj.weight", Shape{d.dim, d.dim});
    out.emplace_back(p + "self_attn.k_proj.weight", Shape{d.kv_dim, d.dim});
    out.emplace_back(p + "self_attn.v_proj.weight", Shape{d.kv_dim, d.dim});
    out.emplace_back(p + "self_attn.o_proj.weight", Shape{d.dim, d.dim});
    out.emplace_back(p + "post_attention_layernorm.weight", Shape{d.dim});
    out.emplace_back(p + "mlp.gate_proj.weight", Shape{d.hidden, d.dim});
    out.emplace_back(p + "mlp.down_proj.weight", Shape{d.dim, d.hidden});
    out.emplace_back(p + "mlp.up_proj.weight", Shape{d.hidden, d.dim});
  }
  out.emplace_back("model.norm.weight", Shape{d.dim});
  if (!h.shared_classifier) out.emplace_back("lm_head.weight", Shape{d.vocab, d.dim});
  return out;
}

Result<LoadedModel> load_llama2c(const std::filesystem::path& path) {
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path));
  auto shared = std::make_shared<MmapFile>(std::move(file));
  return load_llama2c_bytes(shared->bytes(), path.string(), shared);
}

}  // namespace qforge

// QuantAlgo / qformat names and the per-algorithm scheme table
// (include/qforge/quant/quant_config.h).
#include "qforge/quant/quant_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace qforge {
namespace {

struct AlgoName {
  QuantAlgo algo;
  std::string_view name;
};

constexpr std::array kAlgoNames = {
    AlgoName{QuantAlgo::NO_QUANT, "NO_QUANT"},
    AlgoName{QuantAlgo::FP8, "FP8"},
    AlgoName{QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN, "FP8_PER_CHANNEL_PER_TOKEN"},
    AlgoName{QuantAlgo::FP8_BLOCK_SCALES, "FP8_BLOCK_SCALES"},
    AlgoName{QuantAlgo::W8A16, "W8A16"},
    AlgoName{QuantAlgo::W4A16, "W4A16"},
    AlgoName{QuantAlgo::W4A16_AWQ, "W4A16_AWQ"},
    AlgoName{QuantAlgo::W4A16_GPTQ, "W4A16_GPTQ"},
    AlgoName{QuantAlgo::W8A16_GPTQ, "W8A16_GPTQ"},
    AlgoName{QuantAlgo::W8A8_SQ_PER_CHANNEL, "W8A8_SQ_PER_CHANNEL"},
    AlgoName{QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN,
             "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN"},
    AlgoName{QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN, "W8A8_SQ_PER_TENSOR_PLUGIN"},
    AlgoName{QuantAlgo::W4A8_AWQ, "W4A8_AWQ"},
    AlgoName{QuantAlgo::NVFP4, "NVFP4"},
    AlgoName{QuantAlgo::W4A16_MXFP4, "W4A16_MXFP4"},
    AlgoName{QuantAlgo::W4A8_MXFP4_FP8, "W4A8_MXFP4_FP8"},
    AlgoName{QuantAlgo::MIXED_PRECISION, "MIXED_PRECISION"},
    AlgoName{QuantAlgo::INT8, "INT8"},
};

constexpr std::array kQformats = {
    QformatName{"fp8", QuantAlgo::FP8, "FP8 E4M3 per-tensor weights, static FP8 activations"},
    QformatName{"fp8_pc_pt", QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN,
                "FP8 per-channel weights, dynamic per-token FP8 activations"},
    QformatName{"fp8_pb_wo", QuantAlgo::FP8_BLOCK_SCALES,
                "FP8 128x128 block weights, dynamic 1x128 FP8 activations"},
    QformatName{"int8_wo", QuantAlgo::W8A16, "INT8 per-channel weights only (RTN)"},
    QformatName{"int4_wo", QuantAlgo::W4A16, "INT4 group weights only (RTN)"},
    QformatName{"int4_awq", QuantAlgo::W4A16_AWQ, "INT4 group weights, AWQ scales + clipping"},
    QformatName{"int4_gptq", QuantAlgo::W4A16_GPTQ, "INT4 group weights, GPTQ"},
    QformatName{"int8_gptq", QuantAlgo::W8A16_GPTQ, "INT8 per-channel weights, GPTQ"},
    QformatName{"int8_sq", QuantAlgo::W8A8_SQ_PER_CHANNEL,
                "SmoothQuant W8A8: per-channel weights, static per-tensor activations"},
    QformatName{"int8_sq_pt", QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN,
                "SmoothQuant W8A8: per-channel weights, dynamic per-token activations"},
    QformatName{"int8_sq_tensor", QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN,
                "SmoothQuant W8A8: per-tensor weights and activations"},
    QformatName{"w4a8_awq", QuantAlgo::W4A8_AWQ, "INT4 AWQ weights, static FP8 activations"},
    QformatName{"nvfp4", QuantAlgo::NVFP4, "NVFP4 weights and activations"},
    QformatName{"mxfp4", QuantAlgo::W4A16_MXFP4, "MXFP4 weights only"},
    QformatName{"w4a8_mxfp4_fp8", QuantAlgo::W4A8_MXFP4_FP8,
                "MXFP4 weights, static FP8 activations"},
    QformatName{"auto", QuantAlgo::MIXED_PRECISION,
                "a format per layer under --auto-quantize-bits (KL sensitivity)"},
    QformatName{"none", QuantAlgo::NO_QUANT, "no quantization (baseline export)"},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string list_qformats() {
  std::string out;
  for (const auto& q : kQformats) {
    if (!out.empty()) out += ", ";
    out += q.qformat;
  }
  return out;
}

}  // namespace

std::string_view quant_algo_name(QuantAlgo algo) {
  for (const auto& a : kAlgoNames) {
    if (a.algo == algo) return a.name;
  }
  return "?";
}

Result<QuantAlgo> parse_quant_algo(std::string_view text) {
  const std::string up = upper(text);
  for (const auto& a : kAlgoNames) {
    if (a.name == up) return a.algo;
  }
  for (const auto& q : kQformats) {
    if (q.qformat == text) return q.algo;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown quantization algorithm '{}'; expected a QuantAlgo name (FP8, "
                    "W4A16_AWQ, NVFP4, ...) or a qformat ({})",
                    text, list_qformats());
}

std::span<const QformatName> qformat_names() {
  return kQformats;
}

Result<QuantAlgo> parse_qformat(std::string_view qformat) {
  for (const auto& q : kQformats) {
    if (q.qformat == qformat) return q.algo;
  }
  // The TensorRT-LLM spelling is accepted too, so configs carry over.
  const std::string up = upper(qformat);
  for (const auto& a : kAlgoNames) {
    if (a.name == up && a.algo != QuantAlgo::INT8) return a.algo;
  }
  return make_error(ErrorCode::kInvalidArgument, "unknown --qformat '{}'; expected one of: {}",
                    qformat, list_qformats());
}

std::string_view qformat_for_algo(QuantAlgo algo) {
  for (const auto& q : kQformats) {
    if (q.algo == algo) return q.qformat;
  }
  return "";
}

std::string_view activation_quant_name(ActivationQuant a) {
  switch (a) {
    case ActivationQuant::kNone:
      return "none";
    case ActivationQuant::kFp8PerTensor:
      return "fp8_per_tensor";
    case ActivationQuant::kFp8PerToken:
      return "fp8_per_token";
    case ActivationQuant::kFp8PerGroup128:
      return "fp8_per_group128";
    case ActivationQuant::kInt8PerTensor:
      return "int8_per_tensor";
    case ActivationQuant::kInt8PerToken:
      return "int8_per_token";
    case ActivationQuant::kNvfp4:
      return "nvfp4";
  }
  return "?";
}

bool activation_quant_is_static(ActivationQuant a) {
  return a == ActivationQuant::kFp8PerTensor || a == ActivationQuant::kInt8PerTensor ||
         a == ActivationQuant::kNvfp4;
}

Status validate_quant_config(const QuantConfig& c) {
  if (c.group_size < 16 || (c.group_size & (c.group_size - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "group_size {} is invalid; expected a power of two >= 16 (32, 64, 128)",
                      c.group_size);
  }
  if (!(c.smoothquant_val >= 0.0f && c.smoothquant_val <= 1.0f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "smoothquant_val (alpha) {} is out of range; expected 0 <= alpha <= 1",
                      c.smoothquant_val);
  }
  if (!(c.clamp_val >= 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "clamp_val {} must be >= 0 (0 = no clamp)",
                      c.clamp_val);
  }
  const QuantAlgo kv = c.kv_cache_quant_algo;
  if (kv != QuantAlgo::NO_QUANT && kv != QuantAlgo::FP8 && kv != QuantAlgo::INT8) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kv_cache_quant_algo {} is not a KV-cache format; expected FP8, INT8 or "
                      "NO_QUANT",
                      quant_algo_name(kv));
  }
  if (c.quant_algo == QuantAlgo::INT8) {
    return make_error(ErrorCode::kInvalidArgument,
                      "quant_algo INT8 is a KV-cache format; for INT8 weights use W8A16 (int8_wo) "
                      "or W8A8_SQ_PER_CHANNEL (int8_sq)");
  }
  if (c.quant_algo == QuantAlgo::MIXED_PRECISION) {
    if (!(c.auto_quantize_bits > 0.0)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "MIXED_PRECISION needs a bit budget (--auto-quantize-bits, e.g. 4.8)");
    }
    if (c.auto_quantize_candidates.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "MIXED_PRECISION needs at least one candidate format");
    }
    for (QuantAlgo a : c.auto_quantize_candidates) {
      if (a == QuantAlgo::MIXED_PRECISION || a == QuantAlgo::INT8) {
        return make_error(ErrorCode::kInvalidArgument,
                          "auto-quantize candidate {} is not a per-layer format",
                          quant_algo_name(a));
      }
    }
  }
  for (const auto& [pattern, algo] : c.layer_overrides) {
    if (algo == QuantAlgo::MIXED_PRECISION || algo == QuantAlgo::INT8) {
      return make_error(ErrorCode::kInvalidArgument,
                        "layer override '{}' -> {}: not a per-layer format", pattern,
                        quant_algo_name(algo));
    }
  }
  return ok_status();
}

Result<LinearQuantScheme> scheme_for_algo(QuantAlgo algo, const QuantConfig& config) {
  LinearQuantScheme s;
  s.algo = algo;
  QuantSpec int4;
  int4.format = config.has_zero_point ? QuantFormat::UINT4_GROUP : QuantFormat::INT4_GROUP;
  int4.group_size = config.group_size;
  int4.scale_type = ScaleType::F16;
  switch (algo) {
    case QuantAlgo::NO_QUANT:
      s.weight = default_quant_spec(QuantFormat::F32);
      return s;
    case QuantAlgo::FP8:
      s.weight = default_quant_spec(QuantFormat::FP8_PER_TENSOR);
      s.activation = ActivationQuant::kFp8PerTensor;
      return s;
    case QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN:
      s.weight = default_quant_spec(QuantFormat::FP8_PER_CHANNEL);
      s.activation = ActivationQuant::kFp8PerToken;
      return s;
    case QuantAlgo::FP8_BLOCK_SCALES:
      s.weight = default_quant_spec(QuantFormat::FP8_BLOCK128);
      s.activation = ActivationQuant::kFp8PerGroup128;
      return s;
    case QuantAlgo::W8A16:
      s.weight = default_quant_spec(QuantFormat::INT8_PER_CHANNEL);
      return s;
    case QuantAlgo::W8A16_GPTQ:
      s.weight = default_quant_spec(QuantFormat::INT8_PER_CHANNEL);
      s.algorithm = WeightAlgorithm::kGptq;
      return s;
    case QuantAlgo::W4A16:
      s.weight = int4;
      return s;
    case QuantAlgo::W4A16_AWQ:
      s.weight = int4;
      s.algorithm = WeightAlgorithm::kAwq;
      return s;
    case QuantAlgo::W4A16_GPTQ:
      s.weight = int4;
      s.algorithm = WeightAlgorithm::kGptq;
      return s;
    case QuantAlgo::W8A8_SQ_PER_CHANNEL:
      s.weight = default_quant_spec(QuantFormat::INT8_PER_CHANNEL);
      s.activation = ActivationQuant::kInt8PerTensor;
      s.algorithm = WeightAlgorithm::kSmoothQuant;
      return s;
    case QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN:
      s.weight = default_quant_spec(QuantFormat::INT8_PER_CHANNEL);
      s.activation = ActivationQuant::kInt8PerToken;
      s.algorithm = WeightAlgorithm::kSmoothQuant;
      return s;
    case QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN:
      s.weight = default_quant_spec(QuantFormat::INT8_PER_TENSOR);
      s.activation = ActivationQuant::kInt8PerTensor;
      s.algorithm = WeightAlgorithm::kSmoothQuant;
      return s;
    case QuantAlgo::W4A8_AWQ:
      // TensorRT-LLM's W4A8_AWQ is symmetric INT4 (no zero point) with FP8 activations.
      s.weight = int4;
      s.weight.format = QuantFormat::INT4_GROUP;
      s.activation = ActivationQuant::kFp8PerTensor;
      s.algorithm = WeightAlgorithm::kAwq;
      return s;
    case QuantAlgo::NVFP4:
      s.weight = default_quant_spec(QuantFormat::NVFP4);
      s.activation = ActivationQuant::kNvfp4;
      return s;
    case QuantAlgo::W4A16_MXFP4:
      s.weight = default_quant_spec(QuantFormat::MXFP4);
      return s;
    case QuantAlgo::W4A8_MXFP4_FP8:
      s.weight = default_quant_spec(QuantFormat::MXFP4);
      s.activation = ActivationQuant::kFp8PerTensor;
      return s;
    case QuantAlgo::MIXED_PRECISION:
    case QuantAlgo::INT8:
      break;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "{} is not a per-layer weight format (MIXED_PRECISION picks one per layer; "
                    "INT8 is a KV-cache format)",
                    quant_algo_name(algo));
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative wildcard match with one backtrack point (linear for patterns with one '*' run).
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<LinearQuantScheme> scheme_for_module(const QuantConfig& config, std::string_view name) {
  if (name == "lm_head" || name == "model.embed_tokens") {
    return scheme_for_algo(QuantAlgo::NO_QUANT, config);
  }
  for (const auto& pattern : config.exclude_modules) {
    if (glob_match(pattern, name)) return scheme_for_algo(QuantAlgo::NO_QUANT, config);
  }
  for (const auto& [pattern, algo] : config.layer_overrides) {
    if (glob_match(pattern, name)) return scheme_for_algo(algo, config);
  }
  if (config.quant_algo == QuantAlgo::MIXED_PRECISION) {
    // Decided per layer by the auto-quantize plan; a placeholder until then.
    LinearQuantScheme pending;
    pending.algo = QuantAlgo::MIXED_PRECISION;
    return pending;
  }
  return scheme_for_algo(config.quant_algo, config);
}

double algo_bits_per_weight(QuantAlgo algo, const QuantConfig& config) {
  auto scheme = scheme_for_algo(algo, config);
  if (!scheme.ok()) return 16.0;
  if (algo == QuantAlgo::NO_QUANT) return 16.0;  // exported in the checkpoint's float dtype
  return bits_per_weight(scheme.value().weight);
}

}  // namespace qforge

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
    AlgoName{QuantAlgo::W4A16_AWQ_GPTQ, "W4A16_AWQ_GPTQ"},
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
    QformatName{"int4_awq_gptq", QuantAlgo::W4A16_AWQ_GPTQ,
                "INT4 group weights, AWQ scales then GPTQ rounding"},
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

std::string list_algo_names() {
  std::string out;
  for (const auto& a : kAlgoNames) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
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

// The weight format, input quantization and algorithm of each per-layer QuantAlgo. INT4 group
// formats take their group size from the config; `zero_point_allowed` rows become UINT4 with a
// zero point under has_zero_point.
struct SchemeRow {
  QuantAlgo algo;
  QuantFormat weight;
  ActivationQuant activation;
  WeightAlgorithm algorithm;
  bool zero_point_allowed = false;
};
using AQ = ActivationQuant;
using WA = WeightAlgorithm;
constexpr std::array kSchemes = {
    SchemeRow{QuantAlgo::NO_QUANT, QuantFormat::F32, AQ::kNone, WA::kRtn},
    SchemeRow{QuantAlgo::FP8, QuantFormat::FP8_PER_TENSOR, AQ::kFp8PerTensor, WA::kRtn},
    SchemeRow{QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN, QuantFormat::FP8_PER_CHANNEL, AQ::kFp8PerToken,
              WA::kRtn},
    SchemeRow{QuantAlgo::FP8_BLOCK_SCALES, QuantFormat::FP8_BLOCK128, AQ::kFp8PerGroup128,
              WA::kRtn},
    SchemeRow{QuantAlgo::W8A16, QuantFormat::INT8_PER_CHANNEL, AQ::kNone, WA::kRtn},
    SchemeRow{QuantAlgo::W8A16_GPTQ, QuantFormat::INT8_PER_CHANNEL, AQ::kNone, WA::kGptq},
    SchemeRow{QuantAlgo::W4A16, QuantFormat::INT4_GROUP, AQ::kNone, WA::kRtn, true},
    SchemeRow{QuantAlgo::W4A16_AWQ, QuantFormat::INT4_GROUP, AQ::kNone, WA::kAwq, true},
    SchemeRow{QuantAlgo::W4A16_GPTQ, QuantFormat::INT4_GROUP, AQ::kNone, WA::kGptq, true},
    SchemeRow{QuantAlgo::W4A16_AWQ_GPTQ, QuantFormat::INT4_GROUP, AQ::kNone, WA::kAwqGptq, true},
    SchemeRow{QuantAlgo::W8A8_SQ_PER_CHANNEL, QuantFormat::INT8_PER_CHANNEL, AQ::kInt8PerTensor,
              WA::kSmoothQuant},
    SchemeRow{QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN, QuantFormat::INT8_PER_CHANNEL,
              AQ::kInt8PerToken, WA::kSmoothQuant},
    SchemeRow{QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN, QuantFormat::INT8_PER_TENSOR,
              AQ::kInt8PerTensor, WA::kSmoothQuant},
    // TensorRT-LLM's W4A8_AWQ is symmetric INT4 (no zero point) with FP8 activations.
    SchemeRow{QuantAlgo::W4A8_AWQ, QuantFormat::INT4_GROUP, AQ::kFp8PerTensor, WA::kAwq},
    SchemeRow{QuantAlgo::NVFP4, QuantFormat::NVFP4, AQ::kNvfp4, WA::kRtn},
    SchemeRow{QuantAlgo::W4A16_MXFP4, QuantFormat::MXFP4, AQ::kNone, WA::kRtn},
    SchemeRow{QuantAlgo::W4A8_MXFP4_FP8, QuantFormat::MXFP4, AQ::kFp8PerTensor, WA::kRtn},
};

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
                    "unknown quantization algorithm '{}'; expected a QuantAlgo name ({}) or a "
                    "qformat ({})",
                    text, list_algo_names(), list_qformats());
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
  for (const SchemeRow& row : kSchemes) {
    if (row.algo != algo) continue;
    LinearQuantScheme s;
    s.algo = algo;
    s.activation = row.activation;
    s.algorithm = row.algorithm;
    if (row.weight == QuantFormat::INT4_GROUP) {
      const bool zero_point = config.has_zero_point && row.zero_point_allowed;
      s.weight.format = zero_point ? QuantFormat::UINT4_GROUP : QuantFormat::INT4_GROUP;
      s.weight.group_size = config.group_size;
      s.weight.scale_type = ScaleType::F16;
    } else {
      s.weight = default_quant_spec(row.weight);
    }
    return s;
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

QuantAlgo checkpoint_algo(QuantAlgo algo) {
  return algo == QuantAlgo::W4A16_AWQ_GPTQ ? QuantAlgo::W4A16_AWQ : algo;
}

double algo_bits_per_weight(QuantAlgo algo, const QuantConfig& config) {
  auto scheme = scheme_for_algo(algo, config);
  if (!scheme.ok()) return 16.0;
  if (algo == QuantAlgo::NO_QUANT) return 16.0;  // exported in the checkpoint's float dtype
  return bits_per_weight(scheme.value().weight);
}

}  // namespace qforge

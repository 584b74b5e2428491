// The engine file's metadata entries (safetensors "__metadata__" strings) and their JSON
// (de)serialisation: build config, model config, KV-cache quantization, tokenizer kind. Every
// reader treats the text as hostile (types, ranges, sizes checked; errors name the key).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "qforge/core/error.h"
#include "qforge/engine/build_config.h"
#include "qforge/model/config.h"
#include "qforge/model/kv_cache_quant.h"

namespace qforge::engine_detail {

inline constexpr const char* kFormatKey = "qforge.engine.format";
inline constexpr const char* kFormatValue = "qforge-engine";
inline constexpr const char* kVersionKey = "qforge.engine.version";
inline constexpr const char* kBackendKey = "qforge.engine.backend";
inline constexpr const char* kCpuTargetKey = "qforge.engine.cpu_target";
inline constexpr const char* kBuildConfigKey = "qforge.build_config";
inline constexpr const char* kModelConfigKey = "qforge.model_config";
inline constexpr const char* kKvCacheKey = "qforge.kv_cache";
inline constexpr const char* kLinearsKey = "qforge.linears";
inline constexpr const char* kKernelChoicesKey = "qforge.kernel_choices";
inline constexpr const char* kTokenizerKindKey = "qforge.tokenizer_kind";
inline constexpr const char* kTokenizerConfigKey = "qforge.tokenizer_config";
inline constexpr const char* kSourceKey = "qforge.source";
inline constexpr const char* kTokenizerTensor = "qforge.tokenizer";
inline constexpr const char* kPackedSuffix = ".packed";

nlohmann::json build_config_to_json(const BuildConfig& config);
Result<BuildConfig> build_config_from_json(const nlohmann::json& j);

// config.json text (hf_config_json) plus qforge's own keys for what HF configs cannot say
// (RoPE layout of llama2.c / GGUF sources).
std::string model_config_to_text(const ModelConfig& config);
Result<ModelConfig> model_config_from_text(const std::string& text);

nlohmann::json kv_cache_quant_to_json(const KvCacheQuant& kv);
Result<KvCacheQuant> kv_cache_quant_from_json(const nlohmann::json& j);

// Parses a metadata value as JSON (errors name the key).
Result<nlohmann::json> parse_metadata_json(const std::string& key, const std::string& text);

}  // namespace qforge::engine_detail

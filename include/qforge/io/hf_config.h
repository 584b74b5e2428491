// Hugging Face transformers config.json (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config;
// transformers v4 and v5 spellings) and generation_config.json, parsed into ModelConfig.
#pragma once

#include <filesystem>
#include <string_view>

#include "qforge/core/error.h"
#include "qforge/model/config.h"

namespace qforge {

// Parses config.json text. model_type must be llama, mistral, qwen2 or qwen3 (others are an
// error naming them). Missing optional fields take transformers' defaults for that model_type;
// present fields must have the right JSON type. The result passes validate_model_config.
// `file` names the file in errors.
Result<ModelConfig> parse_hf_config(std::string_view json_text, std::string_view file);

// Applies generation_config.json text: its bos/eos/pad ids replace the config's (eos may be an
// int or a list). Ids are re-validated against vocab_size.
Status apply_generation_config(std::string_view json_text, std::string_view file,
                               ModelConfig* config);

// Reads <dir>/config.json and, when present, <dir>/generation_config.json.
Result<ModelConfig> load_hf_config(const std::filesystem::path& dir);

}  // namespace qforge

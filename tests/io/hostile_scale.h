// Generators of huge-but-valid hostile inputs (issue 15, causes 8 and 9): a safetensors header of
// n zero-size tensors, a config.json with n extra members, a shard index with n entries and n
// metadata objects, a GGUF with n zero-size tensors. Shared by tests/io/test_hostile_scale.cpp
// (n = 10^5 under a generous bound) and bench/bench_hostile_parsers.cpp (n = 10^6, < 2 s).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qforge::hostile_scale {

// 8-byte length + {"t0":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}, ...} (every tensor
// empty, so they tile the empty data section).
inline std::vector<std::byte> safetensors_zero_tensors(int64_t n) {
  std::string json = "{";
  json.reserve(static_cast<size_t>(n) * 64 + 16);
  for (int64_t i = 0; i < n; ++i) {
    if (i) json += ',';
    json +=
        "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  std::vector<std::byte> out(8 + json.size());
  const uint64_t len = json.size();
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, json.data(), json.size());
  return out;
}

// A valid Llama config.json plus n extra members of one object each ({"x0":{"a":0}, ...}): the
// shape that made the callback parser quadratic (one rescan of the parent per nested object).
inline std::string config_with_members(int64_t n) {
  std::string json =
      "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":64,"
      "\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
      "\"num_key_value_heads\":4,\"vocab_size\":512,\"max_position_embeddings\":256,"
      "\"rms_norm_eps\":1e-5";
  json.reserve(json.size() + static_cast<size_t>(n) * 20);
  for (int64_t i = 0; i < n; ++i) json += ",\"x" + std::to_string(i) + "\":{\"a\":0}";
  return json + "}";
}

// model.safetensors.index.json with n weight_map entries and n metadata objects.
inline std::string index_with_entries(int64_t n) {
  std::string json = "{\"metadata\":{\"total_size\":0";
  json.reserve(static_cast<size_t>(n) * 60);
  for (int64_t i = 0; i < n; ++i) json += ",\"m" + std::to_string(i) + "\":{\"k\":[1]}";
  json += "},\"weight_map\":{";
  for (int64_t i = 0; i < n; ++i) {
    if (i) json += ',';
    json += "\"w" + std::to_string(i) + "\":\"m.safetensors\"";
  }
  return json + "}}";
}

// GGUF v3 with no metadata and n one-dimensional F32 tensors of 0 elements, all at offset 0.
inline std::vector<std::byte> gguf_zero_tensors(int64_t n) {
  std::vector<std::byte> out;
  const auto put = [&](const void* p, size_t k) {
    const size_t at = out.size();
    out.resize(at + k);
    std::memcpy(out.data() + at, p, k);
  };
  const auto u32 = [&](uint32_t v) { put(&v, 4); };
  const auto u64 = [&](uint64_t v) { put(&v, 8); };
  out.reserve(static_cast<size_t>(n) * 48 + 64);
  put("GGUF", 4);
  u32(3);
  u64(static_cast<uint64_t>(n));
  u64(0);
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = "t" + std::to_string(i);
    u64(name.size());
    put(name.data(), name.size());
    u32(1);  // n_dims
    u64(0);  // ne[0]
    u32(0);  // F32
    u64(0);  // offset
  }
  out.resize((out.size() + 31) / 32 * 32);  // the (empty) data section starts aligned
  return out;
}

}  // namespace qforge::hostile_scale

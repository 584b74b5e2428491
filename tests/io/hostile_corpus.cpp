// The hostile-file corpus (see hostile_corpus.h). Each builder starts from a valid file and
// breaks exactly one thing.
#include "io/hostile_corpus.h"

namespace qforge::testing_io {
namespace {

std::vector<uint8_t> to_vec(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> st(std::string_view header, size_t data_bytes) {
  return safetensors_bytes(header, data_bytes);
}

// A GGUF v3 header followed by raw content.
Bytes gguf_header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes b;
  b.str("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

// One u32 metadata pair.
Bytes& kv_u32(Bytes& b, std::string_view key, uint32_t v) {
  b.gstr(key).u32(4).u32(v);
  return b;
}

// A GGUF with one tensor "w" described by n_dims/ne/type/offset and `data` bytes of data.
std::vector<uint8_t> gguf_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                                 size_t data, uint32_t n_dims_override = 0) {
  Bytes b = gguf_header(1, 0);
  b.gstr("w").u32(n_dims_override ? n_dims_override : static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b.u64(d);
  b.u32(type).u64(offset);
  b.pad_to(32).zeros(data);
  return b.data();
}

Bytes legacy_header(int32_t dim, int32_t hidden, int32_t layers, int32_t heads, int32_t kv,
                    int32_t vocab, int32_t seq) {
  Bytes b;
  for (int32_t v : {dim, hidden, layers, heads, kv, vocab, seq}) b.i32(v);
  return b;
}

Bytes ak42_header(int32_t version, uint8_t shared, int32_t group_size) {
  Bytes b;
  b.u32(0x616b3432).i32(version);
  for (int32_t v : {8, 16, 1, 2, 1, 4, 2}) b.i32(v);
  b.u8(shared).i32(group_size);
  b.pad_to(256);
  return b;
}

std::string config_with(const std::string& extra) {
  return R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100)" +
         extra + "}";
}

}  // namespace

std::vector<uint8_t> good_safetensors() {
  return st(
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      8);
}

std::vector<uint8_t> good_gguf() {
  Bytes b = gguf_header(1, 2);
  b.gstr("general.architecture").u32(8).gstr("llama");
  b.gstr("tokenizer.ggml.tokens").u32(9).u32(8).u64(2).gstr("<s>").gstr("a");
  b.gstr("w").u32(2).u64(32).u64(1).u32(8).u64(0);
  b.pad_to(32).zeros(34);
  return b.data();
}

std::vector<uint8_t> good_llama2c() {
  // dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 4 (shared), seq 2.
  Bytes b = legacy_header(8, 16, 1, 2, 1, 4, 2);
  const int floats = 4 * 8 + 8 + 64 + 2 * 32 + 64 + 8 + 3 * 128 + 8 + 2 * 4;
  for (int i = 0; i < floats; ++i) b.f32(0.01f * static_cast<float>(i));
  return b.data();
}

std::string good_config_json() {
  return config_with("");
}

std::vector<HostileCase> hostile_cases() {
  using K = CorpusKind;
  std::vector<HostileCase> c;
  auto add = [&](std::string name, K kind, std::vector<uint8_t> bytes,
                 std::vector<std::string> expect) {
    c.push_back({std::move(name), kind, std::move(bytes), std::move(expect), {}});
  };
  const std::string f32a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  // ---- safetensors ----
  add("safetensors/too_short", K::Safetensors, to_vec("abc"), {"3 bytes", "8-byte header length"});
  {
    Bytes b;
    b.u64(100'000'001).str("{}");
    add("safetensors/header_too_large", K::Safetensors, b.data(),
        {"header length 100000001 exceeds the limit of 100000000"});
  }
  {
    Bytes b;
    b.u64(1000).str("{}");
    add("safetensors/header_past_end", K::Safetensors, b.data(),
        {"header length 1000 runs past the end of the file (10 bytes"});
  }
  add("safetensors/not_a_brace", K::Safetensors, st("[1] ", 0), {"header starts with '[1] '"});
  add("safetensors/malformed_json", K::Safetensors, st(R"({"a":)", 0), {"malformed JSON"});
  add("safetensors/deep_nesting", K::Safetensors,
      st("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", 0),
      {"nests deeper than 64 levels"});
  add("safetensors/duplicate_name", K::Safetensors, st("{" + f32a + "," + f32a + "}", 8),
      {"key 'a' appears twice"});
  add("safetensors/unknown_dtype", K::Safetensors,
      st(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8),
      {"tensor 'a'", "dtype 'F33' is not a safetensors dtype"});
  add("safetensors/unsupported_dtype", K::Safetensors,
      st(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", 8),
      {"tensor 'a'", "'U16' is a valid safetensors dtype that qforge does not read"});
  add("safetensors/lowercase_dtype", K::Safetensors,
      st(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", 8),
      {"dtype 'f32' is not a safetensors dtype", "case-sensitive"});
  add("safetensors/too_many_dims", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", 8),
      {"tensor 'a' field shape has 9 dims (expected at most 8)"});
  add("safetensors/negative_dim", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
      {"tensor 'a' shape[0] = -2 is not a non-negative integer"});
  add("safetensors/fractional_dim", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
      {"tensor 'a' shape[0] = 2.5"});
  add("safetensors/shape_overflow", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})",
         8),
      {"tensor 'a' field shape", "more than 2^63 elements"});
  add("safetensors/byte_size_overflow", K::Safetensors,
      st(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", 8),
      {"tensor 'a'", "overflow a 64-bit byte count"});
  add("safetensors/begin_after_end", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
      {"tensor 'a' data_offsets [8, 0] end before they begin"});
  add("safetensors/size_mismatch", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
      {"tensor 'a' data_offsets [0, 8] span 8 bytes but dtype F32 x shape [3] needs 12 bytes"});
  add("safetensors/gap", K::Safetensors,
      st("{" + f32a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20),
      {"tensor 'b' data_offsets begin at 12", "'a' ends at 8", "a gap"});
  add("safetensors/overlap", K::Safetensors,
      st("{" + f32a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
      {"tensor 'b' data_offsets begin at 4", "an overlap"});
  add("safetensors/trailing_bytes", K::Safetensors, st("{" + f32a + "}", 12),
      {"cover 8 bytes of data but the file has 12", "4 trailing bytes"});
  add("safetensors/tensor_past_end", K::Safetensors, st("{" + f32a + "}", 4),
      {"tensor 'a' ends at data offset 8 but the data section has 4 bytes"});
  add("safetensors/offset_huge", K::Safetensors,
      st(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[18446744073709551608,18446744073709551615]}})",
         8),
      {"tensor 'a'", "span 7 bytes", "needs 8 bytes"});
  add("safetensors/metadata_not_string", K::Safetensors, st(R"({"__metadata__":{"k":1}})", 0),
      {"__metadata__ entry 'k' is a JSON number, expected a string"});
  add("safetensors/offsets_not_pair", K::Safetensors,
      st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
      {"tensor 'a' field data_offsets = [0]"});
  add("safetensors/missing_dtype", K::Safetensors,
      st(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), {"tensor 'a' has no 'dtype' field"});
  add("safetensors/invalid_utf8", K::Safetensors, st("{\"\xff\xfe\":1}", 0), {"malformed JSON"});

  // ---- GGUF ----
  {
    Bytes b;
    b.str("GGUX").u32(3).u64(0).u64(0);
    add("gguf/bad_magic", K::Gguf, b.data(), {"magic is 'GGUX', expected 'GGUF'"});
  }
  add("gguf/version_1", K::Gguf, gguf_header(0, 0, 1).data(),
      {"GGUF version 1 is not supported", "32-bit counts"});
  add("gguf/big_endian", K::Gguf, gguf_header(0, 0, 0x03000000).data(),
      {"GGUF version 50331648", "big-endian"});
  {
    Bytes b;
    b.str("GGUF").u32(3).u32(0);
    add("gguf/truncated_header", K::Gguf, b.data(), {"tensor_count needs 8 bytes at offset 8"});
  }
  add("gguf/too_many_tensors", K::Gguf, gguf_header(1'000'001, 0).zeros(64).data(),
      {"tensor_count = 1000001 exceeds the limit 1000000"});
  add("gguf/kv_count_vs_bytes", K::Gguf, gguf_header(0, 1000).zeros(64).data(),
      {"metadata_kv_count = 1000", "64 remaining bytes"});
  {
    Bytes b = gguf_header(0, 1);
    b.u64((16u << 20) + 1).zeros(16);
    add("gguf/string_over_cap", K::Gguf, b.data(),
        {"metadata key #0 has length 16777217", "16777216 byte limit"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.u64(100).str("0123456789");
    add("gguf/string_past_end", K::Gguf, b.data(),
        {"metadata key #0 needs 100 bytes at offset 32 but only 10 remain"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("arr").u32(9).u32(0).u64((1u << 24) + 1).zeros(32);
    add("gguf/array_over_cap", K::Gguf, b.data(),
        {"metadata 'arr' claims 16777217 elements of uint8", "limit is 16777216"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("arr").u32(9).u32(4).u64(1000).zeros(8);
    add("gguf/array_vs_bytes", K::Gguf, b.data(),
        {"metadata 'arr' claims 1000 elements of uint32", "only 8 bytes remain"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("arr").u32(9).u32(8).u64(1 << 20).zeros(64);
    add("gguf/string_array_vs_bytes", K::Gguf, b.data(),
        {"metadata 'arr' claims 1048576 elements of string"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("arr").u32(9).u32(9).u64(1).u32(0).u64(0);
    add("gguf/nested_array", K::Gguf, b.data(), {"metadata 'arr' is an array of arrays"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("k").u32(13).u32(0);
    add("gguf/bad_value_type", K::Gguf, b.data(),
        {"metadata 'k' type = 13", "not a GGUF value type"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("arr").u32(9).u32(99).u64(1).u32(0);
    add("gguf/bad_array_element_type", K::Gguf, b.data(), {"metadata 'arr' element type = 99"});
  }
  {
    Bytes b = gguf_header(0, 1);
    kv_u32(b, "general.alignment", 48);
    add("gguf/alignment_not_power_of_two", K::Gguf, b.data(),
        {"general.alignment = 48", "power of two"});
  }
  {
    Bytes b = gguf_header(0, 1);
    kv_u32(b, "general.alignment", 0);
    add("gguf/alignment_zero", K::Gguf, b.data(), {"general.alignment = 0"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("general.alignment").u32(8).gstr("32");
    add("gguf/alignment_wrong_type", K::Gguf, b.data(),
        {"general.alignment = \"32\" (string)", "uint32"});
  }
  {
    Bytes b = gguf_header(0, 2);
    kv_u32(b, "a", 1);
    kv_u32(b, "a", 2);
    add("gguf/duplicate_key", K::Gguf, b.data(), {"metadata 'a' appears twice"});
  }
  {
    Bytes b = gguf_header(0, 1);
    b.gstr("flag").u32(7).u8(2);
    add("gguf/bool_not_0_or_1", K::Gguf, b.data(), {"metadata 'flag' holds bool byte 2"});
  }
  add("gguf/too_many_dims", K::Gguf, gguf_tensor({1, 1, 1, 1, 1}, 0, 0, 4),
      {"tensor 'w' has n_dims = 5 (expected at most 4)"});
  add("gguf/unknown_tensor_type", K::Gguf, gguf_tensor({32}, 4, 0, 64),
      {"tensor 'w' has ggml type 4 which is unknown or removed"});
  add("gguf/tensor_past_data", K::Gguf, gguf_tensor({1000}, 0, 0, 32),
      {"tensor 'w' (4000 bytes at data offset 0) ends past the data section of 32 bytes"});
  add("gguf/offset_huge", K::Gguf, gguf_tensor({16}, 0, 0xFFFFFFFFFFFFFFE0ull, 64),
      {"tensor 'w' (64 bytes at data offset 18446744073709551584) ends past"});
  add("gguf/offset_unaligned", K::Gguf, gguf_tensor({4}, 0, 4, 64),
      {"tensor 'w' offset 4 is not a multiple of the alignment 32"});
  add("gguf/ne_overflow", K::Gguf, gguf_tensor({1ull << 40, 1ull << 40}, 0, 0, 32),
      {"tensor 'w' ne[1] = 1099511627776 makes the element count overflow"});
  // Found by fuzz_gguf: a zero dim made the element count 0 while the other dims overflowed.
  add("gguf/zero_dim_extent_overflow", K::Gguf, gguf_tensor({0, 1ull << 40, 1ull << 40}, 0, 0, 32),
      {"tensor 'w' ne[2] = 1099511627776 makes the element count overflow"});
  add("gguf/ne_negative", K::Gguf, gguf_tensor({0xFFFFFFFFFFFFFFFFull}, 0, 0, 32),
      {"tensor 'w' ne[0] = 18446744073709551615"});
  add("gguf/row_not_block_multiple", K::Gguf, gguf_tensor({33}, 8, 0, 64),
      {"tensor 'w' of type q8_0 has rows of 33 elements, not a multiple of the block size 32"});
  add("gguf/truncated_tensor_info", K::Gguf, gguf_tensor({4}, 0, 0, 0, 3),
      {"tensor 'w' type needs 4 bytes"});
  {
    Bytes b = gguf_header(2, 0);
    b.gstr("w").u32(1).u64(16).u32(0).u64(0);
    b.gstr("w").u32(1).u64(16).u32(0).u64(64);
    b.pad_to(32).zeros(128);
    add("gguf/duplicate_tensor", K::Gguf, b.data(), {"tensor 'w' appears twice"});
  }
  {
    Bytes b = gguf_header(2, 0);
    b.gstr("a").u32(1).u64(16).u32(0).u64(0);
    b.gstr("b").u32(1).u64(16).u32(0).u64(32);
    b.pad_to(32).zeros(128);
    add("gguf/overlapping_tensors", K::Gguf, b.data(),
        {"tensors 'a' [0, 64) and 'b' [32, 96) overlap"});
  }

  // ---- llama2.c ----
  add("llama2c/too_short", K::Llama2c, std::vector<uint8_t>(10, 1),
      {"bad.bin: header needs 4 bytes"});
  add("llama2c/zero_heads", K::Llama2c, legacy_header(8, 16, 1, 0, 1, 4, 2).data(),
      {"header field n_heads = 0 is invalid"});
  add("llama2c/negative_dim", K::Llama2c, legacy_header(-8, 16, 1, 2, 1, 4, 2).data(),
      {"header field dim = -8 is invalid"});
  add("llama2c/heads_do_not_divide_dim", K::Llama2c, legacy_header(8, 16, 1, 3, 1, 4, 2).data(),
      {"n_heads = 3 is invalid (expected a divisor of dim 8"});
  add("llama2c/kv_heads_do_not_divide_heads", K::Llama2c,
      legacy_header(8, 16, 1, 2, 3, 4, 2).data(), {"n_kv_heads = 3 is invalid"});
  add("llama2c/vocab_int_min", K::Llama2c, legacy_header(8, 16, 1, 2, 1, INT32_MIN, 2).data(),
      {"header field vocab_size = 0 is invalid"});
  add("llama2c/too_many_layers", K::Llama2c, legacy_header(8, 16, 5000, 2, 1, 4, 2).data(),
      {"llama2.c header", "num_hidden_layers = 5000 is out of range"});
  add("llama2c/huge_vocab", K::Llama2c, legacy_header(8, 16, 1, 2, 1, 1 << 30, 2).data(),
      {"vocab_size = 1073741824 is out of range"});
  {
    auto bytes = good_llama2c();
    bytes.resize(bytes.size() - 4);
    add("llama2c/truncated", K::Llama2c, bytes,
        {"implies 2588 bytes but the file has 2584 bytes", "truncated"});
  }
  {
    auto bytes = good_llama2c();
    bytes.resize(bytes.size() + 4);
    add("llama2c/trailing_bytes", K::Llama2c, bytes,
        {"implies 2588 bytes but the file has 2592 bytes"});
  }
  add("llama2c/ak42_bad_version", K::Llama2c, ak42_header(3, 1, 4).data(),
      {"header field version = 3 is invalid"});
  add("llama2c/ak42_group_size_zero", K::Llama2c, ak42_header(2, 1, 0).data(),
      {"header field group_size = 0 is invalid", "divisor of dim 8"});
  add("llama2c/ak42_group_size_not_divisor", K::Llama2c, ak42_header(2, 1, 3).data(),
      {"header field group_size = 3 is invalid"});
  add("llama2c/ak42_shared_flag", K::Llama2c, ak42_header(2, 7, 4).data(),
      {"header field shared_classifier = 7 is invalid"});
  {
    Bytes b;
    b.u32(0x616b3432).i32(2).zeros(20);
    add("llama2c/ak42_short_header", K::Llama2c, b.data(), {"the 256-byte ak42 header"});
  }
  add("llama2c/ak42_truncated_data", K::Llama2c, ak42_header(2, 1, 4).zeros(100).data(),
      {"llama2.c version 2 header", "but the file has 356 bytes"});

  // ---- config.json ----
  auto cfg = [&](std::string name, const std::string& text, std::vector<std::string> expect) {
    add("config/" + name, K::Config, to_vec(text), std::move(expect));
  };
  cfg("unknown_model_type", R"({"model_type": "gemma2"})",
      {"model_type 'gemma2' is not supported (supported: llama, mistral, qwen2, qwen3)"});
  cfg("missing_model_type", R"({"hidden_size": 64})", {"no 'model_type' field"});
  cfg("hidden_size_string", R"({"model_type": "llama", "hidden_size": "64", "vocab_size": 1})",
      {"hidden_size = \"64\" is not an integer"});
  cfg("too_many_layers",
      R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 2000, "num_attention_heads": 4, "vocab_size": 100})",
      {"num_hidden_layers = 2000 is out of range"});
  cfg("heads_do_not_divide_hidden",
      R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 2, "num_attention_heads": 6, "vocab_size": 100})",
      {"num_attention_heads = 6 does not divide hidden_size = 64"});
  cfg("kv_heads_do_not_divide_heads", config_with(R"(, "num_key_value_heads": 3)"),
      {"num_key_value_heads = 3 is out of range"});
  cfg("vocab_too_large", R"({"model_type": "llama", "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 33554432})",
      {"vocab_size = 33554432 is out of range"});
  cfg("deep_nesting", "{\"model_type\":" + std::string(200, '[') + std::string(200, ']') + "}",
      {"nests deeper than 64 levels"});
  cfg("unknown_rope_type", config_with(R"(, "rope_scaling": {"type": "longrope", "factor": 2})"),
      {"rope_scaling.rope_type 'longrope' is not supported"});
  cfg("malformed_json", R"({"model_type": "llama",)", {"malformed JSON"});
  cfg("duplicate_key", config_with(R"(, "hidden_size": 128)"), {"key 'hidden_size' appears twice"});
  cfg("eos_out_of_range", config_with(R"(, "eos_token_id": [2, 999])"),
      {"eos_token_id = 999 is out of range"});
  cfg("negative_eps", config_with(R"(, "rms_norm_eps": -1)"),
      {"rms_norm_eps = -1 is out of range"});
  cfg("odd_head_dim", config_with(R"(, "head_dim": 7)"), {"head_dim = 7"});
  cfg("top_level_array", "[1, 2]", {"top level is a JSON array"});
  cfg("llama3_missing_fields",
      config_with(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8})"),
      {"'llama3' needs factor, low_freq_factor, high_freq_factor"});
  cfg("unsupported_activation", config_with(R"(, "hidden_act": "gelu")"),
      {"hidden_act 'gelu' is not supported"});
  cfg("float_layers",
      R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 1e300, "num_attention_heads": 4, "vocab_size": 100})",
      {"num_hidden_layers = 1e+300 is not an integer"});
  cfg("negative_theta", config_with(R"(, "rope_theta": -5)"), {"rope_theta = -5 is out of range"});
  cfg("bool_as_int",
      R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": true,
          "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})",
      {"intermediate_size = true is not an integer"});

  // ---- model.safetensors.index.json ----
  const std::string shard_a = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  c.push_back({"index/path_traversal",
               K::ShardIndex,
               to_vec(R"({"weight_map": {"a": "../evil.safetensors"}})"),
               {"weight_map names shard '../evil.safetensors'", "without path separators"},
               {}});
  c.push_back({"index/tensor_missing_from_shard",
               K::ShardIndex,
               to_vec(R"({"weight_map": {"a": "s.safetensors", "b": "s.safetensors"}})"),
               {"tensor 'b' is mapped to s.safetensors but that shard does not contain it"},
               {{"s.safetensors", shard_a}}});
  c.push_back({"index/tensor_not_in_index",
               K::ShardIndex,
               to_vec(R"({"weight_map": {"b": "s.safetensors"}})"),
               {"shard s.safetensors holds tensor 'a' but the index maps it to nothing"},
               {{"s.safetensors", shard_a}}});
  c.push_back({"index/weight_map_not_object",
               K::ShardIndex,
               to_vec(R"({"weight_map": []})"),
               {"expected an object with a 'weight_map' object"},
               {}});
  return c;
}

}  // namespace qforge::testing_io

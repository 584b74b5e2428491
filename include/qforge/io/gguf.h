// GGUF v2/v3 (ggml's model file format, github.com/ggml-org/ggml docs/gguf.md): reader with raw
// typed metadata (every value type, arrays included), tensor infos and data; dequantization of
// F32/F16/BF16/Q8_0/Q4_0/Q4_1 to F32; a writer for those types; and the mapping of llama/qwen2/
// qwen3 metadata and tensor names to ModelConfig and the HF names of weights.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/model/weights.h"

namespace qforge {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
inline constexpr uint64_t kGgufDefaultAlignment = 32;
// Reader caps (checked, with the bytes left in the file, before anything is allocated).
inline constexpr uint64_t kGgufMaxStringBytes = 16ull << 20;  // 16 MiB
inline constexpr uint64_t kGgufMaxArrayElements = 1ull << 24;
// A million: real checkpoints hold at most tens of thousands (a 671B MoE with unmerged experts
// ~50k); each tensor info costs ~150 bytes of memory, so the cap bounds a hostile header to
// ~150 MB and about a second.
inline constexpr uint64_t kGgufMaxTensors = 1'000'000;
inline constexpr uint64_t kGgufMaxKeyValues = 1'000'000;
inline constexpr uint32_t kGgufMaxDims = 4;

// Metadata value types, numbered as in the file.
enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

// Bytes of one scalar value of type t; 0 for STRING and ARRAY (variable size).
size_t gguf_scalar_size(GgufType t);
const char* gguf_type_name(GgufType type);  // "uint8", ..., "array"

// Tensor types (ggml_type), numbered as in the file. Only the ones qforge dequantizes and
// writes are named here; gguf_tensor_type_info() knows the block sizes of every ggml type.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;     // "q4_0"
  uint32_t block_size;  // elements per block (1 for plain types)
  uint32_t type_size;   // bytes per block
  bool dequantizable;   // qforge converts it to F32
};
// Block geometry of any known ggml type id, or nullptr for unknown/removed ids.
const GgmlTypeInfo* gguf_tensor_type_info(uint32_t type);

// Block layouts (ggml-common.h). Values of block i cover elements [32i, 32i + 32).
// Q8_0: x = d * qs[j].
struct BlockQ8_0 {
  uint16_t d;  // F16 scale
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);
// Q4_0: element j (< 16) in the low nibble of qs[j], element j + 16 in its high nibble;
// x = d * (q - 8).
struct BlockQ4_0 {
  uint16_t d;  // F16 scale
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);
// Q4_1: nibbles as Q4_0; x = d * q + m.
struct BlockQ4_1 {
  uint16_t d;  // F16 scale
  uint16_t m;  // F16 minimum
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

// ggml's reference quantizers (quantize_row_*_ref) and dequantizers; n must be a multiple of 32.
std::vector<BlockQ8_0> quantize_q8_0(std::span<const float> x);
std::vector<BlockQ4_0> quantize_q4_0(std::span<const float> x);
std::vector<BlockQ4_1> quantize_q4_1(std::span<const float> x);
// Dequantizes `bytes` holding n elements of `type` (F32/F16/BF16/Q8_0/Q4_0/Q4_1) into out[n].
Status gguf_dequantize(uint32_t type, std::span<const std::byte> bytes, std::span<float> out);

// One metadata value. Numeric arrays keep their raw little-endian bytes (memory equals the
// file's); string arrays are decoded. Accessors convert between compatible types and fail with
// a message naming the key otherwise.
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return scalar(GgufType::UINT8, &v, 1); }
  static GgufValue i8(int8_t v) { return scalar(GgufType::INT8, &v, 1); }
  static GgufValue u16(uint16_t v) { return scalar(GgufType::UINT16, &v, 2); }
  static GgufValue i16(int16_t v) { return scalar(GgufType::INT16, &v, 2); }
  static GgufValue u32(uint32_t v) { return scalar(GgufType::UINT32, &v, 4); }
  static GgufValue i32(int32_t v) { return scalar(GgufType::INT32, &v, 4); }
  static GgufValue f32(float v) { return scalar(GgufType::FLOAT32, &v, 4); }
  static GgufValue boolean(bool v) {
    const uint8_t b = v ? 1 : 0;
    return scalar(GgufType::BOOL, &b, 1);
  }
  static GgufValue u64(uint64_t v) { return scalar(GgufType::UINT64, &v, 8); }
  static GgufValue i64(int64_t v) { return scalar(GgufType::INT64, &v, 8); }
  static GgufValue f64(double v) { return scalar(GgufType::FLOAT64, &v, 8); }
  static GgufValue string(std::string v);
  static GgufValue string_array(std::vector<std::string> v);
  // A numeric/bool array of `element_type`, from its raw little-endian bytes.
  static Result<GgufValue> numeric_array(GgufType element_type, std::vector<uint8_t> raw);
  template <typename T>
  static GgufValue array_of(GgufType element_type, std::span<const T> values) {
    std::vector<uint8_t> raw(values.size_bytes());
    if (!raw.empty()) std::memcpy(raw.data(), values.data(), raw.size());
    return numeric_array(element_type, std::move(raw)).value();
  }

  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::ARRAY; }
  GgufType array_type() const { return array_type_; }
  uint64_t array_size() const;

  // Scalars. as_int accepts any integer type (and bool) whose value fits int64; as_uint any
  // non-negative integer; as_float FLOAT32/FLOAT64 and integers.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;

  // Arrays.
  const std::vector<std::string>* as_string_array() const;
  // Elements of a FLOAT32 array (also FLOAT64, converted).
  std::optional<std::vector<float>> as_f32_array() const;
  // Elements of any integer array (and BOOL), widened.
  std::optional<std::vector<int64_t>> as_int_array() const;
  std::span<const uint8_t> raw_array_bytes() const { return raw_; }
  std::span<const uint8_t> raw_scalar_bytes() const { return raw_; }

  // Short human-readable rendering ("32000 strings", "\"llama\"", "1e-05").
  std::string to_string() const;

 private:
  static GgufValue scalar(GgufType type, const void* data, size_t n);
  GgufType type_ = GgufType::UINT8;
  GgufType array_type_ = GgufType::UINT8;
  std::vector<uint8_t> raw_;  // scalar bytes or numeric array bytes
  std::string string_;
  std::vector<std::string> strings_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the fastest-varying (row length)
  uint32_t type = 0;        // ggml_type id
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
  // Row-major shape (reversed ne): a [rows, cols] matrix has ne = {cols, rows}.
  Shape shape() const;
};

// A parsed GGUF file. Parsing validates everything the reader relies on; tensor data is read
// lazily (views into the mapped file, or dequantized copies).
class GgufFile {
 public:
  static Result<GgufFile> open(const std::filesystem::path& path);
  // Parses `bytes` (a whole file); keep_alive owns them (may be null when the caller keeps the
  // bytes alive for the GgufFile's lifetime, e.g. a fuzzer).
  static Result<GgufFile> parse(std::span<const std::byte> bytes, std::string file,
                                std::shared_ptr<const void> keep_alive);

  const std::string& path() const { return file_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_bytes() const { return bytes_.size(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters: kNotFound when absent, kFormat (naming key, type and value) on a type mismatch.
  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;
  // Zero-copy view for F32/F16/BF16 (row-major shape); other types are an error.
  Result<TensorView> tensor_view(const GgufTensorInfo& info) const;
  // A new F32 tensor for any dequantizable type.
  Result<Tensor> tensor_to_f32(const GgufTensorInfo& info) const;
  std::shared_ptr<const void> keep_alive() const { return keep_alive_; }

 private:
  std::string file_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> keep_alive_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Writes GGUF v3: metadata in insertion order, tensor infos, data aligned to `alignment`
// (general.alignment is written when it differs from 32).
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = kGgufDefaultAlignment) : alignment_(alignment) {}
  Status set(std::string key, GgufValue value);
  // Raw tensor data of ggml `type` for a row-major `shape` (stored reversed as ne); bytes must
  // be exactly the type's size for that shape.
  Status add_tensor(std::string name, uint32_t type, const Shape& shape,
                    std::span<const std::byte> bytes);
  Result<std::vector<std::byte>> serialize() const;
  Status write(const std::filesystem::path& path) const;

 private:
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct Entry {
    std::string name;
    uint32_t type;
    Shape shape;
    std::vector<std::byte> bytes;
  };
  std::vector<Entry> tensors_;
};

// The GGUF name of an HF tensor name and back ("blk.3.attn_q.weight" <->
// "model.layers.3.self_attn.q_proj.weight"); names without a mapping are returned unchanged.
std::string gguf_to_hf_tensor_name(std::string_view gguf_name);
std::string hf_to_gguf_tensor_name(std::string_view hf_name);

// ModelConfig from general.architecture (llama, qwen2, qwen3) and its "<arch>.*" keys. llama
// GGUF files hold q/k in the Interleaved RoPE layout (convert_hf_to_gguf permutes them); qwen2/3
// keep HalfSplit.
Result<ModelConfig> gguf_model_config(const GgufFile& file);

// Loads a GGUF model: config, tensors renamed to HF names, F32/F16/BF16 as views, quantized
// tensors dequantized to F32 (format "gguf").
Result<LoadedModel> load_gguf_model(const GgufFile& file);
Result<LoadedModel> load_gguf_model(const std::filesystem::path& path);

}  // namespace qforge

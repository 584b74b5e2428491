// Quantized HF checkpoints (ModelOpt and compressed-tensors): every scheme round-trips through a
// real safetensors file bit for bit, tensor names / dtypes / shapes / packing match the layouts
// in docs/CHECKPOINT_FORMATS.md, and configs round-trip while hostile ones fail naming the key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "qforge/core/rng.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/quant_checkpoint.h"

namespace qforge {
namespace {

using nlohmann::json;
using testing_io::ScratchDir;

constexpr QuantExportFormat kMo = QuantExportFormat::kModelOpt;
constexpr QuantExportFormat kCt = QuantExportFormat::kCompressedTensors;
const std::string kMod = "model.layers.0.mlp.down_proj";

uint32_t bits_of(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
}

bool uses_pre_quant_scale(QuantAlgo a) {
  return a == QuantAlgo::W4A16_AWQ || a == QuantAlgo::W4A8_AWQ ||
         a == QuantAlgo::W8A8_SQ_PER_CHANNEL;
}

// A quantized layer of `algo` over a fixed-seed Gaussian [rows, cols] matrix.
QuantizedLinear make_layer(QuantAlgo algo, QuantExportFormat format, int64_t rows, int64_t cols,
                           int group = 64, bool zero_point = false, uint64_t seed = 7) {
  QuantConfig cfg;
  cfg.group_size = group;
  cfg.has_zero_point = zero_point;
  auto scheme = scheme_for_algo(algo, cfg);
  EXPECT_TRUE(scheme.ok()) << scheme.error().to_string();
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (float& v : x) v = static_cast<float>(rng.normal(0.0, 0.05));
  auto q = quantize_matrix(x.data(), rows, cols, scheme->weight);
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  QuantizedLinear layer;
  layer.module = kMod;
  layer.scheme = *scheme;
  layer.weight = std::move(*q);
  switch (scheme->activation) {
    case ActivationQuant::kFp8PerTensor:
      layer.input_scale = 3.1f / 448.0f;
      break;
    case ActivationQuant::kInt8PerTensor:
      layer.input_scale = 3.1f / 127.0f;
      break;
    case ActivationQuant::kNvfp4:
      layer.input_scale = 3.1f / (6.0f * 448.0f);
      break;
    default:
      break;
  }
  if (format == kMo && uses_pre_quant_scale(algo)) {
    // Stored in the model dtype: values pre-rounded to it so the round trip is exact.
    layer.pre_quant_scale_dtype = algo == QuantAlgo::W8A8_SQ_PER_CHANNEL ? DType::F16 : DType::BF16;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = static_cast<float>(rng.uniform(0.5, 2.0));
      layer.pre_quant_scale.push_back(layer.pre_quant_scale_dtype == DType::F16
                                          ? f16_to_float(float_to_f16(v))
                                          : bf16_to_float(float_to_bf16(v)));
    }
  }
  return layer;
}

// Writes the layer to a real file and opens it.
struct Written {
  ScratchDir dir;
  std::optional<SafetensorsFile> file;
};

std::unique_ptr<Written> write_file(const QuantizedLinear& layer, QuantExportFormat format) {
  auto w = std::make_unique<Written>();
  SafetensorsWriter writer;
  Status st = write_quantized_linear(layer, format, writer);
  EXPECT_TRUE(st.ok()) << st.error().to_string();
  const auto path = w->dir / "model.safetensors";
  EXPECT_TRUE(writer.write(path).ok());
  auto f = SafetensorsFile::open(path);
  EXPECT_TRUE(f.ok()) << f.error().to_string();
  if (f.ok()) w->file.emplace(std::move(*f));
  return w;
}

// name suffix -> (safetensors dtype, shape)
std::map<std::string, std::pair<std::string, std::string>> layout(const SafetensorsFile& f) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& t : f.tensors()) {
    std::string suffix = t.name.substr(kMod.size() + 1);
    out[suffix] = {std::string(*safetensors_dtype_name(t.dtype)), t.shape.to_string()};
  }
  return out;
}

std::set<std::string> names(const SafetensorsFile& f) {
  std::set<std::string> out;
  for (const auto& [k, v] : layout(f)) out.insert(k);
  return out;
}

void expect_same(const QuantizedLinear& a, const QuantizedLinear& b, QuantExportFormat format) {
  EXPECT_EQ(a.module, b.module);
  EXPECT_EQ(a.scheme.algo, b.scheme.algo);
  EXPECT_EQ(a.weight.spec.format, b.weight.spec.format);
  EXPECT_EQ(a.weight.spec.group_size, b.weight.spec.group_size);
  EXPECT_EQ(a.weight.spec.scale_type, b.weight.spec.scale_type);
  EXPECT_EQ(a.weight.rows, b.weight.rows);
  EXPECT_EQ(a.weight.cols, b.weight.cols);
  EXPECT_EQ(a.weight.padded_cols, b.weight.padded_cols);
  EXPECT_EQ(a.weight.row_bytes, b.weight.row_bytes);
  EXPECT_TRUE(a.weight.data == b.weight.data) << "codes / block scales differ";
  ASSERT_EQ(a.weight.scales.size(), b.weight.scales.size());
  for (size_t i = 0; i < a.weight.scales.size(); ++i) {
    ASSERT_EQ(bits_of(a.weight.scales[i]), bits_of(b.weight.scales[i])) << "scale " << i;
  }
  const bool reciprocal = format == kCt && a.weight.spec.format == QuantFormat::NVFP4;
  if (reciprocal) {
    // compressed-tensors keeps 1 / weight_scale_2 and 1 / input_scale (FP32): the value comes
    // back as 1 / (1 / s), within one ulp of s.
    EXPECT_EQ(bits_of(b.weight.tensor_scale), bits_of(1.0f / (1.0f / a.weight.tensor_scale)));
    EXPECT_LE(std::abs(static_cast<int64_t>(bits_of(a.weight.tensor_scale)) -
                       static_cast<int64_t>(bits_of(b.weight.tensor_scale))),
              1);
    EXPECT_EQ(bits_of(b.input_scale), bits_of(1.0f / (1.0f / a.input_scale)));
  } else {
    EXPECT_EQ(bits_of(a.weight.tensor_scale), bits_of(b.weight.tensor_scale));
    EXPECT_EQ(bits_of(a.input_scale), bits_of(b.input_scale));
  }
  ASSERT_EQ(a.pre_quant_scale.size(), b.pre_quant_scale.size());
  for (size_t i = 0; i < a.pre_quant_scale.size(); ++i) {
    ASSERT_EQ(bits_of(a.pre_quant_scale[i]), bits_of(b.pre_quant_scale[i])) << i;
  }
  if (!a.pre_quant_scale.empty()) EXPECT_EQ(a.pre_quant_scale_dtype, b.pre_quant_scale_dtype);
}

struct AlgoCase {
  QuantAlgo algo;
  std::set<std::string> modelopt;            // tensor suffixes in the ModelOpt layout
  std::set<std::string> compressed_tensors;  // ... and in compressed-tensors
};

const std::vector<AlgoCase>& algo_cases() {
  static const std::vector<AlgoCase> cases = {
      {QuantAlgo::FP8,
       {"weight", "weight_scale", "input_scale"},
       {"weight", "weight_scale", "input_scale"}},
      {QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN,
       {"weight", "weight_scale"},
       {"weight", "weight_scale"}},
      {QuantAlgo::FP8_BLOCK_SCALES, {"weight", "weight_scale"}, {"weight", "weight_scale"}},
      {QuantAlgo::W8A16,
       {"weight", "weight_scale"},
       {"weight_packed", "weight_shape", "weight_scale"}},
      {QuantAlgo::W8A16_GPTQ,
       {"weight", "weight_scale"},
       {"weight_packed", "weight_shape", "weight_scale"}},
      {QuantAlgo::W4A16,
       {"weight", "weight_scale"},
       {"weight_packed", "weight_shape", "weight_scale"}},
      {QuantAlgo::W4A16_AWQ,
       {"weight", "weight_scale", "pre_quant_scale"},
       {"weight_packed", "weight_shape", "weight_scale"}},
      {QuantAlgo::W4A16_GPTQ,
       {"weight", "weight_scale"},
       {"weight_packed", "weight_shape", "weight_scale"}},
      {QuantAlgo::W8A8_SQ_PER_CHANNEL,
       {"weight", "weight_scale", "input_scale", "pre_quant_scale"},
       {"weight", "weight_scale", "input_scale"}},
      {QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN,
       {"weight", "weight_scale"},
       {"weight", "weight_scale"}},
      {QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN,
       {"weight", "weight_scale", "input_scale"},
       {"weight", "weight_scale", "input_scale"}},
      {QuantAlgo::W4A8_AWQ,
       {"weight", "weight_scale", "weight_scale_2", "input_scale", "pre_quant_scale"},
       {"weight_packed", "weight_shape", "weight_scale", "input_scale"}},
      {QuantAlgo::NVFP4,
       {"weight", "weight_scale", "weight_scale_2", "input_scale"},
       {"weight_packed", "weight_scale", "weight_global_scale", "input_global_scale"}},
      {QuantAlgo::W4A16_MXFP4, {"weight", "weight_scale"}, {"weight_packed", "weight_scale"}},
      {QuantAlgo::W4A8_MXFP4_FP8,
       {"weight", "weight_scale", "input_scale"},
       {"weight_packed", "weight_scale", "input_scale"}},
  };
  return cases;
}

TEST(QuantCheckpointRoundTrip, EverySchemeInEveryFormatIsBitExact) {
  for (const AlgoCase& c : algo_cases()) {
    for (QuantExportFormat format : {kMo, kCt}) {
      SCOPED_TRACE(
          fmt::format("{} as {}", quant_algo_name(c.algo), quant_export_format_name(format)));
      // 160 rows: FP8 128x128 tiles are partial in both directions (320 columns).
      const QuantizedLinear layer = make_layer(c.algo, format, 160, 320);
      auto w = write_file(layer, format);
      ASSERT_TRUE(w->file.has_value());
      EXPECT_EQ(names(*w->file), format == kMo ? c.modelopt : c.compressed_tensors);
      auto back = read_quantized_linear(safetensors_lookup(*w->file), kMod, layer.scheme, format);
      ASSERT_TRUE(back.ok()) << back.error().to_string();
      expect_same(layer, *back, format);
      // Dequantizing what was read gives the same numbers as the original.
      std::vector<float> a(160 * 320), b(160 * 320);
      ASSERT_TRUE(dequantize_matrix(layer.weight, a.data()).ok());
      ASSERT_TRUE(dequantize_matrix(back->weight, b.data()).ok());
      if (!(format == kCt && c.algo == QuantAlgo::NVFP4)) EXPECT_TRUE(a == b);
    }
  }
}

TEST(QuantCheckpointRoundTrip, AsymmetricInt4WithZeroPointsInCompressedTensors) {
  // 20 rows: the zero points' int32 packing along rows ends in a partial word.
  const QuantizedLinear layer = make_layer(QuantAlgo::W4A16_GPTQ, kCt, 20, 256, 64, true);
  ASSERT_EQ(layer.weight.spec.format, QuantFormat::UINT4_GROUP);
  auto w = write_file(layer, kCt);
  const auto l = layout(*w->file);
  EXPECT_EQ(l.at("weight_packed"), std::make_pair(std::string("I32"), std::string("[20, 32]")));
  EXPECT_EQ(l.at("weight_zero_point"), std::make_pair(std::string("I32"), std::string("[3, 4]")));
  EXPECT_EQ(l.at("weight_scale"), std::make_pair(std::string("F16"), std::string("[20, 4]")));
  auto back = read_quantized_linear(safetensors_lookup(*w->file), kMod, layer.scheme, kCt);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  expect_same(layer, *back, kCt);
  // Zero point of row r, group b: nibble r % 8 of word (r / 8, b).
  auto zp = w->file->view(kMod + ".weight_zero_point");
  ASSERT_TRUE(zp.ok());
  const auto* words = static_cast<const uint32_t*>(zp->data());
  for (int64_t r = 0; r < 20; ++r) {
    for (int64_t b = 0; b < 4; ++b) {
      const uint8_t zero = layer.weight.row_data(r)[b * uint4_block_bytes(64) + 2];
      EXPECT_EQ((words[(r / 8) * 4 + b] >> (4 * (r % 8))) & 0xF, zero) << r << "," << b;
    }
  }
  ASSERT_FALSE(read_quantized_linear(safetensors_lookup(*w->file), kMod, layer.scheme, kMo).ok());
}

TEST(QuantCheckpointRoundTrip, RaggedInt4GroupsNeedCompressedTensors) {
  // in_features 172 is not a multiple of 128: ModelOpt's [out, in/g] scales cannot hold the
  // padded last group; compressed-tensors' weight_shape can.
  for (bool zp : {false, true}) {
    const QuantizedLinear layer = make_layer(QuantAlgo::W4A16, kCt, 16, 172, 128, zp);
    ASSERT_EQ(layer.weight.padded_cols, 256);
    SafetensorsWriter mo;
    Status st = write_quantized_linear(layer, kMo, mo);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kUnsupported);
    if (!zp) {
      EXPECT_NE(st.error().message().find("group_size 128 does not divide in_features 172"),
                std::string::npos)
          << st.error().message();
      EXPECT_NE(st.error().message().find("compressed-tensors"), std::string::npos);
    }
    auto w = write_file(layer, kCt);
    EXPECT_EQ(layout(*w->file).at("weight_packed").second, "[16, 22]");
    EXPECT_EQ(layout(*w->file).at("weight_scale").second, "[16, 2]");
    auto back = read_quantized_linear(safetensors_lookup(*w->file), kMod, layer.scheme, kCt);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    expect_same(layer, *back, kCt);  // padding codes reconstructed (0, or the zero point)
  }
  const QuantizedLinear fp4 = make_layer(QuantAlgo::NVFP4, kCt, 16, 40);
  for (QuantExportFormat f : {kMo, kCt}) {
    SafetensorsWriter w;
    Status st = write_quantized_linear(fp4, f, w);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("group_size 16 does not divide in_features 40"),
              std::string::npos)
        << st.error().message();
  }
}

TEST(QuantCheckpointRoundTrip, UnquantizedLayersAreAPlainWeight) {
  for (QuantExportFormat format : {kMo, kCt}) {
    QuantizedLinear layer;
    layer.module = kMod;
    layer.scheme.weight = default_quant_spec(QuantFormat::BF16);
    std::vector<float> x(12 * 8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i) - 0.3f;
    layer.weight = *quantize_matrix(x.data(), 12, 8, layer.scheme.weight);
    auto w = write_file(layer, format);
    EXPECT_EQ(layout(*w->file).at("weight"),
              std::make_pair(std::string("BF16"), std::string("[12, 8]")));
    auto back = read_quantized_linear(safetensors_lookup(*w->file), kMod, layer.scheme, format);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    expect_same(layer, *back, format);
  }
  EXPECT_EQ(*parse_quant_export_format("compressed-tensors"), kCt);
  EXPECT_EQ(*parse_quant_export_format(quant_export_format_name(kMo)), kMo);
  EXPECT_FALSE(parse_quant_export_format("gguf").ok());
}

TEST(QuantCheckpointLayout, ModelOptTensorsMatchTheExporter) {
  {
    // NVFP4 (quant_utils.py / vLLM ModelOptNvFp4LinearMethod).
    auto w = write_file(make_layer(QuantAlgo::NVFP4, kMo, 32, 64), kMo);
    const auto l = layout(*w->file);
    EXPECT_EQ(l.at("weight"), std::make_pair(std::string("U8"), std::string("[32, 32]")));
    EXPECT_EQ(l.at("weight_scale"), std::make_pair(std::string("F8_E4M3"), std::string("[32, 4]")));
    EXPECT_EQ(l.at("weight_scale_2"), std::make_pair(std::string("F32"), std::string("[]")));
    EXPECT_EQ(l.at("input_scale"), std::make_pair(std::string("F32"), std::string("[]")));
  }
  {
    // FP8_PB_WO: weight_scale [out_blocks, 1, in_blocks, 1].
    auto w = write_file(make_layer(QuantAlgo::FP8_BLOCK_SCALES, kMo, 200, 300), kMo);
    const auto l = layout(*w->file);
    EXPECT_EQ(l.at("weight"), std::make_pair(std::string("F8_E4M3"), std::string("[200, 300]")));
    EXPECT_EQ(l.at("weight_scale"),
              std::make_pair(std::string("F32"), std::string("[2, 1, 3, 1]")));
  }
  {
    auto w = write_file(make_layer(QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN, kMo, 24, 32), kMo);
    EXPECT_EQ(layout(*w->file).at("weight_scale"),
              std::make_pair(std::string("F32"), std::string("[24]")));
  }
  {
    // INT4: pack_int4_in_uint8 packs two OUTPUT rows per byte; weight_scale F32 [out, in/g].
    const QuantizedLinear layer = make_layer(QuantAlgo::W4A8_AWQ, kMo, 6, 128, 64);
    auto w = write_file(layer, kMo);
    const auto l = layout(*w->file);
    EXPECT_EQ(l.at("weight"), std::make_pair(std::string("U8"), std::string("[3, 128]")));
    EXPECT_EQ(l.at("weight_scale"), std::make_pair(std::string("F32"), std::string("[6, 2]")));
    EXPECT_EQ(l.at("weight_scale_2"), std::make_pair(std::string("F32"), std::string("[]")));
    EXPECT_EQ(l.at("pre_quant_scale"), std::make_pair(std::string("BF16"), std::string("[128]")));
    auto packed = w->file->view(kMod + ".weight");
    ASSERT_TRUE(packed.ok());
    const auto* p = static_cast<const uint8_t*>(packed->data());
    auto code = [&](int64_t r, int64_t c) {
      const uint8_t* blk = layer.weight.row_data(r) + (c / 64) * int4_block_bytes(64);
      return (blk[2 + (c % 64) / 2] >> (4 * (c % 2))) & 0xF;
    };
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t c = 0; c < 128; ++c) {
        ASSERT_EQ(p[i * 128 + c], code(2 * i, c) | code(2 * i + 1, c) << 4) << i << "," << c;
      }
    }
    auto s2 = w->file->view(kMod + ".weight_scale_2");
    float amax = 0.0f;
    std::vector<float> deq(6 * 128);
    ASSERT_TRUE(dequantize_matrix(layer.weight, deq.data()).ok());
    for (float v : deq) amax = std::max(amax, std::abs(v));
    EXPECT_EQ(*static_cast<const float*>(s2->data()), amax / 448.0f);
  }
}

TEST(QuantCheckpointLayout, CompressedTensorsTensorsMatchTheCompressors) {
  {
    // pack_to_int32: element c of a row at bits 4 * (c % 8) of word c / 8, stored as code + 8.
    const QuantizedLinear layer = make_layer(QuantAlgo::W4A16, kCt, 4, 128, 32);
    auto w = write_file(layer, kCt);
    const auto l = layout(*w->file);
    EXPECT_EQ(l.at("weight_packed"), std::make_pair(std::string("I32"), std::string("[4, 16]")));
    EXPECT_EQ(l.at("weight_shape"), std::make_pair(std::string("I64"), std::string("[2]")));
    EXPECT_EQ(l.at("weight_scale"), std::make_pair(std::string("F16"), std::string("[4, 4]")));
    auto packed = w->file->view(kMod + ".weight_packed");
    auto shape = w->file->view(kMod + ".weight_shape");
    const auto* words = static_cast<const uint32_t*>(packed->data());
    const auto* dims = static_cast<const int64_t*>(shape->data());
    EXPECT_EQ(dims[0], 4);
    EXPECT_EQ(dims[1], 128);
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t c = 0; c < 128; ++c) {
        const uint8_t* blk = layer.weight.row_data(r) + (c / 32) * int4_block_bytes(32);
        const int nib = (blk[2 + (c % 32) / 2] >> (4 * (c % 2))) & 0xF;
        const int signed_code = nib >= 8 ? nib - 16 : nib;
        ASSERT_EQ(static_cast<int>((words[r * 16 + c / 8] >> (4 * (c % 8))) & 0xF),
                  signed_code + 8);
      }
    }
  }
  {
    // NVFP4: weight_global_scale is the reciprocal of ModelOpt's weight_scale_2.
    const QuantizedLinear layer = make_layer(QuantAlgo::NVFP4, kCt, 16, 64);
    auto w = write_file(layer, kCt);
    const auto l = layout(*w->file);
    EXPECT_EQ(l.at("weight_packed"), std::make_pair(std::string("U8"), std::string("[16, 32]")));
    EXPECT_EQ(l.at("weight_scale"), std::make_pair(std::string("F8_E4M3"), std::string("[16, 4]")));
    EXPECT_EQ(l.at("weight_global_scale"), std::make_pair(std::string("F32"), std::string("[1]")));
    EXPECT_EQ(l.at("input_global_scale"), std::make_pair(std::string("F32"), std::string("[1]")));
    auto g = w->file->view(kMod + ".weight_global_scale");
    EXPECT_EQ(*static_cast<const float*>(g->data()), 1.0f / layer.weight.tensor_scale);
    auto ig = w->file->view(kMod + ".input_global_scale");
    EXPECT_EQ(*static_cast<const float*>(ig->data()), 1.0f / layer.input_scale);
  }
  {
    auto w = write_file(make_layer(QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN, kCt, 24, 32), kCt);
    EXPECT_EQ(layout(*w->file).at("weight_scale"),
              std::make_pair(std::string("F32"), std::string("[24, 1]")));
    auto b = write_file(make_layer(QuantAlgo::FP8_BLOCK_SCALES, kCt, 200, 300), kCt);
    EXPECT_EQ(layout(*b->file).at("weight_scale"),
              std::make_pair(std::string("F32"), std::string("[2, 3]")));
    auto m = write_file(make_layer(QuantAlgo::W4A16_MXFP4, kCt, 8, 64), kCt);
    EXPECT_EQ(layout(*m->file).at("weight_scale"),
              std::make_pair(std::string("U8"), std::string("[8, 2]")));
  }
}

TEST(QuantCheckpointLayout, UnsupportedCombinationsNameTheAlgorithmAndFormat) {
  {
    QuantizedLinear awq = make_layer(QuantAlgo::W4A16_AWQ, kMo, 8, 64);
    SafetensorsWriter w;
    Status st = write_quantized_linear(awq, kCt, w);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kUnsupported);
    EXPECT_NE(st.error().message().find("W4A16_AWQ"), std::string::npos);
    EXPECT_NE(st.error().message().find("compressed-tensors"), std::string::npos);
  }
  {
    QuantizedLinear zp = make_layer(QuantAlgo::W4A16, kMo, 8, 64, 64, true);
    SafetensorsWriter w;
    Status st = write_quantized_linear(zp, kMo, w);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kUnsupported);
    EXPECT_NE(st.error().message().find("ModelOpt"), std::string::npos);
  }
  {
    QuantizedLinear odd = make_layer(QuantAlgo::W4A16, kMo, 7, 64);
    SafetensorsWriter w;
    Status st = write_quantized_linear(odd, kMo, w);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("out_features 7 is odd"), std::string::npos);
  }
  {
    QuantizedLinear fp8 = make_layer(QuantAlgo::FP8, kMo, 8, 64);
    fp8.input_scale = 0.0f;  // static activations without a calibrated scale
    SafetensorsWriter w;
    Status st = write_quantized_linear(fp8, kMo, w);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().to_string().find("input_scale"), std::string::npos);
  }
  {
    QuantizedLinear mismatch = make_layer(QuantAlgo::FP8, kMo, 8, 64);
    mismatch.scheme.weight = default_quant_spec(QuantFormat::FP8_PER_CHANNEL);
    SafetensorsWriter w;
    Status st = write_quantized_linear(mismatch, kMo, w);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("the weight is fp8"), std::string::npos)
        << st.error().message();
  }
  {
    QuantizedLinear awq = make_layer(QuantAlgo::W4A16_AWQ, kMo, 8, 64);
    awq.pre_quant_scale[3] = 1.0f + 0x1p-20f;  // not a bf16 value
    SafetensorsWriter w;
    Status st = write_quantized_linear(awq, kMo, w);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("pre_quant_scale[3]"), std::string::npos);
  }
}

// A lookup over a map of hand-made tensors.
struct FakeTensors {
  std::map<std::string, std::pair<Shape, std::vector<uint8_t>>> bytes;
  std::map<std::string, DType> dtypes;
  void put(const std::string& name, DType d, Shape s, std::vector<uint8_t> b) {
    dtypes[name] = d;
    bytes[name] = {s, std::move(b)};
  }
  TensorLookup lookup() const {
    return [this](const std::string& n) -> std::optional<TensorView> {
      auto it = bytes.find(n);
      if (it == bytes.end()) return std::nullopt;
      auto v = TensorView::make(static_cast<const void*>(it->second.second.data()), dtypes.at(n),
                                it->second.first);
      if (!v.ok()) return std::nullopt;
      return *v;
    };
  }
};

template <typename T>
std::vector<uint8_t> raw(std::vector<T> v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

TEST(QuantCheckpointHostile, BadTensorsAreErrorsNamingThem) {
  QuantConfig cfg;
  const LinearQuantScheme fp8 = *scheme_for_algo(QuantAlgo::FP8, cfg);
  FakeTensors t;
  auto read = [&](const LinearQuantScheme& s, QuantExportFormat f) {
    return read_quantized_linear(t.lookup(), kMod, s, f);
  };
  {
    auto r = read(fp8, kMo);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
    EXPECT_NE(r.error().message().find(kMod + ".weight"), std::string::npos);
  }
  t.put(kMod + ".weight", DType::I8, Shape{2, 2}, {1, 2, 3, 4});
  {
    auto r = read(fp8, kMo);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("has dtype I8, expected F8_E4M3"), std::string::npos)
        << r.error().message();
  }
  t.put(kMod + ".weight", DType::F8_E4M3FN, Shape{2, 2}, {1, 0x7F, 3, 4});
  {
    auto r = read(fp8, kMo);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("NaN"), std::string::npos) << r.error().message();
  }
  t.put(kMod + ".weight", DType::F8_E4M3FN, Shape{2, 2}, {1, 2, 3, 4});
  t.put(kMod + ".weight_scale", DType::F32, Shape{2}, raw<float>({1.0f, 2.0f}));
  {
    auto r = read(fp8, kMo);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("weight_scale' has shape [2]"), std::string::npos)
        << r.error().message();
  }
  t.put(kMod + ".weight_scale", DType::F32, Shape{}, raw<float>({-1.0f}));
  {
    auto r = read(fp8, kMo);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("not a finite non-negative scale"), std::string::npos)
        << r.error().message();
  }
  t.put(kMod + ".weight_scale", DType::F32, Shape{}, raw<float>({0.5f}));
  t.put(kMod + ".input_scale", DType::F32, Shape{}, raw<float>({0.25f}));
  {
    auto r = read(fp8, kMo);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->weight.scales[0], 0.5f);
    EXPECT_EQ(r->input_scale, 0.25f);
  }
  // compressed-tensors: weight_shape must agree with weight_packed.
  QuantConfig c4;
  c4.group_size = 32;
  const LinearQuantScheme w4 = *scheme_for_algo(QuantAlgo::W4A16, c4);
  t.put(kMod + ".weight_packed", DType::I32, Shape{2, 4}, std::vector<uint8_t>(32, 0x88));
  t.put(kMod + ".weight_shape", DType::I64, Shape{2}, raw<int64_t>({2, 4096}));
  t.put(kMod + ".weight_scale", DType::F16, Shape{2, 1}, std::vector<uint8_t>(4, 0));
  {
    auto r = read(w4, kCt);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("weight_shape' = 2, 4096 does not match"), std::string::npos)
        << r.error().message();
  }
  t.put(kMod + ".weight_shape", DType::I64, Shape{2}, raw<int64_t>({2, 32}));
  {
    auto r = read(w4, kCt);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->weight.cols, 32);
  }
  t.put(kMod + ".weight_g_idx", DType::I32, Shape{32}, std::vector<uint8_t>(128, 0));
  {
    auto r = read(w4, kCt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  }
}

TEST(QuantCheckpointKvCache, ScalesRoundTripUnderEachFormatsNames) {
  KvCacheScales s;
  s.algo = QuantAlgo::FP8;
  s.k_scale = {0.5f, 0.25f, 0.125f};
  s.v_scale = {1.5f, 1.25f, 1.125f};
  for (QuantExportFormat f : {kMo, kCt}) {
    SafetensorsWriter w;
    ASSERT_TRUE(write_kv_cache_scales(s, f, w).ok());
    ScratchDir dir;
    ASSERT_TRUE(w.write(dir / "kv.safetensors").ok());
    auto file = SafetensorsFile::open(dir / "kv.safetensors");
    ASSERT_TRUE(file.ok());
    const std::string k1 =
        f == kMo ? "model.layers.1.self_attn.k_proj.k_scale" : "model.layers.1.self_attn.k_scale";
    const auto* info = file->find(k1);
    ASSERT_NE(info, nullptr) << k1;
    EXPECT_EQ(info->dtype, DType::F32);
    EXPECT_EQ(info->shape, f == kMo ? Shape{} : Shape{1});
    EXPECT_NE(file->find(f == kMo ? "model.layers.2.self_attn.v_proj.v_scale"
                                  : "model.layers.2.self_attn.v_scale"),
              nullptr);
    // Either naming is read, as vLLM's maybe_remap_kv_scale_name does.
    for (QuantExportFormat rf : {kMo, kCt}) {
      auto back = read_kv_cache_scales(safetensors_lookup(*file), rf, QuantAlgo::FP8, 3, 8);
      ASSERT_TRUE(back.ok()) << back.error().to_string();
      EXPECT_EQ(back->k_scale, s.k_scale);
      EXPECT_EQ(back->v_scale, s.v_scale);
      EXPECT_FALSE(back->per_head);
    }
    auto missing = read_kv_cache_scales(safetensors_lookup(*file), f, QuantAlgo::FP8, 4, 8);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message().find("model.layers.3"), std::string::npos);
  }
  KvCacheScales h;
  h.algo = QuantAlgo::INT8;
  h.per_head = true;
  h.n_kv_heads = 2;
  h.k_scale = {0.1f, 0.2f, 0.3f, 0.4f};
  h.v_scale = {0.5f, 0.6f, 0.7f, 0.8f};
  SafetensorsWriter mo;
  Status st = write_kv_cache_scales(h, kMo, mo);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kUnsupported);
  SafetensorsWriter ct;
  ASSERT_TRUE(write_kv_cache_scales(h, kCt, ct).ok());
  ScratchDir dir;
  ASSERT_TRUE(ct.write(dir / "kv.safetensors").ok());
  auto file = SafetensorsFile::open(dir / "kv.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->find("model.layers.1.self_attn.v_scale")->shape, (Shape{2, 1, 1}));
  auto back = read_kv_cache_scales(safetensors_lookup(*file), kCt, QuantAlgo::INT8, 2, 2);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_TRUE(back->per_head);
  EXPECT_EQ(back->k_scale, h.k_scale);
  EXPECT_EQ(back->v_scale, h.v_scale);
}

// ---- configs ----

QuantCheckpointInfo info_for(QuantAlgo algo, QuantExportFormat f) {
  QuantCheckpointInfo info;
  info.format = f;
  info.quant_algo = algo;
  info.kv_cache_quant_algo = QuantAlgo::FP8;
  const bool int4 = algo == QuantAlgo::W4A16 || algo == QuantAlgo::W4A16_AWQ ||
                    algo == QuantAlgo::W4A16_GPTQ || algo == QuantAlgo::W4A8_AWQ;
  info.group_size = int4 ? 64 : 0;
  info.pre_quant_scale = f == kMo && int4 && uses_pre_quant_scale(algo);
  info.exclude_modules = {"lm_head", "model.layers.0.mlp*"};
  return info;
}

// config.json text with the quantization_config, re-parsed as a loader would.
json config_with(const json& qc) {
  json cfg = {{"model_type", "llama"}, {"hidden_size", 64}};
  if (!qc.is_null()) cfg["quantization_config"] = qc;
  return json::parse(cfg.dump());
}

void expect_info_eq(const QuantCheckpointInfo& a, const QuantCheckpointInfo& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(quant_algo_name(a.quant_algo), quant_algo_name(b.quant_algo));
  EXPECT_EQ(a.kv_cache_quant_algo, b.kv_cache_quant_algo);
  EXPECT_EQ(a.kv_cache_per_head, b.kv_cache_per_head);
  EXPECT_EQ(a.group_size, b.group_size);
  EXPECT_EQ(a.has_zero_point, b.has_zero_point);
  EXPECT_EQ(a.pre_quant_scale, b.pre_quant_scale);
  EXPECT_EQ(a.exclude_modules, b.exclude_modules);
  EXPECT_EQ(a.layer_algos, b.layer_algos);
}

TEST(QuantCheckpointConfig, EveryAlgorithmRoundTripsThroughBothFormats) {
  for (const AlgoCase& c : algo_cases()) {
    for (QuantExportFormat f : {kMo, kCt}) {
      SCOPED_TRACE(fmt::format("{} as {}", quant_algo_name(c.algo), quant_export_format_name(f)));
      const QuantCheckpointInfo info = info_for(c.algo, f);
      auto qc = make_quantization_config(info);
      ASSERT_TRUE(qc.ok()) << qc.error().to_string();
      auto parsed = parse_quant_checkpoint_info(config_with(*qc), nullptr);
      ASSERT_TRUE(parsed.ok()) << parsed.error().to_string() << "\n" << qc->dump(2);
      ASSERT_TRUE(parsed->has_value());
      expect_info_eq(info, **parsed);
      if (f == kMo) {
        auto hf = make_hf_quant_config(info);
        ASSERT_TRUE(hf.ok()) << hf.error().to_string();
        const json hf_text = json::parse(hf->dump());
        auto both = parse_quant_checkpoint_info(config_with(*qc), &hf_text);
        ASSERT_TRUE(both.ok()) << both.error().to_string();
        expect_info_eq(info, **both);
        EXPECT_EQ((*both)->producer_name, "qforge");
        auto hf_only = parse_quant_checkpoint_info(config_with(nullptr), &hf_text);
        ASSERT_TRUE(hf_only.ok()) << hf_only.error().to_string();
        expect_info_eq(info, **hf_only);
      } else {
        EXPECT_FALSE(make_hf_quant_config(info).ok());
      }
    }
  }
}

TEST(QuantCheckpointConfig, ModelOptKeysAreTheExportersKeys) {
  QuantCheckpointInfo info = info_for(QuantAlgo::NVFP4, kMo);
  const json hf = *make_hf_quant_config(info);
  EXPECT_EQ(hf["producer"]["name"], "qforge");
  const json& q = hf["quantization"];
  EXPECT_EQ(q["quant_algo"], "NVFP4");
  EXPECT_EQ(q["kv_cache_quant_algo"], "FP8");
  EXPECT_EQ(q["group_size"], 16);  // vLLM requires group_size, kv_cache_quant_algo, exclude_modules
  EXPECT_EQ(q["exclude_modules"], json::array({"lm_head", "model.layers.0.mlp*"}));
  const json qc = *make_quantization_config(info);
  EXPECT_EQ(qc["quant_method"], "modelopt");
  EXPECT_EQ(qc["quant_algo"], "NVFP4");
  EXPECT_EQ(qc["ignore"], json::array({"lm_head", "model.layers.0.mlp*"}));
  EXPECT_EQ(qc["kv_cache_scheme"], (json{{"dynamic", false}, {"num_bits", 8}, {"type", "float"}}));
  EXPECT_EQ(qc["config_groups"]["group_0"]["weights"]["group_size"], 16);

  const json block = *make_hf_quant_config(info_for(QuantAlgo::FP8_BLOCK_SCALES, kMo));
  EXPECT_EQ(block["quantization"]["quant_algo"], "fp8_pb_wo");
  const json awq = *make_hf_quant_config(info_for(QuantAlgo::W4A16_AWQ, kMo));
  EXPECT_EQ(awq["quantization"]["group_size"], 64);
  EXPECT_EQ(awq["quantization"]["has_zero_point"], false);
  EXPECT_EQ(awq["quantization"]["pre_quant_scale"], true);

  // TensorRT-LLM / vLLM spellings written by ModelOpt itself parse too.
  const json theirs = json::parse(R"({"producer": {"name": "modelopt", "version": "0.29.0"},
      "quantization": {"quant_algo": "FP8_PB_WO", "kv_cache_quant_algo": null,
                       "exclude_modules": ["lm_head"]}})");
  auto parsed = parse_quant_checkpoint_info(config_with(nullptr), &theirs);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ((*parsed)->quant_algo, QuantAlgo::FP8_BLOCK_SCALES);
  EXPECT_EQ((*parsed)->producer_name, "modelopt");
}

TEST(QuantCheckpointConfig, CompressedTensorsGroupsAreTheLibrarysSchemes) {
  QuantCheckpointInfo info = info_for(QuantAlgo::W4A16_GPTQ, kCt);
  info.has_zero_point = true;
  info.kv_cache_per_head = true;
  const json qc = *make_quantization_config(info);
  EXPECT_EQ(qc["quant_method"], "compressed-tensors");
  EXPECT_EQ(qc["format"], "pack-quantized");
  EXPECT_EQ(qc["quantization_status"], "compressed");
  const json& g = qc["config_groups"]["group_0"];
  EXPECT_EQ(g["targets"], json::array({"Linear"}));
  EXPECT_EQ(g["format"], "pack-quantized");
  EXPECT_EQ(g["weights"]["num_bits"], 4);
  EXPECT_EQ(g["weights"]["type"], "int");
  EXPECT_EQ(g["weights"]["strategy"], "group");
  EXPECT_EQ(g["weights"]["group_size"], 64);
  EXPECT_EQ(g["weights"]["symmetric"], false);
  EXPECT_TRUE(g["input_activations"].is_null());
  EXPECT_EQ(qc["kv_cache_scheme"]["strategy"], "attn_head");
  auto parsed = parse_quant_checkpoint_info(config_with(qc), nullptr);
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  expect_info_eq(info, **parsed);

  const json nv = *make_quantization_config(info_for(QuantAlgo::NVFP4, kCt));
  EXPECT_EQ(nv["format"], "nvfp4-pack-quantized");
  EXPECT_EQ(nv["config_groups"]["group_0"]["weights"]["strategy"], "tensor_group");
  EXPECT_EQ(nv["config_groups"]["group_0"]["input_activations"]["dynamic"], "local");

  // A llm-compressor W8A8 config without qforge's hints maps to the SmoothQuant algorithm.
  const json theirs =
      json::parse(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
      "config_groups": {"group_0": {"targets": ["Linear"],
        "weights": {"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": true, "dynamic": false},
        "input_activations": {"num_bits": 8, "type": "int", "strategy": "token", "symmetric": true, "dynamic": true}}},
      "ignore": ["lm_head"], "kv_cache_scheme": null, "quantization_status": "compressed"})");
  auto w8a8 = parse_quant_checkpoint_info(config_with(theirs), nullptr);
  ASSERT_TRUE(w8a8.ok()) << w8a8.error().to_string();
  EXPECT_EQ((*w8a8)->quant_algo, QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN);
  EXPECT_EQ((*w8a8)->kv_cache_quant_algo, QuantAlgo::NO_QUANT);
}

TEST(QuantCheckpointConfig, MixedPrecisionRoundTrips) {
  for (QuantExportFormat f : {kMo, kCt}) {
    QuantCheckpointInfo info;
    info.format = f;
    info.quant_algo = QuantAlgo::MIXED_PRECISION;
    info.kv_cache_quant_algo = QuantAlgo::NO_QUANT;
    info.group_size = 128;
    info.exclude_modules = {"lm_head"};
    info.layer_algos = {{"model.layers.0.mlp.down_proj", QuantAlgo::W4A16_AWQ},
                        {"model.layers.0.self_attn.q_proj", QuantAlgo::FP8},
                        {"model.layers.1.mlp.down_proj", QuantAlgo::NVFP4},
                        {"model.layers.1.self_attn.q_proj", QuantAlgo::FP8}};
    auto qc = make_quantization_config(info);
    ASSERT_TRUE(qc.ok()) << qc.error().to_string();
    auto parsed = parse_quant_checkpoint_info(config_with(*qc), nullptr);
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    expect_info_eq(info, **parsed);
    if (f == kMo) {
      const json hf = *make_hf_quant_config(info);
      EXPECT_EQ(hf["quantization"]["quant_algo"], "MIXED_PRECISION");
      EXPECT_FALSE(hf["quantization"].contains("group_size"));  // per layer only
      EXPECT_EQ(
          hf["quantization"]["quantized_layers"]["model.layers.0.mlp.down_proj"]["group_size"],
          128);
      EXPECT_EQ(
          hf["quantization"]["quantized_layers"]["model.layers.1.mlp.down_proj"]["group_size"], 16);
      auto from_hf = parse_quant_checkpoint_info(config_with(nullptr), &hf);
      ASSERT_TRUE(from_hf.ok()) << from_hf.error().to_string();
      expect_info_eq(info, **from_hf);
    } else {
      EXPECT_EQ((*qc)["format"], "mixed-precision");
      EXPECT_EQ((*qc)["config_groups"].size(), 3u);
    }
  }
}

TEST(QuantCheckpointConfig, UnquantizedConfigsGiveNullopt) {
  auto none = parse_quant_checkpoint_info(config_with(nullptr), nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto null_qc =
      parse_quant_checkpoint_info(json::parse(R"({"quantization_config": null})"), nullptr);
  ASSERT_TRUE(null_qc.ok());
  EXPECT_FALSE(null_qc->has_value());
}

// Each case: (config.json text, hf_quant_config.json text or "", expected code, substrings).
struct HostileCase {
  const char* config;
  const char* hf;
  ErrorCode code;
  std::vector<std::string> needles;
};

TEST(QuantCheckpointConfig, HostileConfigsNameFileAndKey) {
  const std::vector<HostileCase> cases = {
      {"{}",
       R"({"quantization": {"quant_algo": "W3A5"}})",
       ErrorCode::kFormat,
       {"hf_quant_config.json", "quantization.quant_algo", "W3A5"}},
      {"{}",
       R"({"quantization": {"quant_algo": 42}})",
       ErrorCode::kFormat,
       {"hf_quant_config.json", "quantization.quant_algo must be a string", "number"}},
      {"{}",
       R"({"quantization": {"quant_algo": "W4A16_AWQ", "group_size": -128}})",
       ErrorCode::kFormat,
       {"quantization.group_size = -128"}},
      {"{}",
       R"({"quantization": {"quant_algo": "W4A16_AWQ", "group_size": "128"}})",
       ErrorCode::kFormat,
       {"quantization.group_size", "not an integer"}},
      {"{}",
       R"({"quantization": {"quant_algo": "W4A16_AWQ", "group_size": 96}})",
       ErrorCode::kUnsupported,
       {"quantization.group_size = 96"}},
      {"{}",
       R"({"quantization": {"quant_algo": "FP8", "exclude_modules": "lm_head"}})",
       ErrorCode::kFormat,
       {"quantization.exclude_modules must be an array of strings"}},
      {"{}",
       R"({"quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head", 3]}})",
       ErrorCode::kFormat,
       {"quantization.exclude_modules[1] must be a string"}},
      {"{}",
       R"({"quantization": [1, 2]})",
       ErrorCode::kFormat,
       {"hf_quant_config.json", "quantization must be an object"}},
      {"{}",
       R"({"producer": {"name": "modelopt"}})",
       ErrorCode::kFormat,
       {"\"quantization\" object is missing"}},
      {"{}",
       R"({"quantization": {"quant_algo": "MIXED_PRECISION"}})",
       ErrorCode::kFormat,
       {"quantized_layers is missing or empty"}},
      {"{}",
       R"({"quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": {"a.b": {"quant_algo": "W9"}}}})",
       ErrorCode::kFormat,
       {"quantization.quantized_layers.a.b.quant_algo", "W9"}},
      {"{}",
       R"({"quantization": {"quant_algo": "W4A16_NVFP4"}})",
       ErrorCode::kUnsupported,
       {"W4A16_NVFP4"}},
      {"{}",
       R"({"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "NVFP4"}})",
       ErrorCode::kUnsupported,
       {"quantization.kv_cache_quant_algo"}},
      {R"({"quantization_config": {"quant_method": "gptq", "bits": 4}})",
       "",
       ErrorCode::kUnsupported,
       {"config.json", "quantization_config.quant_method", "gptq"}},
      {R"({"quantization_config": {"bits": 4}})",
       "",
       ErrorCode::kFormat,
       {"config.json", "quantization_config.quant_method is missing"}},
      {R"({"quantization_config": "fp8"})",
       "",
       ErrorCode::kFormat,
       {"config.json", "quantization_config must be an object"}},
      {"[1]", "", ErrorCode::kFormat, {"config.json", "must be an object"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": "four", "type": "int"}}}}})",
       "",
       ErrorCode::kFormat,
       {"quantization_config.config_groups.group_0.weights.num_bits"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "diagonal", "group_size": 128}}}}})",
       "",
       ErrorCode::kFormat,
       {"weights.strategy = 'diagonal'"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": -5}}}}})",
       "",
       ErrorCode::kFormat,
       {"weights.group_size = -5"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 3, "type": "int", "strategy": "group", "group_size": 128}}}}})",
       "",
       ErrorCode::kUnsupported,
       {"config_groups.group_0", "int3 group(128)"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "naive-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}}}}})",
       "",
       ErrorCode::kUnsupported,
       {"format 'naive-quantized'"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["re:.*proj"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}}}}})",
       "",
       ErrorCode::kUnsupported,
       {"regex"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {}}})",
       "",
       ErrorCode::kFormat,
       {"config_groups is missing or empty"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "tensor"}, "input_activations": {"num_bits": 8, "type": "float", "strategy": "tensor"}}}, "kv_cache_scheme": {"num_bits": 8, "type": "float", "dynamic": true}}})",
       "",
       ErrorCode::kUnsupported,
       {"kv_cache_scheme"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "actorder": "group"}}}}})",
       "",
       ErrorCode::kUnsupported,
       {"actorder"}},
      {R"({"quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"}})",
       R"({"quantization": {"quant_algo": "FP8"}})",
       ErrorCode::kFormat,
       {"hf_quant_config.json says quant_algo FP8", "config.json"}},
      {R"({"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {}}})",
       R"({"quantization": {"quant_algo": "FP8"}})",
       ErrorCode::kFormat,
       {"one quantization layout"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.config) + " | " + c.hf);
    const json cfg = json::parse(c.config);
    const json hf = *c.hf ? json::parse(c.hf) : json();
    auto r = parse_quant_checkpoint_info(cfg, *c.hf ? &hf : nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(error_code_name(r.error().code()), std::string(error_code_name(c.code)))
        << r.error().to_string();
    for (const auto& n : c.needles) {
      EXPECT_NE(r.error().to_string().find(n), std::string::npos)
          << "missing '" << n << "' in: " << r.error().to_string();
    }
  }
}

TEST(QuantCheckpointConfig, InvalidInfosAreRejectedBeforeWriting) {
  QuantCheckpointInfo mixed;
  mixed.quant_algo = QuantAlgo::MIXED_PRECISION;
  EXPECT_FALSE(make_quantization_config(mixed).ok());
  QuantCheckpointInfo zp = info_for(QuantAlgo::W4A16, kMo);
  zp.has_zero_point = true;
  auto r = make_hf_quant_config(zp);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  QuantCheckpointInfo bad_group = info_for(QuantAlgo::W4A16, kCt);
  bad_group.group_size = -1;
  EXPECT_FALSE(make_quantization_config(bad_group).ok());
  QuantCheckpointInfo kv_int4 = info_for(QuantAlgo::FP8, kCt);
  kv_int4.kv_cache_quant_algo = QuantAlgo::W4A16;
  EXPECT_FALSE(make_quantization_config(kv_int4).ok());
}

}  // namespace
}  // namespace qforge

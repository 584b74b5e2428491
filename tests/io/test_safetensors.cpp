// safetensors reader/writer: the shared llama-mix-16m checkpoint (three BF16 shards + index),
// bit-exact round trips, the reference library's byte layout (its own test vectors), and atomic
// writes that fail cleanly.
#include <signal.h>
#include <sys/resource.h>

#include "io/io_test_util.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

using testing_io::ScratchDir;

std::span<const std::byte> as_bytes(const std::vector<uint8_t>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size()};
}

template <typename T>
std::span<const std::byte> as_bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(T)};
}

TEST(Safetensors, LlamaMix16mLoadsThroughTheShardIndex) {
  QF_REQUIRE_SHARED();
  auto model = load_model((testing_io::models_dir() / "llama-mix-16m").string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_EQ(model->format, "hf-safetensors");
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.intermediate_size, 1024);
  EXPECT_EQ(c.num_hidden_layers, 6);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 8000);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_layout, RopeLayout::HalfSplit);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);  // from rope_parameters (transformers v5)
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.torch_dtype, DType::BF16);  // "dtype": "bfloat16"
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});

  int64_t params = 0;
  for (const auto& [name, view] : model->weights.tensors()) {
    params += view.numel();
    EXPECT_EQ(view.dtype(), DType::BF16) << name;
    EXPECT_FALSE(view.writable()) << name;  // zero-copy mmap views
  }
  EXPECT_EQ(params, 15586176);
  EXPECT_EQ(model->weights.tensors().size(), 2u + 6u * 9u + 1u);
  auto shape_of = [&](const char* name) { return model->weights.get(name).value().shape(); };
  EXPECT_EQ(shape_of("model.embed_tokens.weight"), (Shape{8000, 384}));
  EXPECT_EQ(shape_of("lm_head.weight"), (Shape{8000, 384}));
  EXPECT_EQ(shape_of("model.layers.0.self_attn.q_proj.weight"), (Shape{384, 384}));
  EXPECT_EQ(shape_of("model.layers.5.self_attn.k_proj.weight"), (Shape{128, 384}));
  EXPECT_EQ(shape_of("model.layers.3.mlp.down_proj.weight"), (Shape{384, 1024}));
  EXPECT_EQ(shape_of("model.norm.weight"), (Shape{384}));

  // The shards themselves: three files, every header 8-byte aligned.
  int shards = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(testing_io::models_dir() / "llama-mix-16m")) {
    if (entry.path().extension() != ".safetensors") continue;
    auto file = SafetensorsFile::open(entry.path());
    ASSERT_TRUE(file.ok()) << file.error().to_string();
    EXPECT_EQ(file->data_offset() % 8, 0u);
    ++shards;
  }
  EXPECT_EQ(shards, 3);
}

// The reference library's own serialization tests (safetensors/src/tensor.rs:
// test_serialization, test_empty, test_serialization_forced_alignement) as golden bytes.
TEST(Safetensors, WriterMatchesReferenceTestVectors) {
  const std::vector<float> values = {0, 1, 2, 3, 4, 5};
  {
    SafetensorsWriter w;
    ASSERT_TRUE(w.add("attn.0", DType::F32, {1, 2, 3}, as_bytes(values)).ok());
    auto out = w.serialize();
    ASSERT_TRUE(out.ok());
    const std::string header =
        R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    ASSERT_EQ(header.size(), 64u);
    ASSERT_EQ(out->size(), 8 + 64 + 24u);
    EXPECT_EQ(static_cast<uint8_t>((*out)[0]), 64);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(out->data()) + 8, 64), header);
    EXPECT_EQ(0, std::memcmp(out->data() + 72, values.data(), 24));
  }
  {
    SafetensorsWriter w;
    ASSERT_TRUE(w.add("attn0", DType::F32, {1, 1, 2, 3}, as_bytes(values)).ok());
    auto out = w.serialize();
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(static_cast<uint8_t>((*out)[0]), 72);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(out->data()) + 8, 72),
              std::string(R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})") +
                  "       ");
  }
  {
    SafetensorsWriter w;
    auto out = w.serialize();
    ASSERT_TRUE(out.ok());
    const std::vector<uint8_t> expected = {8,   0,   0,  0,  0,  0,  0,  0,
                                           '{', '}', 32, 32, 32, 32, 32, 32};
    ASSERT_EQ(out->size(), expected.size());
    EXPECT_EQ(0, std::memcmp(out->data(), expected.data(), expected.size()));
    w.set_metadata("framework", "pt");
    auto with_meta = w.serialize();
    ASSERT_TRUE(with_meta.ok());
    EXPECT_EQ(static_cast<uint8_t>((*with_meta)[0]), 40);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(with_meta->data()) + 8, 40),
              R"({"__metadata__":{"framework":"pt"}}     )");
  }
}

TEST(Safetensors, RoundTripBf16F32Fp8BitExactWithReferenceLayout) {
  ScratchDir dir;
  std::vector<uint16_t> bf16(3 * 5);
  for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = float_to_bf16(0.37f * i - 2.0f);
  std::vector<float> f32 = {1.5f, -0.0f, 3e-39f, 65504.0f, -7.25f};
  std::vector<uint8_t> fp8(7);
  for (size_t i = 0; i < fp8.size(); ++i) fp8[i] = float_to_e4m3fn(0.9f * i - 3.0f);
  bf16[0] = 0x7FC1;  // a NaN payload must survive too

  SafetensorsWriter w;
  ASSERT_TRUE(w.add("model.b.weight", DType::BF16, {3, 5}, as_bytes(bf16)).ok());
  ASSERT_TRUE(w.add("model.a.weight", DType::BF16, {15}, as_bytes(bf16)).ok());
  ASSERT_TRUE(w.add("scale", DType::F32, {5}, as_bytes(f32)).ok());
  ASSERT_TRUE(w.add("q.weight", DType::F8_E4M3FN, {7}, as_bytes(fp8)).ok());
  w.set_metadata("quant_algo", "FP8");
  w.set_metadata("format", "pt");
  const auto path = dir / "out.safetensors";
  ASSERT_TRUE(w.write(path).ok());

  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_EQ(file->metadata().at("quant_algo"), "FP8");
  EXPECT_EQ(file->metadata().at("format"), "pt");
  // Reference order: dtype descending (F32 > BF16 > F8_E4M3), then name.
  ASSERT_EQ(file->tensors().size(), 4u);
  EXPECT_EQ(file->tensors()[0].name, "scale");
  EXPECT_EQ(file->tensors()[1].name, "model.a.weight");
  EXPECT_EQ(file->tensors()[2].name, "model.b.weight");
  EXPECT_EQ(file->tensors()[3].name, "q.weight");
  EXPECT_EQ(file->header_bytes() % 8, 0u);
  EXPECT_EQ(file->tensors()[0].begin, 0u);
  EXPECT_EQ(file->file_bytes(), file->data_offset() + 20 + 30 + 30 + 7);  // no trailing bytes
  auto check = [&](const char* name, const auto& original, DType dtype) {
    auto view = file->view(name);
    ASSERT_TRUE(view.ok()) << name;
    EXPECT_EQ(view->dtype(), dtype);
    ASSERT_EQ(view->nbytes(), original.size() * sizeof(original[0]));
    EXPECT_EQ(0, std::memcmp(view->data(), original.data(), view->nbytes())) << name;
  };
  check("model.b.weight", bf16, DType::BF16);
  check("model.a.weight", bf16, DType::BF16);
  check("scale", f32, DType::F32);
  check("q.weight", fp8, DType::F8_E4M3FN);
  EXPECT_EQ(file->view("model.b.weight")->shape(), (Shape{3, 5}));
  // The header text, exactly as the reference writes it.
  const auto raw = testing_io::read_file(path);
  const std::string header(reinterpret_cast<const char*>(raw.data()) + 8, file->header_bytes());
  EXPECT_EQ(
      header.rfind(
          R"({"__metadata__":{"format":"pt","quant_algo":"FP8"},"scale":{"dtype":"F32","shape":[5],"data_offsets":[0,20]},"model.a.weight":{"dtype":"BF16","shape":[15],"data_offsets":[20,50]})",
          0),
      0u);
  // Writing the parsed file back gives the same bytes.
  SafetensorsWriter again;
  for (const auto& t : file->tensors()) {
    ASSERT_TRUE(again.add(t.name, *file->view(t)).ok());
  }
  for (const auto& [k, v] : file->metadata()) again.set_metadata(k, v);
  auto bytes = again.serialize();
  ASSERT_TRUE(bytes.ok());
  ASSERT_EQ(bytes->size(), raw.size());
  EXPECT_EQ(0, std::memcmp(bytes->data(), raw.data(), raw.size()));
}

TEST(Safetensors, WriterRejectsBadInput) {
  SafetensorsWriter w;
  std::vector<float> x(4);
  ASSERT_TRUE(w.add("a", DType::F32, {4}, as_bytes(x)).ok());
  auto dup = w.add("a", DType::F32, {4}, as_bytes(x));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("added twice"), std::string::npos);
  auto size = w.add("b", DType::F32, {5}, as_bytes(x));
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.error().message().find("needs 20 bytes but 16"), std::string::npos);
  EXPECT_FALSE(w.add("__metadata__", DType::F32, {4}, as_bytes(x)).ok());
  auto fnuz = w.add("c", DType::F8_E4M3FNUZ, {16}, as_bytes(x));
  ASSERT_FALSE(fnuz.ok());
  EXPECT_NE(fnuz.error().message().find("f8_e4m3fnuz"), std::string::npos);
  EXPECT_FALSE(w.add(std::string("bad\xff"), DType::F32, {4}, as_bytes(x)).ok());
}

// A write that fails half-way (the file-size limit hits) leaves nothing at the final path and
// no temp file behind.
TEST(Safetensors, FailedAtomicWriteLeavesNothing) {
  ScratchDir dir;
  std::vector<float> big(1 << 16);
  SafetensorsWriter w;
  ASSERT_TRUE(w.add("big", DType::F32, {1 << 16}, as_bytes(big)).ok());
  const auto path = dir / "model.safetensors";

  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;  // 64 KiB: the header fits, the 256 KiB tensor does not
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto status = w.write(path);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().to_string().find("writing tensor 'big'"), std::string::npos)
      << status.error().to_string();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "temp file left behind";
  // The same writer succeeds once the limit is gone.
  ASSERT_TRUE(w.write(path).ok());
  EXPECT_TRUE(SafetensorsFile::open(path).ok());
}

TEST(Safetensors, UnalignedTensorOffsetsParse) {
  // A hand-made file whose F32 tensor starts at an odd offset: legal (the reference reader
  // accepts it), though the reference writer never produces it.
  ScratchDir dir;
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  testing_io::Bytes b;
  b.u64(header.size()).str(header).u8(7).f32(1.5f).f32(-2.0f);
  testing_io::write_file(dir / "x.safetensors", b.data());
  auto file = SafetensorsFile::open(dir / "x.safetensors");
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_EQ(file->view("b")->nbytes(), 8u);
}

// The header parser reads plain tensor entries field by field and rebuilds any other entry as
// a DOM for the full validation: both readings must accept and refuse the same headers.
TEST(Safetensors, EntriesOutsideThePlainFormKeepTheirMeaning) {
  const auto parse = [](const std::string& header, size_t data) {
    const std::vector<uint8_t> b = testing_io::safetensors_bytes(header, data);
    return parse_safetensors_header(
        std::span(reinterpret_cast<const std::byte*>(b.data()), b.size()), "t.safetensors");
  };
  // Field order, extra fields (ignored, as the reference does), __metadata__ anywhere.
  auto ok =
      parse(R"({"b":{"data_offsets":[4,12],"shape":[2],"dtype":"F32","x":{"y":[1,{}]}},)"
            R"("__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
            12);
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  ASSERT_EQ(ok->tensors.size(), 2u);
  EXPECT_EQ(ok->tensors[0].name, "a");
  EXPECT_EQ(ok->tensors[1].name, "b");
  EXPECT_EQ(ok->tensors[1].shape, Shape({2}));
  EXPECT_EQ(ok->tensors[1].begin, 4u);
  EXPECT_EQ(ok->metadata.at("k"), "v");
  const auto error_of = [&](const std::string& header, size_t data) {
    auto r = parse(header, data);
    EXPECT_FALSE(r.ok()) << header;
    return r.ok() ? std::string() : r.error().to_string();
  };
  // A field given twice, in the plain part or after an extra field.
  EXPECT_NE(error_of(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1)
                .find("key 'dtype' appears twice"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"a":{"dtype":"U8","x":1,"shape":[1],"shape":[1],"data_offsets":[0,1]}})", 1)
          .find("key 'shape' appears twice"),
      std::string::npos);
  // A tensor name given twice, and __metadata__ twice.
  EXPECT_NE(error_of(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                     R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                     2)
                .find("key 'a' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"__metadata__":{},"__metadata__":{}})", 0).find("appears twice"),
            std::string::npos);
  // Signed, fractional and oversized numbers, wrong types, mid-array and mid-entry.
  EXPECT_NE(
      error_of(R"({"a":{"dtype":"U8","shape":[2,-1],"data_offsets":[0,1]}})", 1).find("shape[1]"),
      std::string::npos);
  EXPECT_NE(
      error_of(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", 1).find("shape[0]"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"shape":[1],"dtype":7,"data_offsets":[0,1]}})", 1)
                .find("field dtype is a JSON number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", 1)
                .find("expected an array [begin, end]"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", 1)
                .find("end before they begin"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,1]}})", 1).find("needs 3 bytes"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"a":[1,2]})", 0).find("expected an object with dtype"), std::string::npos);
  EXPECT_NE(
      error_of(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", 1).find("has no 'shape' field"),
      std::string::npos);
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// What `qforge synth` does: write a small model with SafetensorsWriter + a config.json, then load
// it back through load_model, as a directory and as a single file, for llama, qwen2 (q/k/v
// biases) and qwen3 (q/k norms).
TEST(Safetensors, WrittenModelsLoadForEachArchitecture) {
  for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    ScratchDir dir;
    const int64_t h = 64, inter = 96, vocab = 50, heads = 4, kv = 2, hd = 16;
    SafetensorsWriter w;
    auto add = [&](const std::string& name, Shape shape) {
      std::vector<uint16_t> data(static_cast<size_t>(shape.numel()));
      for (size_t i = 0; i < data.size(); ++i) data[i] = float_to_bf16(0.01f * (i % 13));
      ASSERT_TRUE(w.add(name, DType::BF16, shape, as_bytes(data)).ok()) << name;
    };
    add("model.embed_tokens.weight", {vocab, h});
    add("model.norm.weight", {h});
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {h});
      add(p + "post_attention_layernorm.weight", {h});
      add(p + "self_attn.q_proj.weight", {heads * hd, h});
      add(p + "self_attn.k_proj.weight", {kv * hd, h});
      add(p + "self_attn.v_proj.weight", {kv * hd, h});
      add(p + "self_attn.o_proj.weight", {h, heads * hd});
      add(p + "mlp.gate_proj.weight", {inter, h});
      add(p + "mlp.up_proj.weight", {inter, h});
      add(p + "mlp.down_proj.weight", {h, inter});
      if (arch == "qwen2") {
        add(p + "self_attn.q_proj.bias", {heads * hd});
        add(p + "self_attn.k_proj.bias", {kv * hd});
        add(p + "self_attn.v_proj.bias", {kv * hd});
      }
      if (arch == "qwen3") {
        add(p + "self_attn.q_norm.weight", {hd});
        add(p + "self_attn.k_norm.weight", {hd});
      }
    }
    ASSERT_TRUE(w.write(dir / "model.safetensors").ok());
    testing_io::write_file(dir / "config.json",
                           fmt::format(R"({{"model_type": "{}", "hidden_size": 64,
      "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "vocab_size": 50, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16"}})",
                                       arch));
    for (const auto& path : {dir.path(), dir / "model.safetensors"}) {
      auto model = load_model(path.string());
      ASSERT_TRUE(model.ok()) << model.error().to_string();
      EXPECT_EQ(model->config.model_type, arch);
      EXPECT_EQ(model->config.attention_bias, arch == "qwen2");
      EXPECT_EQ(model->config.qk_norm, arch == "qwen3");
      EXPECT_EQ(model->weights.output_head(model->config)->shape(), (Shape{50, 64}));
    }
  }
  // A missing tensor is named with its expected shape.
  ScratchDir dir;
  SafetensorsWriter w;
  std::vector<uint16_t> embed(50 * 64);
  ASSERT_TRUE(w.add("model.embed_tokens.weight", DType::BF16, {50, 64}, as_bytes(embed)).ok());
  ASSERT_TRUE(w.write(dir / "model.safetensors").ok());
  testing_io::write_file(dir / "config.json", R"({"model_type": "llama", "hidden_size": 64,
      "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 50})");
  auto bad = load_model(dir.path().string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().to_string().find("'model.layers.0.input_layernorm.weight' [64] is missing"),
            std::string::npos)
      << bad.error().to_string();
}

}  // namespace
}  // namespace qforge

// GGUF reader/writer: the real Llama-2 vocabulary file, write -> read round trips of every
// metadata type and of F32/F16/BF16/Q8_0/Q4_0/Q4_1 tensors, hand-computed block values, and a
// llama model written as GGUF and loaded back through load_model.
#include <cmath>

#include "io/gguf_test_util.h"
#include "io/io_test_util.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/gguf.h"
#include "qforge/io/model_loader.h"

namespace qforge {
namespace {

using testing_io::ScratchDir;

std::span<const std::byte> byte_span(const void* p, size_t n) {
  return {static_cast<const std::byte*>(p), n};
}

TEST(Gguf, RealLlama2VocabularyParsesCompletely) {
  QF_REQUIRE_SHARED();
  auto g = GgufFile::open(testing_io::models_dir() / "llama2-spm-vocab-gguf" /
                          "ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->metadata().size(), 22u);
  EXPECT_EQ(g->tensors().size(), 0u);
  EXPECT_EQ(g->get_string("general.architecture").value_or(""), "llama");
  EXPECT_EQ(g->get_string("tokenizer.ggml.model").value_or(""), "llama");
  auto tokens = g->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error().to_string();
  ASSERT_EQ(tokens->size(), 32000u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
  EXPECT_EQ((*tokens)[258], "<0xFF>");
  EXPECT_EQ((*tokens)[29871], "\xe2\x96\x81");  // "▁", the SentencePiece space
  auto scores = g->get_f32_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.ok()) << scores.error().to_string();
  EXPECT_EQ(scores->size(), 32000u);
  auto types = g->get_int_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.error().to_string();
  ASSERT_EQ(types->size(), 32000u);
  EXPECT_EQ((*types)[0], 2);     // UNKNOWN
  EXPECT_EQ((*types)[1], 3);     // CONTROL
  EXPECT_EQ((*types)[3], 6);     // BYTE
  EXPECT_EQ((*types)[1000], 1);  // NORMAL
  EXPECT_EQ(g->get_int("tokenizer.ggml.bos_token_id").value_or(-1), 1);
  EXPECT_EQ(g->get_int("tokenizer.ggml.eos_token_id").value_or(-1), 2);
  // Type errors name the key and the types.
  auto wrong = g->get_int("tokenizer.ggml.model");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("'tokenizer.ggml.model'"), std::string::npos);
  EXPECT_NE(wrong.error().message().find("type string, expected an integer"), std::string::npos);
  EXPECT_EQ(g->get_string("no.such.key").error().code(), ErrorCode::kNotFound);
}

TEST(Gguf, MetadataOfEveryTypeRoundTrips) {
  GgufWriter w;
  const std::vector<float> floats = {1.5f, -2.25f, 1e-30f};
  const std::vector<int32_t> ints = {-7, 0, 1 << 30};
  const std::vector<uint8_t> bools = {1, 0, 1};
  ASSERT_TRUE(w.set("u8", GgufValue::u8(200)).ok());
  ASSERT_TRUE(w.set("i8", GgufValue::i8(-100)).ok());
  ASSERT_TRUE(w.set("u16", GgufValue::u16(60000)).ok());
  ASSERT_TRUE(w.set("i16", GgufValue::i16(-30000)).ok());
  ASSERT_TRUE(w.set("u32", GgufValue::u32(4000000000u)).ok());
  ASSERT_TRUE(w.set("i32", GgufValue::i32(-2000000000)).ok());
  ASSERT_TRUE(w.set("f32", GgufValue::f32(0.1f)).ok());
  ASSERT_TRUE(w.set("bool", GgufValue::boolean(true)).ok());
  ASSERT_TRUE(w.set("str", GgufValue::string("héllo\n")).ok());
  ASSERT_TRUE(w.set("u64", GgufValue::u64(18000000000000000000ull)).ok());
  ASSERT_TRUE(w.set("i64", GgufValue::i64(-9000000000000000000ll)).ok());
  ASSERT_TRUE(w.set("f64", GgufValue::f64(1e300)).ok());
  ASSERT_TRUE(w.set("arr.str", GgufValue::string_array({"a", "", "ccc"})).ok());
  ASSERT_TRUE(w.set("arr.f32", GgufValue::array_of<float>(GgufType::FLOAT32, floats)).ok());
  ASSERT_TRUE(w.set("arr.i32", GgufValue::array_of<int32_t>(GgufType::INT32, ints)).ok());
  ASSERT_TRUE(w.set("arr.bool", GgufValue::array_of<uint8_t>(GgufType::BOOL, bools)).ok());
  ASSERT_TRUE(w.set("arr.empty", GgufValue::array_of<float>(GgufType::FLOAT32, {})).ok());
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok());
  auto g = GgufFile::parse(*bytes, "mem.gguf", nullptr);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  ASSERT_EQ(g->metadata().size(), 17u);
  EXPECT_EQ(g->metadata()[0].first, "u8");  // file order kept
  EXPECT_EQ(g->find("u8")->type(), GgufType::UINT8);
  EXPECT_EQ(g->get_uint("u8").value(), 200u);
  EXPECT_EQ(g->get_int("i8").value(), -100);
  EXPECT_EQ(g->get_uint("u16").value(), 60000u);
  EXPECT_EQ(g->get_int("i16").value(), -30000);
  EXPECT_EQ(g->get_uint("u32").value(), 4000000000u);
  EXPECT_EQ(g->get_int("i32").value(), -2000000000);
  EXPECT_EQ(g->get_float("f32").value(), static_cast<double>(0.1f));
  EXPECT_EQ(g->get_bool("bool").value(), true);
  EXPECT_EQ(g->get_string("str").value(), "héllo\n");
  EXPECT_EQ(g->get_uint("u64").value(), 18000000000000000000ull);
  EXPECT_FALSE(g->get_int("u64").ok());  // does not fit int64
  EXPECT_EQ(g->get_int("i64").value(), -9000000000000000000ll);
  EXPECT_EQ(g->get_float("f64").value(), 1e300);
  EXPECT_EQ(g->get_string_array("arr.str").value(), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(g->get_f32_array("arr.f32").value(), floats);
  EXPECT_EQ(g->get_int_array("arr.i32").value(), (std::vector<int64_t>{-7, 0, 1 << 30}));
  EXPECT_EQ(g->get_int_array("arr.bool").value(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(g->find("arr.bool")->array_type(), GgufType::BOOL);
  EXPECT_EQ(g->find("arr.empty")->array_size(), 0u);
  EXPECT_FALSE(g->get_f32_array("arr.i32").ok());
  // Serializing the parsed metadata again gives the same bytes.
  GgufWriter again;
  for (const auto& [k, v] : g->metadata()) ASSERT_TRUE(again.set(k, v).ok());
  EXPECT_EQ(again.serialize().value(), *bytes);
}

TEST(Gguf, Q8_0AndQ4_0DequantizeToHandComputedValues) {
  // Q8_0: d = 0.5 (F16 0x3800), x = 0.5 * q.
  BlockQ8_0 q8{};
  q8.d = 0x3800;
  for (int j = 0; j < 32; ++j) q8.qs[j] = static_cast<int8_t>(j * 8 - 127);
  std::vector<float> out(32);
  ASSERT_TRUE(gguf_dequantize(8, byte_span(&q8, sizeof(q8)), out).ok());
  EXPECT_EQ(out[0], -63.5f);
  EXPECT_EQ(out[16], 0.5f);
  EXPECT_EQ(out[31], 60.5f);
  // Q4_0: d = 2 (0x4000); qs[j] low nibble = element j, high nibble = element j + 16;
  // x = d * (q - 8).
  BlockQ4_0 q4{};
  q4.d = 0x4000;
  for (int j = 0; j < 16; ++j) q4.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  ASSERT_TRUE(gguf_dequantize(2, byte_span(&q4, sizeof(q4)), out).ok());
  EXPECT_EQ(out[0], -16.0f);   // (0 - 8) * 2
  EXPECT_EQ(out[15], 14.0f);   // (15 - 8) * 2
  EXPECT_EQ(out[16], 14.0f);   // high nibble of qs[0] = 15
  EXPECT_EQ(out[31], -16.0f);  // high nibble of qs[15] = 0
  // Q4_1: d = 1, m = -3 (0xC200): x = q - 3.
  BlockQ4_1 q41{};
  q41.d = 0x3C00;
  q41.m = 0xC200;
  for (int j = 0; j < 16; ++j) q41.qs[j] = static_cast<uint8_t>(j | (j << 4));
  ASSERT_TRUE(gguf_dequantize(3, byte_span(&q41, sizeof(q41)), out).ok());
  EXPECT_EQ(out[0], -3.0f);
  EXPECT_EQ(out[31], 12.0f);

  // The quantizers: values that are exact on the grid come back exactly.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16) - 8.0f;  // -8..7, amax at -8
  auto b40 = quantize_q4_0(x);
  ASSERT_EQ(b40.size(), 1u);
  EXPECT_EQ(f16_to_float(b40[0].d), 1.0f);  // d = max / -8 = -8 / -8
  EXPECT_EQ(b40[0].qs[0], 0x00);            // -8 -> 0 in both nibbles (x[16] = -8 too)
  EXPECT_EQ(b40[0].qs[9], 0x99);            // x[9] = x[25] = 1 -> q = 1 + 8 = 9
  ASSERT_TRUE(gguf_dequantize(2, byte_span(b40.data(), 18), out).ok());
  EXPECT_EQ(out, x);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16) * 0.25f;  // amax 4 at j = 0
  auto b80 = quantize_q8_0(x);
  EXPECT_EQ(b80[0].d, float_to_f16(4.0f / 127));  // d = amax / 127, stored as F16
  EXPECT_EQ(b80[0].qs[0], -127);
  EXPECT_EQ(b80[0].qs[16], 0);
}

TEST(Gguf, TensorsOfEveryWrittenTypeRoundTrip) {
  ScratchDir dir;
  std::vector<float> x(4 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.1f * i) * 3.0f;
  std::vector<uint16_t> f16(x.size()), bf16(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    f16[i] = float_to_f16(x[i]);
    bf16[i] = float_to_bf16(x[i]);
  }
  auto q8 = quantize_q8_0(x);
  auto q40 = quantize_q4_0(x);
  auto q41 = quantize_q4_1(x);
  GgufWriter w(64);
  ASSERT_TRUE(w.set("general.architecture", GgufValue::string("test")).ok());
  ASSERT_TRUE(w.add_tensor("f32", 0, {4, 64}, byte_span(x.data(), x.size() * 4)).ok());
  ASSERT_TRUE(w.add_tensor("f16", 1, {4, 64}, byte_span(f16.data(), f16.size() * 2)).ok());
  ASSERT_TRUE(w.add_tensor("bf16", 30, {4, 64}, byte_span(bf16.data(), bf16.size() * 2)).ok());
  ASSERT_TRUE(w.add_tensor("q8_0", 8, {4, 64}, byte_span(q8.data(), q8.size() * 34)).ok());
  ASSERT_TRUE(w.add_tensor("q4_0", 2, {4, 64}, byte_span(q40.data(), q40.size() * 18)).ok());
  ASSERT_TRUE(w.add_tensor("q4_1", 3, {2, 2, 64}, byte_span(q41.data(), q41.size() * 20)).ok());
  EXPECT_FALSE(w.add_tensor("bad", 8, {4, 48}, byte_span(q8.data(), 4 * 34)).ok());
  ASSERT_TRUE(w.write(dir / "t.gguf").ok());

  auto g = GgufFile::open(dir / "t.gguf");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(g->get_uint("general.alignment").value(), 64u);
  EXPECT_EQ(g->data_offset() % 64, 0u);
  ASSERT_EQ(g->tensors().size(), 6u);
  const GgufTensorInfo* q41_info = g->find_tensor("q4_1");
  ASSERT_NE(q41_info, nullptr);
  EXPECT_EQ(q41_info->ne, (std::vector<int64_t>{64, 2, 2}));
  EXPECT_EQ(q41_info->shape(), (Shape{2, 2, 64}));
  for (const auto& t : g->tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;

  auto view = g->tensor_view(*g->find_tensor("f32"));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(0, std::memcmp(view->data(), x.data(), x.size() * 4));  // bit-exact, zero-copy
  EXPECT_FALSE(g->tensor_view(*g->find_tensor("q8_0")).ok());
  // Raw blocks are bit-exact too.
  auto raw_q8 = g->tensor_bytes(*g->find_tensor("q8_0"));
  EXPECT_EQ(0, std::memcmp(raw_q8.data(), q8.data(), raw_q8.size()));

  struct Case {
    const char* name;
    float tolerance;  // |x - x'| bound, relative to the block's amax
  };
  for (Case c : {Case{"f32", 0.0f}, Case{"f16", 1e-3f}, Case{"bf16", 8e-3f},
                 Case{"q8_0", 0.5f / 127 + 1e-3f}, Case{"q4_0", 1.0f / 8 + 1e-2f},
                 Case{"q4_1", 1.0f / 15 + 1e-2f}}) {
    auto t = g->tensor_to_f32(*g->find_tensor(c.name));
    ASSERT_TRUE(t.ok()) << c.name << ": " << t.error().to_string();
    const float* y = t->data_as<float>();
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_NEAR(y[i], x[i], c.tolerance * 3.0f + 1e-7f) << c.name << " element " << i;
    }
  }
}

TEST(Gguf, TensorNamesMapBothWays) {
  EXPECT_EQ(gguf_to_hf_tensor_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.11.attn_q.bias"), "model.layers.11.self_attn.q_proj.bias");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.0.ffn_down.weight"), "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("blk.2.attn_k_norm.weight"),
            "model.layers.2.self_attn.k_norm.weight");
  EXPECT_EQ(gguf_to_hf_tensor_name("rope_freqs.weight"), "rope_freqs.weight");
  EXPECT_EQ(hf_to_gguf_tensor_name("model.layers.7.post_attention_layernorm.weight"),
            "blk.7.ffn_norm.weight");
  EXPECT_EQ(hf_to_gguf_tensor_name("model.layers.7.self_attn.o_proj.weight"),
            "blk.7.attn_output.weight");
}

// stories260K written as a llama GGUF (norms F32, embeddings F16, attention Q8_0, w1/w3 Q4_0,
// w2 BF16) loads back through load_model with the same config and close weights.
TEST(Gguf, LlamaModelRoundTripThroughLoadModel) {
  QF_REQUIRE_SHARED();
  auto ref = load_model((testing_io::models_dir() / "stories260K" / "stories260K.bin").string());
  ASSERT_TRUE(ref.ok()) << ref.error().to_string();
  const ModelConfig& c = ref->config;
  GgufWriter w;
  testing_io::set_stories260k_gguf_metadata(w);
  std::vector<std::vector<uint8_t>> keep;
  for (const auto& [name, view] : ref->weights.tensors()) {
    const float* x = view.data_as<const float>();
    std::span<const float> xs(x, static_cast<size_t>(view.numel()));
    uint32_t type = 0;
    std::vector<uint8_t> bytes;
    auto put = [&](const void* p, size_t n) {
      bytes.assign(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    if (view.ndim() == 1) {
      put(x, xs.size() * 4);
    } else if (name.find("embed") != std::string::npos) {
      type = 1;
      std::vector<uint16_t> h(xs.size());
      for (size_t i = 0; i < xs.size(); ++i) h[i] = float_to_f16(xs[i]);
      put(h.data(), h.size() * 2);
    } else if (name.find("self_attn") != std::string::npos) {
      type = 8;
      auto q = quantize_q8_0(xs);
      put(q.data(), q.size() * sizeof(BlockQ8_0));
    } else if (name.find("down_proj") != std::string::npos) {
      type = 30;
      std::vector<uint16_t> h(xs.size());
      for (size_t i = 0; i < xs.size(); ++i) h[i] = float_to_bf16(xs[i]);
      put(h.data(), h.size() * 2);
    } else {
      type = 2;
      auto q = quantize_q4_0(xs);
      put(q.data(), q.size() * sizeof(BlockQ4_0));
    }
    ASSERT_TRUE(w.add_tensor(hf_to_gguf_tensor_name(name), type, view.shape(),
                             byte_span(bytes.data(), bytes.size()))
                    .ok())
        << name;
  }
  ScratchDir dir;
  ASSERT_TRUE(w.write(dir / "stories.gguf").ok());
  auto model = load_model((dir / "stories.gguf").string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ(model->format, "gguf");
  const ModelConfig& g = model->config;
  EXPECT_EQ(g.hidden_size, c.hidden_size);
  EXPECT_EQ(g.intermediate_size, c.intermediate_size);
  EXPECT_EQ(g.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(g.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(g.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(g.head_dim, c.head_dim);
  EXPECT_EQ(g.vocab_size, 512);
  EXPECT_EQ(g.max_position_embeddings, 512);
  EXPECT_TRUE(g.tie_word_embeddings);
  EXPECT_EQ(g.rope_layout, RopeLayout::Interleaved);
  EXPECT_NEAR(g.rms_norm_eps, 1e-5, 1e-11);
  EXPECT_EQ(g.bos_token_id, 1);
  EXPECT_EQ(g.eos_token_ids, std::vector<int64_t>{2});
  ASSERT_EQ(model->weights.tensors().size(), ref->weights.tensors().size());
  for (const auto& [name, view] : ref->weights.tensors()) {
    auto got = model->weights.get(name);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(got->shape(), view.shape()) << name;
    if (view.ndim() == 1) {
      EXPECT_EQ(got->dtype(), DType::F32);
      EXPECT_EQ(0, std::memcmp(got->data(), view.data(), view.nbytes())) << name;
    }
  }
  EXPECT_EQ(model->weights.get("model.embed_tokens.weight")->dtype(), DType::F16);
  EXPECT_EQ(model->weights.get("model.layers.0.mlp.down_proj.weight")->dtype(), DType::BF16);
  EXPECT_EQ(model->weights.get("model.layers.0.self_attn.q_proj.weight")->dtype(), DType::F32);
}

}  // namespace
}  // namespace qforge

// llama2.c reader on the shared real checkpoints (stories260K, aidreams260K and the q80 export)
// and on tiny hand-made files.
#include <cmath>

#include "io/io_test_util.h"
#include "qforge/io/llama2c.h"
#include "qforge/io/model_loader.h"

namespace qforge {
namespace {

using testing_io::models_dir;

int64_t total_params(const ModelWeights& w) {
  int64_t n = 0;
  for (const auto& [name, view] : w.tensors()) n += view.numel();
  return n;
}

TEST(Llama2c, Stories260KHeaderAndTensors) {
  QF_REQUIRE_SHARED();
  auto model = load_model((models_dir() / "stories260K" / "stories260K.bin").string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_EQ(model->format, "llama2c");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_layout, RopeLayout::Interleaved);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.bos_token_id, 1);
  ASSERT_EQ(c.eos_token_ids.size(), 1u);
  EXPECT_EQ(c.eos_token_ids[0], 2);
  // config.json: params_excluding_freq_cis 260032 (the shared classifier counted once).
  EXPECT_EQ(total_params(model->weights), 260032);
  EXPECT_FALSE(model->weights.contains("lm_head.weight"));
  auto head = model->weights.output_head(c);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->shape(), (Shape{512, 64}));
  auto wk = model->weights.get("model.layers.4.self_attn.k_proj.weight");
  ASSERT_TRUE(wk.ok());
  EXPECT_EQ(wk->shape(), (Shape{32, 64}));
  EXPECT_EQ(wk->dtype(), DType::F32);
  EXPECT_FALSE(wk->writable());  // a view into the read-only mmap, not a copy

  // The first embedding values are the floats right after the 28-byte header.
  const auto raw = testing_io::read_file(models_dir() / "stories260K" / "stories260K.bin");
  auto embed = model->weights.get("model.embed_tokens.weight");
  ASSERT_TRUE(embed.ok());
  for (int i = 0; i < 8; ++i) {
    float expected;
    std::memcpy(&expected, raw.data() + 28 + 4 * i, 4);
    EXPECT_EQ(embed->data_as<const float>()[i], expected);
  }
  // The last tensor before freq_cis is rms_final.
  auto norm = model->weights.get("model.norm.weight");
  ASSERT_TRUE(norm.ok());
  const size_t rms_final_offset = raw.size() - 4 * (512 * 8) - 4 * 64;
  float expected;
  std::memcpy(&expected, raw.data() + rms_final_offset, 4);
  EXPECT_EQ(norm->data_as<const float>()[0], expected);
  EXPECT_TRUE(validate_model_weights(c, model->weights).ok());
}

TEST(Llama2c, Aidreams260KHeader) {
  QF_REQUIRE_SHARED();
  auto model = load_model((models_dir() / "aidreams260K" / "aidreams260K.bin").string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_hidden_layers, 4);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(total_params(model->weights), 230976);
}

// Reads the q80 export independently of the reader: per tensor, int8 codes then fp32 scales.
struct Q80Tensor {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

TEST(Llama2c, Q80ExportMatchesFp32WithinHalfAStep) {
  QF_REQUIRE_SHARED();
  const auto dir = models_dir() / "stories260K";
  auto fp32 = load_model((dir / "stories260K.bin").string());
  auto q80 = load_model((dir / "stories260K_q80_gs4.bin").string());
  ASSERT_TRUE(fp32.ok()) << fp32.error().to_string();
  ASSERT_TRUE(q80.ok()) << q80.error().to_string();
  EXPECT_EQ(q80->format, "llama2c-q80");
  EXPECT_EQ(q80->config.hidden_size, 64);
  EXPECT_EQ(q80->config.num_hidden_layers, 5);
  EXPECT_TRUE(q80->config.tie_word_embeddings);

  const auto raw = testing_io::read_file(dir / "stories260K_q80_gs4.bin");
  ASSERT_EQ(raw.size(), 521728u);
  auto header = parse_llama2c_header(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(raw.data()), raw.size()),
      "q80");
  ASSERT_TRUE(header.ok()) << header.error().to_string();
  EXPECT_EQ(header->version, 2);
  EXPECT_EQ(header->group_size, 4);
  EXPECT_EQ(header->expected_file_bytes, 521728u);
  int32_t gs;
  std::memcpy(&gs, raw.data() + 37, 4);
  ASSERT_EQ(gs, 4);
  const int64_t L = 5, dim = 64, hidden = 172, kv = 32, vocab = 512;
  size_t pos = 256 + 4 * (2 * L * dim + dim);
  struct Stacked {
    const char* suffix;  // nullptr: the embedding
    int64_t rows, cols, layers;
  };
  const Stacked order[] = {{nullptr, vocab, dim, 1},
                           {"self_attn.q_proj.weight", dim, dim, L},
                           {"self_attn.k_proj.weight", kv, dim, L},
                           {"self_attn.v_proj.weight", kv, dim, L},
                           {"self_attn.o_proj.weight", dim, dim, L},
                           {"mlp.gate_proj.weight", hidden, dim, L},
                           {"mlp.down_proj.weight", dim, hidden, L},
                           {"mlp.up_proj.weight", hidden, dim, L}};
  int64_t checked = 0;
  double worst_ratio = 0;
  for (const auto& t : order) {
    // runq.c quantizes each layer's matrix on its own: q[per_layer] then its scales.
    const int64_t per_layer = t.rows * t.cols;
    for (int64_t l = 0; l < t.layers; ++l) {
      const auto* q = reinterpret_cast<const int8_t*>(raw.data() + pos);
      const auto* s_bytes = raw.data() + pos + per_layer;
      pos += per_layer + 4 * (per_layer / gs);
      const std::string name = t.suffix ? fmt::format("model.layers.{}.{}", l, t.suffix)
                                        : std::string("model.embed_tokens.weight");
      auto a = fp32->weights.get(name);
      auto b = q80->weights.get(name);
      ASSERT_TRUE(a.ok() && b.ok()) << name;
      ASSERT_EQ(a->shape(), b->shape()) << name;
      for (int64_t i = 0; i < per_layer; ++i) {
        float scale;
        std::memcpy(&scale, s_bytes + 4 * (i / gs), 4);
        const float w = a->data_as<const float>()[i];
        const float w_q = b->data_as<const float>()[i];
        EXPECT_EQ(w_q, static_cast<float>(q[i]) * scale) << name << " element " << i;
        const double err = std::fabs(static_cast<double>(w) - w_q);
        ASSERT_LE(err, scale / 2.0 * (1 + 1e-5) + 1e-12) << name << " element " << i;
        if (scale > 0) worst_ratio = std::max(worst_ratio, err / scale);
        ++checked;
      }
    }
  }
  EXPECT_EQ(pos, raw.size());
  EXPECT_EQ(checked, 259328);
  EXPECT_GT(worst_ratio, 0.3);  // the bound is tight, not vacuous
  // Norms are stored in fp32 in both files and must match exactly.
  for (const char* name : {"model.norm.weight", "model.layers.2.input_layernorm.weight"}) {
    auto a = fp32->weights.get(name);
    auto b = q80->weights.get(name);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(0, std::memcmp(a->data(), b->data(), a->nbytes())) << name;
  }
}

// A tiny legacy file: dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 4 (negative: a
// separate classifier), seq_len 2.
testing_io::Bytes tiny_legacy(int32_t vocab_field) {
  testing_io::Bytes b;
  for (int32_t v : {8, 16, 1, 2, 1, vocab_field, 2}) b.i32(v);
  const int64_t dim = 8, hidden = 16, kv_dim = 4, vocab = 4, head_dim = 4, seq = 2;
  const int64_t floats = vocab * dim + dim + dim * dim + 2 * kv_dim * dim + dim * dim + dim +
                         3 * hidden * dim + dim + seq * head_dim +
                         (vocab_field < 0 ? vocab * dim : 0);
  for (int64_t i = 0; i < floats; ++i) b.f32(static_cast<float>(i));
  return b;
}

TEST(Llama2c, TinySeparateClassifier) {
  testing_io::Bytes b = tiny_legacy(-4);
  auto span =
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(b.data().data()), b.size());
  auto model = load_llama2c_bytes(span, "tiny.bin", nullptr);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_FALSE(model->config.tie_word_embeddings);
  auto head = model->weights.get("lm_head.weight");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->shape(), (Shape{4, 8}));
  // wcls comes after freq_cis: its first float is the count of floats before it.
  const int64_t before = 4 * 8 + 8 + 64 + 2 * 32 + 64 + 8 + 3 * 128 + 8 + 2 * 4;
  EXPECT_EQ(head->data_as<const float>()[0], static_cast<float>(before));
  auto wq = model->weights.get("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(wq.ok());
  EXPECT_EQ(wq->data_as<const float>()[0], static_cast<float>(4 * 8 + 8));
  EXPECT_TRUE(validate_model_weights(model->config, model->weights).ok());
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// ak42 v1 (fp32) and v2 (int8) versions of a tiny model with a separate classifier: dim 8,
// hidden 16, 1 layer, 2 heads, 1 kv head, vocab 4, seq_len 2.
testing_io::Bytes tiny_ak42(int version, int32_t group_size) {
  testing_io::Bytes b;
  b.u32(kLlama2cMagic).i32(version);
  for (int32_t v : {8, 16, 1, 2, 1, 4, 2}) b.i32(v);
  b.u8(0);  // separate classifier
  if (version == 2) b.i32(group_size);
  b.pad_to(256);
  for (int i = 0; i < 8 + 8 + 8; ++i) b.f32(1.0f + i);  // rms_att, rms_ffn, rms_final
  // Matrices in order: embed 32, wq 64, wk 32, wv 32, wo 64, w1 128, w2 128, w3 128, wcls 32.
  for (int n : {32, 64, 32, 32, 64, 128, 128, 128, 32}) {
    if (version == 1) {
      for (int i = 0; i < n; ++i) b.f32(static_cast<float>(n) + 0.5f * i);
    } else {
      for (int i = 0; i < n; ++i) b.u8(static_cast<uint8_t>(static_cast<int8_t>(i % 7 - 3)));
      for (int g = 0; g < n / group_size; ++g) b.f32(0.25f * (g + 1));
    }
  }
  return b;
}

TEST(Llama2c, Ak42Version1And2WithSeparateClassifier) {
  for (int version : {1, 2}) {
    SCOPED_TRACE(version);
    testing_io::Bytes b = tiny_ak42(version, 4);
    auto span =
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(b.data().data()), b.size());
    auto model = load_llama2c_bytes(span, "tiny_ak42.bin", nullptr);
    ASSERT_TRUE(model.ok()) << model.error().to_string();
    EXPECT_EQ(model->format, version == 2 ? "llama2c-q80" : "llama2c");
    EXPECT_FALSE(model->config.tie_word_embeddings);
    EXPECT_TRUE(validate_model_weights(model->config, model->weights).ok());
    auto norm = model->weights.get("model.norm.weight");
    ASSERT_TRUE(norm.ok());
    EXPECT_EQ(norm->data_as<const float>()[0], 17.0f);  // after rms_att and rms_ffn
    auto head = model->weights.get("lm_head.weight");
    ASSERT_TRUE(head.ok());
    auto wo = model->weights.get("model.layers.0.self_attn.o_proj.weight");
    ASSERT_TRUE(wo.ok());
    if (version == 1) {
      EXPECT_EQ(head->data_as<const float>()[1], 32.5f);
      EXPECT_EQ(wo->data_as<const float>()[0], 64.0f);
    } else {
      // q = i % 7 - 3, scale of group g = 0.25 * (g + 1).
      EXPECT_EQ(head->data_as<const float>()[5], (5 % 7 - 3) * 0.25f * 2);
      EXPECT_EQ(wo->data_as<const float>()[9], (9 % 7 - 3) * 0.25f * 3);
    }
  }
}

}  // namespace
}  // namespace qforge

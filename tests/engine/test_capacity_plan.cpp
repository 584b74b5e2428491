// Capacity planning (include/qforge/engine/capacity_plan.h): byte counts worked out by hand for a
// small config, the published 70B / 405B figures, KV bytes per token, the largest batch, errors,
// a cross-check against a real checkpoint's tensor sizes, and the `qforge plan` CLI.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "qforge/engine/capacity_plan.h"
#include "qforge/io/checkpoint_info.h"
#include "qforge/io/hf_config.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

// hidden 64, intermediate 128, 2 layers, 4 heads / 2 KV heads x 16, vocab 100, untied.
ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 256;
  return c;
}

PlanRequest tiny_request(QuantAlgo algo) {
  PlanRequest r;
  r.quant_config.quant_algo = algo;
  r.max_seq_len = 100;  // rounds up to 128 tokens in 32-token pages
  r.max_batch_size = 1;
  r.memory_budget_bytes = 1'000'000;
  return r;
}

CapacityPlan plan_or_die(const ModelConfig& m, const PlanRequest& r) {
  auto p = plan_capacity(m, r);
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  return p.ok() ? p.value() : CapacityPlan{};
}

uint64_t component(const CapacityPlan& p, const std::string& name) {
  for (const auto& c : p.breakdown) {
    if (c.name == name) return c.bytes;
  }
  ADD_FAILURE() << "no component " << name;
  return 0;
}

// Per layer: q [64,64], k [32,64], v [32,64], o [64,64], gate/up [128,64], down [64,128]:
// 4096 + 2048 + 2048 + 4096 + 8192 * 3 = 36864 params; 2 layers = 73728.
// Embedding and lm_head 100 x 64 = 6400 each; norms 2 * (64 + 64) + 64 = 320 f32 = 1280 bytes.
TEST(CapacityPlan, TinyBf16WeightsByHand) {
  const CapacityPlan p = plan_or_die(tiny_config(), tiny_request(QuantAlgo::NO_QUANT));
  EXPECT_EQ(p.params_linear, 73728u);
  EXPECT_EQ(p.params_total, 73728u + 6400u + 6400u + 320u);
  EXPECT_EQ(p.linear_weight_bytes, 2u * 73728u);
  EXPECT_EQ(component(p, "weights.embed_tokens"), 12800u);
  EXPECT_EQ(component(p, "weights.lm_head"), 12800u);
  EXPECT_EQ(component(p, "weights.attention"), 2u * 2u * 12288u);
  EXPECT_EQ(component(p, "weights.mlp"), 2u * 2u * 24576u);
  EXPECT_EQ(component(p, "weights.norms_biases"), 1280u);
  EXPECT_EQ(p.weight_bytes, 174336u);
  EXPECT_DOUBLE_EQ(p.linear_bits_per_weight, 16.0);
}

TEST(CapacityPlan, TinyQuantizedWeightsByHand) {
  const ModelConfig m = tiny_config();
  // FP8 per-tensor: codes + one f32 scale per matrix (7 per layer).
  EXPECT_EQ(plan_or_die(m, tiny_request(QuantAlgo::FP8)).linear_weight_bytes, 73728u + 14u * 4u);
  // INT4 g128: rows * ceil(cols / 128) groups of 64 code bytes + a 2-byte scale; the 64-wide rows
  // pad to a whole group. q 64*66, k 32*66, v 32*66, o 64*66, gate 128*66, up 128*66, down 64*66.
  const CapacityPlan int4 = plan_or_die(m, tiny_request(QuantAlgo::W4A16_AWQ));
  EXPECT_EQ(int4.linear_weight_bytes, 2u * (4224u + 2112u + 2112u + 4224u + 8448u + 8448u + 4224u));
  EXPECT_EQ(int4.weight_bytes, 67584u + 25600u + 1280u);
  // INT4 g32 has no padding here: 2 groups of 16 + 2 bytes per 64-wide row.
  PlanRequest g32 = tiny_request(QuantAlgo::W4A16);
  g32.quant_config.group_size = 32;
  EXPECT_EQ(plan_or_die(m, g32).linear_weight_bytes, 73728u / 32u * 18u);
  // NVFP4: 9 bytes per 16 weights + one f32 global scale per matrix.
  EXPECT_EQ(plan_or_die(m, tiny_request(QuantAlgo::NVFP4)).linear_weight_bytes,
            73728u / 16u * 9u + 14u * 4u);
  // MXFP4: 17 bytes per 32 weights.
  EXPECT_EQ(plan_or_die(m, tiny_request(QuantAlgo::W4A16_MXFP4)).linear_weight_bytes,
            73728u / 32u * 17u);
  // Excluding the MLP keeps it in bf16 (2 bytes/weight), as the quantizer would.
  PlanRequest ex = tiny_request(QuantAlgo::FP8);
  ex.quant_config.exclude_modules = {"lm_head", "*.mlp.*"};
  const CapacityPlan pex = plan_or_die(m, ex);
  EXPECT_EQ(component(pex, "weights.mlp"), 2u * 2u * 24576u);
  EXPECT_EQ(component(pex, "weights.attention"), 2u * (12288u + 4u * 4u));
}

TEST(CapacityPlan, TinyKvWorkspaceAndBatchByHand) {
  const ModelConfig m = tiny_config();
  PlanRequest r = tiny_request(QuantAlgo::NO_QUANT);
  CapacityPlan p = plan_or_die(m, r);
  // 2 (K and V) * 2 layers * 2 KV heads * 16 * 2 bytes.
  EXPECT_EQ(p.kv_bytes_per_token, 256u);
  EXPECT_EQ(p.kv_tokens_per_sequence, 128);
  EXPECT_EQ(p.kv_bytes_per_sequence, 32768u);
  EXPECT_EQ(p.kv_scale_bytes, 0u);
  // T = max(100, 1) tokens in f16: residual + normed 2*100*64*2 = 25600; attention stage
  // 100*(64 + 2*32 + 64)*2 + 4 heads*100*4 = 40000; MLP stage 100*2*128*2 = 51200 (the larger);
  // logits 1*100*4 = 400.
  EXPECT_EQ(component(p, "workspace.activations"), 25600u + 51200u);
  EXPECT_EQ(component(p, "workspace.logits"), 400u);
  EXPECT_EQ(p.workspace_bytes, 77200u);
  EXPECT_EQ(p.total_bytes, 174336u + 32768u + 77200u);
  uint64_t sum = 0;
  for (const auto& c : p.breakdown) sum += c.bytes;
  EXPECT_EQ(sum, p.total_bytes);

  // total(B) = 174336 + 76800 + B * (32768 + 400) for B <= 100: a 600000-byte budget holds
  // floor((600000 - 251136) / 33168) = 10 sequences.
  r.memory_budget_bytes = 600000;
  r.max_batch_size.reset();
  p = plan_or_die(m, r);
  EXPECT_EQ(p.max_batch_that_fits, 10);
  EXPECT_EQ(p.batch, 10);
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.total_bytes, 251136u + 10u * 33168u);
  // At batch 20 it does not fit, by exactly the excess.
  r.max_batch_size = 20;
  p = plan_or_die(m, r);
  EXPECT_FALSE(p.fits);
  EXPECT_EQ(p.max_batch_that_fits, 10);
  EXPECT_EQ(p.shortfall_bytes, 251136u + 20u * 33168u - 600000u);
  // Budget below one sequence: nothing fits; the shortfall is for one sequence.
  r.memory_budget_bytes = 200000;
  r.max_batch_size.reset();
  p = plan_or_die(m, r);
  EXPECT_EQ(p.max_batch_that_fits, 0);
  EXPECT_FALSE(p.fits);
  EXPECT_EQ(p.batch, 1);
  EXPECT_EQ(p.shortfall_bytes, 284304u - 200000u);

  // FP8 KV: 1 byte per element plus one f32 K and V scale per layer; FP8 activations add a
  // T * max(h, i) byte buffer.
  r = tiny_request(QuantAlgo::FP8);
  r.kv_cache = KvCacheStorage::kFp8;
  p = plan_or_die(m, r);
  EXPECT_EQ(p.kv_bytes_per_token, 128u);
  EXPECT_EQ(p.kv_scale_bytes, 2u * 2u * 4u);
  EXPECT_EQ(p.kv_bytes_total, 128u * 128u + 16u);
  EXPECT_EQ(component(p, "workspace.activations"), 25600u + 51200u + 100u * 128u);
  r.quant_config.kv_cache_per_head = true;
  EXPECT_EQ(plan_or_die(m, r).kv_scale_bytes, 2u * 2u * 2u * 4u);
  // An explicit max_num_tokens sets T; at T = 10 the attention stage is the larger:
  // 10*192*2 + 4*100*4 = 5440 against the MLP's 10*256*2 = 5120.
  r = tiny_request(QuantAlgo::NO_QUANT);
  r.max_num_tokens = 10;
  EXPECT_EQ(component(plan_or_die(m, r), "workspace.activations"), 2560u + 5440u);
}

TEST(CapacityPlan, Llama70bPublishedFigures) {
  const ModelConfig m = model_preset("llama-3.1-70b").value();
  PlanRequest r;
  r.max_seq_len = 8192;
  r.memory_budget_bytes = 1'000'000'000'000;
  // Per layer: q/o 8192^2, k/v 1024 x 8192, gate/up/down 8192 x 28672 = 855,638,016 params.
  const uint64_t linear = 80ull * 855'638'016ull;
  const uint64_t embed = 128256ull * 8192ull;
  const CapacityPlan bf16 = plan_or_die(m, r);
  EXPECT_EQ(bf16.params_linear, linear);
  EXPECT_EQ(bf16.params_total, 70'553'706'496ull);  // the published 70.6B
  EXPECT_EQ(bf16.weight_bytes, 2 * (linear + 2 * embed) + 4ull * (80 * 2 * 8192 + 8192));
  EXPECT_NEAR(bf16.weight_bytes / 1e9, 141.1, 0.05);
  // KV bytes per token in f16: 2 * 80 layers * 8 KV heads * 128 * 2 bytes.
  EXPECT_EQ(bf16.kv_bytes_per_token, 327'680u);
  EXPECT_EQ(kv_cache_bytes_per_token(m, KvCacheStorage::kF16), 327'680u);
  EXPECT_EQ(kv_cache_bytes_per_token(m, KvCacheStorage::kFp8), 163'840u);
  EXPECT_EQ(kv_cache_bytes_per_token(m, KvCacheStorage::kF32), 655'360u);

  r.quant_config.quant_algo = QuantAlgo::FP8;
  const CapacityPlan fp8 = plan_or_die(m, r);
  EXPECT_EQ(fp8.linear_weight_bytes, linear + 80 * 7 * 4);
  EXPECT_NEAR(static_cast<double>(fp8.linear_weight_bytes) / bf16.linear_weight_bytes, 0.5, 1e-6);
  r.quant_config.quant_algo = QuantAlgo::W4A16_AWQ;  // g128: 8192 and 28672 divide evenly
  const CapacityPlan int4 = plan_or_die(m, r);
  EXPECT_EQ(int4.linear_weight_bytes, linear / 64 * 33);  // 4.125 / 8 bytes per weight
  EXPECT_NEAR(static_cast<double>(int4.linear_weight_bytes) / bf16.linear_weight_bytes, 4.125 / 16,
              1e-12);
  EXPECT_DOUBLE_EQ(int4.linear_bits_per_weight, 4.125);
  EXPECT_NEAR(int4.weight_bytes / 1e9, 39.5, 0.05);  // 35.3 GB linears + 4.2 GB bf16 embeddings
  r.quant_config.quant_algo = QuantAlgo::NVFP4;
  const CapacityPlan nvfp4 = plan_or_die(m, r);
  EXPECT_EQ(nvfp4.linear_weight_bytes, linear / 16 * 9 + 80 * 7 * 4);
  EXPECT_NEAR(static_cast<double>(nvfp4.linear_weight_bytes) / bf16.linear_weight_bytes, 4.5 / 16,
              1e-6);
}

TEST(CapacityPlan, Llama405bAndTensorParallel) {
  const ModelConfig m = model_preset("llama-3.1-405b").value();
  PlanRequest r;
  r.max_seq_len = 8192;
  r.memory_budget_bytes = 1'000'000'000'000;
  const CapacityPlan one = plan_or_die(m, r);
  EXPECT_EQ(one.params_total, 405'853'388'800ull);  // the published 405.9B
  EXPECT_EQ(one.kv_bytes_per_token, 2u * 126u * 8u * 128u * 2u);

  // tp 8: every linear splits evenly, the vocab splits 16032 rows per GPU, one KV head per GPU.
  r.tensor_parallel = 8;
  const CapacityPlan tp8 = plan_or_die(m, r);
  EXPECT_EQ(tp8.params_total, one.params_total);  // whole-model count
  EXPECT_EQ(tp8.linear_weight_bytes, one.linear_weight_bytes / 8);
  EXPECT_EQ(component(tp8, "weights.embed_tokens"), 16032ull * 16384ull * 2ull);
  EXPECT_EQ(tp8.kv_heads_per_gpu, 1);
  EXPECT_EQ(tp8.kv_bytes_per_token, one.kv_bytes_per_token / 8);
  // tp 16 > 8 KV heads: each GPU keeps one replicated KV head.
  r.tensor_parallel = 16;
  const CapacityPlan tp16 = plan_or_die(m, r);
  EXPECT_EQ(tp16.kv_heads_per_gpu, 1);
  EXPECT_EQ(tp16.kv_bytes_per_token, tp8.kv_bytes_per_token);
  EXPECT_FALSE(tp16.notes.empty());
}

TEST(CapacityPlan, MaxBatchAgreesWithTotals) {
  // The largest batch is the last one whose total fits: B fits, B + 1 does not.
  const ModelConfig m = model_preset("llama-3.1-8b").value();
  PlanRequest r;
  r.quant_config.quant_algo = QuantAlgo::FP8;
  r.kv_cache = KvCacheStorage::kFp8;
  r.max_seq_len = 8192;
  r.memory_budget_bytes = usable_memory_bytes(80, 0.9).value();
  const CapacityPlan p = plan_or_die(m, r);
  ASSERT_GT(p.max_batch_that_fits, 1);
  EXPECT_TRUE(p.fits);
  EXPECT_LE(p.total_bytes, r.memory_budget_bytes);
  r.max_batch_size = p.max_batch_that_fits + 1;
  const CapacityPlan over = plan_or_die(m, r);
  EXPECT_FALSE(over.fits);
  EXPECT_EQ(over.shortfall_bytes, over.total_bytes - r.memory_budget_bytes);
  // The KV pool is what is left: (budget - weights) / KV per sequence bounds the batch.
  EXPECT_LE(static_cast<uint64_t>(p.max_batch_that_fits),
            (r.memory_budget_bytes - p.weight_bytes) / p.kv_bytes_per_sequence);
}

TEST(CapacityPlan, PresetsAreValidAndPublishedShapes) {
  for (const ModelPreset& p : model_presets()) {
    EXPECT_TRUE(validate_model_config(p.config).ok()) << p.name;
  }
  const ModelConfig q72 = model_preset("qwen2.5-72b").value();
  EXPECT_EQ(q72.intermediate_size, 29568);
  EXPECT_EQ(q72.vocab_size, 152064);
  EXPECT_TRUE(q72.attention_bias);
  const ModelConfig l1 = model_preset("llama-3.2-1b").value();
  EXPECT_TRUE(l1.tie_word_embeddings);
  EXPECT_EQ(l1.head_dim, 64);
  // Qwen2.5-7B is 7.62B parameters (q/k/v biases included), Llama-3.2-1B 1.24B (tied).
  PlanRequest r;
  r.memory_budget_bytes = 1;
  EXPECT_EQ(plan_or_die(model_preset("qwen2.5-7b").value(), r).params_total, 7'615'616'512ull);
  EXPECT_EQ(plan_or_die(l1, r).params_total, 1'235'814'400ull);
  EXPECT_EQ(plan_or_die(model_preset("mistral-7b").value(), r).params_total, 7'248'023'552ull);

  EXPECT_EQ(gpu_preset("h200").value().memory_gb, 141);
  EXPECT_EQ(gpu_preset("b200").value().memory_gb, 192);
  EXPECT_EQ(usable_memory_bytes(80, 0.9).value(), 72'000'000'000ull);
  const auto bad_model = model_preset("llama-9");
  ASSERT_FALSE(bad_model.ok());
  EXPECT_NE(bad_model.error().message().find("llama-3.1-405b"), std::string::npos);
  const auto bad_gpu = gpu_preset("h300");
  ASSERT_FALSE(bad_gpu.ok());
  EXPECT_NE(bad_gpu.error().message().find("h200"), std::string::npos);
  EXPECT_FALSE(usable_memory_bytes(0, 0.9).ok());
  EXPECT_FALSE(usable_memory_bytes(80, 1.5).ok());
  EXPECT_FALSE(usable_memory_bytes(80, 0).ok());
}

TEST(CapacityPlan, BadInputIsAnErrorNamingTheField) {
  const ModelConfig m = model_preset("llama-3.1-70b").value();
  auto expect_error = [&](const PlanRequest& r, const std::string& needle) {
    auto p = plan_capacity(m, r);
    ASSERT_FALSE(p.ok()) << needle;
    EXPECT_NE(p.error().to_string().find(needle), std::string::npos) << p.error().to_string();
  };
  PlanRequest r;
  r.max_seq_len = 0;
  expect_error(r, "max_seq_len");
  r = PlanRequest{};
  r.max_batch_size = 0;
  expect_error(r, "max_batch_size");
  r = PlanRequest{};
  r.tensor_parallel = 3;
  expect_error(r, "num_attention_heads 64");
  r.tensor_parallel = 0;
  expect_error(r, "tensor_parallel");
  r = PlanRequest{};
  r.kv_cache_block_size = 0;
  expect_error(r, "kv_cache_block_size");
  r = PlanRequest{};
  r.dense_dtype = DType::I8;
  expect_error(r, "dense_dtype");
  r = PlanRequest{};
  r.quant_config.quant_algo = QuantAlgo::INT8;
  expect_error(r, "KV-cache format");
  r = PlanRequest{};
  r.quant_config.quant_algo = QuantAlgo::MIXED_PRECISION;
  expect_error(r, "auto_quantize_bits");
  r.quant_config.auto_quantize_bits = 4.8;
  EXPECT_TRUE(plan_capacity(m, r).ok());
  r = PlanRequest{};
  r.quant_config.quant_algo = QuantAlgo::W4A16;
  r.quant_config.group_size = 96;
  expect_error(r, "group_size");
  ModelConfig broken = m;
  broken.hidden_size = 0;
  auto p = plan_capacity(broken, PlanRequest{});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().to_string().find("hidden_size"), std::string::npos);
}

// The plan's BF16 accounting matches the tensors a real checkpoint stores (llama-mix-16m is
// bf16 on disk; the plan counts norms as f32, the file as bf16).
TEST(CapacityPlan, MatchesRealCheckpointTensorBytes) {
  const auto dir = test::shared_dir() / "models" / "llama-mix-16m";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "missing " << dir;
  const ModelConfig m = load_hf_config(dir).value();
  const CheckpointInfo info = describe_checkpoint(dir.string()).value();
  uint64_t matrix_bytes = 0, vector_params = 0;
  for (const auto& t : info.tensors) {
    ASSERT_EQ(t.dtype, "bf16") << t.name;
    if (t.shape.size() == 2) {
      matrix_bytes += t.nbytes;
    } else {
      vector_params += static_cast<uint64_t>(t.numel);
    }
  }
  PlanRequest r;
  r.memory_budget_bytes = 1'000'000'000;
  const CapacityPlan p = plan_or_die(m, r);
  EXPECT_EQ(p.params_total, static_cast<uint64_t>(info.total_params()));
  EXPECT_EQ(p.weight_bytes, matrix_bytes + 4 * vector_params);
}

TEST(CapacityPlanCli, PresetTableJsonCompareAndErrors) {
  using test::run_cli;
  auto r = run_cli(
      "plan --preset llama-3.1-70b --gpu h200 --qformat fp8 --kv-cache fp8 --max-seq-len 8192");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("163840 bytes/token"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Verdict: fits"), std::string::npos) << r.out;

  r = run_cli(
      "plan --preset llama-3.1-70b --gpu h200 --qformat fp8 --kv-cache fp8 --max-seq-len 8192 "
      "--json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  PlanRequest req;
  req.quant_config.quant_algo = QuantAlgo::FP8;
  req.kv_cache = KvCacheStorage::kFp8;
  req.max_seq_len = 8192;
  req.memory_budget_bytes = 126'900'000'000ull;  // 141 GB x 0.9
  const CapacityPlan p = plan_or_die(model_preset("llama-3.1-70b").value(), req);
  ASSERT_EQ(j["plans"].size(), 1u);
  EXPECT_EQ(j["budget_bytes"].get<uint64_t>(), req.memory_budget_bytes);
  EXPECT_EQ(j["plans"][0]["weight_bytes"].get<uint64_t>(), p.weight_bytes);
  EXPECT_EQ(j["plans"][0]["kv_bytes_per_token"].get<uint64_t>(), 163840u);
  EXPECT_EQ(j["plans"][0]["max_batch_that_fits"].get<int64_t>(), p.max_batch_that_fits);

  r = run_cli("plan --preset llama-3.1-405b --gpu b200 --compare --kv-cache fp8 --tp 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* f : {"bf16", "fp8", "int8_wo", "int4_awq", "nvfp4", "mxfp4"}) {
    EXPECT_NE(r.out.find(std::string("\n") + f + " "), std::string::npos) << f << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("per GPU"), std::string::npos);

  r = run_cli("plan --model " + test::quote(test::shared_dir() / "models" / "llama-mix-16m") +
              " --memory-gb 1 --max-seq-len 2048 --max-batch-size 4");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("batch 4"), std::string::npos) << r.out;

  r = run_cli("plan --preset llama-9 --gpu h100");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("llama-3.1-405b"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-8b --gpu h300");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("rtx4090"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-8b --gpu h100 --qformat int3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("int3"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-8b");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("--gpu"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-70b --gpu h100 --tp 3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("tensor_parallel"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-8b --gpu h100 --qformat auto");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("auto_quantize_bits"), std::string::npos) << r.out;
  r = run_cli("plan --preset llama-3.1-8b --gpu h100 --qformat auto --auto-quantize-bits 6");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("6.000 bits/weight"), std::string::npos) << r.out;
  r = run_cli("plan --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--usable-fraction"), std::string::npos);
}

}  // namespace
}  // namespace qforge

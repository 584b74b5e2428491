// Engines built from real checkpoints: logits against the reference runtime (bit for bit for
// F32 weights; within named budgets for F16 and for every quantized format against the
// fake-quantized checkpoint), greedy text on stories260K, what the file records, the cache.
#include <cstdlib>

#include "engine/engine_test_util.h"
#include "qforge/runtime/generate.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {
namespace {

using namespace test;

class EngineBuild : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_shared()) GTEST_SKIP() << "needs ../shared models and data";
  }
};

// The engine's dense kernel sums each output in one fixed order whatever the batch (the
// reference picks a path by batch size), so an F32 engine matches up to summation order.
TEST_F(EngineBuild, F32EngineGivesTheReferenceLogits) {
  auto ref = Model::load(mix_dir().string());
  ASSERT_TRUE(ref.ok()) << ref.error().to_string();
  auto engine = build_and_load(mix_dir(), small_build_config(DType::F32), "mix_f32.engine");
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->layer(0).q_proj->format_name(), "f32");
  const auto ids = probe_ids(ref.value()->config().vocab_size);
  const auto a = all_logits(ref.value(), ids);
  const auto b = all_logits(engine, ids);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_LT(rel_l2(a, b), 1e-6);
}

TEST_F(EngineBuild, F16AndBf16EnginesTrackTheReference) {
  auto ref = Model::load(mix_dir().string());
  ASSERT_TRUE(ref.ok());
  const auto ids = probe_ids(ref.value()->config().vocab_size);
  const auto a = all_logits(ref.value(), ids);
  // llama-mix ships BF16 weights: a BF16 engine holds the same values, an F16 one rounds them.
  auto bf16 = build_and_load(mix_dir(), small_build_config(DType::BF16), "mix_bf16.engine");
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->layer(0).q_proj->format_name(), "bf16");
  EXPECT_LT(rel_l2(a, all_logits(bf16, ids)), 1e-5);
  auto f16 = build_and_load(mix_dir(), small_build_config(DType::F16), "mix_f16.engine");
  ASSERT_NE(f16, nullptr);
  EXPECT_LT(rel_l2(a, all_logits(f16, ids)), 2e-3);
  // Packed weights: the BF16 engine reads half the bytes of the F32 one.
  auto f32 = build_and_load(mix_dir(), small_build_config(DType::F32), "mix_f32b.engine");
  ASSERT_NE(f32, nullptr);
  EXPECT_NEAR(static_cast<double>(bf16->decode_weight_bytes()) /
                  static_cast<double>(f32->decode_weight_bytes()),
              0.5, 0.01);
}

struct FormatCase {
  QuantAlgo algo;
  bool zero_point;
  // Relative L2 of all logits, engine vs the fake-quantized checkpoint. Weight-only formats: the
  // same dequantized values summed in another order (1e-5 level). Formats that round activations
  // (FP8, INT8, NVFP4): a last-bit difference upstream flips the rounding of some activation
  // elements, each by a whole step of the activation grid, so the budget is a fraction of the
  // quantization error itself (reference vs the float model), also asserted. FP8_BLOCK_SCALES
  // derives a scale per token and 128 channels: a last-bit change of a group's largest element
  // rescales all 128, so it gets the widest fraction. Given identical inputs every kernel matches
  // the oracle within 2e-6 (test_packed_linear.cpp).
  double budget;
  double fraction_of_quant_error;  // 0: only `budget`
};

class EngineQuantized : public EngineBuild, public ::testing::WithParamInterface<FormatCase> {};

TEST_P(EngineQuantized, LogitsMatchTheFakeQuantReference) {
  const FormatCase& fc = GetParam();
  const fs::path ckpt = quantized_mix(fc.algo, QuantAlgo::NO_QUANT, fc.zero_point);
  auto ref = Model::load(ckpt.string());
  ASSERT_TRUE(ref.ok()) << ref.error().to_string();
  auto base = Model::load(mix_dir().string());
  ASSERT_TRUE(base.ok());
  const std::string file = std::string("mix_") + std::string(quant_algo_name(fc.algo)) +
                           (fc.zero_point ? "_zp" : "") + ".engine";
  // llama-mix ships BF16 weights: a BF16 build keeps the unquantized ones exactly.
  auto engine = build_and_load(ckpt, small_build_config(DType::BF16), file);
  ASSERT_NE(engine, nullptr);
  const auto ids = probe_ids(ref.value()->config().vocab_size);
  const auto want = all_logits(ref.value(), ids);
  const double err = rel_l2(want, all_logits(engine, ids));
  const double quant_err = rel_l2(all_logits(base.value(), ids), want);
  EXPECT_LT(err, fc.budget) << quant_algo_name(fc.algo) << " (quantization error " << quant_err
                            << ")";
  if (fc.fraction_of_quant_error > 0) {
    EXPECT_LT(err, fc.fraction_of_quant_error * quant_err) << quant_algo_name(fc.algo);
  }
  // The engine holds the packed bytes, never a dequantized F32 copy: what a decode step reads
  // is the checkpoint's storage (up to the 16-row panel padding and per-panel scale layout).
  const double ratio = static_cast<double>(engine->decode_weight_bytes()) /
                       static_cast<double>(ref.value()->decode_weight_bytes());
  EXPECT_GT(ratio, 0.97);
  EXPECT_LT(ratio, 1.05);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, EngineQuantized,
    ::testing::Values(FormatCase{QuantAlgo::W8A16, false, 1e-4, 0},
                      FormatCase{QuantAlgo::W4A16, false, 1e-4, 0},
                      FormatCase{QuantAlgo::W4A16, true, 1e-4, 0},
                      FormatCase{QuantAlgo::W4A16_MXFP4, false, 1e-4, 0},
                      FormatCase{QuantAlgo::FP8, false, 2e-2, 0.25},
                      FormatCase{QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN, false, 2e-2, 0.25},
                      FormatCase{QuantAlgo::FP8_BLOCK_SCALES, false, 2e-2, 0.5},
                      FormatCase{QuantAlgo::W8A8_SQ_PER_CHANNEL, false, 2e-2, 0.25},
                      FormatCase{QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN, false, 2e-2,
                                 0.25},
                      FormatCase{QuantAlgo::W4A8_AWQ, false, 2e-2, 0.25},
                      FormatCase{QuantAlgo::NVFP4, false, 2e-2, 0.25}),
    [](const auto& info) {
      return std::string(quant_algo_name(info.param.algo)) + (info.param.zero_point ? "_zp" : "");
    });

// Kernel selection times every variant per layer shape and keeps one; the variants compute the
// same bits, so the engine's logits equal those of an engine built without selection.
TEST_F(EngineBuild, KernelSelectionTimesEveryVariantAndNeverChangesLogits) {
  const fs::path ckpt = quantized_mix(QuantAlgo::W4A16);
  BuildConfig plain = small_build_config(DType::BF16);
  plain.kernel_selection = false;
  BuildConfig selected = small_build_config(DType::BF16);
  const fs::path out = binary_scratch() / "mix_w4_selected.engine";
  auto report = build_engine(ckpt.string(), selected, out.string());
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  // One choice per distinct [rows, cols] shape of the quantized linears (q, k/v, o, gate/up,
  // down of llama-mix: 4 or 5 shapes), each listing the timings of all four w4a16 variants.
  ASSERT_GE(report.value().kernel_choices.size(), 3u);
  for (const std::string& c : report.value().kernel_choices) {
    for (const char* v : {"w4a16/0:", "w4a16/1:", "w4a16/2:", "w4a16/3:"}) {
      EXPECT_NE(c.find(v), std::string::npos) << c;
    }
    EXPECT_NE(c.find("chose w4a16/"), std::string::npos) << c;
  }
  auto engine = load_engine(out.string());
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  auto unselected = build_and_load(ckpt, plain, "mix_w4_unselected.engine");
  ASSERT_NE(unselected, nullptr);
  const auto ids = probe_ids(unselected->config().vocab_size);
  EXPECT_EQ(all_logits(engine.value().model, ids), all_logits(unselected, ids));
}

// Greedy text of stories260K engines equals the reference runtime on the same checkpoint (the
// FP16 engine: on the checkpoint exported with F16 weights, which it reads as they are).
TEST_F(EngineBuild, StoriesGreedyTextIdenticalForFp16W8A16AndFp8Engines) {
  struct Case {
    std::string name;
    std::optional<QuantAlgo> algo;
    DType precision;
    bool rounds_activations;
  };
  for (const Case& c : {Case{"fp16", std::nullopt, DType::F16, false},
                        Case{"w8a16", QuantAlgo::W8A16, DType::F32, false},
                        Case{"fp8", QuantAlgo::FP8, DType::F32, true}}) {
    const fs::path hf = stories_hf(c.precision);
    fs::path ckpt = hf;
    if (c.algo) {
      ckpt = binary_scratch() / ("stories_" + c.name);
      QuantizeOptions o;
      o.model_dir = hf.string();
      o.output_dir = ckpt.string();
      o.quant_config.quant_algo = *c.algo;
      o.calib.paths = {
          (shared_dir() / "data" / "tinystories" / "tinystories_valid_first1000.txt").string()};
      o.calib.calib_size = 8;
      o.calib.calib_max_seq_length = 64;
      o.show_progress = false;
      if (!fs::exists(o.calib.paths[0])) {
        o.calib.paths = {wiki_valid().string()};
      }
      auto q = quantize(o);
      ASSERT_TRUE(q.ok()) << q.error().to_string();
    }
    auto ref = Model::load(ckpt.string());
    ASSERT_TRUE(ref.ok()) << ref.error().to_string();
    const fs::path file = binary_scratch() / ("stories_" + c.name + ".engine");
    ASSERT_TRUE(build_engine(ckpt.string(), small_build_config(c.precision), file.string()).ok());
    auto engine = load_engine(file.string());
    ASSERT_TRUE(engine.ok()) << engine.error().to_string();
    ASSERT_NE(engine.value().tokenizer, nullptr);
    const Tokenizer& tok = *engine.value().tokenizer;
    auto prompt = tok.encode("Once upon a time, there was a little", true);
    ASSERT_TRUE(prompt.ok());
    SamplingParams sp;
    sp.max_tokens = 64;
    const auto greedy = [&](const std::shared_ptr<const Model>& m) {
      auto s = InferenceSession::create(m);
      auto g = generate(s.value(), tok, prompt.value(), sp);
      EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().to_string());
      return g.ok() ? g.value().output_ids : std::vector<int32_t>{};
    };
    const auto want = greedy(ref.value());
    const auto got = greedy(engine.value().model);
    EXPECT_GE(want.size(), 16u) << c.name;
    if (!c.rounds_activations) {
      EXPECT_EQ(got, want) << c.name;
      continue;
    }
    // FP8 activations: the engine sums in another order than the reference, and a last-bit
    // difference can flip the FP8 rounding of an activation. Greedy ids must agree until a
    // near-tie of the reference (its logits of the two tokens within kTie), if they part at all.
    size_t p = 0;
    while (p < want.size() && p < got.size() && want[p] == got[p]) ++p;
    if (p == want.size() && p == got.size()) continue;
    ASSERT_LT(p, std::min(want.size(), got.size())) << c.name << ": lengths differ";
    std::vector<int32_t> context = prompt.value();
    context.insert(context.end(), want.begin(), want.begin() + static_cast<std::ptrdiff_t>(p));
    auto s = InferenceSession::create(ref.value());
    auto logits = s.value().forward(context, LogitsMode::kLast);
    ASSERT_TRUE(logits.ok());
    const float* l = logits.value().data_as<const float>();
    constexpr float kTie = 0.05f;
    EXPECT_LT(l[want[p]] - l[got[p]], kTie)
        << c.name << ": greedy ids part at token " << p << " where the reference prefers "
        << want[p] << " by " << l[want[p]] - l[got[p]];
    EXPECT_GE(p, 16u) << c.name;
  }
}

TEST_F(EngineBuild, RecordsBuildConfigKvCacheAndTokenizer) {
  const fs::path ckpt = quantized_mix(QuantAlgo::W4A16, QuantAlgo::FP8);
  BuildConfig bc = small_build_config(DType::BF16);
  bc.max_batch_size = 3;
  bc.kv_cache_block_size = 16;
  const fs::path file = binary_scratch() / "mix_w4_kvfp8.engine";
  auto r = build_engine(ckpt.string(), bc, file.string());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto e = load_engine(file.string());
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  EXPECT_EQ(e.value().build_config.max_batch_size, 3);
  EXPECT_EQ(e.value().build_config.kv_cache_block_size, 16);
  EXPECT_EQ(e.value().build_config.precision, DType::BF16);
  EXPECT_EQ(e.value().kv_cache_storage, KvCacheStorage::kFp8);
  auto ref = Model::load(ckpt.string());
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(e.value().model->kv_cache_quant().k_scale, ref.value()->kv_cache_quant().k_scale);
  ASSERT_NE(e.value().tokenizer, nullptr);
  auto ids = e.value().tokenizer->encode("Hello world", true);
  ASSERT_TRUE(ids.ok());
  auto tok = load_tokenizer(mix_dir().string());
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(ids.value(), tok.value()->encode("Hello world", true).value());
  // An FP8 KV cache needs calibrated scales.
  BuildConfig want_int8 = bc;
  want_int8.kv_cache_storage = KvCacheStorage::kInt8;
  auto refused = build_engine(ckpt.string(), want_int8, (binary_scratch() / "x.engine").string());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().to_string().find("calibrated"), std::string::npos);
}

TEST_F(EngineBuild, OpenEngineBuildsOnceIntoTheCacheAndReusesIt) {
  const fs::path cache = binary_scratch() / "cache";
  ::setenv("QFORGE_CACHE", cache.c_str(), 1);
  BuildConfig bc = small_build_config(DType::BF16);
  bc.kernel_selection = false;
  auto first = open_engine(stories_hf().string(), bc);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const auto mtime = fs::last_write_time(files[0]);
  auto second = open_engine(stories_hf().string(), bc);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(fs::last_write_time(files[0]), mtime);
  // Another build config is another engine.
  bc.max_batch_size = 2;
  ASSERT_TRUE(open_engine(stories_hf().string(), bc).ok());
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(cache)) ++n;
  EXPECT_EQ(n, 2u);
  ::unsetenv("QFORGE_CACHE");
}

}  // namespace
}  // namespace qforge

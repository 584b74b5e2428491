// llama-mix-16m (../shared/models: HF layout, BF16 shards, GQA 6/2, untied head) against
// transformers' float32 outputs: logits of ref_input_ids.npy and the greedy continuations of
// reference.json.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "model_test_util.h"
#include "qforge/runtime/npy.h"

namespace qforge {
namespace {

using test::read_json;
using test::shared_dir;

TEST(HfReference, LlamaMixLogitsMatchTransformers) {
  const auto dir = shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE_SHARED(dir / "ref_logits_fp32.npy");
  auto model = test::load_or_die(dir.string());
  ASSERT_NE(model, nullptr);
  auto ids_npy = read_npy(dir / "ref_input_ids.npy");
  auto ref_npy = read_npy(dir / "ref_logits_fp32.npy");
  ASSERT_TRUE(ids_npy.ok() && ref_npy.ok());
  std::vector<int32_t> ids(ids_npy->values.begin(), ids_npy->values.end());
  const int64_t vocab = model->config().vocab_size;
  ASSERT_EQ(ref_npy->shape, (std::vector<int64_t>{static_cast<int64_t>(ids.size()), vocab}));

  // Batched prefill and token-by-token decode must both match.
  const auto batch = test::all_logits(model, ids);
  std::vector<float> decode;
  {
    auto session = InferenceSession::create(model);
    ASSERT_TRUE(session.ok());
    for (int32_t id : ids) {
      auto l = session->forward(std::span<const int32_t>(&id, 1), LogitsMode::kLast);
      ASSERT_TRUE(l.ok());
      decode.insert(decode.end(), l->data_as<float>(), l->data_as<float>() + vocab);
    }
  }
  for (const std::vector<float>* got : {&batch, static_cast<const std::vector<float>*>(&decode)}) {
    double num = 0;
    double den = 0;
    int argmax_mismatch = 0;
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* row = got->data() + t * vocab;
      const double* ref = ref_npy->values.data() + t * vocab;
      for (int64_t i = 0; i < vocab; ++i) {
        num += (row[i] - ref[i]) * (row[i] - ref[i]);
        den += ref[i] * ref[i];
      }
      const int64_t ref_arg = std::max_element(ref, ref + vocab) - ref;
      argmax_mismatch += test::argmax(row, vocab) != ref_arg;
    }
    const double rel = std::sqrt(num / den);
    std::printf("llama-mix-16m %s: relative L2 = %.3g, argmax mismatches = %d of %zu\n",
                got == &batch ? "prefill" : "decode", rel, argmax_mismatch, ids.size());
    EXPECT_LT(rel, 1e-4);
    EXPECT_EQ(argmax_mismatch, 0);
  }
}

TEST(HfReference, LlamaMixGreedyContinuations) {
  const auto dir = shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE_SHARED(dir / "reference.json");
  auto model = test::load_or_die(dir.string());
  ASSERT_NE(model, nullptr);
  const auto ref = read_json(dir / "reference.json");
  int checked = 0;
  for (const auto& [prompt, item] : ref["greedy"].items()) {
    const auto prompt_ids = item["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = item["output_ids"].get<std::vector<int32_t>>();
    // transformers' generate stops at EOS (id 2) or after max_new_tokens (= want's length here).
    const auto got = test::greedy(model, prompt_ids, static_cast<int64_t>(want.size()), 2);
    EXPECT_EQ(got, want) << "prompt: " << prompt;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace qforge

// The real llama2.c checkpoints in ../shared/models (stories260K: GQA 8/4 heads; aidreams260K:
// MHA) against their float64 reference files: greedy ids exactly, logits at positions 0-3.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "model_test_util.h"

namespace qforge {
namespace {

using test::read_json;
using test::shared_dir;

void check_reference(const std::string& name, const std::string& bin) {
  const auto dir = shared_dir() / "models" / name;
  QF_REQUIRE_SHARED(dir / bin);
  const auto ref = read_json(dir / "reference_greedy.json");
  auto model = test::load_or_die((dir / bin).string());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->config().rope_layout, RopeLayout::Interleaved);

  const auto prompt = ref["prompt_ids_with_bos"].get<std::vector<int32_t>>();
  const auto want = ref["all_ids"].get<std::vector<int32_t>>();
  const auto got = test::greedy(model, prompt, static_cast<int64_t>(want.size()));
  EXPECT_EQ(got, want) << name << ": greedy continuation differs";

  // Logits at positions 0..3 of the reference sequence.
  const auto ref_logits = ref["logits_at_positions_0_to_3"];
  const std::vector<int32_t> first4(want.begin(), want.begin() + 4);
  const auto logits = test::all_logits(model, first4);
  const int64_t vocab = model->config().vocab_size;
  double max_err = 0;
  for (int64_t p = 0; p < 4; ++p) {
    const auto row = ref_logits[p].get<std::vector<double>>();
    ASSERT_EQ(static_cast<int64_t>(row.size()), vocab);
    for (int64_t i = 0; i < vocab; ++i) {
      max_err = std::max(max_err, std::fabs(logits[p * vocab + i] - row[i]));
    }
  }
  // The reference prints 6 decimals: 1e-4 covers fp32 rounding plus the printed precision.
  EXPECT_LT(max_err, 1e-4) << name;
  std::printf("%s: max abs logit error at positions 0-3 = %.3g\n", name.c_str(), max_err);
}

TEST(Llama2cReference, Stories260KGreedyAndLogits) {
  check_reference("stories260K", "stories260K.bin");
}

TEST(Llama2cReference, Aidreams260KGreedyAndLogits) {
  check_reference("aidreams260K", "aidreams260K.bin");
}

}  // namespace
}  // namespace qforge

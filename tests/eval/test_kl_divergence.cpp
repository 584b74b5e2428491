// KL-divergence mode: a model against itself gives KLD 0, 100% top-1 agreement and PPL ratio 1
// (top-k and full-vocabulary log-prob files); against a perturbed copy a positive KLD, with the
// top-k+tail estimate a lower bound of the exact value; mismatched protocols are refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "eval_test_util.h"
#include "qforge/core/rng.h"
#include "qforge/eval/kl_divergence.h"
#include "qforge/io/model_loader.h"

namespace qforge {
namespace {

const auto kModel = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
const auto kText = test::shared_dir() / "data" / "tinystories" / "tinystories_valid_first1000.txt";

struct Fixture {
  std::shared_ptr<const Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  PplDataset dataset;
};

Fixture make_fixture(double noise) {
  Fixture f;
  auto loaded = load_model(kModel.string());
  EXPECT_TRUE(loaded.ok());
  if (noise > 0) {
    // A perturbed copy: every weight + N(0, noise^2), in owned F32 memory.
    LoadedModel copy;
    copy.config = loaded->config;
    copy.format = loaded->format;
    Rng rng(99);
    for (const auto& [name, view] : loaded->weights.tensors()) {
      auto data = std::make_shared<std::vector<float>>(view.data_as<const float>(),
                                                       view.data_as<const float>() + view.numel());
      for (float& x : *data) x += static_cast<float>(rng.normal(0.0, noise));
      auto v = TensorView::make(static_cast<const void*>(data->data()), DType::F32, view.shape());
      EXPECT_TRUE(copy.weights.add(name, *v, data).ok());
    }
    loaded = std::move(copy);
  }
  f.model = Model::create(std::move(loaded).value()).value();
  f.tokenizer = load_tokenizer_for_model(kModel.string(), "", 512).value();
  PerplexityOptions o;
  o.doc_separator = "<|endoftext|>";
  o.max_chunks = 6;
  f.dataset = make_ppl_dataset(test::read_text(kText), *f.tokenizer, o, "tinystories").value();
  return f;
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         (name + "_" + std::to_string(::getpid()) + ".bin");
}

void save_base(const Fixture& f, const std::filesystem::path& path, int64_t top_k) {
  auto writer =
      LogprobWriter::create(path, top_k, 512, f.dataset.scored_tokens, f.dataset.protocol);
  ASSERT_TRUE(writer.ok());
  auto session = InferenceSession::create(f.model).value();
  ASSERT_TRUE(evaluate_perplexity(session, f.dataset, writer->get(), false).ok());
  ASSERT_TRUE((*writer)->commit().ok());
}

KlDivergenceResult compare(const Fixture& f, const std::filesystem::path& base) {
  auto scorer = KlDivergenceScorer::open(base, 512, f.dataset.scored_tokens, f.dataset.protocol);
  EXPECT_TRUE(scorer.ok()) << scorer.error().to_string();
  auto session = InferenceSession::create(f.model).value();
  EXPECT_TRUE(evaluate_perplexity(session, f.dataset, scorer->get(), false).ok());
  return (*scorer)->finish().value();
}

TEST(KlDivergence, ModelAgainstItselfIsZero) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "missing " << kModel;
  const Fixture f = make_fixture(0.0);
  for (int64_t top_k : {int64_t{16}, int64_t{0}}) {
    const auto base = temp_file("qforge_kld_self_" + std::to_string(top_k));
    save_base(f, base, top_k);
    const KlDivergenceResult r = compare(f, base);
    EXPECT_EQ(r.tokens, f.dataset.scored_tokens);
    EXPECT_EQ(r.mean_kld, 0.0) << "top_k " << top_k;
    EXPECT_EQ(r.max_kld, 0.0);
    EXPECT_EQ(r.top1_agreement, 1.0);
    EXPECT_EQ(r.ppl_ratio, 1.0);
    EXPECT_EQ(r.ln_ppl_ratio, 0.0);
    std::filesystem::remove(base);
  }
}

TEST(KlDivergence, PerturbedCopyHasPositiveKld) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "missing " << kModel;
  const Fixture base_model = make_fixture(0.0);
  const Fixture perturbed = make_fixture(0.005);
  const auto topk_file = temp_file("qforge_kld_topk");
  const auto full_file = temp_file("qforge_kld_full");
  save_base(base_model, topk_file, 16);
  save_base(base_model, full_file, 0);
  const KlDivergenceResult topk = compare(perturbed, topk_file);
  const KlDivergenceResult full = compare(perturbed, full_file);
  std::printf(
      "perturbed stories260K: mean KLD %.5f (full) / %.5f (top-16 + tail), top-1 %.1f%%, "
      "PPL ratio %.4f\n",
      full.mean_kld, topk.mean_kld, 100 * full.top1_agreement, full.ppl_ratio);
  EXPECT_GT(full.mean_kld, 1e-3);
  EXPECT_LT(full.top1_agreement, 1.0);
  EXPECT_GT(full.p99_kld, full.median_kld);
  // Merging the tail can only lower KL (log-sum inequality); with 16 of 512 ids it stays close.
  EXPECT_LE(topk.mean_kld, full.mean_kld * (1 + 1e-6));
  EXPECT_GT(topk.mean_kld, 0.5 * full.mean_kld);
  EXPECT_EQ(topk.top1_agreement, full.top1_agreement);
  EXPECT_NEAR(topk.ppl_ratio, full.ppl_ratio, 1e-6);
  std::filesystem::remove(topk_file);
  std::filesystem::remove(full_file);
}

TEST(KlDivergence, RefusesAnotherProtocolOrABrokenFile) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "missing " << kModel;
  const Fixture f = make_fixture(0.0);
  const auto base = temp_file("qforge_kld_protocol");
  save_base(f, base, 8);
  auto other = KlDivergenceScorer::open(base, 512, f.dataset.scored_tokens, "another protocol");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message().find("another protocol"), std::string::npos);
  EXPECT_FALSE(
      KlDivergenceScorer::open(base, 1024, f.dataset.scored_tokens, f.dataset.protocol).ok());
  // Truncate: the size check names the file.
  std::filesystem::resize_file(base, std::filesystem::file_size(base) - 10);
  auto truncated = KlDivergenceScorer::open(base, 512, f.dataset.scored_tokens, f.dataset.protocol);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().message().find("truncated"), std::string::npos);
  std::filesystem::remove(base);
  EXPECT_FALSE(KlDivergenceScorer::open(base, 512, 1, "x").ok());  // missing file
}

}  // namespace
}  // namespace qforge

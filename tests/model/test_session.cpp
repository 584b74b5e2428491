// InferenceSession behaviour on a tiny synthetic model: slicing and decode agree with one
// prefill, rewind/reset replay identically, results do not depend on the thread count, and bad
// inputs (ids out of range, more tokens than the context) are errors that change nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "model_test_util.h"
#include "qforge/core/parallel.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/synthetic.h"

namespace qforge {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() /
           ("qforge_test_session_" + std::to_string(::getpid()));
    SynthOptions o;
    o.seed = 11;
    ASSERT_TRUE(write_synthetic_checkpoint(synthetic_preset("tiny").value(), o, dir_).ok());
    model_ = Model::load(dir_.string()).value();
  }
  static void TearDownTestSuite() {
    model_.reset();
    std::filesystem::remove_all(dir_);
  }
  static std::vector<int32_t> ids(int n) {
    std::vector<int32_t> v;
    for (int i = 0; i < n; ++i) v.push_back((i * 97 + 5) % 512);
    return v;
  }
  static inline std::filesystem::path dir_;
  static inline std::shared_ptr<const Model> model_;
};

TEST_F(SessionTest, SlicedPrefillAndDecodeMatchOnePrefill) {
  const auto input = ids(40);
  const auto whole = test::all_logits(model_, input);
  SessionOptions sliced;
  sliced.max_batch_tokens = 7;
  const auto pieces = test::all_logits(model_, input, sliced);
  ASSERT_EQ(whole.size(), pieces.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_NEAR(whole[i], pieces[i], 1e-4);
  // Last-token logits of a prefill equal the last row of kAll.
  auto session = InferenceSession::create(model_).value();
  auto last = session.forward(input, LogitsMode::kLast).value();
  for (int64_t v = 0; v < 512; ++v)
    EXPECT_NEAR(last.data_as<float>()[v], whole[39 * 512 + v], 1e-4);
  EXPECT_EQ(session.n_past(), 40);
}

TEST_F(SessionTest, RewindAndResetReplayExactly) {
  auto session = InferenceSession::create(model_).value();
  const auto input = ids(12);
  ASSERT_TRUE(session.forward(input, LogitsMode::kNone).ok());
  const int32_t next = 77;
  auto a = session.forward(std::span<const int32_t>(&next, 1)).value();
  ASSERT_TRUE(session.rewind(12).ok());
  auto b = session.forward(std::span<const int32_t>(&next, 1)).value();
  for (int64_t v = 0; v < 512; ++v) ASSERT_EQ(a.data_as<float>()[v], b.data_as<float>()[v]);
  EXPECT_FALSE(session.rewind(20).ok());
  session.reset();
  EXPECT_EQ(session.n_past(), 0);
}

TEST_F(SessionTest, ThreadCountDoesNotChangeTheLogits) {
  const auto input = ids(24);
  set_num_threads(1);
  const auto one = test::all_logits(model_, input);
  set_num_threads(3);
  const auto three = test::all_logits(model_, input);
  set_num_threads(0);
  EXPECT_EQ(one, three);
}

TEST_F(SessionTest, BadInputsAreErrorsThatChangeNothing) {
  SessionOptions o;
  o.context_length = 16;
  auto session = InferenceSession::create(model_, o).value();
  ASSERT_TRUE(session.forward(ids(10), LogitsMode::kNone).ok());
  auto too_long = session.forward(ids(7));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message().find("at most 6 more fit"), std::string::npos)
      << too_long.error().message();
  const std::vector<int32_t> bad = {3, 512};
  auto out_of_range = session.forward(bad);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.error().message().find("token id 512"), std::string::npos);
  EXPECT_EQ(session.n_past(), 10);
  EXPECT_FALSE(session.forward({}).ok());
  o.context_length = 4096;  // beyond max_position_embeddings (512)
  EXPECT_FALSE(InferenceSession::create(model_, o).ok());
}

// The plug-in point for other weight formats: a factory whose matrices wrap the dense ones.
class CountingMatrix final : public WeightMatrix {
 public:
  CountingMatrix(std::unique_ptr<WeightMatrix> inner, int* calls)
      : inner_(std::move(inner)), calls_(calls) {}
  int64_t rows() const override { return inner_->rows(); }
  int64_t cols() const override { return inner_->cols(); }
  std::string format_name() const override { return "counting-" + inner_->format_name(); }
  uint64_t storage_bytes() const override { return inner_->storage_bytes(); }
  void matmul(const float* x, int64_t m, float* y) const override {
    ++*calls_;
    inner_->matmul(x, m, y);
  }
  void row_to_f32(int64_t row, float* out) const override { inner_->row_to_f32(row, out); }

 private:
  std::unique_ptr<WeightMatrix> inner_;
  int* calls_;
};

TEST_F(SessionTest, WeightMatrixFactoryPlugsInAnotherFormat) {
  int calls = 0;
  auto loaded = load_model(dir_.string());
  ASSERT_TRUE(loaded.ok());
  auto model = Model::create(
      std::move(loaded).value(),
      [&](const ModelWeights& w, const std::string& name) -> Result<std::unique_ptr<WeightMatrix>> {
        QF_ASSIGN_OR_RETURN(auto dense, dense_weight_matrix_factory(w, name));
        return std::unique_ptr<WeightMatrix>(
            std::make_unique<CountingMatrix>(std::move(dense), &calls));
      });
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ((*model)->lm_head().format_name(), "counting-bf16");
  EXPECT_EQ(test::all_logits(*model, ids(5)), test::all_logits(model_, ids(5)));
  EXPECT_EQ(calls, 2 * 7 + 1);  // 2 layers x 7 projections + the head
}

TEST_F(SessionTest, ShardedSyntheticCheckpointLoadsTheSameWeights) {
  const auto sharded = dir_.string() + "_sharded";
  SynthOptions o;
  o.seed = 11;
  o.max_shard_bytes = 200 * 1024;  // several shards plus an index
  ASSERT_TRUE(write_synthetic_checkpoint(synthetic_preset("tiny").value(), o, sharded).ok());
  ASSERT_TRUE(
      std::filesystem::exists(std::filesystem::path(sharded) / "model.safetensors.index.json"));
  auto model = Model::load(sharded).value();
  EXPECT_EQ(test::all_logits(model, ids(8)), test::all_logits(model_, ids(8)));
  // And the bytes do not depend on the number of threads that generated them.
  set_num_threads(1);
  const auto single = sharded + "_1t";
  ASSERT_TRUE(write_synthetic_checkpoint(synthetic_preset("tiny").value(), o, single).ok());
  set_num_threads(0);
  auto model_1t = Model::load(single).value();
  EXPECT_EQ(test::all_logits(model_1t, ids(8)), test::all_logits(model_, ids(8)));
  std::filesystem::remove_all(sharded);
  std::filesystem::remove_all(single);
}

}  // namespace
}  // namespace qforge

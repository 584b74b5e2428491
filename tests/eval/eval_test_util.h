// Helpers of the eval tests: shared fixtures, reading a dataset, running a PPL protocol.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "qforge/core/parallel.h"
#include "qforge/eval/perplexity.h"
#include "qforge/runtime/generate.h"

namespace qforge::test {

inline std::filesystem::path shared_dir() {
  return std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared";
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct PplRun {
  PplDataset dataset;
  PerplexityResult result;
};

// Runs the heavy reference evaluations on one thread unless QFORGE_NUM_THREADS says otherwise:
// the suite runs two test processes at once on 2 cores (ctest -j2), where OpenMP workers that
// spin-wait for a descheduled peer cost far more than they gain. The results do not depend on
// the thread count (SessionTest.ThreadCountDoesNotChangeTheLogits).
class SingleThreadUnlessAsked {
 public:
  SingleThreadUnlessAsked() {
    if (std::getenv("QFORGE_NUM_THREADS") == nullptr) set_num_threads(1);
  }
  ~SingleThreadUnlessAsked() { set_num_threads(0); }
};

// Loads the model and its tokenizer, builds the dataset and evaluates it.
inline PplRun run_ppl(const std::filesystem::path& model_path,
                      const std::filesystem::path& text_path, const PerplexityOptions& options,
                      TokenScorer* extra = nullptr) {
  SingleThreadUnlessAsked threads;
  PplRun run;
  auto model = Model::load(model_path.string());
  EXPECT_TRUE(model.ok()) << model.error().to_string();
  if (!model.ok()) return run;
  auto tokenizer = load_tokenizer_for_model(model_path.string(), "", (*model)->config().vocab_size);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.error().to_string();
  if (!tokenizer.ok()) return run;
  auto ds = make_ppl_dataset(read_text(text_path), **tokenizer, options, text_path.filename());
  EXPECT_TRUE(ds.ok()) << ds.error().to_string();
  if (!ds.ok()) return run;
  run.dataset = std::move(ds).value();
  SessionOptions so;
  so.context_length = options.ctx;
  auto session = InferenceSession::create(*model, so);
  EXPECT_TRUE(session.ok());
  auto r = evaluate_perplexity(*session, run.dataset, extra, false);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  if (r.ok()) run.result = *r;
  return run;
}

}  // namespace qforge::test

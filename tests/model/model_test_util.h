// Helpers shared by the model tests: paths into ../shared, JSON fixtures, greedy decoding and
// all-position logits through an InferenceSession.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qforge/model/inference_session.h"
#include "qforge/model/model.h"

namespace qforge::test {

inline std::filesystem::path shared_dir() {
  return std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared";
}

// Skips the calling test when a shared fixture is missing (a checkout without ../shared).
#define QF_REQUIRE_SHARED(path)                                                       \
  do {                                                                                \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing fixture " << (path); \
  } while (0)

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline std::shared_ptr<const Model> load_or_die(const std::string& path) {
  auto model = Model::load(path);
  if (!model.ok()) ADD_FAILURE() << model.error().to_string();
  return model.ok() ? *model : nullptr;
}

inline int32_t argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

// Prompt, then `steps` greedy tokens (the prompt included in the result), decoding one token at
// a time after a batched prefill of the prompt.
inline std::vector<int32_t> greedy(const std::shared_ptr<const Model>& model,
                                   std::vector<int32_t> ids, int64_t total_tokens,
                                   int32_t stop_id = -1) {
  auto session = InferenceSession::create(model);
  EXPECT_TRUE(session.ok());
  auto logits = session->forward(ids, LogitsMode::kLast);
  EXPECT_TRUE(logits.ok()) << logits.error().to_string();
  const int64_t vocab = model->config().vocab_size;
  while (static_cast<int64_t>(ids.size()) < total_tokens) {
    const int32_t next = argmax(logits->data_as<float>(), vocab);
    ids.push_back(next);
    if (next == stop_id || static_cast<int64_t>(ids.size()) == total_tokens) break;
    logits = session->forward(std::span<const int32_t>(&next, 1), LogitsMode::kLast);
    EXPECT_TRUE(logits.ok());
  }
  return ids;
}

// Logits of every position: [ids.size(), vocab].
inline std::vector<float> all_logits(const std::shared_ptr<const Model>& model,
                                     const std::vector<int32_t>& ids, SessionOptions options = {}) {
  auto session = InferenceSession::create(model, options);
  EXPECT_TRUE(session.ok());
  auto logits = session->forward(ids, LogitsMode::kAll);
  EXPECT_TRUE(logits.ok()) << logits.error().to_string();
  const float* p = logits->data_as<float>();
  return std::vector<float>(p, p + logits->numel());
}

}  // namespace qforge::test

// Multiple-choice scoring against hand-computed log-prob sums from the model's own logits (one
// full forward per choice), the lm-eval tokenization rules, HellaSwag preprocessing, the shipped
// task file on stories260K, the CLI, and hostile task files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "qforge/eval/multiple_choice.h"
#include "qforge/model/inference_session.h"
#include "qforge/model/model.h"
#include "qforge/runtime/generate.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path stories_bin() {
  return test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
}
fs::path task_file() {
  return fs::path(QFORGE_SOURCE_DIR) / "tests" / "data" / "tasks" / "tiny_stories_mc.jsonl";
}

class MultipleChoice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(stories_bin())) GTEST_SKIP() << "needs ../shared/models/stories260K";
    auto m = Model::load(stories_bin().string());
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    model_ = m.value();
    auto t = load_tokenizer_for_model(stories_bin().string(), "", model_->config().vocab_size);
    ASSERT_TRUE(t.ok()) << t.error().to_string();
    tokenizer_ = std::move(t).value();
  }

  // Sum of log p(cont[i] | ctx + cont[:i]) from one forward of the whole sequence.
  double manual_sum(const std::vector<int32_t>& ctx, const std::vector<int32_t>& cont) {
    std::vector<int32_t> all = ctx;
    all.insert(all.end(), cont.begin(), cont.end());
    auto s = InferenceSession::create(model_);
    auto logits = s.value().forward(all, LogitsMode::kAll);
    EXPECT_TRUE(logits.ok());
    const int64_t vocab = model_->config().vocab_size;
    const float* p = logits.value().data_as<const float>();
    double sum = 0;
    for (size_t i = 0; i < cont.size(); ++i) {
      const float* row = p + static_cast<int64_t>(ctx.size() - 1 + i) * vocab;
      double mx = row[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max<double>(mx, row[v]);
      double z = 0;
      for (int64_t v = 0; v < vocab; ++v) z += std::exp(double{row[v]} - mx);
      sum += double{row[cont[i]]} - (mx + std::log(z));
    }
    return sum;
  }

  std::shared_ptr<const Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(MultipleChoice, EncodingFollowsLmEvalRules) {
  // The delimiter is added; trailing context spaces move to the continuation.
  auto a = encode_mc_pair(*tokenizer_, "The cat sat on the", "mat.");
  auto b = encode_mc_pair(*tokenizer_, "The cat sat on the ", "mat.");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->context, b->context);
  EXPECT_EQ(a->continuation, b->continuation);
  EXPECT_EQ(a->context.front(), tokenizer_->bos_id());
  auto whole = tokenizer_->encode("The cat sat on the mat.", true);
  ASSERT_TRUE(whole.ok());
  std::vector<int32_t> joined = a->context;
  joined.insert(joined.end(), a->continuation.begin(), a->continuation.end());
  EXPECT_EQ(joined, whole.value());
  auto decoded = tokenizer_->decode(a->continuation);
  ASSERT_TRUE(decoded.ok());
  EXPECT_NE(decoded->find("mat."), std::string::npos);
}

TEST_F(MultipleChoice, ScoresEqualManualLogProbSumsAndAccuracyFollows) {
  McTask task;
  task.name = "hand";
  task.examples.push_back(
      {"Once upon a time, there was a little", {"girl.", "spoon table.", "dog"}, 0, 1});
  task.examples.push_back(
      {"The sun was hot, so Mia wanted to drink some cold", {"rocks.", "water."}, 1, 2});
  auto session = InferenceSession::create(model_);
  ASSERT_TRUE(session.ok());
  auto r = evaluate_multiple_choice(session.value(), *tokenizer_, task);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->per_example.size(), 2u);
  int64_t correct = 0, correct_norm = 0;
  for (size_t e = 0; e < task.examples.size(); ++e) {
    const McExample& ex = task.examples[e];
    const McExampleResult& er = r->per_example[e];
    ASSERT_EQ(er.choices.size(), ex.choices.size());
    int64_t best = 0, best_norm = 0;
    std::vector<double> sums, norms;
    for (size_t c = 0; c < ex.choices.size(); ++c) {
      auto enc = encode_mc_pair(*tokenizer_, ex.context, ex.choices[c]);
      ASSERT_TRUE(enc.ok());
      const double want = manual_sum(enc->context, enc->continuation);
      EXPECT_NEAR(er.choices[c].logprob, want, 1e-4 * std::max(1.0, std::abs(want)))
          << "example " << e << " choice " << c;
      EXPECT_EQ(er.choices[c].tokens, static_cast<int64_t>(enc->continuation.size()));
      EXPECT_EQ(er.choices[c].length, static_cast<int64_t>(ex.choices[c].size()));
      sums.push_back(want);
      norms.push_back(want / static_cast<double>(ex.choices[c].size()));
      if (sums.back() > sums[static_cast<size_t>(best)]) best = static_cast<int64_t>(c);
      if (norms.back() > norms[static_cast<size_t>(best_norm)]) best_norm = static_cast<int64_t>(c);
    }
    EXPECT_EQ(er.pred, best);
    EXPECT_EQ(er.pred_norm, best_norm);
    correct += best == ex.label;
    correct_norm += best_norm == ex.label;
  }
  EXPECT_DOUBLE_EQ(r->acc, correct / 2.0);
  EXPECT_DOUBLE_EQ(r->acc_norm, correct_norm / 2.0);
  EXPECT_EQ(r->examples, 2);
}

TEST_F(MultipleChoice, LongInputsAreCutFromTheLeftAsLmEvalDoes) {
  McTask task;
  task.name = "long";
  std::string ctx;
  for (int i = 0; i < 40; ++i) ctx += "The dog ran to the park and played with a ball. ";
  task.examples.push_back({ctx + "Then the dog", {"slept.", "flew to the moon."}, 0, 1});
  SessionOptions so;
  so.context_length = 64;
  auto session = InferenceSession::create(model_, so);
  ASSERT_TRUE(session.ok());
  auto r = evaluate_multiple_choice(session.value(), *tokenizer_, task);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->truncated, 2);
  // Choice 0 by hand: the window of the last 65 tokens, scoring the continuation rows.
  auto enc = encode_mc_pair(*tokenizer_, task.examples[0].context, "slept.");
  ASSERT_TRUE(enc.ok());
  std::vector<int32_t> all = enc->context;
  all.insert(all.end(), enc->continuation.begin(), enc->continuation.end());
  const size_t n_cont = enc->continuation.size();
  std::vector<int32_t> window(all.end() - 65, all.end());
  std::vector<int32_t> ctx_part(window.begin(), window.end() - static_cast<std::ptrdiff_t>(n_cont));
  EXPECT_NEAR(r->per_example[0].choices[0].logprob, manual_sum(ctx_part, enc->continuation), 1e-4);
}

TEST_F(MultipleChoice, ShippedTaskFileOnStories260K) {
  auto task = load_mc_task(task_file(), McFormat::kJsonl);
  ASSERT_TRUE(task.ok()) << task.error().to_string();
  EXPECT_EQ(task->name, "tiny_stories_mc");
  EXPECT_EQ(task->examples.size(), 30u);
  auto session = InferenceSession::create(model_);
  auto r = evaluate_multiple_choice(session.value(), *tokenizer_, task.value());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Four choices each: chance is 0.25; the story model knows these continuations far better.
  EXPECT_GT(r->acc, 0.5);
  EXPECT_GT(r->acc_norm, 0.5);
  EXPECT_NEAR(r->acc_stderr, std::sqrt(r->acc * (1 - r->acc) * 30.0 / 29.0 / 30.0), 1e-12);
  std::printf("tiny_stories_mc on stories260K: acc %.4f acc_norm %.4f (%.2f s)\n", r->acc,
              r->acc_norm, r->seconds);
  McOptions lim;
  lim.limit = 5;
  auto r5 = evaluate_multiple_choice(session.value(), *tokenizer_, task.value(), lim);
  ASSERT_TRUE(r5.ok());
  EXPECT_EQ(r5->examples, 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r5->per_example[i].pred, r->per_example[i].pred);
  }
}

TEST_F(MultipleChoice, CliJsonMatchesTheLibrary) {
  auto task = load_mc_task(task_file(), McFormat::kJsonl);
  ASSERT_TRUE(task.ok());
  auto session = InferenceSession::create(model_);
  McOptions o;
  o.limit = 10;
  auto r = evaluate_multiple_choice(session.value(), *tokenizer_, task.value(), o);
  ASSERT_TRUE(r.ok());
  const auto run = test::run_cli("eval mc --model " + test::quote(stories_bin()) + " --tasks " +
                                 test::quote(task_file()) + " --limit 10 --json -t 1");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto j = nlohmann::json::parse(run.out.substr(run.out.find('[')));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["examples"].get<int64_t>(), 10);
  EXPECT_DOUBLE_EQ(j[0]["acc"].get<double>(), r->acc);
  EXPECT_DOUBLE_EQ(j[0]["acc_norm"].get<double>(), r->acc_norm);
}

TEST(MultipleChoiceFormat, HellaSwagPreprocessingAsLmEval) {
  EXPECT_EQ(hellaswag_preprocess("  A man [title] is  here [step] now. "), "A man. is here now.");
  EXPECT_EQ(capitalize_ascii("sHE runs"), "She runs");
  const fs::path f =
      fs::path(QFORGE_SOURCE_DIR) / "tests" / "data" / "tasks" / "hellaswag_sample.jsonl";
  auto t = load_mc_task(f, McFormat::kHellaSwag);
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  ASSERT_EQ(t->examples.size(), 2u);
  EXPECT_EQ(t->examples[0].context, "Making a cake: A girl puts flour in a bowl. She");
  EXPECT_EQ(t->examples[0].choices[1], "throws the bowl at the sky. and leaves.");
  EXPECT_EQ(t->examples[0].choices[3], "paints the table blue.");
  EXPECT_EQ(t->examples[0].label, 0);
  EXPECT_EQ(t->examples[1].context, "Playing ball: A boy kicks a ball across the yard.");
  EXPECT_EQ(t->examples[1].label, 0);
}

TEST(MultipleChoiceFormat, HostileTaskFilesGiveClearErrors) {
  struct Case {
    std::string text;
    std::string needle;
  };
  const std::string huge = "{\"context\": \"" + std::string(kMcMaxLineBytes, 'a') + "\"}";
  for (const Case& c : std::vector<Case>{
           {R"({"context": "a", "choices": ["x", "y"], "label": 2})", "outside [0, 2)"},
           {R"({"context": "a", "choices": ["x", "y"], "label": -1})", "outside [0, 2)"},
           {R"({"context": "a", "choices": ["x", "y"], "label": "b"})", "expected a choice index"},
           {R"({"context": "a", "choices": ["x", "y"], "label": 0.5})", "expected an integer"},
           {R"({"context": "a", "choices": [], "label": 0})", "has 0 entries"},
           {R"({"context": "a", "choices": ["x", ""], "label": 0})", "choice 1 is empty"},
           {R"({"context": "a", "choices": ["x", 3], "label": 0})", "\"choices\"[1] is number"},
           {R"({"context": "a", "choices": "xy", "label": 0})", "expected an array"},
           {R"({"choices": ["x", "y"], "label": 0})", "no \"context\""},
           {R"({"context": 5, "choices": ["x", "y"], "label": 0})", "expected a string"},
           {R"({"context": "a", "choices": ["x", "y"]})", "no \"label\""},
           {R"([1, 2])", "expected an object"},
           {R"({"context": "a", "choices": ["x", "y"], "label": 0)", "not valid JSON"},
           {std::string(100, '[') + std::string(100, ']'), "nest"},
           {"\n\n  \n", "no examples"},
           {huge, "exceeds the"},
       }) {
    auto r = parse_mc_task(c.text, McFormat::kJsonl, "t.jsonl");
    ASSERT_FALSE(r.ok()) << c.needle;
    EXPECT_NE(r.error().to_string().find(c.needle), std::string::npos)
        << "want '" << c.needle << "' in: " << r.error().to_string().substr(0, 300);
  }
  // The line number is named.
  auto r = parse_mc_task("{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"label\": 0}\n\n{}",
                         McFormat::kJsonl, "t.jsonl");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("t.jsonl:3"), std::string::npos) << r.error().to_string();
  // HellaSwag test splits have no label.
  auto h = parse_mc_task(R"({"ctx": "a", "endings": ["x", "y"], "label": ""})",
                         McFormat::kHellaSwag, "h.jsonl");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().to_string().find("unlabeled"), std::string::npos);
  EXPECT_FALSE(parse_mc_format("csv").ok());
  // A missing file and a non-UTF-8 one.
  EXPECT_FALSE(load_mc_task("/nonexistent/task.jsonl", McFormat::kJsonl).ok());
  const auto cli = test::run_cli("eval mc --model /nonexistent --tasks /nonexistent.jsonl");
  EXPECT_NE(cli.exit_code, 0);
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// Mutated copies of the shipped task file: each parses or fails with a message naming a line.
TEST(MultipleChoiceFormat, MutatedTaskFilesNeverCrash) {
  std::ifstream in(task_file(), std::ios::binary);
  const std::string base((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(base.empty());
  uint64_t state = 0x2545F4914F6CDD1Dull;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char kBytes[] = "[]{}:\",\\n0123456789-. \x80";
  int failed = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string s = base;
    for (int e = 0; e < 3; ++e) {
      const size_t pos = next() % s.size();
      if (next() % 2) {
        s[pos] = kBytes[next() % (sizeof(kBytes) - 1)];
      } else {
        s.insert(pos, 1, kBytes[next() % (sizeof(kBytes) - 1)]);
      }
    }
    for (McFormat f : {McFormat::kJsonl, McFormat::kHellaSwag}) {
      auto r = parse_mc_task(s, f, "m.jsonl");
      if (!r.ok()) {
        ++failed;
        EXPECT_NE(r.error().to_string().find("m.jsonl"), std::string::npos);
      }
    }
  }
  EXPECT_GT(failed, 1500);  // every HellaSwag parse fails (no "endings"), most JSONL ones too
}

}  // namespace
}  // namespace qforge

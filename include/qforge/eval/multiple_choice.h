// Multiple-choice task benchmarks scored by log-likelihood, as EleutherAI's lm-evaluation-harness
// scores HellaSwag, ARC, PIQA...: each choice is a continuation of the context; its score is the
// sum of the log-probabilities of its tokens given the context. acc takes the argmax of the sums,
// acc_norm the argmax of the sums divided by the choice's length in characters (lm-eval's
// `len(choice)`: Unicode code points of the choice text without the delimiter; bytes for ASCII).
//
// Tokenization (lm-eval's _encode_pair): the continuation is the target delimiter " " plus the
// choice (no delimiter when the choice already starts with whitespace or the context ends with
// it); trailing whitespace of the context moves to the front of the continuation; the context is
// encoded with BOS, the context + continuation text encoded whole, and the continuation tokens
// are the whole encoding past the context encoding's length. An input longer than the session's
// context is cut from the left, as lm-eval does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/model/inference_session.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

struct McExample {
  std::string context;
  std::vector<std::string> choices;  // without the target delimiter
  int64_t label = 0;                 // index of the right choice
  int64_t line = 0;                  // 1-based line in the task file (0 when built in code)
};

struct McTask {
  std::string name;  // the file name without its extension
  std::vector<McExample> examples;
};

enum class McFormat : uint8_t {
  kJsonl,      // {"context"|"query": str, "choices": [str...], "label": int}
  kHellaSwag,  // {"ctx_a", "ctx_b" | "ctx", "activity_label", "endings": [...], "label"}
};
const char* mc_format_name(McFormat format);  // "jsonl", "hellaswag"
Result<McFormat> parse_mc_format(std::string_view text);

// Limits on a hostile task file.
inline constexpr uint64_t kMcMaxLineBytes = uint64_t{1} << 20;  // one JSON line
inline constexpr int64_t kMcMaxChoices = 64;

// Parses task text (one JSON object per line; blank lines skipped). `source` names the file in
// errors. Errors name the line and field: not JSON, a missing or mistyped field, no choices, an
// empty choice, a label outside [0, choices), a line longer than kMcMaxLineBytes, no examples.
// HellaSwag: the query is preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))
// (ctx when ctx_a/ctx_b are absent), each ending preprocess(ending); preprocess strips, turns
// " [title]" into ". ", drops other [bracketed] runs and turns double spaces into single ones
// (lm-eval's hellaswag/utils.py). capitalize: first character upper case, the rest lower case
// (ASCII letters only). The label may be an int or a string of digits.
Result<McTask> parse_mc_task(std::string_view text, McFormat format, const std::string& source);
// Reads the file (a regular file of valid UTF-8) and parses it; the task's name is the stem.
Result<McTask> load_mc_task(const std::filesystem::path& path, McFormat format);

// lm-eval's HellaSwag preprocess() and str.capitalize() (exposed for tests).
std::string hellaswag_preprocess(std::string_view text);
std::string capitalize_ascii(std::string_view text);

struct McChoiceScore {
  double logprob = 0;   // sum over the continuation tokens, nats
  int64_t tokens = 0;   // continuation tokens scored
  int64_t length = 0;   // code points of the choice (acc_norm's divisor)
  bool greedy = false;  // every continuation token is the argmax of its row
};

struct McExampleResult {
  std::vector<McChoiceScore> choices;
  int64_t label = 0;
  int64_t pred = 0;       // argmax of logprob (first on ties, as numpy's argmax)
  int64_t pred_norm = 0;  // argmax of logprob / length
};

struct McResult {
  std::string task;
  int64_t examples = 0;
  double acc = 0, acc_stderr = 0;  // stderr: sample sd / sqrt(n) (lm-eval's mean_stderr)
  double acc_norm = 0, acc_norm_stderr = 0;
  int64_t truncated = 0;  // inputs cut from the left to fit the context
  double seconds = 0;
  std::vector<McExampleResult> per_example;
};

struct McOptions {
  int64_t limit = 0;  // score only the first N examples (0 = all)
  bool show_progress = false;
};

// The continuation tokens of (context, choice) and the context tokens they follow (with BOS when
// the tokenizer has one), per the rules above.
struct McEncoded {
  std::vector<int32_t> context;
  std::vector<int32_t> continuation;
};
Result<McEncoded> encode_mc_pair(const Tokenizer& tokenizer, std::string_view context,
                                 std::string_view choice);

// Scores every example on `session` (reset before each). Errors: a choice that tokenizes to
// nothing, a model/tokenizer vocabulary mismatch, forward errors (with the example's line).
Result<McResult> evaluate_multiple_choice(InferenceSession& session, const Tokenizer& tokenizer,
                                          const McTask& task, const McOptions& options = {});

}  // namespace qforge

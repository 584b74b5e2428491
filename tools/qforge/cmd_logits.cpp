// `qforge logits`: the full [n_tokens, vocab] logits of a token sequence as a float32 .npy, for
// debugging and cross-checks with other tools (numpy.load reads it).
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "model_source.h"
#include "qforge/core/path_guard.h"
#include "qforge/model/inference_session.h"
#include "qforge/runtime/generate.h"
#include "qforge/runtime/npy.h"

namespace qforge::cli {
namespace {

struct LogitsArgs {
  std::string model;
  std::string ids;
  std::string prompt;
  std::string tokenizer;
  std::string output;
  bool bos = true;
};

// "1,2,3" -> {1, 2, 3}; spaces allowed around the commas.
Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int64_t value = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || value < 0 ||
        value > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--ids: '{}' is not a token id (expected comma-separated integers >= 0, "
                        "e.g. --ids 1,15043,3186)",
                        item);
    }
    ids.push_back(static_cast<int32_t>(value));
    pos = end + 1;
  }
  return ids;
}

void run_logits(const LogitsArgs& a) {
  if (a.ids.empty() == a.prompt.empty()) throw CliFailure("give exactly one of --ids or --prompt");
  if (!a.output.empty()) {
    const std::vector<std::filesystem::path> inputs = {a.model, a.tokenizer};
    ok_or_fail(check_output_path(a.output, inputs, OutputKind::kFile, "logits: --output"));
  }
  const ModelSource source = load_model_source(a.model);
  const std::shared_ptr<const Model>& model = source.model;
  const ModelConfig& c = model->config();
  std::vector<int32_t> ids;
  if (!a.ids.empty()) {
    ids = value_or_fail(parse_ids(a.ids));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= c.vocab_size) {
        throw CliFailure(fmt::format(
            "--ids: token id {} (position {}) is outside this model's vocabulary [0, {})", ids[i],
            i, c.vocab_size));
      }
    }
  } else {
    auto tok = load_source_tokenizer(source, a.tokenizer);
    ids = value_or_fail(tok->encode(a.prompt, a.bos));
  }
  if (ids.empty()) throw CliFailure("no tokens to run");
  SessionOptions options;
  options.context_length = std::min<int64_t>(
      c.max_position_embeddings, std::max<int64_t>(static_cast<int64_t>(ids.size()), 1));
  if (static_cast<int64_t>(ids.size()) > c.max_position_embeddings) {
    throw CliFailure(fmt::format("{} tokens exceed the model's context of {} positions", ids.size(),
                                 c.max_position_embeddings));
  }
  auto session = value_or_fail(InferenceSession::create(model, options));
  Tensor logits = value_or_fail(session.forward(ids, LogitsMode::kAll));
  const int64_t n = logits.dim(0);
  const int64_t vocab = logits.dim(1);
  const float* data = logits.data_as<float>();
  if (!a.output.empty()) {
    const std::vector<int64_t> shape = {n, vocab};
    ok_or_fail(write_npy_f32(a.output, shape,
                             std::span<const float>(data, static_cast<size_t>(n * vocab))));
    std::fprintf(stderr, "wrote %s: float32 [%lld, %lld]\n", a.output.c_str(),
                 static_cast<long long>(n), static_cast<long long>(vocab));
    return;
  }
  // No --output: a readable summary, the top 5 ids per position.
  std::printf("position  input id  top-5 next ids (logit)\n");
  for (int64_t t = 0; t < n; ++t) {
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) order[i] = static_cast<int32_t>(i);
    const float* row = data + t * vocab;
    std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(5, vocab), order.end(),
                      [&](int32_t x, int32_t y) { return row[x] > row[y]; });
    std::string top;
    for (int64_t k = 0; k < std::min<int64_t>(5, vocab); ++k) {
      top += fmt::format("{} ({:.3f})  ", order[k], row[order[k]]);
    }
    std::printf("%8lld  %8d  %s\n", static_cast<long long>(t), ids[t], top.c_str());
  }
}

}  // namespace

static void register_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "logits",
      "Write the logits of every position of a token sequence ([n_tokens, vocab] "
      "float32 .npy), or print the top ids per position");
  static LogitsArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--ids", a.ids, "Comma-separated token ids, e.g. 1,15043,3186");
  cmd->add_option("--prompt", a.prompt, "Text to tokenize instead of --ids");
  cmd->add_option("--tokenizer", a.tokenizer, "Tokenizer file (default: next to the model)");
  cmd->add_flag("--bos,!--no-bos", a.bos, "Prepend BOS to --prompt (default: yes)");
  cmd->add_option("--output,-o", a.output, "Output .npy file (float32 [n_tokens, vocab])");
  cmd->callback([] { run_logits(a); });
}

QF_REGISTER_COMMAND(45, register_logits);

}  // namespace qforge::cli

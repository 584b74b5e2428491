// `qforge eval mc`: multiple-choice task accuracy by log-likelihood (lm-eval-harness style acc and
// acc_norm) on JSONL or HellaSwag task files. Adds itself under `qforge eval` (cmd_eval.cpp).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "model_source.h"
#include "qforge/core/parallel.h"
#include "qforge/eval/multiple_choice.h"

namespace qforge::cli {
namespace {

struct EvalMcArgs {
  std::string model;
  std::vector<std::string> tasks;
  std::string format = "jsonl";
  std::string tokenizer;
  int64_t limit = 0;
  int64_t ctx = 0;
  bool json = false;
  bool progress = true;
  int threads = 0;
};

void run_eval_mc(EvalMcArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (a.limit < 0) throw CliFailure("--limit must be >= 0");
  if (a.ctx < 0) throw CliFailure("--ctx must be >= 0");
  const McFormat format = value_or_fail(parse_mc_format(a.format));
  std::vector<McTask> tasks;
  for (const std::string& t : a.tasks) tasks.push_back(value_or_fail(load_mc_task(t, format)));
  const ModelSource source = load_model_source(a.model);
  auto tokenizer = load_source_tokenizer(source, a.tokenizer);
  SessionOptions so;
  so.context_length = a.ctx;
  auto session = value_or_fail(InferenceSession::create(source.model, so));
  nlohmann::json out = nlohmann::json::array();
  for (const McTask& task : tasks) {
    McOptions o;
    o.limit = a.limit;
    o.show_progress = a.progress && !a.json;
    const McResult r = value_or_fail(evaluate_multiple_choice(session, *tokenizer, task, o));
    if (a.json) {
      out.push_back({{"task", r.task},
                     {"examples", r.examples},
                     {"acc", r.acc},
                     {"acc_stderr", r.acc_stderr},
                     {"acc_norm", r.acc_norm},
                     {"acc_norm_stderr", r.acc_norm_stderr},
                     {"truncated", r.truncated},
                     {"seconds", r.seconds}});
    } else {
      std::printf("%s: %lld examples  acc %.4f +/- %.4f  acc_norm %.4f +/- %.4f  (%.1f s%s)\n",
                  r.task.c_str(), static_cast<long long>(r.examples), r.acc, r.acc_stderr,
                  r.acc_norm, r.acc_norm_stderr, r.seconds,
                  r.truncated > 0
                      ? fmt::format(", {} inputs cut to the context", r.truncated).c_str()
                      : "");
    }
  }
  if (a.json) std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace

static void register_eval_mc(CLI::App& app) {
  // cmd_eval.cpp registers `eval` first (order 50).
  CLI::App* eval = nullptr;
  try {
    eval = app.get_subcommand("eval");
  } catch (const CLI::OptionNotFound&) {
    return;
  }
  auto* cmd = eval->add_subcommand(
      "mc",
      "Multiple-choice task accuracy by log-likelihood (lm-eval-harness acc / acc_norm): each "
      "choice scored as the sum of its tokens' log-probs after the context");
  static EvalMcArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .engine, .safetensors, .gguf, .bin")
      ->required();
  cmd->add_option("--tasks", a.tasks,
                  "Task files, repeatable: JSONL lines {\"context\"|\"query\", \"choices\": "
                  "[...], \"label\": int}")
      ->required();
  cmd->add_option("--format", a.format,
                  "jsonl, or hellaswag (ctx_a/ctx_b/ctx, activity_label, endings, label; "
                  "lm-eval's preprocessing)")
      ->capture_default_str();
  cmd->add_option("--limit", a.limit, "Score only the first N examples of each task (0 = all)")
      ->capture_default_str();
  cmd->add_option("--ctx", a.ctx,
                  "KV-cache length; longer inputs are cut from the left (0 = the model's, capped "
                  "at 8192)")
      ->capture_default_str();
  cmd->add_flag("--json", a.json, "Print the results as JSON");
  cmd->add_option("--tokenizer", a.tokenizer, "Tokenizer file (default: next to the model)");
  cmd->add_option("--threads,-t", a.threads, "CPU threads (default: all cores)");
  cmd->add_flag("--progress,!--no-progress", a.progress, "Progress bar on stderr");
  cmd->callback([] { run_eval_mc(a); });
}

QF_REGISTER_COMMAND(51, register_eval_mc);

}  // namespace qforge::cli

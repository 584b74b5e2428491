// `qforge pipeline`: baseline evaluation, calibration, a quantized engine per candidate, quality
// validation with a gate, deployment of the chosen engine, and report.md / report.html /
// report.json (src/pipeline). Exit code 0 when a candidate passed, 2 when none did, 1 on errors.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "commands.h"
#include "qforge/core/parallel.h"
#include "qforge/engine/engine.h"
#include "qforge/pipeline/pipeline.h"
#include "qforge/serve/server.h"
#include "serve_loop.h"

namespace qforge::cli {
namespace {

namespace fs = std::filesystem;

struct PipelineArgs {
  std::string config;
  std::string model;
  std::string output_dir;
  std::string dataset;
  bool quiet = false;
  int threads = 0;
  bool serve = false;  // step 5: serve the chosen engine afterwards
  ServerConfig server;
};

// Text the built-in defaults calibrate and evaluate on: the first that exists.
std::vector<fs::path> default_dataset_candidates() {
  const fs::path src(QFORGE_SOURCE_DIR);
  return {src / "data" / "pipeline_default.txt",
          src / ".." / "shared" / "data" / "tinyshakespeare" / "input.txt",
          src / ".." / "shared" / "data" / "tinystories" / "tinystories_valid_first1000.txt"};
}

PipelineConfig make_config(const PipelineArgs& a) {
  PipelineConfig c;
  if (!a.config.empty() || a.model.empty()) {
    // No --config and no --model: the built-in default model and its own data.
    const std::string config = !a.config.empty()
                                   ? a.config
                                   : (fs::path(QFORGE_SOURCE_DIR) / "examples" / "default.toml")
                                         .lexically_normal()
                                         .string();
    c = value_or_fail(load_pipeline_config(config));
  } else {
    std::string dataset = a.dataset;
    if (dataset.empty()) {
      for (const fs::path& p : default_dataset_candidates()) {
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) {
          dataset = p.lexically_normal().string();
          break;
        }
      }
    }
    if (dataset.empty()) {
      std::string tried;
      for (const fs::path& p : default_dataset_candidates()) tried += "\n  " + p.string();
      throw CliFailure("no built-in dataset found; pass --dataset FILE (tried:" + tried + ")");
    }
    c = default_pipeline_config(a.model, dataset);
    const fs::path task =
        fs::path(QFORGE_SOURCE_DIR) / "tests" / "data" / "tasks" / "tiny_stories_mc.jsonl";
    std::error_code ec;
    if (fs::is_regular_file(task, ec)) c.tasks = {task.string()};
  }
  if (!a.model.empty()) c.model = a.model;
  if (!a.output_dir.empty()) c.output_dir = a.output_dir;
  if (!a.dataset.empty()) {
    c.eval_dataset = a.dataset;
    c.calib_dataset = {a.dataset};
  }
  ok_or_fail(validate_pipeline_config(c));
  return c;
}

void run_pipeline_cmd(const PipelineArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  const PipelineConfig c = make_config(a);
  PipelineRunOptions o;
  o.show_progress = !a.quiet;
  const PipelineResult r = value_or_fail(run_pipeline(c, o));
  std::printf("%-16s %10s %8s %10s %12s %10s %9s  %s\n", "candidate", "size MiB", "bits/w",
              "dPPL %", "mean KLD", "top-1 %", "tok/s", "verdict");
  for (const CandidateResult& cand : r.candidates) {
    std::string verdict = cand.passed ? "PASS" : "FAIL";
    for (const std::string& f : cand.failures) verdict += " (" + f + ")";
    std::printf("%-16s %10.2f %8.3f %+10.4f %12.6f %10.2f %9.1f  %s\n", cand.candidate.name.c_str(),
                cand.size.bytes / 1048576.0, cand.size.bits_per_weight, cand.delta_ppl_percent,
                cand.kld.mean_kld, 100 * cand.kld.top1_agreement, cand.tokens_per_second,
                verdict.c_str());
  }
  if (r.chosen >= 0) {
    std::printf("chosen: %s -> %s\n",
                r.candidates[static_cast<size_t>(r.chosen)].candidate.name.c_str(),
                r.deployed_engine.c_str());
  } else {
    std::printf("no candidate passed the gate (exit code %d)\n", r.exit_code);
  }
  std::printf("report: %s\n", r.report_html.c_str());
  std::fflush(stdout);
  if (a.serve && r.chosen >= 0) {
    ServerConfig server = a.server;
    if (server.api_key.empty()) {
      if (const char* env = std::getenv("QFORGE_API_KEY")) server.api_key = env;
    }
    server.model_path = c.model;  // its tokenizer_config.json holds the chat template
    Engine engine = value_or_fail(load_engine(r.deployed_engine));
    serve_until_signal(server, std::move(engine));
    return;
  }
  if (a.serve) std::printf("not serving: no candidate passed the gate\n");
  if (r.exit_code != 0) throw CLI::RuntimeError(r.exit_code);
}

}  // namespace

static void register_pipeline(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pipeline",
      "The production workflow: baseline eval, calibration, a quantized engine per candidate, "
      "quality gate (ΔPPL %, KLD, top-1 agreement, task accuracy), deployment of the chosen "
      "engine, report.md/html/json. Finished steps are reused on a rerun. Exit code: 0 a "
      "candidate passed, 2 none passed, 1 error");
  static PipelineArgs a;
  cmd->add_option("--config,-c", a.config,
                  "Pipeline TOML file (keys below). Without --config and --model: examples/"
                  "default.toml, the built-in model models/qforge-tiny-shakespeare");
  cmd->add_option("--model,-m", a.model,
                  "Model (overrides [model] path); without --config: run the built-in defaults "
                  "(fp8 + FP8 KV, int4_awq, w8a16) on it");
  cmd->add_option("--output-dir,-o", a.output_dir, "Overrides [output] dir");
  cmd->add_option("--dataset", a.dataset,
                  "Text for calibration and evaluation (overrides [eval] dataset and "
                  "[calibration] dataset)");
  cmd->add_flag("--serve", a.serve,
                "Then serve the chosen engine (OpenAI-compatible, as `qforge serve`) until "
                "SIGINT/SIGTERM; nothing is served when no candidate passes (exit 2)");
  cmd->add_option("--host", a.server.host, "--serve: address to bind")->capture_default_str();
  cmd->add_option("--port", a.server.port, "--serve: port (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--api-key", a.server.api_key,
                  "--serve: require 'Authorization: Bearer KEY' (default: $QFORGE_API_KEY)");
  cmd->add_flag("--quiet,-q", a.quiet, "No progress bars");
  cmd->add_option("--threads,-t", a.threads, "CPU threads (default: all cores)");
  cmd->footer("Pipeline TOML keys (relative paths are relative to the TOML file):\n" +
              pipeline_config_help() + "\nSee docs/PIPELINE.md for an example.");
  cmd->callback([] { run_pipeline_cmd(a); });
}

QF_REGISTER_COMMAND(70, register_pipeline);

}  // namespace qforge::cli

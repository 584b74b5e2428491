// `qforge eval ppl`: perplexity of a model on a text under a printed protocol, optionally saving
// the baseline's log-probs (--save-logits) or comparing against them (--kl-divergence-base):
// mean/median/p99 KL divergence, top-1 agreement, PPL ratio, as llama.cpp's perplexity reports.
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"
#include "model_source.h"
#include "qforge/core/parallel.h"
#include "qforge/core/path_guard.h"
#include "qforge/core/text_file.h"
#include "qforge/eval/kl_divergence.h"
#include "qforge/eval/perplexity.h"
#include "qforge/runtime/generate.h"

namespace qforge::cli {
namespace {

struct EvalPplArgs {
  std::string model;
  std::string dataset;
  std::string tokenizer;
  PerplexityOptions options;
  std::string scoring = "all";
  std::string save_logits;
  std::string kld_base;
  std::string kv_cache;  // "": the checkpoint's; "f32", "fp8-unit", "int8-unit"
  int64_t kld_top_k = kDefaultKldTopK;
  bool progress = true;
  int threads = 0;
};

// The dataset text: a regular file of at most kMaxTextInputBytes, valid UTF-8.
Result<std::string> read_dataset(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(path, "--dataset"));
  QF_TRY(check_utf8_text(text, fmt::format("--dataset '{}'", path)));
  return text;
}

void print_kld(const KlDivergenceResult& k) {
  std::printf("\nKL divergence against the base (%lld tokens; base log-probs: %s)\n",
              static_cast<long long>(k.tokens),
              k.top_k == 0 ? "full vocabulary" : fmt::format("top {} + tail bin", k.top_k).c_str());
  std::printf("  Mean    KLD:                 %10.6f +/- %.6f\n", k.mean_kld, k.mean_kld_stderr);
  std::printf("  Median  KLD:                 %10.6f\n", k.median_kld);
  std::printf("  99.0%%   KLD:                 %10.6f\n", k.p99_kld);
  std::printf("  Maximum KLD:                 %10.6f\n", k.max_kld);
  std::printf("  Same top token:              %9.3f%% +/- %.3f%%\n", 100 * k.top1_agreement,
              100 * k.top1_agreement_stderr);
  std::printf("  PPL(base):                   %10.4f\n", k.ppl_base);
  std::printf("  PPL(Q):                      %10.4f\n", k.ppl);
  std::printf("  PPL(Q)/PPL(base):            %10.6f\n", k.ppl_ratio);
  std::printf("  Mean ln(PPL(Q)/PPL(base)):   %10.6f +/- %.6f\n", k.ln_ppl_ratio,
              k.ln_ppl_ratio_stderr);
}

void run_eval_ppl(EvalPplArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  a.options.scoring = value_or_fail(parse_ppl_scoring(a.scoring));
  if (!a.save_logits.empty() && !a.kld_base.empty()) {
    throw CliFailure(
        "--save-logits and --kl-divergence-base are exclusive (save the baseline "
        "first, then compare another model against it)");
  }
  if (!a.save_logits.empty()) {
    const std::vector<std::filesystem::path> inputs = {a.model, a.tokenizer, a.dataset};
    ok_or_fail(
        check_output_path(a.save_logits, inputs, OutputKind::kFile, "eval ppl: --save-logits"));
  }
  const ModelSource source = load_model_source(a.model);
  const std::shared_ptr<const Model>& model = source.model;
  const ModelConfig& c = model->config();
  if (a.options.ctx > c.max_position_embeddings) {
    throw CliFailure(fmt::format("--ctx {} exceeds the model's max_position_embeddings {}",
                                 a.options.ctx, c.max_position_embeddings));
  }
  auto tokenizer = load_source_tokenizer(source, a.tokenizer);
  const std::string text = value_or_fail(read_dataset(a.dataset));
  const PplDataset dataset =
      value_or_fail(make_ppl_dataset(text, *tokenizer, a.options, a.dataset));
  std::printf("protocol: %s\n", dataset.protocol.c_str());
  std::fflush(stdout);

  std::unique_ptr<LogprobWriter> writer;
  std::unique_ptr<KlDivergenceScorer> kld;
  TokenScorer* extra = nullptr;
  if (!a.save_logits.empty()) {
    writer = value_or_fail(LogprobWriter::create(a.save_logits, a.kld_top_k, c.vocab_size,
                                                 dataset.scored_tokens, dataset.protocol));
    extra = writer.get();
  } else if (!a.kld_base.empty()) {
    kld = value_or_fail(KlDivergenceScorer::open(a.kld_base, c.vocab_size, dataset.scored_tokens,
                                                 dataset.protocol));
    extra = kld.get();
  }
  SessionOptions options;
  options.context_length = a.options.ctx;
  if (a.kv_cache == "f32") {
    options.kv_cache_quant = KvCacheQuant{};
  } else if (a.kv_cache == "fp8-unit" || a.kv_cache == "int8-unit") {
    options.kv_cache_quant = kv_cache_quant_unit_scales(
        a.kv_cache == "fp8-unit" ? KvCacheDType::kFp8 : KvCacheDType::kInt8, c.num_hidden_layers);
  } else if (!a.kv_cache.empty()) {
    throw CliFailure("--kv-cache '" + a.kv_cache + "': expected f32, fp8-unit or int8-unit");
  }
  auto session = value_or_fail(InferenceSession::create(model, options));
  const PerplexityResult r =
      value_or_fail(evaluate_perplexity(session, dataset, extra, a.progress));
  std::printf("model: %s (%s)\n", a.model.c_str(), model->format().c_str());
  std::printf(
      "PPL = %.4f +/- %.4f   (mean NLL %.6f nats over %lld tokens, %lld chunks; "
      "%.1f s, %.0f tok/s)\n",
      r.ppl, r.ppl_stderr, r.mean_nll, static_cast<long long>(r.scored_tokens),
      static_cast<long long>(r.chunks), r.seconds, r.tokens_per_second);
  if (writer) {
    ok_or_fail(writer->commit());
    std::printf("saved base log-probs to %s (%s)\n", a.save_logits.c_str(),
                a.kld_top_k == 0 ? "full vocabulary"
                                 : fmt::format("top {} per token", a.kld_top_k).c_str());
  }
  if (kld) print_kld(value_or_fail(kld->finish()));
}

}  // namespace

static void register_eval(CLI::App& app) {
  auto* eval = app.add_subcommand(
      "eval", "Evaluate model quality (perplexity, KL divergence, multiple-choice tasks)");
  eval->require_subcommand(1);
  auto* cmd =
      eval->add_subcommand("ppl",
                           "Perplexity on a text file under a printed protocol; --save-logits / "
                           "--kl-divergence-base compare two models token by token");
  static EvalPplArgs a;
  cmd->add_option("--model", a.model, "Model: HF directory, .safetensors, .gguf or llama2.c .bin")
      ->required();
  cmd->add_option("--dataset", a.dataset, "UTF-8 text file, e.g. wiki.test.raw")->required();
  cmd->add_option("--ctx", a.options.ctx, "Tokens per chunk, BOS included")->capture_default_str();
  cmd->add_option("--stride", a.options.stride,
                  "Text ids between chunk starts (0 = non-overlapping; smaller = sliding "
                  "window, scoring only new tokens)")
      ->capture_default_str();
  cmd->add_flag("--bos,!--no-bos", a.options.add_bos, "Prepend BOS to every chunk (default: yes)");
  cmd->add_option("--scoring", a.scoring,
                  "all: every token after the first of a chunk; second-half: only tokens past "
                  "ctx/2 (llama.cpp)")
      ->capture_default_str();
  cmd->add_option("--max-chunks", a.options.max_chunks, "Stop after N chunks (0 = all)")
      ->capture_default_str();
  cmd->add_option("--doc-separator", a.options.doc_separator,
                  "Document mode: split the text on this string (e.g. '<|endoftext|>'), one "
                  "chunk per document");
  cmd->add_option("--save-logits", a.save_logits,
                  "Write the baseline's log-probs here (for --kl-divergence-base later)");
  cmd->add_option("--kv-cache", a.kv_cache,
                  "Override the checkpoint's KV cache: f32, or fp8-unit / int8-unit (scale 1.0, "
                  "uncalibrated, for comparison with calibrated scales)");
  cmd->add_option("--kld-top-k", a.kld_top_k,
                  "Log-probs kept per token by --save-logits (0 = the full vocabulary)")
      ->capture_default_str();
  cmd->add_option("--kl-divergence-base", a.kld_base,
                  "Compare against a --save-logits file: KLD, top-1 agreement, PPL ratio");
  cmd->add_option("--tokenizer", a.tokenizer, "Tokenizer file (default: next to the model)");
  cmd->add_option("--threads,-t", a.threads, "CPU threads (default: all cores)");
  cmd->add_flag("--progress,!--no-progress", a.progress, "Progress bar on stderr");
  cmd->callback([] { run_eval_ppl(a); });
}

QF_REGISTER_COMMAND(50, register_eval);

}  // namespace qforge::cli

// `qforge run`: the batched runtime (LLM API) from the command line. One --prompt streams its
// continuation as it is decoded; several run together through in-flight batching and print when
// all have finished (in prompt order). --engine opens an .engine file (or builds a checkpoint
// directory into the engine cache); --model runs a checkpoint as it is (Model::load).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "generation_options.h"
#include "qforge/core/parallel.h"
#include "qforge/runtime/generate.h"
#include "qforge/runtime/llm.h"

namespace qforge::cli {
namespace {

struct RunArgs {
  std::string engine;
  std::string model;
  std::string tokenizer;
  std::vector<std::string> prompts;
  SamplingParams sampling;
  int64_t logprobs = -1;
  BuildConfig build;
  std::string kv_cache;
  bool deterministic = true;
  bool json = false;
  GenerationFlags flags;
  // Which limits were given on the command line (they replace an engine's).
  bool set_batch = false, set_tokens = false, set_blocks = false;
};

LLM open_llm(RunArgs& a) {
  if (a.engine.empty() == a.model.empty()) {
    throw CliFailure("run: give one of --engine (an .engine file) or --model (a checkpoint)");
  }
  if (!a.kv_cache.empty()) {
    a.build.kv_cache_storage = value_or_fail(parse_kv_cache_storage(a.kv_cache));
  }
  RuntimeOptions ro;
  ro.deterministic = a.deterministic;
  if (!a.engine.empty()) {
    Engine engine = value_or_fail(open_engine(a.engine, a.build));
    BuildConfig& e = engine.build_config;
    if (a.set_batch) e.max_batch_size = a.build.max_batch_size;
    if (a.set_tokens) e.max_num_tokens = a.build.max_num_tokens;
    if (a.set_blocks) e.kv_cache_blocks = a.build.kv_cache_blocks;
    if (a.build.kv_cache_storage) engine.kv_cache_storage = *a.build.kv_cache_storage;
    return value_or_fail(LLM::create(engine, ro));
  }
  auto model = value_or_fail(Model::load(a.model));
  std::shared_ptr<const Tokenizer> tokenizer =
      value_or_fail(load_tokenizer_for_model(a.model, a.tokenizer, model->config().vocab_size));
  BuildConfig b = a.build;
  b.precision = DType::F32;  // --model keeps the checkpoint's weights; KV in F32 unless --kv-cache
  b.max_seq_len = std::min(b.max_seq_len, model->config().max_position_embeddings);
  b.max_input_len = std::min(b.max_input_len, b.max_seq_len);
  return value_or_fail(LLM::create(model, tokenizer, b, ro));
}

void run_run(RunArgs& a) {
  if (a.flags.threads > 0) set_num_threads(a.flags.threads);
  if (a.logprobs >= 0) a.sampling.logprobs = a.logprobs;
  ok_or_fail(validate_sampling_params(a.sampling));
  LLM llm = open_llm(a);
  if (llm.tokenizer() == nullptr) throw CliFailure("run: the engine has no tokenizer");
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& p : a.prompts) {
    ids.push_back(value_or_fail(llm.tokenizer()->encode(p, a.flags.bos)));
  }
  const bool stream = a.prompts.size() == 1 && !a.json;
  if (stream && a.flags.echo) {
    std::fputs(a.prompts[0].c_str(), stdout);
    std::fflush(stdout);
  }
  StreamCallback on_token;
  if (stream) {
    on_token = [](const StreamEvent& e) {
      std::fwrite(e.text.data(), 1, e.text.size(), stdout);
      std::fflush(stdout);
    };
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<RequestOutput> outs = value_or_fail(llm.generate_ids(ids, a.sampling, on_token));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.json) {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (size_t i = 0; i < outs.size(); ++i) {
      const RequestOutput& r = outs[i];
      nlohmann::ordered_json o;
      o["prompt"] = a.prompts[i];
      o["prompt_ids"] = r.prompt_ids;
      o["text"] = r.text;
      o["output_ids"] = r.output_ids;
      o["finish_reason"] = finish_reason_name(r.finish_reason);
      if (a.sampling.logprobs) {
        nlohmann::ordered_json lps = nlohmann::ordered_json::array();
        for (const SampleLogprobs& lp : r.logprobs) {
          nlohmann::ordered_json e;
          e["id"] = lp.sampled.id;
          e["logprob"] = lp.sampled.logprob;
          nlohmann::ordered_json top = nlohmann::ordered_json::array();
          for (const TokenLogprob& t : lp.top) top.push_back({t.id, t.logprob});
          e["top"] = top;
          lps.push_back(e);
        }
        o["logprobs"] = lps;
      }
      j.push_back(o);
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else if (stream) {
    std::fputs("\n", stdout);
  } else {
    for (size_t i = 0; i < outs.size(); ++i) {
      std::printf("[%zu] %s%s\n", i, a.flags.echo ? a.prompts[i].c_str() : "",
                  outs[i].text.c_str());
    }
  }
  if (!a.flags.quiet) {
    size_t generated = 0;
    for (const RequestOutput& r : outs) generated += r.output_ids.size();
    std::string reasons;
    for (const RequestOutput& r : outs) {
      reasons += std::string(reasons.empty() ? "" : ",") + finish_reason_name(r.finish_reason);
    }
    std::fprintf(stderr,
                 "[%zu prompts, %zu tokens generated in %.2f s (%.1f tok/s), batch up to %lld, "
                 "KV cache %s; finish: %s]\n",
                 outs.size(), generated, seconds,
                 seconds > 0 ? static_cast<double>(generated) / seconds : 0.0,
                 static_cast<long long>(llm.build_config().max_batch_size),
                 std::string(kv_cache_storage_name(llm.kv_cache_storage())).c_str(),
                 reasons.c_str());
  }
}

}  // namespace

static void register_run(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "run", "Generate with the batched runtime (LLM API): one prompt streams, several batch");
  static RunArgs a;
  cmd->add_option("--engine", a.engine,
                  "Engine file, or a checkpoint directory (built into the engine cache)");
  cmd->add_option("--model", a.model,
                  "Checkpoint run as it is: HF directory, .safetensors, .gguf or llama2.c .bin");
  cmd->add_option("--prompt,-p", a.prompts, "Prompt text (repeatable: prompts run batched)")
      ->required();
  add_sampling_options(cmd, a.sampling);
  cmd->add_option("--logprobs", a.logprobs, "Top-N logprobs of each sampled token (with --json)");
  cmd->add_option("--max-batch-size", a.build.max_batch_size, "Sequences running at once")
      ->capture_default_str()
      ->each([](const std::string&) { a.set_batch = true; });
  cmd->add_option("--max-num-tokens", a.build.max_num_tokens,
                  "Tokens per step (default max(max input len, max batch size))")
      ->each([](const std::string&) { a.set_tokens = true; });
  cmd->add_option("--max-input-len", a.build.max_input_len, "--model: longest prompt")
      ->capture_default_str();
  cmd->add_option("--max-seq-len", a.build.max_seq_len, "--model: prompt + generated tokens")
      ->capture_default_str();
  cmd->add_option("--kv-cache", a.kv_cache, "KV storage f32|f16|bf16|fp8|int8");
  cmd->add_option("--kv-cache-block-size", a.build.kv_cache_block_size, "Tokens per KV page")
      ->capture_default_str();
  cmd->add_option("--kv-cache-blocks", a.build.kv_cache_blocks,
                  "Pages in the KV pool (default: max batch x max seq len)")
      ->each([](const std::string&) { a.set_blocks = true; });
  cmd->add_flag("--deterministic,!--no-deterministic", a.deterministic,
                "Batch-invariant logits (default: on)");
  cmd->add_option("--tokenizer", a.tokenizer, "--model: tokenizer file (default: next to it)");
  add_generation_flags(cmd, a.flags);
  cmd->add_flag("--json", a.json, "Print the outputs as JSON");
  cmd->callback([] { run_run(a); });
}

QF_REGISTER_COMMAND(42, register_run);

}  // namespace qforge::cli

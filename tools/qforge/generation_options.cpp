// Options shared by `qforge generate` and `qforge run` (generation_options.h).
#include "generation_options.h"

namespace qforge::cli {

void add_sampling_options(CLI::App* cmd, SamplingParams& s) {
  s.temperature = 0.8f;
  s.top_k = 40;
  s.top_p = 0.95f;
  cmd->add_option("--max-tokens,-n", s.max_tokens, "New tokens at most (per prompt)")
      ->capture_default_str();
  cmd->add_option("--temperature", s.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0 = all)")
      ->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Keep tokens with p >= min_p * p(top) (0 = off)")
      ->capture_default_str();
  cmd->add_option("--repetition-penalty", s.repetition_penalty,
                  "Penalty on ids already in the context (1 = off)")
      ->capture_default_str();
  cmd->add_option("--seed", s.seed, "Random seed (same seed, same text)")->capture_default_str();
  cmd->add_option("--stop", s.stop, "Stop before this string (repeatable)");
  cmd->add_option("--stop-token-id", s.stop_token_ids, "Stop after this id (repeatable)");
  cmd->add_flag("--ignore-eos", s.ignore_eos, "Keep generating past EOS");
}

void add_generation_flags(CLI::App* cmd, GenerationFlags& f) {
  cmd->add_option("--threads,-t", f.threads, "CPU threads (default: all cores)");
  cmd->add_flag("--bos,!--no-bos", f.bos, "Prepend BOS to each prompt (default: yes)");
  cmd->add_flag("--echo,!--no-echo", f.echo, "Print the prompt before the continuation");
  cmd->add_flag("--quiet,-q", f.quiet, "No statistics line on stderr");
}

}  // namespace qforge::cli

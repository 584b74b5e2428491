// Command-line options shared by the commands that generate text (`qforge generate` on the
// reference runtime, `qforge run` on the batched one), so both spell and default them alike.
#pragma once

#include <CLI/CLI.hpp>

#include "qforge/runtime/sampling.h"

namespace qforge::cli {

// Prompt handling and console output around a generation.
struct GenerationFlags {
  bool bos = true;     // prepend BOS to each prompt
  bool echo = true;    // print the prompt before its continuation
  bool quiet = false;  // no statistics line on stderr
  int threads = 0;     // 0 = all cores
};

// --max-tokens, --temperature, --top-k, --top-p, --min-p, --repetition-penalty, --seed, --stop,
// --stop-token-id, --ignore-eos. Sets the command-line defaults first (temperature 0.8,
// top-k 40, top-p 0.95, as llama.cpp's CLI): a user who types nothing gets sampled text.
void add_sampling_options(CLI::App* cmd, SamplingParams& sampling);

// --threads, --bos/--no-bos, --echo/--no-echo, --quiet.
void add_generation_flags(CLI::App* cmd, GenerationFlags& flags);

}  // namespace qforge::cli

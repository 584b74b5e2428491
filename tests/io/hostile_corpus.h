// The hostile-file corpus: hand-made bad checkpoints, one per failure class per format, each
// with the substrings its error message must contain (the field and the value at fault).
#pragma once

#include <string>
#include <vector>

#include "io/io_test_util.h"

namespace qforge::testing_io {

enum class CorpusKind { Safetensors, Gguf, Llama2c, Config, ShardIndex };

struct HostileCase {
  std::string name;  // "<format>/<failure class>"
  CorpusKind kind;
  std::vector<uint8_t> bytes;       // the file (for ShardIndex: the index JSON)
  std::vector<std::string> expect;  // substrings of the error
  // ShardIndex only: shard file name -> header JSON (data zero-filled to fit).
  std::vector<std::pair<std::string, std::string>> shards;
};

std::vector<HostileCase> hostile_cases();

// Valid small files of each kind (fuzzer seeds; sanity checks that the bad ones differ from a
// good one only in the broken field).
std::vector<uint8_t> good_safetensors();
std::vector<uint8_t> good_gguf();
std::vector<uint8_t> good_llama2c();
std::string good_config_json();

}  // namespace qforge::testing_io

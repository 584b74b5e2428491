// Calibration data for `qforge quantize`: plain-text files, JSONL files (one JSON object per line
// with a text field) or directories of them, tokenized and cut into fixed-length samples, as
// ModelOpt's calibration dataloader feeds `calib_size` samples of `calib_max_seq_length` tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {

struct CalibConfig {
  // Files (.txt/.raw/.tokens plain text, .jsonl/.json lines) or directories (their files, sorted).
  std::vector<std::string> paths;
  // In-memory documents (one per string; the Python API's calib_dataset list), read after the
  // paths as one more set (or, without mix_evenly, appended to the one stream).
  std::vector<std::string> texts;
  int64_t calib_size = 512;            // number of samples
  int64_t calib_batch_size = 8;        // samples per forward batch
  int64_t calib_max_seq_length = 512;  // tokens per sample (BOS included)
  uint64_t seed = 1234;                // which chunks become samples when there are more
  std::string jsonl_text_field = "text";
  // Several paths are several calibration sets: calib_size is split evenly across them (a set
  // with too few chunks gives all it has and the others make up the rest), each chosen with its
  // own seeded draw. false: every path's documents form one stream, sampled as one set.
  bool mix_evenly = true;
  // Activation amax method for static input scales: "max", "percentile", "mse", "entropy".
  std::string amax_method = "max";
  double percentile = 99.99;
};

Status validate_calib_config(const CalibConfig& config);

// What one calibration set (one --calib path) held and gave.
struct CalibSource {
  std::string path;
  int64_t documents = 0;  // non-empty documents (plain-text files, JSONL records)
  int64_t tokens = 0;     // tokens of its text
  int64_t chunks = 0;     // whole samples its text holds
  int64_t samples = 0;    // samples taken from it
};

struct CalibDataset {
  // Each sample holds exactly calib_max_seq_length token ids, BOS first when the tokenizer has
  // one. Samples are consecutive chunks of the concatenated documents.
  std::vector<std::vector<int32_t>> samples;
  int64_t available_chunks = 0;  // how many whole chunks the text held
  int64_t total_tokens = 0;      // tokens in the text
  std::vector<std::string> files;
  // One entry per set (one in all when the paths are not mixed).
  std::vector<CalibSource> sources;
  // Per sample: its set (index into sources) and the documents its tokens come from, as a
  // range [first, last] of document numbers counted across all sets (a sample spanning an EOS
  // touches several).
  std::vector<int32_t> sample_source;
  std::vector<int64_t> sample_first_document, sample_last_document;
};

// Distinct documents behind the samples `which` (indices into dataset.samples; all when empty).
int64_t calib_documents_seen(const CalibDataset& dataset, const std::vector<int64_t>& which = {});

// Reads every file and in-memory text, tokenizes the documents (one per plain-text file, one per
// JSONL record, joined with the EOS token when the tokenizer has one) and cuts
// calib_max_seq_length-token chunks. More chunks than calib_size: a seeded random choice, in text
// order. Fewer: all of them (with a warning). Several paths with mix_evenly: each path is a set
// with its own stream and chunks, calib_size split evenly (CalibConfig::mix_evenly), the samples
// grouped by set in path order. Errors: no files, an empty file set, a JSONL line that is not an
// object with the text field, or text shorter than one sample (the message says how many tokens it
// holds).
Result<CalibDataset> load_calib_dataset(const CalibConfig& config, const Tokenizer& tokenizer);

// A stable fingerprint of the samples (FNV-1a over the ids), for resume checks.
uint64_t calib_dataset_fingerprint(const CalibDataset& dataset);

}  // namespace qforge

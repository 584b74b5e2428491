// Calibration text -> fixed-length token samples (include/qforge/calib/calib_dataset.h).
#include "qforge/calib/calib_dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "qforge/core/log.h"
#include "qforge/core/rng.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

bool is_jsonl(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".jsonl" || ext == ".json";
}

Result<std::vector<std::string>> expand_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> inside;
      for (const auto& entry : fs::directory_iterator(p, ec)) {
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') {
          inside.push_back(entry.path().string());
        }
      }
      if (ec)
        return make_error(ErrorCode::kIo, "calibration: cannot list '{}': {}", p, ec.message());
      std::sort(inside.begin(), inside.end());
      if (inside.empty()) {
        return make_error(ErrorCode::kInvalidArgument, "calibration: directory '{}' holds no files",
                          p);
      }
      files.insert(files.end(), inside.begin(), inside.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      return make_error(ErrorCode::kNotFound, "calibration: '{}' does not exist", p);
    }
  }
  return files;
}

Result<std::string> read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "calibration: cannot open '{}'", file);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, "calibration: error reading '{}'", file);
  return ss.str();
}

// One document per JSONL record (its text field).
Result<std::vector<std::string>> read_jsonl(const std::string& file, const std::string& field) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text(file));
  std::vector<std::string> docs;
  std::istringstream lines(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "calibration: {}:{} is not a JSON object (JSONL needs one object per line)",
                        file, line_no);
    }
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "calibration: {}:{} has no string field \"{}\" (set the field name with "
                        "--calib-text-field)",
                        file, line_no, field);
    }
    docs.push_back(it->get<std::string>());
  }
  return docs;
}

}  // namespace

Status validate_calib_config(const CalibConfig& c) {
  if (c.paths.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no calibration data: pass --calib FILE (plain text, JSONL, or a directory)");
  }
  if (c.calib_size < 1) {
    return make_error(ErrorCode::kInvalidArgument, "calib_size {} must be >= 1", c.calib_size);
  }
  if (c.calib_batch_size < 1) {
    return make_error(ErrorCode::kInvalidArgument, "calib_batch_size {} must be >= 1",
                      c.calib_batch_size);
  }
  if (c.calib_max_seq_length < 2) {
    return make_error(ErrorCode::kInvalidArgument, "calib_max_seq_length {} must be >= 2",
                      c.calib_max_seq_length);
  }
  if (!(c.percentile > 0.0 && c.percentile <= 100.0)) {
    return make_error(ErrorCode::kInvalidArgument, "percentile {} must be in (0, 100]",
                      c.percentile);
  }
  return ok_status();
}

Result<CalibDataset> load_calib_dataset(const CalibConfig& config, const Tokenizer& tokenizer) {
  QF_TRY(validate_calib_config(config));
  CalibDataset ds;
  QF_ASSIGN_OR_RETURN(ds.files, expand_paths(config.paths));

  // The token stream: documents joined by EOS so that a chunk spanning two documents still
  // reads as the model saw documents in training.
  std::vector<int32_t> stream;
  const int32_t eos = tokenizer.eos_id();
  bool new_doc = false;  // the next non-empty text starts a document
  const auto append = [&](const std::string& text, const std::string& file) -> Status {
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return ok_status();
    auto ids = tokenizer.encode(text, /*add_bos=*/false);
    if (!ids.ok()) return std::move(ids).error().add_context("tokenizing " + file);
    if (new_doc && !stream.empty() && eos >= 0) stream.push_back(eos);
    new_doc = false;
    stream.insert(stream.end(), ids.value().begin(), ids.value().end());
    return ok_status();
  };
  for (const auto& file : ds.files) {
    if (is_jsonl(file)) {
      QF_ASSIGN_OR_RETURN(std::vector<std::string> docs, read_jsonl(file, config.jsonl_text_field));
      for (const auto& doc : docs) {
        new_doc = true;
        QF_TRY(append(doc, file));
      }
      continue;
    }
    QF_ASSIGN_OR_RETURN(std::string text, read_text(file));
    // One document, encoded in pieces of about 64 KiB cut at line ends: a tokenizer's working
    // memory grows with its input, and no token spans a newline in Llama-family vocabularies.
    new_doc = true;
    constexpr size_t kPiece = 64 * 1024;
    for (size_t at = 0; at < text.size();) {
      size_t end = std::min(text.size(), at + kPiece);
      if (end < text.size()) {
        const size_t nl = text.rfind('\n', end);
        if (nl != std::string::npos && nl > at) end = nl + 1;
      }
      QF_TRY(append(text.substr(at, end - at), file));
      at = end;
    }
  }
  ds.total_tokens = static_cast<int64_t>(stream.size());
  if (stream.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "calibration set is empty: {} file(s) hold no text", ds.files.size());
  }
  const int32_t bos = tokenizer.bos_id();
  const int64_t len = config.calib_max_seq_length;
  const int64_t body = bos >= 0 ? len - 1 : len;
  ds.available_chunks = ds.total_tokens / body;
  if (ds.available_chunks == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "calibration text holds {} tokens, fewer than one sample of "
                      "calib_max_seq_length = {}; give more text or a smaller "
                      "--calib-max-seq-len",
                      ds.total_tokens, len);
  }
  std::vector<int64_t> chosen(static_cast<size_t>(ds.available_chunks));
  std::iota(chosen.begin(), chosen.end(), 0);
  if (ds.available_chunks > config.calib_size) {
    // Seeded partial Fisher-Yates, then text order so that runs are reproducible and readable.
    SplitMix64 rng(config.seed);
    for (int64_t i = 0; i < config.calib_size; ++i) {
      const auto j =
          i + static_cast<int64_t>(rng.next() % static_cast<uint64_t>(ds.available_chunks - i));
      std::swap(chosen[static_cast<size_t>(i)], chosen[static_cast<size_t>(j)]);
    }
    chosen.resize(static_cast<size_t>(config.calib_size));
    std::sort(chosen.begin(), chosen.end());
  } else if (ds.available_chunks < config.calib_size) {
    log_warn("calibration text gives {} samples of {} tokens; calib_size asked for {}",
             ds.available_chunks, len, config.calib_size);
  }
  for (int64_t c : chosen) {
    std::vector<int32_t> sample;
    sample.reserve(static_cast<size_t>(len));
    if (bos >= 0) sample.push_back(bos);
    const auto begin = stream.begin() + c * body;
    sample.insert(sample.end(), begin, begin + body);
    ds.samples.push_back(std::move(sample));
  }
  return ds;
}

uint64_t calib_dataset_fingerprint(const CalibDataset& dataset) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  };
  mix(dataset.samples.size());
  for (const auto& s : dataset.samples) {
    mix(s.size());
    for (int32_t id : s) mix(static_cast<uint32_t>(id));
  }
  return h;
}

}  // namespace qforge

// Calibration text -> fixed-length token samples (include/qforge/calib/calib_dataset.h).
#include "qforge/calib/calib_dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "qforge/core/log.h"
#include "qforge/core/rng.h"
#include "qforge/core/text_file.h"

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

// A regular file (never a FIFO or a device: MmapFile does not block), at most
// kMaxTextInputBytes, valid UTF-8 text (a binary is refused rather than tokenized as garbage).
Result<std::string> read_text(const std::string& file) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(file, "calibration"));
  QF_TRY(check_utf8_text(text, fmt::format("calibration: '{}'", file)));
  return text;
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
  if (c.paths.empty() && c.texts.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no calibration data: pass --calib FILE (plain text, JSONL, or a directory) "
                      "or in-memory texts (Python: calib_dataset=[\"...\", ...])");
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

namespace {

// One calibration set's token stream: documents joined by EOS so that a chunk spanning two
// documents still reads as the model saw documents in training.
struct SetStream {
  std::vector<int32_t> stream;
  std::vector<int64_t> doc_starts;  // stream offset of each document's first token
};

// `texts`: in-memory documents read after the files (may be null).
Result<SetStream> read_set(const std::vector<std::string>& files,
                           const std::vector<std::string>* texts, const CalibConfig& config,
                           const Tokenizer& tokenizer) {
  SetStream set;
  std::vector<int32_t>& stream = set.stream;
  const int32_t eos = tokenizer.eos_id();
  bool new_doc = false;  // the next non-empty text starts a document
  const auto append = [&](const std::string& text, const std::string& file) -> Status {
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return ok_status();
    auto ids = tokenizer.encode(text, /*add_bos=*/false);
    if (!ids.ok()) return std::move(ids).error().add_context("tokenizing " + file);
    if (new_doc && !stream.empty() && eos >= 0) stream.push_back(eos);
    if (new_doc) set.doc_starts.push_back(static_cast<int64_t>(stream.size()));
    new_doc = false;
    stream.insert(stream.end(), ids.value().begin(), ids.value().end());
    return ok_status();
  };
  for (const auto& file : files) {
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
  if (texts != nullptr) {
    for (size_t i = 0; i < texts->size(); ++i) {
      const std::string& text = (*texts)[i];
      QF_TRY(check_utf8_text(text, fmt::format("calibration: text #{}", i)));
      new_doc = true;
      QF_TRY(append(text, fmt::format("text #{}", i)));
    }
  }
  return set;
}

// calib_size split evenly over the sets; a set short of chunks gives all it has and the rest
// is shared among the others.
std::vector<int64_t> even_quotas(const std::vector<int64_t>& chunks, int64_t total) {
  std::vector<int64_t> quota(chunks.size(), 0);
  int64_t remaining = total;
  while (remaining > 0) {
    std::vector<size_t> open;
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (quota[i] < chunks[i]) open.push_back(i);
    }
    if (open.empty()) break;
    const auto n = static_cast<int64_t>(open.size());
    const int64_t per = remaining / n, extra = remaining % n;
    int64_t given = 0;
    for (int64_t k = 0; k < n; ++k) {
      const size_t i = open[static_cast<size_t>(k)];
      const int64_t give = std::min(chunks[i] - quota[i], per + (k < extra ? 1 : 0));
      quota[i] += give;
      given += give;
    }
    remaining -= given;
  }
  return quota;
}

// `count` of the chunks [0, available), by a seeded partial Fisher-Yates, in text order.
std::vector<int64_t> choose_chunks(int64_t available, int64_t count, uint64_t seed) {
  std::vector<int64_t> chosen(static_cast<size_t>(available));
  std::iota(chosen.begin(), chosen.end(), 0);
  if (available > count) {
    SplitMix64 rng(seed);
    for (int64_t i = 0; i < count; ++i) {
      const auto j = i + static_cast<int64_t>(rng.next() % static_cast<uint64_t>(available - i));
      std::swap(chosen[static_cast<size_t>(i)], chosen[static_cast<size_t>(j)]);
    }
    chosen.resize(static_cast<size_t>(count));
    std::sort(chosen.begin(), chosen.end());
  }
  return chosen;
}

}  // namespace

Result<CalibDataset> load_calib_dataset(const CalibConfig& config, const Tokenizer& tokenizer) {
  QF_TRY(validate_calib_config(config));
  CalibDataset ds;
  // One set per path (and one for the in-memory texts) when several are mixed, else one set of
  // everything. A set's texts pointer is null unless it holds the in-memory texts.
  std::vector<std::vector<std::string>> set_paths;
  std::vector<const std::vector<std::string>*> set_texts;
  const std::vector<std::string>* texts = config.texts.empty() ? nullptr : &config.texts;
  const size_t n_sets = config.paths.size() + (texts != nullptr ? 1 : 0);
  if (config.mix_evenly && n_sets > 1) {
    for (const auto& p : config.paths) {
      set_paths.push_back({p});
      set_texts.push_back(nullptr);
    }
    if (texts != nullptr) {
      set_paths.emplace_back();
      set_texts.push_back(texts);
    }
  } else {
    set_paths.push_back(config.paths);
    set_texts.push_back(texts);
  }
  const int32_t bos = tokenizer.bos_id();
  const int64_t len = config.calib_max_seq_length;
  const int64_t body = bos >= 0 ? len - 1 : len;
  std::vector<SetStream> sets;
  std::vector<int64_t> chunks;
  for (size_t s = 0; s < set_paths.size(); ++s) {
    const std::vector<std::string>& paths = set_paths[s];
    QF_ASSIGN_OR_RETURN(std::vector<std::string> files, expand_paths(paths));
    ds.files.insert(ds.files.end(), files.begin(), files.end());
    QF_ASSIGN_OR_RETURN(SetStream set, read_set(files, set_texts[s], config, tokenizer));
    CalibSource src;
    for (size_t i = 0; i < paths.size(); ++i) src.path += (i ? ", " : "") + paths[i];
    if (set_texts[s] != nullptr) {
      src.path +=
          fmt::format("{}({} in-memory texts)", src.path.empty() ? "" : ", ", set_texts[s]->size());
    }
    if (set.stream.empty()) {
      const size_t n_texts = set_texts[s] != nullptr ? set_texts[s]->size() : 0;
      return make_error(ErrorCode::kInvalidArgument,
                        "calibration set is empty: {} file(s){} hold no text{}", files.size(),
                        n_texts > 0 ? fmt::format(" and {} in-memory text(s)", n_texts) : "",
                        set_paths.size() > 1 ? " (in '" + src.path + "')" : "");
    }
    src.documents = static_cast<int64_t>(set.doc_starts.size());
    src.tokens = static_cast<int64_t>(set.stream.size());
    src.chunks = src.tokens / body;
    if (src.chunks == 0 && set_paths.size() > 1) {
      log_warn("calibration set '{}' holds {} tokens, fewer than one sample of {}", src.path,
               src.tokens, len);
    }
    ds.total_tokens += src.tokens;
    ds.available_chunks += src.chunks;
    chunks.push_back(src.chunks);
    ds.sources.push_back(std::move(src));
    sets.push_back(std::move(set));
  }
  if (ds.available_chunks == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "calibration text holds {} tokens, fewer than one sample of "
                      "calib_max_seq_length = {}; give more text or a smaller "
                      "--calib-max-seq-len",
                      ds.total_tokens, len);
  }
  if (ds.available_chunks < config.calib_size) {
    log_warn("calibration text gives {} samples of {} tokens; calib_size asked for {}",
             ds.available_chunks, len, config.calib_size);
  }
  const std::vector<int64_t> quota = even_quotas(chunks, config.calib_size);
  int64_t doc_base = 0;
  for (size_t i = 0; i < sets.size(); ++i) {
    const SetStream& set = sets[i];
    // Set 0 draws with the seed itself, so that one set samples as a plain run always did.
    const uint64_t seed = config.seed + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(i);
    for (int64_t c : choose_chunks(chunks[i], quota[i], seed)) {
      std::vector<int32_t> sample;
      sample.reserve(static_cast<size_t>(len));
      if (bos >= 0) sample.push_back(bos);
      const auto begin = set.stream.begin() + c * body;
      sample.insert(sample.end(), begin, begin + body);
      ds.samples.push_back(std::move(sample));
      const auto doc_of = [&](int64_t pos) {
        const auto it = std::upper_bound(set.doc_starts.begin(), set.doc_starts.end(), pos);
        return doc_base + std::max<int64_t>(0, (it - set.doc_starts.begin()) - 1);
      };
      ds.sample_source.push_back(static_cast<int32_t>(i));
      ds.sample_first_document.push_back(doc_of(c * body));
      ds.sample_last_document.push_back(doc_of((c + 1) * body - 1));
    }
    ds.sources[i].samples = quota[i];
    doc_base += ds.sources[i].documents;
  }
  return ds;
}

int64_t calib_documents_seen(const CalibDataset& ds, const std::vector<int64_t>& which) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  const auto n = static_cast<int64_t>(ds.sample_first_document.size());
  if (which.empty()) {
    for (int64_t i = 0; i < n; ++i) {
      ranges.emplace_back(ds.sample_first_document[i], ds.sample_last_document[i]);
    }
  } else {
    for (int64_t i : which) {
      if (i >= 0 && i < n) {
        ranges.emplace_back(ds.sample_first_document[i], ds.sample_last_document[i]);
      }
    }
  }
  std::sort(ranges.begin(), ranges.end());
  int64_t count = 0, covered_to = -1;  // documents <= covered_to are counted
  for (const auto& [a, b] : ranges) {
    if (b <= covered_to) continue;
    count += b - std::max(a, covered_to + 1) + 1;
    covered_to = b;
  }
  return count;
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

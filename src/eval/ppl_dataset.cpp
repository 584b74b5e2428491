// Turning a text into perplexity chunks under the protocol of include/qforge/eval/perplexity.h.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "qforge/eval/perplexity.h"

namespace qforge {
namespace {

std::string normalize_newlines(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

std::string_view strip(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// The first scored index of a chunk of `size` tokens under `scoring`.
int64_t first_target(int64_t size, PplScoring scoring) {
  return scoring == PplScoring::kAll ? 1 : size / 2;
}

Result<PplDataset> document_chunks(const std::string& text, const Tokenizer& tokenizer,
                                   const PerplexityOptions& o, const std::string& name) {
  PplDataset ds;
  std::string_view rest(text);
  while (!rest.empty() &&
         (o.max_chunks == 0 || static_cast<int64_t>(ds.chunks.size()) < o.max_chunks)) {
    const size_t at = rest.find(o.doc_separator);
    const std::string_view doc = strip(rest.substr(0, at));
    rest = at == std::string_view::npos ? std::string_view()
                                        : rest.substr(at + o.doc_separator.size());
    if (doc.empty()) continue;
    QF_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.encode(doc, o.add_bos));
    if (static_cast<int64_t>(ids.size()) > o.ctx) ids.resize(static_cast<size_t>(o.ctx));
    const auto size = static_cast<int64_t>(ids.size());
    const int64_t first = first_target(size, o.scoring);
    if (size <= first) continue;  // nothing to score (a one-token document)
    ds.scored_tokens += size - first;
    ds.total_text_tokens += size;
    ds.chunks.push_back({std::move(ids), first});
  }
  if (ds.chunks.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dataset '{}': no document with at least two tokens after splitting on "
                      "'{}' (is the separator right?)",
                      name, o.doc_separator);
  }
  ds.protocol = fmt::format(
      "documents split on '{}' (stripped), each encoded alone, {}truncated to {} tokens; {} "
      "documents; scoring {} ({} tokens)",
      o.doc_separator, o.add_bos ? "[BOS] prepended, " : "", o.ctx, ds.chunks.size(),
      o.scoring == PplScoring::kAll ? "every token after the first" : "the second half of each",
      ds.scored_tokens);
  return ds;
}

Result<PplDataset> stream_chunks(const std::string& text, const Tokenizer& tokenizer,
                                 const PerplexityOptions& o, const std::string& name) {
  QF_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.encode(text, false));
  const int64_t bos = o.add_bos ? 1 : 0;
  const int64_t body = o.ctx - bos;  // text ids per chunk
  const int64_t stride = o.stride == 0 ? body : o.stride;
  if (stride < 1 || stride > body) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--stride {} is out of range; expected 1 to {} (the text ids per chunk; "
                      "0 = non-overlapping)",
                      o.stride, body);
  }
  const bool overlap = stride < body;
  if (overlap && o.scoring == PplScoring::kSecondHalf) {
    return make_error(ErrorCode::kInvalidArgument,
                      "second-half scoring needs non-overlapping chunks; got stride {} < {} "
                      "(drop --stride or use --scoring all)",
                      stride, body);
  }
  const auto n_ids = static_cast<int64_t>(ids.size());
  if (n_ids < body) {
    return make_error(ErrorCode::kInvalidArgument,
                      "dataset '{}' has {} tokens but one chunk of --ctx {} needs {} (use a "
                      "smaller --ctx or a longer text)",
                      name, n_ids, o.ctx, body);
  }
  PplDataset ds;
  ds.total_text_tokens = n_ids;
  for (int64_t start = 0; start + body <= n_ids; start += stride) {
    if (o.max_chunks > 0 && static_cast<int64_t>(ds.chunks.size()) >= o.max_chunks) break;
    PplChunk chunk;
    if (o.add_bos) chunk.tokens.push_back(tokenizer.bos_id());
    chunk.tokens.insert(chunk.tokens.end(), ids.begin() + start, ids.begin() + start + body);
    chunk.first_target = first_target(o.ctx, o.scoring);
    if (overlap && start > 0) chunk.first_target = o.ctx - stride;  // only the new tokens
    ds.scored_tokens += o.ctx - chunk.first_target;
    ds.chunks.push_back(std::move(chunk));
  }
  ds.protocol = fmt::format(
      "text (CRLF->LF) encoded once ({} tokens), chunks of {} = {}{} ids, stride {}{}; {} "
      "chunks; scoring {} ({} tokens)",
      n_ids, o.ctx, o.add_bos ? "[BOS] + " : "", body, stride,
      overlap ? " (overlapping: later chunks score only their last stride tokens)" : "",
      ds.chunks.size(),
      o.scoring == PplScoring::kAll
          ? "every token after position 0"
          : fmt::format("positions {}..{} of each chunk (second half)", o.ctx / 2, o.ctx - 1),
      ds.scored_tokens);
  return ds;
}

}  // namespace

const char* ppl_scoring_name(PplScoring scoring) {
  return scoring == PplScoring::kAll ? "all" : "second-half";
}

Result<PplScoring> parse_ppl_scoring(const std::string& text) {
  if (text == "all") return PplScoring::kAll;
  if (text == "second-half") return PplScoring::kSecondHalf;
  return make_error(ErrorCode::kInvalidArgument,
                    "--scoring '{}' is unknown; expected 'all' or 'second-half'", text);
}

Result<PplDataset> make_ppl_dataset(const std::string& raw_text, const Tokenizer& tokenizer,
                                    const PerplexityOptions& o, const std::string& name) {
  if (o.ctx < 2) {
    return make_error(ErrorCode::kInvalidArgument, "--ctx {} is too small; expected >= 2", o.ctx);
  }
  if (o.max_chunks < 0) {
    return make_error(ErrorCode::kInvalidArgument, "--max-chunks {} must be >= 0", o.max_chunks);
  }
  if (o.add_bos && tokenizer.bos_id() < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the tokenizer ({}) has no BOS token; run with --no-bos", tokenizer.kind());
  }
  const std::string text = normalize_newlines(raw_text);
  auto ds = o.doc_separator.empty() ? stream_chunks(text, tokenizer, o, name)
                                    : document_chunks(text, tokenizer, o, name);
  if (ds.ok()) ds->protocol = fmt::format("dataset '{}': {}", name, ds->protocol);
  return ds;
}

}  // namespace qforge

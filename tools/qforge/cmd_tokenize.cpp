// `qforge tokenize`: text -> ids and pieces (--text or --file), or ids -> text (--decode), with
// any tokenizer qforge reads (tokenizer.json, .model, tokenizer.bin, .gguf, a model directory).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/core/text_file.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  std::string file;
  std::string decode;
  bool bos = true;
  bool json = false;
  int64_t vocab_size = 0;
};

// Pieces may hold control characters ("\n<s>\n" in llama2.c files) and raw bytes.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7F) {
      out += fmt::format("\\x{:02X}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, ',')) {
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    if (b == std::string::npos) {
      throw CliFailure(
          fmt::format("--decode '{}': empty item (expected ids like 1,15043,3186)", text));
    }
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX) {
      throw CliFailure(
          fmt::format("--decode: '{}' is not a token id (expected integers separated "
                      "by commas, e.g. 1,15043,3186)",
                      item));
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::string dump(const nlohmann::json& j) {
  // Decoded text and pieces may be partial UTF-8: replace rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void run_tokenize(const TokenizeOptions& o) {
  const int modes = !o.text.empty() + !o.file.empty() + !o.decode.empty();
  if (modes != 1) {
    throw CliFailure("tokenize: give exactly one of --text, --file or --decode");
  }
  auto tokenizer = value_or_fail(load_tokenizer(o.tokenizer, o.vocab_size));
  nlohmann::json out;
  out["tokenizer"] = o.tokenizer;
  out["kind"] = tokenizer->kind();
  out["vocab_size"] = tokenizer->vocab_size();
  const std::string header =
      fmt::format("tokenizer: {} ({}, {} tokens, bos {}, eos {})", o.tokenizer, tokenizer->kind(),
                  tokenizer->vocab_size(), tokenizer->bos_id(), tokenizer->eos_id());

  if (!o.decode.empty()) {
    const std::vector<int32_t> ids = parse_ids(o.decode);
    const std::string text = value_or_fail(tokenizer->decode(ids));
    if (o.json) {
      out["ids"] = ids;
      out["text"] = text;
      std::printf("%s\n", dump(out).c_str());
    } else {
      std::printf("%s\n%s\n", header.c_str(), text.c_str());
    }
    return;
  }

  std::string text = o.text;
  if (!o.file.empty()) {
    text = value_or_fail(read_text_input(o.file, "tokenize: --file"));
  }
  const std::vector<int32_t> ids = value_or_fail(tokenizer->encode(text, o.bos));
  if (o.json) {
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tokenizer->piece(id));
    out["bos"] = o.bos;
    out["ids"] = ids;
    out["pieces"] = pieces;
    std::printf("%s\n", dump(out).c_str());
    return;
  }
  std::printf("%s\n", header.c_str());
  std::string line = fmt::format("ids ({}):", ids.size());
  for (int32_t id : ids) line += fmt::format(" {}", id);
  std::printf("%s\n", line.c_str());
  for (int32_t id : ids) {
    std::printf("%8d  %s\n", id, printable(tokenizer->piece(id)).c_str());
  }
}

}  // namespace

static void register_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Encode text to token ids and pieces, or decode ids to text, with a tokenizer.json, "
      "SentencePiece .model, llama2.c tokenizer.bin, .gguf or model directory");
  static TokenizeOptions o;
  cmd->add_option("--tokenizer", o.tokenizer, "Tokenizer file or model directory")->required();
  cmd->add_option("--text", o.text, "Text to encode");
  cmd->add_option("--file", o.file, "Encode the contents of this file");
  cmd->add_option("--decode", o.decode, "Comma-separated ids to decode, e.g. 1,15043,3186");
  cmd->add_flag("--bos,!--no-bos", o.bos,
                "Add the BOS token as the model's template does (default)");
  cmd->add_flag("--json", o.json, "Print machine-readable JSON");
  cmd->add_option("--vocab-size", o.vocab_size,
                  "Vocabulary size for llama2.c tokenizer.bin files (0 = read to end of file)");
  cmd->callback([] { run_tokenize(o); });
}

QF_REGISTER_COMMAND(30, register_tokenize);

}  // namespace qforge::cli

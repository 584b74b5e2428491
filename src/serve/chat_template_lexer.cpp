// Chat-template lexer: splits the source into text and tag tokens, applying Jinja's whitespace
// control as transformers configures it (trim_blocks: the newline after a block tag goes;
// lstrip_blocks: spaces and tabs before a block tag on its line go; `{%-` / `-%}` strip all
// whitespace on that side; `{%+` keeps the line's indentation).
#include <fmt/format.h>
#include <cctype>

#include "serve/chat_template_ast.h"

namespace qforge::chat_template_internal {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

class Lexer {
 public:
  Lexer(std::string_view src, const ChatTemplateLimits& limits) : src_(src), limits_(limits) {}

  std::vector<Token> run() {
    bool strip_next = false;  // the previous tag ended with '-'
    bool trim_next = false;   // the previous tag was a block/comment (trim_blocks)
    while (true) {
      const size_t tag = find_tag(cursor_);
      std::string text(src_.substr(cursor_, tag - cursor_));
      const bool at_line_start = cursor_ == 0 || src_[cursor_ - 1] == '\n';
      if (strip_next) {
        size_t n = 0;
        while (n < text.size() && is_space(text[n])) ++n;
        text.erase(0, n);
      } else if (trim_next) {
        if (text.starts_with("\r\n")) {
          text.erase(0, 2);
        } else if (text.starts_with("\n")) {
          text.erase(0, 1);
        }
      }
      if (tag < src_.size()) {
        const char kind = src_[tag + 1];
        const char mod = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (mod == '-') {
          while (!text.empty() && is_space(text.back())) text.pop_back();
        } else if (kind != '{' && mod != '+') {
          lstrip_line(text, at_line_start);
        }
      }
      const Pos text_pos = pos_at(cursor_);
      if (!text.empty()) tokens_.push_back({Tok::kText, std::move(text), text_pos});
      if (tag >= src_.size()) break;
      advance_to(tag);
      const char kind = src_[tag + 1];
      size_t p = tag + 2;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
      if (kind == '#') {
        const size_t end = src_.find("#}", p);
        if (end == std::string_view::npos) {
          throw TemplateError(pos_at(tag), "unterminated comment '{#' (no '#}')");
        }
        strip_next = end > p && src_[end - 1] == '-';
        trim_next = true;
        advance_to(end + 2);
        continue;
      }
      const bool block = kind == '%';
      tokens_.push_back({block ? Tok::kBlockBegin : Tok::kExprBegin, "", pos_at(tag)});
      advance_to(p);
      strip_next = lex_tag(block);
      trim_next = block;
    }
    tokens_.push_back({Tok::kEof, "", pos_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  // The next "{{", "{%" or "{#" at or after `from`, or src_.size().
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return src_.size();
  }

  // lstrip_blocks: drop the spaces/tabs between the last newline (or the start of the line) and
  // the tag, when nothing else is there.
  static void lstrip_line(std::string& text, bool text_at_line_start) {
    size_t n = text.size();
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t')) --n;
    if ((n > 0 && text[n - 1] == '\n') || (n == 0 && text_at_line_start)) text.resize(n);
  }

  Pos pos_at(size_t offset) {
    // Positions only move forward; keep a running line/column.
    while (line_offset_ < offset && line_offset_ < src_.size()) {
      if (src_[line_offset_] == '\n') {
        ++line_;
        column_ = 1;
      } else {
        ++column_;
      }
      ++line_offset_;
    }
    return {line_, column_};
  }
  void advance_to(size_t offset) { cursor_ = offset; }

  // Expression tokens up to the closing "}}" / "%}"; returns whether it was "-}}" / "-%}".
  bool lex_tag(bool block) {
    const char closer = block ? '%' : '}';
    int depth = 0;  // open ( [ { : a "}" closing a dict literal is not the tag's end
    size_t p = cursor_;
    while (true) {
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (p >= src_.size()) {
        throw TemplateError(pos_at(cursor_), fmt::format("unterminated '{}' tag (no '{}}}')",
                                                         block ? "{%" : "{{", block ? "%" : "}"));
      }
      const char c = src_[p];
      const Pos here = pos_at(p);
      // Tag end: "-%}" / "%}" or "-}}" / "}}".
      if (depth == 0) {
        if (c == '-' && p + 2 < src_.size() && src_[p + 1] == closer && src_[p + 2] == '}') {
          tokens_.push_back({block ? Tok::kBlockEnd : Tok::kExprEnd, "", here});
          cursor_ = p + 3;
          return true;
        }
        if (c == closer && p + 1 < src_.size() && src_[p + 1] == '}') {
          tokens_.push_back({block ? Tok::kBlockEnd : Tok::kExprEnd, "", here});
          cursor_ = p + 2;
          return false;
        }
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
          ++e;
        }
        tokens_.push_back({Tok::kName, std::string(src_.substr(p, e - p)), here});
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = p;
        while (e < src_.size() &&
               (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
          ++e;
        }
        bool is_float = false;
        if (e + 1 < src_.size() && src_[e] == '.' &&
            std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          size_t x = e + 1;
          if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
          if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
            is_float = true;
            e = x;
            while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
          }
        }
        std::string num;
        for (size_t k = p; k < e; ++k) {
          if (src_[k] != '_') num += src_[k];
        }
        tokens_.push_back({is_float ? Tok::kFloat : Tok::kInt, std::move(num), here});
        p = e;
      } else if (c == '\'' || c == '"') {
        p = lex_string(p, here);
      } else {
        static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (std::string_view two : kTwo) {
          if (src_.substr(p, 2) == two) op = std::string(two);
        }
        if (op.size() == 1 &&
            std::string_view("()[]{}.,:|~+-*/%<>=").find(c) == std::string_view::npos) {
          throw TemplateError(
              here, fmt::format("unexpected character '{}' in a tag",
                                std::isprint(static_cast<unsigned char>(c))
                                    ? std::string(1, c)
                                    : fmt::format("\\x{:02x}", static_cast<unsigned char>(c))));
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        if (depth > limits_.max_nesting) {
          throw TemplateError(here,
                              fmt::format("brackets nested deeper than {}", limits_.max_nesting));
        }
        tokens_.push_back({Tok::kOp, op, here});
        p += op.size();
      }
    }
  }

  // A quoted string with Python escapes; returns the offset after the closing quote.
  size_t lex_string(size_t p, Pos here) {
    const char quote = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) throw TemplateError(here, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) throw TemplateError(here, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;  // line continuation
        case 'u':
        case 'x': {
          const size_t n = e == 'u' ? 4 : 2;
          if (i + n > src_.size()) throw TemplateError(here, "truncated \\u or \\x escape");
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const char h = src_[i + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) {
              throw TemplateError(here, "bad hex digit in a \\u or \\x escape");
            }
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                     ? h - '0'
                                                     : std::tolower(h) - 'a' + 10);
          }
          i += n;
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate: no valid UTF-8
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:  // Python keeps unknown escapes as they are
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({Tok::kString, std::move(out), here});
    return i + 1;
  }

  std::string_view src_;
  const ChatTemplateLimits& limits_;
  size_t cursor_ = 0;
  std::vector<Token> tokens_;
  size_t line_offset_ = 0;
  int line_ = 1;
  int column_ = 1;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const ChatTemplateLimits& limits) {
  return Lexer(source, limits).run();
}

}  // namespace qforge::chat_template_internal

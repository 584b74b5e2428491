// Task files of multiple_choice.h: plain JSONL (context/query, choices, label) and HellaSwag's
// JSONL with lm-eval's preprocessing. Every line is untrusted: errors name file, line and field.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "core/json_depth.h"
#include "qforge/core/text_file.h"
#include "qforge/eval/multiple_choice.h"

namespace qforge {
namespace {

using nlohmann::json;

const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

Result<std::string> string_field(const json& j, const char* name, const std::string& where) {
  const json* f = field(j, name);
  if (f == nullptr) {
    return make_error(ErrorCode::kFormat, "{}: no \"{}\" field", where, name);
  }
  if (!f->is_string()) {
    return make_error(ErrorCode::kFormat, "{}: \"{}\" is {}, expected a string", where, name,
                      f->type_name());
  }
  return f->get<std::string>();
}

// An int, or a string of decimal digits (HellaSwag stores "0".."3").
Result<int64_t> label_field(const json& j, const std::string& where, int64_t n_choices) {
  const json* f = field(j, "label");
  if (f == nullptr) return make_error(ErrorCode::kFormat, "{}: no \"label\" field", where);
  int64_t label = -1;
  if (f->is_number_integer()) {
    label = f->get<int64_t>();
  } else if (f->is_string()) {
    const std::string s = f->get<std::string>();
    if (s.empty() || s.size() > 9 ||
        !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return make_error(ErrorCode::kFormat,
                        "{}: \"label\" is the string '{}', expected a choice index (e.g. 0 or "
                        "\"0\"; unlabeled test splits cannot be scored)",
                        where, s.substr(0, 40));
    }
    label = std::stoll(s);
  } else {
    return make_error(ErrorCode::kFormat, "{}: \"label\" is {}, expected an integer", where,
                      f->type_name());
  }
  if (label < 0 || label >= n_choices) {
    return make_error(ErrorCode::kFormat, "{}: \"label\" {} is outside [0, {}) ({} choices)", where,
                      label, n_choices, n_choices);
  }
  return label;
}

Result<std::vector<std::string>> choices_field(const json& j, const char* name,
                                               const std::string& where) {
  const json* f = field(j, name);
  if (f == nullptr) return make_error(ErrorCode::kFormat, "{}: no \"{}\" field", where, name);
  if (!f->is_array()) {
    return make_error(ErrorCode::kFormat, "{}: \"{}\" is {}, expected an array of strings", where,
                      name, f->type_name());
  }
  if (f->size() < 2 || f->size() > static_cast<size_t>(kMcMaxChoices)) {
    return make_error(ErrorCode::kFormat, "{}: \"{}\" has {} entries, expected 2..{}", where, name,
                      f->size(), kMcMaxChoices);
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < f->size(); ++i) {
    const json& c = (*f)[i];
    if (!c.is_string()) {
      return make_error(ErrorCode::kFormat, "{}: \"{}\"[{}] is {}, expected a string", where, name,
                        i, c.type_name());
    }
    out.push_back(c.get<std::string>());
  }
  return out;
}

Result<McExample> parse_jsonl_example(const json& j, const std::string& where) {
  McExample ex;
  const char* ctx_name = field(j, "context") != nullptr ? "context" : "query";
  if (field(j, "context") == nullptr && field(j, "query") == nullptr) {
    return make_error(ErrorCode::kFormat, "{}: no \"context\" (or \"query\") field", where);
  }
  QF_ASSIGN_OR_RETURN(ex.context, string_field(j, ctx_name, where));
  QF_ASSIGN_OR_RETURN(ex.choices, choices_field(j, "choices", where));
  QF_ASSIGN_OR_RETURN(ex.label, label_field(j, where, static_cast<int64_t>(ex.choices.size())));
  return ex;
}

Result<McExample> parse_hellaswag_example(const json& j, const std::string& where) {
  std::string ctx;
  if (field(j, "ctx_a") != nullptr || field(j, "ctx_b") != nullptr) {
    QF_ASSIGN_OR_RETURN(std::string a, string_field(j, "ctx_a", where));
    QF_ASSIGN_OR_RETURN(std::string b, string_field(j, "ctx_b", where));
    ctx = a + " " + capitalize_ascii(b);
  } else {
    QF_ASSIGN_OR_RETURN(ctx, string_field(j, "ctx", where));
  }
  // lm-eval always writes "<activity_label>: "; a file without the field gets the bare context.
  std::string query = ctx;
  if (field(j, "activity_label") != nullptr) {
    QF_ASSIGN_OR_RETURN(std::string activity, string_field(j, "activity_label", where));
    query = activity + ": " + ctx;
  }
  McExample ex;
  ex.context = hellaswag_preprocess(query);
  QF_ASSIGN_OR_RETURN(std::vector<std::string> endings, choices_field(j, "endings", where));
  for (const std::string& e : endings) ex.choices.push_back(hellaswag_preprocess(e));
  QF_ASSIGN_OR_RETURN(ex.label, label_field(j, where, static_cast<int64_t>(ex.choices.size())));
  return ex;
}

}  // namespace

const char* mc_format_name(McFormat format) {
  return format == McFormat::kHellaSwag ? "hellaswag" : "jsonl";
}

Result<McFormat> parse_mc_format(std::string_view text) {
  if (text == "jsonl") return McFormat::kJsonl;
  if (text == "hellaswag") return McFormat::kHellaSwag;
  return make_error(ErrorCode::kInvalidArgument,
                    "task format '{}' is unknown; expected jsonl or hellaswag", text);
}

std::string capitalize_ascii(std::string_view text) {
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    if (c >= 0x80) continue;
    out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return out;
}

std::string hellaswag_preprocess(std::string_view text) {
  // text.strip(); text.replace(" [title]", ". "); re.sub("\\[.*?\\]", "", text);
  // text.replace("  ", " ")  (one pass, non-overlapping, as Python's str.replace).
  const auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t b = 0, e = text.size();
  while (b < e && is_space(text[b])) ++b;
  while (e > b && is_space(text[e - 1])) --e;
  std::string s(text.substr(b, e - b));
  std::string t;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 8, " [title]") == 0) {
      t += ". ";
      i += 8;
    } else {
      t += s[i++];
    }
  }
  std::string u;
  for (size_t i = 0; i < t.size();) {
    const size_t close = t[i] == '[' ? t.find(']', i + 1) : std::string::npos;
    if (close != std::string::npos) {
      i = close + 1;
    } else {
      u += t[i++];
    }
  }
  std::string out;
  for (size_t i = 0; i < u.size();) {
    if (u.compare(i, 2, "  ") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += u[i++];
    }
  }
  return out;
}

Result<McTask> parse_mc_task(std::string_view text, McFormat format, const std::string& source) {
  McTask task;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", source, line_no);
    if (line.size() > kMcMaxLineBytes) {
      return make_error(ErrorCode::kFormat, "{}: line of {} bytes exceeds the {}-byte limit", where,
                        line.size(), kMcMaxLineBytes);
    }
    QF_TRY(check_json_depth(line, where));
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return make_error(ErrorCode::kFormat, "{}: not valid JSON (one object per line expected)",
                        where);
    }
    if (!j.is_object()) {
      return make_error(ErrorCode::kFormat, "{}: a JSON {}, expected an object", where,
                        j.type_name());
    }
    Result<McExample> ex = format == McFormat::kHellaSwag ? parse_hellaswag_example(j, where)
                                                          : parse_jsonl_example(j, where);
    if (!ex.ok()) return std::move(ex).error();
    for (size_t c = 0; c < ex->choices.size(); ++c) {
      if (ex->choices[c].empty()) {
        return make_error(ErrorCode::kFormat, "{}: choice {} is empty", where, c);
      }
    }
    ex->line = line_no;
    task.examples.push_back(std::move(ex).value());
  }
  if (task.examples.empty()) {
    return make_error(ErrorCode::kFormat, "{}: no examples (expected one JSON object per line)",
                      source);
  }
  return task;
}

Result<McTask> load_mc_task(const std::filesystem::path& path, McFormat format) {
  QF_ASSIGN_OR_RETURN(std::string text, read_text_input(path, "task file"));
  QF_TRY(check_utf8_text(text, fmt::format("task file '{}'", path.string())));
  QF_ASSIGN_OR_RETURN(McTask task, parse_mc_task(text, format, path.string()));
  task.name = path.stem().string();
  return task;
}

}  // namespace qforge

// Internals of the chat-template interpreter (include/qforge/serve/chat_template.h): values,
// tokens, the AST, and the error type thrown inside the interpreter (caught at the public API).
#pragma once

#include <fmt/format.h>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "qforge/serve/chat_template.h"

namespace qforge::chat_template_internal {

struct Pos {
  int line = 1;
  int column = 1;
};

// Thrown inside the interpreter only; ChatTemplate::parse/render turn it into an Error.
struct TemplateError : std::runtime_error {
  TemplateError(Pos p, const std::string& message) : std::runtime_error(message), pos(p) {}
  Pos pos;
};

struct Value;
using List = std::vector<Value>;
struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, unique keys
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

struct Value {
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<const List> list;
  std::shared_ptr<Dict> dict;  // shared: namespace() objects are updated in place by {% set %}
  int depth = 0;               // nesting of lists/dicts inside (bounded by max_nesting)

  static Value none() { return make(Kind::kNone); }
  static Value boolean(bool v) {
    Value x = make(Kind::kBool);
    x.b = v;
    return x;
  }
  static Value integer(int64_t v) {
    Value x = make(Kind::kInt);
    x.i = v;
    return x;
  }
  static Value number(double v) {
    Value x = make(Kind::kFloat);
    x.f = v;
    return x;
  }
  static Value string(std::string v) {
    Value x = make(Kind::kString);
    x.s = std::move(v);
    return x;
  }
  static Value make(Kind k) {
    Value x;
    x.kind = k;
    return x;
  }
  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
};

const char* kind_name(Value::Kind k);

// ---- tokens ----
enum class Tok : uint8_t {
  kText,        // raw template text (whitespace control already applied)
  kExprBegin,   // {{
  kExprEnd,     // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,
  kInt,
  kFloat,
  kOp,  // ( ) [ ] { } . , : | ~ + - * / // % ** == != < > <= >= =
  kEof,
};

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // kText / kName / kString (unescaped) / kOp / number spelling
  Pos pos;
};

std::vector<Token> lex(std::string_view source, const ChatTemplateLimits& limits);

// ---- AST ----
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum class Kind : uint8_t {
    kLiteral,
    kName,
    kList,     // args
    kDict,     // kwargs-like pairs in `pairs`
    kGetAttr,  // args[0].name
    kGetItem,  // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (null entries allowed)
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..])
    kUnary,    // op args[0]: "-", "+", "not"
    kBinary,   // args[0] op args[1]
    kCond,     // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind = Kind::kLiteral;
  Pos pos;
  Value literal;
  std::string name;  // kName / kGetAttr / kFilter / kTest; kUnary/kBinary operator
  bool negated = false;
  int depth = 1;  // height of the tree below (bounded: evaluation recurses over it)
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;  // kDict
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;
struct Node {
  enum class Kind : uint8_t { kText, kOutput, kIf, kFor, kSet, kBlock };
  Kind kind = Kind::kText;
  Pos pos;
  std::string text;                                // kText
  ExprPtr expr;                                    // kOutput, kSet value, kFor iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition, body) for if/elif
  Body body;                                       // kFor / kBlock body
  Body else_body;                                  // kIf else, kFor else
  std::vector<std::string> targets;                // kFor loop variables; kSet: name[, attr]
  ExprPtr filter;                                  // kFor `if` condition
};

struct Program {
  std::string source;
  ChatTemplateLimits limits;
  Body body;
};

// The evaluator's checks shared with the builtins (filters, tests, methods).
class EvalBase {
 public:
  explicit EvalBase(const ChatTemplateLimits& limits) : limits_(limits) {}
  virtual ~EvalBase() = default;
  const ChatTemplateLimits& limits() const { return limits_; }
  virtual Value eval(const Expr& e) = 0;

  [[noreturn]] void fail(const Expr& e, const std::string& message) {
    throw TemplateError(e.pos, message);
  }

  // A string result the template built: bounded like the output.
  Value checked_string(const Expr& e, std::string s) {
    if (s.size() > limits_.max_output_bytes) {
      fail(e, fmt::format("string of {} bytes exceeds the {}-byte limit", s.size(),
                          limits_.max_output_bytes));
    }
    return Value::string(std::move(s));
  }
  Value checked_list(const Expr& e, List items) {
    if (items.size() > limits_.max_list_items) {
      fail(e, fmt::format("list of {} items exceeds the {}-item limit", items.size(),
                          limits_.max_list_items));
    }
    int d = 0;
    for (const Value& v : items) d = std::max(d, v.depth);
    if (d + 1 > 2 * limits_.max_nesting) {
      fail(e, fmt::format("value nested deeper than {}", 2 * limits_.max_nesting));
    }
    Value v = Value::make(Value::Kind::kList);
    v.list = std::make_shared<const List>(std::move(items));
    v.depth = d + 1;
    return v;
  }
  Value checked_dict(const Expr& e, std::shared_ptr<Dict> dict) {
    if (dict->items.size() > limits_.max_list_items) {
      fail(e, fmt::format("dict of {} items exceeds the {}-item limit", dict->items.size(),
                          limits_.max_list_items));
    }
    int d = 0;
    for (const auto& kv : dict->items) d = std::max(d, kv.second.depth);
    if (d + 1 > 2 * limits_.max_nesting) {
      fail(e, fmt::format("value nested deeper than {}", 2 * limits_.max_nesting));
    }
    Value v = Value::make(Value::Kind::kDict);
    v.dict = std::move(dict);
    v.depth = d + 1;
    return v;
  }

  void step(const Expr& e) {
    if (++steps_ > limits_.max_steps) {
      fail(e, fmt::format("template ran more than {} steps", limits_.max_steps));
    }
  }

  // Byte offsets of each code point of a UTF-8 string, plus its size (a malformed byte counts
  // as one code point).
  static std::vector<size_t> codepoints(const std::string& s) {
    std::vector<size_t> cps;
    for (size_t i = 0; i < s.size();) {
      cps.push_back(i);
      const auto c = static_cast<unsigned char>(s[i]);
      size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      if (i + n > s.size()) n = 1;
      for (size_t k = 1; k < n; ++k) {
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) n = 1;
      }
      i += n;
    }
    cps.push_back(s.size());
    return cps;
  }

 protected:
  const ChatTemplateLimits& limits_;
  int64_t steps_ = 0;
};

// Filters, tests and methods (chat_template_builtins.cpp).
Value apply_filter(EvalBase& ev, const Expr& e, const Value& target, const std::vector<Value>& args,
                   const std::vector<std::pair<std::string, Value>>& kwargs);
bool apply_test(EvalBase& ev, const Expr& e, const std::string& name, const Value& target,
                const std::vector<Value>& args);
Value call_method(EvalBase& ev, const Expr& e, const Value& target, const std::string& name,
                  const std::vector<Value>& args,
                  const std::vector<std::pair<std::string, Value>>& kwargs);

std::unique_ptr<Program> parse_program(std::string_view source, const ChatTemplateLimits& limits);
std::string render_program(const Program& program, const nlohmann::ordered_json& context);

// Values <-> text and JSON.
Value value_from_json(const nlohmann::ordered_json& j, int depth, int max_depth);
std::string value_to_output(const Value& v);  // what {{ v }} prints (Python str())
std::string value_repr(const Value& v);       // Python repr() (strings quoted)
// Python json.dumps(v, ensure_ascii=False, indent=indent) (indent < 0: none).
std::string value_to_json(const Value& v, int indent, bool sort_keys);
bool value_truthy(const Value& v);
bool value_equal(const Value& a, const Value& b);

}  // namespace qforge::chat_template_internal

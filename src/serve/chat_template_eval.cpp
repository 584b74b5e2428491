// Chat-template evaluator: walks the AST with scoped variables (a for loop's body is its own
// scope, as in Jinja; namespace() objects carry values out of it), under the sandbox limits.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "serve/chat_template_ast.h"

namespace qforge::chat_template_internal {

// Filters, tests and methods (chat_template_builtins.cpp).
class Evaluator : public EvalBase {
 public:
  explicit Evaluator(const Program& p) : EvalBase(p.limits) {}

  std::string run(const Program& p, const nlohmann::ordered_json& context) {
    scopes_.emplace_back();
    if (context.is_object()) {
      for (auto it = context.begin(); it != context.end(); ++it) {
        scopes_.back()[it.key()] = value_from_json(it.value(), 0, limits_.max_nesting);
      }
    } else if (!context.is_null()) {
      throw TemplateError({0, 0}, "the render context must be a JSON object");
    }
    render(p.body);
    return std::move(out_);
  }

  Value eval(const Expr& e) override {
    step(e);
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return lookup(e.name);
      case Expr::Kind::kList: {
        List items;
        for (const ExprPtr& a : e.args) items.push_back(eval(*a));
        return checked_list(e, std::move(items));
      }
      case Expr::Kind::kDict: {
        auto dict = std::make_shared<Dict>();
        for (const auto& [k, v] : e.pairs) {
          const Value key = eval(*k);
          if (key.kind != Value::Kind::kString) {
            fail(*k, fmt::format("dict keys must be strings here, not {}", kind_name(key.kind)));
          }
          dict->set(key.s, eval(*v));
        }
        return checked_dict(e, std::move(dict));
      }
      case Expr::Kind::kGetAttr: {
        const Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) {
          fail(e, fmt::format("'{}' of an undefined value", e.name));
        }
        if (obj.kind == Value::Kind::kDict) {
          const Value* v = obj.dict->find(e.name);
          if (v != nullptr) return *v;
        }
        return Value();
      }
      case Expr::Kind::kGetItem:
        return get_item(e, eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::kSlice:
        return slice(e);
      case Expr::Kind::kCall:
        return call(e);
      case Expr::Kind::kFilter: {
        const Value target = eval(*e.args[0]);
        std::vector<Value> args;
        std::vector<std::pair<std::string, Value>> kwargs;
        eval_args(e, args, kwargs);
        return apply_filter(*this, e, target, args, kwargs);
      }
      case Expr::Kind::kTest: {
        Value target;
        if (e.name == "defined" || e.name == "undefined") {
          // Testing definedness must not fail on the undefined parts of the path.
          target = eval_lenient(*e.args[0]);
        } else {
          target = eval(*e.args[0]);
        }
        std::vector<Value> args;
        std::vector<std::pair<std::string, Value>> kwargs;
        eval_args(e, args, kwargs);
        return Value::boolean(apply_test(*this, e, e.name, target, args) != e.negated);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::boolean(!value_truthy(v));
        if (v.kind == Value::Kind::kInt) {
          if (e.name == "+") return v;
          if (v.i == INT64_MIN) fail(e, "integer overflow in unary '-'");
          return Value::integer(-v.i);
        }
        if (v.kind == Value::Kind::kFloat) return Value::number(e.name == "-" ? -v.f : v.f);
        fail(e, fmt::format("unary '{}' on a {}", e.name, kind_name(v.kind)));
      }
      case Expr::Kind::kBinary:
        return binary(e);
      case Expr::Kind::kCond:
        if (value_truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value();
    }
    fail(e, "unknown expression");
  }

  void eval_args(const Expr& e, std::vector<Value>& args,
                 std::vector<std::pair<std::string, Value>>& kwargs) {
    for (size_t i = 1; i < e.args.size(); ++i) args.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
  }

 private:
  // `a.b.c is defined`: undefined (not an error) when any step is undefined.
  Value eval_lenient(const Expr& e) {
    if (e.kind == Expr::Kind::kGetAttr || e.kind == Expr::Kind::kGetItem) {
      const Value obj = eval_lenient(*e.args[0]);
      if (obj.is_undefined()) return obj;
      if (e.kind == Expr::Kind::kGetAttr) {
        if (obj.kind == Value::Kind::kDict) {
          const Value* v = obj.dict->find(e.name);
          if (v != nullptr) return *v;
        }
        return Value();
      }
      return get_item(e, obj, eval(*e.args[1]));
    }
    return eval(e);
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value();
  }

  Value get_item(const Expr& e, const Value& obj, const Value& key) {
    if (obj.is_undefined()) fail(e, "subscript of an undefined value");
    if (obj.kind == Value::Kind::kDict) {
      if (key.kind != Value::Kind::kString) return Value();
      const Value* v = obj.dict->find(key.s);
      return v != nullptr ? *v : Value();
    }
    if (obj.kind == Value::Kind::kList || obj.kind == Value::Kind::kString) {
      if (key.kind != Value::Kind::kInt) {
        if (key.kind == Value::Kind::kString) return Value();  // attribute-style: undefined
        fail(e, fmt::format("{} indices must be integers, not {}", kind_name(obj.kind),
                            kind_name(key.kind)));
      }
      if (obj.kind == Value::Kind::kList) {
        const auto n = static_cast<int64_t>(obj.list->size());
        const int64_t i = key.i < 0 ? key.i + n : key.i;
        if (i < 0 || i >= n) return Value();
        return (*obj.list)[static_cast<size_t>(i)];
      }
      const std::vector<size_t> cps = codepoints(obj.s);
      const auto n = static_cast<int64_t>(cps.size()) - 1;
      const int64_t i = key.i < 0 ? key.i + n : key.i;
      if (i < 0 || i >= n) return Value();
      return Value::string(
          obj.s.substr(cps[static_cast<size_t>(i)],
                       cps[static_cast<size_t>(i) + 1] - cps[static_cast<size_t>(i)]));
    }
    fail(e, fmt::format("a {} cannot be subscripted", kind_name(obj.kind)));
  }

 private:
  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    int64_t parts[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[k + 1]) continue;
      const Value v = eval(*e.args[k + 1]);
      if (v.kind == Value::Kind::kNone) continue;
      if (v.kind != Value::Kind::kInt) fail(e, "slice bounds must be integers");
      parts[k] = v.i;
      given[k] = true;
    }
    const int64_t step = parts[2];
    if (step == 0) fail(e, "slice step cannot be zero");
    if (step == INT64_MIN) fail(e, "slice step out of range");
    std::vector<size_t> cps;
    int64_t n = 0;
    if (obj.kind == Value::Kind::kList) {
      n = static_cast<int64_t>(obj.list->size());
    } else if (obj.kind == Value::Kind::kString) {
      cps = codepoints(obj.s);
      n = static_cast<int64_t>(cps.size()) - 1;
    } else {
      fail(e, fmt::format("a {} cannot be sliced", kind_name(obj.kind)));
    }
    // Python's slice.indices().
    const auto clamp = [&](int64_t v, bool g, int64_t dflt) {
      if (!g) return dflt;
      if (v < 0) v = std::max<int64_t>(v + n, step < 0 ? -1 : 0);
      return std::min<int64_t>(v, step < 0 ? n - 1 : n);
    };
    const int64_t start = clamp(parts[0], given[0], step < 0 ? n - 1 : 0);
    const int64_t stop = clamp(parts[1], given[1], step < 0 ? -1 : n);
    std::vector<int64_t> idx;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
    if (obj.kind == Value::Kind::kList) {
      List items;
      for (int64_t i : idx) items.push_back((*obj.list)[static_cast<size_t>(i)]);
      return checked_list(e, std::move(items));
    }
    std::string s;
    for (int64_t i : idx) {
      s.append(obj.s, cps[static_cast<size_t>(i)],
               cps[static_cast<size_t>(i) + 1] - cps[static_cast<size_t>(i)]);
    }
    return Value::string(std::move(s));
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    std::vector<Value> args;
    std::vector<std::pair<std::string, Value>> kwargs;
    if (callee.kind == Expr::Kind::kGetAttr) {
      const Value obj = eval(*callee.args[0]);
      eval_args(e, args, kwargs);
      return call_method(*this, e, obj, callee.name, args, kwargs);
    }
    if (callee.kind != Expr::Kind::kName) fail(e, "only functions and methods can be called");
    eval_args(e, args, kwargs);
    const std::string& name = callee.name;
    if (name == "raise_exception") {
      const std::string msg =
          args.empty() ? std::string("raise_exception() called") : value_to_output(args[0]);
      throw TemplateError(e.pos, "raise_exception: " + msg);
    }
    if (name == "range") {
      if (args.empty() || args.size() > 3) fail(e, "range() takes 1 to 3 arguments");
      for (const Value& a : args) {
        if (a.kind != Value::Kind::kInt) fail(e, "range() arguments must be integers");
      }
      int64_t start = 0, stop = 0, stepv = 1;
      if (args.size() == 1) {
        stop = args[0].i;
      } else {
        start = args[0].i;
        stop = args[1].i;
        if (args.size() == 3) stepv = args[2].i;
      }
      if (stepv == 0) fail(e, "range() step cannot be zero");
      List items;
      for (int64_t i = start; stepv > 0 ? i < stop : i > stop;) {
        if (items.size() >= limits_.max_list_items) {
          fail(e, fmt::format("range() longer than {} items", limits_.max_list_items));
        }
        items.push_back(Value::integer(i));
        if (__builtin_add_overflow(i, stepv, &i)) break;
      }
      return checked_list(e, std::move(items));
    }
    if (name == "namespace" || name == "dict") {
      if (!args.empty()) fail(e, fmt::format("{}() takes keyword arguments only", name));
      auto dict = std::make_shared<Dict>();
      for (auto& [k, v] : kwargs) dict->set(k, std::move(v));
      Value v = checked_dict(e, std::move(dict));
      if (name == "namespace") namespaces_.push_back(v.dict.get());
      return v;
    }
    if (name == "strftime_now") {
      if (args.size() != 1 || args[0].kind != Value::Kind::kString || args[0].s.size() > 256) {
        fail(e, "strftime_now() takes one format string (at most 256 bytes)");
      }
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[1024];
      const size_t n = std::strftime(buf, sizeof buf, args[0].s.c_str(), &tm);
      return Value::string(std::string(buf, n));
    }
    const Value v = lookup(name);
    if (!v.is_undefined())
      fail(e, fmt::format("'{}' is a {}, not a function", name, kind_name(v.kind)));
    fail(e, fmt::format("unknown function '{}' (supported: raise_exception, range, namespace, "
                        "dict, strftime_now)",
                        name));
  }

  static bool as_double(const Value& v, double& out) {
    if (v.kind == Value::Kind::kInt) {
      out = static_cast<double>(v.i);
    } else if (v.kind == Value::Kind::kFloat) {
      out = v.f;
    } else if (v.kind == Value::Kind::kBool) {
      out = v.b ? 1 : 0;
    } else {
      return false;
    }
    return true;
  }
  static bool is_intlike(const Value& v) {
    return v.kind == Value::Kind::kInt || v.kind == Value::Kind::kBool;
  }
  static int64_t as_int(const Value& v) { return v.kind == Value::Kind::kBool ? v.b : v.i; }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value a = eval(*e.args[0]);
      return value_truthy(a) ? eval(*e.args[1]) : a;
    }
    if (op == "or") {
      Value a = eval(*e.args[0]);
      return value_truthy(a) ? a : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    if (op == "~") return checked_string(e, value_to_output(a) + value_to_output(b));
    if (op == "==") return Value::boolean(value_equal(a, b));
    if (op == "!=") return Value::boolean(!value_equal(a, b));
    if (op == "in" || op == "not in") return Value::boolean(contains(e, b, a) == (op == "in"));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c = 0;
      double x = 0, y = 0;
      if (a.kind == Value::Kind::kString && b.kind == Value::Kind::kString) {
        c = a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
      } else if (is_intlike(a) && is_intlike(b)) {
        c = as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b) ? 1 : 0;
      } else if (as_double(a, x) && as_double(b, y)) {
        if (std::isnan(x) || std::isnan(y)) return Value::boolean(false);
        c = x < y ? -1 : x > y ? 1 : 0;
      } else {
        fail(e,
             fmt::format("'{}' between a {} and a {}", op, kind_name(a.kind), kind_name(b.kind)));
      }
      const bool r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
      return Value::boolean(r);
    }
    if (op == "+") {
      if (a.kind == Value::Kind::kString && b.kind == Value::Kind::kString) {
        return checked_string(e, a.s + b.s);
      }
      if (a.kind == Value::Kind::kList && b.kind == Value::Kind::kList) {
        if (a.list->size() + b.list->size() > limits_.max_list_items) {
          fail(e, fmt::format("list longer than {} items", limits_.max_list_items));
        }
        List items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return checked_list(e, std::move(items));
      }
    }
    if (op == "*") {
      const Value* seq = a.kind == Value::Kind::kString || a.kind == Value::Kind::kList   ? &a
                         : b.kind == Value::Kind::kString || b.kind == Value::Kind::kList ? &b
                                                                                          : nullptr;
      const Value* count = seq == &a ? &b : &a;
      if (seq != nullptr && is_intlike(*count)) {
        const int64_t n = std::max<int64_t>(0, as_int(*count));
        const size_t unit = seq->kind == Value::Kind::kString ? seq->s.size() : seq->list->size();
        const size_t limit =
            seq->kind == Value::Kind::kString ? limits_.max_output_bytes : limits_.max_list_items;
        if (unit != 0 && static_cast<uint64_t>(n) > limit / unit) {
          fail(e, fmt::format("repetition result exceeds the {} limit", limit));
        }
        if (seq->kind == Value::Kind::kString) {
          std::string s;
          for (int64_t i = 0; i < n; ++i) s += seq->s;
          return Value::string(std::move(s));
        }
        List items;
        for (int64_t i = 0; i < n; ++i)
          items.insert(items.end(), seq->list->begin(), seq->list->end());
        return checked_list(e, std::move(items));
      }
    }
    return arithmetic(e, op, a, b);
  }

  Value arithmetic(const Expr& e, const std::string& op, const Value& a, const Value& b) {
    if (is_intlike(a) && is_intlike(b) && op != "/") {
      const int64_t x = as_int(a), y = as_int(b);
      int64_t r = 0;
      bool overflow = false;
      if (op == "+") {
        overflow = __builtin_add_overflow(x, y, &r);
      } else if (op == "-") {
        overflow = __builtin_sub_overflow(x, y, &r);
      } else if (op == "*") {
        overflow = __builtin_mul_overflow(x, y, &r);
      } else if (op == "//" || op == "%") {
        if (y == 0) fail(e, fmt::format("integer division or modulo by zero ('{}')", op));
        if (x == INT64_MIN && y == -1) {
          overflow = op == "//";
          r = 0;
        } else {
          int64_t q = x / y, m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
            --q;
            m += y;
          }
          r = op == "//" ? q : m;
        }
      } else if (op == "**") {
        if (y < 0) return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
        r = 1;
        int64_t base = x;
        for (int64_t k = y; k > 0 && !overflow; k >>= 1) {
          if (k & 1) overflow = __builtin_mul_overflow(r, base, &r);
          if (k > 1 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
        }
      }
      if (overflow) fail(e, fmt::format("integer overflow in '{}'", op));
      return Value::integer(r);
    }
    double x = 0, y = 0;
    if (!as_double(a, x) || !as_double(b, y)) {
      fail(e, fmt::format("unsupported operand types for '{}': {} and {}", op, kind_name(a.kind),
                          kind_name(b.kind)));
    }
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (op == "**") return Value::number(std::pow(x, y));
    if (y == 0) fail(e, fmt::format("division by zero ('{}')", op));
    if (op == "/") return Value::number(x / y);
    if (op == "//") return Value::number(std::floor(x / y));
    if (op == "%") {
      const double m = std::fmod(x, y);
      return Value::number(m != 0 && ((m < 0) != (y < 0)) ? m + y : m);
    }
    fail(e, fmt::format("unknown operator '{}'", op));
  }

  bool contains(const Expr& e, const Value& container, const Value& needle) {
    switch (container.kind) {
      case Value::Kind::kString:
        if (needle.kind != Value::Kind::kString) {
          fail(e, fmt::format("'in <string>' needs a string on the left, not {}",
                              kind_name(needle.kind)));
        }
        return container.s.find(needle.s) != std::string::npos;
      case Value::Kind::kList:
        for (const Value& v : *container.list) {
          step(e);
          if (value_equal(v, needle)) return true;
        }
        return false;
      case Value::Kind::kDict:
        return needle.kind == Value::Kind::kString && container.dict->find(needle.s) != nullptr;
      case Value::Kind::kUndefined:
        return false;
      default:
        fail(e, fmt::format("'in' a {}", kind_name(container.kind)));
    }
  }

  // ---- statements ----
  void emit(const Pos& pos, std::string_view s) {
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      throw TemplateError(
          pos, fmt::format("output exceeds the {}-byte limit", limits_.max_output_bytes));
    }
    out_ += s;
  }

  void render(const Body& body) {
    for (const auto& n : body) render(*n);
  }

  void render(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kText:
        emit(n.pos, n.text);
        return;
      case Node::Kind::kOutput:
        emit(n.pos, value_to_output(eval(*n.expr)));
        return;
      case Node::Kind::kBlock:
        render(n.body);
        return;
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches) {
          if (value_truthy(eval(*cond))) {
            render(body);
            return;
          }
        }
        render(n.else_body);
        return;
      case Node::Kind::kSet: {
        Value v = eval(*n.expr);
        if (n.targets.size() == 1) {
          scopes_.back()[n.targets[0]] = std::move(v);
          return;
        }
        const Value ns = lookup(n.targets[0]);
        if (ns.kind != Value::Kind::kDict ||
            std::find(namespaces_.begin(), namespaces_.end(), ns.dict.get()) == namespaces_.end()) {
          throw TemplateError(n.pos, fmt::format("{{% set {}.{} %}}: only attributes of a "
                                                 "namespace() can be assigned",
                                                 n.targets[0], n.targets[1]));
        }
        if (holds_namespace(v)) {
          throw TemplateError(n.pos, "a namespace() cannot be stored inside a namespace()");
        }
        ns.dict->set(n.targets[1], std::move(v));
        return;
      }
      case Node::Kind::kFor:
        render_for(n);
        return;
    }
  }

  bool holds_namespace(const Value& v) const {
    if (v.kind == Value::Kind::kDict) {
      if (std::find(namespaces_.begin(), namespaces_.end(), v.dict.get()) != namespaces_.end()) {
        return true;
      }
      for (const auto& kv : v.dict->items) {
        if (holds_namespace(kv.second)) return true;
      }
    } else if (v.kind == Value::Kind::kList) {
      for (const Value& e : *v.list) {
        if (holds_namespace(e)) return true;
      }
    }
    return false;
  }

  void bind_targets(const Node& n, const Value& item) {
    auto& scope = scopes_.back();
    if (n.targets.size() == 1) {
      scope[n.targets[0]] = item;
      return;
    }
    if (item.kind != Value::Kind::kList || item.list->size() != n.targets.size()) {
      throw TemplateError(n.pos, fmt::format("cannot unpack a {} into {} loop variables",
                                             kind_name(item.kind), n.targets.size()));
    }
    for (size_t i = 0; i < n.targets.size(); ++i) scope[n.targets[i]] = (*item.list)[i];
  }

  void render_for(const Node& n) {
    const Value seq = eval(*n.expr);
    List items;
    switch (seq.kind) {
      case Value::Kind::kUndefined:
        break;
      case Value::Kind::kList:
        items = *seq.list;
        break;
      case Value::Kind::kDict:
        for (const auto& kv : seq.dict->items) items.push_back(Value::string(kv.first));
        break;
      case Value::Kind::kString: {
        const std::vector<size_t> cps = codepoints(seq.s);
        for (size_t i = 0; i + 1 < cps.size(); ++i) {
          items.push_back(Value::string(seq.s.substr(cps[i], cps[i + 1] - cps[i])));
        }
        break;
      }
      default:
        throw TemplateError(n.pos, fmt::format("cannot loop over a {}", kind_name(seq.kind)));
    }
    if (static_cast<int>(scopes_.size()) > limits_.max_nesting) {
      throw TemplateError(n.pos, "for loops nested too deeply");
    }
    scopes_.emplace_back();
    if (n.filter) {
      List kept;
      for (const Value& item : items) {
        count_iteration(n.pos);
        bind_targets(n, item);
        if (value_truthy(eval(*n.filter))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const auto len = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < len; ++i) {
      count_iteration(n.pos);
      auto loop = std::make_shared<Dict>();
      loop->set("index", Value::integer(i + 1));
      loop->set("index0", Value::integer(i));
      loop->set("revindex", Value::integer(len - i));
      loop->set("revindex0", Value::integer(len - i - 1));
      loop->set("first", Value::boolean(i == 0));
      loop->set("last", Value::boolean(i + 1 == len));
      loop->set("length", Value::integer(len));
      loop->set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
      loop->set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value());
      Value lv = Value::make(Value::Kind::kDict);
      lv.dict = std::move(loop);
      lv.depth = 1 + std::max(i > 0 ? items[static_cast<size_t>(i - 1)].depth : 0,
                              i + 1 < len ? items[static_cast<size_t>(i + 1)].depth : 0);
      scopes_.back()["loop"] = std::move(lv);
      bind_targets(n, items[static_cast<size_t>(i)]);
      render(n.body);
    }
    scopes_.pop_back();
    if (len == 0) render(n.else_body);
  }

  void count_iteration(const Pos& pos) {
    if (++iterations_ > limits_.max_loop_iterations) {
      throw TemplateError(
          pos, fmt::format("loops ran more than {} iterations", limits_.max_loop_iterations));
    }
  }

  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::vector<const Dict*> namespaces_;
  std::string out_;
  int64_t iterations_ = 0;
};

std::string render_program(const Program& program, const nlohmann::ordered_json& context) {
  return Evaluator(program).run(program, context);
}

}  // namespace qforge::chat_template_internal

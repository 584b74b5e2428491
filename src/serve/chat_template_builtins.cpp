// Chat-template builtins: the filters, tests and string/dict methods real chat templates use,
// with Jinja's (and Python's) semantics. Anything else is an error naming it.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "serve/chat_template_ast.h"

namespace qforge::chat_template_internal {
namespace {

using Kwargs = std::vector<std::pair<std::string, Value>>;

bool py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto drop = [&](char c) {
    if (chars == nullptr || chars->kind != Value::Kind::kString) return py_space(c);
    return chars->s.find(c) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && drop(s[b])) ++b;
  }
  if (right) {
    while (e > b && drop(s[e - 1])) --e;
  }
  return s.substr(b, e - b);
}

std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return s;
}
std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}
std::string capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}
std::string title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alpha) {
      c = start ? (c >= 'a' ? static_cast<char>(c - 32) : c)
                : (c <= 'Z' ? static_cast<char>(c + 32) : c);
    }
    start = !alpha;
  }
  return out;
}

const Value* arg(const std::vector<Value>& args, const Kwargs& kwargs, size_t i,
                 std::string_view name) {
  if (i < args.size()) return &args[i];
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

const std::string& need_string(EvalBase& ev, const Expr& e, const Value* v, std::string_view what) {
  if (v == nullptr || v->kind != Value::Kind::kString) {
    ev.fail(e, fmt::format("{} needs a string{}", what,
                           v == nullptr ? "" : fmt::format(", not a {}", kind_name(v->kind))));
  }
  return v->s;
}

std::string replace_all(EvalBase& ev, const Expr& e, const std::string& s, const std::string& from,
                        const std::string& to, int64_t count) {
  if (from.empty()) ev.fail(e, "replace() with an empty search string is not supported");
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    if (out.size() > ev.limits().max_output_bytes) ev.fail(e, "replace() result too long");
    pos = f + from.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

Value split(EvalBase& ev, const Expr& e, const std::string& s, const Value* sep, int64_t maxsplit) {
  List parts;
  if (sep == nullptr || sep->kind == Value::Kind::kNone) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && py_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(Value::string(strip(s.substr(i), nullptr, false, true)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !py_space(s[j])) ++j;
      parts.push_back(Value::string(s.substr(i, j - i)));
      i = j;
    }
  } else {
    const std::string& d = need_string(ev, e, sep, "split()");
    if (d.empty()) ev.fail(e, "split(): empty separator");
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t f = s.find(d, pos);
      if (f == std::string::npos) break;
      parts.push_back(Value::string(s.substr(pos, f - pos)));
      pos = f + d.size();
      if (parts.size() > ev.limits().max_list_items) ev.fail(e, "split(): too many parts");
    }
    parts.push_back(Value::string(s.substr(pos)));
  }
  return ev.checked_list(e, std::move(parts));
}

bool prefix_match(EvalBase& ev, const Expr& e, const std::string& s, const Value* p, bool suffix) {
  const auto one = [&](const std::string& x) { return suffix ? s.ends_with(x) : s.starts_with(x); };
  if (p != nullptr && p->kind == Value::Kind::kList) {
    for (const Value& v : *p->list) {
      if (one(need_string(ev, e, &v, suffix ? "endswith()" : "startswith()"))) return true;
    }
    return false;
  }
  return one(need_string(ev, e, p, suffix ? "endswith()" : "startswith()"));
}

Value items_of(EvalBase& ev, const Expr& e, const Value& d) {
  List items;
  if (d.kind == Value::Kind::kDict) {
    for (const auto& [k, v] : d.dict->items) {
      items.push_back(ev.checked_list(e, List{Value::string(k), v}));
    }
  } else if (!d.is_undefined()) {
    ev.fail(e, fmt::format("items of a {} (needs a dict)", kind_name(d.kind)));
  }
  return ev.checked_list(e, std::move(items));
}

// Elements of a list-like value (list, dict keys, string code points).
List elements(EvalBase& ev, const Expr& e, const Value& v, std::string_view what) {
  switch (v.kind) {
    case Value::Kind::kList:
      return *v.list;
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Kind::kString: {
      List chars;
      const std::vector<size_t> cps = EvalBase::codepoints(v.s);
      for (size_t i = 0; i + 1 < cps.size(); ++i) {
        chars.push_back(Value::string(v.s.substr(cps[i], cps[i + 1] - cps[i])));
      }
      return chars;
    }
    default:
      ev.fail(e, fmt::format("{} of a {} (needs a list)", what, kind_name(v.kind)));
  }
}

Value attribute(const Value& v, const std::string& name) {
  if (v.kind == Value::Kind::kDict) {
    const Value* f = v.dict->find(name);
    if (f != nullptr) return *f;
  }
  return Value();
}

}  // namespace

Value apply_filter(EvalBase& ev, const Expr& e, const Value& target, const std::vector<Value>& args,
                   const Kwargs& kwargs) {
  const std::string& f = e.name;
  const auto str = [&]() -> std::string {
    if (target.kind == Value::Kind::kString) return target.s;
    return value_to_output(target);
  };
  if (f == "trim") return Value::string(strip(str(), arg(args, kwargs, 0, "chars"), true, true));
  if (f == "upper") return Value::string(ascii_upper(str()));
  if (f == "lower") return Value::string(ascii_lower(str()));
  if (f == "capitalize") return Value::string(capitalize(str()));
  if (f == "title") return Value::string(title(str()));
  if (f == "string") return ev.checked_string(e, str());
  if (f == "safe" || f == "e" || f == "escape") {
    if (f == "safe") return target;
    // HTML escaping as markupsafe does (no autoescape in chat templates, but some call it).
    std::string out;
    for (char c : str()) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&#34;";
          break;
        case '\'':
          out += "&#39;";
          break;
        default:
          out += c;
      }
    }
    return ev.checked_string(e, std::move(out));
  }
  if (f == "length" || f == "count") {
    switch (target.kind) {
      case Value::Kind::kString:
        return Value::integer(static_cast<int64_t>(EvalBase::codepoints(target.s).size() - 1));
      case Value::Kind::kList:
        return Value::integer(static_cast<int64_t>(target.list->size()));
      case Value::Kind::kDict:
        return Value::integer(static_cast<int64_t>(target.dict->items.size()));
      case Value::Kind::kUndefined:
        return Value::integer(0);
      default:
        ev.fail(e, fmt::format("length of a {}", kind_name(target.kind)));
    }
  }
  if (f == "tojson") {
    int indent = -1;
    if (const Value* v = arg(args, kwargs, 0, "indent");
        v != nullptr && v->kind != Value::Kind::kNone) {
      if (v->kind != Value::Kind::kInt || v->i < 0 || v->i > 16) {
        ev.fail(e, "tojson(indent=...) needs an integer in [0, 16]");
      }
      indent = static_cast<int>(v->i);
    }
    const Value* sk = arg(args, kwargs, 99, "sort_keys");
    return ev.checked_string(e, value_to_json(target, indent, sk != nullptr && value_truthy(*sk)));
  }
  if (f == "default" || f == "d") {
    const Value* dflt = arg(args, kwargs, 0, "default_value");
    const Value* boolean = arg(args, kwargs, 1, "boolean");
    const bool use = target.is_undefined() ||
                     (boolean != nullptr && value_truthy(*boolean) && !value_truthy(target));
    if (!use) return target;
    return dflt != nullptr ? *dflt : Value::string("");
  }
  if (f == "items" || f == "dictitems") return items_of(ev, e, target);
  if (f == "list") return ev.checked_list(e, elements(ev, e, target, "list"));
  if (f == "first" || f == "last") {
    const List xs = elements(ev, e, target, f);
    if (xs.empty()) return Value();
    return f == "first" ? xs.front() : xs.back();
  }
  if (f == "reverse") {
    if (target.kind == Value::Kind::kString) {
      List cs = elements(ev, e, target, f);
      std::string out;
      for (auto it = cs.rbegin(); it != cs.rend(); ++it) out += it->s;
      return Value::string(std::move(out));
    }
    List xs = elements(ev, e, target, f);
    std::reverse(xs.begin(), xs.end());
    return ev.checked_list(e, std::move(xs));
  }
  if (f == "join") {
    const Value* sep = arg(args, kwargs, 0, "d");
    const Value* attr = arg(args, kwargs, 1, "attribute");
    const std::string d = sep == nullptr ? "" : value_to_output(*sep);
    std::string out;
    bool first = true;
    for (const Value& v : elements(ev, e, target, f)) {
      if (!first) out += d;
      first = false;
      out += value_to_output(attr != nullptr ? attribute(v, value_to_output(*attr)) : v);
      if (out.size() > ev.limits().max_output_bytes) ev.fail(e, "join() result too long");
    }
    return Value::string(std::move(out));
  }
  if (f == "replace") {
    const std::string& from = need_string(ev, e, arg(args, kwargs, 0, "old"), "replace()");
    const std::string& to = need_string(ev, e, arg(args, kwargs, 1, "new"), "replace()");
    const Value* count = arg(args, kwargs, 2, "count");
    return Value::string(
        replace_all(ev, e, str(), from, to,
                    count != nullptr && count->kind == Value::Kind::kInt ? count->i : -1));
  }
  if (f == "int") {
    switch (target.kind) {
      case Value::Kind::kInt:
        return target;
      case Value::Kind::kBool:
        return Value::integer(target.b);
      case Value::Kind::kFloat:
        if (std::isfinite(target.f) && std::fabs(target.f) < 9.2e18) {
          return Value::integer(static_cast<int64_t>(target.f));
        }
        break;
      case Value::Kind::kString: {
        const std::string t = strip(target.s, nullptr, true, true);
        int64_t v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec == std::errc() && r.ptr == t.data() + t.size()) return Value::integer(v);
        break;
      }
      default:
        break;
    }
    const Value* dflt = arg(args, kwargs, 0, "default");
    return dflt != nullptr ? *dflt : Value::integer(0);
  }
  if (f == "float") {
    switch (target.kind) {
      case Value::Kind::kInt:
        return Value::number(static_cast<double>(target.i));
      case Value::Kind::kFloat:
        return target;
      case Value::Kind::kBool:
        return Value::number(target.b);
      case Value::Kind::kString: {
        const std::string t = strip(target.s, nullptr, true, true);
        double v = 0;
        const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
        if (r.ec == std::errc() && r.ptr == t.data() + t.size()) return Value::number(v);
        break;
      }
      default:
        break;
    }
    const Value* dflt = arg(args, kwargs, 0, "default");
    return dflt != nullptr ? *dflt : Value::number(0);
  }
  if (f == "abs") {
    if (target.kind == Value::Kind::kInt) {
      if (target.i == INT64_MIN) ev.fail(e, "integer overflow in abs()");
      return Value::integer(target.i < 0 ? -target.i : target.i);
    }
    if (target.kind == Value::Kind::kFloat) return Value::number(std::fabs(target.f));
    ev.fail(e, fmt::format("abs of a {}", kind_name(target.kind)));
  }
  if (f == "selectattr" || f == "rejectattr") {
    const std::string& name = need_string(ev, e, arg(args, {}, 0, ""), f + "()");
    std::string test;
    std::vector<Value> test_args;
    if (args.size() > 1) test = need_string(ev, e, &args[1], f + "() test name");
    for (size_t i = 2; i < args.size(); ++i) test_args.push_back(args[i]);
    List kept;
    for (const Value& v : elements(ev, e, target, f)) {
      ev.step(e);
      const Value a = attribute(v, name);
      const bool ok = test.empty() ? value_truthy(a) : apply_test(ev, e, test, a, test_args);
      if (ok == (f == "selectattr")) kept.push_back(v);
    }
    return ev.checked_list(e, std::move(kept));
  }
  if (f == "map") {
    const Value* attr = arg({}, kwargs, 0, "attribute");
    List out;
    if (attr != nullptr) {
      const Value* dflt = arg({}, kwargs, 0, "default");
      for (const Value& v : elements(ev, e, target, f)) {
        Value a = attribute(v, value_to_output(*attr));
        out.push_back(a.is_undefined() && dflt != nullptr ? *dflt : a);
      }
    } else {
      const std::string& name = need_string(ev, e, arg(args, {}, 0, ""), "map()");
      if (name == "map" || name == "selectattr" || name == "rejectattr") {
        ev.fail(e, fmt::format("map('{}') is not supported", name));
      }
      Expr inner;
      inner.kind = Expr::Kind::kFilter;
      inner.pos = e.pos;
      inner.name = name;
      const std::vector<Value> rest(args.begin() + 1, args.end());
      for (const Value& v : elements(ev, e, target, f)) {
        ev.step(e);
        out.push_back(apply_filter(ev, inner, v, rest, {}));
      }
    }
    return ev.checked_list(e, std::move(out));
  }
  ev.fail(e, fmt::format("unsupported filter '{}'", f));
}

bool apply_test(EvalBase& ev, const Expr& e, const std::string& t, const Value& v,
                const std::vector<Value>& args) {
  using K = Value::Kind;
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.kind == K::kNone;
  if (t == "string") return v.kind == K::kString;
  if (t == "number") return v.kind == K::kInt || v.kind == K::kFloat;
  if (t == "integer") return v.kind == K::kInt;
  if (t == "float") return v.kind == K::kFloat;
  if (t == "boolean") return v.kind == K::kBool;
  if (t == "true") return v.kind == K::kBool && v.b;
  if (t == "false") return v.kind == K::kBool && !v.b;
  if (t == "mapping") return v.kind == K::kDict;
  if (t == "sequence" || t == "iterable") {
    return v.kind == K::kList || v.kind == K::kString || v.kind == K::kDict;
  }
  if (t == "callable") return false;
  if (t == "odd" || t == "even") {
    if (v.kind != K::kInt) ev.fail(e, fmt::format("'{}' test of a {}", t, kind_name(v.kind)));
    return ((v.i % 2) != 0) == (t == "odd");
  }
  if (args.empty() && (t == "divisibleby" || t == "equalto" || t == "eq" || t == "==" ||
                       t == "ne" || t == "in" || t == "sameas")) {
    ev.fail(e, fmt::format("test '{}' needs an argument", t));
  }
  if (t == "divisibleby") {
    if (v.kind != K::kInt || args[0].kind != K::kInt || args[0].i == 0) {
      ev.fail(e, "divisibleby needs integers (and a non-zero divisor)");
    }
    if (args[0].i == -1) return true;
    return v.i % args[0].i == 0;
  }
  if (t == "equalto" || t == "eq" || t == "==" || t == "sameas") return value_equal(v, args[0]);
  if (t == "ne") return !value_equal(v, args[0]);
  if (t == "in") {
    const Value& c = args[0];
    if (c.kind == K::kList) {
      return std::any_of(c.list->begin(), c.list->end(),
                         [&](const Value& x) { return value_equal(x, v); });
    }
    if (c.kind == K::kString && v.kind == K::kString) return c.s.find(v.s) != std::string::npos;
    if (c.kind == K::kDict && v.kind == K::kString) return c.dict->find(v.s) != nullptr;
    return false;
  }
  ev.fail(e, fmt::format("unsupported test '{}'", t));
}

Value call_method(EvalBase& ev, const Expr& e, const Value& target, const std::string& m,
                  const std::vector<Value>& args, const Kwargs& kwargs) {
  if (target.kind == Value::Kind::kString) {
    const std::string& s = target.s;
    if (m == "strip" || m == "lstrip" || m == "rstrip") {
      return Value::string(strip(s, arg(args, kwargs, 0, "chars"), m != "rstrip", m != "lstrip"));
    }
    if (m == "startswith" || m == "endswith") {
      return Value::boolean(
          prefix_match(ev, e, s, arg(args, kwargs, 0, "prefix"), m == "endswith"));
    }
    if (m == "upper") return Value::string(ascii_upper(s));
    if (m == "lower") return Value::string(ascii_lower(s));
    if (m == "title") return Value::string(title(s));
    if (m == "capitalize") return Value::string(capitalize(s));
    if (m == "split") {
      const Value* maxsplit = arg(args, kwargs, 1, "maxsplit");
      return split(ev, e, s, arg(args, kwargs, 0, "sep"),
                   maxsplit != nullptr && maxsplit->kind == Value::Kind::kInt ? maxsplit->i : -1);
    }
    if (m == "replace") {
      const Value* count = arg(args, kwargs, 2, "count");
      return Value::string(
          replace_all(ev, e, s, need_string(ev, e, arg(args, kwargs, 0, "old"), "replace()"),
                      need_string(ev, e, arg(args, kwargs, 1, "new"), "replace()"),
                      count != nullptr && count->kind == Value::Kind::kInt ? count->i : -1));
    }
    if (m == "find") {
      const size_t f = s.find(need_string(ev, e, arg(args, kwargs, 0, "sub"), "find()"));
      return Value::integer(f == std::string::npos ? -1 : static_cast<int64_t>(f));
    }
    if (m == "join") {
      std::string out;
      bool first = true;
      for (const Value& v : elements(ev, e, args.empty() ? Value() : args[0], "join()")) {
        if (!first) out += s;
        first = false;
        out += value_to_output(v);
        if (out.size() > ev.limits().max_output_bytes) ev.fail(e, "join() result too long");
      }
      return Value::string(std::move(out));
    }
  } else if (target.kind == Value::Kind::kDict) {
    if (m == "items") return items_of(ev, e, target);
    if (m == "keys" || m == "values") {
      List out;
      for (const auto& [k, v] : target.dict->items) {
        out.push_back(m == "keys" ? Value::string(k) : v);
      }
      return ev.checked_list(e, std::move(out));
    }
    if (m == "get") {
      const Value* key = arg(args, kwargs, 0, "key");
      if (key != nullptr && key->kind == Value::Kind::kString) {
        const Value* v = target.dict->find(key->s);
        if (v != nullptr) return *v;
      }
      const Value* dflt = arg(args, kwargs, 1, "default");
      return dflt != nullptr ? *dflt : Value::none();
    }
  } else if (target.is_undefined()) {
    ev.fail(e, fmt::format("method '{}' called on an undefined value", m));
  }
  ev.fail(e, fmt::format("unsupported method '{}' on a {}", m, kind_name(target.kind)));
}

}  // namespace qforge::chat_template_internal

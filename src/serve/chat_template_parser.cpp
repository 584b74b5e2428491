// Chat-template parser: tokens -> AST, with Jinja's operator precedence (lowest first):
// `x if c else y`, or, and, not, comparisons / in / not in, + -, ~, * / // %, **, unary - +,
// then primaries with postfix subscripts, attributes, calls, filters (|) and tests (is).
#include <fmt/format.h>
#include <algorithm>
#include <charconv>

#include "serve/chat_template_ast.h"

namespace qforge::chat_template_internal {
namespace {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ChatTemplateLimits& limits)
      : t_(std::move(tokens)), limits_(limits) {}

  Body parse_all() {
    Body body = parse_body({});
    if (peek().type != Tok::kEof) fail(peek().pos, "unexpected tag");
    return body;
  }

 private:
  // ---- statements ----
  // Nodes until a block tag whose keyword is in `enders` (left unconsumed) or the end.
  Body parse_body(std::initializer_list<std::string_view> enders) {
    Body body;
    while (true) {
      const Token& tok = peek();
      if (tok.type == Tok::kEof) {
        if (enders.size() != 0) {
          fail(tok.pos,
               fmt::format("unexpected end of template: expected {{% {} %}}", *(enders.end() - 1)));
        }
        return body;
      }
      if (tok.type == Tok::kText) {
        auto n = node(Node::Kind::kText, tok.pos);
        n->text = tok.text;
        ++i_;
        body.push_back(std::move(n));
      } else if (tok.type == Tok::kExprBegin) {
        auto n = node(Node::Kind::kOutput, tok.pos);
        ++i_;
        n->expr = parse_expr();
        expect(Tok::kExprEnd, "'}}'");
        body.push_back(std::move(n));
      } else if (tok.type == Tok::kBlockBegin) {
        const Token& kw = t_[i_ + 1];
        if (kw.type != Tok::kName) fail(kw.pos, "expected a statement name after '{%'");
        for (std::string_view e : enders) {
          if (kw.text == e) return body;
        }
        body.push_back(parse_statement());
      } else {
        fail(tok.pos, "unexpected token");
      }
    }
  }

  std::unique_ptr<Node> parse_statement() {
    ++i_;  // {%
    const Token kw = next();
    Guard g(this, kw.pos);
    if (kw.text == "if") return parse_if(kw.pos);
    if (kw.text == "for") return parse_for(kw.pos);
    if (kw.text == "set") return parse_set(kw.pos);
    if (kw.text == "generation") {
      expect(Tok::kBlockEnd, "'%}'");
      auto n = node(Node::Kind::kBlock, kw.pos);
      n->body = parse_body({"endgeneration"});
      end_tag("endgeneration");
      return n;
    }
    static constexpr std::string_view kKnown[] = {
        "macro", "call", "filter", "include", "import",   "from",       "extends", "block",
        "raw",   "with", "do",     "break",   "continue", "autoescape", "trans"};
    for (std::string_view k : kKnown) {
      if (kw.text == k) {
        fail(kw.pos, fmt::format("unsupported template statement '{{% {} %}}' (this interpreter "
                                 "runs if/for/set only)",
                                 kw.text));
      }
    }
    fail(kw.pos, fmt::format("unknown or misplaced statement '{{% {} %}}'", kw.text));
  }

  std::unique_ptr<Node> parse_if(Pos pos) {
    auto n = node(Node::Kind::kIf, pos);
    ExprPtr cond = parse_expr();
    expect(Tok::kBlockEnd, "'%}'");
    while (true) {
      Body body = parse_body({"elif", "else", "endif"});
      n->branches.emplace_back(std::move(cond), std::move(body));
      ++i_;  // {%
      const Token kw = next();
      if (kw.text == "elif") {
        cond = parse_expr();
        expect(Tok::kBlockEnd, "'%}'");
        continue;
      }
      if (kw.text == "else") {
        expect(Tok::kBlockEnd, "'%}'");
        n->else_body = parse_body({"endif"});
        end_tag("endif");
      } else {
        expect(Tok::kBlockEnd, "'%}'");
      }
      return n;
    }
  }

  std::unique_ptr<Node> parse_for(Pos pos) {
    auto n = node(Node::Kind::kFor, pos);
    do {
      const Token name = next();
      if (name.type != Tok::kName) fail(name.pos, "expected a loop variable name after 'for'");
      n->targets.push_back(name.text);
    } while (accept_op(","));
    if (n->targets.size() > 8) fail(pos, "more than 8 loop variables");
    const Token in = next();
    if (in.type != Tok::kName || in.text != "in") fail(in.pos, "expected 'in' in a for loop");
    n->expr = parse_or_cond(false);  // the iterable (an `if` here is the loop filter)
    if (peek().type == Tok::kName && peek().text == "if") {
      ++i_;
      n->filter = parse_or_cond(false);
    }
    if (peek().type == Tok::kName && peek().text == "recursive") {
      fail(peek().pos, "unsupported: recursive for loops");
    }
    expect(Tok::kBlockEnd, "'%}'");
    n->body = parse_body({"else", "endfor"});
    ++i_;
    const Token kw = next();
    expect(Tok::kBlockEnd, "'%}'");
    if (kw.text == "else") {
      n->else_body = parse_body({"endfor"});
      end_tag("endfor");
    }
    return n;
  }

  std::unique_ptr<Node> parse_set(Pos pos) {
    auto n = node(Node::Kind::kSet, pos);
    const Token name = next();
    if (name.type != Tok::kName) fail(name.pos, "expected a variable name after 'set'");
    n->targets.push_back(name.text);
    if (accept_op(".")) {
      const Token attr = next();
      if (attr.type != Tok::kName) fail(attr.pos, "expected an attribute name after '.'");
      n->targets.push_back(attr.text);
    }
    if (peek().type == Tok::kOp && peek().text == ",") {
      fail(peek().pos, "unsupported: tuple assignment in {% set %}");
    }
    if (peek().type == Tok::kBlockEnd) {
      fail(peek().pos, "unsupported: block assignment {% set x %}...{% endset %}");
    }
    if (!accept_op("=")) fail(peek().pos, "expected '=' in {% set %}");
    n->expr = parse_expr();
    expect(Tok::kBlockEnd, "'%}'");
    return n;
  }

  void end_tag(std::string_view name) {
    ++i_;  // {%
    const Token kw = next();
    if (kw.text != name) fail(kw.pos, fmt::format("expected {{% {} %}}", name));
    expect(Tok::kBlockEnd, "'%}'");
  }

  // ---- expressions ----
  ExprPtr parse_expr() { return parse_or_cond(true); }

  // or-expression, then optionally `if cond [else other]` when allowed.
  ExprPtr parse_or_cond(bool allow_cond) {
    Guard g(this, peek().pos);
    ExprPtr e = parse_or();
    while (allow_cond && peek().type == Tok::kName && peek().text == "if") {
      const Pos pos = next().pos;
      auto c = expr(Expr::Kind::kCond, pos);
      ExprPtr cond = parse_or();
      ExprPtr other;
      if (peek().type == Tok::kName && peek().text == "else") {
        ++i_;
        other = parse_or_cond(false);
      }
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      e = bounded(std::move(c));
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (accept_name("or")) e = binary("or", std::move(e), parse_and());
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (accept_name("and")) e = binary("and", std::move(e), parse_not());
    return e;
  }
  ExprPtr parse_not() {
    if (peek().type == Tok::kName && peek().text == "not") {
      Guard g(this, peek().pos);
      auto u = expr(Expr::Kind::kUnary, next().pos);
      u->name = "not";
      u->args.push_back(parse_not());
      return bounded(std::move(u));
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      const Token& tok = peek();
      std::string op;
      if (tok.type == Tok::kOp && (tok.text == "==" || tok.text == "!=" || tok.text == "<" ||
                                   tok.text == ">" || tok.text == "<=" || tok.text == ">=")) {
        op = tok.text;
        ++i_;
      } else if (tok.type == Tok::kName && tok.text == "in") {
        op = "in";
        ++i_;
      } else if (tok.type == Tok::kName && tok.text == "not" && t_[i_ + 1].type == Tok::kName &&
                 t_[i_ + 1].text == "in") {
        op = "not in";
        i_ += 2;
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1());
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (peek().type == Tok::kOp && (peek().text == "+" || peek().text == "-")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), parse_concat());
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (accept_op("~")) e = binary("~", std::move(e), parse_math2());
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (peek().type == Tok::kOp && (peek().text == "*" || peek().text == "/" ||
                                       peek().text == "//" || peek().text == "%")) {
      const std::string op = next().text;
      e = binary(op, std::move(e), parse_pow());
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (accept_op("**")) e = binary("**", std::move(e), parse_unary(true));
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    Guard g(this, peek().pos);
    ExprPtr e;
    if (peek().type == Tok::kOp && (peek().text == "-" || peek().text == "+")) {
      const Token op = next();
      e = expr(Expr::Kind::kUnary, op.pos);
      e->name = op.text;
      e->args.push_back(parse_unary(false));
      e = bounded(std::move(e));
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filters(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token tok = next();
    switch (tok.type) {
      case Tok::kName: {
        if (tok.text == "true" || tok.text == "True") return literal(Value::boolean(true), tok);
        if (tok.text == "false" || tok.text == "False") return literal(Value::boolean(false), tok);
        if (tok.text == "none" || tok.text == "None") return literal(Value::none(), tok);
        auto e = expr(Expr::Kind::kName, tok.pos);
        e->name = tok.text;
        return e;
      }
      case Tok::kString: {
        std::string s = tok.text;
        while (peek().type == Tok::kString) s += next().text;  // "a" "b": adjacent literals join
        return literal(Value::string(std::move(s)), tok);
      }
      case Tok::kInt: {
        int64_t v = 0;
        const auto r = std::from_chars(tok.text.data(), tok.text.data() + tok.text.size(), v);
        if (r.ec != std::errc()) fail(tok.pos, fmt::format("integer '{}' out of range", tok.text));
        return literal(Value::integer(v), tok);
      }
      case Tok::kFloat: {
        double v = 0;
        const auto r = std::from_chars(tok.text.data(), tok.text.data() + tok.text.size(), v);
        if (r.ec != std::errc()) fail(tok.pos, fmt::format("bad number '{}'", tok.text));
        return literal(Value::number(v), tok);
      }
      case Tok::kOp:
        if (tok.text == "(") {
          ExprPtr e = parse_expr();
          if (peek().type == Tok::kOp && peek().text == ",") {
            // A tuple: a list (immutable anyway here).
            auto list = expr(Expr::Kind::kList, tok.pos);
            list->args.push_back(std::move(e));
            while (accept_op(",")) {
              if (peek().type == Tok::kOp && peek().text == ")") break;
              list->args.push_back(parse_expr());
            }
            e = bounded(std::move(list));
          }
          expect_op(")");
          return e;
        }
        if (tok.text == "[") {
          auto list = expr(Expr::Kind::kList, tok.pos);
          while (!accept_op("]")) {
            if (!list->args.empty()) {
              expect_op(",");
              if (accept_op("]")) break;
            }
            list->args.push_back(parse_expr());
          }
          return bounded(std::move(list));
        }
        if (tok.text == "{") {
          auto dict = expr(Expr::Kind::kDict, tok.pos);
          while (!accept_op("}")) {
            if (!dict->pairs.empty()) {
              expect_op(",");
              if (accept_op("}")) break;
            }
            ExprPtr key = parse_expr();
            expect_op(":");
            dict->pairs.emplace_back(std::move(key), parse_expr());
          }
          return bounded(std::move(dict));
        }
        break;
      default:
        break;
    }
    fail(tok.pos, fmt::format("unexpected {} in an expression", describe(tok)));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const Token& tok = peek();
      if (tok.type != Tok::kOp) return e;
      if (tok.text == ".") {
        const Pos pos = next().pos;
        const Token name = next();
        if (name.type != Tok::kName && name.type != Tok::kInt) {
          fail(name.pos, "expected an attribute name after '.'");
        }
        auto a = expr(Expr::Kind::kGetAttr, pos);
        a->name = name.text;
        a->args.push_back(std::move(e));
        e = bounded(std::move(a));
      } else if (tok.text == "[") {
        const Pos pos = next().pos;
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!(peek().type == Tok::kOp && (peek().text == ":" || peek().text == "]"))) {
            parts[k] = parse_expr();
          }
          if (k < 2 && accept_op(":")) {
            slice = true;
            continue;
          }
          break;
        }
        expect_op("]");
        if (!slice && parts[0] == nullptr) fail(pos, "empty subscript '[]'");
        auto s = expr(slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem, pos);
        s->args.push_back(std::move(e));
        for (int k = 0; k < (slice ? 3 : 1); ++k) s->args.push_back(std::move(parts[k]));
        e = bounded(std::move(s));
      } else if (tok.text == "(") {
        const Pos pos = next().pos;
        auto c = expr(Expr::Kind::kCall, pos);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = bounded(std::move(c));
      } else {
        return e;
      }
    }
  }

  // After "(": positional and keyword arguments up to ")".
  void parse_call_args(Expr& call) {
    bool first = true;
    while (!accept_op(")")) {
      if (!first) {
        expect_op(",");
        if (accept_op(")")) break;
      }
      first = false;
      if (peek().type == Tok::kName && t_[i_ + 1].type == Tok::kOp && t_[i_ + 1].text == "=") {
        const std::string key = next().text;
        ++i_;
        call.kwargs.emplace_back(key, parse_expr());
      } else {
        if (!call.kwargs.empty()) fail(peek().pos, "positional argument after keyword argument");
        call.args.push_back(parse_expr());
      }
      if (call.args.size() + call.kwargs.size() > 16) fail(peek().pos, "more than 16 arguments");
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (accept_op("|")) {
        const Token name = next();
        if (name.type != Tok::kName) fail(name.pos, "expected a filter name after '|'");
        auto f = expr(Expr::Kind::kFilter, name.pos);
        f->name = name.text;
        f->args.push_back(std::move(e));
        if (accept_op("(")) parse_call_args(*f);
        e = bounded(std::move(f));
      } else if (peek().type == Tok::kName && peek().text == "is") {
        ++i_;
        auto t = expr(Expr::Kind::kTest, peek().pos);
        if (accept_name("not")) t->negated = true;
        const Token name = next();
        if (name.type != Tok::kName && !(name.type == Tok::kOp && name.text == "==")) {
          fail(name.pos, "expected a test name after 'is'");
        }
        t->name = name.text;
        t->args.push_back(std::move(e));
        if (accept_op("(")) {
          parse_call_args(*t);
        } else if (starts_test_argument()) {
          t->args.push_back(parse_primary_postfix());
        }
        e = bounded(std::move(t));
      } else {
        return e;
      }
    }
  }
  // `x is divisibleby 3` / `x is equalto 'a'`: an argument without parentheses.
  bool starts_test_argument() const {
    const Token& tok = peek();
    if (tok.type == Tok::kString || tok.type == Tok::kInt || tok.type == Tok::kFloat) return true;
    if (tok.type == Tok::kName) {
      return tok.text != "and" && tok.text != "or" && tok.text != "if" && tok.text != "else" &&
             tok.text != "is" && tok.text != "not" && tok.text != "in";
    }
    return false;
  }
  ExprPtr parse_primary_postfix() {
    Guard g(this, peek().pos);
    return parse_postfix(parse_primary());
  }

  // ---- helpers ----
  // Bounds recursion (nested expressions and blocks).
  struct Guard {
    Guard(Parser* p, Pos pos) : p_(p) {
      if (++p_->depth_ > p_->limits_.max_nesting) {
        p_->fail(pos, fmt::format("template nested deeper than {}", p_->limits_.max_nesting));
      }
    }
    ~Guard() { --p_->depth_; }
    Parser* p_;
  };

  const Token& peek() const { return t_[i_]; }
  Token next() {
    Token t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool accept_op(std::string_view op) {
    if (peek().type == Tok::kOp && peek().text == op) {
      ++i_;
      return true;
    }
    return false;
  }
  bool accept_name(std::string_view name) {
    if (peek().type == Tok::kName && peek().text == name) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) {
      fail(peek().pos, fmt::format("expected '{}', found {}", op, describe(peek())));
    }
  }
  void expect(Tok type, std::string_view what) {
    if (peek().type != type)
      fail(peek().pos, fmt::format("expected {}, found {}", what, describe(peek())));
    ++i_;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kText:
        return "template text";
      case Tok::kExprBegin:
        return "'{{'";
      case Tok::kExprEnd:
        return "'}}'";
      case Tok::kBlockBegin:
        return "'{%'";
      case Tok::kBlockEnd:
        return "'%}'";
      case Tok::kName:
        return fmt::format("name '{}'", t.text);
      case Tok::kString:
        return "a string";
      case Tok::kInt:
      case Tok::kFloat:
        return fmt::format("number {}", t.text);
      case Tok::kOp:
        return fmt::format("'{}'", t.text);
      case Tok::kEof:
        return "the end of the template";
    }
    return "?";
  }
  [[noreturn]] void fail(Pos pos, const std::string& message) { throw TemplateError(pos, message); }

  static std::unique_ptr<Node> node(Node::Kind k, Pos pos) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->pos = pos;
    return n;
  }
  static ExprPtr expr(Expr::Kind k, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }
  static ExprPtr literal(Value v, const Token& tok) {
    auto e = expr(Expr::Kind::kLiteral, tok.pos);
    e->literal = std::move(v);
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b) {
    auto e = expr(Expr::Kind::kBinary, a->pos);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return bounded(std::move(e));
  }
  // Sets e->depth from its children; a chain like a+b+c+... parses in a loop but evaluates (and
  // is destroyed) recursively, so its height is bounded too.
  ExprPtr bounded(ExprPtr e) {
    int d = 0;
    for (const ExprPtr& a : e->args) d = std::max(d, a ? a->depth : 0);
    for (const auto& [k, v] : e->kwargs) d = std::max(d, v->depth);
    for (const auto& [k, v] : e->pairs) d = std::max({d, k->depth, v->depth});
    e->depth = d + 1;
    if (e->depth > 4 * limits_.max_nesting) {
      fail(e->pos, fmt::format("expression nested deeper than {}", 4 * limits_.max_nesting));
    }
    return e;
  }

  std::vector<Token> t_;
  const ChatTemplateLimits& limits_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_program(std::string_view source, const ChatTemplateLimits& limits) {
  auto program = std::make_unique<Program>();
  program->source = std::string(source);
  program->limits = limits;
  program->body = Parser(lex(source, limits), limits).parse_all();
  return program;
}

}  // namespace qforge::chat_template_internal

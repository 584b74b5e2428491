// The chat-template interpreter: templates written here in the styles of the Llama-3, Qwen2
// (ChatML) and Mistral ([INST]) tokenizer_config.json templates (the same constructs) render the
// exact strings those formats define; Jinja semantics (whitespace control, scoping, filters,
// tests); tokenizer_config.json forms; and the sandbox limits and error messages. The expected
// strings of the three format tests are what jinja2 3.1.6 (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks: transformers' settings) renders for the same templates and inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "qforge/serve/chat_template.h"

namespace qforge {
namespace {

using json = nlohmann::ordered_json;

std::string render(std::string_view tmpl, const json& ctx) {
  auto t = ChatTemplate::parse(tmpl);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  if (!t.ok()) return "<parse error>";
  auto out = t->render(ctx);
  EXPECT_TRUE(out.ok()) << out.error().to_string();
  return out.ok() ? *out : "<render error>";
}

std::string render_error(std::string_view tmpl, const json& ctx = json::object()) {
  auto t = ChatTemplate::parse(tmpl);
  if (!t.ok()) return t.error().to_string();
  auto out = t->render(ctx);
  return out.ok() ? "<no error>" : out.error().to_string();
}

const json kChat = json::array({{{"role", "system"}, {"content", "You are terse."}},
                                {{"role", "user"}, {"content", "  Hi there \n"}},
                                {{"role", "assistant"}, {"content", "Hello."}},
                                {{"role", "user"}, {"content", "Bye"}}});

// Llama-3 style: set inside the loop, `+` concatenation with a filter binding tighter than `+`,
// loop.index0, bos_token.
constexpr std::string_view kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim "
    "+ '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "
    "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

TEST(ChatTemplate, Llama3Format) {
  auto t = ChatTemplate::parse(kLlama3);
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  auto out = apply_chat_template(*t, kChat, true, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are "
            "terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi "
            "there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  auto no_prompt = apply_chat_template(*t, kChat, false, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(no_prompt.ok());
  EXPECT_TRUE(no_prompt->ends_with("Bye<|eot_id|>"));
}

// Qwen2 style: loop.first, a default system prompt, attribute access, whitespace control with
// trim_blocks/lstrip_blocks over a multi-line template.
constexpr std::string_view kQwen2 = R"({%- for message in messages %}
    {%- if loop.first and messages[0].role != 'system' %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
    {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)";

TEST(ChatTemplate, Qwen2ChatMLFormat) {
  auto t = ChatTemplate::parse(kQwen2);
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  const json user_only = json::array({{{"role", "user"}, {"content", "2+2?"}}});
  auto out = apply_chat_template(*t, user_only, true, "", "<|im_end|>");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n2+2?"
            "<|im_end|>\n<|im_start|>assistant\n");
  auto with_system = apply_chat_template(*t, kChat, false, "", "<|im_end|>");
  ASSERT_TRUE(with_system.ok());
  EXPECT_EQ(*with_system,
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n  Hi there \n"
            "<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye"
            "<|im_end|>\n");
  // The default template is the same ChatML without the injected system prompt.
  auto d = ChatTemplate::parse(default_chat_template());
  ASSERT_TRUE(d.ok());
  auto dout = apply_chat_template(*d, user_only, true, "", "");
  ASSERT_TRUE(dout.ok());
  EXPECT_EQ(*dout, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

// Mistral style: role alternation enforced with raise_exception, a system message folded into
// the first user turn with a slice, elif/else, eos_token after assistant turns.
constexpr std::string_view kMistral =
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('Conversation roles must alternate user/assistant/user/"
    "assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

TEST(ChatTemplate, MistralInstFormat) {
  auto t = ChatTemplate::parse(kMistral);
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  auto out = apply_chat_template(*t, kChat, true, "<s>", "</s>");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(*out,
            "<s> [INST] You are terse.\n\n  Hi there \n [/INST] Hello.</s> [INST] Bye [/INST]");
  const json bad =
      json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}});
  auto err = apply_chat_template(*t, bad, true, "<s>", "</s>");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().to_string().find(
                "raise_exception: Conversation roles must alternate user/assistant"),
            std::string::npos)
      << err.error().to_string();
  EXPECT_NE(err.error().to_string().find("line 10"), std::string::npos) << err.error().to_string();
}

TEST(ChatTemplate, WhitespaceControlMatchesJinjaWithTrimAndLstripBlocks) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it too.
  EXPECT_EQ(render("a\n  {% if true %}\n  x\n  {% endif %}\nb", {}), "a\n  x\nb");
  EXPECT_EQ(render("a  {%- if true -%}  x  {%- endif -%}  b", {}), "axb");
  EXPECT_EQ(render("a\n  {%+ if true %}x{% endif %}", {}), "a\n  x");
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}", {}), "a\nb");  // expressions keep their newline
  EXPECT_EQ(render("a {# note #}\nb", {}), "a b");
  EXPECT_EQ(render("x{{- ' y ' -}}z", {}), "x y z");
}

TEST(ChatTemplate, ExpressionsFiltersTestsAndMethods) {
  const json ctx = {{"xs", {3, 1, 2}},
                    {"d", {{"b", 1}, {"a", "x"}}},
                    {"s", "  Hello World  "},
                    {"n", nullptr},
                    {"msgs", json::array({{{"role", "tool"}}, {{"role", "user"}}})}};
  EXPECT_EQ(render("{{ xs | length }} {{ xs[0] + xs[-1] }} {{ xs[1:] }} {{ xs[::-1] }}", ctx),
            "3 5 [1, 2] [2, 1, 3]");
  EXPECT_EQ(render("{{ d | tojson }}|{{ d.a }}|{{ d['b'] * 2 }}|{{ d.missing is defined }}", ctx),
            "{\"b\": 1, \"a\": \"x\"}|x|2|False");
  EXPECT_EQ(render("{{ d | tojson(indent=2) }}", ctx), "{\n  \"b\": 1,\n  \"a\": \"x\"\n}");
  EXPECT_EQ(render("{{ s.strip() }}|{{ s | trim | upper }}|{{ s.lower().strip() }}", ctx),
            "Hello World|HELLO WORLD|hello world");
  EXPECT_EQ(render("{{ s.strip().startswith('Hell') }}{{ s.strip().endswith(('x', 'ld')) }}", ctx),
            "TrueTrue");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} "
                   "{{ 1 / 4 }} {{ 3.0 }}",
                   ctx),
            "a1None 3 -4 1 1024 0.25 3.0");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in xs }} {{ 'a' in d }} {{ 5 not in xs }}", ctx),
            "True True True True");
  EXPECT_EQ(
      render("{{ n is none }} {{ xs is sequence }} {{ d is mapping }} {{ 's' is string }}", ctx),
      "True True True True");
  EXPECT_EQ(render("{{ undefined_thing | default('dflt') }} {{ '' | default('e', true) }}", ctx),
            "dflt e");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", ctx), "b=1;a=x;");
  EXPECT_EQ(render("{% for k, v in d | items %}{{ k }}{% endfor %}", ctx), "ba");
  EXPECT_EQ(render("{{ xs | join(', ') }} {{ 'yes' if xs else 'no' }} {{ 'a' if n }}", ctx),
            "3, 1, 2 yes ");
  EXPECT_EQ(render("{{ msgs | rejectattr('role', 'equalto', 'tool') | list | length }}", ctx), "1");
  EXPECT_EQ(render("{{ msgs | map(attribute='role') | join('+') }}", ctx), "tool+user");
  EXPECT_EQ(
      render("{{ 'a,b,,c'.split(',') }} {{ 'x y'.split() }} {{ 'aXbX'.replace('X', '-') }}", ctx),
      "['a', 'b', '', 'c'] ['x', 'y'] a-b-");
  EXPECT_EQ(render("{{ [1, 'two', none, true] }} {{ {'k': [1.5]} | tojson }}", ctx),
            "[1, 'two', None, True] {\"k\": [1.5]}");
  EXPECT_EQ(render("{{ \"\\u00e9\\n\" | tojson }}", ctx), "\"\xc3\xa9\\n\"");
}

TEST(ChatTemplate, LoopsScopesAndNamespaces) {
  const json ctx = {{"xs", {"a", "b", "c"}}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}"
                   "{% endfor %}",
                   ctx),
            "1a,2b,3c");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.revindex0 }}{{ loop.previtem }}{% endfor %}", ctx),
            "21a0b");
  // A {% set %} inside a loop does not leak out; a namespace carries the value out.
  EXPECT_EQ(render("{% set c = 0 %}{% for x in xs %}{% set c = c + 1 %}{% endfor %}{{ c }}", ctx),
            "0");
  EXPECT_EQ(render("{% set ns = namespace(c=0) %}{% for x in xs %}{% set ns.c = ns.c + 1 %}"
                   "{% endfor %}{{ ns.c }}",
                   ctx),
            "3");
  EXPECT_EQ(render("{% for x in xs if x != 'b' %}{{ x }}{{ loop.length }}{% endfor %}", ctx),
            "a2c2");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}", ctx), "empty");
  EXPECT_EQ(render("{% for i in range(3) %}{{ i }}{% endfor %}{% for c in 'hé' %}[{{ c }}]"
                   "{% endfor %}",
                   ctx),
            "012[h][\xc3\xa9]");
  EXPECT_EQ(render("{% generation %}kept{% endgeneration %}", ctx), "kept");
}

TEST(ChatTemplate, UnsupportedConstructsAreNamedWithPosition) {
  EXPECT_NE(render_error("ok\n{% macro f() %}{% endmacro %}")
                .find("line 2, column 4: unsupported template statement '{% macro %}'"),
            std::string::npos)
      << render_error("ok\n{% macro f() %}{% endmacro %}");
  EXPECT_NE(render_error("{% include 'x' %}").find("'{% include %}'"), std::string::npos);
  EXPECT_NE(render_error("{{ x | frobnicate }}").find("unsupported filter 'frobnicate'"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 'a'.zfill(3) }}").find("unsupported method 'zfill' on a string"),
            std::string::npos);
  EXPECT_NE(render_error("{{ open('/etc/passwd') }}").find("unknown function 'open'"),
            std::string::npos);
  EXPECT_NE(render_error("{% if x %}").find("expected {% endif %}"), std::string::npos);
  EXPECT_NE(render_error("{{ 'abc }}").find("unterminated string"), std::string::npos);
  EXPECT_NE(render_error("{{ a.b.c }}").find("'b' of an undefined value"), std::string::npos);
  EXPECT_NE(render_error("{% set x.y = 1 %}").find("only attributes of a namespace()"),
            std::string::npos);
}

TEST(ChatTemplate, SandboxLimitsHold) {
  EXPECT_NE(render_error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}"
                         "{% endfor %}")
                .find("loops ran more than 100000 iterations"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 'x' * 100000000 }}").find("repetition result exceeds"),
            std::string::npos);
  EXPECT_NE(render_error("{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(30) %}"
                         "{% set s = s + s %}{{ s }}{% endfor %}")
                .find("limit"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 9223372036854775807 + 1 }}").find("integer overflow"),
            std::string::npos);
  EXPECT_NE(render_error("{{ 1 // 0 }}").find("by zero"), std::string::npos);
  EXPECT_NE(render_error("{{ " + std::string(200, '(') + "1" + std::string(200, ')') + " }}")
                .find("nested"),
            std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 1000; ++i) chain += " + 1";
  EXPECT_NE(render_error(chain + " }}").find("nested deeper"), std::string::npos);
  // Deep lists built in a loop stay bounded too.
  EXPECT_NE(render_error("{% set ns = namespace(x=[]) %}{% for i in range(500) %}"
                         "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}")
                .find("nested deeper"),
            std::string::npos);
  ChatTemplateLimits small;
  small.max_output_bytes = 10;
  auto t = ChatTemplate::parse("{{ 'a' * 8 }}{{ 'b' * 8 }}", small);
  ASSERT_TRUE(t.ok());
  auto out = t->render(json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().to_string().find("output exceeds the 10-byte limit"), std::string::npos);
}

TEST(ChatTemplate, TokenizerConfigForms) {
  auto plain = parse_tokenizer_chat_config(
      R"({"chat_template": "{{ bos_token }}", "bos_token": "<s>",
          "eos_token": {"content": "</s>", "lstrip": false}})",
      "cfg");
  ASSERT_TRUE(plain.ok()) << plain.error().to_string();
  EXPECT_EQ(plain->chat_template, "{{ bos_token }}");
  EXPECT_EQ(plain->bos_token, "<s>");
  EXPECT_EQ(plain->eos_token, "</s>");
  const std::string listed =
      R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use",
          "template": "T"}]})";
  auto named = parse_tokenizer_chat_config(listed, "cfg");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->chat_template, "D");
  auto tool = parse_tokenizer_chat_config(listed, "cfg", "tool_use");
  ASSERT_TRUE(tool.ok());
  EXPECT_EQ(tool->chat_template, "T");
  auto missing = parse_tokenizer_chat_config(listed, "cfg", "rag");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().to_string().find("no chat template named 'rag' (has: default, "
                                             "tool_use)"),
            std::string::npos);
  EXPECT_FALSE(parse_tokenizer_chat_config(R"({"chat_template": 3})", "cfg").ok());
  EXPECT_FALSE(parse_tokenizer_chat_config(R"({"bos_token": 3})", "cfg").ok());
  EXPECT_FALSE(parse_tokenizer_chat_config("not json", "cfg").ok());

  // From a model directory, with chat_template.jinja taking precedence.
  const auto dir = std::filesystem::temp_directory_path() / "qforge_chat_cfg_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": "A", "bos_token": "<s>", "eos_token": "</s>"})";
  auto loaded = load_tokenizer_chat_config(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  EXPECT_EQ(loaded->chat_template, "A");
  std::ofstream(dir / "chat_template.jinja") << "B";
  loaded = load_tokenizer_chat_config((dir / "model.safetensors").string());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->chat_template, "B");
  EXPECT_EQ(loaded->eos_token, "</s>");
  std::filesystem::remove_all(dir);
  // The shared llama-mix-16m: AddedToken-free bos/eos strings and no template (ChatML then).
  const auto mix =
      std::filesystem::path(QFORGE_SOURCE_DIR) / ".." / "shared" / "models" / "llama-mix-16m";
  if (std::filesystem::exists(mix / "tokenizer_config.json")) {
    auto real = load_tokenizer_chat_config(mix.string());
    ASSERT_TRUE(real.ok()) << real.error().to_string();
    EXPECT_EQ(real->bos_token, "<s>");
    EXPECT_EQ(real->eos_token, "</s>");
    EXPECT_TRUE(real->chat_template.empty());
  }
  auto none = load_tokenizer_chat_config("/nonexistent/dir/model.bin");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->chat_template.empty());
}

}  // namespace
}  // namespace qforge

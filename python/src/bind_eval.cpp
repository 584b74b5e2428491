// perplexity() and kl_divergence() from Python: `qforge eval ppl` as functions, with the same
// protocol (so numbers compare with the CLI's), the GIL released, and Ctrl-C checked every 64
// scored tokens.
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "bind_modules.h"
#include "py_common.h"
#include "qforge/core/text_file.h"
#include "qforge/eval/kl_divergence.h"
#include "qforge/eval/perplexity.h"
#include "qforge/model/inference_session.h"

namespace qforge::python {
namespace {

namespace fs = std::filesystem;

// Forwards every scored row to `inner` (may be null) and checks for Ctrl-C now and then.
class InterruptingScorer final : public TokenScorer {
 public:
  InterruptingScorer(TokenScorer* inner, Interrupt* interrupt)
      : inner_(inner), interrupt_(interrupt) {}
  Status score(const float* logits, int64_t vocab, int32_t target) override {
    if (++seen_ % 64 == 0) QF_TRY(interrupt_->check());
    return inner_ != nullptr ? inner_->score(logits, vocab, target) : ok_status();
  }

 private:
  TokenScorer* inner_;
  Interrupt* interrupt_;
  int64_t seen_ = 0;
};

struct PplArgs {
  PerplexityOptions options;
  std::string kv_cache;
  bool show_progress = false;
};

struct PerplexityReport {
  PerplexityResult result;
  std::string protocol;
  std::optional<KlDivergenceResult> kl_divergence;
};

// The text and its name in the protocol line: `dataset` (a path, read as the CLI reads it) or
// `text` given directly (named "<text>").
std::pair<std::string, std::string> eval_text(py::object text, py::object dataset) {
  if (text.is_none() == dataset.is_none()) {
    throw py::type_error("give one of text= (a str) or dataset= (a path)");
  }
  if (!text.is_none()) return {to_str(text, "text"), "<text>"};
  const std::string path = path_string(dataset, "dataset");
  std::string content = unwrap(read_text_input(path, "dataset"));
  unwrap(check_utf8_text(content, "dataset '" + path + "'"));
  return {std::move(content), path};
}

PplArgs ppl_args(int64_t ctx, int64_t stride, bool add_bos, const std::string& scoring,
                 int64_t max_chunks, const std::string& doc_separator, const std::string& kv_cache,
                 bool show_progress) {
  PplArgs a;
  a.options.ctx = ctx;
  a.options.stride = stride;
  a.options.add_bos = add_bos;
  a.options.scoring = unwrap(parse_ppl_scoring(scoring));
  a.options.max_chunks = max_chunks;
  a.options.doc_separator = doc_separator;
  a.kv_cache = kv_cache;
  a.show_progress = show_progress;
  return a;
}

Result<SessionOptions> session_options(const Model& model, const PplArgs& a) {
  SessionOptions o;
  o.context_length = a.options.ctx;
  const ModelConfig& c = model.config();
  if (a.options.ctx > c.max_position_embeddings) {
    return make_error(ErrorCode::kInvalidArgument,
                      "perplexity: ctx {} exceeds the model's max_position_embeddings {}",
                      a.options.ctx, c.max_position_embeddings);
  }
  if (a.kv_cache == "f32") {
    o.kv_cache_quant = KvCacheQuant{};
  } else if (a.kv_cache == "fp8-unit" || a.kv_cache == "int8-unit") {
    o.kv_cache_quant = kv_cache_quant_unit_scales(
        a.kv_cache == "fp8-unit" ? KvCacheDType::kFp8 : KvCacheDType::kInt8, c.num_hidden_layers);
  } else if (!a.kv_cache.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kv_cache '{}': expected f32, fp8-unit or int8-unit", a.kv_cache);
  }
  return o;
}

const Tokenizer& need_tokenizer(const PyModel& m) {
  if (m.tokenizer == nullptr) {
    raise_error(make_error(ErrorCode::kInvalidArgument,
                           "perplexity: '{}' has no tokenizer (load it as Model(path, "
                           "tokenizer=...))",
                           m.path));
  }
  return *m.tokenizer;
}

// One perplexity run; `make_extra` (may be empty) opens a KLD writer/reader for the dataset.
PerplexityReport run_ppl(
    const PyModel& m, const std::string& text, const std::string& name, const PplArgs& a,
    const std::function<Result<std::unique_ptr<TokenScorer>>(const PplDataset&)>& make_extra,
    const std::function<Status(TokenScorer*, PerplexityReport&)>& finish) {
  const Tokenizer& tok = need_tokenizer(m);
  Interrupt interrupt;
  PerplexityReport report;
  Status st = without_gil([&]() -> Status {
    QF_ASSIGN_OR_RETURN(PplDataset dataset, make_ppl_dataset(text, tok, a.options, name));
    report.protocol = dataset.protocol;
    std::unique_ptr<TokenScorer> extra;
    if (make_extra) {
      QF_ASSIGN_OR_RETURN(extra, make_extra(dataset));
    }
    InterruptingScorer scorer(extra.get(), &interrupt);
    QF_ASSIGN_OR_RETURN(SessionOptions so, session_options(*m.model, a));
    QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(m.model, so));
    QF_ASSIGN_OR_RETURN(report.result,
                        evaluate_perplexity(session, dataset, &scorer, a.show_progress));
    if (finish) QF_TRY(finish(extra.get(), report));
    return ok_status();
  });
  interrupt.rethrow();
  unwrap(st);
  return report;
}

PerplexityReport perplexity(py::handle model, py::object text, py::object dataset, int64_t ctx,
                            int64_t stride, bool add_bos, const std::string& scoring,
                            int64_t max_chunks, const std::string& doc_separator,
                            const std::string& kv_cache, py::object save_logits,
                            py::object kl_divergence_base, int64_t kld_top_k, bool show_progress) {
  const PyModel m = model_from_arg(model, "perplexity: model");
  const auto [content, name] = eval_text(text, dataset);
  const PplArgs a =
      ppl_args(ctx, stride, add_bos, scoring, max_chunks, doc_separator, kv_cache, show_progress);
  if (!save_logits.is_none() && !kl_divergence_base.is_none()) {
    raise_error(make_error(ErrorCode::kInvalidArgument,
                           "perplexity: save_logits and kl_divergence_base are exclusive (save "
                           "the baseline first, then compare another model against it)"));
  }
  const int64_t vocab = m.model->config().vocab_size;
  if (!save_logits.is_none()) {
    const std::string path = path_string(save_logits, "perplexity: save_logits");
    return run_ppl(
        m, content, name, a,
        [&](const PplDataset& d) -> Result<std::unique_ptr<TokenScorer>> {
          QF_ASSIGN_OR_RETURN(
              auto w, LogprobWriter::create(path, kld_top_k, vocab, d.scored_tokens, d.protocol));
          return std::unique_ptr<TokenScorer>(std::move(w));
        },
        [](TokenScorer* s, PerplexityReport&) { return static_cast<LogprobWriter*>(s)->commit(); });
  }
  if (!kl_divergence_base.is_none()) {
    const std::string path = path_string(kl_divergence_base, "perplexity: kl_divergence_base");
    return run_ppl(
        m, content, name, a,
        [&](const PplDataset& d) -> Result<std::unique_ptr<TokenScorer>> {
          QF_ASSIGN_OR_RETURN(auto k,
                              KlDivergenceScorer::open(path, vocab, d.scored_tokens, d.protocol));
          return std::unique_ptr<TokenScorer>(std::move(k));
        },
        [](TokenScorer* s, PerplexityReport& r) -> Status {
          QF_ASSIGN_OR_RETURN(KlDivergenceResult k, static_cast<KlDivergenceScorer*>(s)->finish());
          r.kl_divergence = k;
          return ok_status();
        });
  }
  return run_ppl(m, content, name, a, {}, {});
}

KlDivergenceResult kl_divergence(py::handle base, py::handle model, py::object text,
                                 py::object dataset, int64_t ctx, int64_t stride, bool add_bos,
                                 const std::string& scoring, int64_t max_chunks,
                                 const std::string& doc_separator, int64_t top_k,
                                 bool show_progress) {
  static std::atomic<int64_t> counter{0};
  const fs::path tmp = fs::temp_directory_path() / ("qforge_kld_" + std::to_string(::getpid()) +
                                                    "_" + std::to_string(counter++) + ".logprobs");
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove{tmp};
  py::object t = py::str(tmp.string());
  perplexity(base, text, dataset, ctx, stride, add_bos, scoring, max_chunks, doc_separator, "", t,
             py::none(), top_k, show_progress);
  PerplexityReport r = perplexity(model, text, dataset, ctx, stride, add_bos, scoring, max_chunks,
                                  doc_separator, "", py::none(), t, top_k, show_progress);
  return *r.kl_divergence;
}

}  // namespace

void bind_eval(py::module_& m) {
  py::class_<KlDivergenceResult>(m, "KlDivergenceResult",
                                 "KL(P_base || Q) per scored token, as llama.cpp reports it.")
      .def_readonly("tokens", &KlDivergenceResult::tokens)
      .def_readonly("mean_kld", &KlDivergenceResult::mean_kld)
      .def_readonly("mean_kld_stderr", &KlDivergenceResult::mean_kld_stderr)
      .def_readonly("median_kld", &KlDivergenceResult::median_kld)
      .def_readonly("p99_kld", &KlDivergenceResult::p99_kld)
      .def_readonly("max_kld", &KlDivergenceResult::max_kld)
      .def_readonly("top1_agreement", &KlDivergenceResult::top1_agreement)
      .def_readonly("top1_agreement_stderr", &KlDivergenceResult::top1_agreement_stderr)
      .def_readonly("ppl_base", &KlDivergenceResult::ppl_base)
      .def_readonly("ppl", &KlDivergenceResult::ppl)
      .def_readonly("ppl_ratio", &KlDivergenceResult::ppl_ratio)
      .def_readonly("ln_ppl_ratio", &KlDivergenceResult::ln_ppl_ratio)
      .def_readonly("ln_ppl_ratio_stderr", &KlDivergenceResult::ln_ppl_ratio_stderr)
      .def_readonly("top_k", &KlDivergenceResult::top_k)
      .def("__repr__", [](const KlDivergenceResult& k) {
        return fmt::format(
            "KlDivergenceResult(tokens={}, mean_kld={:.6f}, top1_agreement={:.4f}, "
            "ppl_ratio={:.6f})",
            k.tokens, k.mean_kld, k.top1_agreement, k.ppl_ratio);
      });
  py::class_<PerplexityReport>(m, "PerplexityResult", "Perplexity under a stated protocol.")
      .def_property_readonly("ppl", [](const PerplexityReport& r) { return r.result.ppl; })
      .def_property_readonly("ppl_stderr",
                             [](const PerplexityReport& r) { return r.result.ppl_stderr; })
      .def_property_readonly(
          "mean_nll", [](const PerplexityReport& r) { return r.result.mean_nll; },
          "Mean negative log-likelihood in nats.")
      .def_property_readonly("scored_tokens",
                             [](const PerplexityReport& r) { return r.result.scored_tokens; })
      .def_property_readonly("chunks", [](const PerplexityReport& r) { return r.result.chunks; })
      .def_property_readonly("seconds", [](const PerplexityReport& r) { return r.result.seconds; })
      .def_property_readonly("tokens_per_second",
                             [](const PerplexityReport& r) { return r.result.tokens_per_second; })
      .def_readonly("protocol", &PerplexityReport::protocol,
                    "The protocol line (`qforge eval ppl` prints the same).")
      .def_readonly("kl_divergence", &PerplexityReport::kl_divergence,
                    "With kl_divergence_base: the comparison against it, else None.")
      .def("__repr__", [](const PerplexityReport& r) {
        return fmt::format("PerplexityResult(ppl={:.4f}, ppl_stderr={:.4f}, scored_tokens={})",
                           r.result.ppl, r.result.ppl_stderr, r.result.scored_tokens);
      });
  m.def("perplexity", &perplexity, py::arg("model"), py::arg("text") = py::none(), py::kw_only(),
        py::arg("dataset") = py::none(), py::arg("ctx") = 512, py::arg("stride") = 0,
        py::arg("add_bos") = true, py::arg("scoring") = "all", py::arg("max_chunks") = 0,
        py::arg("doc_separator") = "", py::arg("kv_cache") = "",
        py::arg("save_logits") = py::none(), py::arg("kl_divergence_base") = py::none(),
        py::arg("kld_top_k") = kDefaultKldTopK, py::arg("show_progress") = false,
        "Perplexity of `model` (a Model, an LLM, or a path) on `text` or the file `dataset`, "
        "under the protocol of `qforge eval ppl` (same options, same numbers). save_logits "
        "writes the baseline's log-probs; kl_divergence_base compares against such a file.");
  m.def("kl_divergence", &kl_divergence, py::arg("base"), py::arg("model"),
        py::arg("text") = py::none(), py::kw_only(), py::arg("dataset") = py::none(),
        py::arg("ctx") = 512, py::arg("stride") = 0, py::arg("add_bos") = true,
        py::arg("scoring") = "all", py::arg("max_chunks") = 0, py::arg("doc_separator") = "",
        py::arg("top_k") = kDefaultKldTopK, py::arg("show_progress") = false,
        "KL divergence, top-1 agreement and PPL ratio of `model` against `base` on one text "
        "(the base's log-probs go through a temporary file, as with the CLI).");
}

}  // namespace qforge::python

// Sensitivity measurement and plan for MIXED_PRECISION (auto_quantize_plan.h), after ModelOpt's
// auto_quantize: a layer group's score is the KL divergence it alone causes at the output.
#include "quant/auto_quantize_plan.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "qforge/core/progress.h"
#include "qforge/eval/perplexity.h"
#include "qforge/formats/quantize.h"
#include "qforge/model/inference_session.h"
#include "qforge/model/quantized_linear.h"
#include "qforge/quant/auto_quantize.h"
#include "quant/checkpoint_export.h"

namespace qforge::quant_internal {
namespace {

// Linears that share an input get one format (they share the producer scale folding edits).
constexpr const char* kGroups[][3] = {
    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
    {"self_attn.o_proj", nullptr, nullptr},
    {"mlp.gate_proj", "mlp.up_proj", nullptr},
    {"mlp.down_proj", nullptr, nullptr},
};

struct Group {
  std::string name;                  // "model.layers.3.mlp.gate_proj+up_proj"
  std::vector<std::string> modules;  // "model.layers.3.mlp.gate_proj", ...
  int64_t n_params = 0;
};

// log-softmax rows of logits: [n, vocab].
std::vector<float> log_softmax_rows(const Tensor& logits) {
  const int64_t n = logits.dim(0), v = logits.dim(1);
  const float* x = logits.data_as<const float>();
  std::vector<float> out(static_cast<size_t>(n * v));
  for (int64_t t = 0; t < n; ++t) {
    const double lse = log_sum_exp(x + t * v, v);
    for (int64_t i = 0; i < v; ++i) {
      out[t * v + i] = static_cast<float>(x[t * v + i] - lse);
    }
  }
  return out;
}

Result<std::vector<std::vector<float>>> run_logprobs(std::shared_ptr<const Model> model,
                                                     const CalibDataset& calib, int64_t samples) {
  SessionOptions so;
  so.context_length = static_cast<int64_t>(calib.samples[0].size());
  QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(std::move(model), so));
  std::vector<std::vector<float>> out;
  for (int64_t s = 0; s < samples; ++s) {
    session.reset();
    QF_ASSIGN_OR_RETURN(Tensor logits,
                        session.forward(calib.samples[static_cast<size_t>(s)], LogitsMode::kAll));
    out.push_back(log_softmax_rows(logits));
  }
  return out;
}

double mean_kl(const std::vector<std::vector<float>>& base,
               const std::vector<std::vector<float>>& test, int64_t vocab) {
  double sum = 0;
  int64_t n = 0;
  for (size_t s = 0; s < base.size(); ++s) {
    const auto rows = static_cast<int64_t>(base[s].size()) / vocab;
    for (int64_t t = 0; t < rows; ++t) {
      const float* p = base[s].data() + t * vocab;
      const float* q = test[s].data() + t * vocab;
      double kl = 0;
      for (int64_t i = 0; i < vocab; ++i) kl += std::exp(double{p[i]}) * (double{p[i]} - q[i]);
      sum += std::max(kl, 0.0);
      ++n;
    }
  }
  return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

// The model with only `modules` weight-quantized (RTN) into `spec`.
Result<std::shared_ptr<const Model>> model_with_group_quantized(
    const Model& model, const std::vector<std::string>& modules, const QuantSpec& spec) {
  LoadedModel loaded{model.config(), model.weights(), model.format(), model.kv_cache_quant(), {}};
  const auto factory = [&](const ModelWeights& w,
                           const std::string& name) -> Result<std::unique_ptr<WeightMatrix>> {
    bool hit = false;
    for (const auto& m : modules) hit = hit || name == m + ".weight";
    if (!hit) return dense_weight_matrix_factory(w, name);
    QF_ASSIGN_OR_RETURN(auto dense, dense_weight_matrix_factory(w, name));
    std::vector<float> f(static_cast<size_t>(dense->rows() * dense->cols()));
    for (int64_t r = 0; r < dense->rows(); ++r) dense->row_to_f32(r, f.data() + r * dense->cols());
    QF_ASSIGN_OR_RETURN(QuantizedMatrix q,
                        quantize_matrix(f.data(), dense->rows(), dense->cols(), spec));
    return make_quantized_weight_matrix(q, {});
  };
  return Model::create(std::move(loaded), factory);
}

}  // namespace

Result<MixedPrecisionPlan> plan_mixed_precision(const Model& model, const CalibDataset& calib,
                                                const QuantConfig& config,
                                                QuantExportFormat export_format,
                                                bool show_progress) {
  const ModelConfig& c = model.config();
  const int64_t samples =
      std::min<int64_t>(kSensitivitySamples, static_cast<int64_t>(calib.samples.size()));
  std::vector<Group> groups;
  for (int64_t b = 0; b < c.num_hidden_layers; ++b) {
    for (const auto& g : kGroups) {
      Group grp;
      for (const char* m : g) {
        if (m == nullptr) continue;
        const std::string module = fmt::format("model.layers.{}.{}", b, m);
        QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_module(config, module));
        QF_ASSIGN_OR_RETURN(TensorView v, model.weights().get(module + ".weight"));
        if (s.algo != QuantAlgo::MIXED_PRECISION) continue;  // excluded or overridden
        grp.modules.push_back(module);
        grp.n_params += v.shape().numel();
        grp.name +=
            grp.name.empty() ? module : "+" + std::string(m).substr(std::string(m).find('.') + 1);
      }
      if (!grp.modules.empty()) groups.push_back(std::move(grp));
    }
  }
  // Modules outside every group (excluded, overridden) keep their own scheme.
  std::vector<AutoQuantizeCandidate> candidates;
  std::vector<LinearQuantScheme> schemes;
  for (QuantAlgo a : config.auto_quantize_candidates) {
    QF_ASSIGN_OR_RETURN(LinearQuantScheme s, scheme_for_algo(a, config));
    candidates.push_back({std::string(quant_algo_name(a)), algo_bits_per_weight(a, config)});
    schemes.push_back(s);
  }

  // The reference: the float model on the same samples. Sharing `model`'s weights is safe: the
  // variants only wrap them.
  LoadedModel base_loaded{c, model.weights(), model.format(), model.kv_cache_quant(), {}};
  QF_ASSIGN_OR_RETURN(auto base_model, Model::create(std::move(base_loaded)));
  QF_ASSIGN_OR_RETURN(auto base, run_logprobs(base_model, calib, samples));

  ProgressOptions po;
  po.enabled = show_progress;
  po.unit = "variant";
  ProgressBar bar("auto-quantize sensitivity", static_cast<int64_t>(groups.size() * schemes.size()),
                  po);
  std::vector<AutoQuantizeLayer> layers;
  for (const Group& g : groups) {
    AutoQuantizeLayer l{g.name, g.n_params, {}};
    for (const LinearQuantScheme& s : schemes) {
      bool storable = true;
      for (const auto& m : g.modules) {
        QF_ASSIGN_OR_RETURN(TensorView v, model.weights().get(m + ".weight"));
        storable = storable && check_layer_exportable(m, v.dim(1), s.weight, export_format).ok();
      }
      auto variant = storable ? model_with_group_quantized(model, g.modules, s.weight)
                              : Result<std::shared_ptr<const Model>>(make_error(
                                    ErrorCode::kUnsupported, "not storable in the layout"));
      if (!variant.ok()) {
        // A shape the format or the layout cannot hold is forbidden for this group.
        l.sensitivity.push_back(std::numeric_limits<double>::infinity());
      } else {
        QF_ASSIGN_OR_RETURN(auto test, run_logprobs(variant.value(), calib, samples));
        l.sensitivity.push_back(mean_kl(base, test, c.vocab_size));
      }
      bar.advance();
    }
    layers.push_back(std::move(l));
  }
  bar.finish();
  QF_ASSIGN_OR_RETURN(AutoQuantizePlan plan,
                      solve_auto_quantize(layers, candidates, config.auto_quantize_bits));
  MixedPrecisionPlan out;
  for (size_t i = 0; i < groups.size(); ++i) {
    const QuantAlgo a =
        config.auto_quantize_candidates[static_cast<size_t>(plan.choices[i].candidate)];
    for (const auto& m : groups[i].modules) out.algos[m] = a;
  }
  out.average_bits = plan.average_bits;
  out.table = format_auto_quantize_plan(plan);
  return out;
}

}  // namespace qforge::quant_internal

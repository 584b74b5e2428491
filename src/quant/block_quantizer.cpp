// One decoder block through the quantization algorithms (block_quantizer.h). The order follows
// llm-awq / ModelOpt: statistics of the float block, scale search and folding (SmoothQuant, AWQ),
// AWQ clipping, then calibration of static scales and GPTQ Hessians on the transformed block,
// rounding, and finally the quantized block's forward pass that feeds the next block.
#include "quant/block_quantizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "qforge/formats/quantize.h"
#include "qforge/model/quantized_linear.h"
#include "qforge/quant/awq.h"
#include "qforge/quant/gptq.h"
#include "qforge/quant/scale_folding.h"
#include "qforge/quant/smoothquant.h"
#include "quant/block_runner.h"

namespace qforge::quant_internal {
namespace {

// Calibration rows kept per group input for AWQ clipping and the per-layer output error.
constexpr int64_t kKeptRows = 512;

struct LinearSlot {
  const char* suffix;
  LinearGroup group;
  std::unique_ptr<WeightMatrix> DecoderLayer::*member;
};

constexpr std::array<LinearSlot, 7> kSlots = {{
    {"self_attn.q_proj", LinearGroup::kAttnIn, &DecoderLayer::q_proj},
    {"self_attn.k_proj", LinearGroup::kAttnIn, &DecoderLayer::k_proj},
    {"self_attn.v_proj", LinearGroup::kAttnIn, &DecoderLayer::v_proj},
    {"self_attn.o_proj", LinearGroup::kAttnOut, &DecoderLayer::o_proj},
    {"mlp.gate_proj", LinearGroup::kMlpIn, &DecoderLayer::gate_proj},
    {"mlp.up_proj", LinearGroup::kMlpIn, &DecoderLayer::up_proj},
    {"mlp.down_proj", LinearGroup::kMlpMid, &DecoderLayer::down_proj},
}};
enum SlotIndex { kQ, kK, kV, kO, kGate, kUp, kDown };

const char* algorithm_name(const LinearQuantScheme& s) {
  if (!s.quantized()) return "none";
  switch (s.algorithm) {
    case WeightAlgorithm::kRtn:
      return "rtn";
    case WeightAlgorithm::kAwq:
      return "awq";
    case WeightAlgorithm::kGptq:
      return "gptq";
    case WeightAlgorithm::kSmoothQuant:
      return "smoothquant";
    case WeightAlgorithm::kAwqGptq:
      return "awq+gptq";
  }
  return "?";
}

// One linear layer being worked on: an F32 copy of its weight that folding and clipping edit.
struct Work {
  std::string module;
  int64_t rows = 0, cols = 0;
  std::vector<float> w;
  // Before clipping: the float layer the error report compares to (empty: same as w).
  std::vector<float> w_ref;
  const std::vector<float>& reference() const { return w_ref.empty() ? w : w_ref; }
  LinearQuantScheme scheme;
  std::vector<float> pre_quant_scale;  // when the scales could not be folded
  bool changed = false;                // folding touched it
};

// The rows of one group input kept for clipping and error reports: every stride-th row of the
// whole calibration set (llm-awq samples its clip tokens evenly too), at most kKeptRows.
struct KeptRows {
  std::vector<float> x;  // [n, cols]
  int64_t n = 0;
  int64_t cols = 0;
  int64_t stride = 1;
  int64_t seen = 0;  // rows offered so far
  void add(const float* src, int64_t rows, int64_t c) {
    cols = c;
    for (int64_t r = 0; r < rows && n < kKeptRows; ++r, ++seen) {
      if (seen % stride != 0) continue;
      x.insert(x.end(), src + r * c, src + (r + 1) * c);
      ++n;
    }
  }
};

int gi(LinearGroup g) {
  return static_cast<int>(g);
}

// Algorithms that search per-channel scales and fold them into the producer of the input.
bool is_scaling(WeightAlgorithm a) {
  return a == WeightAlgorithm::kAwq || a == WeightAlgorithm::kSmoothQuant ||
         a == WeightAlgorithm::kAwqGptq;
}
bool is_gptq(WeightAlgorithm a) {
  return a == WeightAlgorithm::kGptq || a == WeightAlgorithm::kAwqGptq;
}

float amax_to_input_scale(ActivationQuant a, float amax) {
  if (!(amax > 0.0f)) return 1.0f;  // an all-zero input: any positive scale is exact
  switch (a) {
    case ActivationQuant::kFp8PerTensor:
      return amax / 448.0f;
    case ActivationQuant::kInt8PerTensor:
      return amax / 127.0f;
    case ActivationQuant::kNvfp4:
      return nvfp4_tensor_scale(amax);
    default:
      return 0.0f;
  }
}

double rel_error(const float* ref, const float* got, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(ref[i]) - got[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

class BlockQuantizer {
 public:
  BlockQuantizer(const Model& model, int64_t layer, const BlockQuantOptions& options,
                 std::vector<float>& hidden, int64_t n_samples, int64_t seq_len)
      : model_(model),
        c_(model.config()),
        layer_(layer),
        opt_(options),
        hidden_(hidden),
        n_samples_(n_samples),
        seq_len_(seq_len),
        runner_(model.config(), seq_len) {}

  Result<QuantizedBlock> run() {
    QF_TRY(load_work());
    QF_TRY(check_groups());
    if (needs_scale_search()) {
      QF_TRY(statistics_pass());
      QF_TRY(search_and_fold_scales());
      QF_TRY(clip_awq_weights());
    }
    if (true_sequential()) {
      // GPTQ's true-sequential order: each group's Hessian (and static scales, kept rows) from
      // inputs that flow through the groups already quantized before it.
      for (int g = 0; g < kNumLinearGroups; ++g) {
        GroupMask one{};
        one[g] = true;
        if (!group_quantized(g)) {
          QF_TRY(round_weights(one));  // reports only
          continue;
        }
        QF_TRY(calibration_pass(one));
        QF_TRY(round_weights(one));
      }
    } else {
      GroupMask all;
      all.fill(true);
      QF_TRY(calibration_pass(all));
      QF_TRY(round_weights(all));
    }
    QF_TRY(quantized_pass());
    return std::move(out_);
  }

 private:
  using GroupMask = std::array<bool, kNumLinearGroups>;

  bool group_quantized(int g) const {
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (gi(kSlots[i].group) == g && work_[i].scheme.quantized()) return true;
    }
    return false;
  }
  bool true_sequential() const {
    if (!opt_.gptq.true_sequential) return false;
    for (const Work& w : work_) {
      if (w.scheme.quantized() && is_gptq(w.scheme.algorithm)) return true;
    }
    return false;
  }

  const float* src_row(int64_t sample) const {
    return hidden_.data() + sample * seq_len_ * c_.hidden_size;
  }

  Status load_work() {
    const DecoderLayer& src = model_.layer(layer_);
    for (size_t i = 0; i < kSlots.size(); ++i) {
      Work& w = work_[i];
      const WeightMatrix& m = *(src.*kSlots[i].member);
      w.module = fmt::format("model.layers.{}.{}", layer_, kSlots[i].suffix);
      w.rows = m.rows();
      w.cols = m.cols();
      w.w.resize(static_cast<size_t>(w.rows * w.cols));
      for (int64_t r = 0; r < w.rows; ++r) m.row_to_f32(r, w.w.data() + r * w.cols);
      for (float v : w.w) {
        if (!std::isfinite(v)) {
          return make_error(ErrorCode::kFormat, "{}.weight holds a non-finite value", w.module);
        }
      }
      if (opt_.scheme_for) {
        QF_ASSIGN_OR_RETURN(w.scheme, opt_.scheme_for(w.module));
      } else {
        QF_ASSIGN_OR_RETURN(w.scheme, scheme_for_module(*opt_.quant_config, w.module));
      }
    }
    input_norm_ = src.input_norm;
    post_norm_ = src.post_attention_norm;
    v_bias_ = src.v_bias;
    return ok_status();
  }

  // Linears that share an input share the producer that SmoothQuant/AWQ folds scales into, so
  // they must agree on the algorithm.
  Status check_groups() {
    for (int g = 0; g < kNumLinearGroups; ++g) {
      std::optional<WeightAlgorithm> seen;
      const Work* first = nullptr;
      for (size_t i = 0; i < kSlots.size(); ++i) {
        if (gi(kSlots[i].group) != g || !work_[i].scheme.quantized()) continue;
        const WeightAlgorithm a = work_[i].scheme.algorithm;
        if (seen && *seen != a && (is_scaling(a) || is_scaling(*seen))) {
          return make_error(ErrorCode::kInvalidArgument,
                            "{} ({}) and {} ({}) share one input, so they must use the same "
                            "scaling algorithm; give them the same format",
                            first->module, quant_algo_name(first->scheme.algo), work_[i].module,
                            quant_algo_name(work_[i].scheme.algo));
        }
        if (!seen) {
          seen = a;
          first = &work_[i];
        }
      }
      group_algo_[g] = seen;
    }
    return ok_status();
  }

  bool group_scales(int g) const { return group_algo_[g] && is_scaling(*group_algo_[g]); }
  bool needs_scale_search() const {
    for (int g = 0; g < kNumLinearGroups; ++g) {
      if (group_scales(g)) return true;
    }
    return false;
  }

  // A float DecoderLayer over the working copies (dense views, no copies), with `replace`
  // substituting some matrices.
  Result<DecoderLayer> float_layer(const std::array<const std::vector<float>*, 7>& weights,
                                   const std::array<std::vector<float>, 7>* pqs = nullptr) const {
    const DecoderLayer& src = model_.layer(layer_);
    DecoderLayer l;
    for (size_t i = 0; i < kSlots.size(); ++i) {
      const Work& w = work_[i];
      const std::vector<float>& data = *weights[i];
      if (pqs != nullptr && !(*pqs)[i].empty()) {
        ActivationQuantParams a;
        a.pre_quant_scale = (*pqs)[i];
        QF_ASSIGN_OR_RETURN(l.*kSlots[i].member,
                            make_fake_quant_weight_matrix(data, w.rows, w.cols, "f32", 0, a));
      } else {
        QF_ASSIGN_OR_RETURN(TensorView v, TensorView::make(static_cast<const void*>(data.data()),
                                                           DType::F32, Shape{w.rows, w.cols}));
        QF_ASSIGN_OR_RETURN(l.*kSlots[i].member, make_dense_weight_matrix(v, w.module));
      }
    }
    l.input_norm = input_norm_;
    l.post_attention_norm = post_norm_;
    l.q_norm = src.q_norm;
    l.k_norm = src.k_norm;
    l.q_bias = src.q_bias;
    l.k_bias = src.k_bias;
    l.v_bias = v_bias_;
    return l;
  }

  std::array<const std::vector<float>*, 7> current_weights() const {
    std::array<const std::vector<float>*, 7> a{};
    for (size_t i = 0; i < kSlots.size(); ++i) a[i] = &work_[i].w;
    return a;
  }
  std::array<std::vector<float>, 7> current_pqs() const {
    std::array<std::vector<float>, 7> a;
    for (size_t i = 0; i < kSlots.size(); ++i) a[i] = work_[i].pre_quant_scale;
    return a;
  }

  int64_t awq_samples() const { return static_cast<int64_t>(awq_index_.size()); }

  // Pass 1 over the float block: per-channel statistics of every group input, kept rows, and the
  // float block outputs of the AWQ samples.
  void reset_kept_rows(const GroupMask* only = nullptr) {
    for (int g = 0; g < kNumLinearGroups; ++g) {
      if (only != nullptr && !(*only)[g]) continue;
      kept_[g] = KeptRows{};
      kept_[g].stride = std::max<int64_t>(1, (n_samples_ * seq_len_ + kKeptRows - 1) / kKeptRows);
    }
  }

  Status statistics_pass() {
    reset_kept_rows();
    QF_ASSIGN_OR_RETURN(DecoderLayer layer, float_layer(current_weights()));
    Status failed = ok_status();
    InputTap tap = [&](LinearGroup g, const float* x, int64_t n, int64_t cols) {
      if (!group_scales(gi(g))) return;
      Status s = stats_[gi(g)].observe(x, n, cols);
      if (!s.ok() && failed.ok()) failed = std::move(s);
      kept_[gi(g)].add(x, n, cols);
    };
    const int64_t d = c_.hidden_size;
    std::vector<float> x(static_cast<size_t>(seq_len_ * d));
    // AWQ's loss samples are spread over the whole set (every calibration set of a mix).
    awq_index_ = awq_sample_indices(n_samples_, seq_len_, opt_.awq_max_tokens);
    awq_inputs_.resize(static_cast<size_t>(awq_samples() * seq_len_ * d));
    awq_float_out_.resize(awq_inputs_.size());
    size_t next = 0;  // position in awq_index_
    for (int64_t s = 0; s < n_samples_; ++s) {
      std::memcpy(x.data(), src_row(s), x.size() * sizeof(float));
      const bool for_awq = next < awq_index_.size() && awq_index_[next] == s;
      if (for_awq) {
        std::memcpy(awq_inputs_.data() + next * seq_len_ * d, x.data(), x.size() * sizeof(float));
      }
      runner_.run(layer, x.data(), &tap);
      if (for_awq) {
        std::memcpy(awq_float_out_.data() + next * seq_len_ * d, x.data(),
                    x.size() * sizeof(float));
        ++next;
      }
      QF_TRY(std::move(failed).context(fmt::format("calibration statistics of block {}", layer_)));
    }
    return ok_status();
  }

  // AWQ's loss for one group: the MSE of the whole block's output on the AWQ samples when the
  // group's weights are replaced by Q(W diag(s)) diag(1/s) (llm-awq inspects the attention or
  // MLP module; the block output contains that module's output plus float residual work).
  Result<double> awq_block_loss(int g, std::span<const float> s) {
    std::array<std::vector<float>, 7> swapped;
    auto weights = current_weights();
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (gi(kSlots[i].group) != g || !work_[i].scheme.quantized()) continue;
      const Work& w = work_[i];
      QF_ASSIGN_OR_RETURN(swapped[i],
                          awq_fake_quantize_scaled(w.w.data(), w.rows, w.cols, w.scheme.weight, s));
      weights[i] = &swapped[i];
    }
    QF_ASSIGN_OR_RETURN(DecoderLayer layer, float_layer(weights));
    const int64_t d = c_.hidden_size;
    std::vector<float> x(static_cast<size_t>(seq_len_ * d));
    double sum = 0;
    for (int64_t smp = 0; smp < awq_samples(); ++smp) {
      std::memcpy(x.data(), awq_inputs_.data() + smp * seq_len_ * d, x.size() * sizeof(float));
      runner_.run(layer, x.data());
      const float* ref = awq_float_out_.data() + smp * seq_len_ * d;
      for (int64_t i = 0; i < seq_len_ * d; ++i) {
        const double e = static_cast<double>(x[i]) - ref[i];
        sum += e * e;
      }
    }
    return sum / static_cast<double>(awq_samples() * seq_len_ * d);
  }

  Status search_and_fold_scales() {
    std::array<std::vector<float>, kNumLinearGroups> scales;
    for (int g = 0; g < kNumLinearGroups; ++g) {
      if (!group_scales(g) || !can_scale(static_cast<LinearGroup>(g))) continue;
      const int64_t cols = stats_[g].cols();
      if (*group_algo_[g] == WeightAlgorithm::kSmoothQuant) {
        std::vector<WeightRef> refs;
        for (size_t i = 0; i < kSlots.size(); ++i) {
          if (gi(kSlots[i].group) == g) refs.push_back({work_[i].w.data(), work_[i].rows});
        }
        QF_ASSIGN_OR_RETURN(scales[g], smoothquant_scales(stats_[g].max_abs(), refs, cols,
                                                          opt_.quant_config->smoothquant_val));
      } else {
        const std::vector<float> mean = stats_[g].mean_abs();
        std::vector<float> w_mean;
        if (opt_.awq_duo_scaling != AwqDuoScaling::kOff) {
          std::vector<WeightRef> refs;
          int64_t group = cols;
          for (size_t i = 0; i < kSlots.size(); ++i) {
            if (gi(kSlots[i].group) != g || !work_[i].scheme.quantized()) continue;
            refs.push_back({work_[i].w.data(), work_[i].rows});
            group = awq_clip_group_size(work_[i].scheme.weight, cols);
          }
          QF_ASSIGN_OR_RETURN(w_mean, awq_weight_mean(refs, cols, group));
        }
        QF_ASSIGN_OR_RETURN(
            AwqScaleSearchResult r,
            awq_search_scales(mean, w_mean, opt_.awq_grid, opt_.awq_duo_scaling,
                              [&](std::span<const float> s) { return awq_block_loss(g, s); }));
        scales[g] = std::move(r.scales);
        awq_ratio_[g] = r.best_ratio;
      }
    }
    // Apply after every search, as llm-awq does: each search saw the original block.
    for (int g = 0; g < kNumLinearGroups; ++g) {
      if (scales[g].empty()) continue;
      QF_TRY(apply_group_scales(static_cast<LinearGroup>(g), scales[g]));
    }
    return ok_status();
  }

  // o_proj's scales fold into v_proj only when their shapes match (no grouped-query attention);
  // otherwise only SmoothQuant with a pre_quant_scale-capable export can apply them.
  bool can_scale(LinearGroup g) const {
    if (g != LinearGroup::kAttnOut || work_[kV].rows == work_[kO].cols) return true;
    return *group_algo_[gi(g)] == WeightAlgorithm::kSmoothQuant && opt_.allow_pre_quant_scale;
  }

  Status scale_group_columns(LinearGroup g, std::span<const float> s) {
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (kSlots[i].group != g) continue;
      QF_TRY(scale_weight_columns(work_[i].w.data(), work_[i].rows, work_[i].cols, s));
      work_[i].changed = true;
    }
    return unscale_activation_columns(kept_[gi(g)].x.data(), kept_[gi(g)].n, kept_[gi(g)].cols, s);
  }

  Status apply_group_scales(LinearGroup g, const std::vector<float>& s) {
    switch (g) {
      case LinearGroup::kAttnIn:
        QF_TRY(fold_scales_into_norm(input_norm_, {}, s));
        input_norm_changed_ = true;
        return scale_group_columns(g, s);
      case LinearGroup::kMlpIn:
        QF_TRY(fold_scales_into_norm(post_norm_, {}, s));
        post_norm_changed_ = true;
        return scale_group_columns(g, s);
      case LinearGroup::kMlpMid: {
        Work& up = work_[kUp];
        QF_TRY(fold_scales_into_previous_linear(up.w.data(), up.rows, up.cols, {}, s));
        up.changed = true;
        return scale_group_columns(g, s);
      }
      case LinearGroup::kAttnOut: {
        Work& v = work_[kV];
        if (v.rows == work_[kO].cols) {
          QF_TRY(fold_scales_into_previous_linear(v.w.data(), v.rows, v.cols, v_bias_, s));
          v.changed = true;
          return scale_group_columns(g, s);
        }
        // Grouped-query attention: v_proj's outputs feed several heads of o_proj's input, so
        // the scale cannot fold (can_scale let only SmoothQuant with pre_quant_scale through).
        std::vector<float> inv(s.size());
        for (size_t j = 0; j < s.size(); ++j) inv[j] = 1.0f / s[j];
        work_[kO].pre_quant_scale = std::move(inv);
        return scale_group_columns(g, s);
      }
    }
    return ok_status();
  }

  Status clip_awq_weights() {
    for (size_t i = 0; i < kSlots.size(); ++i) {
      Work& w = work_[i];
      // AWQ+GPTQ leaves clipping to GPTQ's Hessian-weighted scale search.
      if (!w.scheme.quantized() || w.scheme.algorithm != WeightAlgorithm::kAwq) continue;
      if (i == kQ || i == kK) continue;  // llm-awq skips q/k: softmax absorbs their error
      w.w_ref = w.w;
      const KeptRows& x = kept_[gi(kSlots[i].group)];
      QF_ASSIGN_OR_RETURN(
          std::vector<float> max_vals,
          awq_search_clip(w.w.data(), w.rows, w.cols, x.x.data(), x.n, w.scheme.weight));
      QF_TRY(apply_clip(w.w.data(), w.rows, w.cols, awq_clip_group_size(w.scheme.weight, w.cols),
                        max_vals));
    }
    return ok_status();
  }

  // Pass 2 over the transformed block, for the groups in `groups`: observers of static input
  // scales, GPTQ Hessians, and the kept rows the error report uses (inputs as the quantized
  // layers will see them). Layers already rounded (true-sequential) run quantized.
  Status calibration_pass(const GroupMask& groups) {
    std::array<bool, kNumLinearGroups> observe{}, hessian{};
    for (size_t i = 0; i < kSlots.size(); ++i) {
      const LinearQuantScheme& s = work_[i].scheme;
      const int g = gi(kSlots[i].group);
      if (!s.quantized() || !groups[g]) continue;
      observe[g] = observe[g] || activation_quant_is_static(s.activation);
      if (is_gptq(s.algorithm)) {
        hessian[g] = true;
        if (!hessians_[g]) hessians_[g].emplace(work_[i].cols);
      }
    }
    reset_kept_rows(&groups);
    const auto pqs = current_pqs();
    QF_ASSIGN_OR_RETURN(DecoderLayer layer, float_layer(current_weights(), &pqs));
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (quantized_[i]) layer.*kSlots[i].member = std::move(quantized_[i]);
    }
    std::vector<float> scaled;
    InputTap tap = [&](LinearGroup g, const float* x, int64_t n, int64_t cols) {
      const int k = gi(g);
      if (!groups[k]) return;
      kept_[k].add(x, n, cols);
      if (!observe[k] && !hessian[k]) return;
      // o_proj's observers see its input after pre_quant_scale, as the deployed kernel does.
      const std::vector<float>& pqs = work_[kO].pre_quant_scale;
      if (g == LinearGroup::kAttnOut && !pqs.empty()) {
        scaled.assign(x, x + n * cols);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t j = 0; j < cols; ++j) scaled[t * cols + j] *= pqs[j];
        }
        x = scaled.data();
      }
      if (observe[k]) observers_[k].observe(x, n * cols);
      if (hessian[k]) hessians_[k]->add(x, n);
    };
    const int64_t d = c_.hidden_size;
    std::vector<float> x(static_cast<size_t>(seq_len_ * d));
    for (int64_t s = 0; s < n_samples_; ++s) {
      std::memcpy(x.data(), src_row(s), x.size() * sizeof(float));
      runner_.run(layer, x.data(), &tap);
    }
    // Hand the rounded layers back (they are reused by later passes).
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (layer.*kSlots[i].member && rounded_[i]) {
        quantized_[i] = std::move(layer.*kSlots[i].member);
      }
    }
    return ok_status();
  }

  Status round_weights(const GroupMask& groups) {
    for (size_t i = 0; i < kSlots.size(); ++i) {
      Work& w = work_[i];
      const int g = gi(kSlots[i].group);
      if (!groups[g]) continue;
      LayerQuantReport rep;
      rep.module = w.module;
      rep.algorithm = algorithm_name(w.scheme);
      if (!w.scheme.quantized()) {
        rep.format = w.changed ? "f32" : (model_.layer(layer_).*kSlots[i].member)->format_name();
        out_.reports.push_back(std::move(rep));
        continue;
      }
      QuantizedLinear q;
      q.module = w.module;
      q.scheme = w.scheme;
      q.scheme.algo = checkpoint_algo(w.scheme.algo);
      q.pre_quant_scale = w.pre_quant_scale;
      std::vector<float> deq(w.w.size());
      if (is_gptq(w.scheme.algorithm)) {
        QF_ASSIGN_OR_RETURN(GptqResult r, gptq_quantize(w.w.data(), w.rows, w.cols, *hessians_[g],
                                                        w.scheme.weight, opt_.gptq)
                                              .context(w.module));
        q.weight = std::move(r.quantized);
        deq = std::move(r.dequantized);
      } else {
        QF_ASSIGN_OR_RETURN(
            q.weight,
            quantize_matrix(w.w.data(), w.rows, w.cols, w.scheme.weight).context(w.module));
        QF_TRY(dequantize_matrix(q.weight, deq.data()));
      }
      if (activation_quant_is_static(w.scheme.activation)) {
        AmaxOptions ao;
        ao.percentile = opt_.percentile;
        ao.target = w.scheme.activation == ActivationQuant::kInt8PerTensor
                        ? ObserverTarget::kInt8
                        : ObserverTarget::kFp8E4M3;
        QF_ASSIGN_OR_RETURN(
            float amax,
            observers_[g].amax(opt_.amax_method, ao).context(fmt::format("input of {}", w.module)));
        const float clamp = opt_.quant_config->clamp_val;
        if (clamp > 0.0f) amax = std::min(amax, clamp);
        q.input_scale = amax_to_input_scale(w.scheme.activation, amax);
      }
      rep.format = quant_spec_name(w.scheme.weight);
      rep.weight_rel_error = rel_error(w.reference().data(), deq.data(), w.rows * w.cols);
      rep.input_scale = q.input_scale;
      ActivationQuantParams a;
      a.kind = w.scheme.activation;
      a.input_scale = q.input_scale;
      a.pre_quant_scale = w.pre_quant_scale;
      QF_ASSIGN_OR_RETURN(quantized_[i],
                          make_fake_quant_weight_matrix(std::move(deq), w.rows, w.cols, rep.format,
                                                        q.weight.storage_bytes(), a));
      rounded_[i] = true;
      rep.output_rel_error = output_error(i);
      out_.reports.push_back(std::move(rep));
      out_.linears.push_back(std::move(q));
    }
    return ok_status();
  }

  // ||X W_refᵀ - Qa(X) Qᵀ|| / ||X W_refᵀ|| over the kept calibration rows.
  double output_error(size_t i) {
    const Work& w = work_[i];
    const KeptRows& x = kept_[gi(kSlots[i].group)];
    if (x.n == 0) return 0;
    std::vector<float> xs = x.x;
    if (!w.pre_quant_scale.empty()) {
      for (int64_t t = 0; t < x.n; ++t) {
        for (int64_t j = 0; j < w.cols; ++j) xs[t * w.cols + j] *= w.pre_quant_scale[j];
      }
    }
    auto view = TensorView::make(static_cast<const void*>(w.reference().data()), DType::F32,
                                 Shape{w.rows, w.cols});
    auto ref = make_dense_weight_matrix(view.value(), w.module);
    std::vector<float> y_ref(static_cast<size_t>(x.n * w.rows)), y_q(y_ref.size());
    ref.value()->matmul(xs.data(), x.n, y_ref.data());
    quantized_[i]->matmul(x.x.data(), x.n, y_q.data());
    return rel_error(y_ref.data(), y_q.data(), x.n * w.rows);
  }

  // The quantized block over every sample: the next block's inputs and the K/V ranges.
  Status quantized_pass() {
    const auto pqs = current_pqs();
    QF_ASSIGN_OR_RETURN(DecoderLayer layer, float_layer(current_weights(), &pqs));
    for (size_t i = 0; i < kSlots.size(); ++i) {
      if (quantized_[i]) layer.*kSlots[i].member = std::move(quantized_[i]);
    }
    // K/V ranges of the cache as the quantized block writes it (after RoPE), per layer or per
    // KV head, through the same amax method as the static input scales.
    const int64_t hk = c_.num_key_value_heads, hd = c_.head_dim;
    const size_t n_obs = opt_.kv_per_head ? static_cast<size_t>(hk) : 1;
    std::vector<ActivationObserver> k_obs(n_obs), v_obs(n_obs);
    KvTap kv_tap = [&](const float* k, const float* v) {
      const int64_t n = seq_len_ * hd;
      for (int64_t h = 0; h < hk; ++h) {
        const size_t o = opt_.kv_per_head ? static_cast<size_t>(h) : 0;
        k_obs[o].observe(k + h * n, n);
        v_obs[o].observe(v + h * n, n);
      }
    };
    const int64_t d = c_.hidden_size;
    for (int64_t s = 0; s < n_samples_; ++s) {
      float* x = hidden_.data() + s * seq_len_ * d;
      runner_.run(layer, x, nullptr, opt_.collect_kv ? &kv_tap : nullptr);
    }
    if (opt_.collect_kv) {
      AmaxOptions ao;
      ao.percentile = opt_.percentile;
      ao.target = opt_.kv_target;
      for (size_t o = 0; o < n_obs; ++o) {
        QF_ASSIGN_OR_RETURN(float ka, k_obs[o].amax(opt_.amax_method, ao).context("K cache"));
        QF_ASSIGN_OR_RETURN(float va, v_obs[o].amax(opt_.amax_method, ao).context("V cache"));
        out_.k_amax.push_back(ka);
        out_.v_amax.push_back(va);
      }
    }
    // Tensors that folding changed but that stay in float.
    const std::string p = fmt::format("model.layers.{}.", layer_);
    if (input_norm_changed_) {
      out_.changed_tensors.emplace_back(p + "input_layernorm.weight", input_norm_);
    }
    if (post_norm_changed_) {
      out_.changed_tensors.emplace_back(p + "post_attention_layernorm.weight", post_norm_);
    }
    if (work_[kV].changed && !v_bias_.empty()) {
      out_.changed_tensors.emplace_back(p + "self_attn.v_proj.bias", v_bias_);
    }
    for (size_t i = 0; i < kSlots.size(); ++i) {
      Work& w = work_[i];
      if (w.changed && !w.scheme.quantized()) {
        out_.changed_tensors.emplace_back(w.module + ".weight", std::move(w.w));
      }
    }
    return ok_status();
  }

  const Model& model_;
  const ModelConfig& c_;
  int64_t layer_;
  const BlockQuantOptions& opt_;
  std::vector<float>& hidden_;
  int64_t n_samples_, seq_len_;
  BlockRunner runner_;

  std::array<Work, 7> work_;
  std::vector<float> input_norm_, post_norm_, v_bias_;
  bool input_norm_changed_ = false, post_norm_changed_ = false;
  std::array<std::optional<WeightAlgorithm>, kNumLinearGroups> group_algo_;
  std::array<ChannelAbsStats, kNumLinearGroups> stats_;
  std::array<KeptRows, kNumLinearGroups> kept_;
  std::array<ActivationObserver, kNumLinearGroups> observers_;
  std::array<std::optional<GptqHessian>, kNumLinearGroups> hessians_;
  std::array<double, kNumLinearGroups> awq_ratio_{};
  std::vector<int64_t> awq_index_;  // the samples AWQ's loss runs on
  std::vector<float> awq_inputs_, awq_float_out_;
  std::array<std::unique_ptr<WeightMatrix>, 7> quantized_;
  std::array<bool, 7> rounded_{};  // quantized_[i] holds the rounded layer
  QuantizedBlock out_;
};

}  // namespace

std::vector<int64_t> awq_sample_indices(int64_t n_samples, int64_t seq_len,
                                        int64_t awq_max_tokens) {
  const int64_t k = std::clamp<int64_t>(awq_max_tokens / seq_len, 1, n_samples);
  std::vector<int64_t> idx(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) idx[i] = i * n_samples / k;
  return idx;
}

Result<QuantizedBlock> quantize_block(const Model& model, int64_t layer_index,
                                      const BlockQuantOptions& options, std::vector<float>& hidden,
                                      int64_t n_samples, int64_t seq_len) {
  BlockQuantizer q(model, layer_index, options, hidden, n_samples, seq_len);
  return q.run().context(fmt::format("quantizing block {}", layer_index));
}

}  // namespace qforge::quant_internal

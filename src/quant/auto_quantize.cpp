// Auto mixed precision as an exact multiple-choice knapsack: DP over the layers keeping the
// Pareto frontier of (exact integer cost, total sensitivity), pruned by the budget and by
// Lagrangian lower bounds against a greedy plan, then backtracking (ModelOpt's auto_quantize).
#include "qforge/quant/auto_quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

namespace qforge {
namespace {

using Cost = __int128;

constexpr double kMaxBits = 1024.0;
// Units (bits scaled to integers) must stay below 2^62 so that n_params (< 2^63) times a unit
// and their sums over the layers (< 2^63 params in all) fit a signed 128-bit integer.
constexpr int kMaxUnitBits = 62;
// Sums of n >= 0 doubles carry a relative rounding error below (n + 1) * 2^-53; the bound tests
// allow 1e-9 of the magnitudes involved, which covers millions of layers, so rounding can never
// prune the optimum.
constexpr double kBoundSlack = 1e-9;
// Backtracking stores 8 bytes per kept state and layer; past this many the instance is refused
// instead of exhausting memory.
constexpr size_t kMaxStoredStates = size_t{1} << 25;

// v = mantissa * 2^exponent with an odd mantissa (v finite, > 0).
struct Dyadic {
  int64_t mantissa;
  int exponent;
};

Dyadic to_dyadic(double v) {
  int e = 0;
  const double f = std::frexp(v, &e);  // v = f * 2^e, f in [0.5, 1)
  auto m = static_cast<int64_t>(std::ldexp(f, 53));
  int exponent = e - 53;
  while ((m & 1) == 0) {
    m >>= 1;
    ++exponent;
  }
  return {m, exponent};
}

int bit_length(int64_t v) {
  int n = 0;
  while (v > 0) {
    ++n;
    v >>= 1;
  }
  return n;
}

struct State {
  Cost cost;
  double sensitivity;
};

// Per frontier state of one layer: where it came from.
struct Back {
  uint32_t parent;
  uint16_t candidate;
};

// The plan minimising sum_i (s_ic + lambda * cost_ic) layer by layer (ties to the cheaper
// format): the Lagrangian relaxation's plan for multiplier lambda. Its cost falls as lambda
// grows.
std::vector<int> relaxed_plan(const std::vector<AutoQuantizeLayer>& layers,
                              const std::vector<std::vector<Cost>>& cost, double lambda) {
  std::vector<int> pick(layers.size(), -1);
  for (size_t i = 0; i < layers.size(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < cost[i].size(); ++c) {
      const double s = layers[i].sensitivity[c];
      if (!std::isfinite(s)) continue;
      const double v = s + lambda * static_cast<double>(cost[i][c]);
      const int k = pick[i];
      if (k < 0 || v < best || (v == best && cost[i][c] < cost[i][k])) {
        pick[i] = static_cast<int>(c);
        best = v;
      }
    }
  }
  return pick;
}

Cost plan_cost(const std::vector<std::vector<Cost>>& cost, const std::vector<int>& pick) {
  Cost total = 0;
  for (size_t i = 0; i < pick.size(); ++i) total += cost[i][pick[i]];
  return total;
}

// The smallest multiplier (to bisection precision) whose relaxed plan fits the budget: it
// maximises the concave dual sum_i min_c (s_ic + lambda cost_ic) - lambda budget. 0 when the
// least-sensitivity plan already fits. Needs the cheapest plan to fit.
double feasible_multiplier(const std::vector<AutoQuantizeLayer>& layers,
                           const std::vector<std::vector<Cost>>& cost, Cost budget) {
  if (plan_cost(cost, relaxed_plan(layers, cost, 0.0)) <= budget) return 0.0;
  // Past the steepest trade-off of any layer every layer relaxes to its cheapest format.
  double hi = 0.0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& s = layers[i].sensitivity;
    for (size_t a = 0; a < s.size(); ++a) {
      for (size_t b = 0; b < s.size(); ++b) {
        if (std::isfinite(s[a]) && std::isfinite(s[b]) && cost[i][b] > cost[i][a] && s[b] < s[a]) {
          hi = std::max(hi, (s[a] - s[b]) / static_cast<double>(cost[i][b] - cost[i][a]));
        }
      }
    }
  }
  hi *= 2.0;
  double lo = 0.0;
  for (int k = 0; k < 200; ++k) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (plan_cost(cost, relaxed_plan(layers, cost, mid)) > budget ? lo : hi) = mid;
  }
  return hi;
}

// A feasible plan's total sensitivity, an upper bound on the optimum: the relaxed plan at the
// feasible multiplier, then greedy upgrades by the most sensitivity saved per unit of cost while
// the budget allows.
double greedy_upper_bound(const std::vector<AutoQuantizeLayer>& layers,
                          const std::vector<std::vector<Cost>>& cost, Cost budget, double lambda) {
  std::vector<int> pick = relaxed_plan(layers, cost, lambda);
  if (plan_cost(cost, pick) > budget) {
    // Rounding in lambda * cost can tip a near-tie; the cheapest plan always fits.
    for (size_t i = 0; i < layers.size(); ++i) {
      for (size_t c = 0; c < cost[i].size(); ++c) {
        const auto& s = layers[i].sensitivity;
        const int k = pick[i];
        if (std::isfinite(s[c]) &&
            (cost[i][c] < cost[i][k] || (cost[i][c] == cost[i][k] && s[c] < s[k]))) {
          pick[i] = static_cast<int>(c);
        }
      }
    }
  }
  Cost used = plan_cost(cost, pick);
  for (;;) {
    double best_ratio = -1.0;
    size_t best_layer = 0;
    int best_cand = -1;
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& s = layers[i].sensitivity;
      for (size_t c = 0; c < s.size(); ++c) {
        const double gain = s[pick[i]] - s[c];
        if (!(gain > 0.0)) continue;  // also skips forbidden (+Inf) formats
        const Cost extra = cost[i][c] - cost[i][pick[i]];
        if (used + extra > budget) continue;
        const double ratio = extra <= 0 ? std::numeric_limits<double>::infinity()
                                        : gain / static_cast<double>(extra);
        if (ratio > best_ratio) {
          best_ratio = ratio;
          best_layer = i;
          best_cand = static_cast<int>(c);
        }
      }
    }
    if (best_cand < 0) break;
    used += cost[best_layer][best_cand] - cost[best_layer][pick[best_layer]];
    pick[best_layer] = best_cand;
  }
  double total = 0.0;
  for (size_t i = 0; i < layers.size(); ++i) total += layers[i].sensitivity[pick[i]];
  return total;
}

// Lower bounds on the sensitivity the layers after a state can still add, given the budget the
// state leaves: for any lambda >= 0 and any completion of cost <= room,
//   sum_j s_j >= sum_j min_c (s_jc + lambda * cost_jc) - lambda * room
// (Lagrangian relaxation of the budget). lambda = 0 gives the plain sum of the least
// sensitivities; the whole problem's multiplier and a few multiples of it bound the states whose
// remaining budget is tight.
class LagrangianBounds {
 public:
  LagrangianBounds(const std::vector<AutoQuantizeLayer>& layers,
                   const std::vector<std::vector<Cost>>& cost, double lambda_star) {
    const size_t n = layers.size();
    lambdas_ = {0.0};
    if (lambda_star > 0.0) {
      for (const double f : {0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0}) {
        lambdas_.push_back(lambda_star * f);
      }
    }
    suffix_.assign(lambdas_.size(), std::vector<double>(n + 1, 0.0));
    for (size_t k = 0; k < lambdas_.size(); ++k) {
      const std::vector<int> pick = relaxed_plan(layers, cost, lambdas_[k]);
      for (size_t i = n; i-- > 0;) {
        suffix_[k][i] = suffix_[k][i + 1] + layers[i].sensitivity[pick[i]] +
                        lambdas_[k] * static_cast<double>(cost[i][pick[i]]);
      }
    }
  }

  // Whether a state before layer i (layers i.. remain) with sensitivity `sens` and `room` >= 0
  // of the budget left cannot finish at or below `bound`.
  bool exceeds(size_t i, double sens, Cost room, double bound) const {
    const auto r = static_cast<double>(room);
    for (size_t k = 0; k < lambdas_.size(); ++k) {
      const double rest = suffix_[k][i] - lambdas_[k] * r;
      const double slack = kBoundSlack * (sens + suffix_[k][i] + lambdas_[k] * r + bound);
      if (sens + rest > bound + slack) return true;
    }
    return false;
  }

 private:
  std::vector<double> lambdas_;
  std::vector<std::vector<double>> suffix_;  // [lambda][i]: sum over layers >= i
};

Status validate(const std::vector<AutoQuantizeLayer>& layers,
                const std::vector<AutoQuantizeCandidate>& candidates, double target_bits) {
  if (layers.empty() || candidates.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "auto_quantize: {} layers and {} candidate formats (expected at least one "
                      "of each)",
                      layers.size(), candidates.size());
  }
  if (candidates.size() > std::numeric_limits<uint16_t>::max()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "auto_quantize: {} candidate formats (at most 65535)", candidates.size());
  }
  for (const auto& c : candidates) {
    if (!(c.bits > 0.0 && c.bits <= kMaxBits)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "auto_quantize: candidate '{}' has bits = {} (expected effective bits "
                        "per weight in (0, {}], e.g. 4.5 for nvfp4)",
                        c.name, c.bits, kMaxBits);
    }
  }
  if (!std::isfinite(target_bits)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "auto_quantize: target = {} bits/weight (expected a finite number, e.g. 4.8)",
                      target_bits);
  }
  Cost total = 0;
  for (const auto& layer : layers) {
    if (layer.sensitivity.size() != candidates.size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "auto_quantize: layer '{}' has {} sensitivities but there are {} "
                        "candidate formats (one per candidate, in the same order)",
                        layer.name, layer.sensitivity.size(), candidates.size());
    }
    if (layer.n_params <= 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "auto_quantize: layer '{}' has n_params = {} (expected > 0)", layer.name,
                        layer.n_params);
    }
    total += layer.n_params;
    bool any_allowed = false;
    for (size_t c = 0; c < candidates.size(); ++c) {
      const double s = layer.sensitivity[c];
      if (std::isnan(s) || s < 0.0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "auto_quantize: layer '{}' has sensitivity {} for '{}' (expected >= 0; "
                          "+inf forbids the format)",
                          layer.name, s, candidates[c].name);
      }
      any_allowed = any_allowed || std::isfinite(s);
    }
    if (!any_allowed) {
      return make_error(ErrorCode::kInvalidArgument,
                        "auto_quantize: layer '{}' forbids every candidate format (all "
                        "sensitivities are +inf)",
                        layer.name);
    }
  }
  if (total > std::numeric_limits<int64_t>::max()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "auto_quantize: the layers hold more than 2^63 parameters in all");
  }
  return ok_status();
}

}  // namespace

Result<AutoQuantizePlan> solve_auto_quantize(const std::vector<AutoQuantizeLayer>& layers,
                                             const std::vector<AutoQuantizeCandidate>& candidates,
                                             double target_bits) {
  QF_TRY(validate(layers, candidates, target_bits));
  const size_t n_layers = layers.size();
  const size_t n_cands = candidates.size();
  int64_t total_params = 0;
  for (const auto& layer : layers) total_params += layer.n_params;

  // Exact integer units: every bits value and the target are multiples of 2^min_exponent.
  double max_bits = 0.0;
  double min_bits = kMaxBits;
  for (const auto& c : candidates) {
    max_bits = std::max(max_bits, c.bits);
    min_bits = std::min(min_bits, c.bits);
  }
  // A target above every candidate changes nothing (and below the smallest it is infeasible).
  const double target = std::min(target_bits, max_bits);
  std::vector<Dyadic> dyadic;
  for (const auto& c : candidates) dyadic.push_back(to_dyadic(c.bits));
  if (target > 0.0) dyadic.push_back(to_dyadic(target));
  int min_exponent = std::numeric_limits<int>::max();
  for (const auto& d : dyadic) min_exponent = std::min(min_exponent, d.exponent);
  std::vector<int64_t> units(dyadic.size());
  for (size_t k = 0; k < dyadic.size(); ++k) {
    const int shift = dyadic[k].exponent - min_exponent;
    if (bit_length(dyadic[k].mantissa) + shift > kMaxUnitBits) {
      return make_error(ErrorCode::kInvalidArgument,
                        "auto_quantize: bits values {}..{} and target {} need more than {} bits "
                        "of resolution to compare exactly (use bits with fewer fractional "
                        "binary digits, e.g. 4.125 or 4.8)",
                        min_bits, max_bits, target_bits, kMaxUnitBits);
    }
    units[k] = dyadic[k].mantissa << shift;
  }
  const double unit = std::ldexp(1.0, min_exponent);  // bits per unit

  // cost[i][c] = n_params_i * units_c, and suffix_min_cost[i]: the least cost of layers i..n-1
  // (each in its cheapest allowed format).
  std::vector<std::vector<Cost>> cost(n_layers, std::vector<Cost>(n_cands));
  std::vector<Cost> suffix_min_cost(n_layers + 1, 0);
  for (size_t i = n_layers; i-- > 0;) {
    Cost cheapest = std::numeric_limits<Cost>::max();
    for (size_t c = 0; c < n_cands; ++c) {
      cost[i][c] = static_cast<Cost>(layers[i].n_params) * units[c];
      if (std::isfinite(layers[i].sensitivity[c])) cheapest = std::min(cheapest, cost[i][c]);
    }
    suffix_min_cost[i] = suffix_min_cost[i + 1] + cheapest;
  }
  const Cost budget = target > 0.0 ? static_cast<Cost>(units.back()) * total_params : Cost{-1};
  if (suffix_min_cost[0] > budget) {
    const double min_average =
        static_cast<double>(suffix_min_cost[0]) * unit / static_cast<double>(total_params);
    return make_error(ErrorCode::kInvalidArgument,
                      "auto_quantize: target {} bits/weight is below the minimum achievable {:.6g} "
                      "(every layer in its cheapest allowed format); raise the target or add a "
                      "cheaper candidate",
                      target_bits, min_average);
  }
  const double lambda = feasible_multiplier(layers, cost, budget);
  const double upper = greedy_upper_bound(layers, cost, budget, lambda);
  const LagrangianBounds bounds(layers, cost, lambda);
  size_t stored = 0;

  // Frontier: sorted by cost ascending with sensitivity strictly descending.
  std::vector<State> frontier = {{0, 0.0}};
  std::vector<std::vector<Back>> back(n_layers);
  std::vector<State> next;
  std::vector<size_t> head(n_cands);
  for (size_t i = 0; i < n_layers; ++i) {
    const auto& s = layers[i].sensitivity;
    const Cost room = budget - suffix_min_cost[i + 1];
    std::fill(head.begin(), head.end(), 0);
    next.clear();
    auto& links = back[i];
    // k-way merge of the frontier shifted by each allowed candidate, dropping dominated states.
    for (;;) {
      int pick = -1;
      Cost pick_cost = 0;
      double pick_sens = 0.0;
      for (size_t c = 0; c < n_cands; ++c) {
        if (!std::isfinite(s[c])) continue;
        while (head[c] < frontier.size()) {
          const State& st = frontier[head[c]];
          const Cost cc = st.cost + cost[i][c];
          const double ss = st.sensitivity + s[c];
          // Over the budget: so is every later state of this list (costs rise), which ends it.
          // Above the bound: a later state, with a lower sensitivity, may not be; skip this one.
          if (cc > room) {
            head[c] = frontier.size();
            break;
          }
          if (bounds.exceeds(i + 1, ss, budget - cc, upper)) {
            ++head[c];
            continue;
          }
          if (pick < 0 || cc < pick_cost || (cc == pick_cost && ss < pick_sens)) {
            pick = static_cast<int>(c);
            pick_cost = cc;
            pick_sens = ss;
          }
          break;
        }
      }
      if (pick < 0) break;
      if (next.empty() || pick_sens < next.back().sensitivity) {
        next.push_back({pick_cost, pick_sens});
        links.push_back({static_cast<uint32_t>(head[pick]), static_cast<uint16_t>(pick)});
      }
      ++head[pick];
    }
    if (next.empty()) {
      return make_error(ErrorCode::kInternal,
                        "auto_quantize: no feasible state left at layer '{}' although the "
                        "cheapest plan fits the budget (a qforge bug)",
                        layers[i].name);
    }
    stored += next.size();
    if (stored > kMaxStoredStates) {
      return make_error(ErrorCode::kUnsupported,
                        "auto_quantize: the exact search keeps more than {} states by layer '{}' "
                        "({} of {}); use fewer candidate formats or give layers that must share "
                        "a format one entry with their summed n_params and sensitivities",
                        kMaxStoredStates, layers[i].name, i + 1, n_layers);
    }
    frontier.swap(next);
  }

  // The last state has the least sensitivity (the frontier's sensitivities fall as costs rise).
  AutoQuantizePlan plan;
  plan.target_bits = target_bits;
  plan.total_params = total_params;
  plan.total_sensitivity = frontier.back().sensitivity;
  plan.average_bits =
      static_cast<double>(frontier.back().cost) * unit / static_cast<double>(total_params);
  plan.choices.resize(n_layers);
  size_t state = frontier.size() - 1;
  for (size_t i = n_layers; i-- > 0;) {
    const Back& b = back[i][state];
    AutoQuantizeChoice& choice = plan.choices[i];
    choice.layer = layers[i].name;
    choice.n_params = layers[i].n_params;
    choice.candidate = b.candidate;
    choice.format = candidates[b.candidate].name;
    choice.bits = candidates[b.candidate].bits;
    choice.sensitivity = layers[i].sensitivity[b.candidate];
    state = b.parent;
  }
  return plan;
}

std::string format_auto_quantize_plan(const AutoQuantizePlan& plan, int max_rows) {
  size_t name_width = 5;
  size_t format_width = 6;
  for (const auto& c : plan.choices) {
    name_width = std::max(name_width, c.layer.size());
    format_width = std::max(format_width, c.format.size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:>7}  {:>12}  {:>12}\n", "layer", name_width,
                                "format", format_width, "bits", "params", "sensitivity");
  const auto n = static_cast<int64_t>(plan.choices.size());
  const int64_t shown = max_rows > 0 && n > max_rows ? max_rows : n;
  const int64_t head = (shown + 1) / 2;
  const int64_t tail = shown - head;
  for (int64_t k = 0; k < n; ++k) {
    if (k == head && shown < n) {
      out += fmt::format("... {} more layers ...\n", n - shown);
      k = n - tail - 1;
      continue;
    }
    const auto& c = plan.choices[static_cast<size_t>(k)];
    out += fmt::format("{:<{}}  {:<{}}  {:>7.4g}  {:>12}  {:>12.4e}\n", c.layer, name_width,
                       c.format, format_width, c.bits, c.n_params, c.sensitivity);
  }
  out += fmt::format(
      "average {:.4f} bits/weight (target {:.4g}), total sensitivity {:.4e}, "
      "{} layers, {} params\n",
      plan.average_bits, plan.target_bits, plan.total_sensitivity, n, plan.total_params);
  // Share of layers and parameters per format, in order of first use.
  std::vector<std::string> order;
  std::map<std::string, std::pair<int64_t, int64_t>> share;  // format -> (layers, params)
  for (const auto& c : plan.choices) {
    auto [it, inserted] = share.try_emplace(c.format, 0, 0);
    if (inserted) order.push_back(c.format);
    it->second.first += 1;
    it->second.second += c.n_params;
  }
  for (const auto& f : order) {
    const auto& [n_layers, params] = share[f];
    out += fmt::format("  {:<{}}  {:>5} layers  {:6.2f}% of params\n", f, format_width, n_layers,
                       plan.total_params > 0 ? 100.0 * static_cast<double>(params) /
                                                   static_cast<double>(plan.total_params)
                                             : 0.0);
  }
  return out;
}

}  // namespace qforge

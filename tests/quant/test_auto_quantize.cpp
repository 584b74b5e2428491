// Auto mixed precision solver: equals brute force on random small instances (ties included),
// meets the budget exactly at its edge, reports infeasible targets with the minimum achievable
// average, rejects bad input, and solves a 200-layer model-shaped instance quickly.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "qforge/core/rng.h"
#include "qforge/quant/auto_quantize.h"

namespace qforge {
namespace {

// Bits of real formats: all multiples of 1/8, so brute force can count costs in 1/1024 units.
const std::vector<double> kBits = {3.25, 4.125, 4.25, 4.5, 5.0, 6.0, 8.0, 8.5, 16.0};

struct Instance {
  std::vector<AutoQuantizeLayer> layers;
  std::vector<AutoQuantizeCandidate> candidates;
};

Instance random_instance(Rng& rng) {
  Instance inst;
  const int n_cands = 2 + static_cast<int>(rng.uniform_int(3));
  const int n_layers = 1 + static_cast<int>(rng.uniform_int(8));
  std::vector<double> bits = kBits;
  rng.shuffle(std::span<double>(bits));
  for (int c = 0; c < n_cands; ++c) inst.candidates.push_back({"f" + std::to_string(c), bits[c]});
  // Sensitivities from a small set in half the instances, so that ties happen.
  const bool coarse = rng.uniform() < 0.5;
  for (int i = 0; i < n_layers; ++i) {
    AutoQuantizeLayer layer;
    layer.name = "layer" + std::to_string(i);
    layer.n_params =
        rng.uniform() < 0.3 ? 4096 : 1 + static_cast<int64_t>(rng.uniform_int(5'000'000));
    for (int c = 0; c < n_cands; ++c) {
      const double s = coarse ? 0.25 * static_cast<double>(rng.uniform_int(5)) : rng.uniform();
      layer.sensitivity.push_back(s);
    }
    // Now and then a format is forbidden for a layer (never the last one left).
    if (rng.uniform() < 0.15) {
      layer.sensitivity[rng.uniform_int(n_cands)] = std::numeric_limits<double>::infinity();
    }
    inst.layers.push_back(std::move(layer));
  }
  return inst;
}

struct Brute {
  bool feasible = false;
  double sensitivity = 0.0;
  int64_t cost = 0;  // in 1/1024 bit units
};

// Every assignment; the least sensitivity (summed in layer order, as the solver does), then the
// least cost. The budget is target_units / 1024 bits per weight.
Brute brute_force(const Instance& inst, int64_t target_units) {
  const size_t n = inst.layers.size();
  const size_t k = inst.candidates.size();
  int64_t total = 0;
  for (const auto& l : inst.layers) total += l.n_params;
  const int64_t budget = target_units * total;
  std::vector<size_t> pick(n, 0);
  Brute best;
  for (;;) {
    int64_t cost = 0;
    double sens = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cost +=
          inst.layers[i].n_params * static_cast<int64_t>(inst.candidates[pick[i]].bits * 1024.0);
      sens += inst.layers[i].sensitivity[pick[i]];
    }
    if (std::isfinite(sens) && cost <= budget &&
        (!best.feasible || sens < best.sensitivity ||
         (sens == best.sensitivity && cost < best.cost))) {
      best = {true, sens, cost};
    }
    size_t i = 0;
    while (i < n && ++pick[i] == k) pick[i++] = 0;
    if (i == n) break;
  }
  return best;
}

TEST(AutoQuantize, EqualsBruteForceOnRandomInstances) {
  Rng rng(2024);
  int feasible = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const Instance inst = random_instance(rng);
    // A target in 1/1024 units between a bit under the cheapest and the dearest format.
    double lo = 1e9;
    double hi = 0;
    for (const auto& c : inst.candidates) {
      lo = std::min(lo, c.bits);
      hi = std::max(hi, c.bits);
    }
    const auto target_units = static_cast<int64_t>(std::floor(rng.uniform(lo - 0.05, hi) * 1024.0));
    const double target = static_cast<double>(target_units) / 1024.0;
    const Brute want = brute_force(inst, target_units);
    auto got = solve_auto_quantize(inst.layers, inst.candidates, target);
    ASSERT_EQ(got.ok(), want.feasible) << "trial " << trial;
    if (!want.feasible) {
      EXPECT_NE(got.error().message().find("below the minimum achievable"), std::string::npos);
      continue;
    }
    ++feasible;
    EXPECT_EQ(got->total_sensitivity, want.sensitivity) << "trial " << trial;
    // Recompute the plan's own totals from its choices.
    int64_t cost = 0;
    double sens = 0.0;
    int64_t total = 0;
    ASSERT_EQ(got->choices.size(), inst.layers.size());
    for (size_t i = 0; i < inst.layers.size(); ++i) {
      const auto& c = got->choices[i];
      EXPECT_EQ(c.layer, inst.layers[i].name);
      EXPECT_EQ(c.format, inst.candidates[c.candidate].name);
      EXPECT_EQ(c.sensitivity, inst.layers[i].sensitivity[c.candidate]);
      cost += inst.layers[i].n_params * static_cast<int64_t>(c.bits * 1024.0);
      sens += c.sensitivity;
      total += inst.layers[i].n_params;
    }
    EXPECT_EQ(sens, got->total_sensitivity) << "trial " << trial;
    EXPECT_EQ(cost, want.cost) << "trial " << trial << " (ties go to the cheaper plan)";
    EXPECT_LE(cost, target_units * total) << "trial " << trial;
    EXPECT_DOUBLE_EQ(got->average_bits, static_cast<double>(cost) / 1024.0 / total);
  }
  EXPECT_GT(feasible, 150);
}

// A plain Pareto-frontier DP without any bound (sort, drop dominated): the oracle for instances
// too large to enumerate. Returns (least sensitivity, its least cost in 1/1024 units) or
// (-1, -1) when infeasible.
std::pair<double, int64_t> reference_dp(const Instance& inst, int64_t target_units) {
  int64_t total = 0;
  for (const auto& l : inst.layers) total += l.n_params;
  const int64_t budget = target_units * total;
  std::vector<std::pair<int64_t, double>> front = {{0, 0.0}};
  for (const auto& l : inst.layers) {
    std::vector<std::pair<int64_t, double>> next;
    for (const auto& [cost, sens] : front) {
      for (size_t c = 0; c < inst.candidates.size(); ++c) {
        if (!std::isfinite(l.sensitivity[c])) continue;
        const int64_t nc =
            cost + l.n_params * static_cast<int64_t>(inst.candidates[c].bits * 1024.0);
        if (nc <= budget) next.push_back({nc, sens + l.sensitivity[c]});
      }
    }
    std::sort(next.begin(), next.end());
    front.clear();
    for (const auto& st : next) {
      if (front.empty() || st.second < front.back().second) front.push_back(st);
    }
    if (front.empty()) return {-1.0, -1};
  }
  return {front.back().second, front.back().first};
}

TEST(AutoQuantize, EqualsUnboundedDpOnMidSizedInstances) {
  Rng rng(77);
  const std::vector<AutoQuantizeCandidate> all = {
      {"int4", 4.125}, {"nvfp4", 4.5}, {"int8", 8.0}, {"fp8", 8.0}, {"bf16", 16.0}};
  for (int trial = 0; trial < 60; ++trial) {
    Instance inst;
    const size_t n_cands = 3 + rng.uniform_int(3);
    inst.candidates.assign(all.end() - static_cast<std::ptrdiff_t>(n_cands), all.end());
    const bool shaped = trial % 2 == 0;
    for (int i = 0; i < 40; ++i) {
      AutoQuantizeLayer l;
      l.name = "l" + std::to_string(i);
      l.n_params = shaped ? (i % 7 < 4 ? 4096 * 4096 : 4096 * 14336)
                          : 1 + static_cast<int64_t>(rng.uniform_int(50'000'000));
      const double base = std::exp(rng.uniform(-9.0, -3.0));
      for (size_t c = 0; c + 1 < n_cands; ++c) {
        l.sensitivity.push_back(base * std::exp(rng.uniform(-3.0, 0.0) * static_cast<double>(c)));
      }
      l.sensitivity.push_back(0.0);
      inst.layers.push_back(std::move(l));
    }
    const auto target_units =
        static_cast<int64_t>(std::floor(rng.uniform(inst.candidates[0].bits, 12.0) * 1024.0));
    const auto [want_sens, want_cost] = reference_dp(inst, target_units);
    auto got = solve_auto_quantize(inst.layers, inst.candidates,
                                   static_cast<double>(target_units) / 1024.0);
    ASSERT_EQ(got.ok(), want_cost >= 0) << "trial " << trial;
    if (!got.ok()) continue;
    EXPECT_EQ(got->total_sensitivity, want_sens) << "trial " << trial;
    int64_t cost = 0;
    for (const auto& c : got->choices) cost += c.n_params * static_cast<int64_t>(c.bits * 1024.0);
    EXPECT_EQ(cost, want_cost) << "trial " << trial;
  }
}

// Two layers of 1024 weights; the budget 6.25 bits is met exactly by int4 + fp8.
Instance two_layer_instance() {
  Instance inst;
  inst.candidates = {{"int4", 4.5}, {"fp8", 8.0}, {"bf16", 16.0}};
  inst.layers = {{"a", 1024, {1.0, 0.1, 0.0}}, {"b", 1024, {2.0, 0.2, 0.0}}};
  return inst;
}

TEST(AutoQuantize, BudgetEdgeIsInclusiveAndExact) {
  const Instance inst = two_layer_instance();
  auto at = solve_auto_quantize(inst.layers, inst.candidates, 6.25);
  ASSERT_TRUE(at.ok()) << at.error().to_string();
  EXPECT_EQ(at->choices[0].format, "int4");
  EXPECT_EQ(at->choices[1].format, "fp8");
  EXPECT_EQ(at->average_bits, 6.25);
  EXPECT_EQ(at->total_sensitivity, 1.0 + 0.2);

  // One ulp below the edge, only the all-int4 plan fits.
  auto below = solve_auto_quantize(inst.layers, inst.candidates, std::nextafter(6.25, 0.0));
  ASSERT_TRUE(below.ok());
  EXPECT_EQ(below->average_bits, 4.5);
  EXPECT_EQ(below->total_sensitivity, 3.0);

  // The cheapest plan exactly; and everything unquantized once the target allows it.
  EXPECT_EQ(solve_auto_quantize(inst.layers, inst.candidates, 4.5)->total_sensitivity, 3.0);
  auto all = solve_auto_quantize(inst.layers, inst.candidates, 16.0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->total_sensitivity, 0.0);
  EXPECT_EQ(all->average_bits, 16.0);
  EXPECT_EQ(solve_auto_quantize(inst.layers, inst.candidates, 1e9)->average_bits, 16.0);
  // 12.0 = (8 + 16) / 2: b unquantized, a in fp8.
  auto mid = solve_auto_quantize(inst.layers, inst.candidates, 12.0);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->choices[0].format, "fp8");
  EXPECT_EQ(mid->choices[1].format, "bf16");
}

// Bits that are not multiples of a power-of-two fraction still compare exactly.
TEST(AutoQuantize, NonDyadicBitsCompareExactly) {
  std::vector<AutoQuantizeCandidate> cands = {{"x", 4.1}, {"y", 8.0}};
  std::vector<AutoQuantizeLayer> layers = {{"a", 1, {1.0, 0.0}}, {"b", 1, {1.0, 0.5}}};
  auto exact = solve_auto_quantize(layers, cands, 4.1);
  ASSERT_TRUE(exact.ok()) << exact.error().to_string();
  EXPECT_EQ(exact->total_sensitivity, 2.0);
  // The doubles 4.1 and 6.05 satisfy 4.1 + 8 == 2 * 6.05 exactly: "a" upgrades at the edge,
  // and one ulp less keeps both layers at 4.1.
  auto half = solve_auto_quantize(layers, cands, 6.05);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->choices[0].format, "y");
  EXPECT_EQ(half->total_sensitivity, 1.0);
  EXPECT_EQ(solve_auto_quantize(layers, cands, std::nextafter(6.05, 0.0))->total_sensitivity, 2.0);
  EXPECT_FALSE(solve_auto_quantize(layers, cands, std::nextafter(4.1, 0.0)).ok());
}

TEST(AutoQuantize, InfiniteSensitivityForbidsAFormat) {
  Instance inst = two_layer_instance();
  inst.layers[1].sensitivity[0] = std::numeric_limits<double>::infinity();  // b cannot be int4
  auto plan = solve_auto_quantize(inst.layers, inst.candidates, 6.25);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  EXPECT_EQ(plan->choices[0].format, "int4");
  EXPECT_EQ(plan->choices[1].format, "fp8");
  // The cheapest allowed plan is now 6.25 bits.
  auto low = solve_auto_quantize(inst.layers, inst.candidates, 5.0);
  ASSERT_FALSE(low.ok());
  EXPECT_NE(low.error().message().find("minimum achievable 6.25"), std::string::npos)
      << low.error().message();
}

TEST(AutoQuantize, InfeasibleTargetNamesTheMinimum) {
  const Instance inst = two_layer_instance();
  for (const double target : {4.0, 0.0, -3.0}) {
    auto r = solve_auto_quantize(inst.layers, inst.candidates, target);
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("below the minimum achievable 4.5"), std::string::npos)
        << r.error().message();
  }
}

TEST(AutoQuantize, RejectsBadInput) {
  const Instance inst = two_layer_instance();
  auto expect_error = [](const Result<AutoQuantizePlan>& r, const std::string& text) {
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
  };
  expect_error(solve_auto_quantize({}, inst.candidates, 6.0), "0 layers");
  expect_error(solve_auto_quantize(inst.layers, {}, 6.0), "0 candidate formats");
  Instance bad = inst;
  bad.layers[1].sensitivity.pop_back();
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0),
               "layer 'b' has 2 sensitivities but there are 3");
  bad = inst;
  bad.layers[0].sensitivity[1] = -0.5;
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0),
               "layer 'a' has sensitivity -0.5 for 'fp8'");
  bad = inst;
  bad.layers[0].sensitivity[2] = std::numeric_limits<double>::quiet_NaN();
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0), "sensitivity nan for 'bf16'");
  bad = inst;
  bad.layers[1].n_params = 0;
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0), "n_params = 0");
  bad = inst;
  bad.candidates[0].bits = 0.0;
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0), "candidate 'int4' has bits");
  bad = inst;
  bad.layers[0].sensitivity.assign(3, std::numeric_limits<double>::infinity());
  expect_error(solve_auto_quantize(bad.layers, bad.candidates, 6.0), "forbids every candidate");
  expect_error(
      solve_auto_quantize(inst.layers, inst.candidates, std::numeric_limits<double>::quiet_NaN()),
      "expected a finite number");
}

// 32 decoder blocks x 7 linear layers of a Llama-7B-like model (224 layers, 3 formats), and 200
// layers of random sizes (the harder case for the Pareto frontier).
TEST(AutoQuantize, SolvesModelSizedInstancesQuickly) {
  const std::vector<AutoQuantizeCandidate> cands = {{"nvfp4", 4.5}, {"fp8", 8.0}, {"bf16", 16.0}};
  for (const bool random_sizes : {false, true}) {
    Rng rng(random_sizes ? 7 : 8);
    std::vector<AutoQuantizeLayer> layers;
    const int64_t shapes[7] = {4096 * 4096,  4096 * 4096,  4096 * 4096, 4096 * 4096,
                               4096 * 11008, 4096 * 11008, 11008 * 4096};
    const int n_layers = random_sizes ? 200 : 224;
    for (int i = 0; i < n_layers; ++i) {
      AutoQuantizeLayer l;
      l.name = "model.layers." + std::to_string(i / 7) + ".proj" + std::to_string(i % 7);
      l.n_params = random_sizes ? 1'000'000 + static_cast<int64_t>(rng.uniform_int(50'000'000))
                                : shapes[i % 7];
      // Log-uniform sensitivities; FP8 costs about 1/20 of NVFP4, BF16 nothing.
      const double s4 = std::exp(rng.uniform(-9.0, -3.0));
      l.sensitivity = {s4, s4 * std::exp(rng.uniform(-4.0, -2.0)), 0.0};
      layers.push_back(std::move(l));
    }
    const auto start = std::chrono::steady_clock::now();
    auto plan = solve_auto_quantize(layers, cands, 6.0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(plan.ok()) << plan.error().to_string();
    std::printf("auto_quantize %d layers (%s sizes): %.3f s, average %.4f bits, sensitivity %.4e\n",
                n_layers, random_sizes ? "random" : "llama-7b", seconds, plan->average_bits,
                plan->total_sensitivity);
    EXPECT_LE(plan->average_bits, 6.0);
    EXPECT_GT(plan->average_bits, 5.9);
    EXPECT_LT(seconds, 1.0);
  }
}

TEST(AutoQuantize, FormatsAReadableTable) {
  const Instance inst = two_layer_instance();
  auto plan = solve_auto_quantize(inst.layers, inst.candidates, 6.25);
  ASSERT_TRUE(plan.ok());
  const std::string table = format_auto_quantize_plan(*plan);
  std::printf("%s", table.c_str());
  EXPECT_NE(table.find("layer"), std::string::npos);
  EXPECT_NE(table.find("sensitivity"), std::string::npos);
  EXPECT_NE(table.find("int4"), std::string::npos);
  EXPECT_NE(table.find("average 6.2500 bits/weight (target 6.25)"), std::string::npos);
  EXPECT_NE(table.find("50.00% of params"), std::string::npos);

  AutoQuantizePlan big;
  for (int i = 0; i < 50; ++i)
    big.choices.push_back({"l" + std::to_string(i), 10, 0, "fp8", 8.0, 0.0});
  big.total_params = 500;
  const std::string elided = format_auto_quantize_plan(big, 10);
  EXPECT_NE(elided.find("... 40 more layers ..."), std::string::npos);
  EXPECT_NE(elided.find("l0 "), std::string::npos);
  EXPECT_NE(elided.find("l49"), std::string::npos);
  EXPECT_EQ(elided.find("l25"), std::string::npos);
}

}  // namespace
}  // namespace qforge

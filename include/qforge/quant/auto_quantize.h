// Auto mixed precision (ModelOpt's auto_quantize): choose one format per layer so that the
// model's average bits per weight meets a budget at the least total sensitivity. ModelOpt
// searches the choice greedily / by LP relaxation; here the multiple-choice knapsack is solved
// exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

// A format a layer may take, e.g. {"nvfp4", 4.5}, {"fp8", 8.0}, {"bf16", 16.0}.
struct AutoQuantizeCandidate {
  std::string name;
  double bits = 0.0;  // effective bits per weight, scales included (bits_per_weight())
};

struct AutoQuantizeLayer {
  std::string name;
  int64_t n_params = 0;
  // [n_candidates]: the cost of this layer in each candidate format, >= 0 (the driver measures
  // the KL divergence of the model output with only this layer quantized that way; the
  // unquantized candidate may have 0). +Inf forbids the format for this layer (e.g. a shape the
  // format's kernels cannot serve).
  std::vector<double> sensitivity;
};

struct AutoQuantizeChoice {
  std::string layer;
  int64_t n_params = 0;
  int candidate = 0;   // index into the candidates
  std::string format;  // the candidate's name
  double bits = 0.0;
  double sensitivity = 0.0;
};

struct AutoQuantizePlan {
  std::vector<AutoQuantizeChoice> choices;  // one per layer, in the layers' order
  double target_bits = 0.0;
  double average_bits = 0.0;  // sum(n_params * bits) / sum(n_params) of the plan
  double total_sensitivity = 0.0;
  int64_t total_params = 0;
};

// The plan with the least total sensitivity among all with
//   sum_i n_params_i * bits_i <= target_bits * sum_i n_params_i.
// Exact: dynamic programming over the layers keeping the Pareto frontier of (cost, sensitivity)
// states, then backtracking. States that cannot beat a greedy feasible plan (by Lagrangian lower
// bounds on the rest) or cannot fit the budget are dropped, which never drops the optimum.
// Costs are exact integers: every double is an integer times a power of two, so the bits and
// the target are scaled by the finest power of two among them and the products with n_params
// summed in 128 bits (4.125, 4.25, 4.5 ... need 1/8 of a bit; 4.1 still compares exactly).
// Sensitivities are summed in layer order; on equal total sensitivity the cheaper plan wins.
// Errors: no layers or no candidates; a layer whose sensitivity count differs from the candidate
// count; n_params <= 0; bits not finite or outside (0, 1024]; a NaN or negative sensitivity; a
// layer with every format forbidden; a target that is not finite; a target below the cheapest
// plan (the message gives that minimum average); bits too finely fractional to count in 128
// bits; a search that would keep more than 2^25 states (kUnsupported; thousands of layers of
// distinct sizes with many formats: merge layers that must share a format).
Result<AutoQuantizePlan> solve_auto_quantize(const std::vector<AutoQuantizeLayer>& layers,
                                             const std::vector<AutoQuantizeCandidate>& candidates,
                                             double target_bits);

// A table for the CLI: one row per layer (layer, format, bits, params, sensitivity), then the
// totals and the share of parameters per format. max_rows > 0 elides the middle rows of a longer
// plan ("... 180 more layers ...").
std::string format_auto_quantize_plan(const AutoQuantizePlan& plan, int max_rows = 0);

}  // namespace qforge

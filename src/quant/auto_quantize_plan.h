// MIXED_PRECISION (`--qformat auto --auto-quantize-bits B`): measure each layer group's
// sensitivity to each candidate format — the mean KL divergence of the model's next-token
// distribution when only that group is quantized — and pick the formats that minimise the total
// sensitivity under the average-bits budget (solve_auto_quantize, an exact knapsack).
#pragma once

#include <map>
#include <string>

#include "qforge/calib/calib_dataset.h"
#include "qforge/core/error.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/model/model.h"
#include "qforge/quant/quant_config.h"

namespace qforge::quant_internal {

struct MixedPrecisionPlan {
  std::map<std::string, QuantAlgo> algos;  // module -> algorithm
  std::string table;                       // the plan, for the CLI
  double average_bits = 0;
};

// Samples used to measure sensitivities (the first ones of the calibration set).
inline constexpr int64_t kSensitivitySamples = 4;

// Formats the export layout cannot store for a layer (check_layer_exportable) get an infinite
// sensitivity, so the plan never picks them.
Result<MixedPrecisionPlan> plan_mixed_precision(const Model& model, const CalibDataset& calib,
                                                const QuantConfig& config,
                                                QuantExportFormat export_format,
                                                bool show_progress);

}  // namespace qforge::quant_internal

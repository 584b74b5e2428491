// JSON form of PackedLinearInfo (include/qforge/engine/packed_linear.h) as the engine's
// metadata stores it. from_json treats its input as hostile: unknown kernels, negative or
// oversized dimensions and wrong types are errors naming the field.
#pragma once

#include <nlohmann/json.hpp>

#include "qforge/core/error.h"
#include "qforge/engine/packed_linear.h"

namespace qforge {

nlohmann::json packed_linear_info_to_json(const PackedLinearInfo& info);
Result<PackedLinearInfo> packed_linear_info_from_json(const nlohmann::json& j);

}  // namespace qforge

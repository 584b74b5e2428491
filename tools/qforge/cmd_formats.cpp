// `qforge formats`: the precision table. Element formats with their ranges, then storage formats
// with bits per weight (scales included) and, with --params, the memory a model of that size needs.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/scalar.h"
#include "table.h"

namespace qforge::cli {
namespace {

struct ElementRow {
  std::string name;
  int bits;
  std::string layout;  // "1.4.3 bias 7" or "int, zero point"
  double max_value;
  double min_normal;
  double min_subnormal;
  std::string specials;
};

std::vector<ElementRow> element_rows() {
  std::vector<ElementRow> rows;
  for (ScalarFormat f : all_scalar_formats()) {
    const ScalarFormatInfo& info = scalar_format_info(f);
    std::string specials;
    if (info.has_inf) specials += "Inf ";
    if (info.has_nan) specials += "NaN ";
    if (info.has_negative_zero) specials += "-0";
    if (specials.empty()) specials = "none";
    rows.push_back({info.name, info.bits,
                    fmt::format("{}.{}.{} bias {}", info.has_sign ? 1 : 0, info.exponent_bits,
                                info.mantissa_bits, info.bias),
                    info.max_finite, info.min_normal, info.min_subnormal, specials});
  }
  // Integer codes: "normal" and "subnormal" are both the unit step.
  rows.push_back({"int8", 8, "int [-127, 127]", 127, 1, 1, "none"});
  rows.push_back({"int4", 4, "int [-8, 7]", 7, 1, 1, "none"});
  rows.push_back({"uint4", 4, "int [0, 15] - zero", 15, 1, 1, "none"});
  return rows;
}

// Parses "70e9", "7e9", "8B", "1.5b", "350M", "70000000000".
Result<double> parse_param_count(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--params '{}' is not a number (examples: 70e9, 8B, 350M)", text);
  }
  std::string suffix = text.substr(used);
  double multiplier = 1;
  if (suffix == "k" || suffix == "K") {
    multiplier = 1e3;
  } else if (suffix == "m" || suffix == "M") {
    multiplier = 1e6;
  } else if (suffix == "b" || suffix == "B" || suffix == "g" || suffix == "G") {
    multiplier = 1e9;
  } else if (suffix == "t" || suffix == "T") {
    multiplier = 1e12;
  } else if (!suffix.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--params '{}': unknown suffix '{}' (use K, M, B or T)", text, suffix);
  }
  value *= multiplier;
  if (!std::isfinite(value) || value < 1 || value > 1e15) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--params {} is out of range; expected a parameter count in [1, 1e15]", text);
  }
  return value;
}

// 7e10 -> "70B params", 3.5e8 -> "350M params".
std::string format_params(double params) {
  if (params >= 1e12) return fmt::format("{:g}T params", params / 1e12);
  if (params >= 1e9) return fmt::format("{:g}B params", params / 1e9);
  if (params >= 1e6) return fmt::format("{:g}M params", params / 1e6);
  return fmt::format("{:g} params", params);
}

std::string format_number(double v) {
  if (v == 0) return "0";
  if (v >= 1e5 || v < 1e-3) return fmt::format("{:.4g}", v);
  return fmt::format("{:g}", v);
}

void run_formats(const std::string& params_text, bool json) {
  double params = 0;
  if (!params_text.empty()) params = value_or_fail(parse_param_count(params_text));

  const auto elements = element_rows();
  const auto specs = common_quant_specs();
  if (json) {
    nlohmann::ordered_json out;
    out["element_formats"] = nlohmann::json::array();
    for (const auto& e : elements) {
      out["element_formats"].push_back(
          {{"name", e.name},
           {"bits", e.bits},
           {"layout", e.layout},
           {"max", e.max_value},
           {"min_normal", e.min_normal},
           {"min_subnormal", e.min_subnormal},
           {"dynamic_range_binades", std::log2(e.max_value / e.min_subnormal)},
           {"specials", e.specials}});
    }
    out["storage_formats"] = nlohmann::json::array();
    for (const auto& s : specs) {
      nlohmann::ordered_json row = {{"name", quant_spec_name(s)},
                                    {"description", quant_format_info(s.format).description},
                                    {"group_size", s.group_size},
                                    {"bits_per_weight", bits_per_weight(s)}};
      if (params > 0) {
        row["params"] = params;
        row["memory_bytes"] = params * bits_per_weight(s) / 8;
      }
      out["storage_formats"].push_back(row);
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }

  Table elem({"format", "bits", "layout", "max", "min normal", "min subnormal", "range (binades)",
              "specials"});
  for (const auto& e : elements) {
    elem.add_row({e.name, std::to_string(e.bits), e.layout, format_number(e.max_value),
                  format_number(e.min_normal), format_number(e.min_subnormal),
                  fmt::format("{:.1f}", std::log2(e.max_value / e.min_subnormal)), e.specials});
  }
  std::printf("Element formats\n%s\n", elem.render().c_str());

  std::vector<std::string> header = {"storage format", "bits/weight", "description"};
  if (params > 0) header.insert(header.begin() + 2, "memory @ " + format_params(params));
  Table storage(header);
  for (const auto& s : specs) {
    std::vector<std::string> row = {quant_spec_name(s), fmt::format("{:.4g}", bits_per_weight(s)),
                                    quant_format_info(s.format).description};
    if (params > 0) {
      row.insert(row.begin() + 2, fmt::format("{:.1f} GB", params * bits_per_weight(s) / 8 / 1e9));
    }
    storage.add_row(row);
  }
  std::printf(
      "Storage formats (bits/weight include scales and zero points; per-tensor and\n"
      "per-row scales cost < 0.01 bit and are not counted)\n%s",
      storage.render().c_str());
}

}  // namespace

static void register_formats(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "formats",
      "Print the precision table: every element format's range, and every storage format's bits "
      "per weight including scale overhead (with --params: the memory a model needs)");
  static std::string params;
  static bool json = false;
  cmd->add_option("--params", params,
                  "Model parameter count for the memory column, e.g. 70e9, 8B, 350M");
  cmd->add_flag("--json", json, "Print machine-readable JSON instead of tables");
  cmd->callback([] { run_formats(params, json); });
}

QF_REGISTER_COMMAND(20, register_formats);

}  // namespace qforge::cli

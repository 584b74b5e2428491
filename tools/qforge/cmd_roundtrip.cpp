// `qforge roundtrip`: quantize -> dequantize every storage format on a built-in, deterministic
// synthetic tensor set (Gaussian, heavy-tailed, outlier channels) and print the error table.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "qforge/core/rng.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"
#include "table.h"

namespace qforge::cli {
namespace {

struct SyntheticTensor {
  std::string name;
  std::string description;
  std::vector<float> values;  // [rows, cols] row-major
};

// Weight-like tensors with the standard deviation of a trained LLM projection (~0.02).
std::vector<SyntheticTensor> synthetic_tensors(int64_t rows, int64_t cols, uint64_t seed) {
  constexpr float kStd = 0.02f;
  const auto n = static_cast<std::size_t>(rows * cols);
  std::vector<SyntheticTensor> set;

  Rng gauss_rng(seed);
  SyntheticTensor gauss{"gaussian", "N(0, 0.02^2)", std::vector<float>(n)};
  for (auto& v : gauss.values) v = kStd * static_cast<float>(gauss_rng.normal());
  set.push_back(std::move(gauss));

  Rng t_rng(seed + 1);
  SyntheticTensor heavy{"student_t3", "Student-t, nu=3, scale 0.02", std::vector<float>(n)};
  for (auto& v : heavy.values) v = kStd * static_cast<float>(t_rng.student_t(3.0));
  set.push_back(std::move(heavy));

  // A few input channels 50x larger, as in the activation outliers of real LLMs (LLM.int8()).
  Rng o_rng(seed + 2);
  SyntheticTensor outlier{"outlier_ch", "N(0, 0.02^2), 8 columns x50", std::vector<float>(n)};
  for (auto& v : outlier.values) v = kStd * static_cast<float>(o_rng.normal());
  for (int k = 0; k < 8; ++k) {
    const int64_t col = (k * 997 + 13) % cols;
    for (int64_t r = 0; r < rows; ++r) outlier.values[r * cols + col] *= 50.0f;
  }
  set.push_back(std::move(outlier));
  return set;
}

struct ErrorStats {
  double relative_rms = 0;  // ||x - x'|| / ||x||
  double sqnr_db = 0;       // 10 log10(sum x^2 / sum (x - x')^2)
  double max_abs = 0;
};

ErrorStats measure(const std::vector<float>& x, const std::vector<float>& y) {
  double signal = 0, noise = 0, max_abs = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    signal += static_cast<double>(x[i]) * x[i];
    noise += d * d;
    max_abs = std::max(max_abs, std::abs(d));
  }
  ErrorStats s;
  s.relative_rms = std::sqrt(noise / signal);
  s.sqnr_db = noise > 0 ? 10 * std::log10(signal / noise) : INFINITY;
  s.max_abs = max_abs;
  return s;
}

std::vector<QuantSpec> default_specs() {
  std::vector<QuantSpec> specs;
  for (QuantFormat f : all_quant_formats()) {
    if (f != QuantFormat::F32 && f != QuantFormat::INT8_PER_TOKEN) {
      specs.push_back(default_quant_spec(f));
    }
  }
  return specs;
}

struct Options {
  int64_t rows = 256;
  int64_t cols = 4096;
  uint64_t seed = 42;
  std::vector<std::string> formats;
  bool json = false;
};

void run_roundtrip(const Options& opt) {
  if (opt.rows <= 0 || opt.cols <= 0 || opt.rows * opt.cols > (int64_t{1} << 28)) {
    throw CliFailure(fmt::format(
        "--rows {} --cols {}: expected positive sizes with rows*cols <= 2^28", opt.rows, opt.cols));
  }
  std::vector<QuantSpec> specs;
  if (opt.formats.empty()) {
    specs = default_specs();
  } else {
    for (const auto& name : opt.formats) specs.push_back(value_or_fail(parse_quant_spec(name)));
  }
  const auto tensors = synthetic_tensors(opt.rows, opt.cols, opt.seed);

  nlohmann::ordered_json json_rows = nlohmann::json::array();
  std::vector<std::string> header = {"format", "bits/weight"};
  for (const auto& t : tensors) header.push_back(t.name + " rel.RMS");
  header.push_back("worst SQNR dB");
  Table table(header);

  std::vector<float> restored(tensors[0].values.size());
  for (const auto& spec : specs) {
    std::vector<std::string> row = {quant_spec_name(spec),
                                    fmt::format("{:.4g}", bits_per_weight(spec))};
    nlohmann::ordered_json jrow = {{"format", quant_spec_name(spec)},
                                   {"bits_per_weight", bits_per_weight(spec)}};
    double worst_sqnr = INFINITY;
    for (const auto& t : tensors) {
      auto q = value_or_fail(quantize_matrix(t.values.data(), opt.rows, opt.cols, spec)
                                 .context(fmt::format("quantizing '{}'", t.name)));
      ok_or_fail(dequantize_matrix(q, restored.data()));
      const ErrorStats s = measure(t.values, restored);
      worst_sqnr = std::min(worst_sqnr, s.sqnr_db);
      row.push_back(fmt::format("{:.3e}", s.relative_rms));
      jrow[t.name] = {
          {"relative_rms", s.relative_rms}, {"sqnr_db", s.sqnr_db}, {"max_abs_error", s.max_abs}};
    }
    row.push_back(fmt::format("{:.1f}", worst_sqnr));
    table.add_row(row);
    json_rows.push_back(jrow);
  }

  if (opt.json) {
    nlohmann::ordered_json out = {{"rows", opt.rows}, {"cols", opt.cols}, {"seed", opt.seed}};
    out["tensors"] = nlohmann::json::array();
    for (const auto& t : tensors) {
      out["tensors"].push_back({{"name", t.name}, {"description", t.description}});
    }
    out["results"] = json_rows;
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("Quantize -> dequantize error on a synthetic [%lld, %lld] tensor set (seed %llu):\n",
              static_cast<long long>(opt.rows), static_cast<long long>(opt.cols),
              static_cast<unsigned long long>(opt.seed));
  for (const auto& t : tensors) std::printf("  %-11s %s\n", t.name.c_str(), t.description.c_str());
  std::printf("rel.RMS = ||x - dequant(quant(x))|| / ||x||; SQNR = -20 log10(rel.RMS)\n\n%s",
              table.render().c_str());
}

}  // namespace

static void register_roundtrip(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "roundtrip",
      "Quantize -> dequantize every storage format on a built-in synthetic tensor set (Gaussian, "
      "Student-t, outlier channels) and print the relative error and SQNR of each");
  static Options opt;
  cmd->add_option("--rows", opt.rows, "Rows of each synthetic tensor")->capture_default_str();
  cmd->add_option("--cols", opt.cols, "Columns of each synthetic tensor")->capture_default_str();
  cmd->add_option("--seed", opt.seed, "Seed of the deterministic generator")->capture_default_str();
  cmd->add_option("--format", opt.formats,
                  "Formats to test (repeatable), e.g. --format int4_g64 --format nvfp4; "
                  "default: every storage format");
  cmd->add_flag("--json", opt.json, "Print machine-readable JSON instead of a table");
  cmd->callback([] { run_roundtrip(opt); });
}

QF_REGISTER_COMMAND(25, register_roundtrip);

}  // namespace qforge::cli

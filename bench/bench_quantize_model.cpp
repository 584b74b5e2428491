// Quantization wall time per billion parameters for RTN (int4_wo), FP8, SmoothQuant (int8_sq),
// AWQ (int4_awq) and GPTQ (int4_gptq) on a synthetic model, each also as a ratio to the RTN run
// measured in the same process. Usage:
//   bench_quantize_model [--preset qwen2.5-0.5b] [--calib-size 8] [--seq-len 128] [--work DIR]
// Needs ../shared (a tokenizer and calibration text) next to the source tree.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "qforge/model/synthetic.h"
#include "qforge/quant/quantize.h"

namespace fs = std::filesystem;
using namespace qforge;

int main(int argc, char** argv) {
  std::string preset = "qwen2.5-0.5b";
  int64_t calib_size = 8, seq_len = 128;
  fs::path work = fs::temp_directory_path() / "qforge-bench-quantize";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--preset") preset = argv[i + 1];
    if (k == "--calib-size") calib_size = std::atoll(argv[i + 1]);
    if (k == "--seq-len") seq_len = std::atoll(argv[i + 1]);
    if (k == "--work") work = argv[i + 1];
  }
  const fs::path shared = fs::path(QFORGE_BENCH_SOURCE_DIR) / ".." / "shared";
  const fs::path model = work / preset;
  auto config = synthetic_preset(preset);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().to_string().c_str());
    return 1;
  }
  if (!fs::exists(model / "config.json")) {
    auto st = write_synthetic_checkpoint(config.value(), SynthOptions{}, model.string(), nullptr);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
      return 1;
    }
    fs::copy_file(shared / "models" / "llama-mix-16m" / "tokenizer.model",
                  model / "tokenizer.model", fs::copy_options::overwrite_existing);
  }
  int64_t params = 0;
  for (const TensorSpec& t : model_tensor_specs(config.value())) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    params += n;
  }
  std::printf("model: synthetic %s, %.3fB params; calibration %lld x %lld tokens\n", preset.c_str(),
              params / 1e9, static_cast<long long>(calib_size), static_cast<long long>(seq_len));
  std::printf("| qformat | algorithm | wall s | s per 1B params | vs RTN |\n");
  std::printf("| --- | --- | ---: | ---: | ---: |\n");
  double rtn_s = 0;
  const std::pair<const char*, const char*> runs[] = {{"int4_wo", "RTN"},
                                                      {"fp8", "FP8 (static act)"},
                                                      {"int8_sq", "SmoothQuant W8A8"},
                                                      {"int4_awq", "AWQ"},
                                                      {"int4_gptq", "GPTQ"}};
  for (const auto& [qformat, name] : runs) {
    QuantizeOptions o;
    o.model_dir = model.string();
    o.output_dir = (work / (preset + "-" + qformat)).string();
    o.quant_config.quant_algo = parse_qformat(qformat).value();
    o.calib.paths = {(shared / "data" / "wikitext-2" / "wiki.valid.tokens").string()};
    o.calib.calib_size = calib_size;
    o.calib.calib_max_seq_length = seq_len;
    o.overwrite = true;
    o.show_progress = false;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = quantize(o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", qformat, r.error().to_string().c_str());
      return 1;
    }
    if (rtn_s == 0) rtn_s = s;
    std::printf("| %s | %s | %.1f | %.1f | %.2f |\n", qformat, name, s, s / (params / 1e9),
                s / rtn_s);
    std::fflush(stdout);
    fs::remove_all(o.output_dir);
  }
  return 0;
}

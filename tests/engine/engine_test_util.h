// Shared fixtures of the engine tests: a scratch directory per test, quantized llama-mix-16m
// checkpoints made once per test binary (small calibration), stories260K as an HF directory,
// logits of a model, and relative L2 distance.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qforge/engine/engine.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/inference_session.h"
#include "qforge/model/model.h"
#include "qforge/quant/quantize.h"
#include "runtime/cli_test_util.h"

namespace qforge::test {

namespace fs = std::filesystem;

inline fs::path mix_dir() {
  return shared_dir() / "models" / "llama-mix-16m";
}
inline fs::path wiki_valid() {
  return shared_dir() / "data" / "wikitext-2" / "wiki.valid.tokens";
}
inline fs::path stories_bin() {
  return shared_dir() / "models" / "stories260K" / "stories260K.bin";
}
inline bool have_shared() {
  return fs::exists(mix_dir() / "config.json") && fs::exists(wiki_valid()) &&
         fs::exists(stories_bin());
}

// One directory for the whole test binary (quantized checkpoints are reused across tests).
inline fs::path binary_scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("qforge_engine_test_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(
          fs::temp_directory_path() / ("qforge_engine_test_" + std::to_string(::getpid())), ec);
    });
    return d;
  }();
  return dir;
}

// llama-mix-16m quantized with `algo` (6 calibration samples of 96 tokens), made once.
inline fs::path quantized_mix(QuantAlgo algo, QuantAlgo kv = QuantAlgo::NO_QUANT,
                              bool zero_point = false) {
  const std::string name = std::string(quant_algo_name(algo)) + "_kv" +
                           std::string(quant_algo_name(kv)) + (zero_point ? "_zp" : "");
  const fs::path out = binary_scratch() / ("mix_" + name);
  if (fs::exists(out / "config.json")) return out;
  QuantizeOptions o;
  o.model_dir = mix_dir().string();
  o.output_dir = out.string();
  o.quant_config.quant_algo = algo;
  o.quant_config.kv_cache_quant_algo = kv;
  o.quant_config.has_zero_point = zero_point;
  // ModelOpt's layout has no INT4 zero points; compressed-tensors does.
  if (zero_point) o.export_format = QuantExportFormat::kCompressedTensors;
  o.calib.paths = {wiki_valid().string()};
  o.calib.calib_size = 6;
  o.calib.calib_max_seq_length = 96;
  o.awq_max_tokens = 192;
  o.show_progress = false;
  auto r = quantize(o);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().to_string());
  return out;
}

// stories260K (llama2.c) exported as an HF directory with its tokenizer (F32 or F16 weights),
// made once.
inline fs::path stories_hf(DType dtype = DType::F32) {
  const fs::path out = binary_scratch() / ("stories260K_hf_" + std::string(dtype_name(dtype)));
  if (fs::exists(out / "config.json")) return out;
  auto loaded = load_model(stories_bin().string());
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error().to_string());
  HfExportOptions o;
  o.dtype = dtype;
  o.tokenizer_path = (stories_bin().parent_path() / "tok512.model").string();
  auto st = export_hf_checkpoint(loaded.value(), out, o);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().to_string());
  return out;
}

inline BuildConfig small_build_config(DType precision = DType::F32) {
  BuildConfig c;
  c.max_input_len = 128;
  c.max_seq_len = 256;
  c.max_batch_size = 4;
  c.precision = precision;
  return c;
}

// Builds `checkpoint` into the scratch directory; fails the test on error.
inline std::shared_ptr<const Model> build_and_load(const fs::path& checkpoint,
                                                   const BuildConfig& config,
                                                   const std::string& file_name) {
  const fs::path out = binary_scratch() / file_name;
  auto r = build_engine(checkpoint.string(), config, out.string());
  EXPECT_TRUE(r.ok()) << file_name << ": " << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return nullptr;
  auto e = load_engine(out.string());
  EXPECT_TRUE(e.ok()) << file_name << ": " << (e.ok() ? "" : e.error().to_string());
  return e.ok() ? e.value().model : nullptr;
}

inline std::vector<int32_t> probe_ids(int64_t vocab) {
  std::vector<int32_t> ids = {1,     450,   4996, 17354, 1701, 432, 17204, 975, 278, 17366,
                              11203, 29889, 13,   1576,  338,  263, 1243,  310, 278, 6673};
  for (auto& id : ids) id %= static_cast<int32_t>(vocab);
  return ids;
}

inline std::vector<float> all_logits(const std::shared_ptr<const Model>& model,
                                     const std::vector<int32_t>& ids) {
  auto session = InferenceSession::create(model);
  EXPECT_TRUE(session.ok());
  auto logits = session.value().forward(ids, LogitsMode::kAll);
  EXPECT_TRUE(logits.ok()) << (logits.ok() ? "" : logits.error().to_string());
  const float* p = logits.value().data_as<const float>();
  return std::vector<float>(p, p + logits.value().numel());
}

inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    den += double{a[i]} * a[i];
  }
  return a.size() == b.size() ? std::sqrt(num / den) : 1e9;
}

}  // namespace qforge::test

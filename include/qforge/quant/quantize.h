// qforge::quantize — the post-training quantization pipeline behind `qforge quantize`:
// calibrate on text, walk the model one decoder block at a time (weights mmapped, each block fed
// the previous block's quantized outputs), run the algorithm of each layer's scheme (RTN, FP8,
// SmoothQuant, AWQ, GPTQ, NVFP4/MXFP4), calibrate static input and KV-cache scales, and write a
// Hugging Face checkpoint in the ModelOpt / TensorRT-LLM layout or the compressed-tensors layout.
// Crash-safe: the output appears only when complete; an interrupted run resumes (--resume) from
// the last finished block, refusing when the model, data or configuration changed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/calib/calib_dataset.h"
#include "qforge/core/error.h"
#include "qforge/io/quant_checkpoint.h"
#include "qforge/quant/awq.h"
#include "qforge/quant/gptq.h"
#include "qforge/quant/quant_config.h"

namespace qforge {

struct QuantizeOptions {
  std::string model_dir;   // a Hugging Face directory (config.json + safetensors + tokenizer)
  std::string output_dir;  // written as <output_dir>.partial, renamed when complete
  QuantConfig quant_config;
  CalibConfig calib;
  QuantExportFormat export_format = QuantExportFormat::kModelOpt;
  bool overwrite = false;  // replace an existing output directory
  bool resume = false;     // continue the interrupted run found in <output_dir>.partial
  // Peak memory budget in bytes (0 = none): the run refuses up front when one block and its
  // activations cannot fit, and drops each finished block's weight pages from memory.
  uint64_t max_memory = 0;
  // AWQ: calibration tokens (whole samples) used by the scale search's block-output loss.
  int64_t awq_max_tokens = 2048;
  // AWQ: scale grid points per search and duo scaling (AutoAWQ / llm-compressor default: on).
  int awq_grid = 20;
  AwqDuoScaling awq_duo_scaling = AwqDuoScaling::kOn;
  // GPTQ: dampening, act-order (static groups), lazy-batch width, scale search, true-sequential.
  GptqOptions gptq;
  // Testing hook: called after each block is durably written (block index); a non-OK status
  // stops the run there as if it had been killed.
  std::function<Status(int64_t)> after_block;
  bool show_progress = true;
};

struct LayerQuantReport {
  std::string module;           // "model.layers.0.self_attn.q_proj"
  std::string format;           // "fp8", "int4_g128", ... or "bf16" when left unquantized
  std::string algorithm;        // "rtn", "awq", "gptq", "awq+gptq", "smoothquant", "none"
  double weight_rel_error = 0;  // ||W - Q|| / ||W|| (Frobenius)
  double output_rel_error = 0;  // ||X Wᵀ - Qa(X) Qᵀ|| / ||X Wᵀ|| on calibration inputs
  float input_scale = 0.0f;     // static activation scale, 0 when none
  // The calibration data behind this layer's statistics (Hessian, input ranges, AWQ channel
  // means): every sample's tokens and the distinct documents they come from (0 when the layer
  // is not quantized). AWQ / AWQ+GPTQ: the subset its scale search scores the block output on.
  int64_t calib_tokens = 0;
  int64_t calib_documents = 0;
  int64_t awq_loss_tokens = 0;
  int64_t awq_loss_documents = 0;
};

struct QuantizeReport {
  std::vector<LayerQuantReport> layers;
  std::string auto_quantize_plan;  // MIXED_PRECISION: the chosen plan as a table
  int64_t calib_samples = 0;
  int64_t calib_tokens = 0;
  int64_t calib_documents = 0;             // distinct documents behind the samples
  std::vector<CalibSource> calib_sources;  // per calibration set: documents, tokens, samples
  int64_t blocks_resumed = 0;              // blocks taken from an interrupted run
  uint64_t output_bytes = 0;               // bytes of the written safetensors shards
  uint64_t peak_rss_bytes = 0;             // getrusage maxrss at the end
  double seconds = 0;
};

Result<QuantizeReport> quantize(const QuantizeOptions& options);

}  // namespace qforge

// `qforge convert`: any model qforge loads (llama2.c .bin, GGUF, HF directory) written as a
// Hugging Face checkpoint directory, so that `qforge quantize` (which reads HF layout) can take
// llama2.c and GGUF models too.
#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"
#include "qforge/core/progress.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/model/synthetic.h"

namespace qforge::cli {
namespace {

struct ConvertArgs {
  std::string model;
  std::string output;
  std::string dtype = "f32";
  HfExportOptions options;
};

void run_convert(ConvertArgs& a) {
  a.options.dtype = value_or_fail(parse_dtype(a.dtype));
  if (a.options.dtype != DType::F32 && a.options.dtype != DType::F16 &&
      a.options.dtype != DType::BF16) {
    throw CliFailure("--dtype '" + a.dtype + "': expected f32, bf16 or f16");
  }
  const LoadedModel model = value_or_fail(load_model(a.model));
  const ModelConfig& c = model.config;
  std::printf("loaded %s: %s, %s, %lld layers, hidden %lld, %lld/%lld heads, vocab %lld\n",
              a.model.c_str(), model.format.c_str(), architecture_name(c.architecture),
              static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.num_attention_heads),
              static_cast<long long>(c.num_key_value_heads), static_cast<long long>(c.vocab_size));
  std::fflush(stdout);

  uint64_t out_bytes = 0;
  const auto specs = model_tensor_specs(c);
  for (const TensorSpec& t : specs) {
    uint64_t n = static_cast<uint64_t>(dtype_size(a.options.dtype));
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    out_bytes += n;
  }
  ProgressOptions po;
  po.unit = "tensor";
  po.enabled = out_bytes >= (uint64_t{64} << 20);  // small models convert in a blink
  ProgressBar bar("convert", static_cast<int64_t>(specs.size()), po);
  a.options.progress = [&](int64_t done, int64_t, uint64_t) { bar.set(done); };
  HfExportReport report;
  ok_or_fail(export_hf_checkpoint(model, a.output, a.options, &report));
  bar.finish();

  std::printf("wrote %s: %lld tensors, %s, %.2f MB of weights%s\n", a.output.c_str(),
              static_cast<long long>(report.n_tensors), a.dtype.c_str(),
              static_cast<double>(report.tensor_bytes) / 1e6,
              c.tie_word_embeddings ? ", lm_head tied to the embeddings" : "");
  if (report.permuted_qk) {
    std::printf("  q_proj/k_proj rows permuted from interleaved RoPE pairs to half-split\n");
  }
  for (const std::string& file : report.files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(std::filesystem::path(a.output) / file, ec);
    std::printf("  %-32s %12llu bytes%s\n", file.c_str(),
                static_cast<unsigned long long>(ec ? 0 : size),
                !report.tokenizer_source.empty() && file.rfind("tokenizer.", 0) == 0
                    ? ("  (from " + report.tokenizer_source.string() + ")").c_str()
                    : "");
  }
  if (report.tokenizer_source.empty()) std::printf("  no tokenizer copied\n");
}

}  // namespace

static void register_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Write a llama2.c, GGUF or HF model as a Hugging Face checkpoint directory (config.json + "
      "safetensors + tokenizer), e.g. as input for `qforge quantize`");
  static ConvertArgs a;
  cmd->add_option("--model,-m", a.model,
                  "Source model: llama2.c .bin (fp32 or int8 ak42), .gguf (F32/F16/BF16/Q8_0/"
                  "Q4_0/Q4_1) or an HF directory")
      ->required();
  cmd->add_option("--output,-o", a.output,
                  "Output directory (written beside it as DIR.tmp.*, renamed when complete)")
      ->required();
  cmd->add_option("--dtype", a.dtype, "Weight dtype: f32, bf16 or f16")->capture_default_str();
  cmd->add_option("--tokenizer", a.options.tokenizer_path,
                  "Tokenizer to copy (SentencePiece .model, tokenizer.json or llama2.c "
                  "tokenizer.bin); default: tokenizer.model, tokenizer.json, tok*.model, "
                  "tokenizer.bin or tok*.bin beside the source");
  cmd->add_flag("--overwrite", a.options.overwrite, "Replace an existing output directory");
  cmd->callback([] { run_convert(a); });
}

QF_REGISTER_COMMAND(58, register_convert);

}  // namespace qforge::cli

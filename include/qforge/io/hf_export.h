// Hugging Face checkpoint export: any loaded model (llama2.c, GGUF, HF directory) written as
// config.json + model.safetensors (+ tokenizer), the layout `qforge quantize` reads. q/k rows of
// Interleaved-RoPE sources are permuted as transformers' convert_llama_weights_to_hf.py does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"
#include "qforge/core/tensor.h"
#include "qforge/model/weights.h"

namespace qforge {

// Called after each tensor: (tensors written, total tensors, bytes written so far).
using HfExportProgress = std::function<void(int64_t, int64_t, uint64_t)>;

struct HfExportOptions {
  // F32, F16 or BF16. Widening is exact; narrowing rounds to nearest even. A finite value that
  // overflows F16 is an error naming the tensor (pick bf16 or f32 instead).
  DType dtype = DType::F32;
  // A tokenizer file to copy: a SentencePiece .model (written as tokenizer.model), a
  // tokenizer.json (tokenizer.json) or a llama2.c tokenizer.bin / tok*.bin (tokenizer.bin). It is
  // loaded first, so a file qforge cannot read is an error. Empty: find_tokenizer_beside() of the
  // model's source; none found is a warning, not an error.
  std::string tokenizer_path;
  // Replace an existing non-empty output directory (an existing empty one is always reused).
  bool overwrite = false;
  // Checkpoints larger than this are written as model-0000k-of-0000n.safetensors shards with a
  // model.safetensors.index.json (tensors kept whole, in checkpoint order).
  uint64_t max_shard_bytes = uint64_t{4} << 30;
  HfExportProgress progress;
};

// What export_hf_checkpoint wrote.
struct HfExportReport {
  std::vector<std::string> files;  // file names inside the output directory, in write order
  int64_t n_tensors = 0;
  uint64_t tensor_bytes = 0;               // bytes of tensor data (headers excluded)
  bool permuted_qk = false;                // the source was Interleaved; q/k rows were permuted
  std::filesystem::path tokenizer_source;  // the tokenizer file copied; empty if none
};

// The rows of a q_proj/k_proj weight [n_heads * head_dim, cols] (or a bias [n_heads *
// head_dim]) reordered from the Interleaved RoPE layout (dims 2i, 2i+1 rotate together) to the
// HalfSplit one (dims i, i + head_dim/2), as convert_llama_weights_to_hf.py's permute() does:
//   out row h*hd + s*hd/2 + i = in row h*hd + 2i + s   (s in {0, 1}, i < hd/2)
// Any byte-sized dtype; strided views are gathered. Errors name the shape and n_heads when the
// rows do not split into n_heads heads of even size.
Result<Tensor> rope_rows_interleaved_to_half_split(const TensorView& w, int64_t n_heads);

// The tokenizer export copies for a model at `source` when none is given: in the source's
// directory (a directory source: the directory itself) the first of tokenizer.model,
// tokenizer.json, tok*.model, tokenizer.bin, tok*.bin (tok* in name order). Empty when none.
std::filesystem::path find_tokenizer_beside(const std::filesystem::path& source);

// Writes `model` into `dir` as a Hugging Face checkpoint: config.json (hf_config_json with
// rope_layout HalfSplit and torch_dtype = options.dtype), model.safetensors (or shards + index)
// with the transformers names of weights.h in the reference library's byte layout, no lm_head
// when the embeddings are tied, the tokenizer (and, beside it, tokenizer_config.json /
// special_tokens_map.json; generation_config.json of an HF source). Streams one tensor at a
// time (peak memory: one converted tensor). Everything is written into "<dir>.tmp.<pid>.<n>"
// beside `dir` and renamed into place at the end, so `dir` never holds a partial checkpoint and
// a failure leaves nothing behind. Refuses: a quantized checkpoint (its scales would be lost),
// weights other than F32/F16/BF16, an existing non-empty `dir` without overwrite, and a `dir`
// that contains the model's source file.
Status export_hf_checkpoint(const LoadedModel& model, const std::filesystem::path& dir,
                            const HfExportOptions& options, HfExportReport* report = nullptr);

}  // namespace qforge

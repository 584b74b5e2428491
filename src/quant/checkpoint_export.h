// Writing the quantized checkpoint into the partial directory: one safetensors shard per decoder
// block as each block finishes (so a crash loses at most the block in flight), then the
// embedding and head shards, the shard index, config.json with quantization_config,
// hf_quant_config.json (ModelOpt layout) and the tokenizer files; finally the directory is
// renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "qforge/core/error.h"
#include "qforge/model/model.h"
#include "qforge/quant/quantize.h"
#include "quant/block_quantizer.h"
#include "quant/partial_run.h"

namespace qforge::quant_internal {

class CheckpointExport {
 public:
  CheckpointExport(const Model& model, const QuantizeOptions& options, std::filesystem::path dir);

  // The shards quantization does not change — 1: the embedding, n_layers + 2: the final norm
  // and lm_head — unless they exist (a resumed run). Written first, while memory is empty, and
  // their pages dropped after.
  Status write_fixed_shards();
  // model-{b+2}-of-{n}.safetensors: the block's quantized linears, the tensors scale folding
  // changed (F32), and its other tensors as the source stores them.
  Status write_block(int64_t block, const QuantizedBlock& qb);
  // The KV-cache scales shard (n_layers + 3, when the KV cache is quantized), the index, the
  // configs and tokenizer files. Returns the bytes of all shards.
  Result<uint64_t> finish(const PartialState& state, const KvCacheQuant& kv);

  int64_t shard_count() const;
  std::string shard_name(int64_t index) const;  // 1-based

 private:
  Status write_shard(int64_t index, SafetensorsWriter& writer) const;

  const Model& model_;
  const QuantizeOptions& options_;
  std::filesystem::path dir_;
};

// ModelOpt stores INT4 group scales as [out, in / group] without padding, and neither layout pads
// NVFP4 / MXFP4 blocks, so those group sizes must divide the layer's input width `cols`
// (compressed-tensors records the true shape and holds a padded last INT4 group).
Status check_layer_exportable(const std::string& module, int64_t cols, const QuantSpec& weight,
                              QuantExportFormat format);

// Renames `partial` to `out` (replacing an existing `out` when overwrite is set: it is moved
// aside first and deleted after, so `out` is never a mix of old and new files).
Status publish_directory(const std::filesystem::path& partial, const std::filesystem::path& out,
                         bool overwrite);

}  // namespace qforge::quant_internal

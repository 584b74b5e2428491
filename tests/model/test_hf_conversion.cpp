// A Hugging Face-layout checkpoint runs like its source: stories260K (llama2.c, interleaved RoPE
// pairs) converted by hand to config.json + model.safetensors with the library's q/k row
// permutation (rope_rows_interleaved_to_half_split: pairs (2i, 2i+1) -> (i, i + head_dim/2), as
// transformers' convert_llama_weights_to_hf.py) gives the same logits as the llama2.c file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "model_test_util.h"
#include "qforge/core/mmap_file.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"
#include "qforge/model/synthetic.h"

namespace qforge {
namespace {

TEST(HfConversion, Stories260KConvertedToHfLayoutGivesTheSameLogits) {
  const auto bin = test::shared_dir() / "models" / "stories260K" / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  auto source = load_model(bin.string());
  ASSERT_TRUE(source.ok()) << source.error().to_string();
  const ModelConfig& c = source->config;
  ASSERT_EQ(c.rope_layout, RopeLayout::Interleaved);

  // Write the HF checkpoint.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("qforge_test_hf_conversion_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  SafetensorsWriter writer;
  std::vector<Tensor> permuted;  // kept alive until write()
  permuted.reserve(2 * static_cast<size_t>(c.num_hidden_layers));
  for (const auto& [name, view] : source->weights.tensors()) {
    ASSERT_EQ(view.dtype(), DType::F32);
    const bool is_q = name.find("self_attn.q_proj.weight") != std::string::npos;
    const bool is_k = name.find("self_attn.k_proj.weight") != std::string::npos;
    if (is_q || is_k) {
      auto rows = rope_rows_interleaved_to_half_split(
          view, is_q ? c.num_attention_heads : c.num_key_value_heads);
      ASSERT_TRUE(rows.ok()) << rows.error().to_string();
      permuted.push_back(*rows);
      ASSERT_TRUE(
          writer.add_borrowed(name, DType::F32, view.shape(), permuted.back().view().bytes()).ok());
    } else {
      ASSERT_TRUE(writer.add(name, view).ok());
    }
  }
  ASSERT_TRUE(writer.write(dir / "model.safetensors").ok());
  ModelConfig hf = c;
  hf.rope_layout = RopeLayout::HalfSplit;
  hf.torch_dtype = DType::F32;
  ASSERT_TRUE(write_file_atomic(dir / "config.json", hf_config_json(hf)).ok());

  auto converted = test::load_or_die(dir.string());
  auto original = test::load_or_die(bin.string());
  ASSERT_NE(converted, nullptr);
  ASSERT_NE(original, nullptr);
  EXPECT_EQ(converted->config().rope_layout, RopeLayout::HalfSplit);
  EXPECT_EQ(converted->format(), "hf-safetensors");

  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  const auto a = test::all_logits(original, ids);
  const auto b = test::all_logits(converted, ids);
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    max_diff = std::max(max_diff, std::fabs(double(a[i]) - b[i]));
  EXPECT_LT(max_diff, 1e-4);
  // And the greedy continuation is the reference one.
  const auto ref = test::read_json(bin.parent_path() / "reference_greedy.json");
  const auto want = ref["all_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(test::greedy(converted, ref["prompt_ids_with_bos"].get<std::vector<int32_t>>(),
                         static_cast<int64_t>(want.size())),
            want);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qforge

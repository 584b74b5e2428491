// The GGUF metadata of a shared real model, for tests that write it as a GGUF file.
#pragma once

#include <gtest/gtest.h>

#include "qforge/io/gguf.h"

namespace qforge::testing_io {

// The llama metadata of stories260K (dim 64, hidden 172, 5 layers, 8/4 heads, vocab 512) for
// tests that write it as a GGUF file.
inline void set_stories260k_gguf_metadata(GgufWriter& w) {
  ASSERT_TRUE(w.set("general.architecture", GgufValue::string("llama")).ok());
  ASSERT_TRUE(w.set("llama.embedding_length", GgufValue::u32(64)).ok());
  ASSERT_TRUE(w.set("llama.feed_forward_length", GgufValue::u32(172)).ok());
  ASSERT_TRUE(w.set("llama.block_count", GgufValue::u32(5)).ok());
  ASSERT_TRUE(w.set("llama.attention.head_count", GgufValue::u32(8)).ok());
  ASSERT_TRUE(w.set("llama.attention.head_count_kv", GgufValue::u32(4)).ok());
  ASSERT_TRUE(w.set("llama.context_length", GgufValue::u32(512)).ok());
  ASSERT_TRUE(w.set("llama.rope.freq_base", GgufValue::f32(10000.0f)).ok());
  ASSERT_TRUE(w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f)).ok());
  ASSERT_TRUE(w.set("llama.vocab_size", GgufValue::u32(512)).ok());
  ASSERT_TRUE(w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1)).ok());
  ASSERT_TRUE(w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2)).ok());
}

}  // namespace qforge::testing_io

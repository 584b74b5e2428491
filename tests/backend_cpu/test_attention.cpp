// Grouped-query attention over a KV cache: decode and sgemm prefill paths against the double
// oracle, with MHA/GQA/MQA head groupings, a non-zero starting position and a sliding window.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"
#include "kernel_test_util.h"
#include "qforge/core/simd.h"

namespace qforge::cpu {
namespace {

using test::random_floats;
using test::relative_l2;

struct Case {
  int64_t n_tokens, n_heads, n_kv_heads, head_dim, pos0, window;
};

void run_case(const Case& c, const std::string& target) {
  const int64_t capacity = c.pos0 + c.n_tokens + 3;
  const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 1 + c.n_tokens, 1.0);
  const auto k = random_floats(c.n_kv_heads * capacity * c.head_dim, 2 + c.head_dim, 1.0);
  const auto v = random_floats(c.n_kv_heads * capacity * c.head_dim, 3 + c.head_dim, 1.0);
  const int64_t n_out = c.n_tokens * c.n_heads * c.head_dim;
  std::vector<float> got(n_out, -7.0f), want(n_out, 7.0f);
  AttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.n_tokens = c.n_tokens;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.capacity = capacity;
  p.pos0 = c.pos0;
  p.window = c.window;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.out = got.data();
  attention(p);
  p.out = want.data();
  attention_ref(p);
  EXPECT_LT(relative_l2(got.data(), want.data(), n_out), 2e-6)
      << target << " tokens=" << c.n_tokens << " heads=" << c.n_heads << "/" << c.n_kv_heads
      << " d=" << c.head_dim << " pos0=" << c.pos0 << " window=" << c.window;
}

const std::vector<Case> kCases = {
    {1, 4, 4, 16, 0, 0},    // first token: one key
    {1, 8, 4, 8, 37, 0},    // decode, GQA 2:1, head_dim 8 (stories260K)
    {3, 6, 2, 64, 10, 0},   // small batch of queries
    {1, 4, 1, 64, 50, 16},  // MQA with a sliding window
    {16, 4, 2, 64, 0, 0},   // sgemm path from position 0
    {70, 6, 2, 64, 5, 0},   // sgemm path, two query blocks, non-zero pos0
    {40, 4, 4, 32, 20, 9},  // sgemm path with a window
    {130, 2, 1, 17, 0, 0},  // odd head_dim
};

TEST(Attention, MatchesRefOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scope(target.bits);
    for (const Case& c : kCases) run_case(c, target.name);
  }
}

TEST(Attention, PrefillEqualsTokenByTokenDecode) {
  // The same queries attended in one prefill call or one token at a time give the same output.
  const Case c{24, 4, 2, 32, 0, 0};
  const int64_t capacity = 24;
  const auto q = random_floats(c.n_tokens * c.n_heads * c.head_dim, 11);
  const auto k = random_floats(c.n_kv_heads * capacity * c.head_dim, 12);
  const auto v = random_floats(c.n_kv_heads * capacity * c.head_dim, 13);
  const int64_t row = c.n_heads * c.head_dim;
  std::vector<float> batch(c.n_tokens * row), step(c.n_tokens * row);
  AttentionParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = batch.data();
  p.n_tokens = c.n_tokens;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.capacity = capacity;
  p.scale = 0.2f;
  attention(p);
  for (int64_t t = 0; t < c.n_tokens; ++t) {
    AttentionParams s = p;
    s.q = q.data() + t * row;
    s.out = step.data() + t * row;
    s.n_tokens = 1;
    s.pos0 = t;
    attention(s);
  }
  EXPECT_LT(relative_l2(batch.data(), step.data(), c.n_tokens * row), 1e-6);
}

}  // namespace
}  // namespace qforge::cpu

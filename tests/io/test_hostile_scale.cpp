// Parsers stay (near-)linear on huge-but-valid hostile inputs (issue 15, causes 8 and 9): one
// JSON object with 10^5 members (safetensors header, config.json, shard index) and a GGUF with
// 10^5 zero-size tensors, each under a generous bound (measured ~0.1-0.5 s; before: 20k members
// 3.4 s, 80k 76 s, quadratic). bench/bench_hostile_parsers.cpp runs 10^6 of each.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "hostile_scale.h"
#include "io/hf_index.h"
#include "io_test_util.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_config.h"
#include "qforge/io/safetensors.h"

namespace qforge {
namespace {

constexpr int64_t kN = 100'000;
constexpr double kBoundSeconds = 10.0;  // generous: 2 shared cores, ASan builds

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(HostileScale, SafetensorsHeaderWithManyTensors) {
  const auto bytes = hostile_scale::safetensors_zero_tensors(kN);
  const auto t0 = std::chrono::steady_clock::now();
  auto h = parse_safetensors_header(bytes, "many.safetensors");
  const double s = seconds_since(t0);
  ASSERT_TRUE(h.ok()) << h.error().to_string();
  EXPECT_EQ(h->tensors.size(), static_cast<size_t>(kN));
  EXPECT_LT(s, kBoundSeconds);
  // And through SafetensorsFile: every tensor found by name (binary search, not a scan each).
  testing_io::ScratchDir dir;
  {
    std::ofstream out(dir / "many.safetensors", std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  const auto t1 = std::chrono::steady_clock::now();
  auto f = SafetensorsFile::open(dir / "many.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  for (int64_t i = 0; i < kN; ++i) {
    ASSERT_NE(f->find("t" + std::to_string(i)), nullptr) << i;
  }
  EXPECT_EQ(f->find("t-1"), nullptr);
  EXPECT_LT(seconds_since(t1), kBoundSeconds);
}

TEST(HostileScale, ConfigWithManyMembers) {
  const std::string json = hostile_scale::config_with_members(kN);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = parse_hf_config(json, "config.json");
  const double s = seconds_since(t0);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_LT(s, kBoundSeconds);
}

TEST(HostileScale, IndexWithManyEntries) {
  testing_io::ScratchDir dir;
  std::ofstream(dir / "model.safetensors.index.json") << hostile_scale::index_with_entries(kN);
  const auto t0 = std::chrono::steady_clock::now();
  auto map = io_detail::read_shard_index(dir / "model.safetensors.index.json");
  const double s = seconds_since(t0);
  ASSERT_TRUE(map.ok()) << map.error().to_string();
  EXPECT_EQ(map->size(), static_cast<size_t>(kN));
  EXPECT_LT(s, kBoundSeconds);
}

TEST(HostileScale, DuplicateKeysAreStillFound) {
  // The SAX builder keeps the strict parser's duplicate-key check, at any depth.
  std::string json = hostile_scale::config_with_members(1000);
  json.insert(json.size() - 1, ",\"x500\":{\"a\":1}");
  auto c = parse_hf_config(json, "config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("key 'x500' appears twice"), std::string::npos)
      << c.error().message();
  auto nested = parse_hf_config(
      hostile_scale::config_with_members(3).insert(1, "\"rope_scaling\":{\"a\":1,\"a\":2},"),
      "config.json");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.error().message().find("key 'a' appears twice"), std::string::npos);
}

TEST(HostileScale, GgufWithManyZeroSizeTensors) {
  const auto bytes = hostile_scale::gguf_zero_tensors(kN);
  const auto t0 = std::chrono::steady_clock::now();
  auto g = GgufFile::parse(bytes, "many.gguf", nullptr);
  const double s = seconds_since(t0);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->tensors().size(), static_cast<size_t>(kN));
  EXPECT_LT(s, kBoundSeconds);
}

TEST(HostileScale, GgufTensorCountIsCappedAgainstTheBytes) {
  // 5M tensors claimed (the case) in a file far too small: refused before any work.
  auto bytes = hostile_scale::gguf_zero_tensors(10);
  const uint64_t claimed = 5'000'000;
  std::memcpy(bytes.data() + 8, &claimed, 8);
  auto g = GgufFile::parse(bytes, "claims.gguf", nullptr);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message().find("tensor_count = 5000000 exceeds the limit 1000000"),
            std::string::npos)
      << g.error().message();
}

}  // namespace
}  // namespace qforge

// The engine file as hostile input and as an output: a flipped bit anywhere (data or header) and
// a truncation are rejected by the checksums or the container checks with clear errors; another
// format version, backend or CPU target is refused by name; outputs never replace inputs or
// device nodes; a failed build leaves nothing behind.
#include <fstream>
#include <iterator>

#include "engine/engine_test_util.h"

namespace qforge {
namespace {

using namespace test;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_all(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

class EngineFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_shared()) GTEST_SKIP() << "needs ../shared models";
    good_ = binary_scratch() / "stories_file_test.engine";
    if (!fs::exists(good_)) {
      BuildConfig bc = small_build_config(DType::F16);
      bc.kernel_selection = false;
      auto r = build_engine(stories_hf().string(), bc, good_.string());
      ASSERT_TRUE(r.ok()) << r.error().to_string();
    }
    bytes_ = read_all(good_);
    ASSERT_GT(bytes_.size(), 1000u);
  }
  // Writes a modified copy and returns load_engine's error text ("" when it loads).
  std::string load_modified(const std::string& bytes) {
    const fs::path p = binary_scratch() / "modified.engine";
    write_all(p, bytes);
    auto e = load_engine(p.string());
    return e.ok() ? std::string() : e.error().to_string();
  }
  uint64_t header_len() const {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | static_cast<uint8_t>(bytes_[static_cast<size_t>(i)]);
    return n;
  }
  fs::path good_;
  std::string bytes_;
};

TEST_F(EngineFile, TheBuiltFileLoadsAndIsAlignedSafetensors) {
  EXPECT_EQ(load_modified(bytes_), "");
  EXPECT_EQ((8 + header_len()) % 64, 0u);
  auto f = SafetensorsFile::open(good_);
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  for (const auto& t : f.value().tensors()) {
    if (t.name.rfind("qforge.pad.", 0) != 0) EXPECT_EQ(t.begin % 64, 0u) << t.name;
  }
  EXPECT_EQ(f.value().metadata().at("qforge.engine.format"), "qforge-engine");
}

TEST_F(EngineFile, BitFlipsInTheDataAreCaughtByTheChecksum) {
  const uint64_t data0 = 8 + header_len();
  // A flip in the first data bytes, the middle and the last byte.
  for (uint64_t off :
       {data0 + 3, data0 + (bytes_.size() - data0) / 2, uint64_t{bytes_.size() - 1}}) {
    std::string b = bytes_;
    b[off] = static_cast<char>(b[off] ^ 0x10);
    const std::string err = load_modified(b);
    EXPECT_NE(err.find("checksum"), std::string::npos) << off << ": " << err;
  }
}

TEST_F(EngineFile, HeaderTamperingAndTruncationAreRejected) {
  // A digit of a shape or a config value changed: the header checksum fails.
  std::string b = bytes_;
  const size_t pos = b.find("\\\"hidden_size\\\":");
  ASSERT_NE(pos, std::string::npos);
  const size_t digit = b.find_first_of("0123456789", pos);
  b[digit] = b[digit] == '9' ? '8' : static_cast<char>(b[digit] + 1);
  EXPECT_NE(load_modified(b).find("checksum"), std::string::npos);
  // Truncated anywhere: the container check names the shortfall.
  for (size_t keep : {size_t{4}, size_t{100}, bytes_.size() / 2, bytes_.size() - 1}) {
    const std::string err = load_modified(bytes_.substr(0, keep));
    EXPECT_FALSE(err.empty()) << keep;
  }
  // Not an engine at all.
  const std::string st = read_all(stories_hf() / "model.safetensors");
  EXPECT_NE(load_modified(st).find("not a qforge engine"), std::string::npos);
}

TEST_F(EngineFile, AnotherVersionBackendOrCpuTargetIsRefusedByName) {
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string b = bytes_;
    const size_t pos = b.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    if (pos != std::string::npos) b.replace(pos, from.size(), to);
    return load_modified(b);
  };
  EXPECT_NE(replace("\"qforge.engine.version\":\"1\"", "\"qforge.engine.version\":\"7\"")
                .find("engine format version 7"),
            std::string::npos);
  EXPECT_NE(replace("\"qforge.engine.backend\":\"cpu\"", "\"qforge.engine.backend\":\"xpu\"")
                .find("'xpu' backend"),
            std::string::npos);
  auto f = SafetensorsFile::open(good_);
  ASSERT_TRUE(f.ok());
  const std::string target = f.value().metadata().at("qforge.engine.cpu_target");
  const std::string other(target.size(), 'Z');
  const std::string err = replace("\"qforge.engine.cpu_target\":\"" + target + "\"",
                                  "\"qforge.engine.cpu_target\":\"" + other + "\"");
  EXPECT_NE(err.find("built for CPU target " + other), std::string::npos) << err;
  EXPECT_NE(err.find("rebuild"), std::string::npos);
}

TEST_F(EngineFile, OutputsNeverReplaceInputsOrDeviceNodes) {
  const fs::path hf = stories_hf();
  const std::string before = read_all(hf / "model.safetensors");
  BuildConfig bc = small_build_config();
  for (const fs::path& out :
       {hf, hf / "model.safetensors", hf.parent_path(), hf / "x.engine", fs::path("/dev/null")}) {
    auto r = build_engine(hf.string(), bc, out.string());
    EXPECT_FALSE(r.ok()) << out;
  }
  EXPECT_EQ(read_all(hf / "model.safetensors"), before);
  EXPECT_TRUE(fs::exists("/dev/null") && !fs::is_regular_file("/dev/null"));
  // A failed build leaves no temp or scratch files in the output directory.
  const fs::path dir = binary_scratch() / "failed_build";
  fs::create_directories(dir);
  BuildConfig bad = bc;
  bad.kv_cache_storage = KvCacheStorage::kFp8;  // stories has no calibrated KV scales
  EXPECT_FALSE(build_engine(hf.string(), bad, (dir / "m.engine").string()).ok());
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST_F(EngineFile, InvalidBuildConfigsAreRefusedWithTheirLimits) {
  BuildConfig bc = small_build_config();
  bc.max_input_len = 512;
  bc.max_seq_len = 256;
  auto r = build_engine(stories_hf().string(), bc, (binary_scratch() / "y.engine").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("max_input_len 512 exceeds max_seq_len 256"),
            std::string::npos);
  // Limits that do not fit the memory budget: refused with the shortfall and what fits.
  bc = small_build_config();
  bc.max_batch_size = 64;
  bc.max_seq_len = 256;
  bc.memory_budget_bytes = 3'000'000;
  auto big = build_engine(stories_hf().string(), bc, (binary_scratch() / "z.engine").string());
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().to_string().find("GB short"), std::string::npos) << big.error().to_string();
  EXPECT_NE(big.error().to_string().find("sequences of 256 tokens fit"), std::string::npos);
  bc = small_build_config();
  bc.kv_cache_block_size = 24;
  EXPECT_NE(validate_build_config(bc).error().to_string().find("power of two"), std::string::npos);
  bc = small_build_config();
  bc.precision = DType::I8;
  EXPECT_FALSE(validate_build_config(bc).ok());
}

}  // namespace
}  // namespace qforge

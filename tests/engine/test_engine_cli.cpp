// `qforge build` and the commands that run engines, through the CLI: the engine's greedy text
// equals the checkpoint's (reference runtime), `logits` agree bit for bit for an F32 engine,
// errors are clear and exit non-zero.
#include <cstring>
#include <fstream>
#include <iterator>

#include "engine/engine_test_util.h"

namespace qforge {
namespace {

using namespace test;

class EngineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_shared()) GTEST_SKIP() << "needs ../shared models";
  }
};

TEST_F(EngineCli, BuildThenGenerateMatchesTheCheckpoint) {
  const fs::path hf = stories_hf();
  const fs::path engine = binary_scratch() / "cli_stories.engine";
  const CliRun built = run_cli("build --checkpoint " + quote(hf) + " --output " + quote(engine) +
                               " --precision float32 --max-seq-len 256 --max-input-len 128 -v");
  ASSERT_EQ(built.exit_code, 0) << built.out;
  EXPECT_NE(built.out.find("wrote " + engine.string()), std::string::npos) << built.out;
  const std::string args = " --prompt 'Once upon a time' --max-tokens 40 --quiet";
  const CliRun ref = run_cli("generate --model " + quote(hf) + args);
  const CliRun got = run_cli("generate --model " + quote(engine) + args);
  ASSERT_EQ(ref.exit_code, 0) << ref.out;
  ASSERT_EQ(got.exit_code, 0) << got.out;
  EXPECT_EQ(got.out, ref.out);
  EXPECT_GT(got.out.size(), 40u);

  // logits of an F32 engine: the reference's up to summation order.
  const fs::path a = binary_scratch() / "ref_logits.npy";
  const fs::path b = binary_scratch() / "engine_logits.npy";
  ASSERT_EQ(run_cli("logits --model " + quote(hf) + " --ids 1,403,407,261,378 --output " + quote(a))
                .exit_code,
            0);
  const CliRun el =
      run_cli("logits --model " + quote(engine) + " --ids 1,403,407,261,378 --output " + quote(b));
  ASSERT_EQ(el.exit_code, 0) << el.out;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  const std::string sa((std::istreambuf_iterator<char>(fa)), {});
  const std::string sb((std::istreambuf_iterator<char>(fb)), {});
  ASSERT_GT(sa.size(), 1000u);
  ASSERT_EQ(sa.size(), sb.size());
  // .npy v1: magic (6), version (2), header length (2, little-endian), header, float32 data.
  const size_t data = 10 + (static_cast<uint8_t>(sa[8]) | static_cast<uint8_t>(sa[9]) << 8);
  EXPECT_EQ(sa.substr(0, data), sb.substr(0, data));
  std::vector<float> va((sa.size() - data) / 4), vb(va.size());
  std::memcpy(va.data(), sa.data() + data, va.size() * 4);
  std::memcpy(vb.data(), sb.data() + data, vb.size() * 4);
  EXPECT_EQ(va.size(), 5u * 512u);
  EXPECT_LT(rel_l2(va, vb), 1e-6);
}

TEST_F(EngineCli, BadInputsExitNonZeroWithTheReason) {
  const fs::path hf = stories_hf();
  const CliRun missing =
      run_cli("build --checkpoint /nonexistent --output " + quote(binary_scratch() / "m.engine"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent"), std::string::npos) << missing.out;
  const CliRun tight =
      run_cli("build --checkpoint " + quote(hf) + " --output " +
              quote(binary_scratch() / "t.engine") + " --max-batch-size 512 --memory-gb 0.01");
  EXPECT_NE(tight.exit_code, 0);
  EXPECT_NE(tight.out.find("GB short"), std::string::npos) << tight.out;
  EXPECT_FALSE(fs::exists(binary_scratch() / "t.engine"));
  const CliRun bad = run_cli("build --checkpoint " + quote(hf) + " --output " +
                             quote(binary_scratch() / "p.engine") + " --precision int3");
  EXPECT_NE(bad.exit_code, 0);
  // A corrupted engine is refused by every command that loads it.
  const fs::path engine = binary_scratch() / "corrupt.engine";
  ASSERT_EQ(run_cli("build --checkpoint " + quote(hf) + " --output " + quote(engine) +
                    " --no-kernel-selection")
                .exit_code,
            0);
  {
    std::fstream f(engine, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  const CliRun corrupt = run_cli("generate --model " + quote(engine) + " --prompt hi");
  EXPECT_NE(corrupt.exit_code, 0);
  EXPECT_NE(corrupt.out.find("checksum"), std::string::npos) << corrupt.out;
}

}  // namespace
}  // namespace qforge

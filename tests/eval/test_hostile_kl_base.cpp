// Hostile --kl-divergence-base files (issue 15, cause 1): token ids in top-k records outside the
// vocabulary (INT32_MAX, -1e8, == vocab), a top_k above the vocabulary, a token count whose
// record size wraps 64 bits, a target outside the vocabulary. Each is a clear error, never an
// out-of-bounds read (the ASan build runs this suite too).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "qforge/eval/kl_divergence.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 16;
constexpr int64_t kTopK = 4;
constexpr int64_t kTokens = 3;
const std::string kProtocol = "hostile-test-protocol";
constexpr size_t kHeader = 8 + 4 + 4 + 8 + 8 + 4;
constexpr size_t kRecord = 12 + 8 * kTopK;

std::vector<float> logits_for(int64_t token) {
  std::vector<float> l(kVocab);
  for (int64_t i = 0; i < kVocab; ++i) l[i] = static_cast<float>((i * 7 + token * 3) % 11) * 0.25f;
  return l;
}

int32_t target_for(int64_t token) {
  return static_cast<int32_t>((token * 5 + 1) % kVocab);
}

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("qforge_kl_" + name + "_" + std::to_string(::getpid()));
}

std::vector<char> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_all(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A valid base file (top_k = 4 of 16) of kTokens records.
std::vector<char> valid_base() {
  const fs::path p = temp("valid");
  auto w = LogprobWriter::create(p, kTopK, kVocab, kTokens, kProtocol);
  EXPECT_TRUE(w.ok()) << w.error().to_string();
  for (int64_t t = 0; t < kTokens; ++t) {
    const auto l = logits_for(t);
    EXPECT_TRUE((*w)->score(l.data(), kVocab, target_for(t)).ok());
  }
  EXPECT_TRUE((*w)->commit().ok());
  auto bytes = read_all(p);
  fs::remove(p);
  return bytes;
}

template <typename T>
void poke(std::vector<char>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

size_t entry_id_at(int64_t token, int64_t entry) {
  return kHeader + kProtocol.size() + static_cast<size_t>(token) * kRecord + 12 +
         8 * static_cast<size_t>(entry);
}

// Opens `bytes` as a base and scores every token; the first error, or OK.
Status score_all(const std::vector<char>& bytes, const std::string& name) {
  const fs::path p = temp(name);
  write_all(p, bytes);
  auto s = KlDivergenceScorer::open(p, kVocab, kTokens, kProtocol);
  fs::remove(p);
  if (!s.ok()) return std::move(s).error();
  for (int64_t t = 0; t < kTokens; ++t) {
    const auto l = logits_for(t);
    QF_TRY((*s)->score(l.data(), kVocab, target_for(t)));
  }
  QF_TRY((*s)->finish());
  return ok_status();
}

TEST(HostileKlBase, ValidFileScoresZero) {
  const fs::path p = temp("self");
  write_all(p, valid_base());
  auto s = KlDivergenceScorer::open(p, kVocab, kTokens, kProtocol);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  for (int64_t t = 0; t < kTokens; ++t) {
    const auto l = logits_for(t);
    ASSERT_TRUE((*s)->score(l.data(), kVocab, target_for(t)).ok());
  }
  auto r = (*s)->finish();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->mean_kld, 0.0);
  EXPECT_EQ(r->top1_agreement, 1.0);
  fs::remove(p);
}

TEST(HostileKlBase, TopKIdsOutsideTheVocabularyAreErrors) {
  const int32_t bad_ids[] = {std::numeric_limits<int32_t>::max(), -100000000, -1,
                             static_cast<int32_t>(kVocab), std::numeric_limits<int32_t>::min()};
  for (int32_t id : bad_ids) {
    for (int64_t entry : {int64_t{0}, kTopK - 1}) {
      for (int64_t token : {int64_t{0}, kTokens - 1}) {
        auto b = valid_base();
        poke<int32_t>(b, entry_id_at(token, entry), id);
        const Status st = score_all(b, "badid");
        ASSERT_FALSE(st.ok()) << "id " << id;
        EXPECT_EQ(st.error().code(), ErrorCode::kFormat);
        EXPECT_NE(st.error().message().find(fmt::format("token id {}, outside the vocabulary "
                                                        "[0, 16)",
                                                        id)),
                  std::string::npos)
            << st.error().message();
      }
    }
  }
}

TEST(HostileKlBase, TopKAboveTheVocabularyIsAnError) {
  for (uint32_t top_k : {uint32_t{16}, uint32_t{17}, uint32_t{0x7FFFFFFF}, uint32_t{0xFFFFFFFF}}) {
    auto b = valid_base();
    poke<uint32_t>(b, 12, top_k);
    const Status st = score_all(b, "topk");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find(fmt::format("top_k = {} in the header", top_k)),
              std::string::npos)
        << st.error().message();
  }
}

TEST(HostileKlBase, TokenCountThatWrapsTheSizeIsAnError) {
  // n_tokens * 44 + header wraps around 2^64 back to the real size: 128-bit arithmetic catches
  // it (as a protocol mismatch first when the count differs from this run's).
  auto b = valid_base();
  const uint64_t wrap = (~uint64_t{0} / kRecord) + 1;  // wrap * 44 overflows
  poke<uint64_t>(b, 24, wrap);
  const fs::path p = temp("wrap");
  write_all(p, b);
  auto s = KlDivergenceScorer::open(p, kVocab, static_cast<int64_t>(wrap), kProtocol);
  fs::remove(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("more than 2^64"), std::string::npos) << s.error().message();
}

TEST(HostileKlBase, TargetOutsideTheVocabularyIsAnError) {
  const fs::path p = temp("target");
  write_all(p, valid_base());
  auto s = KlDivergenceScorer::open(p, kVocab, kTokens, kProtocol);
  ASSERT_TRUE(s.ok());
  const auto l = logits_for(0);
  EXPECT_FALSE((*s)->score(l.data(), kVocab, static_cast<int32_t>(kVocab)).ok());
  EXPECT_FALSE((*s)->score(l.data(), kVocab, -1).ok());
  fs::remove(p);
}

TEST(HostileKlBase, RandomRecordBytesNeverReadOutOfBounds) {
  // Every record byte replaced by pseudo-random garbage, 200 files: errors or finite results.
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int round = 0; round < 200; ++round) {
    auto b = valid_base();
    for (size_t i = kHeader + kProtocol.size(); i < b.size(); ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if ((x & 3) == 0) b[i] = static_cast<char>(x >> 24);
    }
    (void)score_all(b, "random");
  }
  SUCCEED();
}

TEST(HostileKlBase, FifoAsTheBaseIsRefusedWithoutBlocking) {
  const fs::path p = temp("fifo");
  fs::remove(p);
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  auto s = KlDivergenceScorer::open(p, kVocab, kTokens, kProtocol);
  fs::remove(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("is a FIFO, not a regular file"), std::string::npos)
      << s.error().message();
}

}  // namespace
}  // namespace qforge

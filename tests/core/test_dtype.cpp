// DType sizes, names, parsing of canonical/safetensors/PyTorch spellings, storage byte counts.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "qforge/core/dtype.h"

namespace qforge {
namespace {

TEST(DType, BitsOfEveryType) {
  EXPECT_EQ(dtype_bits(DType::F64), 64);
  EXPECT_EQ(dtype_bits(DType::F32), 32);
  EXPECT_EQ(dtype_bits(DType::F16), 16);
  EXPECT_EQ(dtype_bits(DType::BF16), 16);
  EXPECT_EQ(dtype_bits(DType::F8_E4M3FN), 8);
  EXPECT_EQ(dtype_bits(DType::F8_E4M3FNUZ), 8);
  EXPECT_EQ(dtype_bits(DType::F8_E5M2), 8);
  EXPECT_EQ(dtype_bits(DType::F8_E5M2FNUZ), 8);
  EXPECT_EQ(dtype_bits(DType::F6_E2M3), 6);
  EXPECT_EQ(dtype_bits(DType::F6_E3M2), 6);
  EXPECT_EQ(dtype_bits(DType::F4_E2M1), 4);
  EXPECT_EQ(dtype_bits(DType::E8M0), 8);
  EXPECT_EQ(dtype_bits(DType::I64), 64);
  EXPECT_EQ(dtype_bits(DType::I32), 32);
  EXPECT_EQ(dtype_bits(DType::I16), 16);
  EXPECT_EQ(dtype_bits(DType::I8), 8);
  EXPECT_EQ(dtype_bits(DType::U8), 8);
  EXPECT_EQ(dtype_bits(DType::I4), 4);
  EXPECT_EQ(dtype_bits(DType::U4), 4);
  EXPECT_EQ(dtype_bits(DType::BOOL), 8);
  EXPECT_EQ(dtype_size(DType::BF16), 2);
  EXPECT_EQ(dtype_size(DType::I4), 0);
  EXPECT_TRUE(dtype_is_sub_byte(DType::F6_E3M2));
  EXPECT_FALSE(dtype_is_sub_byte(DType::E8M0));
  EXPECT_TRUE(dtype_is_float(DType::E8M0));
  EXPECT_FALSE(dtype_is_float(DType::I64));
}

TEST(DType, CanonicalNames) {
  EXPECT_EQ(dtype_name(DType::BF16), "bf16");
  EXPECT_EQ(dtype_name(DType::F8_E4M3FN), "f8_e4m3fn");
  EXPECT_EQ(dtype_name(DType::F8_E5M2FNUZ), "f8_e5m2fnuz");
  EXPECT_EQ(dtype_name(DType::F4_E2M1), "f4_e2m1");
  EXPECT_EQ(dtype_name(DType::E8M0), "e8m0");
  EXPECT_EQ(dtype_name(DType::BOOL), "bool");
  EXPECT_EQ(fmt::format("{}", DType::F6_E2M3), "f6_e2m3");
  EXPECT_EQ(fmt::format("[{:>6}]", DType::I4), "[    i4]");
}

TEST(DType, NamesRoundTripInAnyCase) {
  for (int i = 0; i < kNumDTypes; ++i) {
    const auto dtype = static_cast<DType>(i);
    const std::string name(dtype_name(dtype));
    auto parsed = parse_dtype(name);
    ASSERT_TRUE(parsed.ok()) << name;
    EXPECT_EQ(*parsed, dtype);
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto parsed_upper = parse_dtype(upper);
    ASSERT_TRUE(parsed_upper.ok()) << upper;
    EXPECT_EQ(*parsed_upper, dtype);
  }
}

TEST(DType, SafetensorsSpellings) {
  const std::pair<const char*, DType> cases[] = {
      {"F64", DType::F64},
      {"F32", DType::F32},
      {"F16", DType::F16},
      {"BF16", DType::BF16},
      {"F8_E4M3", DType::F8_E4M3FN},
      {"F8_E5M2", DType::F8_E5M2},
      {"F8_E8M0", DType::E8M0},
      {"F6_E2M3", DType::F6_E2M3},
      {"F6_E3M2", DType::F6_E3M2},
      {"F4", DType::F4_E2M1},
      {"I64", DType::I64},
      {"I32", DType::I32},
      {"I16", DType::I16},
      {"I8", DType::I8},
      {"U8", DType::U8},
      {"BOOL", DType::BOOL},
  };
  for (const auto& [text, dtype] : cases) {
    auto parsed = parse_dtype(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(*parsed, dtype) << text;
  }
}

TEST(DType, PyTorchAndFormatSpellings) {
  EXPECT_EQ(*parse_dtype("bfloat16"), DType::BF16);
  EXPECT_EQ(*parse_dtype("float16"), DType::F16);
  EXPECT_EQ(*parse_dtype("float32"), DType::F32);
  EXPECT_EQ(*parse_dtype("float8_e4m3fn"), DType::F8_E4M3FN);
  EXPECT_EQ(*parse_dtype("float8_e4m3fnuz"), DType::F8_E4M3FNUZ);
  EXPECT_EQ(*parse_dtype("e2m1"), DType::F4_E2M1);
  EXPECT_EQ(*parse_dtype("int4"), DType::I4);
  EXPECT_EQ(*parse_dtype("uint8"), DType::U8);
}

TEST(DType, UnknownNameIsAnErrorThatListsTheChoices) {
  auto r = parse_dtype("f12");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("'f12'"), std::string::npos);
  EXPECT_NE(r.error().message().find("bf16"), std::string::npos);
  EXPECT_NE(r.error().message().find("parse_dtype"), std::string::npos);
  EXPECT_FALSE(parse_dtype("").ok());
  EXPECT_FALSE(parse_dtype("bf16 ").ok());
}

TEST(DType, KnownButUnsupportedTypesSaySo) {
  for (const char* text : {"U16", "U32", "U64", "uint16"}) {
    auto r = parse_dtype(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported) << text;
  }
}

TEST(DType, StorageBytesPacksSubByteTypes) {
  EXPECT_EQ(*dtype_storage_bytes(DType::F32, 10), 40u);
  EXPECT_EQ(*dtype_storage_bytes(DType::BF16, 3), 6u);
  EXPECT_EQ(*dtype_storage_bytes(DType::F64, 0), 0u);
  EXPECT_EQ(*dtype_storage_bytes(DType::BOOL, 3), 3u);
  EXPECT_EQ(*dtype_storage_bytes(DType::I4, 1), 1u);
  EXPECT_EQ(*dtype_storage_bytes(DType::I4, 3), 2u);
  EXPECT_EQ(*dtype_storage_bytes(DType::U4, 4), 2u);
  EXPECT_EQ(*dtype_storage_bytes(DType::F4_E2M1, 4096), 2048u);
  EXPECT_EQ(*dtype_storage_bytes(DType::F6_E2M3, 4), 3u);    // 24 bits
  EXPECT_EQ(*dtype_storage_bytes(DType::F6_E3M2, 5), 4u);    // 30 bits
  EXPECT_EQ(*dtype_storage_bytes(DType::F6_E3M2, 32), 24u);  // one MX block
  // The largest counts that still fit in 64 bits.
  EXPECT_EQ(*dtype_storage_bytes(DType::F32, int64_t{1} << 58), uint64_t{1} << 60);
  EXPECT_EQ(*dtype_storage_bytes(DType::U8, std::numeric_limits<int64_t>::max()),
            uint64_t{std::numeric_limits<int64_t>::max()});
}

TEST(DType, StorageBytesDetectsOverflowAndNegativeCounts) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  const std::pair<DType, int64_t> overflowing[] = {
      {DType::F64, big},
      {DType::F32, big},
      {DType::F32, int64_t{1} << 62},  // 2^64 bytes
      {DType::F64, int64_t{1} << 61},  // 2^64 bytes
      {DType::I64, int64_t{1} << 61},
  };
  for (const auto& [dtype, n] : overflowing) {
    auto r = dtype_storage_bytes(dtype, n);
    ASSERT_FALSE(r.ok()) << dtype_name(dtype) << " " << n;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("overflow"), std::string::npos);
  }
  // Just below the limit: exact byte counts, not false alarms.
  EXPECT_EQ(*dtype_storage_bytes(DType::F64, (int64_t{1} << 61) - 1), UINT64_MAX - 7);
  EXPECT_EQ(*dtype_storage_bytes(DType::BF16, big), UINT64_MAX - 1);
  EXPECT_EQ(*dtype_storage_bytes(DType::I4, big), uint64_t{1} << 62);
  EXPECT_EQ(*dtype_storage_bytes(DType::F6_E2M3, big),
            6917529027641081856u);  // ceil((2^63 - 1) * 6 / 8)
  auto negative = dtype_storage_bytes(DType::F16, -1);
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message().find("-1"), std::string::npos);
}

}  // namespace
}  // namespace qforge

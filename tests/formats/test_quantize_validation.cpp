// Bad input to the bulk quantizers gives a clear error naming the bad value, never a crash:
// NaN/Inf weights (with their row and column), empty or oversized shapes, invalid or unsupported
// specs, scale and cast overflow, and inconsistent QuantizedMatrix objects.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace {

using QuantizeFn = Result<QuantizedMatrix> (*)(const float*, int64_t, int64_t, const QuantSpec&);

struct Path {
  const char* name;
  QuantizeFn fn;
};
const Path kPaths[] = {{"quantize_matrix", quantize_matrix},
                       {"quantize_matrix_ref", quantize_matrix_ref}};

void expect_error(const Result<QuantizedMatrix>& r, ErrorCode code,
                  const std::vector<std::string>& needles, const std::string& where) {
  ASSERT_FALSE(r.ok()) << where << ": expected an error";
  EXPECT_EQ(r.error().code(), code) << where << ": " << r.error().to_string();
  const std::string msg = r.error().to_string();
  for (const std::string& n : needles) {
    EXPECT_NE(msg.find(n), std::string::npos) << where << ": '" << n << "' not in: " << msg;
  }
}

TEST(QuantizeValidation, NonFiniteWeightsNameTheFirstBadElement) {
  const int64_t rows = 5;
  const int64_t cols = 40;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& [bad, name] :
       {std::pair{nan, "NaN"}, std::pair{inf, "+Inf"}, std::pair{-inf, "-Inf"}}) {
    std::vector<float> x(rows * cols, 0.5f);
    x[3 * cols + 17] = bad;
    x[4 * cols + 2] = bad;  // a later one: the first in row-major order is reported
    for (QuantFormat f : all_quant_formats()) {
      for (const Path& p : kPaths) {
        const std::string where = std::string(p.name) + " " + quant_format_info(f).name;
        expect_error(p.fn(x.data(), rows, cols, default_quant_spec(f)), ErrorCode::kInvalidArgument,
                     {p.name, "(row 3, col 17)", std::string("is ") + name, "non-finite"}, where);
      }
    }
  }
}

TEST(QuantizeValidation, NonFiniteInPaddedTailRow) {
  // The bad value sits in the last, partial group of the last row.
  std::vector<float> x(2 * 130, 1.0f);
  x[259] = std::numeric_limits<float>::quiet_NaN();
  for (QuantFormat f : all_quant_formats()) {
    expect_error(quantize_matrix(x.data(), 2, 130, default_quant_spec(f)),
                 ErrorCode::kInvalidArgument, {"(row 1, col 129)", "NaN"},
                 quant_format_info(f).name);
  }
}

TEST(QuantizeValidation, EmptyAndOversizedShapes) {
  const float x[4] = {1, 2, 3, 4};
  const QuantSpec spec = default_quant_spec(QuantFormat::INT4_GROUP);
  for (const Path& p : kPaths) {
    expect_error(p.fn(x, 0, 4, spec), ErrorCode::kInvalidArgument, {p.name, "rows=0"}, p.name);
    expect_error(p.fn(x, 4, 0, spec), ErrorCode::kInvalidArgument, {"cols=0"}, p.name);
    expect_error(p.fn(x, -2, 2, spec), ErrorCode::kInvalidArgument, {"rows=-2"}, p.name);
    // 2^40 x 2^40 elements overflow every size: rejected before x is read.
    const int64_t big = int64_t{1} << 40;
    expect_error(p.fn(x, big, big, spec), ErrorCode::kInvalidArgument,
                 {"rows=1099511627776", "too large"}, p.name);
    expect_error(p.fn(nullptr, 2, 2, spec), ErrorCode::kInvalidArgument, {"null"}, p.name);
  }
}

TEST(QuantizeValidation, InvalidAndUnsupportedSpecs) {
  const std::vector<float> x(4 * 256, 0.5f);
  QuantSpec g96 = default_quant_spec(QuantFormat::INT4_GROUP);
  g96.group_size = 96;
  expect_error(quantize_matrix(x.data(), 4, 256, g96), ErrorCode::kInvalidArgument,
               {"quantize_matrix", "96"}, "int4 g96");

  QuantSpec nv32 = default_quant_spec(QuantFormat::NVFP4);
  nv32.group_size = 32;
  expect_error(quantize_matrix(x.data(), 4, 256, nv32), ErrorCode::kInvalidArgument, {"32"},
               "nvfp4 g32");

  QuantSpec fp8_e2m1 = default_quant_spec(QuantFormat::FP8_PER_TENSOR);
  fp8_e2m1.fp8 = ScalarFormat::E2M1;
  auto r = quantize_matrix(x.data(), 4, 256, fp8_e2m1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("e2m1"), std::string::npos) << r.error().to_string();

  QuantSpec mx_fnuz = default_quant_spec(QuantFormat::MXFP8);
  mx_fnuz.fp8 = ScalarFormat::E4M3FNUZ;
  expect_error(quantize_matrix(x.data(), 4, 256, mx_fnuz), ErrorCode::kUnsupported,
               {"mxfp8", "e4m3fnuz"}, "mxfp8 fnuz");
}

TEST(QuantizeValidation, GroupScaleOverflowingF16) {
  // amax 1e6: scale 1e6 / 7 = 142857 > 65504, the F16 maximum. BF16 scales reach 3.4e38.
  std::vector<float> x(2 * 256, 0.5f);
  x[256 + 200] = 1.0e6f;
  for (QuantFormat f : {QuantFormat::INT4_GROUP, QuantFormat::UINT4_GROUP}) {
    QuantSpec spec = default_quant_spec(f);
    for (const Path& p : kPaths) {
      expect_error(p.fn(x.data(), 2, 256, spec), ErrorCode::kInvalidArgument,
                   {"group 1 of row 1", "F16", "BF16"}, p.name);
    }
    spec.scale_type = ScaleType::BF16;
    EXPECT_TRUE(quantize_matrix(x.data(), 2, 256, spec).ok());
  }
}

TEST(QuantizeValidation, CastOverflowingF16) {
  std::vector<float> x(3 * 10, 1.0f);
  x[2 * 10 + 4] = -70000.0f;
  expect_error(quantize_matrix(x.data(), 3, 10, default_quant_spec(QuantFormat::F16)),
               ErrorCode::kInvalidArgument, {"(row 2, col 4)", "-70000", "overflows F16"}, "f16");
  EXPECT_TRUE(quantize_matrix(x.data(), 3, 10, default_quant_spec(QuantFormat::BF16)).ok());
}

TEST(QuantizeValidation, InconsistentMatrixIsRejectedByDequantize) {
  const std::vector<float> x(4 * 64, 0.25f);
  auto q = quantize_matrix(x.data(), 4, 64, default_quant_spec(QuantFormat::NVFP4));
  ASSERT_TRUE(q.ok());
  std::vector<float> out(4 * 64);
  QuantizedMatrix truncated = *q;
  truncated.data.resize(truncated.data.size() - 1);
  auto st = dequantize_matrix(truncated, out.data());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().to_string().find("data bytes"), std::string::npos) << st.error().to_string();
  EXPECT_FALSE(dequantize_matrix_ref(truncated, out.data()).ok());

  QuantizedMatrix wrong_cols = *q;
  wrong_cols.cols = 65;
  EXPECT_FALSE(dequantize_matrix(wrong_cols, out.data()).ok());

  QuantizedMatrix empty;
  EXPECT_FALSE(dequantize_matrix(empty, out.data()).ok());
  EXPECT_FALSE(dequantize_matrix(*q, nullptr).ok());
}

}  // namespace
}  // namespace qforge

// GPU quantizers against the CPU scalar oracle (quantize_matrix_ref): codes, block scales and
// tensor scales must be equal bit for bit. Needs a CUDA GPU (CTest label `gpu`).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cuda/quantize_cuda.h"
#include "qforge/core/rng.h"

namespace qforge::cuda {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed, float std) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = std * static_cast<float>(rng.normal());
  return v;
}

void expect_same(const QuantizedMatrix& gpu, const QuantizedMatrix& cpu) {
  ASSERT_EQ(gpu.rows, cpu.rows);
  ASSERT_EQ(gpu.cols, cpu.cols);
  ASSERT_EQ(gpu.padded_cols, cpu.padded_cols);
  ASSERT_EQ(gpu.row_bytes, cpu.row_bytes);
  ASSERT_EQ(gpu.data.size(), cpu.data.size());
  ASSERT_EQ(gpu.scales.size(), cpu.scales.size());
  for (std::size_t i = 0; i < gpu.scales.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(gpu.scales[i]), std::bit_cast<uint32_t>(cpu.scales[i]))
        << "scale " << i;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(gpu.tensor_scale), std::bit_cast<uint32_t>(cpu.tensor_scale));
  int64_t mismatches = 0;
  for (std::size_t i = 0; i < gpu.data.size(); ++i) {
    if (gpu.data[i] != cpu.data[i] && mismatches++ < 10) {
      ADD_FAILURE() << "byte " << i << ": gpu 0x" << std::hex << int{gpu.data[i]} << " cpu 0x"
                    << int{cpu.data[i]};
    }
  }
  EXPECT_EQ(mismatches, 0);
}

void check_format(const char* format, int64_t rows, int64_t cols, std::vector<float> x) {
  SCOPED_TRACE(::testing::Message() << format << " [" << rows << ", " << cols << "]");
  const QuantSpec spec = parse_quant_spec(format).value();
  auto gpu = quantize_matrix_cuda(x.data(), rows, cols, spec);
  ASSERT_TRUE(gpu.ok()) << gpu.error().to_string();
  auto cpu = quantize_matrix_ref(x.data(), rows, cols, spec);
  ASSERT_TRUE(cpu.ok()) << cpu.error().to_string();
  expect_same(*gpu, *cpu);
}

TEST(CudaDevice, IsHopperOrNewer) {
  auto info = device_info();
  ASSERT_TRUE(info.ok()) << info.error().to_string();
  std::printf("device: %s, sm_%d%d, %d SMs, %.1f GiB\n", info->name.c_str(), info->compute_major,
              info->compute_minor, info->multiprocessors,
              static_cast<double>(info->global_memory_bytes) / (1 << 30));
  EXPECT_GE(info->compute_major, 9);
}

TEST(CudaQuantize, Fp8MatchesCpuOracle) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{384, 1024}, {7, 13}, {1, 1}, {33, 4099}}) {
    check_format("fp8", rows, cols, gaussian(rows * cols, rows * 31 + cols, 0.02f));
  }
}

TEST(CudaQuantize, Nvfp4MatchesCpuOracle) {
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{384, 1024}, {7, 100}, {5, 17}, {64, 4096}}) {
    auto x = gaussian(rows * cols, rows * 17 + cols, 0.02f);
    for (int64_t r = 0; r < rows; ++r) x[r * cols + (r * 7) % cols] *= 60.0f;  // outliers
    check_format("nvfp4", rows, cols, std::move(x));
  }
}

TEST(CudaQuantize, AllZeroTensorGivesZeroCodes) {
  check_format("fp8", 4, 64, std::vector<float>(256, 0.0f));
  check_format("nvfp4", 4, 64, std::vector<float>(256, 0.0f));
}

TEST(CudaQuantize, NonFiniteInputIsAnError) {
  std::vector<float> x(64, 1.0f);
  x[17] = std::nanf("");
  auto r = quantize_matrix_cuda(x.data(), 4, 16, parse_quant_spec("nvfp4").value());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("NaN"), std::string::npos) << r.error().message();
}

TEST(CudaQuantize, UnsupportedFormatIsAnError) {
  std::vector<float> x(64, 1.0f);
  auto r = quantize_matrix_cuda(x.data(), 4, 16, parse_quant_spec("int4_g32").value());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace qforge::cuda

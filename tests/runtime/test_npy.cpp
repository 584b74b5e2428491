// .npy v1.0: the header numpy writes (alignment, shape tuple spelling), a float32 round trip,
// and clear errors for files that are not .npy or are truncated.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "qforge/runtime/npy.h"

namespace qforge {
namespace {

TEST(Npy, HeaderMatchesNumpyLayout) {
  const std::vector<int64_t> shape2 = {23, 8000};
  const std::string h = npy_header("<f4", shape2);
  EXPECT_EQ(h.size() % 64, 0u);
  EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (23, 8000), }"),
            std::string::npos);
  EXPECT_EQ(h.back(), '\n');
  const std::vector<int64_t> shape1 = {23};
  EXPECT_NE(npy_header("<i8", shape1).find("'shape': (23,), }"), std::string::npos);
}

TEST(Npy, Float32RoundTrip) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("qforge_npy_" + std::to_string(::getpid()) + ".npy");
  const std::vector<int64_t> shape = {2, 3};
  const std::vector<float> data = {1.5f, -2.0f, 0.0f, 3.25f, 1e-8f, -7.0f};
  ASSERT_TRUE(write_npy_f32(path, shape, data).ok());
  auto arr = read_npy(path);
  ASSERT_TRUE(arr.ok()) << arr.error().to_string();
  EXPECT_EQ(arr->shape, shape);
  for (size_t i = 0; i < data.size(); ++i) EXPECT_EQ(arr->values[i], data[i]);
  EXPECT_FALSE(write_npy_f32(path, std::vector<int64_t>{4}, data).ok());  // shape mismatch

  // Truncated data section.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  EXPECT_FALSE(read_npy(path).ok());
  std::ofstream(path, std::ios::binary) << "not an npy file";
  auto bad = read_npy(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("magic"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace qforge

// NumPy .npy files, format version 1.0 (numpy.lib.format): the 6-byte magic "\x93NUMPY", version
// bytes 1 0, a little-endian uint16 header length, an ASCII dict header
// {'descr': '<f4', 'fortran_order': False, 'shape': (n, m), } padded with spaces and a final
// '\n' to a multiple of 64 bytes, then the C-order data. Enough for logits dumps and fixtures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/error.h"

namespace qforge {

// A little-endian C-order array read from a .npy file, widened to double (f4, f8, i4, i8, u1).
struct NpyArray {
  std::string descr;  // as written, e.g. "<f4"
  std::vector<int64_t> shape;
  std::vector<double> values;
};

// Errors name the file and the offending header field (big-endian or Fortran-order arrays,
// unsupported dtypes, a data section shorter than the shape says).
Result<NpyArray> read_npy(const std::filesystem::path& path);

// The v1.0 header (magic through the '\n') for a C-order array of `descr` with `shape`.
std::string npy_header(const std::string& descr, std::span<const int64_t> shape);

// Writes a float32 array ('<f4') atomically: `path` holds the old contents or the whole file.
Status write_npy_f32(const std::filesystem::path& path, std::span<const int64_t> shape,
                     std::span<const float> data);

}  // namespace qforge

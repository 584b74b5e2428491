// The matrix driver behind quantize_matrix / dequantize_matrix and their *_ref twins: argument
// and spec validation, the storage layout of QuantizedMatrix, per-tensor and per-tile scale
// passes, and the row loop (OpenMP over rows for large matrices).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "formats/quantize_rows.h"
#include "qforge/core/parallel.h"
#include "qforge/formats/quantize.h"

namespace qforge {
namespace quantize_internal {

const float* fp8_decode_table(ScalarFormat fp8) {
  const auto build = [](ScalarFormat f) {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = decode_fp8_ref(f, static_cast<uint8_t>(c));
    return t;
  };
  switch (fp8) {
    case ScalarFormat::E4M3FN: {
      static const std::array<float, 256> t = build(ScalarFormat::E4M3FN);
      return t.data();
    }
    case ScalarFormat::E4M3FNUZ: {
      static const std::array<float, 256> t = build(ScalarFormat::E4M3FNUZ);
      return t.data();
    }
    case ScalarFormat::E5M2: {
      static const std::array<float, 256> t = build(ScalarFormat::E5M2);
      return t.data();
    }
    case ScalarFormat::E5M2FNUZ: {
      static const std::array<float, 256> t = build(ScalarFormat::E5M2FNUZ);
      return t.data();
    }
    default:
      return nullptr;
  }
}

const float* e2m1_decode_table() {
  static const std::array<float, 16> t = [] {
    std::array<float, 16> r{};
    for (int c = 0; c < 16; ++c) r[c] = e2m1_to_float(static_cast<uint8_t>(c));
    return r;
  }();
  return t.data();
}

namespace {

// Matrices with fewer elements (4 MiB of FP32) run on one thread: below that a row loop takes
// well under a millisecond, less than what a fork/join can cost on a busy machine.
constexpr int64_t kParallelMinElements = int64_t{1} << 20;
// Smallest chunk of work (elements) handed to one thread.
constexpr int64_t kParallelGrainElements = int64_t{1} << 16;
// Largest byte count a matrix or its quantized form may take (keeps every offset in int64).
constexpr int64_t kMaxBytes = int64_t{1} << 60;

struct Layout {
  int64_t group = 0;  // elements per group along a row; 0 for ungrouped formats
  int64_t padded_cols = 0;
  int64_t row_bytes = 0;
  int64_t scale_count = 0;
};

bool is_fp8_kind(ScalarFormat f) {
  return f == ScalarFormat::E4M3FN || f == ScalarFormat::E4M3FNUZ || f == ScalarFormat::E5M2 ||
         f == ScalarFormat::E5M2FNUZ;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0);
}

Status check_fixed_group(const char* fn, const QuantSpec& spec, int fixed) {
  if (spec.group_size != 0 && spec.group_size != fixed) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: {} uses blocks of {} elements, got group_size={} (leave it 0 or set {})",
                      fn, quant_format_info(spec.format).name, fixed, spec.group_size, fixed);
  }
  return ok_status();
}

// Validates shape and spec and computes the storage layout.
Result<Layout> layout_for(const char* fn, const QuantSpec& spec, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: shape [rows={}, cols={}] is empty or negative (both must be > 0)", fn,
                      rows, cols);
  }
  int64_t elements = 0;
  if (__builtin_mul_overflow(rows, cols, &elements) || elements > kMaxBytes / 4) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: shape [rows={}, cols={}] is too large (more than 2^58 elements)", fn,
                      rows, cols);
  }
  if (Status st = validate_quant_spec(spec); !st.ok()) {
    return std::move(st).context(fmt::format("{}: invalid spec", fn)).error();
  }
  Layout l;
  l.padded_cols = cols;
  switch (spec.format) {
    case QuantFormat::F32:
      l.row_bytes = cols * 4;
      break;
    case QuantFormat::F16:
    case QuantFormat::BF16:
      l.row_bytes = cols * 2;
      break;
    case QuantFormat::INT8_PER_TENSOR:
      l.row_bytes = cols;
      l.scale_count = 1;
      break;
    case QuantFormat::INT8_PER_CHANNEL:
    case QuantFormat::INT8_PER_TOKEN:
      l.row_bytes = cols;
      l.scale_count = rows;
      break;
    case QuantFormat::FP8_PER_TENSOR:
    case QuantFormat::FP8_PER_CHANNEL:
    case QuantFormat::FP8_BLOCK128:
      if (!is_fp8_kind(spec.fp8)) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {} needs an 8-bit float element (e4m3fn, e4m3fnuz, e5m2, "
                          "e5m2fnuz), got {}",
                          fn, quant_format_info(spec.format).name,
                          scalar_format_info(spec.fp8).name);
      }
      l.row_bytes = cols;
      if (spec.format == QuantFormat::FP8_PER_TENSOR) l.scale_count = 1;
      if (spec.format == QuantFormat::FP8_PER_CHANNEL) l.scale_count = rows;
      if (spec.format == QuantFormat::FP8_BLOCK128) {
        QF_TRY(check_fixed_group(fn, spec, static_cast<int>(kFp8BlockTile)));
        l.scale_count = ceil_div(rows, kFp8BlockTile) * ceil_div(cols, kFp8BlockTile);
      }
      break;
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP: {
      const int64_t g = spec.group_size;
      if (g < 2 || g % 2 != 0 || g > (1 << 20)) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {} needs an even group size in [2, 2^20], got group_size={}", fn,
                          quant_format_info(spec.format).name, g);
      }
      l.group = g;
      const int64_t bytes =
          spec.format == QuantFormat::INT4_GROUP ? int4_block_bytes(g) : uint4_block_bytes(g);
      l.row_bytes = ceil_div(cols, g) * bytes;
      break;
    }
    case QuantFormat::NVFP4:
      QF_TRY(check_fixed_group(fn, spec, BlockNvfp4::kBlockSize));
      l.group = BlockNvfp4::kBlockSize;
      l.row_bytes = ceil_div(cols, l.group) * static_cast<int64_t>(sizeof(BlockNvfp4));
      break;
    case QuantFormat::MXFP4:
      QF_TRY(check_fixed_group(fn, spec, BlockMxfp4::kBlockSize));
      l.group = BlockMxfp4::kBlockSize;
      l.row_bytes = ceil_div(cols, l.group) * static_cast<int64_t>(sizeof(BlockMxfp4));
      break;
    case QuantFormat::MXFP8:
      QF_TRY(check_fixed_group(fn, spec, BlockMxfp8::kBlockSize));
      if (spec.fp8 != ScalarFormat::E4M3FN && spec.fp8 != ScalarFormat::E5M2) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: mxfp8 elements must be e4m3fn or e5m2 (OCP MX v1.0), got {}", fn,
                          scalar_format_info(spec.fp8).name);
      }
      l.group = BlockMxfp8::kBlockSize;
      l.row_bytes = ceil_div(cols, l.group) * static_cast<int64_t>(sizeof(BlockMxfp8));
      break;
    default:
      return make_error(ErrorCode::kUnsupported, "{}: format {} is not supported", fn,
                        static_cast<int>(spec.format));
  }
  if (l.group > 0) l.padded_cols = ceil_div(cols, l.group) * l.group;
  int64_t total = 0;
  if (__builtin_mul_overflow(rows, l.row_bytes, &total) || total > kMaxBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: shape [rows={}, cols={}] as {} needs more than 2^60 bytes", fn, rows,
                      cols, quant_format_info(spec.format).name);
  }
  return l;
}

const char* non_finite_name(float v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

// Error for the first non-finite element of x, given per-row max-abs bits.
Status check_finite(const char* fn, const float* x, int64_t cols,
                    const std::vector<uint32_t>& row_bits) {
  for (size_t r = 0; r < row_bits.size(); ++r) {
    if (row_bits[r] < kInfBits) continue;
    const float* row = x + static_cast<int64_t>(r) * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(row[c])) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: input element (row {}, col {}) is {}; the checkpoint or "
                          "calibration produced non-finite weights",
                          fn, r, c, non_finite_name(row[c]));
      }
    }
  }
  return ok_status();
}

// Calls fn(r) for r in [0, rows), on qforge's threads (core/parallel.h) when `parallel`.
template <class Fn>
void for_rows(bool parallel, int64_t rows, int64_t cols, const Fn& fn) {
  if (!parallel) {
    for (int64_t r = 0; r < rows; ++r) fn(r);
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kParallelGrainElements / std::max<int64_t>(cols, 1));
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

}  // namespace

Result<QuantizedMatrix> quantize_matrix_with(const RowKernels& k, const float* x, int64_t rows,
                                             int64_t cols, const QuantSpec& spec) {
  const char* fn = k.quantize_name;
  QF_ASSIGN_OR_RETURN(const Layout l, layout_for(fn, spec, rows, cols));
  if (x == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: input pointer is null", fn);
  }
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.padded_cols = l.padded_cols;
  q.row_bytes = l.row_bytes;
  std::vector<uint32_t> row_bits;
  try {
    q.data.resize(static_cast<size_t>(rows * l.row_bytes));
    q.scales.resize(static_cast<size_t>(l.scale_count));
    row_bits.resize(static_cast<size_t>(rows));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: cannot allocate {} bytes for a [{}, {}] {} matrix", fn,
                      rows * l.row_bytes, rows, cols, quant_format_info(spec.format).name);
  }
  const bool par = k.parallel && rows * cols >= kParallelMinElements;
  const auto row_in = [&](int64_t r) { return x + r * cols; };
  // Pass over the whole input: per-row max-abs bits, then the finiteness check.
  const auto scan = [&]() -> Status {
    for_rows(par, rows, cols, [&](int64_t r) { row_bits[r] = k.amax_bits(row_in(r), cols); });
    return check_finite(fn, x, cols, row_bits);
  };
  const auto tensor_amax = [&] {
    return amax_from_bits(*std::max_element(row_bits.begin(), row_bits.end()));
  };

  switch (spec.format) {
    case QuantFormat::F32:
      QF_TRY(scan());
      for_rows(par, rows, cols, [&](int64_t r) {
        std::memcpy(q.row_data(r), row_in(r), static_cast<size_t>(cols) * sizeof(float));
      });
      break;
    case QuantFormat::F16:
    case QuantFormat::BF16: {
      QF_TRY(scan());
      const bool f16 = spec.format == QuantFormat::F16;
      const auto cast = [&](float v) { return f16 ? float_to_f16(v) : float_to_bf16(v); };
      const uint16_t inf_code = f16 ? 0x7C00 : 0x7F80;
      if ((cast(tensor_amax()) & 0x7FFF) == inf_code) {
        for (int64_t i = 0; i < rows * cols; ++i) {
          if ((cast(x[i]) & 0x7FFF) == inf_code) {
            return make_error(ErrorCode::kInvalidArgument,
                              "{}: input element (row {}, col {}) = {} overflows {} (max {}); "
                              "store it as {} instead",
                              fn, i / cols, i % cols, x[i], f16 ? "F16" : "BF16",
                              f16 ? "65504" : "3.39e38", f16 ? "BF16 or F32" : "F32");
          }
        }
      }
      for_rows(par, rows, cols, [&](int64_t r) {
        uint8_t* dst = q.row_data(r);
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t code = cast(row_in(r)[c]);
          std::memcpy(dst + 2 * c, &code, sizeof(code));
        }
      });
      break;
    }
    case QuantFormat::INT8_PER_TENSOR:
    case QuantFormat::FP8_PER_TENSOR: {
      QF_TRY(scan());
      const bool int8 = spec.format == QuantFormat::INT8_PER_TENSOR;
      const float scale = int8 ? int8_scale(tensor_amax()) : fp8_scale(tensor_amax(), spec.fp8);
      q.scales[0] = scale;
      for_rows(par, rows, cols, [&](int64_t r) {
        if (int8) {
          k.quantize_int8(row_in(r), cols, scale, reinterpret_cast<int8_t*>(q.row_data(r)));
        } else {
          k.quantize_fp8(row_in(r), cols, scale, spec.fp8, q.row_data(r));
        }
      });
      break;
    }
    case QuantFormat::INT8_PER_CHANNEL:
    case QuantFormat::INT8_PER_TOKEN:
    case QuantFormat::FP8_PER_CHANNEL: {
      const bool int8 = spec.format != QuantFormat::FP8_PER_CHANNEL;
      // One pass per row: its amax (which also validates it), then its codes while the row is
      // still in cache.
      for_rows(par, rows, cols, [&](int64_t r) {
        row_bits[r] = k.amax_bits(row_in(r), cols);
        if (row_bits[r] >= kInfBits) return;
        const float amax = amax_from_bits(row_bits[r]);
        const float scale = int8 ? int8_scale(amax) : fp8_scale(amax, spec.fp8);
        q.scales[r] = scale;
        if (int8) {
          k.quantize_int8(row_in(r), cols, scale, reinterpret_cast<int8_t*>(q.row_data(r)));
        } else {
          k.quantize_fp8(row_in(r), cols, scale, spec.fp8, q.row_data(r));
        }
      });
      QF_TRY(check_finite(fn, x, cols, row_bits));
      break;
    }
    case QuantFormat::FP8_BLOCK128: {
      const int64_t tile_rows = ceil_div(rows, kFp8BlockTile);
      const int64_t tile_cols = ceil_div(cols, kFp8BlockTile);
      for_rows(par, tile_rows, cols * kFp8BlockTile, [&](int64_t tr) {
        const int64_t r0 = tr * kFp8BlockTile;
        const int64_t r1 = std::min(rows, r0 + kFp8BlockTile);
        std::vector<uint32_t> tile_bits(static_cast<size_t>(tile_cols), 0);
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t tc = 0; tc < tile_cols; ++tc) {
            const int64_t c0 = tc * kFp8BlockTile;
            const uint32_t bits = k.amax_bits(row_in(r) + c0, std::min(kFp8BlockTile, cols - c0));
            tile_bits[tc] = std::max(tile_bits[tc], bits);
            row_bits[r] = std::max(row_bits[r], bits);
          }
        }
        for (int64_t tc = 0; tc < tile_cols; ++tc) {
          if (tile_bits[tc] >= kInfBits) return;
          q.scales[tr * tile_cols + tc] = fp8_scale(amax_from_bits(tile_bits[tc]), spec.fp8);
        }
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t tc = 0; tc < tile_cols; ++tc) {
            const int64_t c0 = tc * kFp8BlockTile;
            k.quantize_fp8(row_in(r) + c0, std::min(kFp8BlockTile, cols - c0),
                           q.scales[tr * tile_cols + tc], spec.fp8, q.row_data(r) + c0);
          }
        }
      });
      QF_TRY(check_finite(fn, x, cols, row_bits));
      break;
    }
    case QuantFormat::NVFP4: {
      QF_TRY(scan());
      q.tensor_scale = nvfp4_tensor_scale_recipe(tensor_amax());
      for_rows(par, rows, cols, [&](int64_t r) {
        k.quantize_nvfp4(row_in(r), cols, q.tensor_scale,
                         reinterpret_cast<BlockNvfp4*>(q.row_data(r)));
      });
      break;
    }
    case QuantFormat::INT4_GROUP:
    case QuantFormat::UINT4_GROUP:
    case QuantFormat::MXFP4:
    case QuantFormat::MXFP8: {
      if (!k.fused_validation) QF_TRY(scan());
      const int g = static_cast<int>(l.group);
      const ScaleType st = spec.scale_type;
      for_rows(par, rows, cols, [&](int64_t r) {
        uint8_t* dst = q.row_data(r);
        switch (spec.format) {
          case QuantFormat::INT4_GROUP:
            row_bits[r] = k.quantize_int4(row_in(r), cols, g, st, dst);
            break;
          case QuantFormat::UINT4_GROUP:
            row_bits[r] = k.quantize_uint4(row_in(r), cols, g, st, dst);
            break;
          case QuantFormat::MXFP4:
            row_bits[r] = k.quantize_mxfp4(row_in(r), cols, reinterpret_cast<BlockMxfp4*>(dst));
            break;
          default:
            row_bits[r] =
                k.quantize_mxfp8(row_in(r), cols, spec.fp8, reinterpret_cast<BlockMxfp8*>(dst));
            break;
        }
      });
      QF_TRY(check_finite(fn, x, cols, row_bits));
      if (spec.format == QuantFormat::INT4_GROUP || spec.format == QuantFormat::UINT4_GROUP) {
        // A group scale beyond the scale type's range was stored as Inf: refuse it.
        const int64_t bytes =
            spec.format == QuantFormat::INT4_GROUP ? int4_block_bytes(g) : uint4_block_bytes(g);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t b = 0; b < l.padded_cols / g; ++b) {
            uint16_t code;
            std::memcpy(&code, q.row_data(r) + b * bytes, sizeof(code));
            if (!group_scale_overflowed(code, st)) continue;
            const int64_t c0 = b * g;
            const float amax =
                amax_from_bits(amax_bits_ref(row_in(r) + c0, std::min<int64_t>(g, cols - c0)));
            return make_error(ErrorCode::kInvalidArgument,
                              "{}: the scale of group {} of row {} (amax {}) overflows the {} "
                              "scale type; use BF16 scales or a wider format",
                              fn, b, r, amax, st == ScaleType::F16 ? "F16" : "BF16");
          }
        }
      }
      break;
    }
  }
  return q;
}

Status dequantize_matrix_with(const RowKernels& k, const QuantizedMatrix& q, float* out) {
  const char* fn = k.dequantize_name;
  QF_ASSIGN_OR_RETURN(const Layout l, layout_for(fn, q.spec, q.rows, q.cols));
  if (q.padded_cols != l.padded_cols || q.row_bytes != l.row_bytes ||
      q.data.size() != static_cast<size_t>(q.rows * l.row_bytes) ||
      q.scales.size() != static_cast<size_t>(l.scale_count)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: inconsistent {} matrix [rows={}, cols={}]: padded_cols={} (expected "
                      "{}), row_bytes={} (expected {}), {} data bytes (expected {}), {} scales "
                      "(expected {})",
                      fn, quant_format_info(q.spec.format).name, q.rows, q.cols, q.padded_cols,
                      l.padded_cols, q.row_bytes, l.row_bytes, q.data.size(), q.rows * l.row_bytes,
                      q.scales.size(), l.scale_count);
  }
  if (out == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: output pointer is null", fn);
  }
  const int64_t cols = q.cols;
  const bool par = k.parallel && q.rows * cols >= kParallelMinElements;
  const int g = static_cast<int>(l.group);
  const QuantSpec& spec = q.spec;
  for_rows(par, q.rows, cols, [&](int64_t r) {
    const uint8_t* src = q.row_data(r);
    float* dst = out + r * cols;
    switch (spec.format) {
      case QuantFormat::F32:
        std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
        break;
      case QuantFormat::F16:
      case QuantFormat::BF16:
        for (int64_t c = 0; c < cols; ++c) {
          uint16_t code;
          std::memcpy(&code, src + 2 * c, sizeof(code));
          dst[c] = spec.format == QuantFormat::F16 ? f16_to_float(code) : bf16_to_float(code);
        }
        break;
      case QuantFormat::INT8_PER_TENSOR:
        k.dequantize_int8(reinterpret_cast<const int8_t*>(src), cols, q.scales[0], dst);
        break;
      case QuantFormat::INT8_PER_CHANNEL:
      case QuantFormat::INT8_PER_TOKEN:
        k.dequantize_int8(reinterpret_cast<const int8_t*>(src), cols, q.scales[r], dst);
        break;
      case QuantFormat::FP8_PER_TENSOR:
        k.dequantize_fp8(src, cols, q.scales[0], spec.fp8, dst);
        break;
      case QuantFormat::FP8_PER_CHANNEL:
        k.dequantize_fp8(src, cols, q.scales[r], spec.fp8, dst);
        break;
      case QuantFormat::FP8_BLOCK128: {
        const int64_t tile_cols = ceil_div(cols, kFp8BlockTile);
        for (int64_t tc = 0; tc < tile_cols; ++tc) {
          const int64_t c0 = tc * kFp8BlockTile;
          const float scale = q.scales[(r / kFp8BlockTile) * tile_cols + tc];
          k.dequantize_fp8(src + c0, std::min(kFp8BlockTile, cols - c0), scale, spec.fp8, dst + c0);
        }
        break;
      }
      case QuantFormat::INT4_GROUP:
        k.dequantize_int4(src, cols, g, spec.scale_type, dst);
        break;
      case QuantFormat::UINT4_GROUP:
        k.dequantize_uint4(src, cols, g, spec.scale_type, dst);
        break;
      case QuantFormat::NVFP4:
        k.dequantize_nvfp4(reinterpret_cast<const BlockNvfp4*>(src), cols, q.tensor_scale, dst);
        break;
      case QuantFormat::MXFP4:
        k.dequantize_mxfp4(reinterpret_cast<const BlockMxfp4*>(src), cols, dst);
        break;
      case QuantFormat::MXFP8:
        k.dequantize_mxfp8(reinterpret_cast<const BlockMxfp8*>(src), cols, spec.fp8, dst);
        break;
    }
  });
  return ok_status();
}

}  // namespace quantize_internal

uint64_t QuantizedMatrix::storage_bytes() const {
  const uint64_t tensor = spec.format == QuantFormat::NVFP4 ? sizeof(float) : 0;
  return data.size() + scales.size() * sizeof(float) + tensor;
}

}  // namespace qforge

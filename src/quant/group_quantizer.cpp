// Element-by-element quantization with caller-chosen group scales into the qforge block layouts
// (INT4_GROUP, UINT4_GROUP, INT8_PER_CHANNEL). The scale recipes and codecs are the ones
// quantize_matrix runs (formats/quantize_rows.h, scalar.h), so the bytes are interchangeable.
#include "quant/group_quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "formats/quantize_rows.h"
#include "qforge/formats/scalar.h"

namespace qforge::quant_internal {

namespace qi = quantize_internal;

namespace {

// Largest matrix this accepts (elements), as quantize_matrix's 2^58 limit.
constexpr int64_t kMaxElements = int64_t{1} << 58;

// Sets 4-bit code `i` of a low-nibble-first packed array.
void set_nibble(uint8_t* qs, int64_t i, uint8_t code) {
  uint8_t& byte = qs[i >> 1];
  if (i & 1) {
    byte = static_cast<uint8_t>((byte & 0x0F) | (code << 4));
  } else {
    byte = static_cast<uint8_t>((byte & 0xF0) | (code & 0x0F));
  }
}

}  // namespace

Result<GroupQuantizer> GroupQuantizer::create(const char* fn, const QuantSpec& spec, int64_t rows,
                                              int64_t cols) {
  const QuantFormat f = spec.format;
  if (f != QuantFormat::INT4_GROUP && f != QuantFormat::UINT4_GROUP &&
      f != QuantFormat::INT8_PER_CHANNEL) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: format {} is not supported (supported: int4 groups, uint4 groups, "
                      "int8_per_channel)",
                      fn, quant_spec_name(spec));
  }
  if (Status st = validate_quant_spec(spec); !st.ok()) {
    return std::move(st).context(fmt::format("{}: invalid spec", fn)).error();
  }
  int64_t elements = 0;
  if (rows <= 0 || cols <= 0 || __builtin_mul_overflow(rows, cols, &elements) ||
      elements > kMaxElements) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: shape [rows={}, cols={}] is empty, negative or too large", fn, rows,
                      cols);
  }
  GroupQuantizer gq;
  gq.fn_ = fn;
  gq.group_ = f == QuantFormat::INT8_PER_CHANNEL ? cols : spec.group_size;
  gq.groups_ = (cols + gq.group_ - 1) / gq.group_;
  QuantizedMatrix& q = gq.q_;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.padded_cols = gq.groups_ * gq.group_;
  switch (f) {
    case QuantFormat::INT4_GROUP:
      gq.block_bytes_ = int4_block_bytes(gq.group_);
      q.row_bytes = gq.groups_ * gq.block_bytes_;
      break;
    case QuantFormat::UINT4_GROUP:
      gq.block_bytes_ = uint4_block_bytes(gq.group_);
      q.row_bytes = gq.groups_ * gq.block_bytes_;
      break;
    default:
      q.row_bytes = cols;
      break;
  }
  try {
    q.data.assign(static_cast<size_t>(rows * q.row_bytes), 0);
    if (f == QuantFormat::INT8_PER_CHANNEL) q.scales.assign(static_cast<size_t>(rows), 0.0f);
    gq.scale_.assign(static_cast<size_t>(rows * gq.groups_), 0.0f);
    gq.zero_.assign(static_cast<size_t>(rows * gq.groups_), 0);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidArgument, "{}: cannot allocate a [{}, {}] {} matrix", fn,
                      rows, cols, quant_spec_name(spec));
  }
  return gq;
}

namespace {

// The range the recipe reads from v: amax for INT4/INT8, [lo, hi] (starting at 0) for UINT4.
struct GroupRange {
  float lo = 0.0f, hi = 0.0f, amax = 0.0f;
};
GroupRange group_range(const float* v, int64_t count) {
  GroupRange r;
  for (int64_t i = 0; i < count; ++i) {
    r.amax = std::max(r.amax, std::fabs(v[i]));
    r.lo = std::min(r.lo, v[i]);
    r.hi = std::max(r.hi, v[i]);
  }
  return r;
}

// rne(clamp(x / scale, lo, hi)) * scale, the dequantized code of quantize_clamped (clamping
// before rounding is the same for integer bounds); the rounding adds and subtracts 1.5 * 2^23,
// which rounds to nearest even for |q| <= 2^22 without a libm call, so the loops vectorize.
inline float fake_quant(float x, float scale, float lo, float hi) {
  constexpr float kMagic = 12582912.0f;
  float q = x / scale;
  q = q < lo ? lo : q;
  q = q > hi ? hi : q;
  q = (q + kMagic) - kMagic;
  return q * scale;
}

// Squared error of v quantized with the recipe's parameters for range r, importance-weighted.
// Used to rank candidates only; the chosen range is then stored and applied by the codecs.
float candidate_error(QuantFormat f, ScaleType st, const GroupRange& r, const float* v,
                      int64_t count, const float* imp) {
  float scale = 0.0f, lo = 0.0f, hi = 0.0f, zero = 0.0f;
  switch (f) {
    case QuantFormat::INT8_PER_CHANNEL:
      scale = qi::int8_scale(r.amax);
      lo = -127.0f;
      hi = 127.0f;
      break;
    case QuantFormat::INT4_GROUP:
      scale = qi::int4_group_scale(r.amax, st).value;
      lo = -8.0f;
      hi = 7.0f;
      break;
    default: {
      const qi::Uint4Params p = qi::uint4_group_params(r.lo, r.hi, st);
      scale = p.scale;
      zero = static_cast<float>(p.zero);
      // codes clamp(rne(x / s) + zero, 0, 15): rne(x / s) clamped to [-zero, 15 - zero].
      lo = -zero;
      hi = 15.0f - zero;
      break;
    }
  }
  float err = 0.0f;
  if (!(scale > 0.0f)) {
    for (int64_t i = 0; i < count; ++i) err += (imp != nullptr ? imp[i] : 1.0f) * v[i] * v[i];
    return err;
  }
  if (imp != nullptr) {
    for (int64_t i = 0; i < count; ++i) {
      const float d = v[i] - fake_quant(v[i], scale, lo, hi);
      err += imp[i] * d * d;
    }
  } else {
    for (int64_t i = 0; i < count; ++i) {
      const float d = v[i] - fake_quant(v[i], scale, lo, hi);
      err += d * d;
    }
  }
  return err;
}

}  // namespace

Status GroupQuantizer::set_group(int64_t row, int64_t group, const float* v, int64_t count) {
  QF_CHECK(row >= 0 && row < q_.rows && group >= 0 && group < groups_);
  QF_CHECK(count > 0 && count <= group_);
  const GroupRange r = group_range(v, count);
  return store_group(row, group, r.lo, r.hi, r.amax);
}

Status GroupQuantizer::set_group(int64_t row, int64_t group, const float* v, int64_t count,
                                 const float* importance, const ScaleSearch& search) {
  QF_CHECK(row >= 0 && row < q_.rows && group >= 0 && group < groups_);
  QF_CHECK(count > 0 && count <= group_);
  QF_CHECK(search.grid >= 0 && search.max_shrink >= 0.0 && search.max_shrink < 1.0);
  const GroupRange full = group_range(v, count);
  GroupRange best = full;
  if (search.grid > 0 && full.amax > 0.0f) {
    const QuantFormat f = q_.spec.format;
    const ScaleType st = q_.spec.scale_type;
    float best_err = candidate_error(f, st, full, v, count, importance);
    for (int i = 1; i <= search.grid; ++i) {
      const auto shrink =
          static_cast<float>(1.0 - search.max_shrink * static_cast<double>(i) / search.grid);
      const GroupRange c{full.lo * shrink, full.hi * shrink, full.amax * shrink};
      // A shrunk scale that overflows cannot happen (it only gets smaller); one that underflows
      // to 0 quantizes everything to 0 and is scored as such.
      const float err = candidate_error(f, st, c, v, count, importance);
      if (err < best_err) {
        best_err = err;
        best = c;
      }
    }
  }
  return store_group(row, group, best.lo, best.hi, best.amax);
}

Status GroupQuantizer::store_group(int64_t row, int64_t group, float lo, float hi, float amax) {
  const size_t slot = static_cast<size_t>(row * groups_ + group);
  const ScaleType st = q_.spec.scale_type;
  switch (q_.spec.format) {
    case QuantFormat::INT8_PER_CHANNEL: {
      const float scale = qi::int8_scale(amax);
      q_.scales[static_cast<size_t>(row)] = scale;
      scale_[slot] = scale;
      return ok_status();
    }
    case QuantFormat::INT4_GROUP: {
      const qi::GroupScale s = qi::int4_group_scale(amax, st);
      if (qi::group_scale_overflowed(s.code, st)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: the scale of group {} of row {} (amax {}) overflows the {} scale "
                          "type; use BF16 scales",
                          fn_, group, row, amax, st == ScaleType::F16 ? "F16" : "BF16");
      }
      std::memcpy(q_.row_data(row) + group * block_bytes_, &s.code, sizeof(s.code));
      scale_[slot] = s.value;
      return ok_status();
    }
    default: {
      // The recipe starts lo and hi at 0, so padding zeros can never widen the range.
      const qi::Uint4Params p = qi::uint4_group_params(lo, hi, st);
      if (qi::group_scale_overflowed(p.scale_code, st)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: the scale of group {} of row {} (range [{}, {}]) overflows the {} "
                          "scale type; use BF16 scales",
                          fn_, group, row, lo, hi, st == ScaleType::F16 ? "F16" : "BF16");
      }
      uint8_t* block = q_.row_data(row) + group * block_bytes_;
      std::memcpy(block, &p.scale_code, sizeof(p.scale_code));
      block[2] = static_cast<uint8_t>(p.zero);
      block[3] = 0;
      scale_[slot] = p.scale;
      zero_[slot] = static_cast<uint8_t>(p.zero);
      return ok_status();
    }
  }
}

float GroupQuantizer::quantize(int64_t row, int64_t col, float x) {
  const int64_t group = col / group_;
  const size_t slot = static_cast<size_t>(row * groups_ + group);
  const float scale = scale_[slot];
  const int64_t i = col - group * group_;
  // A zero scale (all-zero group) gives code 0, as the row kernels do; never 0 / 0.
  switch (q_.spec.format) {
    case QuantFormat::INT8_PER_CHANNEL: {
      const int8_t code = scale > 0.0f ? quantize_int8(x, scale) : int8_t{0};
      q_.row_data(row)[col] = static_cast<uint8_t>(code);
      return dequantize_int(code, scale);
    }
    case QuantFormat::INT4_GROUP: {
      const int8_t code = scale > 0.0f ? quantize_int4(x, scale) : int8_t{0};
      set_nibble(q_.row_data(row) + group * block_bytes_ + 2, i, static_cast<uint8_t>(code & 0xF));
      return dequantize_int(code, scale);
    }
    default: {
      const int zero = zero_[slot];
      const uint8_t code = scale > 0.0f ? quantize_uint4(x, scale, zero) : uint8_t{0};
      set_nibble(q_.row_data(row) + group * block_bytes_ + 4, i, code);
      return dequantize_int(code, scale, zero);
    }
  }
}

QuantizedMatrix GroupQuantizer::finish() && {
  // Padding is 0.0, which quantizes to code 0 (INT4, already there) or to the zero point (UINT4).
  if (q_.spec.format == QuantFormat::UINT4_GROUP && q_.padded_cols > q_.cols) {
    for (int64_t r = 0; r < q_.rows; ++r) {
      for (int64_t c = q_.cols; c < q_.padded_cols; ++c) quantize(r, c, 0.0f);
    }
  }
  return std::move(q_);
}

}  // namespace qforge::quant_internal

// Element-by-element quantization with scales chosen by the caller, into the exact qforge layouts
// of quantize.h: what GPTQ-style algorithms need, since they fix a group's scale and then
// quantize its columns one at a time while the weights keep changing.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/core/error.h"
#include "qforge/formats/quant_format.h"
#include "qforge/formats/quantize.h"

namespace qforge::quant_internal {

// A search for each group's scale (GPTQ implementations' `mse` option, llama.cpp's
// imatrix-weighted rounding): the range the recipe derives from the values (amax, or [lo, hi])
// shrunk by f = 1 - max_shrink * i / grid for i in [0, grid], keeping the f whose codes give the
// least importance-weighted squared error sum_i imp_i (v_i - deq(q(v_i)))^2 (the first strict
// minimum: f = 1, the plain recipe, wins ties). grid == 0: no search.
struct ScaleSearch {
  int grid = 0;
  double max_shrink = 0.5;
};

// Fills a QuantizedMatrix of [rows, cols] in INT4_GROUP, UINT4_GROUP or INT8_PER_CHANNEL (whose
// "group" is the whole row). set_group() derives a group's scale (and zero point) from values
// by the docs/FORMATS.md recipe; quantize() then encodes single elements with it.
class GroupQuantizer {
 public:
  // fn names the caller in error messages. Errors: a spec outside the three formats
  // (kUnsupported, naming it), an invalid spec or shape (kInvalidArgument).
  static Result<GroupQuantizer> create(const char* fn, const QuantSpec& spec, int64_t rows,
                                       int64_t cols);

  // Elements per group along a row: spec.group_size, or cols for INT8_PER_CHANNEL.
  int64_t group_size() const { return group_; }
  int64_t groups_per_row() const { return groups_; }

  // Sets the scale of group `group` of row `row` from v: [count], the group's values from its
  // first column on (count < group_size at the end of a row: the rest is zero padding, which
  // takes part in the amax as quantize_matrix's padding does). v must be finite. Errors when
  // the scale overflows its F16/BF16 scale type (naming the row and group).
  Status set_group(int64_t row, int64_t group, const float* v, int64_t count);
  // The same with the scale searched (ScaleSearch): importance: [count] weights >= 0 of the
  // squared errors (null: all 1). search.grid == 0 is set_group.
  Status set_group(int64_t row, int64_t group, const float* v, int64_t count,
                   const float* importance, const ScaleSearch& search);

  // Encodes x as element (row, col) with the scale of its group (set_group must have run for
  // it) and returns the dequantized value, bit for bit what dequantize_matrix will return.
  float quantize(int64_t row, int64_t col, float x);

  // Writes the codes of the padding columns and hands out the matrix.
  QuantizedMatrix finish() &&;

 private:
  GroupQuantizer() = default;
  // Scale (and zero) of the recipe for amax (or [lo, hi]) shrunk by f, stored for the group.
  Status store_group(int64_t row, int64_t group, float lo, float hi, float amax);

  const char* fn_ = "";
  QuantizedMatrix q_;
  int64_t group_ = 0;
  int64_t groups_ = 0;
  int64_t block_bytes_ = 0;    // bytes of one block (INT4/UINT4)
  std::vector<float> scale_;   // [rows, groups_] the decoded (used) scales
  std::vector<uint8_t> zero_;  // [rows, groups_] UINT4 zero points
};

}  // namespace qforge::quant_internal

// Per-target Highway kernels of paged_attention.h: FP8/INT8 page rows decoded to F32 (the score
// and value-sum rows over a decoded page are attention.h's attention_scores/_accumulate).
// Included once per target by paged_attention.cpp (foreach_target); no include guard on purpose.

#if defined(QFORGE_BACKEND_CPU_PAGED_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QFORGE_BACKEND_CPU_PAGED_ATTENTION_INL_H_
#undef QFORGE_BACKEND_CPU_PAGED_ATTENTION_INL_H_
#else
#define QFORGE_BACKEND_CPU_PAGED_ATTENTION_INL_H_
#endif

#include <cstring>

#include "backend/cpu/paged_attention.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// dst[i] = table[codes[i]] * scale; table: the 256 FP8 values as floats (exact).
void PagedDecodeFp8(const uint8_t* HWY_RESTRICT codes, int64_t n, float scale,
                    const float* HWY_RESTRICT table, float* HWY_RESTRICT dst) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const size_t N = hn::Lanes(df);
  const auto count = static_cast<size_t>(n);
  const VF s = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    const auto idx =
        hn::BitCast(di, hn::PromoteTo(hn::Rebind<uint32_t, DF>(), hn::LoadU(du8, codes + i)));
    hn::StoreU(hn::Mul(hn::GatherIndex(df, table, idx), s), df, dst + i);
  }
  for (; i < count; ++i) dst[i] = table[codes[i]] * scale;
}

// dst[i] = float(codes[i]) * scale.
void PagedDecodeInt8(const int8_t* HWY_RESTRICT codes, int64_t n, float scale,
                     float* HWY_RESTRICT dst) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int8_t, DF> di8;
  const size_t N = hn::Lanes(df);
  const auto count = static_cast<size_t>(n);
  const VF s = hn::Set(df, scale);
  size_t i = 0;
  for (; i + N <= count; i += N) {
    const VF v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(di8, codes + i)));
    hn::StoreU(hn::Mul(v, s), df, dst + i);
  }
  for (; i < count; ++i) dst[i] = static_cast<float>(codes[i]) * scale;
}

}  // namespace HWY_NAMESPACE
}  // namespace cpu
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle

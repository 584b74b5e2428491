// Which Highway SIMD targets this binary can run (compiled in AND supported by this CPU), and a
// scoped override that pins runtime dispatch to one of them, so tests can run every kernel on
// every target (gemma.cpp / Highway's own test pattern).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qforge {

struct SimdTarget {
  int64_t bits;      // the Highway target bit (HWY_AVX2, HWY_AVX3, HWY_EMU128, ...)
  std::string name;  // hwy::TargetName, e.g. "AVX3", "AVX2", "SSE4", "EMU128"
};

// Targets compiled into qforge and supported by this CPU, best first. Never empty: the
// baseline target (SCALAR with GCC < 12.3, else EMU128, on x86-64 builds without -march) is
// always compiled and supported. Inside a ScopedSimdTarget it lists only the pinned target.
std::vector<SimdTarget> simd_targets();

// Name of the target runtime dispatch picks right now (honours a ScopedSimdTarget).
std::string simd_dispatch_target_name();

// Pins runtime dispatch to `target` (one entry of simd_targets()) until destruction, then
// restores normal dispatch. Process-wide: for single-threaded test code, not for library code.
class ScopedSimdTarget {
 public:
  explicit ScopedSimdTarget(int64_t target);
  ~ScopedSimdTarget();
  ScopedSimdTarget(const ScopedSimdTarget&) = delete;
  ScopedSimdTarget& operator=(const ScopedSimdTarget&) = delete;
};

}  // namespace qforge

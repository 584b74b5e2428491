// Highway target listing and the scoped dispatch override of include/qforge/core/simd.h.
// Compiled per target (foreach_target) only to learn which target dispatch picks.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include "hwy/highway.h"
#include "qforge/core/simd.h"

HWY_BEFORE_NAMESPACE();
namespace qforge {
namespace HWY_NAMESPACE {

int64_t DispatchedTarget() {
  return HWY_TARGET;
}

}  // namespace HWY_NAMESPACE
}  // namespace qforge
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qforge {

HWY_EXPORT(DispatchedTarget);

std::vector<SimdTarget> simd_targets() {
  std::vector<SimdTarget> targets;
  // SupportedAndGeneratedTargets lists lower bits (better targets on x86) first.
  for (const int64_t t : hwy::SupportedAndGeneratedTargets()) {
    targets.push_back({t, hwy::TargetName(t)});
  }
  return targets;
}

std::string simd_dispatch_target_name() {
  return hwy::TargetName(HWY_DYNAMIC_DISPATCH(DispatchedTarget)());
}

ScopedSimdTarget::ScopedSimdTarget(int64_t target) {
  // Also resets Highway's chosen-target cache, so the next dispatch re-selects.
  hwy::SetSupportedTargetsForTest(target);
}

ScopedSimdTarget::~ScopedSimdTarget() {
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace qforge
#endif  // HWY_ONCE

// Error/Result behaviour: context chains, propagation macros.
#include <gtest/gtest.h>

#include "qforge/core/error.h"

namespace qforge {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error(ErrorCode::kInvalidArgument, "value {} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  QF_ASSIGN_OR_RETURN(int v, parse_positive(x).context("doubling"));
  return 2 * v;
}

Status check_twice(int x) {
  QF_TRY(doubled(x));
  return ok_status();
}

TEST(Error, ValuePassesThrough) {
  auto r = doubled(21);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
}

TEST(Error, ContextChainIsOutermostFirst) {
  auto r = check_twice(-3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "value -3 is not positive");
  auto s = std::move(r).context("loading model");
  EXPECT_EQ(s.error().to_string(), "loading model: doubling: value -3 is not positive");
}

TEST(Error, ValueOr) {
  EXPECT_EQ(parse_positive(-1).value_or(7), 7);
  EXPECT_EQ(parse_positive(5).value_or(7), 5);
}

}  // namespace
}  // namespace qforge

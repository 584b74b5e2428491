// Shape, TensorView (strides, slicing, reshape, sub-byte rules, read-only views) and Tensor
// (aligned storage, sharing, adoption of external memory, strided copies).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "qforge/core/tensor.h"

namespace qforge {
namespace {

std::vector<float> iota_floats(size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(Shape, FormatsLikeAList) {
  EXPECT_EQ(Shape({4096, 11008}).to_string(), "[4096, 11008]");
  EXPECT_EQ(Shape().to_string(), "[]");
  EXPECT_EQ(fmt::format("w {}", Shape({2, 3, 4})), "w [2, 3, 4]");
  EXPECT_EQ(Shape({2, 3, 4}).numel(), 24);
  EXPECT_EQ(Shape().numel(), 1);
  EXPECT_EQ(Shape({5, 0, 7}).numel(), 0);
  EXPECT_EQ(Shape({2, 3}), Shape({2, 3}));
  EXPECT_FALSE(Shape({2, 3}) == Shape({3, 2}));
}

TEST(Shape, FromRejectsBadInput) {
  const std::vector<int64_t> nine(9, 1);
  auto too_many = Shape::from(nine);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message().find("at most 8"), std::string::npos);

  const std::vector<int64_t> negative = {4, -2};
  auto neg = Shape::from(negative);
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message().find("-2"), std::string::npos);

  const std::vector<int64_t> huge = {int64_t{1} << 32, int64_t{1} << 32};
  EXPECT_FALSE(Shape::from(huge).ok());
  // Zero extents still count as 1 for overflow: strides must fit.
  const std::vector<int64_t> zero_huge = {0, int64_t{1} << 62, 4};
  EXPECT_FALSE(Shape::from(zero_huge).ok());

  const std::vector<int64_t> ok = {8, 1, 3};
  auto shape = Shape::from(ok);
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, Shape({8, 1, 3}));
}

TEST(Tensor, ContiguousStridesOf3DView) {
  auto buf = iota_floats(24);
  // x: (2, 3, 4) row-major
  auto x = TensorView::make(buf.data(), DType::F32, {2, 3, 4});
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->ndim(), 3);
  EXPECT_EQ(x->stride(0), 12);
  EXPECT_EQ(x->stride(1), 4);
  EXPECT_EQ(x->stride(2), 1);
  EXPECT_TRUE(x->is_contiguous());
  EXPECT_TRUE(x->writable());
  EXPECT_EQ(x->numel(), 24);
  EXPECT_EQ(x->nbytes(), 96u);
  EXPECT_EQ(x->row_numel(), 12);
  EXPECT_EQ(x->at<float>(1, 2, 3), 23.0f);
  EXPECT_EQ(x->at<float>(0, 1, 2), 6.0f);
  EXPECT_EQ(x->row<float>(1), buf.data() + 12);
  x->at<float>(1, 0, 0) = -1.0f;
  EXPECT_EQ(buf[12], -1.0f);
  EXPECT_EQ(x->to_string(), "f32[2, 3, 4]");
}

TEST(Tensor, TransposeIsStridedAndCopyGathersIt) {
  auto buf = iota_floats(24);
  auto x = *TensorView::make(buf.data(), DType::F32, {2, 3, 4});
  auto t = x.transpose(0, 2);  // (4, 3, 2)
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->shape(), Shape({4, 3, 2}));
  EXPECT_EQ(t->stride(0), 1);
  EXPECT_EQ(t->stride(1), 4);
  EXPECT_EQ(t->stride(2), 12);
  EXPECT_FALSE(t->is_contiguous());
  EXPECT_EQ(t->at<float>(3, 2, 1), 23.0f);
  EXPECT_EQ(t->to_string(), "f32[4, 3, 2] strides [1, 4, 12]");

  auto reshaped = t->reshape({24});
  ASSERT_FALSE(reshaped.ok());
  EXPECT_NE(reshaped.error().message().find("not contiguous"), std::string::npos);

  auto copy = Tensor::copy_of(*t);
  ASSERT_TRUE(copy.ok());
  EXPECT_TRUE(copy->view().is_contiguous());
  const float* c = copy->data_as<const float>();
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 2; ++k) EXPECT_EQ(c[(i * 3 + j) * 2 + k], buf[k * 12 + j * 4 + i]);
    }
  }
}

TEST(Tensor, SliceSelectAndRows) {
  auto buf = iota_floats(35);
  // w: (5, 7) row-major
  auto w = *TensorView::make(buf.data(), DType::F32, {5, 7});
  EXPECT_EQ(w.row<const float>(3), buf.data() + 21);
  EXPECT_EQ(w.row_numel(), 7);

  auto s = w.slice(1, 4);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->shape(), Shape({3, 7}));
  EXPECT_EQ(s->data(), buf.data() + 7);
  EXPECT_TRUE(s->is_contiguous());
  EXPECT_EQ(s->at<float>(2, 6), 27.0f);

  auto empty = w.slice(5, 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->numel(), 0);

  auto row = w.select(2);
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->shape(), Shape({7}));
  EXPECT_EQ(row->data(), buf.data() + 14);

  EXPECT_FALSE(w.slice(3, 2).ok());
  EXPECT_FALSE(w.slice(-1, 2).ok());
  auto past = w.slice(0, 6);
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.error().message().find("[0, 6)"), std::string::npos);
  EXPECT_FALSE(w.select(5).ok());

  // Slicing a transposed (strided) view keeps its strides.
  auto t = *w.transpose(0, 1);  // (7, 5), strides (1, 7)
  auto ts = t.slice(2, 4);
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->at<float>(1, 4), buf[4 * 7 + 3]);
}

TEST(Tensor, ReshapeChecksElementCount) {
  auto buf = iota_floats(24);
  auto x = *TensorView::make(buf.data(), DType::F32, {2, 3, 4});
  auto r = x.reshape({6, 4});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stride(0), 4);
  EXPECT_EQ(r->at<float>(5, 3), 23.0f);
  auto bad = x.reshape({5, 5});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("[2, 3, 4]"), std::string::npos);
  EXPECT_NE(bad.error().message().find("[5, 5]"), std::string::npos);
}

TEST(Tensor, ScalarViewHasOneElement) {
  double value = 2.5;
  auto s = TensorView::make(&value, DType::F64, Shape());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ndim(), 0);
  EXPECT_EQ(s->numel(), 1);
  EXPECT_EQ(s->nbytes(), 8u);
  EXPECT_EQ(s->at<double>(), 2.5);
  EXPECT_FALSE(s->slice(0, 1).ok());
}

TEST(Tensor, SizeOneDimsDoNotBreakContiguity) {
  float buf[6] = {};
  const int64_t strides[] = {999, 3, 1};
  auto x = TensorView::make_strided(buf, DType::F32, {1, 2, 3}, strides);
  ASSERT_TRUE(x.ok());
  EXPECT_TRUE(x->is_contiguous());
}

TEST(Tensor, SubByteViewsMustBeContiguous) {
  uint8_t packed[8] = {};
  // q: (3, 5) int4 -> 15 elements in 8 bytes
  auto q = TensorView::make(packed, DType::I4, {3, 5});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->nbytes(), 8u);
  auto t = q->transpose(0, 1);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), ErrorCode::kUnsupported);
  const int64_t strides[] = {1, 3};
  EXPECT_FALSE(TensorView::make_strided(packed, DType::I4, {3, 5}, strides).ok());
  // Row 1 of a 5-wide int4 matrix starts at bit 20: not addressable.
  auto odd = q->slice(1, 2);
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message().find("bit 20"), std::string::npos);

  // q4: (3, 4) int4, two bytes per row
  auto q4 = *TensorView::make(packed, DType::U4, {3, 4});
  auto rows = q4.slice(1, 3);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->data(), packed + 2);
  EXPECT_EQ(rows->nbytes(), 4u);
  EXPECT_EQ(q4.row<uint8_t>(2), packed + 4);
  // F6: 4 elements per 3 bytes.
  auto f6 = *TensorView::make(packed, DType::F6_E2M3, {2, 4});
  EXPECT_EQ(f6.nbytes(), 6u);
  EXPECT_EQ(f6.slice(1, 2)->data(), packed + 3);
}

TEST(Tensor, FromBytesRequiresTheExactSize) {
  std::vector<std::byte> bytes(12);
  auto ok = TensorView::from_bytes(std::span<std::byte>(bytes), DType::BF16, {2, 3});
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->writable());
  auto ro = TensorView::from_bytes(std::span<const std::byte>(bytes), DType::BF16, {2, 3});
  ASSERT_TRUE(ro.ok());
  EXPECT_FALSE(ro->writable());
  auto short_buffer = TensorView::from_bytes(std::span<std::byte>(bytes), DType::F32, {2, 3});
  ASSERT_FALSE(short_buffer.ok());
  EXPECT_NE(short_buffer.error().message().find("12 bytes given"), std::string::npos);
  EXPECT_NE(short_buffer.error().message().find("exactly 24 bytes"), std::string::npos);
}

TEST(Tensor, StridedViewsAreValidated) {
  float buf[4] = {};
  const int64_t huge[] = {int64_t{1} << 40, 1};
  auto overflow = TensorView::make_strided(buf, DType::F32, {int64_t{1} << 31, 2}, huge);
  ASSERT_FALSE(overflow.ok());
  const int64_t negative[] = {-2, 1};
  EXPECT_FALSE(TensorView::make_strided(buf, DType::F32, {2, 2}, negative).ok());
  const int64_t one[] = {1};
  EXPECT_FALSE(TensorView::make_strided(buf, DType::F32, {2, 2}, one).ok());
  EXPECT_FALSE(TensorView::make(static_cast<void*>(nullptr), DType::F32, {2}).ok());
  EXPECT_TRUE(TensorView::make(static_cast<void*>(nullptr), DType::F32, {0, 3}).ok());
  // Broadcast (stride 0) is allowed.
  const int64_t broadcast[] = {0, 1};
  auto b = TensorView::make_strided(buf, DType::F32, {3, 4}, broadcast);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->is_contiguous());
}

TEST(Tensor, ReadOnlyViewsRefuseMutableAccess) {
  const float buf[3] = {1, 2, 3};
  auto x = TensorView::make(static_cast<const void*>(buf), DType::F32, {3});
  ASSERT_TRUE(x.ok());
  EXPECT_FALSE(x->writable());
  EXPECT_EQ(x->data_as<const float>()[2], 3.0f);
  EXPECT_EQ(x->bytes().size(), 12u);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(x->data_as<float>(), "read-only");
  EXPECT_DEATH(x->data_as<const double>(), "size does not match");
}

TEST(Tensor, EmptyAndZerosAreAlignedAndOwned) {
  auto t = Tensor::zeros(DType::BF16, {3, 5});
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->defined());
  EXPECT_EQ(t->nbytes(), 30u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % Tensor::kAlignment, 0u);
  const auto* p = t->data_as<const uint16_t>();
  for (int i = 0; i < 15; ++i) EXPECT_EQ(p[i], 0);

  auto none = Tensor::empty(DType::F32, {0, 4});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->nbytes(), 0u);
  EXPECT_NE(none->data(), nullptr);

  // 2^62 f64 elements need 2^65 bytes: rejected before allocating.
  auto huge = Tensor::empty(DType::F64, {int64_t{1} << 40, int64_t{1} << 22});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().to_string().find("Tensor::empty"), std::string::npos);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, CopiesShareStorageAndCloneDoesNot) {
  auto a = *Tensor::zeros(DType::F32, {4});
  Tensor b = a;
  EXPECT_EQ(a.storage().use_count(), 2);
  b.data_as<float>()[1] = 5.0f;
  EXPECT_EQ(a.data_as<const float>()[1], 5.0f);
  auto c = a.clone();
  ASSERT_TRUE(c.ok());
  c->data_as<float>()[1] = 7.0f;
  EXPECT_EQ(a.data_as<const float>()[1], 5.0f);
  EXPECT_NE(c->data(), a.data());

  auto rows = a.reshape({2, 2});
  ASSERT_TRUE(rows.ok());
  auto second = rows->slice(1, 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->data(), a.data_as<const float>() + 2);
  EXPECT_EQ(a.storage().use_count(), 4);
}

TEST(Tensor, AdoptKeepsExternalStorageAlive) {
  auto owner = std::make_shared<std::vector<float>>(iota_floats(6));
  std::weak_ptr<std::vector<float>> watch = owner;
  auto bytes = std::as_writable_bytes(std::span<float>(*owner));
  auto t = Tensor::adopt(owner, bytes, DType::F32, {2, 3});
  ASSERT_TRUE(t.ok());
  owner.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(t->view().at<float>(1, 2), 5.0f);
  EXPECT_TRUE(t->writable());
  *t = Tensor();
  EXPECT_TRUE(watch.expired());

  auto data = std::make_shared<std::vector<std::byte>>(8);
  auto ro = Tensor::adopt(data, std::span<const std::byte>(*data), DType::U8, {8});
  ASSERT_TRUE(ro.ok());
  EXPECT_FALSE(ro->writable());
  auto wrong = Tensor::adopt(data, std::span<const std::byte>(*data), DType::U8, {9});
  EXPECT_FALSE(wrong.ok());
  auto no_owner = Tensor::adopt(nullptr, std::span<const std::byte>(*data), DType::U8, {8});
  EXPECT_FALSE(no_owner.ok());
}

}  // namespace
}  // namespace qforge

// Shape validation and formatting, TensorView offset checks and view ops, Tensor storage.
#include "qforge/core/tensor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qforge {
namespace {

std::string join_dims(std::span<const int64_t> dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(dims[i]);
  }
  out += "]";
  return out;
}

// Row-major strides; extents of 0 count as 1 so strides stay non-zero (the Shape invariant
// guarantees the product fits).
std::array<int64_t, kMaxDims> contiguous_strides(const Shape& shape) {
  std::array<int64_t, kMaxDims> strides{};
  int64_t step = 1;
  for (int i = shape.ndim() - 1; i >= 0; --i) {
    strides[i] = step;
    step *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

[[noreturn]] void access_failure(const char* what, const TensorView& view) {
  std::fprintf(stderr, "qforge: internal check failed: TensorView %s: %s\n",
               view.to_string().c_str(), what);
  std::abort();
}

}  // namespace

// ---- Shape ----

Shape::Shape(std::initializer_list<int64_t> dims) {
  auto shape = from(std::span<const int64_t>(dims.begin(), dims.size()));
  if (!shape.ok()) {
    std::fprintf(stderr, "qforge: internal check failed: invalid Shape literal: %s\n",
                 shape.error().to_string().c_str());
    std::abort();
  }
  *this = *shape;
}

Result<Shape> Shape::from(std::span<const int64_t> dims) {
  if (dims.size() > static_cast<size_t>(kMaxDims)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Shape: {} has {} dims but at most {} are supported", join_dims(dims),
                      dims.size(), kMaxDims);
  }
  int64_t product = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "Shape: dim {} in {} is negative (expected >= 0; corrupt shape field?)", d,
                        join_dims(dims));
    }
    if (__builtin_mul_overflow(product, std::max<int64_t>(d, 1), &product)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "Shape: {} has more than 2^63 elements (corrupt shape field?)",
                        join_dims(dims));
    }
  }
  Shape shape;
  shape.ndim_ = static_cast<int>(dims.size());
  std::copy(dims.begin(), dims.end(), shape.dims_.begin());
  return shape;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::to_string() const {
  return join_dims(dims());
}

// ---- TensorView: construction ----

Result<TensorView> TensorView::make_impl(void* data, bool writable, DType dtype, const Shape& shape,
                                         std::span<const int64_t> strides) {
  if (dtype_bits(dtype) == 0) {
    return make_error(ErrorCode::kInvalidArgument, "TensorView: invalid dtype value {}",
                      static_cast<int>(dtype));
  }
  if (strides.size() != static_cast<size_t>(shape.ndim())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView: {} strides {} for shape {} (expected one stride per dim)",
                      strides.size(), join_dims(strides), shape);
  }
  const int64_t numel = shape.numel();
  if (numel > 0) {
    // The largest element offset must fit, in elements and in bytes, so that every access
    // inside the shape is overflow-free.
    int64_t max_offset = 0;
    for (int i = 0; i < shape.ndim(); ++i) {
      int64_t term = 0;
      if (strides[i] < 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "TensorView: stride {} in {} is negative (expected >= 0)", strides[i],
                          join_dims(strides));
      }
      if (__builtin_mul_overflow(shape[i] - 1, strides[i], &term) ||
          __builtin_add_overflow(max_offset, term, &max_offset)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "TensorView: shape {} with strides {} addresses beyond 2^63 elements",
                          shape, join_dims(strides));
      }
    }
    for (int64_t count : {max_offset, numel}) {
      auto bytes = dtype_storage_bytes(dtype, count);
      if (!bytes.ok()) return std::move(bytes).context("TensorView").error();
    }
    if (data == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "TensorView: null data for {}{} ({} elements)",
                        dtype, shape, numel);
    }
  }
  TensorView view;
  view.data_ = data;
  view.shape_ = shape;
  std::copy(strides.begin(), strides.end(), view.strides_.begin());
  view.dtype_ = dtype;
  view.writable_ = writable;
  if (dtype_is_sub_byte(dtype) && !view.is_contiguous()) {
    return make_error(ErrorCode::kUnsupported,
                      "TensorView: {}{} with strides {} is not contiguous, but sub-byte dtype {} "
                      "elements are packed and cannot be strided (make a contiguous copy at a "
                      "wider dtype first)",
                      dtype, shape, join_dims(strides), dtype);
  }
  return view;
}

Result<TensorView> TensorView::make(void* data, DType dtype, const Shape& shape) {
  const auto strides = contiguous_strides(shape);
  return make_impl(data, true, dtype, shape, {strides.data(), static_cast<size_t>(shape.ndim())});
}

Result<TensorView> TensorView::make(const void* data, DType dtype, const Shape& shape) {
  const auto strides = contiguous_strides(shape);
  return make_impl(const_cast<void*>(data), false, dtype, shape,
                   {strides.data(), static_cast<size_t>(shape.ndim())});
}

Result<TensorView> TensorView::make_strided(void* data, DType dtype, const Shape& shape,
                                            std::span<const int64_t> strides) {
  return make_impl(data, true, dtype, shape, strides);
}

Result<TensorView> TensorView::make_strided(const void* data, DType dtype, const Shape& shape,
                                            std::span<const int64_t> strides) {
  return make_impl(const_cast<void*>(data), false, dtype, shape, strides);
}

Result<TensorView> TensorView::from_bytes(std::span<std::byte> bytes, DType dtype,
                                          const Shape& shape) {
  QF_ASSIGN_OR_RETURN(TensorView view, from_bytes(std::span<const std::byte>(bytes), dtype, shape));
  view.writable_ = true;
  return view;
}

Result<TensorView> TensorView::from_bytes(std::span<const std::byte> bytes, DType dtype,
                                          const Shape& shape) {
  QF_ASSIGN_OR_RETURN(uint64_t need,
                      dtype_storage_bytes(dtype, shape.numel()).context("TensorView::from_bytes"));
  if (bytes.size() != need) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::from_bytes: {} bytes given but {}{} needs exactly {} bytes "
                      "(wrong dtype or shape, or a truncated buffer?)",
                      bytes.size(), dtype, shape, need);
  }
  return make(static_cast<const void*>(bytes.data()), dtype, shape);
}

// ---- TensorView: queries and access ----

uint64_t TensorView::nbytes() const {
  // Cannot fail: make_impl checked this product.
  return dtype_storage_bytes(dtype_, numel()).value_or(0);
}

bool TensorView::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;  // the stride of a size-1 dim is never used
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

std::span<const std::byte> TensorView::bytes() const {
  if (!is_contiguous()) access_failure("bytes() of a non-contiguous view", *this);
  return {static_cast<const std::byte*>(data_), static_cast<size_t>(nbytes())};
}

std::span<std::byte> TensorView::mutable_bytes() const {
  if (!writable_) access_failure("mutable_bytes() of a read-only view", *this);
  if (!is_contiguous()) access_failure("mutable_bytes() of a non-contiguous view", *this);
  return {static_cast<std::byte*>(data_), static_cast<size_t>(nbytes())};
}

void TensorView::check_access(size_t elem_size, size_t alignment, bool mutating) const {
  if (mutating && !writable_) {
    access_failure("mutable access to a read-only view (clone it into a Tensor first)", *this);
  }
  const size_t expected = dtype_is_sub_byte(dtype_) ? 1 : static_cast<size_t>(dtype_size(dtype_));
  if (elem_size != expected) access_failure("element type size does not match the dtype", *this);
  if (!is_aligned(alignment)) {
    access_failure("data is not aligned for the element type (copy it to a Tensor)", *this);
  }
}

int64_t TensorView::row_numel() const {
  int64_t n = 1;
  for (int i = 1; i < ndim(); ++i) n *= shape_[i];
  return n;
}

void* TensorView::offset_address(int64_t element_offset) const {
  auto* base = static_cast<std::byte*>(data_);
  if (dtype_is_sub_byte(dtype_)) {
    const int64_t bit = element_offset * dtype_bits(dtype_);
    if (bit % 8 != 0) access_failure("sub-byte element offset is not on a byte boundary", *this);
    return base + bit / 8;
  }
  return base + element_offset * dtype_size(dtype_);
}

void* TensorView::row_address(int64_t i) const {
  if (ndim() < 1) access_failure("row() of a 0-d view", *this);
  if (i < 0 || i >= shape_[0]) access_failure("row index out of range", *this);
  return offset_address(i * strides_[0]);
}

void* TensorView::element_address(std::span<const int64_t> index) const {
  if (index.size() != static_cast<size_t>(ndim())) {
    access_failure("at() needs one index per dim", *this);
  }
  if (dtype_is_sub_byte(dtype_)) access_failure("at() on a sub-byte dtype", *this);
  int64_t offset = 0;
  for (int i = 0; i < ndim(); ++i) {
    if (index[i] < 0 || index[i] >= shape_[i]) access_failure("at() index out of range", *this);
    offset += index[i] * strides_[i];
  }
  return offset_address(offset);
}

// ---- TensorView: view ops ----

Result<TensorView> TensorView::reshape(const Shape& shape) const {
  if (!is_contiguous()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::reshape: {} is not contiguous (copy it with "
                      "Tensor::copy_of first)",
                      to_string());
  }
  if (shape.numel() != numel()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::reshape: cannot reshape {} ({} elements) to {} ({} elements)",
                      to_string(), numel(), shape, shape.numel());
  }
  const auto strides = contiguous_strides(shape);
  return make_impl(data_, writable_, dtype_, shape,
                   {strides.data(), static_cast<size_t>(shape.ndim())});
}

Result<TensorView> TensorView::slice(int64_t begin, int64_t end) const {
  if (ndim() < 1) {
    return make_error(ErrorCode::kInvalidArgument, "TensorView::slice: {} is 0-d (no dim 0)",
                      to_string());
  }
  if (begin < 0 || begin > end || end > shape_[0]) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::slice: rows [{}, {}) of {} (expected 0 <= begin <= end <= {})",
                      begin, end, to_string(), shape_[0]);
  }
  const int64_t offset = begin * strides_[0];
  if (dtype_is_sub_byte(dtype_) && (offset * dtype_bits(dtype_)) % 8 != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "TensorView::slice: rows [{}, {}) of {} start at bit {} of a packed "
                      "sub-byte tensor, not on a byte boundary (slice at even rows or use an "
                      "even row length)",
                      begin, end, to_string(), offset * dtype_bits(dtype_));
  }
  std::array<int64_t, kMaxDims> dims{};
  std::copy(shape_.begin(), shape_.end(), dims.begin());
  dims[0] = end - begin;
  QF_ASSIGN_OR_RETURN(Shape shape, Shape::from({dims.data(), static_cast<size_t>(ndim())}));
  void* data = begin < shape_[0] ? offset_address(offset) : data_;
  return make_impl(data, writable_, dtype_, shape, strides());
}

Result<TensorView> TensorView::select(int64_t i) const {
  if (ndim() < 1 || i < 0 || i >= shape_[0]) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::select: row {} of {} (expected 0 <= row < dim 0)", i,
                      to_string());
  }
  QF_ASSIGN_OR_RETURN(TensorView rows, slice(i, i + 1));
  QF_ASSIGN_OR_RETURN(Shape shape, Shape::from(shape_.dims().subspan(1)));
  return make_impl(rows.data_, writable_, dtype_, shape, strides().subspan(1));
}

Result<TensorView> TensorView::transpose(int dim_a, int dim_b) const {
  if (dim_a < 0 || dim_a >= ndim() || dim_b < 0 || dim_b >= ndim()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "TensorView::transpose: dims ({}, {}) of {} (expected 0 <= dim < {})", dim_a,
                      dim_b, to_string(), ndim());
  }
  std::array<int64_t, kMaxDims> dims{};
  std::copy(shape_.begin(), shape_.end(), dims.begin());
  std::array<int64_t, kMaxDims> strides = strides_;
  std::swap(dims[dim_a], dims[dim_b]);
  std::swap(strides[dim_a], strides[dim_b]);
  QF_ASSIGN_OR_RETURN(Shape shape, Shape::from({dims.data(), static_cast<size_t>(ndim())}));
  return make_impl(data_, writable_, dtype_, shape, {strides.data(), static_cast<size_t>(ndim())});
}

std::string TensorView::to_string() const {
  std::string out = fmt::format("{}{}", dtype_, shape_);
  if (!is_contiguous()) out += " strides " + join_dims(strides());
  return out;
}

// ---- Tensor ----

Result<Tensor> Tensor::empty(DType dtype, const Shape& shape) {
  QF_ASSIGN_OR_RETURN(uint64_t bytes,
                      dtype_storage_bytes(dtype, shape.numel()).context("Tensor::empty"));
  // aligned_alloc wants a multiple of the alignment; never allocate 0 bytes so data() is
  // non-null even for empty tensors (memcpy/memset with null is undefined).
  if (bytes > UINT64_MAX - kAlignment) {
    return make_error(ErrorCode::kInvalidArgument, "Tensor::empty: {}{} needs {} bytes", dtype,
                      shape, bytes);
  }
  const uint64_t alloc =
      std::max<uint64_t>((bytes + kAlignment - 1) / kAlignment * kAlignment, kAlignment);
  void* ptr = std::aligned_alloc(kAlignment, alloc);
  if (ptr == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Tensor::empty: cannot allocate {} bytes for {}{} (out of memory; is the "
                      "shape right?)",
                      alloc, dtype, shape);
  }
  std::shared_ptr<const void> storage(ptr, [](const void* p) { std::free(const_cast<void*>(p)); });
  QF_ASSIGN_OR_RETURN(TensorView view, TensorView::make(ptr, dtype, shape));
  return Tensor(std::move(storage), view);
}

Result<Tensor> Tensor::zeros(DType dtype, const Shape& shape) {
  QF_ASSIGN_OR_RETURN(Tensor t, empty(dtype, shape));
  std::memset(t.view_.mutable_data(), 0, t.nbytes());
  return t;
}

Result<Tensor> Tensor::adopt(std::shared_ptr<const void> keep_alive, std::span<std::byte> bytes,
                             DType dtype, const Shape& shape) {
  if (keep_alive == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Tensor::adopt: keep_alive is null (pass the owner of the bytes, e.g. a "
                      "shared_ptr<MmapFile>)");
  }
  QF_ASSIGN_OR_RETURN(TensorView view, TensorView::from_bytes(bytes, dtype, shape));
  return Tensor(std::move(keep_alive), view);
}

Result<Tensor> Tensor::adopt(std::shared_ptr<const void> keep_alive,
                             std::span<const std::byte> bytes, DType dtype, const Shape& shape) {
  if (keep_alive == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Tensor::adopt: keep_alive is null (pass the owner of the bytes, e.g. a "
                      "shared_ptr<MmapFile>)");
  }
  QF_ASSIGN_OR_RETURN(TensorView view, TensorView::from_bytes(bytes, dtype, shape));
  return Tensor(std::move(keep_alive), view);
}

Result<Tensor> Tensor::copy_of(const TensorView& view) {
  if (view.data() == nullptr && view.numel() > 0) {
    return make_error(ErrorCode::kInvalidArgument, "Tensor::copy_of: the view is null");
  }
  QF_ASSIGN_OR_RETURN(Tensor out, empty(view.dtype(), view.shape()));
  if (view.numel() == 0) return out;
  auto* dst = static_cast<std::byte*>(out.view_.mutable_data());
  if (view.is_contiguous()) {
    std::memcpy(dst, view.data(), view.nbytes());
    return out;
  }
  // Gather a strided view element by element (sub-byte views are always contiguous).
  const auto elem = static_cast<size_t>(dtype_size(view.dtype()));
  const auto* src = static_cast<const std::byte*>(view.data());
  std::array<int64_t, kMaxDims> index{};
  const int nd = view.ndim();
  for (int64_t n = 0; n < view.numel(); ++n) {
    int64_t offset = 0;
    for (int i = 0; i < nd; ++i) offset += index[i] * view.stride(i);
    std::memcpy(dst + n * elem, src + offset * static_cast<int64_t>(elem), elem);
    for (int i = nd - 1; i >= 0; --i) {
      if (++index[i] < view.dim(i)) break;
      index[i] = 0;
    }
  }
  return out;
}

Result<Tensor> Tensor::reshape(const Shape& shape) const {
  QF_ASSIGN_OR_RETURN(TensorView v, view_.reshape(shape));
  return Tensor(storage_, v);
}

Result<Tensor> Tensor::slice(int64_t begin, int64_t end) const {
  QF_ASSIGN_OR_RETURN(TensorView v, view_.slice(begin, end));
  return Tensor(storage_, v);
}

}  // namespace qforge

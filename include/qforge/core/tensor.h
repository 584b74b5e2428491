// Shape, TensorView (non-owning, strided, up to 8 dims stored inline) and Tensor (owning,
// shared storage: 64-byte aligned heap memory or adopted external memory such as an mmap).
// Shapes and strides count elements, row-major: `// w: (N, K) row-major` has strides (K, 1).
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "qforge/core/dtype.h"
#include "qforge/core/error.h"

namespace qforge {

inline constexpr int kMaxDims = 8;

// Up to kMaxDims extents, stored inline. Invariant: every extent is >= 0 and the product of
// max(extent, 1) fits in int64_t, so numel() and contiguous strides never overflow.
class Shape {
 public:
  Shape() = default;  // 0-d: a scalar, numel() == 1
  // For shapes written in code; violating the invariant here is a programming error (QF_CHECK).
  Shape(std::initializer_list<int64_t> dims);  // NOLINT(google-explicit-constructor)
  // For shapes read from files or users: checks the rank, signs and overflow.
  static Result<Shape> from(std::span<const int64_t> dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const {
    QF_CHECK(i >= 0 && i < ndim_);
    return dims_[i];
  }
  std::span<const int64_t> dims() const { return {dims_.data(), static_cast<size_t>(ndim_)}; }
  auto begin() const { return dims().begin(); }
  auto end() const { return dims().end(); }
  int64_t numel() const;

  // "[4096, 11008]"; a scalar is "[]".
  std::string to_string() const;

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.ndim_ != b.ndim_) return false;
    for (int i = 0; i < a.ndim_; ++i) {
      if (a.dims_[i] != b.dims_[i]) return false;
    }
    return true;
  }

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

// A non-owning window onto tensor memory: pointer, dtype, shape and strides (in elements).
// Copying is cheap (no heap). A view is read-only when made from const memory (e.g. an mmap);
// asking it for a mutable pointer is a programming error. Sub-byte dtypes must be contiguous and
// can only be sliced at byte boundaries. Offsets are checked when a view is made, so element
// access within the shape never overflows.
class TensorView {
 public:
  TensorView() = default;  // null 0-d view; data() == nullptr

  // Contiguous row-major views.
  static Result<TensorView> make(void* data, DType dtype, const Shape& shape);
  static Result<TensorView> make(const void* data, DType dtype, const Shape& shape);
  // Contiguous view of exactly `bytes` (fails unless bytes.size() equals the storage size).
  static Result<TensorView> from_bytes(std::span<std::byte> bytes, DType dtype, const Shape& shape);
  static Result<TensorView> from_bytes(std::span<const std::byte> bytes, DType dtype,
                                       const Shape& shape);
  // Arbitrary non-negative strides (in elements); sub-byte dtypes must pass contiguous strides.
  static Result<TensorView> make_strided(void* data, DType dtype, const Shape& shape,
                                         std::span<const int64_t> strides);
  static Result<TensorView> make_strided(const void* data, DType dtype, const Shape& shape,
                                         std::span<const int64_t> strides);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t stride(int i) const {
    QF_CHECK(i >= 0 && i < ndim());
    return strides_[i];
  }
  std::span<const int64_t> strides() const {
    return {strides_.data(), static_cast<size_t>(ndim())};
  }
  int64_t numel() const { return shape_.numel(); }
  // Bytes of the viewed elements: ceil(numel * bits / 8). For a contiguous view, the size of the
  // memory it covers.
  uint64_t nbytes() const;
  bool is_contiguous() const;
  bool writable() const { return writable_; }
  bool is_aligned(size_t alignment) const {
    return reinterpret_cast<uintptr_t>(data_) % alignment == 0;
  }

  const void* data() const { return data_; }
  void* mutable_data() const {
    QF_CHECK(writable_);  // a read-only (e.g. mmap'd) view: clone it into a Tensor first
    return data_;
  }
  // Typed pointer. T must match the element size (one byte for sub-byte dtypes) and alignment;
  // a non-const T requires a writable view.
  template <typename T>
  T* data_as() const {
    check_access(sizeof(T), alignof(T), !std::is_const_v<T>);
    return static_cast<T*>(data_);
  }
  // The memory of a contiguous view as bytes (programming error if not contiguous).
  std::span<const std::byte> bytes() const;
  std::span<std::byte> mutable_bytes() const;

  // Row i along dim 0 (for a (N, K) matrix, the K elements of row i). Requires ndim >= 1,
  // 0 <= i < dim(0), and for sub-byte dtypes a row that starts on a byte boundary.
  template <typename T>
  T* row(int64_t i) const {
    check_access(sizeof(T), alignof(T), !std::is_const_v<T>);
    return static_cast<T*>(row_address(i));
  }
  // Elements per row: the product of dims 1..ndim-1 (1 for a 1-D view).
  int64_t row_numel() const;

  // Element at a full index (byte-sized dtypes; bounds are QF_CHECKed).
  template <typename T, typename... Index>
  T& at(Index... index) const {
    static_assert(sizeof...(Index) <= kMaxDims);
    check_access(sizeof(T), alignof(T), !std::is_const_v<T>);
    const std::array<int64_t, sizeof...(Index)> idx = {static_cast<int64_t>(index)...};
    return *static_cast<T*>(element_address(idx));
  }

  // Same elements, new shape (same numel); contiguous views only.
  Result<TensorView> reshape(const Shape& shape) const;
  // Rows [begin, end) along dim 0; shares memory.
  Result<TensorView> slice(int64_t begin, int64_t end) const;
  // Row i along dim 0 as an (ndim - 1)-D view.
  Result<TensorView> select(int64_t i) const;
  // Swaps two dims (strides follow; the result is usually not contiguous).
  Result<TensorView> transpose(int dim_a, int dim_b) const;
  TensorView as_read_only() const {
    TensorView v = *this;
    v.writable_ = false;
    return v;
  }

  // "bf16[4096, 11008]", plus " strides [1, 4096]" when not contiguous.
  std::string to_string() const;

 private:
  static Result<TensorView> make_impl(void* data, bool writable, DType dtype, const Shape& shape,
                                      std::span<const int64_t> strides);
  void check_access(size_t elem_size, size_t alignment, bool mutating) const;
  void* row_address(int64_t i) const;
  void* element_address(std::span<const int64_t> index) const;
  // Address of the element at a linear element offset (byte-aligned for sub-byte dtypes).
  void* offset_address(int64_t element_offset) const;

  void* data_ = nullptr;
  Shape shape_;
  std::array<int64_t, kMaxDims> strides_{};
  DType dtype_ = DType::F32;
  bool writable_ = false;
};

// An owning tensor: shared storage plus a contiguous view of it. Copies share the storage
// (like a shared_ptr); clone() copies the bytes. Storage is either 64-byte aligned heap memory
// (empty/zeros) or adopted memory kept alive by a shared_ptr (an mmap region, a pool block).
class Tensor {
 public:
  static constexpr size_t kAlignment = 64;

  Tensor() = default;  // undefined: defined() == false

  // Uninitialized storage.
  static Result<Tensor> empty(DType dtype, const Shape& shape);
  static Result<Tensor> zeros(DType dtype, const Shape& shape);
  // Adopts `bytes` (exact size for dtype x shape); keep_alive owns them, e.g. a
  // shared_ptr<MmapFile>. Const bytes give a read-only tensor.
  static Result<Tensor> adopt(std::shared_ptr<const void> keep_alive, std::span<std::byte> bytes,
                              DType dtype, const Shape& shape);
  static Result<Tensor> adopt(std::shared_ptr<const void> keep_alive,
                              std::span<const std::byte> bytes, DType dtype, const Shape& shape);
  // A contiguous, writable, aligned copy of any view (strided views are gathered).
  static Result<Tensor> copy_of(const TensorView& view);

  bool defined() const { return storage_ != nullptr; }
  const TensorView& view() const { return view_; }
  DType dtype() const { return view_.dtype(); }
  const Shape& shape() const { return view_.shape(); }
  int ndim() const { return view_.ndim(); }
  int64_t dim(int i) const { return view_.dim(i); }
  int64_t numel() const { return view_.numel(); }
  uint64_t nbytes() const { return view_.nbytes(); }
  bool writable() const { return view_.writable(); }
  const void* data() const { return view_.data(); }
  void* mutable_data() const { return view_.mutable_data(); }
  template <typename T>
  T* data_as() const {
    return view_.template data_as<T>();
  }
  const std::shared_ptr<const void>& storage() const { return storage_; }

  Result<Tensor> clone() const { return copy_of(view_); }
  // Same storage, new shape / fewer rows.
  Result<Tensor> reshape(const Shape& shape) const;
  Result<Tensor> slice(int64_t begin, int64_t end) const;

 private:
  Tensor(std::shared_ptr<const void> storage, TensorView view)
      : storage_(std::move(storage)), view_(view) {}

  std::shared_ptr<const void> storage_;
  TensorView view_;
};

}  // namespace qforge

template <>
struct fmt::formatter<qforge::Shape> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const qforge::Shape& shape, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(shape.to_string(), ctx);
  }
};

template <>
struct fmt::formatter<qforge::TensorView> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const qforge::TensorView& view, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(view.to_string(), ctx);
  }
};

// GPTQ (Frantar et al. 2022) for one linear layer: the reference gptq.py `fasterquant` (upper
// Cholesky factor of H^-1, lazy batch updates of `block_size` columns, one GEMM per batch) and
// its plain O(cols^3) OBS form as the test oracle; both write qforge layouts via GroupQuantizer.
#include "qforge/quant/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <utility>

#include "qforge/core/parallel.h"

#include "quant/group_quantizer.h"

// LAPACK (OpenBLAS): Cholesky factorization and triangular inverse, column-major.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda,
             int* info);
}

namespace qforge {

namespace {

// Widest layer input a Hessian may describe: [65536, 65536] FP64 is already 32 GiB, and every
// BLAS/LAPACK index stays far inside int.
constexpr int64_t kMaxHessianCols = 65536;

}  // namespace

GptqHessian::GptqHessian(int64_t cols) : cols_(cols) {
  QF_CHECK(cols > 0 && cols <= kMaxHessianCols);
  h_.assign(static_cast<size_t>(cols * cols), 0.0);
}

Result<GptqHessian> GptqHessian::from_matrix(int64_t cols, std::vector<double> matrix,
                                             int64_t n_samples) {
  if (cols <= 0 || cols > kMaxHessianCols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GptqHessian::from_matrix: cols={} is out of range (expected 1..{})", cols,
                      kMaxHessianCols);
  }
  if (static_cast<int64_t>(matrix.size()) != cols * cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GptqHessian::from_matrix: matrix has {} values but [cols={}, cols] needs {}",
                      matrix.size(), cols, cols * cols);
  }
  if (n_samples < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "GptqHessian::from_matrix: n_samples={} is negative", n_samples);
  }
  GptqHessian h(cols);
  h.h_ = std::move(matrix);
  h.n_samples_ = n_samples;
  return h;
}

void GptqHessian::add(const float* x, int64_t n_rows) {
  QF_CHECK(n_rows >= 0 && (x != nullptr || n_rows == 0));
  if (n_rows == 0) return;
  // Running mean as in the reference add_batch: H *= n / (n + m); H += 2/(n + m) * XᵀX.
  const double keep = static_cast<double>(n_samples_) / static_cast<double>(n_samples_ + n_rows);
  for (double& v : h_) v *= keep;
  n_samples_ += n_rows;
  const double alpha = 2.0 / static_cast<double>(n_samples_);
  // Chunks of rows widened to FP64, each a rank-k update of the upper triangle.
  constexpr int64_t kChunkRows = 256;
  const int n = static_cast<int>(cols_);
  std::vector<double> xd(static_cast<size_t>(std::min(n_rows, kChunkRows) * cols_));
  for (int64_t r0 = 0; r0 < n_rows; r0 += kChunkRows) {
    const int64_t m = std::min(kChunkRows, n_rows - r0);
    std::copy(x + r0 * cols_, x + (r0 + m) * cols_, xd.begin());
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, n, static_cast<int>(m), alpha, xd.data(), n,
                1.0, h_.data(), n);
  }
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = 0; j < i; ++j) h_[i * cols_ + j] = h_[j * cols_ + i];
  }
}

namespace {

namespace qi = quant_internal;

// What both variants run on once the inputs are checked.
struct GptqProblem {
  explicit GptqProblem(qi::GroupQuantizer q) : quant(std::move(q)) {}

  qi::GroupQuantizer quant;
  const char* fn = "";
  int64_t rows = 0;
  int64_t cols = 0;
  double percdamp = 0;
  bool static_groups = false;
  qi::ScaleSearch search;
  // [cols] diag(H) by original column: the weights of the scale search's squared errors.
  std::vector<float> importance;
  std::vector<int64_t> perm;  // [cols]: perm[k] = the original column quantized k-th
  // [cols, rows]: wt[k * rows + r] = W[r, perm[k]], transposed so that a column is contiguous
  // (GPTQ works column by column); dead columns zeroed.
  std::vector<double> wt;
  // [cols, cols] row-major: H with dead diagonals set to 1, permuted, dampened.
  std::vector<double> h;
};

const char* non_finite_name(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

Error not_positive_definite(const GptqProblem& p, int64_t minor) {
  return make_error(ErrorCode::kInvalidArgument,
                    "{}: the Hessian of this [rows={}, cols={}] layer is not positive definite "
                    "after dampening (percdamp={}; a principal minor of order {} is not "
                    "positive); raise GptqOptions::percdamp (e.g. 0.1) or calibrate on more rows",
                    p.fn, p.rows, p.cols, p.percdamp, minor);
}

Result<GptqProblem> prepare(const char* fn, const float* w, int64_t rows, int64_t cols,
                            const GptqHessian& hessian, const QuantSpec& spec,
                            const GptqOptions& options) {
  if (w == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "{}: weight pointer is null", fn);
  QF_ASSIGN_OR_RETURN(qi::GroupQuantizer quant, qi::GroupQuantizer::create(fn, spec, rows, cols));
  if (hessian.cols() != cols) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: the Hessian is [{}, {}] but the weight [rows={}, cols={}] needs "
                      "[{}, {}] (one row and column per input feature)",
                      fn, hessian.cols(), hessian.cols(), rows, cols, cols, cols);
  }
  if (hessian.n_samples() <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: the Hessian holds no calibration rows (call GptqHessian::add first)",
                      fn);
  }
  if (!(options.percdamp >= 0.0) || !std::isfinite(options.percdamp)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: percdamp={} is invalid (expected a finite value >= 0, default 0.01)", fn,
                      options.percdamp);
  }
  if (options.scale_search_grid < 0 || options.scale_search_grid > 1000 ||
      !(options.scale_search_max_shrink >= 0.0 && options.scale_search_max_shrink < 1.0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: scale search grid={} / max_shrink={} is invalid (expected a grid in "
                      "[0, 1000] and a max_shrink in [0, 1))",
                      fn, options.scale_search_grid, options.scale_search_max_shrink);
  }
  if (options.block_size < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: block_size={} is invalid (expected >= 1, default 128)", fn,
                      options.block_size);
  }
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(w[i])) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: weight element (row {}, col {}) is {}; the checkpoint holds "
                        "non-finite weights",
                        fn, i / cols, i % cols, non_finite_name(w[i]));
    }
  }
  // Only the upper triangle is read (the matrix is symmetric by construction).
  const std::vector<double>& hm = hessian.matrix();
  std::vector<double> h(hm.size());
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = i; j < cols; ++j) {
      const double v = hm[i * cols + j];
      if (!std::isfinite(v)) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: Hessian entry ({}, {}) is {}; the calibration inputs held "
                          "non-finite activations",
                          fn, i, j, non_finite_name(v));
      }
      h[i * cols + j] = v;
      h[j * cols + i] = v;
    }
  }

  GptqProblem p(std::move(quant));
  p.fn = fn;
  p.rows = rows;
  p.cols = cols;
  p.percdamp = options.percdamp;
  p.static_groups = options.act_order;
  p.search.grid = options.scale_search_grid;
  p.search.max_shrink = options.scale_search_max_shrink;
  // Dead inputs (never active in calibration) carry no information: H[i,i] = 1, W[:, i] = 0.
  std::vector<bool> dead(static_cast<size_t>(cols));
  p.importance.resize(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i) {
    dead[i] = h[i * cols + i] == 0.0;
    if (dead[i]) h[i * cols + i] = 1.0;
    p.importance[i] = static_cast<float>(h[i * cols + i]);
  }
  const auto weight = [&](int64_t r, int64_t c) { return dead[c] ? 0.0f : w[r * cols + c]; };
  if (p.static_groups) {
    // AutoGPTQ static_groups: every group's scale from the original (dead-zeroed) weights, so
    // the groups stay contiguous in the original column order whatever the permutation.
    const int64_t g = p.quant.group_size();
    std::mutex mu;
    Status failed = ok_status();
    // Rows are independent (each writes its own blocks and scales).
    parallel_for(0, rows, std::max<int64_t>(1, 4096 / cols), [&](int64_t r0, int64_t r1) {
      std::vector<float> v(static_cast<size_t>(g));
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t grp = 0; grp < p.quant.groups_per_row(); ++grp) {
          const int64_t count = std::min(g, cols - grp * g);
          for (int64_t i = 0; i < count; ++i) v[i] = weight(r, grp * g + i);
          Status st =
              p.quant.set_group(r, grp, v.data(), count, p.importance.data() + grp * g, p.search);
          if (!st.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            if (failed.ok()) failed = std::move(st);
            return;
          }
        }
      }
    });
    QF_TRY(std::move(failed));
  }
  p.perm.resize(static_cast<size_t>(cols));
  std::iota(p.perm.begin(), p.perm.end(), int64_t{0});
  if (options.act_order) {
    // Descending diag(H); ties keep the lower column first.
    std::stable_sort(p.perm.begin(), p.perm.end(),
                     [&](int64_t a, int64_t b) { return h[a * cols + a] > h[b * cols + b]; });
  }
  p.h.resize(h.size());
  double mean_diag = 0;
  for (int64_t a = 0; a < cols; ++a) {
    for (int64_t b = 0; b < cols; ++b) p.h[a * cols + b] = h[p.perm[a] * cols + p.perm[b]];
    mean_diag += p.h[a * cols + a];
  }
  mean_diag /= static_cast<double>(cols);
  const double damp = options.percdamp * mean_diag;
  for (int64_t a = 0; a < cols; ++a) p.h[a * cols + a] += damp;
  p.wt.resize(static_cast<size_t>(rows * cols));
  for (int64_t k = 0; k < cols; ++k) {
    for (int64_t r = 0; r < rows; ++r) p.wt[k * rows + r] = weight(r, p.perm[k]);
  }
  return p;
}

// Sets the scales of group `group` of every row from the current weights, value(c, r) being the
// current weight of original column c, row r (the reference's find_params at the group's
// first column).
template <class Value>
Status set_group_scales(GptqProblem& p, int64_t group, const Value& value) {
  const int64_t g = p.quant.group_size();
  const int64_t c0 = group * g;
  const int64_t count = std::min(g, p.cols - c0);
  std::vector<float> v(static_cast<size_t>(count));
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t i = 0; i < count; ++i) {
      v[i] = static_cast<float>(value(c0 + i, r));
      if (!std::isfinite(v[i])) {
        return make_error(ErrorCode::kInvalidArgument,
                          "{}: the updated weight (row {}, col {}) is no longer finite; the "
                          "Hessian of this [rows={}, cols={}] layer is ill-conditioned (raise "
                          "GptqOptions::percdamp)",
                          p.fn, r, c0 + i, p.rows, p.cols);
      }
    }
    QF_TRY(p.quant.set_group(r, group, v.data(), count, p.importance.data() + c0, p.search));
  }
  return ok_status();
}

Result<GptqResult> finish(GptqProblem& p, std::vector<float> dequantized, double loss) {
  if (!std::isfinite(loss)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: the GPTQ loss of this [rows={}, cols={}] layer is not finite; its "
                      "Hessian is ill-conditioned (raise GptqOptions::percdamp)",
                      p.fn, p.rows, p.cols);
  }
  GptqResult result;
  result.quantized = std::move(p.quant).finish();
  result.dequantized = std::move(dequantized);
  result.error = loss;
  return result;
}

// In-place Gauss-Jordan inversion of a [n, n] symmetric positive definite matrix, without
// pivoting: the pivots are the successive Schur complements, all positive exactly when the
// matrix is positive definite. Returns the index of the first bad pivot, or -1.
int64_t invert_spd(std::vector<double>& a, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    const double pivot = a[k * n + k];
    if (!(pivot > 0.0)) return k;
    const double inv = 1.0 / pivot;
    for (int64_t j = 0; j < n; ++j) {
      if (j != k) a[k * n + j] *= inv;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i == k) continue;
      const double f = a[i * n + k];
      for (int64_t j = 0; j < n; ++j) {
        if (j != k) a[i * n + j] -= f * a[k * n + j];
      }
      a[i * n + k] = -f * inv;
    }
    a[k * n + k] = inv;
  }
  return -1;
}

}  // namespace

Result<GptqResult> gptq_quantize(const float* w, int64_t rows, int64_t cols, const GptqHessian& h,
                                 const QuantSpec& spec, const GptqOptions& options) {
  QF_ASSIGN_OR_RETURN(GptqProblem p, prepare("gptq_quantize", w, rows, cols, h, spec, options));
  const int64_t n = cols;
  const int ni = static_cast<int>(n);
  int info = 0;
  // U = the upper Cholesky factor of H^-1 (H^-1 = Uᵀ U), the matrix the reference gets from
  // cholesky(H), cholesky_inverse, cholesky(upper=True) (4n³/3 flops). Here in 2n³/3 and in
  // place: with J the order-reversing permutation, J H J = L Lᵀ gives H^-1 = J L⁻ᵀ L⁻¹ J, so
  // U = J L⁻¹ J (upper triangular, positive diagonal: the unique factor). J H J of a row-major
  // matrix is its flat buffer reversed; LAPACK sees the symmetric matrix the same either way.
  std::vector<double>& u_buf = p.h;
  std::reverse(u_buf.begin(), u_buf.end());
  dpotrf_("L", &ni, u_buf.data(), &ni, &info);  // column-major lower L of J H J
  if (info != 0) return not_positive_definite(p, info);
  dtrtri_("L", "N", &ni, u_buf.data(), &ni, &info);  // L⁻¹ in the same triangle
  if (info != 0) return not_positive_definite(p, info);
  // Reversing the buffer again maps column-major L⁻¹(n-1-i, n-1-j) to column-major (i, j), i.e.
  // U stored column-major; transpose in place to the row-major upper triangle read below.
  std::reverse(u_buf.begin(), u_buf.end());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) std::swap(u_buf[i * n + j], u_buf[j * n + i]);
  }
  const double* u = u_buf.data();

  const int64_t rows_n = rows;
  const int64_t g = p.quant.group_size();
  const int64_t bs = std::min(options.block_size, n);
  std::vector<double>& wt = p.wt;
  std::vector<double> err(static_cast<size_t>(bs * rows_n));  // [block, rows] scaled errors
  std::vector<float> deq(static_cast<size_t>(rows_n * n));
  double loss = 0;
  for (int64_t i1 = 0; i1 < n; i1 += bs) {
    const int64_t i2 = std::min(i1 + bs, n);
    for (int64_t k = i1; k < i2; ++k) {
      const int64_t orig = p.perm[k];
      if (!p.static_groups && orig % g == 0) {
        // Without act_order perm is the identity, so the group's columns are k, k + 1, ...
        // Those past this batch have not received its updates yet: add them here (without
        // applying them) so that the scale sees the current weights.
        QF_TRY(set_group_scales(p, orig / g, [&](int64_t c, int64_t r) {
          double x = wt[c * rows_n + r];
          if (c >= i2) {
            for (int64_t t = i1; t < k; ++t) x -= err[(t - i1) * rows_n + r] * u[t * n + c];
          }
          return x;
        }));
      }
      const double d = u[k * n + k];
      const double* wk = &wt[k * rows_n];
      double* ek = &err[(k - i1) * rows_n];
      for (int64_t r = 0; r < rows_n; ++r) {
        const double x = wk[r];
        const float q = p.quant.quantize(r, orig, static_cast<float>(x));
        deq[r * n + orig] = q;
        ek[r] = (x - q) / d;
        loss += ek[r] * ek[r] / 2;
      }
      for (int64_t c = k + 1; c < i2; ++c) {
        const double hkc = u[k * n + c];
        double* wc = &wt[c * rows_n];
        for (int64_t r = 0; r < rows_n; ++r) wc[r] -= ek[r] * hkc;
      }
    }
    // W[:, i2:] -= Err · U[i1:i2, i2:], in the transposed layout: wt[i2:] -= U[i1:i2, i2:]ᵀ · Err.
    if (i2 < n) {
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(n - i2),
                  static_cast<int>(rows_n), static_cast<int>(i2 - i1), -1.0, u + i1 * n + i2, ni,
                  err.data(), static_cast<int>(rows_n), 1.0, wt.data() + i2 * rows_n,
                  static_cast<int>(rows_n));
    }
  }
  return finish(p, std::move(deq), loss);
}

Result<GptqResult> gptq_quantize_ref(const float* w, int64_t rows, int64_t cols,
                                     const GptqHessian& h, const QuantSpec& spec,
                                     const GptqOptions& options) {
  QF_ASSIGN_OR_RETURN(GptqProblem p, prepare("gptq_quantize_ref", w, rows, cols, h, spec, options));
  const int64_t n = cols;
  // hinv: the inverse Hessian of the columns not yet quantized (rows/cols k.. are live).
  std::vector<double>& hinv = p.h;
  if (const int64_t bad = invert_spd(hinv, n); bad >= 0) return not_positive_definite(p, bad + 1);
  const int64_t g = p.quant.group_size();
  std::vector<double>& wt = p.wt;
  std::vector<double> e(static_cast<size_t>(rows));
  std::vector<float> deq(static_cast<size_t>(rows * n));
  double loss = 0;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t orig = p.perm[k];
    if (!p.static_groups && orig % g == 0) {
      QF_TRY(set_group_scales(p, orig / g, [&](int64_t c, int64_t r) { return wt[c * rows + r]; }));
    }
    // OBS: quantizing w_k costs (w_k - q)^2 / (2 [H_F^-1]_kk) and moves the remaining weights by
    // -(w_k - q) / [H_F^-1]_kk * H_F^-1[k, :].
    const double dkk = hinv[k * n + k];
    for (int64_t r = 0; r < rows; ++r) {
      const double x = wt[k * rows + r];
      const float q = p.quant.quantize(r, orig, static_cast<float>(x));
      deq[r * n + orig] = q;
      loss += (x - q) * (x - q) / dkk / 2;
      e[r] = (x - q) / dkk;
    }
    for (int64_t c = k + 1; c < n; ++c) {
      const double hkc = hinv[k * n + c];
      for (int64_t r = 0; r < rows; ++r) wt[c * rows + r] -= e[r] * hkc;
    }
    // Remove column k from the inverse: H_{F\k}^-1 = H_F^-1 - H_F^-1[:, k] H_F^-1[k, :] / dkk.
    for (int64_t a = k + 1; a < n; ++a) {
      const double f = hinv[a * n + k] / dkk;
      for (int64_t b = k + 1; b < n; ++b) hinv[a * n + b] -= f * hinv[k * n + b];
    }
  }
  return finish(p, std::move(deq), loss);
}

}  // namespace qforge

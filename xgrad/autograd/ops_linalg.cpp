// Matrix products through BLAS. One primitive, gemm(a, b, transpose_a, transpose_b), computes
// op(a) * op(b) for matrices or batches of them; its backward is two more gemm calls with the
// transpose flags worked out below, so no transposed copy is ever made and second derivatives work.
#include <cblas.h>

#include <limits>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

template <class T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
               int64_t ldc) {
  const auto op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, op_a, op_b, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, op_a, op_b, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

/// Below this many multiply-adds a product runs on one thread: ~10 us of work, against 1-5 us to
/// hand half of it to another thread.
constexpr int64_t kParallelGemmWork = int64_t(1) << 20;

/// C[m x n] = op(A) op(B) + beta C, row-major and contiguous. BLAS runs single-threaded (parallel.hpp);
/// a large product is split here over xgrad's threads: into row blocks of C, or column blocks, or, when
/// C is small and the inner dimension long (a weight gradient over a whole batch), into slices of k
/// whose partial products are summed in a fixed order (reproducible for a given thread count).
template <class T>
void gemm_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c) {
  const int64_t ldc = n;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == T(0)) std::fill(c, c + m * n, T(0));
    else if (beta != T(1)) std::for_each(c, c + m * n, [beta](T& v) { v *= beta; });
    return;
  }
  const int64_t work = m * n * k;
  const int threads = in_parallel_region() ? 1 : get_num_threads();
  if (threads <= 1 || work < kParallelGemmWork) {
    blas_gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Rows of A (and C) start at a + i*lda when A is not transposed, at a + i when it is; likewise columns of B.
  const auto a_rows = [&](int64_t i) { return ta ? a + i : a + i * lda; };
  const auto b_cols = [&](int64_t j) { return tb ? b + j * ldb : b + j; };
  const int64_t min_block = 16;  // keep each block a whole number of SIMD-friendly rows / columns
  if (m >= n && m >= threads * min_block) {
    parallel_for(0, (m + min_block - 1) / min_block, 1, [&](int64_t lo, int64_t hi) {
      const int64_t r0 = lo * min_block, r1 = std::min(m, hi * min_block);
      blas_gemm<T>(ta, tb, r1 - r0, n, k, a_rows(r0), lda, b, ldb, beta, c + r0 * ldc, ldc);
    });
  } else if (n >= threads * min_block) {
    parallel_for(0, (n + min_block - 1) / min_block, 1, [&](int64_t lo, int64_t hi) {
      const int64_t c0 = lo * min_block, c1 = std::min(n, hi * min_block);
      blas_gemm<T>(ta, tb, m, c1 - c0, k, a, lda, b_cols(c0), ldb, beta, c + c0, ldc);
    });
  } else if (k >= threads * 256) {
    // Slice 0 accumulates into C itself; the others into scratch blocks, added afterwards.
    const int64_t slices = std::min<int64_t>(threads, k / 256);
    thread_local std::vector<T> scratch;  // reused: C is small here, but this runs every step
    scratch.resize(static_cast<size_t>((slices - 1) * m * n));
    T* partial = scratch.data();  // (inside the loop body the name `scratch` would be the worker's own)
    const auto a_inner = [&](int64_t p) { return ta ? a + p * lda : a + p; };
    const auto b_inner = [&](int64_t p) { return tb ? b + p : b + p * ldb; };
    parallel_for(0, slices, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t s = lo; s < hi; ++s) {
        const int64_t p0 = k * s / slices, p1 = k * (s + 1) / slices;
        T* out = s == 0 ? c : partial + (s - 1) * m * n;
        blas_gemm<T>(ta, tb, m, n, p1 - p0, a_inner(p0), lda, b_inner(p0), ldb, s == 0 ? beta : T(0), out, ldc);
      }
    });
    for (int64_t s = 1; s < slices; ++s) {
      const T* p = partial + (s - 1) * m * n;
      for (int64_t i = 0; i < m * n; ++i) c[i] += p[i];
    }
  } else {
    blas_gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
}

/// A matrix (or a batch of them: the last two dims) as BLAS reads it: a row-major layout with leading
/// dimension `ld`, or the transpose of one (`flip`), read straight from the tensor's storage. A
/// transposed or sliced view so costs no copy; a layout BLAS cannot express (both strides > 1, a
/// leading dimension that does not fit an int) is copied once (`dense` keeps the copy alive).
template <class T>
struct BlasOperand {
  const T* data = nullptr;
  int64_t ld = 0;
  bool flip = false;
  int64_t batch_stride = 0;
  Tensor dense;
};

template <class T>
BlasOperand<T> blas_operand(const Tensor& x) {
  const TensorImpl& impl = *x.impl();
  const size_t n = impl.sizes.size();
  const int64_t rows = impl.sizes[n - 2], cols = impl.sizes[n - 1];
  const int64_t row_stride = impl.strides[n - 2], col_stride = impl.strides[n - 1];
  const int64_t batch_stride = n == 3 ? impl.strides[0] : 0;
  constexpr int64_t kMaxLd = std::numeric_limits<int>::max();
  if ((col_stride == 1 || cols == 1) && row_stride >= std::max<int64_t>(1, cols) && row_stride <= kMaxLd)
    return {x.data_ptr<T>(), row_stride, false, batch_stride, {}};
  if ((row_stride == 1 || rows == 1) && col_stride >= std::max<int64_t>(1, rows) && col_stride <= kMaxLd)
    return {x.data_ptr<T>(), col_stride, true, batch_stride, {}};
  Tensor dense = detail::dense(x);
  return {dense.template contiguous_data<T>(), std::max<int64_t>(1, cols), false, rows * cols, dense};
}

void check_float_matrix(const char* op, const Tensor& x) {
  detail::check_defined(op, x);
  XG_CHECK(x.is_floating_point(), "{}: expected float32 or float64 operands, got {}", op, x.dtype());
}

}  // namespace

Tensor gemm(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_float_matrix("gemm", a);
  check_float_matrix("gemm", b);
  detail::check_same_dtype("gemm", a, b);
  const Shape sa = a.shape(), sb = b.shape();
  XG_CHECK((sa.size() == 2 && sb.size() == 2) || (sa.size() == 3 && sb.size() == 3),
           "gemm: expected two 2-D or two 3-D operands, got shapes {} and {}", shape_string(sa), shape_string(sb));
  const bool batched = sa.size() == 3;
  const int64_t batch = batched ? sa[0] : 1;
  if (batched)
    XG_CHECK(sb[0] == batch, "bmm: batch sizes differ: {} and {} (shapes {} and {})", sa[0], sb[0], shape_string(sa), shape_string(sb));
  const size_t r = batched ? 1 : 0;
  const int64_t m = ta ? sa[r + 1] : sa[r], k = ta ? sa[r] : sa[r + 1];
  const int64_t kb = tb ? sb[r + 1] : sb[r], n = tb ? sb[r] : sb[r + 1];
  XG_CHECK(k == kb, "matmul: cannot multiply {}{} by {}{}: inner dimensions {} and {} differ", shape_string(sa), ta ? "^T" : "",
           shape_string(sb), tb ? "^T" : "", k, kb);
  Shape out_shape = batched ? Shape{batch, m, n} : Shape{m, n};
  Tensor out = detail::dispatch_floating("gemm", a, [&](auto tag) {
    using T = decltype(tag);
    Array<T> c = detail::new_array<T>(out_shape);
    const BlasOperand<T> oa = blas_operand<T>(a), ob = blas_operand<T>(b);
    for (int64_t i = 0; i < batch; ++i)
      gemm_call<T>(ta != oa.flip, tb != ob.flip, m, n, k, oa.data + i * oa.batch_stride, oa.ld, ob.data + i * ob.batch_stride, ob.ld,
                   T(0), c.data() + i * m * n);
    return detail::make_tensor(std::move(c));
  });
  if (should_record({&a, &b})) {
    record("MmBackward", {a, b}, out, {a, b}, [ta, tb](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& x = ctx.saved(0);
      const Tensor& y = ctx.saved(1);
      Tensor ga, gb;
      // C = op(A) op(B): dA = gy op(B)^T (transposed back when A was used transposed), likewise dB.
      if (ctx.needs_grad(0)) ga = ta ? gemm(y, gy, tb, true) : gemm(gy, y, false, !tb);
      if (ctx.needs_grad(1)) gb = tb ? gemm(gy, x, true, ta) : gemm(x, gy, !ta, false);
      return TensorList{ga, gb};
    });
  }
  autograd::check_forward_anomaly("gemm", out);
  return out;
}

Tensor mm(const Tensor& a, const Tensor& b) {
  check_float_matrix("mm", a);
  check_float_matrix("mm", b);
  XG_CHECK(a.dim() == 2 && b.dim() == 2, "mm: expected 2-D operands, got shapes {} and {}", shape_string(a.shape()), shape_string(b.shape()));
  return autograd::anomaly_checked_as("mm", [&] { return gemm(a, b, false, false); });
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_float_matrix("bmm", a);
  check_float_matrix("bmm", b);
  XG_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected 3-D operands, got shapes {} and {}", shape_string(a.shape()), shape_string(b.shape()));
  return autograd::anomaly_checked_as("bmm", [&] { return gemm(a, b, false, false); });
}

Tensor dot(const Tensor& a, const Tensor& b) {
  check_float_matrix("dot", a);
  check_float_matrix("dot", b);
  XG_CHECK(a.dim() == 1 && b.dim() == 1, "dot: expected 1-D operands, got shapes {} and {}", shape_string(a.shape()), shape_string(b.shape()));
  XG_CHECK(a.numel() == b.numel(), "dot: inconsistent tensor sizes: {} and {}", a.numel(), b.numel());
  return autograd::anomaly_checked_as("dot", [&] { return sum(mul(a, b)); });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float_matrix("matmul", a);
  check_float_matrix("matmul", b);
  detail::check_same_dtype("matmul", a, b);
  const int64_t da = a.dim(), db = b.dim();
  XG_CHECK(da >= 1 && db >= 1, "matmul: both arguments need at least 1 dimension, got shapes {} and {}", shape_string(a.shape()),
           shape_string(b.shape()));
  // Under anomaly mode the product is checked once, as matmul's (the op the caller used).
  if (autograd::AnomalyMode::is_enabled()) return autograd::anomaly_checked_as("matmul", [&] { return matmul(a, b); });
  if (da == 1 && db == 1) {
    XG_CHECK(a.numel() == b.numel(), "matmul: cannot multiply {} by {}: inner dimensions {} and {} differ", shape_string(a.shape()),
             shape_string(b.shape()), a.numel(), b.numel());
    return dot(a, b);
  }
  if (da == 2 && db == 2) return gemm(a, b, false, false);
  if (da == 1 && db == 2) return squeeze(gemm(unsqueeze(a, 0), b, false, false), 0);
  if (da == 2 && db == 1) return squeeze(gemm(a, unsqueeze(b, 1), false, false), 1);
  if (da >= 3 && db <= 2) {
    // Fold the batch into rows: one GEMM.
    Shape sa = a.shape();
    const int64_t k = sa.back();
    Tensor rows = reshape(a, {-1, k});
    Tensor right = db == 1 ? unsqueeze(b, 1) : b;
    Tensor product = gemm(rows, right, false, false);
    Shape out_shape(sa.begin(), sa.end() - 1);
    if (db == 2) out_shape.push_back(b.shape()[1]);
    return reshape(product, out_shape);
  }
  // General batched case: broadcast the batch dimensions, then one bmm.
  Tensor left = da == 1 ? unsqueeze(a, 0) : a;
  Tensor right = db == 1 ? unsqueeze(b, 1) : b;
  Shape sl = left.shape(), sr = right.shape();
  Shape batch_l(sl.begin(), sl.end() - 2), batch_r(sr.begin(), sr.end() - 2);
  // Name the operands' full shapes, not just their batch parts, when the batch dims do not broadcast.
  for (size_t i = 1; i <= std::min(batch_l.size(), batch_r.size()); ++i) {
    const int64_t x = batch_l[batch_l.size() - i], y = batch_r[batch_r.size() - i];
    XG_CHECK(x == y || x == 1 || y == 1, "matmul: cannot multiply {} by {}: batch dimensions {} and {} cannot be broadcast together",
             shape_string(a.shape()), shape_string(b.shape()), shape_string(batch_l), shape_string(batch_r));
  }
  Shape batch = detail::broadcast_shapes("matmul", batch_l, batch_r);
  const int64_t n = sl[sl.size() - 2], k = sl.back(), k2 = sr[sr.size() - 2], m = sr.back();
  XG_CHECK(k == k2, "matmul: cannot multiply {} by {}: inner dimensions {} and {} differ", shape_string(a.shape()), shape_string(b.shape()), k, k2);
  Shape el = batch, er = batch;
  el.push_back(n);
  el.push_back(k);
  er.push_back(k);
  er.push_back(m);
  const int64_t count = detail::shape_numel(batch);
  Tensor product = gemm(reshape(expand(left, el), {count, n, k}), reshape(expand(right, er), {count, k, m}), false, false);
  Shape out_shape = batch;
  if (da != 1) out_shape.push_back(n);
  if (db != 1) out_shape.push_back(m);
  return reshape(product, out_shape);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float_matrix("linear", x);
  check_float_matrix("linear", weight);
  detail::check_same_dtype("linear", x, weight);
  XG_CHECK(weight.dim() == 2, "linear: expected a 2-D weight [out_features, in_features], got shape {}", shape_string(weight.shape()));
  const Shape sx = x.shape(), sw = weight.shape();
  const int64_t out_features = sw[0], in_features = sw[1];
  XG_CHECK(x.dim() >= 1 && sx.back() == in_features,
           "linear: input of shape {} does not match weight of shape {}: expected the last input dimension to be in_features = {}, got {}",
           shape_string(sx), shape_string(sw), in_features, x.dim() >= 1 ? sx.back() : 0);
  if (bias.defined()) {
    detail::check_same_dtype("linear", x, bias);
    XG_CHECK(bias.dim() == 1 && bias.numel() == out_features, "linear: expected a bias of shape [{}], got {}", out_features,
             shape_string(bias.shape()));
  }
  const int64_t rows = x.numel() / std::max<int64_t>(in_features, 1);
  Shape out_shape(sx.begin(), sx.end() - 1);
  out_shape.push_back(out_features);
  Tensor out = detail::dispatch_floating("linear", x, [&](auto tag) {
    using T = decltype(tag);
    Array<T> y = detail::new_array<T>(out_shape);
    T beta = 0;
    if (bias.defined()) {
      // Pre-fill with the bias and let GEMM accumulate onto it (beta = 1): the bias costs no extra pass.
      const Tensor dense_bias = detail::dense(bias);
      const T* pb = dense_bias.contiguous_data<T>();
      for (int64_t r = 0; r < rows; ++r) std::copy_n(pb, out_features, y.data() + r * out_features);
      beta = 1;
    }
    // The rows of x as one matrix: a view when x's strides allow (always for a contiguous x).
    const Tensor x_rows = x.is_contiguous() ? x : reshape(x.detach(), {rows, in_features});
    const T* px = x_rows.data_ptr<T>();
    int64_t ldx = std::max<int64_t>(1, in_features);
    bool flip_x = false;
    BlasOperand<T> ox;
    if (!x.is_contiguous()) {
      ox = blas_operand<T>(x_rows);
      px = ox.data;
      ldx = ox.ld;
      flip_x = ox.flip;
    }
    const BlasOperand<T> ow = blas_operand<T>(weight);
    gemm_call<T>(flip_x, !ow.flip, rows, out_features, in_features, px, ldx, ow.data, ow.ld, beta, y.data());
    return detail::make_tensor(std::move(y));
  });
  if (should_record({&x, &weight, &bias})) {
    record("LinearBackward", {x, weight, bias}, out, {x, weight}, [sx, in_features](const BackwardContext& ctx, const Tensor& gy) {
      const int64_t out_features = ctx.input_shape(1)[0];
      Tensor gy2 = reshape(gy, {-1, out_features});
      Tensor gx, gw, gb;
      if (ctx.needs_grad(0)) gx = reshape(gemm(gy2, ctx.saved(1), false, false), sx);
      if (ctx.needs_grad(1)) gw = gemm(gy2, reshape(ctx.saved(0), {-1, in_features}), true, false);
      if (ctx.needs_grad(2)) gb = sum(gy2, {0});
      return TensorList{gx, gw, gb};
    });
  }
  autograd::check_forward_anomaly("linear", out);
  return out;
}

}  // namespace xg

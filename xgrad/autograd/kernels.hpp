#pragma once
/// Internal helpers shared by the op implementations: dtype dispatch, shape checks, and the strided
/// broadcast loop whose innermost loop is a plain contiguous loop the compiler vectorises.
#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>

#include "xgrad/autograd/checked.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/autograd/strided.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg::detail {

using XShape = Array<float>::shape_type;

inline XShape to_xshape(const Shape& shape) {
  XShape result(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) result[i] = static_cast<size_t>(shape[i]);
  return result;
}

template <class A>
Shape shape_of(const A& array) {
  return Shape(array.shape().begin(), array.shape().end());
}

/// Element count of the shape of an existing tensor (already checked when it was made); for a shape a
/// user asked for, use checked_numel.
inline int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

/// Calls f(T{}) with T the C++ type of dtype.
template <class F>
decltype(auto) dispatch(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::Float32: return f(float{});
    case Dtype::Float64: return f(double{});
    case Dtype::Int64: break;
  }
  return f(int64_t{});
}

/// As dispatch, but int64 is an error naming the op.
template <class F>
decltype(auto) dispatch_floating(const char* op, const Tensor& x, F&& f) {
  XG_CHECK(x.defined(), "{}: the input tensor is undefined", op);
  XG_CHECK(x.is_floating_point(), "{}: expected a floating-point tensor (float32 or float64), got {}", op, x.dtype());
  AllocationScope site(op);  // out of memory inside f names this op
  if (x.dtype() == Dtype::Float32) return f(float{});
  return f(double{});
}

inline void check_defined(const char* op, const Tensor& x) { XG_CHECK(x.defined(), "{}: the input tensor is undefined", op); }

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  XG_CHECK(a.dtype() == b.dtype(), "{}: expected both operands to have the same dtype, got {} and {} (use .to())", op,
           a.dtype(), b.dtype());
}

/// Checks that a scalar can be stored in an element of `dtype`. For int64, NaN, infinities and values
/// outside int64's range are errors (the C++ conversion would be undefined; PyTorch: "value cannot be
/// converted to type int64_t without overflow"); a fractional value is truncated, as PyTorch's fill_,
/// full and masked_fill do.
void check_scalar_fits(const char* op, Dtype dtype, double value);

/// check_scalar_fits for a scalar operand of arithmetic (add, mul, clamp, alpha, ...): with an int64
/// tensor a non-integral scalar makes PyTorch promote the result to float. xgrad has no type promotion
/// yet, so that is an error rather than a silent truncation (arange(6) * 0.5 gave zeros).
void check_scalar_operand(const char* op, Dtype dtype, double value);

/// x^exponent for x >= 0 with gradient 0 where x == 0, where the true slope of a root is infinite:
/// PyTorch's subgradient for norms at a zero slice, std of a constant slice and lp_pool of a zero window.
Tensor pow_zero_grad_at_zero(const Tensor& x, double exponent);

/// Max (IsMax) or min over sorted, normalised dims (all when empty) with PyTorch's amax/amin gradient:
/// split evenly between tied extremes, a NaN extreme counting as tied with every NaN of its slice.
Tensor extreme_split(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max);

/// Wraps a dim in [-ndim, ndim) to [0, ndim).
inline int64_t normalize_dim(const char* op, int64_t dim, int64_t ndim) {
  int64_t bound = std::max<int64_t>(ndim, 1);  // a 0-D tensor accepts dim 0 and -1, as PyTorch
  XG_CHECK(dim >= -bound && dim < bound, "{}: dimension out of range (expected to be in range of [{}, {}], but got {})",
           op, -bound, bound - 1, dim);
  return dim < 0 ? dim + bound : dim;
}

/// Normalises, sorts and de-duplicates reduction dims; empty means all.
std::vector<int64_t> normalize_dims(const char* op, const std::vector<int64_t>& dims, int64_t ndim);

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

template <class T>
Tensor make_tensor(Array<T>&& array) {
  return Tensor(make_impl(make_storage<T>(std::move(array)), false));
}

/// A new contiguous tensor of element type T and the given sizes, uninitialised. Its storage is a flat
/// container built in place (no container move, and no multi-dimensional container bookkeeping: the
/// geometry lives in the TensorImpl). Write through contiguous_data<T>().
template <class T>
Tensor empty_tensor(const Sizes& sizes) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  return Tensor(make_contiguous_impl(new_storage(dtype_of<T>(), numel), sizes, numel));
}

template <class T>
Tensor empty_tensor(const XShape& shape) {
  return empty_tensor<T>(Sizes(shape.begin(), shape.end()));
}

/// A new uninitialised container of `shape`, after checking that its element and byte counts fit
/// (checked_numel); running out of memory is an xg::Error naming `op` (default: the op of the
/// enclosing AllocationScope) and the shape.
template <class T>
Array<T> new_array(const Shape& shape, const char* op = nullptr) {
  checked_numel(op != nullptr ? op : allocation_site().op != nullptr ? allocation_site().op : "new tensor", shape, sizeof(T));
  AllocationScope site(op, &shape);
  return Array<T>(to_xshape(shape));
}

/// Up to this many dimensions after coalescing go through the fast strided loop.
constexpr int kMaxDims = 16;

/// Strides of a row-major tensor of `shape` seen as `out_shape` (0 along broadcast dimensions).
void broadcast_strides(const Shape& shape, const Shape& out_shape, int64_t* strides);

/// out[i] = f(a[ia], b[ib]) over out_shape (contiguous out), with a and b read through element
/// strides given per output dimension (0 along broadcast dims; any strides for views).
template <class TA, class TB, class TO, class F>
void strided_broadcast_loop(const TA* a, const int64_t* sa, const TB* b, const int64_t* sb, TO* out, const Shape& out_shape, F f) {
  const int64_t ndim = static_cast<int64_t>(out_shape.size());
  const int64_t total = shape_numel(out_shape);
  if (total == 0) return;
  XG_CHECK(ndim <= kMaxDims, "broadcast: at most {} dimensions are supported, got {}", kMaxDims, ndim);
  int64_t size[kMaxDims];
  // Coalesce adjacent dims that are contiguous (or broadcast) for both inputs, from the right.
  int n = 0;
  int64_t cs[kMaxDims], ca[kMaxDims], cb[kMaxDims];
  for (int64_t d = ndim - 1; d >= 0; --d) {
    if (out_shape[d] == 1) continue;
    if (n > 0 && sa[d] == ca[n - 1] * cs[n - 1] && sb[d] == cb[n - 1] * cs[n - 1]) {
      cs[n - 1] *= out_shape[d];
    } else {
      cs[n] = out_shape[d];
      ca[n] = sa[d];
      cb[n] = sb[d];
      ++n;
    }
  }
  if (n == 0) {
    out[0] = f(a[0], b[0]);
    return;
  }
  // cs[0] is the innermost (coalesced) dimension.
  for (int i = 0; i < n; ++i) size[i] = cs[i];
  const int64_t inner = size[0], ia = ca[0], ib = cb[0];
  const int64_t outer = total / inner;
  // Rows of the outer loop are independent: split them, each piece starting its counters at its first row.
  parallel_for(0, outer, std::max<int64_t>(1, kElementwiseGrain / inner), [&](int64_t o_begin, int64_t o_end) {
    int64_t counter[kMaxDims] = {0};
    int64_t offset_a = 0, offset_b = 0;
    for (int d = 1; d < n; ++d) {
      int64_t below = 1;
      for (int e = 1; e < d; ++e) below *= size[e];
      counter[d] = (o_begin / below) % size[d];
      offset_a += counter[d] * ca[d];
      offset_b += counter[d] * cb[d];
    }
    for (int64_t o = o_begin; o < o_end; ++o) {
      const TA* pa = a + offset_a;
      const TB* pb = b + offset_b;
      TO* po = out + o * inner;
      if (ia == 1 && ib == 1) {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
      } else if (ia == 1 && ib == 0) {
        const TB vb = *pb;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
      } else if (ia == 0 && ib == 1) {
        const TA va = *pa;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(va, pb[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i * ia], pb[i * ib]);
      }
      // advance the outer counter
      for (int d = 1; d < n; ++d) {
        ++counter[d];
        offset_a += ca[d];
        offset_b += cb[d];
        if (counter[d] < size[d]) break;
        offset_a -= ca[d] * size[d];
        offset_b -= cb[d] * size[d];
        counter[d] = 0;
      }
    }
  });
}

/// out[i] = f(a[ia], b[ib]) over the broadcast of contiguous a and b. out must have the broadcast shape.
template <class TA, class TB, class TO, class F>
void broadcast_loop(const TA* a, const Shape& a_shape, const TB* b, const Shape& b_shape, TO* out,
                    const Shape& out_shape, F f) {
  const int64_t ndim = static_cast<int64_t>(out_shape.size());
  const int64_t total = shape_numel(out_shape);
  if (total == 0) return;
  if (a_shape == out_shape && b_shape == out_shape) {
    parallel_for(0, total, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = f(a[i], b[i]);
    });
    return;
  }
  XG_CHECK(ndim <= kMaxDims, "broadcast: at most {} dimensions are supported, got {}", kMaxDims, ndim);
  int64_t sa[kMaxDims], sb[kMaxDims];
  broadcast_strides(a_shape, out_shape, sa);
  broadcast_strides(b_shape, out_shape, sb);
  strided_broadcast_loop(a, sa, b, sb, out, out_shape, f);
}

/// A tensor's element strides seen as out_shape (its shape broadcast to it): 0 along broadcast dims.
inline void operand_strides(const Tensor& t, const Shape& out_shape, int64_t* strides) {
  const TensorImpl& impl = *t.impl();
  const size_t n = out_shape.size(), lead = n - impl.sizes.size();
  for (size_t d = 0; d < n; ++d)
    strides[d] = d < lead || impl.sizes[d - lead] == 1 ? 0 : impl.strides[d - lead];
}

/// Copies x broadcast to out_shape into out.
template <class T>
void broadcast_copy(const T* x, const Shape& x_shape, T* out, const Shape& out_shape) {
  broadcast_loop(x, x_shape, x, x_shape, out, out_shape, [](T v, T) { return v; });
}

/// dst[i] = src[j] over an n-D extent, with element strides for both sides (any may be 0 or scaled):
/// the one loop behind permute, slice, pad, cat and expand.
template <class T>
void strided_copy(const T* src, const int64_t* src_strides, T* dst, const int64_t* dst_strides, const Shape& extent) {
  const int64_t n = static_cast<int64_t>(extent.size());
  if (shape_numel(extent) == 0) return;
  if (n == 0) {
    *dst = *src;
    return;
  }
  const int64_t inner = extent[n - 1], si = src_strides[n - 1], di = dst_strides[n - 1];
  std::vector<int64_t> counter(static_cast<size_t>(n), 0);
  int64_t src_offset = 0, dst_offset = 0;
  const int64_t outer = shape_numel(extent) / inner;
  for (int64_t o = 0; o < outer; ++o) {
    const T* s = src + src_offset;
    T* d = dst + dst_offset;
    if (si == 1 && di == 1) std::copy(s, s + inner, d);
    else
      for (int64_t i = 0; i < inner; ++i) d[i * di] = s[i * si];
    for (int64_t k = n - 2; k >= 0; --k) {
      ++counter[k];
      src_offset += src_strides[k];
      dst_offset += dst_strides[k];
      if (counter[k] < extent[k]) break;
      src_offset -= src_strides[k] * extent[k];
      dst_offset -= dst_strides[k] * extent[k];
      counter[k] = 0;
    }
  }
}

/// Row-major element strides of a shape.
inline std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

/// (outer, size, inner) view of a dimension: the tensor is [outer, size, inner] around dim.
struct DimSplit {
  int64_t outer = 1, size = 1, inner = 1;
};
inline DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= shape[d];
  s.size = shape.empty() ? 1 : shape[dim];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) s.inner *= shape[d];
  return s;
}

}  // namespace xg::detail

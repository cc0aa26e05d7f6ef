#pragma once
/// The one place that knows how to walk strided memory: a tensor's geometry (sizes, element strides,
/// offset into its storage) and the loops over it. Ops either iterate through these helpers or call
/// contiguous() once on entry and read their operands as flat arrays.
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "xgrad/autograd/checked.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg::detail {

/// Where a tensor's elements are in its storage.
struct Geometry {
  Sizes sizes;
  Sizes strides;
  int64_t offset = 0;
};

inline Geometry geometry_of(const Tensor& t) {
  const TensorImpl& impl = *t.impl();
  return {impl.sizes, impl.strides, impl.storage_offset};
}

/// Row-major strides of `sizes` (PyTorch's values: a dim after an empty one still gets a stride).
inline Sizes row_major_strides(const Sizes& sizes) {
  Sizes strides(sizes.size());
  int64_t stride = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(sizes[i], 1);
  }
  return strides;
}

inline Geometry contiguous_geometry(const Sizes& sizes) { return {sizes, row_major_strides(sizes), 0}; }

/// Storage index of the e-th element in row-major order.
inline int64_t element_offset(const Geometry& g, int64_t e) {
  int64_t offset = g.offset;
  for (size_t d = g.sizes.size(); d-- > 0;) {
    offset += (e % g.sizes[d]) * g.strides[d];
    e /= g.sizes[d];
  }
  return offset;
}

/// One past the largest storage element the geometry addresses (its offset when it is empty).
inline int64_t storage_end(const Geometry& g) {
  int64_t last = g.offset;
  for (size_t d = 0; d < g.sizes.size(); ++d) {
    if (g.sizes[d] == 0) return g.offset;
    last += (g.sizes[d] - 1) * g.strides[d];
  }
  return last + 1;
}

/// True when two different indices of the geometry address the same element along a stride-0
/// dimension of size > 1 (an expanded tensor): PyTorch's has_internal_overlap, which checks only this.
inline bool has_internal_overlap(const Geometry& g) {
  for (size_t d = 0; d < g.sizes.size(); ++d)
    if (g.sizes[d] > 1 && g.strides[d] == 0) return true;
  return false;
}

/// A permutation of a contiguous layout (contiguous, transposed, permuted): every element addressed
/// once and no gaps (PyTorch's is_non_overlapping_and_dense).
inline bool is_non_overlapping_and_dense(const Geometry& g) {
  std::array<std::pair<int64_t, int64_t>, 64> dims{};  // (stride, size) of the dims of size > 1
  size_t n = 0;
  for (size_t d = 0; d < g.sizes.size() && n < dims.size(); ++d) {
    if (g.sizes[d] == 0) return true;
    if (g.sizes[d] != 1) dims[n++] = {g.strides[d], g.sizes[d]};
  }
  std::sort(dims.begin(), dims.begin() + static_cast<std::ptrdiff_t>(n));
  int64_t expected = 1;
  for (size_t i = 0; i < n; ++i) {
    if (dims[i].first != expected) return false;
    expected *= dims[i].second;
  }
  return true;
}

/// An in-place write into `self` reading `other`: when both are dense layouts of one storage whose
/// ranges intersect but do not coincide element for element, the result would depend on the loop
/// order (x[1:].copy_(x[:3]), x.add_(x.t())): an error, as PyTorch's assert_no_partial_overlap. Full
/// overlap (x.add_(x)) is fine; layouts too irregular to decide are let through, as in PyTorch.
inline void check_no_partial_overlap(const char* op, const Tensor& self, const Tensor& other) {
  if (!self.is_alias_of(other)) return;
  const Geometry a = geometry_of(self), b = geometry_of(other);
  if (!is_non_overlapping_and_dense(a) || !is_non_overlapping_and_dense(b)) return;
  const int64_t a_end = a.offset + self.numel(), b_end = b.offset + other.numel();
  if (self.numel() == 0 || other.numel() == 0 || a_end <= b.offset || b_end <= a.offset) return;
  if (a.offset == b.offset && a.sizes == b.sizes && a.strides == b.strides) return;
  XG_ERROR("{}: unsupported operation: some elements of the input tensor and the written-to tensor refer to a single "
           "memory location. Please clone() the tensor before performing the operation (input: shape {}, strides {}; "
           "written-to: shape {}, strides {})",
           op, shape_string(other.shape()), shape_string(other.strides()), shape_string(self.shape()),
           shape_string(self.strides()));
}

/// Calls f(a_element, b_element) for every index of `a`'s extent, in row-major order; `b` has the
/// same sizes as `a` (a broadcast operand passes stride 0). Serial; the innermost dimension is a
/// plain pointer loop.
template <class TA, class TB, class F>
void for_each_strided(TA* a_base, const Geometry& a, TB* b_base, const Geometry& b, F f) {
  const size_t n = a.sizes.size();
  int64_t total = 1;
  for (int64_t s : a.sizes) total *= s;
  if (total == 0) return;
  TA* pa = a_base + a.offset;
  TB* pb = b_base + b.offset;
  if (n == 0) {
    f(*pa, *pb);
    return;
  }
  const int64_t inner = a.sizes[n - 1], sa = a.strides[n - 1], sb = b.strides[n - 1];
  Sizes counter(n, 0);
  const int64_t outer = total / inner;
  for (int64_t o = 0; o < outer; ++o) {
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < inner; ++i) f(pa[i], pb[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i) f(pa[i * sa], pb[i * sb]);
    }
    for (size_t k = n - 1; k-- > 0;) {
      ++counter[k];
      pa += a.strides[k];
      pb += b.strides[k];
      if (counter[k] < a.sizes[k]) break;
      pa -= a.strides[k] * a.sizes[k];
      pb -= b.strides[k] * b.sizes[k];
      counter[k] = 0;
    }
  }
}

/// dst[i] = src[i] over dst's extent (src broadcast to it with stride 0 where it has size 1 or fewer
/// dims). Any strides on either side; the caller rules out partial overlap.
template <class T>
void copy_strided(T* dst_base, const Geometry& dst, const T* src_base, const Geometry& src) {
  Geometry s{dst.sizes, Sizes(dst.sizes.size(), 0), src.offset};
  const size_t lead = dst.sizes.size() - src.sizes.size();
  for (size_t d = 0; d < src.sizes.size(); ++d)
    s.strides[lead + d] = src.sizes[d] == 1 ? 0 : src.strides[d];
  for_each_strided(dst_base, dst, src_base, s, [](T& out, const T& in) { out = in; });
}

/// Storage-level handles used by views and the strided loops.
template <class T>
T* storage_data(const Tensor& t) {
  return static_cast<T*>(t.impl()->storage->data);
}

}  // namespace xg::detail

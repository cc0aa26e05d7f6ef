// Ordering ops: sort, argsort, topk, kthvalue, median. Each finds indices per slice (not
// differentiable) and takes the values with gather(), so the gradient goes to the returned indices, as
// PyTorch's; median() over all elements splits it evenly between ties, as PyTorch's. NaN orders above
// every number (last ascending, first descending), as PyTorch's sort.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

/// int64 indices [.., k, ..] (k along dim d) of the first k elements of every slice of x along d in
/// ascending (or descending) order; equal values keep their original order.
Tensor ordered_indices(const Tensor& x, int64_t d, bool descending, int64_t k) {
  const Shape s = x.shape();
  const detail::DimSplit split = detail::split_at(s, d);
  Shape out_shape = s;
  if (!out_shape.empty()) out_shape[d] = k;
  Array<int64_t> result = detail::new_array<int64_t>(out_shape, "sort");
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Tensor dense = detail::dense(x);
    const T* in = dense.contiguous_data<T>();
    std::vector<int64_t> order(static_cast<size_t>(split.size));
    for (int64_t outer = 0; outer < split.outer; ++outer)
      for (int64_t inner = 0; inner < split.inner; ++inner) {
        auto value = [&](int64_t i) { return in[(outer * split.size + i) * split.inner + inner]; };
        // A strict weak order with NaN above every number and the position as the tie-break (stable).
        auto before = [&](int64_t a, int64_t b) {
          const T va = value(a), vb = value(b);
          const bool na = is_nan(va), nb = is_nan(vb);
          if (na != nb) return descending ? na : nb;
          if (!na && va != vb) return descending ? va > vb : va < vb;
          return a < b;
        };
        std::iota(order.begin(), order.end(), int64_t{0});
        if (k == split.size) std::sort(order.begin(), order.end(), before);
        else std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) result.data()[(outer * k + j) * split.inner + inner] = order[static_cast<size_t>(j)];
      }
    return 0;
  });
  return detail::make_tensor(std::move(result));
}

int64_t slice_size(const Tensor& x, int64_t d) { return x.dim() == 0 ? 1 : x.size(d); }

/// A 0-D input is handled as one element along dim 0, its results reshaped back to 0-D.
std::tuple<Tensor, Tensor> as_scalar(std::tuple<Tensor, Tensor> result) {
  return {std::get<0>(result).reshape({}), std::get<1>(result).reshape({})};
}

}  // namespace


std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  detail::check_defined("sort", x);
  const int64_t d = detail::normalize_dim("sort", dim, x.dim());
  if (x.dim() == 0) return as_scalar(sort(x.reshape({1}), 0, descending));
  Tensor indices = ordered_indices(x, d, descending, slice_size(x, d));
  return {gather(x, d, indices), indices};
}

std::tuple<Tensor, Tensor> sort(const Tensor& x, std::optional<bool> /*stable: xgrad's sort is always stable*/, int64_t dim,
                                bool descending) {
  return sort(x, dim, descending);
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return std::get<1>(sort(x.detach(), dim, descending)); }

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool /*sorted: always sorted*/) {
  detail::check_defined("topk", x);
  const int64_t d = detail::normalize_dim("topk", dim, x.dim());
  if (x.dim() == 0) {
    XG_CHECK(k == 0 || k == 1, "topk: k ({}) is out of range for a 0-D tensor", k);
    auto [values, indices] = topk(x.reshape({1}), k, 0, largest, true);
    return k == 1 ? std::make_tuple(values.reshape({}), indices.reshape({})) : std::make_tuple(values, indices);
  }
  const int64_t n = slice_size(x, d);
  XG_CHECK(k >= 0 && k <= n, "topk: k ({}) is out of range for dimension {} of size {} (shape {})", k, dim, n, shape_string(x.shape()));
  Tensor indices = ordered_indices(x, d, largest, k);
  return {gather(x, d, indices), indices};
}

std::tuple<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
  detail::check_defined("kthvalue", x);
  const int64_t d = detail::normalize_dim("kthvalue", dim, x.dim());
  if (x.dim() == 0) return as_scalar(kthvalue(x.reshape({1}), k, 0, false));
  const int64_t n = slice_size(x, d);
  XG_CHECK(k >= 1 && k <= n, "kthvalue: k ({}) is out of range for dimension {} of size {} (shape {}); k counts from 1", k, dim, n,
           shape_string(x.shape()));
  Tensor index = narrow(ordered_indices(x, d, false, k), d, k - 1, 1);
  Tensor values = gather(x, d, index);
  if (!keepdim && x.dim() > 0) return {squeeze(values, d), squeeze(index, d)};
  return {values, index};
}

std::tuple<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_defined("median", x);
  const int64_t d = detail::normalize_dim("median", dim, x.dim());
  if (x.dim() == 0) return as_scalar(median(x.reshape({1}), 0, false));
  const int64_t n = slice_size(x, d);
  XG_CHECK(n > 0, "median: dimension {} of shape {} is empty", dim, shape_string(x.shape()));
  // The lower median; a slice with a NaN has median NaN at its first NaN (NaN sorts last, so the first
  // NaN is at position count - nan_count of the ascending order).
  Tensor order = ordered_indices(x, d, false, n);
  Tensor position;
  {
    NoGradGuard no_grad;
    Tensor nans = sum(ne(x.detach(), x.detach()), {d}, true).to(kInt64);
    Tensor lower = full(nans.shape(), static_cast<double>((n - 1) / 2), kInt64);
    position = where(gt(nans, 0.0), rsub(nans, static_cast<double>(n)), lower);
  }
  Tensor index = gather(order, d, position);
  Tensor values = gather(x, d, index);
  if (!keepdim && x.dim() > 0) return {squeeze(values, d), squeeze(index, d)};
  return {values, index};
}

Tensor median(const Tensor& x) {
  detail::check_defined("median", x);
  XG_CHECK(x.numel() > 0, "median: cannot reduce an empty tensor (shape {})", shape_string(x.shape()));
  Tensor out;
  {
    NoGradGuard no_grad;
    out = std::get<0>(median(reshape(x.detach(), {-1}), 0, false)).clone();
  }
  if (should_record({&x})) {
    record("MedianBackward", {x}, out, {x, out.detach()}, [](const BackwardContext& ctx, const Tensor& gy) {
      // PyTorch's evenly_distribute_backward: every element equal to the median (every NaN when it is
      // NaN) gets an equal share.
      const Tensor& input = ctx.saved(0);
      const Tensor& value = ctx.saved(1);
      Tensor hit = add(eq(input, value), mul(ne(input, input), ne(value, value)));
      return TensorList{mul(hit, div(gy, sum(hit)))};
    });
  }
  return out;
}

}  // namespace xg

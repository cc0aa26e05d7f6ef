// Reductions (sum, mean, max/min, arg*, var/std, logsumexp, norm, sum_to) and softmax/log_softmax.
// Composite reductions (mean, var, logsumexp, norms) are written with other ops, so their gradients
// and gradients of gradients follow from those ops' rules.
#include <cmath>
#include <limits>
#include <type_traits>

#include "xgrad/autograd/kernels.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;
using detail::dispatch;

namespace {

/// out[o, i] = sum_s in[o, s, i].
template <class T>
void sum_kernel(const T* in, T* out, int64_t outer, int64_t size, int64_t inner) {
  if (inner == 1) {
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = in + o * size;
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t s = 0; s < size; ++s) acc += row[s];
      out[o] = acc;
    }
    return;
  }
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = out + o * inner;
    std::fill(dst, dst + inner, T(0));
    for (int64_t s = 0; s < size; ++s) {
      const T* src = in + (o * size + s) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
  }
}

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    bool reduced = std::binary_search(dims.begin(), dims.end(), d);
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

/// Sums over sorted, normalised dims: each run of adjacent dims is one (outer, size, inner) pass.
Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Shape shape = x.shape();
  const Shape out_shape = reduced_shape(shape, dims, keepdim);
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (dims.empty()) {
      Array<T> copy = detail::dense(x).array<T>();
      return detail::make_tensor(std::move(copy));
    }
    Shape current = shape;
    Array<T> buffer;
    const Tensor dense = detail::dense(x);
    const T* source = dense.contiguous_data<T>();
    for (size_t end = dims.size(); end > 0;) {
      size_t begin = end - 1;
      while (begin > 0 && dims[begin - 1] == dims[begin] - 1) --begin;
      int64_t first = dims[begin], last = dims[end - 1];
      int64_t outer = 1, size = 1, inner = 1;
      for (int64_t d = 0; d < first; ++d) outer *= current[d];
      for (int64_t d = first; d <= last; ++d) size *= current[d];
      for (int64_t d = last + 1; d < static_cast<int64_t>(current.size()); ++d) inner *= current[d];
      for (int64_t d = first; d <= last; ++d) current[d] = 1;
      Array<T> next = detail::new_array<T>(current);
      if (size == 0) std::fill(next.begin(), next.end(), T(0));
      else sum_kernel(source, next.data(), outer, size, inner);
      buffer = std::move(next);
      source = buffer.data();
      end = begin;
    }
    buffer.reshape(detail::to_xshape(out_shape));
    return detail::make_tensor(std::move(buffer));
  });
}

/// Values and indices of the max (or min) along one dim.
template <bool IsMax>
std::tuple<Tensor, Tensor> extreme_along(const char* op, const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_defined(op, x);
  const Shape shape = x.shape();
  const int64_t d = detail::normalize_dim(op, dim, x.dim());
  XG_CHECK(x.numel() > 0 && (shape.empty() || shape[d] > 0),
           "{}: cannot reduce over an empty dimension (dim {} of shape {}); the operation has no identity", op, dim,
           shape_string(shape));
  detail::DimSplit split = detail::split_at(shape, d);
  Shape out_shape = shape.empty() ? Shape{} : reduced_shape(shape, {d}, keepdim);
  Array<int64_t> indices = detail::new_array<int64_t>(out_shape);
  Tensor values = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = detail::new_array<T>(out_shape);
    const Tensor dense = detail::dense(x);
    const T* in = dense.contiguous_data<T>();
    for (int64_t o = 0; o < split.outer; ++o) {
      for (int64_t i = 0; i < split.inner; ++i) {
        const T* p = in + o * split.size * split.inner + i;
        T best = p[0];
        int64_t best_index = 0;
        for (int64_t s = 1; s < split.size; ++s) {
          T v = p[s * split.inner];
          bool better = IsMax ? v > best : v < best;
          if constexpr (std::is_floating_point_v<T>) better = better || (std::isnan(v) && !std::isnan(best));
          if (better) {
            best = v;
            best_index = s;
          }
        }
        out.data()[o * split.inner + i] = best;
        indices.data()[o * split.inner + i] = best_index;
      }
    }
    return detail::make_tensor(std::move(out));
  });
  Tensor index_tensor = detail::make_tensor(std::move(indices));
  if (should_record({&x})) {
    Shape input_shape = shape;
    record(IsMax ? "MaxBackward" : "MinBackward", {x}, values, {index_tensor},
           [d, keepdim, input_shape](const BackwardContext& ctx, const Tensor& gy) {
             Tensor index = ctx.saved(0);
             Tensor grad = gy;
             if (!keepdim && !input_shape.empty()) {
               index = unsqueeze(index, d);
               grad = unsqueeze(grad, d);
             }
             return TensorList{scatter_add(zeros(input_shape, gy.dtype()), d, index, grad)};
           });
  }
  return {values, index_tensor};
}

template <bool IsMax>
Tensor extreme_all(const char* op, const Tensor& x) {
  detail::check_defined(op, x);
  XG_CHECK(x.numel() > 0, "{}: cannot reduce an empty tensor (shape {}); the operation has no identity", op, shape_string(x.shape()));
  return detail::extreme_split(x, {}, false, IsMax);
}

template <bool IsMax>
Tensor arg_extreme(const char* op, const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  detail::check_defined(op, x);
  if (!dim) {
    Tensor flat = reshape(x.detach(), {-1});
    auto [value, index] = extreme_along<IsMax>(op, flat, 0, false);
    if (keepdim) return reshape(index, Shape(x.dim(), 1));
    return index;
  }
  NoGradGuard no_grad;
  return std::get<1>(extreme_along<IsMax>(op, x, *dim, keepdim));
}

int64_t reduced_count(const Shape& shape, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= shape[d];
  return n;
}

}  // namespace

namespace detail {

Tensor extreme_split(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max) {
  const std::vector<int64_t> reduce = dims.empty() ? normalize_dims(is_max ? "amax" : "amin", {}, x.dim()) : dims;
  auto extreme = [is_max](const Tensor& t, int64_t d, bool keep) { return std::get<0>(is_max ? max(t, d, keep) : min(t, d, keep)); };
  Tensor out;
  {
    NoGradGuard no_grad;
    if (reduce.size() == static_cast<size_t>(x.dim())) {
      // All dims: one flat pass (a 0-D tensor is its own extreme).
      out = x.dim() == 0 ? x.detach().clone() : extreme(reshape(x.detach(), {-1}), 0, false);
      if (keepdim) out = reshape(out, Shape(x.dim(), 1)).clone();
    } else {
      out = x.detach();
      for (auto it = reduce.rbegin(); it != reduce.rend(); ++it) out = extreme(out, *it, keepdim);
    }
  }
  if (should_record({&x})) {
    Tensor value = out.detach();
    record(is_max ? "AmaxBackward" : "AminBackward", {x}, out, {x, value}, [reduce, keepdim](const BackwardContext& ctx, const Tensor& gy) {
      Tensor v = ctx.saved(1);
      Tensor g = gy;
      if (!keepdim) {
        for (int64_t d : reduce) {  // ascending order restores positions
          v = unsqueeze(v, d);
          g = unsqueeze(g, d);
        }
      }
      // Ties share the gradient evenly (PyTorch's amax/amin and full max/min); NaN == NaN here, so a
      // NaN extreme sends the gradient to the NaNs it came from.
      const Tensor& input = ctx.saved(0);
      Tensor hit = add(eq(input, v), mul(ne(input, input), ne(v, v)));
      return TensorList{mul(hit, div(g, sum(hit, reduce, true)))};
    });
  }
  return out;
}

Tensor pow_zero_grad_at_zero(const Tensor& x, double exponent) {
  // x^e has an infinite slope at x = 0 for e < 1; that branch is routed through a constant, so the
  // gradient there is 0 (and stays finite under double backward too).
  Tensor zero = eq(x, 0.0);
  Tensor safe = where(zero, ones({}, x.dtype()), x);
  return where(zero, zeros({}, x.dtype()), pow(safe, exponent));
}

}  // namespace detail

Tensor sum(const Tensor& x, IntArrayRef dims_list, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::check_defined("sum", x);
  const std::vector<int64_t> reduce = detail::normalize_dims("sum", dims, x.dim());
  Tensor out = sum_impl(x, reduce, keepdim);
  if (should_record({&x})) {
    Shape input_shape = x.shape();
    record("SumBackward", {x}, out, {}, [reduce, keepdim, input_shape](const BackwardContext&, const Tensor& gy) {
      Tensor g = gy;
      if (!keepdim) {
        for (int64_t d : reduce) g = unsqueeze(g, d);  // ascending order restores positions
      }
      return TensorList{expand(g, input_shape)};
    });
  }
  autograd::check_forward_anomaly("sum", out);
  return out;
}

Tensor mean(const Tensor& x, IntArrayRef dims_list, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::dispatch_floating("mean", x, [](auto) { return 0; });
  const std::vector<int64_t> reduce = detail::normalize_dims("mean", dims, x.dim());
  const int64_t n = reduced_count(x.shape(), reduce);
  // PyTorch: the mean of zero elements is NaN (0/0), with an empty gradient.
  const double scale = n > 0 ? 1.0 / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
  return autograd::anomaly_checked_as("mean", [&] { return mul(sum(x, dims, keepdim), scale); });
}

Tensor max(const Tensor& x) { return extreme_all<true>("max", x); }
Tensor min(const Tensor& x) { return extreme_all<false>("min", x); }
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along<true>("max", x, dim, keepdim); }
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along<false>("min", x, dim, keepdim); }
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { return arg_extreme<true>("argmax", x, dim, keepdim); }
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) { return arg_extreme<false>("argmin", x, dim, keepdim); }

Tensor var(const Tensor& x, IntArrayRef dims_list, bool unbiased, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::dispatch_floating("var", x, [](auto) { return 0; });
  const std::vector<int64_t> reduce = detail::normalize_dims("var", dims, x.dim());
  const int64_t n = reduced_count(x.shape(), reduce);
  const int64_t dof = n - (unbiased ? 1 : 0);
  // PyTorch: no degrees of freedom left (one element, unbiased; or none) gives NaN, and NaN gradients.
  const double scale = dof > 0 ? 1.0 / static_cast<double>(dof) : std::numeric_limits<double>::quiet_NaN();
  return autograd::anomaly_checked_as("var", [&] {
    Tensor centered = sub(x, mean(x, dims, true));
    return mul(sum(mul(centered, centered), dims, keepdim), scale);
  });
}

Tensor std(const Tensor& x, IntArrayRef dims_list, bool unbiased, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  // PyTorch: the gradient of std is 0 where std is 0 (a constant slice), not 0 * inf = NaN.
  return detail::pow_zero_grad_at_zero(var(x, dims, unbiased, keepdim), 0.5);
}

Tensor logsumexp(const Tensor& x, IntArrayRef dims_list, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::dispatch_floating("logsumexp", x, [](auto) { return 0; });
  const std::vector<int64_t> reduce = detail::normalize_dims("logsumexp", dims, x.dim());
  XG_CHECK(reduced_count(x.shape(), reduce) > 0, "logsumexp: cannot reduce over zero elements (shape {})", shape_string(x.shape()));
  // Shift by the (constant) maximum so exp never overflows; an all -inf slice keeps shift 0.
  Tensor shift = x.detach();
  for (auto it = reduce.rbegin(); it != reduce.rend(); ++it) shift = std::get<0>(max(shift, *it, true));
  shift = where(eq(abs(shift), INFINITY), zeros({}, x.dtype()), shift);
  Tensor out = add(log(sum(exp(sub(x, shift)), dims, true)), shift);
  if (!keepdim) {
    for (auto it = reduce.rbegin(); it != reduce.rend(); ++it) out = squeeze(out, *it);
  }
  return out;
}

Tensor norm(const Tensor& x, double p, IntArrayRef dims_list, bool keepdim) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::dispatch_floating("norm", x, [](auto) { return 0; });
  XG_CHECK(p > 0, "norm: expected p > 0 (or infinity), got {}", p);
  detail::normalize_dims("norm", dims, x.dim());  // report a bad dim as norm's, not as the inner sum's
  return autograd::anomaly_checked_as("norm", [&]() -> Tensor {
    // PyTorch: the gradient of the inf-norm is shared evenly between tied largest |x| (all dims or some).
    if (std::isinf(p)) return detail::extreme_split(abs(x), detail::normalize_dims("norm", dims, x.dim()), keepdim, true);
    if (p == 1) return sum(abs(x), dims, keepdim);
    if (p == 2) {
      Tensor total = sum(mul(x, x), dims, keepdim);
      Tensor out = sqrt(total.detach());
      if (should_record({&x})) {
        record("NormBackward", {x}, out, {x, out}, [dims, keepdim](const BackwardContext& ctx, const Tensor& gy) {
          // d||x|| / dx = x / ||x||, defined as 0 at x = 0 (PyTorch's subgradient).
          Tensor n = ctx.saved(1);
          Tensor g = gy;
          if (!keepdim) {
            auto reduce = detail::normalize_dims("norm", dims, ctx.saved(0).dim());
            for (int64_t d : reduce) {
              n = unsqueeze(n, d);
              g = unsqueeze(g, d);
            }
          }
          Tensor safe = where(eq(n, 0.0), ones({}, n.dtype()), n);
          return TensorList{mul(g, div(ctx.saved(0), safe))};
        });
      }
      return out;
    }
    // As PyTorch (and the p = 2 path above), the gradient of the norm of a zero slice is 0.
    // The inner |x|^p has an infinite slope at x = 0 too when p < 1: PyTorch's gradient there is 0.
    return detail::pow_zero_grad_at_zero(sum(detail::pow_zero_grad_at_zero(abs(x), p), dims, keepdim), 1.0 / p);
  });
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  detail::check_defined("sum_to", x);
  const Shape from = x.shape();
  if (from == shape) return x;
  XG_CHECK(from.size() >= shape.size(), "sum_to: cannot sum shape {} to the larger rank of shape {}", shape_string(from),
           shape_string(shape));
  const size_t lead = from.size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t d = 0; d < from.size(); ++d) {
    if (d < lead) dims.push_back(static_cast<int64_t>(d));
    else if (shape[d - lead] == 1 && from[d] != 1) dims.push_back(static_cast<int64_t>(d));
    else XG_CHECK(shape[d - lead] == from[d] || shape[d - lead] == 1, "sum_to: shape {} is not a broadcast of {}", shape_string(from), shape_string(shape));
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

// ---- softmax ---------------------------------------------------------------------------------------
namespace {
template <bool Log>
Tensor softmax_forward(const char* op, const Tensor& x, int64_t dim) {
  return detail::dispatch_floating(op, x, [&](auto tag) {
    using T = decltype(tag);
    const Shape shape = x.shape();
    const int64_t d = detail::normalize_dim(op, dim, x.dim());
    detail::DimSplit s = detail::split_at(shape, d);
    const Tensor dense = detail::dense(x);
    const auto in = dense.array<T>();
    Array<T> out(in.shape());
    std::vector<T> row(static_cast<size_t>(s.size));
    for (int64_t o = 0; o < s.outer; ++o) {
      for (int64_t i = 0; i < s.inner; ++i) {
        const T* p = in.data() + o * s.size * s.inner + i;
        T* q = out.data() + o * s.size * s.inner + i;
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t k = 0; k < s.size; ++k) m = std::max(m, p[k * s.inner]);
        if (std::isinf(m)) m = m > 0 ? m : T(0);  // all -inf: keep the NaN-free path below
        T total = 0;
        for (int64_t k = 0; k < s.size; ++k) {
          row[k] = std::exp(p[k * s.inner] - m);
          total += row[k];
        }
        if constexpr (Log) {
          // (x - m) - log(total), not x - (m + log(total)): m + log(total) would round at the logits'
          // magnitude (an ulp of 1e4 is 1e-3 in float32), while x - m is exact near the maximum.
          const T log_total = std::log(total);
          for (int64_t k = 0; k < s.size; ++k) q[k * s.inner] = (p[k * s.inner] - m) - log_total;
        } else {
          T inv = T(1) / total;
          for (int64_t k = 0; k < s.size; ++k) q[k * s.inner] = row[k] * inv;
        }
      }
    }
    return detail::make_tensor(std::move(out));
  });
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor out = softmax_forward<false>("softmax", x, dim);
  if (should_record({&x})) {
    record("SoftmaxBackward", {x}, out, {out}, [dim](const BackwardContext& ctx, const Tensor& gy) {
      const Tensor& y = ctx.saved(0);
      return TensorList{mul(y, sub(gy, sum(mul(gy, y), {dim}, true)))};
    });
  }
  autograd::check_forward_anomaly("softmax", out);
  return out;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor out = softmax_forward<true>("log_softmax", x, dim);
  if (should_record({&x})) {
    record("LogSoftmaxBackward", {x}, out, {out}, [dim](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{sub(gy, mul(exp(ctx.saved(0)), sum(gy, {dim}, true)))};
    });
  }
  autograd::check_forward_anomaly("log_softmax", out);
  return out;
}

}  // namespace xg

namespace xg {

Tensor cumsum(const Tensor& x, int64_t dim) {
  detail::check_defined("cumsum", x);
  const int64_t d = detail::normalize_dim("cumsum", dim, x.dim());
  const Shape s = x.shape();
  const detail::DimSplit split = detail::split_at(s, d);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    // PyTorch accumulates float32 in double (its CPU acc_type) and rounds each output once.
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    Array<T> result = detail::new_array<T>(s, "cumsum");
    const Tensor dense = detail::dense(x);
    const T* in = dense.contiguous_data<T>();
    T* o = result.data();
    for (int64_t outer = 0; outer < split.outer; ++outer)
      for (int64_t inner = 0; inner < split.inner; ++inner) {
        Acc running = 0;
        for (int64_t k = 0; k < split.size; ++k) {
          const int64_t at = (outer * split.size + k) * split.inner + inner;
          running += static_cast<Acc>(in[at]);
          o[at] = static_cast<T>(running);
        }
      }
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    // d out_k / d x_i = 1 for i <= k: the gradient is the reversed cumulative sum of gy.
    record("CumsumBackward", {x}, out, {}, [d](const BackwardContext&, const Tensor& gy) {
      return TensorList{flip(cumsum(flip(gy, {d}), d), {d})};
    });
  }
  return out;
}

}  // namespace xg

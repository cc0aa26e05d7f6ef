// Ops written as compositions of other differentiable ops: their gradients (and gradients of
// gradients) are those of the ops they are made of, so they need no backward of their own.
#include <cmath>
#include <cstdlib>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xg {

namespace {
/// dims normalised for `op`; a dim given twice is an error (as PyTorch's flip and roll).
std::vector<int64_t> distinct_dims(const char* op, IntArrayRef dims, int64_t ndim) {
  std::vector<int64_t> out;
  for (int64_t dim : dims) {
    const int64_t d = detail::normalize_dim(op, dim, ndim);
    for (int64_t seen : out) XG_CHECK(seen != d, "{}: dim {} appears multiple times in the list of dims {}", op, d, fmt::format("{}", dims.vec()));
    out.push_back(d);
  }
  return out;
}

/// The 0/1 mask [rows, cols] of the elements tril (lower = true) or triu keeps, in x's dtype.
Tensor triangle_mask(const Tensor& x, int64_t diagonal, bool lower, const char* op) {
  XG_CHECK(x.dim() >= 2, "{}: input tensor must have at least 2 dimensions, got shape {}", op, shape_string(x.shape()));
  const int64_t rows = x.size(-2), cols = x.size(-1);
  Tensor row = arange(0, static_cast<double>(rows), 1, TensorOptions(kInt64)).reshape({rows, 1});
  Tensor col = arange(0, static_cast<double>(cols), 1, TensorOptions(kInt64)).reshape({1, cols});
  Tensor offset = sub(col, row);  // j - i
  return lower ? le(offset, static_cast<double>(diagonal)) : ge(offset, static_cast<double>(diagonal));
}
}  // namespace

Tensor flip(const Tensor& x, IntArrayRef dims) {
  detail::check_defined("flip", x);
  Tensor out = x;
  bool copied = false;
  for (int64_t d : distinct_dims("flip", dims, x.dim())) {
    const int64_t n = x.dim() == 0 ? 1 : x.size(d);
    if (n <= 1) continue;
    out = index_select(out, d, arange(static_cast<double>(n - 1), -1, -1, TensorOptions(kInt64)));
    copied = true;
  }
  return copied ? out : clone(x);  // flip always returns a new tensor, never x itself
}

Tensor roll(const Tensor& x, IntArrayRef shifts, IntArrayRef dims) {
  detail::check_defined("roll", x);
  if (dims.empty()) {
    XG_CHECK(shifts.size() == 1, "roll: without dims, expected one shift (the flattened tensor is rolled), got {}",
             fmt::format("{}", shifts.vec()));
    return roll(flatten(x), shifts, {0}).view(x.shape());
  }
  XG_CHECK(shifts.size() == dims.size(), "roll: shifts and dimensions must align, got {} shifts and {} dims", shifts.size(), dims.size());
  Tensor out = x;
  bool copied = false;
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t d = detail::normalize_dim("roll", dims[k], x.dim());
    const int64_t n = x.dim() == 0 ? 1 : x.size(d);
    if (n == 0) continue;
    const int64_t s = ((shifts[k] % n) + n) % n;  // element i moves to (i + shift) mod n
    if (s == 0) continue;
    out = cat({narrow(out, d, n - s, s), narrow(out, d, 0, n - s)}, d);
    copied = true;
  }
  return copied ? out : clone(x);
}

Tensor repeat(const Tensor& x, IntArrayRef repeats) {
  detail::check_defined("repeat", x);
  const int64_t extra = static_cast<int64_t>(repeats.size()) - x.dim();
  XG_CHECK(extra >= 0, "repeat: number of dimensions of repeat dims ({}) can not be smaller than number of dimensions of tensor ({})",
           repeats.size(), x.dim());
  // x as [1, s0, 1, s1, ...] expanded to [r0, s0, r1, s1, ...]: copy k of dim d is the outer index, so
  // flattening each pair gives index k * s + j, the tiling repeat() means.
  Shape pairs, expanded, result;
  for (size_t i = 0; i < repeats.size(); ++i) {
    const int64_t r = repeats[i];
    XG_CHECK(r >= 0, "repeat: repeats must be non-negative, got {}", fmt::format("{}", repeats.vec()));
    const int64_t s = static_cast<int64_t>(i) < extra ? 1 : x.size(static_cast<int64_t>(i) - extra);
    pairs.insert(pairs.end(), {1, s});
    expanded.insert(expanded.end(), {r, s});
    result.push_back(r * s);
  }
  return expand(reshape(x, pairs), expanded).reshape(result);
}

Tensor tile(const Tensor& x, IntArrayRef dims) {
  detail::check_defined("tile", x);
  std::vector<int64_t> repeats = dims.vec();
  // Fewer reps than dims: the leading dims are repeated once (NumPy's tile).
  if (static_cast<int64_t>(repeats.size()) < x.dim()) repeats.insert(repeats.begin(), static_cast<size_t>(x.dim()) - repeats.size(), 1);
  return repeat(x, repeats);
}

Tensor tril(const Tensor& x, int64_t diagonal) {
  detail::check_defined("tril", x);
  // where(), not a multiply: an inf or NaN above the diagonal becomes 0, as in PyTorch.
  return where(triangle_mask(x, diagonal, true, "tril"), x, zeros({}, x.dtype()));
}

Tensor triu(const Tensor& x, int64_t diagonal) {
  detail::check_defined("triu", x);
  return where(triangle_mask(x, diagonal, false, "triu"), x, zeros({}, x.dtype()));
}

Tensor outer(const Tensor& a, const Tensor& b) {
  detail::check_defined("outer", a);
  detail::check_defined("outer", b);
  XG_CHECK(a.dim() == 1 && b.dim() == 1, "outer: expected two 1-D vectors, got shapes {} and {}", shape_string(a.shape()),
           shape_string(b.shape()));
  return mul(a.reshape({a.size(0), 1}), b.reshape({1, b.size(0)}));
}

Tensor trace(const Tensor& x) {
  detail::check_defined("trace", x);
  XG_CHECK(x.dim() == 2, "trace: expected a matrix (2-D), got shape {}", shape_string(x.shape()));
  return sum(diagonal(x));
}

Tensor lerp(const Tensor& start, const Tensor& end, double weight) {
  detail::check_defined("lerp", start);
  detail::check_defined("lerp", end);
  // PyTorch's two-sided formula: exact at weight 0 and at weight 1.
  Tensor diff = sub(end, start);
  return std::abs(weight) < 0.5 ? add(start, mul(diff, weight)) : sub(end, mul(diff, 1.0 - weight));
}

Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  detail::check_defined("lerp", start);
  detail::check_defined("lerp", end);
  detail::check_defined("lerp", weight);
  Tensor diff = sub(end, start);
  return where(lt(abs(weight), 0.5), add(start, mul(weight, diff)), sub(end, mul(diff, rsub(weight, 1.0))));
}

}  // namespace xg

// Ops written as compositions of other differentiable ops: their gradients (and gradients of
// gradients) are those of the ops they are made of, so they need no backward of their own.
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

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
/// beta * input for addmm and baddbmm. beta = 0 ignores input entirely, so a NaN or inf in it does not
/// propagate, while input still gets its (zero) gradient, as PyTorch's.
Tensor scaled_input(const Tensor& input, double beta) {
  if (beta == 0.0) return where(zeros(input.shape(), kInt64), input, zeros({}, input.dtype()));
  return beta == 1.0 ? input : mul(input, beta);
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
  Tensor out = expand(reshape(x, pairs), expanded).reshape(result);
  // reshape() keeps a view when the strides allow (repeats of 1, or a stride-0 result); repeat() always
  // returns a tensor of its own, as PyTorch's.
  return out.is_alias_of(x) ? clone(out) : out;
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

Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, double beta, double alpha) {
  detail::check_defined("addmm", input);
  XG_CHECK(mat1.defined() && mat2.defined() && mat1.dim() == 2 && mat2.dim() == 2,
           "addmm: expected two matrices (2-D), got shapes {} and {}", mat1.defined() ? shape_string(mat1.shape()) : "undefined",
           mat2.defined() ? shape_string(mat2.shape()) : "undefined");
  Tensor product = mm(mat1, mat2);
  if (alpha != 1.0) product = mul(product, alpha);
  // input must broadcast to the product's shape (PyTorch: "expand" it, never grow the result).
  Tensor base = expand(input, product.shape());
  return add(scaled_input(base, beta), product);
}

Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, double beta, double alpha) {
  detail::check_defined("baddbmm", input);
  XG_CHECK(batch1.defined() && batch2.defined() && batch1.dim() == 3 && batch2.dim() == 3,
           "baddbmm: expected two batches of matrices (3-D), got shapes {} and {}",
           batch1.defined() ? shape_string(batch1.shape()) : "undefined", batch2.defined() ? shape_string(batch2.shape()) : "undefined");
  Tensor product = bmm(batch1, batch2);
  if (alpha != 1.0) product = mul(product, alpha);
  return add(scaled_input(expand(input, product.shape()), beta), product);
}

Tensor diag_embed(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  detail::check_defined("diag_embed", x);
  XG_CHECK(x.dim() >= 1, "diag_embed: expected at least a 1-D input, got a 0-D tensor");
  const int64_t rank = x.dim() + 1;
  const int64_t d1 = detail::normalize_dim("diag_embed", dim1, rank), d2 = detail::normalize_dim("diag_embed", dim2, rank);
  XG_CHECK(d1 != d2, "diag_embed: diagonal dimensions cannot be identical {}, {}", dim1, dim2);
  const int64_t n = x.size(-1) + std::abs(offset);
  // The batch dims of x in order, with the two new n-sized dims at d1 and d2.
  Shape out_shape;
  int64_t next = 0;
  for (int64_t d = 0; d < rank; ++d) out_shape.push_back(d == d1 || d == d2 ? n : x.size(next++));
  Tensor out = zeros(out_shape, x.dtype());
  // diagonal() lists the diagonal last, after the batch dims in order: exactly x's layout. Writing
  // through the view records CopySlices, so the gradient is the diagonal of the output's gradient.
  out.diagonal(offset, d1, d2).copy_(x);
  return out;
}

Tensor diag(const Tensor& x, int64_t diagonal_index) {
  detail::check_defined("diag", x);
  XG_CHECK(x.dim() == 1 || x.dim() == 2, "diag: expected a 1-D or 2-D tensor, got shape {}", shape_string(x.shape()));
  if (x.dim() == 1) return diag_embed(x, diagonal_index, 0, 1);
  return clone(diagonal(x, diagonal_index, 0, 1));  // a copy, as torch.diag
}

TensorList meshgrid(const TensorList& tensors, const std::string& indexing) {
  XG_CHECK(indexing == "ij" || indexing == "xy", "meshgrid: indexing must be \"ij\" or \"xy\", got \"{}\"", indexing);
  XG_CHECK(!tensors.empty(), "meshgrid: expected at least one tensor");
  Shape grid;
  for (size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined("meshgrid", tensors[i]);
    XG_CHECK(tensors[i].dim() <= 1, "meshgrid: expected 0-D or 1-D tensors, got shape {} for tensor {}", shape_string(tensors[i].shape()), i);
    XG_CHECK(tensors[i].dtype() == tensors[0].dtype(), "meshgrid: expected all tensors to have the same dtype, got {} and {}",
             tensors[0].dtype(), tensors[i].dtype());
    grid.push_back(tensors[i].numel());
  }
  // "xy" is "ij" with the first two inputs' roles swapped (Cartesian: x varies along columns).
  const bool swap = indexing == "xy" && tensors.size() >= 2;
  if (swap) std::swap(grid[0], grid[1]);
  TensorList out;
  for (size_t i = 0; i < tensors.size(); ++i) {
    size_t axis = i;
    if (swap && i < 2) axis = 1 - i;
    Shape along(grid.size(), 1);
    along[axis] = tensors[i].numel();
    out.push_back(expand(reshape(tensors[i], along), grid));
  }
  return out;
}

Tensor repeat_interleave(const Tensor& x, const Tensor& repeats, std::optional<int64_t> dim) {
  detail::check_defined("repeat_interleave", x);
  XG_CHECK(repeats.defined() && repeats.dtype() == kInt64 && repeats.dim() <= 1,
           "repeat_interleave: repeats must be an int64 scalar or 1-D tensor, got {}",
           repeats.defined() ? fmt::format("{} of shape {}", repeats.dtype(), shape_string(repeats.shape())) : "undefined");
  Tensor input = dim ? x : flatten(x);
  const int64_t d = dim ? detail::normalize_dim("repeat_interleave", *dim, x.dim()) : 0;
  const int64_t n = input.dim() == 0 ? 1 : input.size(d);
  const Tensor counts = repeats.contiguous();
  const int64_t* r = counts.contiguous_data<int64_t>();
  XG_CHECK(counts.numel() == 1 || counts.numel() == n, "repeat_interleave: repeats must have the same size as input along dim ({}), got {}",
           n, counts.numel());
  std::vector<double> picks;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t times = r[counts.numel() == 1 ? 0 : i];
    XG_CHECK(times >= 0, "repeat_interleave: repeats can not be negative, got {}", times);
    picks.insert(picks.end(), static_cast<size_t>(times), static_cast<double>(i));
  }
  const Tensor index = picks.empty() ? zeros({0}, kInt64) : tensor(picks, {static_cast<int64_t>(picks.size())}, kInt64);
  return index_select(input, d, index);
}

Tensor repeat_interleave(const Tensor& x, int64_t repeats, std::optional<int64_t> dim) {
  return repeat_interleave(x, full({}, static_cast<double>(repeats), kInt64), dim);
}

Tensor repeat_interleave(const Tensor& repeats) {
  XG_CHECK(repeats.defined() && repeats.dtype() == kInt64 && repeats.dim() == 1,
           "repeat_interleave: repeats must be a 1-D int64 tensor, got {}",
           repeats.defined() ? fmt::format("{} of shape {}", repeats.dtype(), shape_string(repeats.shape())) : "undefined");
  return repeat_interleave(arange(0, static_cast<double>(repeats.numel()), 1, kInt64), repeats, 0);
}

Tensor cdist(const Tensor& x1, const Tensor& x2, double p) {
  detail::check_defined("cdist", x1);
  detail::check_defined("cdist", x2);
  XG_CHECK(x1.dim() >= 2 && x2.dim() >= 2, "cdist: expected at least 2-D inputs [.., P, M] and [.., R, M], got shapes {} and {}",
           shape_string(x1.shape()), shape_string(x2.shape()));
  XG_CHECK(x1.size(-1) == x2.size(-1), "cdist: x1 and x2 must have the same number of columns, got shapes {} and {}",
           shape_string(x1.shape()), shape_string(x2.shape()));
  XG_CHECK(p >= 0, "cdist: only supports non-negative p values, got {}", p);
  // [.., P, 1, M] - [.., 1, R, M], then the p-norm of each difference (its gradient is 0 at distance 0).
  Tensor diff = sub(unsqueeze(x1, -2), unsqueeze(x2, -3));
  if (p == 0) {
    // The count of differing coordinates; its gradient is zero (kept in the graph, as PyTorch's).
    return add(sum(ne(diff, 0.0), -1), sum(where(zeros(diff.shape(), kInt64), diff, zeros({}, diff.dtype())), -1));
  }
  return norm(diff, p, -1);
}

}  // namespace xg

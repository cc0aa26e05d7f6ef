// Shape and indexing ops. xgrad tensors are always contiguous, so a view op returns a new tensor
// with its own buffer (from the caching allocator); gradients flow exactly as through PyTorch views.
#include <limits>
#include <numeric>

#include "xgrad/autograd/kernels.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;
using detail::dispatch;

namespace {

Shape infer_shape(const char* op, const Shape& requested, int64_t numel, const Shape& from) {
  Shape shape = requested;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      XG_CHECK(infer < 0, "{}: only one dimension can be inferred (-1) in {}", op, shape_string(requested));
      infer = static_cast<int>(i);
    } else {
      XG_CHECK(shape[i] >= 0, "{}: invalid size {} in shape {}", op, shape[i], shape_string(requested));
    }
  }
  if (infer >= 0) {
    shape[infer] = 1;
    // Checked: a product that wraps around (e.g. [2^62 + 1, 4, -1]) must not look like a divisor of numel.
    const int64_t known = detail::checked_numel(op, shape);
    XG_CHECK(known != 0 && numel % known == 0, "{}: shape {} is invalid for input of shape {} ({} elements)", op,
             shape_string(requested), shape_string(from), numel);
    shape[infer] = numel / known;
  }
  XG_CHECK(detail::checked_numel(op, shape) == numel, "{}: shape {} is invalid for input of shape {} ({} elements)", op,
           shape_string(requested), shape_string(from), numel);
  return shape;
}

/// A new tensor of `out_shape` filled by strided_copy from x (src offset and strides given).
Tensor gather_strided(const char* op, const Tensor& x, const Shape& out_shape, int64_t src_offset, const std::vector<int64_t>& src_strides) {
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> out = detail::new_array<T>(out_shape, op);
    std::vector<int64_t> dst_strides = detail::contiguous_strides(out_shape);
    detail::strided_copy(x.array<T>().data() + src_offset, src_strides.data(), out.data(), dst_strides.data(), out_shape);
    return detail::make_tensor(std::move(out));
  });
}

void check_index(const char* op, const Tensor& index) {
  XG_CHECK(index.defined(), "{}: the index tensor is undefined", op);
  XG_CHECK(index.dtype() == kInt64, "{}: expected an int64 index tensor, got {}", op, index.dtype());
}

/// The gradient of slice: gy placed at start, start+step, ... along dim in zeros of input_shape.
Tensor slice_backward(const Tensor& gy, const Shape& input_shape, int64_t dim, int64_t start, int64_t step) {
  Tensor out = dispatch(gy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(input_shape, "slice backward");
    std::fill(result.begin(), result.end(), T(0));
    std::vector<int64_t> dst_strides = detail::contiguous_strides(input_shape);
    int64_t offset = start * dst_strides[dim];
    dst_strides[dim] *= step;
    const Shape gshape = gy.shape();
    std::vector<int64_t> src_strides = detail::contiguous_strides(gshape);
    detail::strided_copy(gy.array<T>().data(), src_strides.data(), result.data() + offset, dst_strides.data(), gshape);
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&gy})) {
    int64_t end = start + step * (gy.shape()[dim] - 1) + 1;
    record("SliceBackwardBackward", {gy}, out, {}, [dim, start, end, step](const BackwardContext&, const Tensor& gg) {
      return TensorList{slice(gg, dim, start, end, step)};
    });
  }
  return out;
}

}  // namespace

Tensor clone(const Tensor& x) {
  detail::check_defined("clone", x);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> copy = x.array<T>();
    return detail::make_tensor(std::move(copy));
  });
  if (should_record({&x})) record("CloneBackward", {x}, out, {}, [](const BackwardContext&, const Tensor& gy) { return TensorList{gy}; });
  return out;
}

Tensor Tensor::clone() const { return xg::clone(*this); }

namespace {
/// reshape and view (the same here: tensors are contiguous), with the caller's name in errors.
Tensor reshape_as(const char* op, const Tensor& x, const Shape& shape) {
  detail::check_defined(op, x);
  const Shape from = x.shape();
  const Shape target = infer_shape(op, shape, x.numel(), from);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> copy = x.array<T>();
    copy.reshape(detail::to_xshape(target));
    return detail::make_tensor(std::move(copy));
  });
  if (should_record({&x})) {
    record("ReshapeBackward", {x}, out, {}, [from](const BackwardContext&, const Tensor& gy) { return TensorList{reshape(gy, from)}; });
  }
  return out;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return reshape_as("reshape", x, shape); }
Tensor view(const Tensor& x, const Shape& shape) { return reshape_as("view", x, shape); }

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  detail::check_defined("flatten", x);
  const Shape s = x.shape();
  if (s.empty()) return reshape(x, {1});
  int64_t a = detail::normalize_dim("flatten", start_dim, x.dim()), b = detail::normalize_dim("flatten", end_dim, x.dim());
  XG_CHECK(a <= b, "flatten: start_dim ({}) cannot come after end_dim ({})", start_dim, end_dim);
  Shape out(s.begin(), s.begin() + a);
  int64_t merged = 1;
  for (int64_t d = a; d <= b; ++d) merged *= s[d];
  out.push_back(merged);
  out.insert(out.end(), s.begin() + b + 1, s.end());
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x) {
  detail::check_defined("squeeze", x);
  Shape out;
  for (int64_t d : x.shape())
    if (d != 1) out.push_back(d);
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  detail::check_defined("squeeze", x);
  Shape s = x.shape();
  int64_t d = detail::normalize_dim("squeeze", dim, x.dim());  // a 0-D tensor accepts dim 0 and -1 only
  if (s.empty()) return x;
  if (s[d] != 1) return x;
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  detail::check_defined("unsqueeze", x);
  Shape s = x.shape();
  int64_t d = detail::normalize_dim("unsqueeze", dim, x.dim() + 1);
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  detail::check_defined("permute", x);
  const Shape s = x.shape();
  const int64_t n = x.dim();
  XG_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: expected {} dims for a tensor of shape {}, got {}", n,
           shape_string(s), fmt::format("{}", dims));
  std::vector<int64_t> perm(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = detail::normalize_dim("permute", dims[i], n);
    XG_CHECK(!used[perm[i]], "permute: dim {} repeats in {}", perm[i], fmt::format("{}", dims));
    used[perm[i]] = true;
  }
  std::vector<int64_t> in_strides = detail::contiguous_strides(s), src_strides(n);
  Shape out_shape(n);
  for (int64_t i = 0; i < n; ++i) {
    out_shape[i] = s[perm[i]];
    src_strides[i] = in_strides[perm[i]];
  }
  Tensor out = gather_strided("permute", x, out_shape, 0, src_strides);
  if (should_record({&x})) {
    std::vector<int64_t> inverse(n);
    for (int64_t i = 0; i < n; ++i) inverse[perm[i]] = i;
    record("PermuteBackward", {x}, out, {}, [inverse](const BackwardContext&, const Tensor& gy) { return TensorList{permute(gy, inverse)}; });
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  detail::check_defined("transpose", x);
  const int64_t n = x.dim();
  int64_t a = detail::normalize_dim("transpose", dim0, n), b = detail::normalize_dim("transpose", dim1, n);
  if (n == 0) return x;
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[a], perm[b]);
  return permute(x, perm);
}

Tensor t(const Tensor& x) {
  detail::check_defined("t", x);
  XG_CHECK(x.dim() <= 2, "t: expects a tensor with <= 2 dimensions, but got shape {} (use transpose)", shape_string(x.shape()));
  return x.dim() < 2 ? x : transpose(x, 0, 1);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  detail::check_defined("expand", x);
  const Shape s = x.shape();
  XG_CHECK(shape.size() >= s.size(), "expand: the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({})",
           shape.size(), s.size());
  Shape target = shape;
  const size_t lead = shape.size() - s.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      XG_CHECK(shape[i] >= 0, "expand: -1 is not allowed for a new leading dimension (shape {})", shape_string(shape));
      continue;
    }
    int64_t have = s[i - lead];
    if (shape[i] == -1) target[i] = have;
    XG_CHECK(target[i] >= 0, "expand: invalid size {} in shape {} (only -1 may be negative)", shape[i], shape_string(shape));
    XG_CHECK(have == target[i] || have == 1,
             "expand: the expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension {}; target shape {}, tensor shape {}",
             target[i], have, i, shape_string(shape), shape_string(s));
  }
  if (target == s) return x;
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(target, "expand");
    detail::broadcast_copy(x.array<T>().data(), s, result.data(), target);
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    record("ExpandBackward", {x}, out, {}, [s](const BackwardContext&, const Tensor& gy) { return TensorList{sum_to(gy, s)}; });
  }
  return out;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand(x, shape); }

Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) {
  detail::check_defined("slice", x);
  XG_CHECK(x.dim() > 0, "slice: cannot slice a 0-D tensor");
  XG_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const Shape s = x.shape();
  const int64_t d = detail::normalize_dim("slice", dim, x.dim());
  const int64_t size = s[d];
  auto wrap = [size](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + size : v, 0, size); };
  int64_t from = wrap(start.value_or(0)), to = wrap(end.value_or(size));
  // Written so that no step (up to INT64_MAX) overflows: count = ceil((to - from) / step).
  const int64_t count = to > from ? (to - from - 1) / step + 1 : 0;
  // With at most one element taken the step is never walked; 1 keeps stride * step in range.
  if (count <= 1) step = 1;
  Shape out_shape = s;
  out_shape[d] = count;
  std::vector<int64_t> strides = detail::contiguous_strides(s);
  int64_t offset = from * strides[d];
  strides[d] *= step;
  Tensor out = gather_strided("slice", x, out_shape, count > 0 ? offset : 0, strides);
  if (should_record({&x})) {
    record("SliceBackward", {x}, out, {}, [s, d, from, step](const BackwardContext&, const Tensor& gy) {
      return TensorList{slice_backward(gy, s, d, from, step)};
    });
  }
  return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  detail::check_defined("narrow", x);
  XG_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-D tensor");
  const int64_t d = detail::normalize_dim("narrow", dim, x.dim());
  const int64_t size = x.shape()[d];
  if (start < 0) start += size;
  XG_CHECK(start >= 0 && start <= size, "narrow: start ({}) out of range for dimension {} of size {}", start, dim, size);
  XG_CHECK(length >= 0 && start + length <= size, "narrow: start ({}) + length ({}) exceeds dimension size ({})", start, length, size);
  return slice(x, d, start, start + length, 1);
}

Tensor cat(const TensorList& tensors, int64_t dim) {
  XG_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) XG_CHECK(tensors[i].defined(), "cat: tensor {} is undefined", i);
  const Tensor& first = tensors[0];
  const int64_t n = first.dim();
  XG_CHECK(n > 0, "cat: zero-dimensional tensor (at position 0) cannot be concatenated");
  const int64_t d = detail::normalize_dim("cat", dim, n);
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    XG_CHECK(t.dtype() == first.dtype(), "cat: expected all tensors to have dtype {}, but tensor {} is {}", first.dtype(), i, t.dtype());
    Shape s = t.shape();
    XG_CHECK(static_cast<int64_t>(s.size()) == n, "cat: tensors must have the same number of dimensions: got {} and {} (tensor {})", n, s.size(), i);
    for (int64_t k = 0; k < n; ++k)
      XG_CHECK(k == d || s[k] == first.shape()[k],
               "cat: sizes of tensors must match except in dimension {}; expected size {} but got size {} for tensor {} in dimension {}", d,
               first.shape()[k], s[k], i, k);
    sizes.push_back(s[d]);
    out_shape[d] = detail::checked_add("cat", out_shape[d], s[d], "the total size along the cat dimension");
  }
  Tensor out = dispatch(first.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(out_shape, "cat");
    std::vector<int64_t> dst_strides = detail::contiguous_strides(out_shape);
    int64_t offset = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      Shape s = tensors[i].shape();
      std::vector<int64_t> src_strides = detail::contiguous_strides(s);
      detail::strided_copy(tensors[i].array<T>().data(), src_strides.data(), result.data() + offset * dst_strides[d], dst_strides.data(), s);
      offset += sizes[i];
    }
    return detail::make_tensor(std::move(result));
  });
  if (should_record(tensors)) {
    record("CatBackward", tensors, out, {}, [sizes, d](const BackwardContext& ctx, const Tensor& gy) {
      TensorList grads;
      int64_t offset = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        grads.push_back(ctx.needs_grad(i) ? narrow(gy, d, offset, sizes[i]) : Tensor());
        offset += sizes[i];
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const TensorList& tensors, int64_t dim) {
  XG_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  const Shape s = tensors[0].shape();
  const int64_t d = detail::normalize_dim("stack", dim, static_cast<int64_t>(s.size()) + 1);
  TensorList expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    XG_CHECK(tensors[i].defined() && tensors[i].shape() == s, "stack: expects each tensor to be equal size, but got {} at entry 0 and {} at entry {}",
             shape_string(s), tensors[i].defined() ? shape_string(tensors[i].shape()) : "undefined", i);
    expanded.push_back(unsqueeze(tensors[i], d));
  }
  return cat(expanded, d);
}

TensorList split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_defined("split_with_sizes", x);
  const int64_t d = detail::normalize_dim("split_with_sizes", dim, x.dim());
  const int64_t total = x.shape()[d];
  int64_t sum = 0;
  for (int64_t s : sizes) {
    XG_CHECK(s >= 0, "split_with_sizes: sizes must be non-negative, got {}", fmt::format("{}", sizes));
    sum += s;
  }
  XG_CHECK(sum == total, "split_with_sizes: sizes {} add up to {} but dimension {} has size {}", fmt::format("{}", sizes), sum, dim, total);
  TensorList pieces;
  {
    // One node for all pieces (below), not one SliceBackward per piece: those would each build a
    // zero-filled gradient of x's full size, O(pieces * size) for splitting a sequence into steps.
    AutoGradMode no_record(false);
    int64_t offset = 0;
    for (int64_t s : sizes) {
      pieces.push_back(narrow(x, d, offset, s));
      offset += s;
    }
  }
  if (should_record({&x})) {
    autograd::record_multi("SplitWithSizesBackward", {x}, pieces, {}, [sizes, d](const BackwardContext& ctx, const TensorList& grads) {
      TensorList parts;
      parts.reserve(sizes.size());
      Shape piece_shape = ctx.input_shape(0);
      for (size_t i = 0; i < sizes.size(); ++i) {
        piece_shape[d] = sizes[i];
        parts.push_back(grads[i].defined() ? grads[i] : zeros(piece_shape, ctx.input_dtype(0)));
      }
      return TensorList{cat(parts, d)};
    });
  }
  return pieces;
}

TensorList split(const Tensor& x, int64_t split_size, int64_t dim) {
  detail::check_defined("split", x);
  XG_CHECK(split_size > 0, "split: split_size must be positive, got {}", split_size);
  const int64_t d = detail::normalize_dim("split", dim, x.dim());
  const int64_t total = x.shape()[d];
  std::vector<int64_t> sizes;
  for (int64_t offset = 0; offset < total; offset += split_size) sizes.push_back(std::min(split_size, total - offset));
  if (sizes.empty()) sizes.push_back(0);
  return split_with_sizes(x, sizes, d);
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  detail::check_defined("chunk", x);
  XG_CHECK(chunks > 0, "chunk: expected a positive number of chunks, got {}", chunks);
  const int64_t d = detail::normalize_dim("chunk", dim, x.dim());
  const int64_t total = x.shape()[d];
  return split(x, std::max<int64_t>(1, (total + chunks - 1) / chunks), d);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined("index_select", x);
  check_index("index_select", index);
  XG_CHECK(index.dim() <= 1, "index_select: expected a 1-D index, got shape {}", shape_string(index.shape()));
  const Shape s = x.shape();
  const int64_t d = detail::normalize_dim("index_select", dim, x.dim());
  detail::DimSplit split = detail::split_at(s, d);
  const int64_t* idx = index.array<int64_t>().data();
  const int64_t count = index.numel();
  XG_CHECK(!s.empty() || count == 1, "index_select: the index into a 0-D tensor can have only 1 value, got {}", count);
  for (int64_t k = 0; k < count; ++k)
    XG_CHECK(idx[k] >= 0 && idx[k] < split.size, "index_select: index {} is out of range for dimension {} of size {}", idx[k], dim, split.size);
  Shape out_shape = s;
  if (!out_shape.empty()) out_shape[d] = count;
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(out_shape, "index_select");
    const T* in = x.array<T>().data();
    for (int64_t o = 0; o < split.outer; ++o)
      for (int64_t k = 0; k < count; ++k)
        std::copy_n(in + (o * split.size + idx[k]) * split.inner, split.inner, result.data() + (o * count + k) * split.inner);
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    record("IndexSelectBackward", {x}, out, {index}, [s, d](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{index_add(zeros(s, gy.dtype()), d, ctx.saved(0), gy)};
    });
  }
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source) {
  detail::check_same_dtype("index_add", x, source);
  check_index("index_add", index);
  XG_CHECK(index.dim() <= 1, "index_add: expected a 1-D index, got shape {}", shape_string(index.shape()));
  const Shape s = x.shape();
  const int64_t d = detail::normalize_dim("index_add", dim, x.dim());
  Shape expected = s;
  if (!expected.empty()) expected[d] = index.numel();
  XG_CHECK(!s.empty() || index.numel() == 1, "index_add: the index into a 0-D tensor can have only 1 value, got {}", index.numel());
  XG_CHECK(source.shape() == expected, "index_add: source should have shape {} (x's shape with dim {} = number of indices), got {}",
           shape_string(expected), dim, shape_string(source.shape()));
  detail::DimSplit split = detail::split_at(s, d);
  const int64_t* idx = index.array<int64_t>().data();
  const int64_t count = index.numel();
  for (int64_t k = 0; k < count; ++k)
    XG_CHECK(idx[k] >= 0 && idx[k] < split.size, "index_add: index {} is out of range for dimension {} of size {}", idx[k], dim, split.size);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = x.array<T>();
    const T* src = source.array<T>().data();
    for (int64_t o = 0; o < split.outer; ++o)
      for (int64_t k = 0; k < count; ++k) {
        T* dst = result.data() + (o * split.size + idx[k]) * split.inner;
        const T* from = src + (o * count + k) * split.inner;
        for (int64_t i = 0; i < split.inner; ++i) dst[i] += from[i];
      }
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x, &source})) {
    record("IndexAddBackward", {x, index, source}, out, {index}, [d](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{ctx.needs_grad(0) ? gy : Tensor(), Tensor(), ctx.needs_grad(2) ? index_select(gy, d, ctx.saved(0)) : Tensor()};
    });
  }
  return out;
}

namespace {
/// Checks gather/scatter index shapes and calls f(out_offset_in_x, index_offset) for each index element,
/// where x_offset already has the indexed position substituted.
template <class F>
void for_each_indexed(const char* op, const Shape& x_shape, int64_t d, const Tensor& index, const Shape* src_shape, F f) {
  const Shape is = index.shape();
  XG_CHECK(is.size() == x_shape.size(), "{}: index must have as many dimensions as the input ({}), got shape {}", op, x_shape.size(),
           shape_string(is));
  for (size_t k = 0; k < is.size(); ++k) {
    if (static_cast<int64_t>(k) != d)
      XG_CHECK(is[k] <= x_shape[k], "{}: index shape {} exceeds input shape {} in dimension {}", op, shape_string(is), shape_string(x_shape), k);
    if (src_shape) XG_CHECK(is[k] <= (*src_shape)[k], "{}: index shape {} exceeds source shape {} in dimension {}", op, shape_string(is), shape_string(*src_shape), k);
  }
  const int64_t n = static_cast<int64_t>(is.size());
  std::vector<int64_t> x_strides = detail::contiguous_strides(x_shape);
  std::vector<int64_t> src_strides = src_shape ? detail::contiguous_strides(*src_shape) : detail::contiguous_strides(is);
  const int64_t* idx = index.array<int64_t>().data();
  std::vector<int64_t> counter(static_cast<size_t>(n), 0);
  const int64_t total = index.numel();
  const int64_t dim_size = x_shape.empty() ? 1 : x_shape[static_cast<size_t>(d)];  // a 0-D tensor has one slot along dim 0
  for (int64_t e = 0; e < total; ++e) {
    int64_t target = idx[e];
    XG_CHECK(target >= 0 && target < dim_size, "{}: index {} is out of bounds for dimension {} with size {}", op, target, d, dim_size);
    int64_t x_offset = 0, src_offset = 0;
    for (int64_t k = 0; k < n; ++k) {
      x_offset += (k == d ? target : counter[k]) * x_strides[k];
      src_offset += counter[k] * src_strides[k];
    }
    f(x_offset, src_offset);
    for (int64_t k = n - 1; k >= 0; --k) {
      if (++counter[k] < is[k]) break;
      counter[k] = 0;
    }
  }
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined("gather", x);
  check_index("gather", index);
  const Shape s = x.shape();
  const int64_t d = detail::normalize_dim("gather", dim, x.dim());
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(index.shape(), "gather");
    const T* in = x.array<T>().data();
    T* dst = result.data();
    for_each_indexed("gather", s, d, index, nullptr, [&](int64_t xo, int64_t io) { dst[io] = in[xo]; });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    record("GatherBackward", {x}, out, {index}, [s, d](const BackwardContext& ctx, const Tensor& gy) {
      return TensorList{scatter_add(zeros(s, gy.dtype()), d, ctx.saved(0), gy)};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  detail::check_same_dtype("scatter_add", x, src);
  check_index("scatter_add", index);
  const Shape s = x.shape(), ss = src.shape();
  const int64_t d = detail::normalize_dim("scatter_add", dim, x.dim());
  XG_CHECK(ss.size() == s.size(), "scatter_add: src must have as many dimensions as the input ({}), got shape {}", s.size(), shape_string(ss));
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = x.array<T>();
    const T* from = src.array<T>().data();
    T* dst = result.data();
    for_each_indexed("scatter_add", s, d, index, &ss, [&](int64_t xo, int64_t so) { dst[xo] += from[so]; });
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x, &src})) {
    record("ScatterAddBackward", {x, index, src}, out, {index}, [d, ss](const BackwardContext& ctx, const Tensor& gy) {
      Tensor gsrc;
      if (ctx.needs_grad(2)) {
        // gather gives the index's shape; the rest of src received nothing.
        Tensor g = gather(gy, d, ctx.saved(0));
        Shape gs = g.shape();
        std::vector<int64_t> padding;
        for (size_t k = gs.size(); k-- > 0;) {
          padding.push_back(0);
          padding.push_back(ss[k] - gs[k]);
        }
        gsrc = gs == ss ? g : pad(g, padding, 0.0);
      }
      return TensorList{ctx.needs_grad(0) ? gy : Tensor(), Tensor(), gsrc};
    });
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_defined("masked_fill", x);
  detail::check_defined("masked_fill", mask);
  detail::check_scalar_fits("masked_fill", x.dtype(), value);
  const Shape s = x.shape();
  XG_CHECK(detail::broadcast_shapes("masked_fill", s, mask.shape()) == s,
           "masked_fill: the mask of shape {} must broadcast to the input's shape {}", shape_string(mask.shape()), shape_string(s));
  Tensor fill = full({}, value, x.dtype());
  return where(mask, fill, x);
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  check_index("one_hot", indices);
  const int64_t* idx = indices.array<int64_t>().data();
  const int64_t n = indices.numel();
  int64_t highest = -1;
  for (int64_t i = 0; i < n; ++i) {
    XG_CHECK(idx[i] >= 0, "one_hot: class values must be non-negative, got {}", idx[i]);
    highest = std::max(highest, idx[i]);
  }
  if (num_classes == -1) {
    XG_CHECK(n > 0, "one_hot: cannot infer the number of classes from an empty tensor");
    num_classes = highest + 1;
  }
  XG_CHECK(num_classes > 0, "one_hot: num_classes must be positive or -1, got {}", num_classes);
  XG_CHECK(highest < num_classes, "one_hot: class value {} is out of range for num_classes = {}", highest, num_classes);
  Shape out_shape = indices.shape();
  out_shape.push_back(num_classes);
  Array<int64_t> result = detail::new_array<int64_t>(out_shape, "one_hot");
  std::fill(result.begin(), result.end(), 0);
  for (int64_t i = 0; i < n; ++i) result.data()[i * num_classes + idx[i]] = 1;
  return detail::make_tensor(std::move(result));
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value) {
  detail::check_defined("pad", x);
  detail::check_scalar_fits("pad", x.dtype(), value);
  XG_CHECK(padding.size() % 2 == 0, "pad: padding length must be even (pairs of left, right), got {}", padding.size());
  const Shape s = x.shape();
  const int64_t n = x.dim();
  XG_CHECK(static_cast<int64_t>(padding.size() / 2) <= n, "pad: padding of length {} covers more than the {} dimensions of shape {}",
           padding.size(), n, shape_string(s));
  // INT64_MIN has no negation (the crop of the backward and the start below negate the padding).
  for (int64_t amount : padding)
    XG_CHECK(amount != std::numeric_limits<int64_t>::min(), "pad: padding {} is out of range", fmt::format("{}", padding));
  Shape out_shape = s;
  std::vector<int64_t> before(n, 0), after(n, 0);
  for (size_t p = 0; p < padding.size() / 2; ++p) {
    int64_t d = n - 1 - static_cast<int64_t>(p);
    before[d] = padding[2 * p];
    after[d] = padding[2 * p + 1];
    const int64_t left = detail::checked_add("pad", s[d], padding[2 * p], "padded size");
    out_shape[d] = detail::checked_add("pad", left, padding[2 * p + 1], "padded size");
    XG_CHECK(out_shape[d] >= 0, "pad: padding {} makes dimension {} of size {} negative", fmt::format("{}", padding), d, s[d]);
  }
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(out_shape, "pad");
    std::fill(result.begin(), result.end(), static_cast<T>(value));
    std::vector<int64_t> in_strides = detail::contiguous_strides(s), out_strides = detail::contiguous_strides(out_shape);
    // The input's rows [in_start, in_end) land in the output; when a range is empty nothing is copied
    // (and the offsets, which could then be out of range, are not computed).
    Shape extent(n);
    std::vector<int64_t> in_start(n);
    for (int64_t d = 0; d < n; ++d) {
      in_start[d] = std::min<int64_t>(s[d], std::max<int64_t>(0, -before[d]));
      const int64_t in_end = after[d] >= 0 ? s[d] : s[d] + after[d];  // min(s, out - before), without overflow
      extent[d] = std::max<int64_t>(0, in_end - in_start[d]);
    }
    if (detail::shape_numel(extent) > 0) {
      int64_t src_offset = 0, dst_offset = 0;
      for (int64_t d = 0; d < n; ++d) {
        src_offset += in_start[d] * in_strides[d];
        dst_offset += (in_start[d] + before[d]) * out_strides[d];
      }
      detail::strided_copy(x.array<T>().data() + src_offset, in_strides.data(), result.data() + dst_offset, out_strides.data(), extent);
    }
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    std::vector<int64_t> crop(padding.size());
    for (size_t i = 0; i < padding.size(); ++i) crop[i] = -padding[i];
    record("PadBackward", {x}, out, {}, [crop](const BackwardContext&, const Tensor& gy) { return TensorList{pad(gy, crop, 0.0)}; });
  }
  return out;
}

}  // namespace xg

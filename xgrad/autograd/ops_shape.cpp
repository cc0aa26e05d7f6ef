// Shape and indexing ops that make new tensors (clone, cat, stack, index_select, gather, pad, ...); the
// view ops, which share their input's storage, are in ops_view.cpp.
#include <limits>
#include <numeric>

#include "xgrad/autograd/kernels.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;
using detail::dispatch;

namespace {

void check_index(const char* op, const Tensor& index) {
  XG_CHECK(index.defined(), "{}: the index tensor is undefined", op);
  XG_CHECK(index.dtype() == kInt64, "{}: expected an int64 index tensor, got {}", op, index.dtype());
}

}  // namespace

Tensor clone(const Tensor& x) {
  detail::check_defined("clone", x);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor copy = detail::make_tensor(detail::new_array<T>(x.shape(), "clone"));  // out of memory names clone
    if (x.is_contiguous()) {
      const T* src = x.contiguous_data<T>();
      std::copy(src, src + x.numel(), copy.contiguous_data<T>());
    } else if (x.dim() <= detail::kMaxDims) {
      // The broadcast loop: dims coalesced, rows split over threads, a stride-0 (expanded) operand
      // read as a fill. Materialising an expanded gradient costs what expand's copy used to.
      int64_t strides[detail::kMaxDims];
      detail::operand_strides(x, x.shape(), strides);
      const T* src = x.data_ptr<T>();
      detail::strided_broadcast_loop(src, strides, src, strides, copy.contiguous_data<T>(), x.shape(), [](T v, T) { return v; });
    } else {
      detail::copy_strided(copy.contiguous_data<T>(), detail::contiguous_geometry(x.impl()->sizes), detail::storage_data<T>(x),
                           detail::geometry_of(x));
    }
    return copy;
  });
  if (should_record({&x})) record("CloneBackward", {x}, out, {}, [](const BackwardContext&, const Tensor& gy) { return TensorList{gy}; });
  return out;
}

namespace detail {
Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  NoGradGuard no_grad;
  return xg::clone(t);
}
}  // namespace detail

Tensor Tensor::clone() const { return xg::clone(*this); }

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
      const Tensor& piece = tensors[i];  // any strides: copied through its own geometry
      std::vector<int64_t> piece_strides(piece.impl()->strides.begin(), piece.impl()->strides.end());
      detail::strided_copy(piece.data_ptr<T>(), piece_strides.data(), result.data() + offset * dst_strides[d], dst_strides.data(), s);
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

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined("index_select", x);
  check_index("index_select", index);
  XG_CHECK(index.dim() <= 1, "index_select: expected a 1-D index, got shape {}", shape_string(index.shape()));
  const Shape s = x.shape();
  const int64_t d = detail::normalize_dim("index_select", dim, x.dim());
  detail::DimSplit split = detail::split_at(s, d);
  const Tensor dense_index = detail::dense(index);
  const int64_t* idx = dense_index.contiguous_data<int64_t>();
  const int64_t count = index.numel();
  XG_CHECK(!s.empty() || count == 1, "index_select: the index into a 0-D tensor can have only 1 value, got {}", count);
  for (int64_t k = 0; k < count; ++k)
    XG_CHECK(idx[k] >= 0 && idx[k] < split.size, "index_select: index {} is out of range for dimension {} of size {}", idx[k], dim, split.size);
  Shape out_shape = s;
  if (!out_shape.empty()) out_shape[d] = count;
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::new_array<T>(out_shape, "index_select");
    const Tensor dense = detail::dense(x);
    const T* in = dense.contiguous_data<T>();
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
  const Tensor dense_index = detail::dense(index);
  const int64_t* idx = dense_index.contiguous_data<int64_t>();
  const int64_t count = index.numel();
  for (int64_t k = 0; k < count; ++k)
    XG_CHECK(idx[k] >= 0 && idx[k] < split.size, "index_add: index {} is out of range for dimension {} of size {}", idx[k], dim, split.size);
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array<T> result = detail::dense(x).array<T>();
    const Tensor dense_source = detail::dense(source);
    const T* src = dense_source.contiguous_data<T>();
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
  const Tensor dense_index = detail::dense(index);
  const int64_t* idx = dense_index.contiguous_data<int64_t>();
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
    const Tensor dense = detail::dense(x);
    const T* in = dense.contiguous_data<T>();
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
    Array<T> result = detail::dense(x).array<T>();
    const Tensor dense_src = detail::dense(src);
    const T* from = dense_src.contiguous_data<T>();
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
  const Tensor dense_indices = detail::dense(indices);
  const int64_t* idx = dense_indices.contiguous_data<int64_t>();
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
    std::vector<int64_t> in_strides = x.strides(), out_strides = detail::contiguous_strides(out_shape);  // x: any layout
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
      detail::strided_copy(x.data_ptr<T>() + src_offset, in_strides.data(), result.data() + dst_offset, out_strides.data(), extent);
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

// View ops: each computes the sizes, strides and offset of its result over the input's storage and
// copies nothing (make_view). Autograd for views and in-place ops on them follows PyTorch's design
// (NOTE [Autograd View Variables] in torch/csrc/autograd/variable.h): a view remembers its root base;
// an in-place op on a view rewrites the base's history (CopySlices), and a view whose storage was
// modified since its grad_fn was set gets a fresh one (AsStridedBackward from the base) when read.
#include <numeric>

#include "xgrad/autograd/kernels.hpp"

namespace xg {

using autograd::BackwardContext;
using autograd::record;
using autograd::should_record;
using detail::dispatch;
using detail::Geometry;

namespace {

// ---- the two strided adjoints behind every view gradient ------------------------------------------
// A zeroed scratch buffer covers both geometries (offsets relative to it). gather writes x through
// `from` and reads the result through `to`; scatter_add adds g through `to` (overlapping windows sum)
// and reads through `from`. Each is the other's backward, so view gradients are differentiable to any
// order (PyTorch's as_strided and as_strided_backward).
Tensor strided_scatter_add(const Tensor& g, const Geometry& to, const Geometry& from);

Tensor strided_gather(const Tensor& x, const Geometry& from, const Geometry& to) {
  Tensor out = dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Tensor dense = x.detach().contiguous();
    const int64_t span = std::max(detail::storage_end(from), detail::storage_end(to));
    Array<T> buffer = detail::new_array<T>({span}, "as_strided");
    std::fill(buffer.begin(), buffer.end(), T(0));
    detail::copy_strided(buffer.data(), from, dense.contiguous_data<T>(), detail::contiguous_geometry(from.sizes));
    Array<T> result = detail::new_array<T>(Shape(to.sizes.begin(), to.sizes.end()), "as_strided");
    detail::copy_strided(result.data(), detail::contiguous_geometry(to.sizes), buffer.data(), to);
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&x})) {
    record("AsStridedBackward", {x}, out, {}, [from, to](const BackwardContext&, const Tensor& gy) {
      return TensorList{strided_scatter_add(gy, to, from)};
    });
  }
  return out;
}

Tensor strided_scatter_add(const Tensor& g, const Geometry& to, const Geometry& from) {
  Tensor out = dispatch(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Tensor dense = g.detach().contiguous();
    const int64_t span = std::max(detail::storage_end(from), detail::storage_end(to));
    Array<T> buffer = detail::new_array<T>({span}, "as_strided backward");
    std::fill(buffer.begin(), buffer.end(), T(0));
    detail::for_each_strided(buffer.data(), to, dense.contiguous_data<T>(), detail::contiguous_geometry(to.sizes),
                             [](T& b, const T& v) { b += v; });
    Array<T> result = detail::new_array<T>(Shape(from.sizes.begin(), from.sizes.end()), "as_strided backward");
    detail::copy_strided(result.data(), detail::contiguous_geometry(from.sizes), buffer.data(), from);
    return detail::make_tensor(std::move(result));
  });
  if (should_record({&g})) {
    record("AsStridedBackwardBackward", {g}, out, {}, [from, to](const BackwardContext&, const Tensor& gg) {
      return TensorList{strided_gather(gg, from, to)};
    });
  }
  return out;
}

/// Geometries of a base and a view of it, relative to the lower of their offsets.
std::pair<Geometry, Geometry> relative(Geometry base, Geometry view) {
  const int64_t origin = std::min(base.offset, view.offset);
  base.offset -= origin;
  view.offset -= origin;
  return {base, view};
}

// ---- building views ---------------------------------------------------------------------------------
/// The only place a view is made: x's storage with geometry g, remembering its root base; records
/// `backward` when x requires grad. `meta` is how it was made (MultiOutputNode for split's pieces).
Tensor make_view(const Tensor& x, Geometry g, const char* node_name, autograd::BackwardFn backward,
                 CreationMeta meta = CreationMeta::Default, const char* creator = nullptr) {
  const TensorImpl& from = *x.impl();
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = from.storage;
  detail::set_geometry(*impl, std::move(g.sizes), std::move(g.strides), g.offset);
  impl->view_base = from.view_base ? from.view_base : x.impl();
  impl->view_version = from.storage->version;
  if (from.view_base && from.creation_meta != CreationMeta::Default) {
    impl->creation_meta = from.creation_meta;  // a view of a restricted view is restricted alike
    impl->view_creator = from.view_creator;
  } else if (!autograd::GradMode::is_enabled()) {
    impl->creation_meta = CreationMeta::NoGradMode;
  } else {
    impl->creation_meta = meta;
    impl->view_creator = creator;
  }
  Tensor out(std::move(impl));
  if (backward && should_record({&x})) record(node_name, {x}, out, {}, std::move(backward));
  return out;
}

/// A view that selects elements (narrow, slice, select, diagonal, unfold, as_strided): its gradient
/// is gy scattered (added, for overlapping windows) into zeros of the input's shape, through the same
/// geometry applied to a contiguous input.
template <class Select>
Tensor selecting_view(const char* node_name, const Tensor& x, Select select) {
  Geometry in = detail::contiguous_geometry(x.impl()->sizes);
  Geometry out = select(in);
  return make_view(x, select(detail::geometry_of(x)), node_name, [in, out](const BackwardContext&, const Tensor& gy) {
    return TensorList{strided_scatter_add(gy, out, in)};
  });
}

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

/// Strides for viewing (sizes, strides) as `target` without a copy, or nothing when some dimension
/// would span two non-contiguous chunks (PyTorch's computeStride).
std::optional<Sizes> view_strides(const Sizes& sizes, const Sizes& strides, const Shape& target) {
  Sizes out(target.size());
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  if (numel == 0) {
    // any strides do; PyTorch gives the contiguous ones
    Sizes t(target.begin(), target.end());
    return detail::row_major_strides(t);
  }
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(sizes.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= sizes[tensor_d];
    if (tensor_d == 0 || (sizes[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Tensor reshape_view(const char* op, const Tensor& x, const Shape& target, const Sizes& strides) {
  const Shape from = x.shape();
  Geometry g{Sizes(target.begin(), target.end()), strides, x.storage_offset()};
  return make_view(x, std::move(g), op == std::string_view("view") ? "ViewBackward" : "ReshapeAliasBackward",
                   [from](const BackwardContext&, const Tensor& gy) { return TensorList{reshape(gy, from)}; });
}

std::vector<int64_t> normalized_permutation(const char* op, const std::vector<int64_t>& dims, int64_t n, const Shape& s) {
  XG_CHECK(static_cast<int64_t>(dims.size()) == n, "{}: expected {} dims for a tensor of shape {}, got {}", op, n,
           shape_string(s), fmt::format("{}", dims));
  std::vector<int64_t> perm(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = detail::normalize_dim(op, dims[i], n);
    XG_CHECK(!used[static_cast<size_t>(perm[i])], "{}: dim {} repeats in {}", op, perm[i], fmt::format("{}", dims));
    used[static_cast<size_t>(perm[i])] = true;
  }
  return perm;
}

Tensor permute_view(const char* node_name, const Tensor& x, const std::vector<int64_t>& perm) {
  const TensorImpl& impl = *x.impl();
  const size_t n = perm.size();
  Geometry g{Sizes(n), Sizes(n), impl.storage_offset};
  for (size_t i = 0; i < n; ++i) {
    g.sizes[i] = impl.sizes[static_cast<size_t>(perm[i])];
    g.strides[i] = impl.strides[static_cast<size_t>(perm[i])];
  }
  std::vector<int64_t> inverse(n);
  for (size_t i = 0; i < n; ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return make_view(x, std::move(g), node_name, [inverse](const BackwardContext&, const Tensor& gy) {
    return TensorList{permute(gy, inverse)};
  });
}

/// Start and element count of slice(dim, start, end, step) on a dimension of `size`, as PyTorch
/// (negative bounds wrap, then clamp).
std::pair<int64_t, int64_t> slice_range(int64_t size, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) {
  auto wrap = [size](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + size : v, 0, size); };
  const int64_t from = wrap(start.value_or(0)), to = wrap(end.value_or(size));
  // Written so that no step (up to INT64_MAX) overflows: count = ceil((to - from) / step).
  const int64_t count = to > from ? (to - from - 1) / step + 1 : 0;
  return {from, count};
}

}  // namespace

// ---- view ops -----------------------------------------------------------------------------------------
Tensor view(const Tensor& x, IntArrayRef shape_list) {
  const std::vector<int64_t> shape = shape_list.vec();
  detail::check_defined("view", x);
  const Shape target = infer_shape("view", shape, x.numel(), x.shape());
  std::optional<Sizes> strides = view_strides(x.impl()->sizes, x.impl()->strides, target);
  XG_CHECK(strides.has_value(),
           "view: view size is not compatible with input tensor's size and stride (at least one dimension spans "
           "across two contiguous subspaces): shape {} with strides {} cannot be viewed as {}. Use .reshape(...) instead",
           shape_string(x.shape()), shape_string(x.strides()), shape_string(target));
  return reshape_view("view", x, target, *strides);
}

Tensor reshape(const Tensor& x, IntArrayRef shape_list) {
  const std::vector<int64_t> shape = shape_list.vec();
  detail::check_defined("reshape", x);
  const Shape target = infer_shape("reshape", shape, x.numel(), x.shape());
  std::optional<Sizes> strides = view_strides(x.impl()->sizes, x.impl()->strides, target);
  if (strides) return reshape_view("reshape", x, target, *strides);
  // Not expressible as a view: a copy, which is neither an alias nor a view (PyTorch's _unsafe_view).
  Tensor out;
  {
    NoGradGuard no_grad;
    out = x.clone();
  }
  Sizes sizes(target.begin(), target.end());
  Sizes dense_strides = detail::row_major_strides(sizes);
  detail::set_geometry(*out.impl(), std::move(sizes), std::move(dense_strides), 0);
  if (should_record({&x})) {
    const Shape from = x.shape();
    record("ReshapeBackward", {x}, out, {}, [from](const BackwardContext&, const Tensor& gy) { return TensorList{reshape(gy, from)}; });
  }
  return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  detail::check_defined("flatten", x);
  const Shape s = x.shape();
  if (s.empty()) return reshape(x, {1});
  int64_t a = detail::normalize_dim("flatten", start_dim, x.dim()), b = detail::normalize_dim("flatten", end_dim, x.dim());
  XG_CHECK(a <= b, "flatten: start_dim ({}) cannot come after end_dim ({})", start_dim, end_dim);
  if (a == b) return x;  // PyTorch returns the input itself
  Shape out(s.begin(), s.begin() + a);
  int64_t merged = 1;
  for (int64_t d = a; d <= b; ++d) merged *= s[static_cast<size_t>(d)];
  out.push_back(merged);
  out.insert(out.end(), s.begin() + b + 1, s.end());
  return reshape(x, out);
}

Tensor unflatten(const Tensor& x, int64_t dim, const Shape& sizes) {
  detail::check_defined("unflatten", x);
  XG_CHECK(x.dim() > 0, "unflatten: cannot unflatten a 0-D tensor");
  XG_CHECK(!sizes.empty(), "unflatten: sizes must be non-empty");
  const int64_t d = detail::normalize_dim("unflatten", dim, x.dim());
  const Shape s = x.shape();
  const Shape inner = infer_shape("unflatten", sizes, s[static_cast<size_t>(d)], {s[static_cast<size_t>(d)]});
  Shape out(s.begin(), s.begin() + d);
  out.insert(out.end(), inner.begin(), inner.end());
  out.insert(out.end(), s.begin() + d + 1, s.end());
  return view(x, out);
}

Tensor squeeze(const Tensor& x) {
  detail::check_defined("squeeze", x);
  const TensorImpl& impl = *x.impl();
  Geometry g{{}, {}, impl.storage_offset};
  for (size_t d = 0; d < impl.sizes.size(); ++d) {
    if (impl.sizes[d] == 1) continue;
    g.sizes.push_back(impl.sizes[d]);
    g.strides.push_back(impl.strides[d]);
  }
  const Shape from = x.shape();
  return make_view(x, std::move(g), "SqueezeBackward",
                   [from](const BackwardContext&, const Tensor& gy) { return TensorList{reshape(gy, from)}; });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  detail::check_defined("squeeze", x);
  const int64_t d = detail::normalize_dim("squeeze", dim, x.dim());  // a 0-D tensor accepts dim 0 and -1 only
  Geometry g = detail::geometry_of(x);
  if (x.dim() > 0 && g.sizes[static_cast<size_t>(d)] == 1) {
    g.sizes.erase(g.sizes.begin() + d);
    g.strides.erase(g.strides.begin() + d);
  }
  const Shape from = x.shape();
  return make_view(x, std::move(g), "SqueezeBackward",
                   [from](const BackwardContext&, const Tensor& gy) { return TensorList{reshape(gy, from)}; });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  detail::check_defined("unsqueeze", x);
  const int64_t d = detail::normalize_dim("unsqueeze", dim, x.dim() + 1);
  Geometry g = detail::geometry_of(x);
  const int64_t stride = d >= x.dim() ? 1 : g.sizes[static_cast<size_t>(d)] * g.strides[static_cast<size_t>(d)];
  g.sizes.insert(g.sizes.begin() + d, 1);
  g.strides.insert(g.strides.begin() + d, stride);
  return make_view(x, std::move(g), "UnsqueezeBackward",
                   [d](const BackwardContext&, const Tensor& gy) { return TensorList{squeeze(gy, d)}; });
}

Tensor permute(const Tensor& x, IntArrayRef dims_list) {
  const std::vector<int64_t> dims = dims_list.vec();
  detail::check_defined("permute", x);
  return permute_view("PermuteBackward", x, normalized_permutation("permute", dims, x.dim(), x.shape()));
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  detail::check_defined("transpose", x);
  const int64_t n = x.dim();
  const int64_t a = detail::normalize_dim("transpose", dim0, n), b = detail::normalize_dim("transpose", dim1, n);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  if (n > 0) std::swap(perm[static_cast<size_t>(a)], perm[static_cast<size_t>(b)]);
  return permute_view("TransposeBackward", x, perm);
}

Tensor t(const Tensor& x) {
  detail::check_defined("t", x);
  XG_CHECK(x.dim() <= 2, "t: expects a tensor with <= 2 dimensions, but got shape {} (use transpose)", shape_string(x.shape()));
  return transpose(x, 0, x.dim() < 2 ? 0 : 1);
}

Tensor movedim(const Tensor& x, const std::vector<int64_t>& source, const std::vector<int64_t>& destination) {
  detail::check_defined("movedim", x);
  const int64_t n = x.dim();
  XG_CHECK(source.size() == destination.size(),
           "movedim: Invalid source or destination dims: source ({} dims) should contain the same number of dims as "
           "destination ({} dims)",
           source.size(), destination.size());
  std::vector<int64_t> perm(static_cast<size_t>(n), -1);
  std::vector<bool> src_used(static_cast<size_t>(n), false), dst_used(static_cast<size_t>(n), false);
  for (size_t i = 0; i < source.size(); ++i) {
    const int64_t s = detail::normalize_dim("movedim", source[i], n), d = detail::normalize_dim("movedim", destination[i], n);
    XG_CHECK(!src_used[static_cast<size_t>(s)], "movedim: repeated dim in `source` ({})", fmt::format("{}", source));
    XG_CHECK(!dst_used[static_cast<size_t>(d)], "movedim: repeated dim in `destination` ({})", fmt::format("{}", destination));
    src_used[static_cast<size_t>(s)] = dst_used[static_cast<size_t>(d)] = true;
    perm[static_cast<size_t>(d)] = s;
  }
  // The other dims keep their order in the remaining places.
  int64_t next = 0;
  for (size_t d = 0; d < perm.size(); ++d) {
    if (perm[d] >= 0) continue;
    while (src_used[static_cast<size_t>(next)]) ++next;
    perm[d] = next++;
  }
  return permute_view("PermuteBackward", x, perm);
}

Tensor movedim(const Tensor& x, int64_t source, int64_t destination) {
  return movedim(x, std::vector<int64_t>{source}, std::vector<int64_t>{destination});
}

Tensor expand(const Tensor& x, IntArrayRef shape_list) {
  const std::vector<int64_t> shape = shape_list.vec();
  detail::check_defined("expand", x);
  const Shape s = x.shape();
  XG_CHECK(shape.size() >= s.size(), "expand: the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({})",
           shape.size(), s.size());
  const TensorImpl& impl = *x.impl();
  Geometry g{Sizes(shape.size()), Sizes(shape.size(), 0), impl.storage_offset};
  const size_t lead = shape.size() - s.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      XG_CHECK(shape[i] >= 0, "expand: -1 is not allowed for a new leading dimension (shape {})", shape_string(shape));
      g.sizes[i] = shape[i];
      continue;
    }
    const int64_t have = s[i - lead];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    XG_CHECK(want >= 0, "expand: invalid size {} in shape {} (only -1 may be negative)", shape[i], shape_string(shape));
    XG_CHECK(have == want || have == 1,
             "expand: the expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension {}; target shape {}, tensor shape {}",
             want, have, i, shape_string(shape), shape_string(s));
    g.sizes[i] = want;
    g.strides[i] = have == want ? impl.strides[i - lead] : 0;
  }
  detail::checked_numel("expand", Shape(g.sizes.begin(), g.sizes.end()));
  return make_view(x, std::move(g), "ExpandBackward", [s](const BackwardContext&, const Tensor& gy) { return TensorList{sum_to(gy, s)}; });
}

Tensor broadcast_to(const Tensor& x, IntArrayRef shape) { return expand(x, shape); }

Tensor slice(const Tensor& x, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) {
  detail::check_defined("slice", x);
  XG_CHECK(x.dim() > 0, "slice: cannot slice a 0-D tensor");
  XG_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const int64_t d = detail::normalize_dim("slice", dim, x.dim());
  const auto [from, count] = slice_range(x.impl()->sizes[static_cast<size_t>(d)], start, end, step);
  return selecting_view("SliceBackward", x, [d = static_cast<size_t>(d), from = from, count = count, step](Geometry g) {
    g.offset += from * g.strides[d];
    g.sizes[d] = count;
    g.strides[d] *= step;
    return g;
  });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  detail::check_defined("narrow", x);
  XG_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-D tensor");
  const int64_t d = detail::normalize_dim("narrow", dim, x.dim());
  const int64_t size = x.impl()->sizes[static_cast<size_t>(d)];
  if (start < 0) start += size;
  XG_CHECK(start >= 0 && start <= size, "narrow: start ({}) out of range for dimension {} of size {}", start, dim, size);
  XG_CHECK(length >= 0 && start + length <= size, "narrow: start ({}) + length ({}) exceeds dimension size ({})", start, length, size);
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  detail::check_defined("select", x);
  XG_CHECK(x.dim() > 0, "select: select() cannot be applied to a 0-dim tensor");
  const int64_t d = detail::normalize_dim("select", dim, x.dim());
  const int64_t size = x.impl()->sizes[static_cast<size_t>(d)];
  XG_CHECK(index >= -size && index < size, "select: index {} out of range for tensor of size {} at dimension {}", index,
           shape_string(x.shape()), dim);
  const int64_t i = index < 0 ? index + size : index;
  return selecting_view("SelectBackward", x, [d = static_cast<size_t>(d), i](Geometry g) {
    g.offset += i * g.strides[d];
    g.sizes.erase(g.sizes.begin() + static_cast<std::ptrdiff_t>(d));
    g.strides.erase(g.strides.begin() + static_cast<std::ptrdiff_t>(d));
    return g;
  });
}

Tensor diagonal(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  detail::check_defined("diagonal", x);
  XG_CHECK(x.dim() >= 2, "diagonal: expected a tensor with at least 2 dimensions, got shape {}", shape_string(x.shape()));
  const int64_t a = detail::normalize_dim("diagonal", dim1, x.dim()), b = detail::normalize_dim("diagonal", dim2, x.dim());
  XG_CHECK(a != b, "diagonal: diagonal dimensions cannot be identical {}, {}", dim1, dim2);
  return selecting_view("DiagonalBackward", x, [a = static_cast<size_t>(a), b = static_cast<size_t>(b), offset](Geometry g) {
    int64_t length;
    if (offset >= 0) {
      length = std::max<int64_t>(std::min(g.sizes[a], g.sizes[b] - offset), 0);
      if (length > 0) g.offset += offset * g.strides[b];
    } else {
      length = std::max<int64_t>(std::min(g.sizes[a] + offset, g.sizes[b]), 0);
      if (length > 0) g.offset -= offset * g.strides[a];
    }
    const int64_t stride = g.strides[a] + g.strides[b];
    const size_t hi = std::max(a, b), lo = std::min(a, b);
    g.sizes.erase(g.sizes.begin() + static_cast<std::ptrdiff_t>(hi));
    g.strides.erase(g.strides.begin() + static_cast<std::ptrdiff_t>(hi));
    g.sizes.erase(g.sizes.begin() + static_cast<std::ptrdiff_t>(lo));
    g.strides.erase(g.strides.begin() + static_cast<std::ptrdiff_t>(lo));
    g.sizes.push_back(length);
    g.strides.push_back(stride);
    return g;
  });
}

Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides, std::optional<int64_t> storage_offset) {
  detail::check_defined("as_strided", x);
  XG_CHECK(sizes.size() == strides.size(), "as_strided: mismatch in length of strides and shape ({} vs {})", strides.size(),
           sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    XG_CHECK(sizes[d] >= 0, "as_strided: negative size {} in {}", sizes[d], shape_string(sizes));
    XG_CHECK(strides[d] >= 0, "as_strided: negative strides are not supported, got {}", shape_string(strides));
  }
  detail::checked_numel("as_strided", sizes);
  const int64_t offset = storage_offset.value_or(x.storage_offset());
  XG_CHECK(offset >= 0, "as_strided: negative storage offset {}", offset);
  Geometry g{Sizes(sizes.begin(), sizes.end()), Sizes(strides.begin(), strides.end()), offset};
  const int64_t end = detail::storage_end(g);
  XG_CHECK(end <= x.impl()->storage->numel,
           "as_strided: setting a storage of {} elements with sizes {}, strides {} and offset {} needs {} elements: out of bounds",
           x.impl()->storage->numel, shape_string(sizes), shape_string(strides), offset, end);
  // The gradient goes through the storage: the input's own geometry is the `from` side.
  const auto [in, out] = relative(detail::geometry_of(x), g);
  return make_view(x, g, "AsStridedBackward", [in = in, out = out](const BackwardContext&, const Tensor& gy) {
    return TensorList{strided_scatter_add(gy, out, in)};
  });
}

Tensor unfold_dim(const Tensor& x, int64_t dim, int64_t size, int64_t step) {
  detail::check_defined("unfold", x);
  const int64_t d = detail::normalize_dim("unfold", dim, x.dim());
  const int64_t extent = x.dim() == 0 ? 1 : x.impl()->sizes[static_cast<size_t>(d)];
  XG_CHECK(size >= 0 && size <= extent, "unfold: maximum size for tensor at dimension {} is {} but size is {}", d, extent, size);
  XG_CHECK(step > 0, "unfold: step is {} but must be > 0", step);
  return selecting_view("UnfoldBackward", x, [d = static_cast<size_t>(d), size, step](Geometry g) {
    if (g.sizes.empty()) {
      g.sizes.push_back(size);
      g.strides.push_back(1);
      return g;
    }
    const int64_t stride = g.strides[d];
    g.sizes[d] = (g.sizes[d] - size) / step + 1;
    g.strides[d] = stride * step;
    g.sizes.push_back(size);
    g.strides.push_back(stride);
    return g;
  });
}

TensorList split_with_sizes(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  detail::check_defined("split_with_sizes", x);
  XG_CHECK(x.dim() > 0, "split_with_sizes: cannot split a 0-D tensor");
  const int64_t d = detail::normalize_dim("split_with_sizes", dim, x.dim());
  const int64_t total = x.impl()->sizes[static_cast<size_t>(d)];
  int64_t sum = 0;
  for (int64_t s : sizes) {
    XG_CHECK(s >= 0, "split_with_sizes: sizes must be non-negative, got {}", fmt::format("{}", sizes));
    sum = detail::checked_add("split_with_sizes", sum, s);
  }
  XG_CHECK(sum == total, "split_with_sizes: sizes {} add up to {} but dimension {} has size {}", fmt::format("{}", sizes), sum, dim, total);
  const bool recording = should_record({&x});
  const CreationMeta meta = autograd::GradMode::is_enabled() ? CreationMeta::MultiOutputNode : CreationMeta::NoGradMode;
  TensorList pieces;
  pieces.reserve(sizes.size());
  int64_t offset = 0;
  for (int64_t s : sizes) {
    Geometry g = detail::geometry_of(x);
    g.offset += offset * g.strides[static_cast<size_t>(d)];
    g.sizes[static_cast<size_t>(d)] = s;
    // One node for all pieces (below), not one per piece: those would each build a zero-filled
    // gradient of x's full size, O(pieces * size) for splitting a sequence into steps.
    pieces.push_back(make_view(x, std::move(g), "SplitWithSizesBackward", nullptr, meta, "SplitWithSizesBackward"));
    offset += s;
  }
  if (recording) {
    autograd::record_multi("SplitWithSizesBackward", {x}, pieces, {}, [sizes, d](const BackwardContext& ctx, const TensorList& grads) {
      TensorList parts;
      parts.reserve(sizes.size());
      Shape piece_shape = ctx.input_shape(0);
      for (size_t i = 0; i < sizes.size(); ++i) {
        piece_shape[static_cast<size_t>(d)] = sizes[i];
        parts.push_back(grads[i].defined() ? grads[i] : zeros(piece_shape, ctx.input_dtype(0)));
      }
      return TensorList{cat(parts, d)};
    });
  }
  return pieces;
}

TensorList split(const Tensor& x, int64_t split_size, int64_t dim) {
  detail::check_defined("split", x);
  XG_CHECK(split_size >= 0, "split: split_size must be non-negative, got {}", split_size);
  XG_CHECK(x.dim() > 0, "split: cannot split a 0-D tensor");
  const int64_t d = detail::normalize_dim("split", dim, x.dim());
  const int64_t total = x.impl()->sizes[static_cast<size_t>(d)];
  XG_CHECK(split_size > 0 || total == 0,
           "split: split_size must be positive (it can only be 0 if the dimension size is 0), got 0 for a dimension of size {}", total);
  std::vector<int64_t> sizes;
  for (int64_t offset = 0; offset < total; offset += split_size) sizes.push_back(std::min(split_size, total - offset));
  if (sizes.empty()) sizes.push_back(0);
  return split_with_sizes(x, sizes, d);
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  detail::check_defined("chunk", x);
  XG_CHECK(chunks > 0, "chunk: expected a positive number of chunks, got {}", chunks);
  XG_CHECK(x.dim() > 0, "chunk: cannot chunk a 0-D tensor");
  const int64_t d = detail::normalize_dim("chunk", dim, x.dim());
  const int64_t total = x.impl()->sizes[static_cast<size_t>(d)];
  return split(x, std::max<int64_t>(1, (total + chunks - 1) / chunks), d);
}

TensorList unbind(const Tensor& x, int64_t dim) {
  detail::check_defined("unbind", x);
  XG_CHECK(x.dim() > 0, "unbind: dimension specified as {} but tensor has no dimensions", dim);
  const int64_t d = detail::normalize_dim("unbind", dim, x.dim());
  const int64_t count = x.impl()->sizes[static_cast<size_t>(d)];
  const CreationMeta meta = autograd::GradMode::is_enabled() ? CreationMeta::MultiOutputNode : CreationMeta::NoGradMode;
  TensorList pieces;
  pieces.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    Geometry g = detail::geometry_of(x);
    g.offset += i * g.strides[static_cast<size_t>(d)];
    g.sizes.erase(g.sizes.begin() + d);
    g.strides.erase(g.strides.begin() + d);
    pieces.push_back(make_view(x, std::move(g), "UnbindBackward", nullptr, meta, "UnbindBackward"));
  }
  if (should_record({&x}) && count > 0) {
    autograd::record_multi("UnbindBackward", {x}, pieces, {}, [d](const BackwardContext& ctx, const TensorList& grads) {
      Shape piece_shape = ctx.input_shape(0);
      piece_shape.erase(piece_shape.begin() + d);
      TensorList parts;
      parts.reserve(grads.size());
      for (const Tensor& g : grads) parts.push_back(g.defined() ? g : zeros(piece_shape, ctx.input_dtype(0)));
      return TensorList{stack(parts, d)};
    });
  }
  return pieces;
}

// ---- autograd for in-place ops on views ------------------------------------------------------------
namespace autograd {

namespace {

/// The base's new history after an in-place op on one of its views: the gradient of the view's region
/// goes through the in-place op's node (`fn`), the rest of the base's gradient flows to the base's old
/// history unchanged. Edge 0 is the base's old edge; edges 1.. are fn's other inputs.
class CopySlices final : public Node {
 public:
  CopySlices(const Tensor& base, Edge base_edge, Geometry base_geometry, Geometry view_geometry, std::shared_ptr<Node> fn)
      : base_(std::move(base_geometry)), view_(std::move(view_geometry)), fn_(std::move(fn)) {
    set_inputs(&base, 1);
    next_edges_[0] = std::move(base_edge);
    for (size_t i = 1; i < fn_->next_edges().size(); ++i) {
      next_edges_.push_back(fn_->next_edges()[i]);
      input_meta_.push_back(fn_->input_meta()[i]);
    }
  }

  TensorList apply(TensorList&& grad_outputs) override {
    TensorList result(next_edges_.size());
    const Tensor& grad = grad_outputs[0];
    if (!grad.defined()) return result;
    // The view's part of the base's gradient, through the op that modified it.
    Tensor region = strided_gather(grad, base_, view_);
    TensorList fn_grads = fn_->apply(TensorList{region});
    // The base's gradient with the view's region replaced by what flows back through fn.
    Tensor rest = sub(grad, strided_scatter_add(region, view_, base_));
    result[0] = fn_grads[0].defined() ? add(rest, strided_scatter_add(fn_grads[0], view_, base_)) : rest;
    for (size_t i = 1; i < fn_grads.size() && i < result.size(); ++i) result[i] = std::move(fn_grads[i]);
    return result;
  }
  std::string name() const override { return "CopySlices"; }
  void release_saved() override { fn_->release_saved(); }

 private:
  Geometry base_, view_;
  std::shared_ptr<Node> fn_;
};

[[noreturn]] void throw_view_error(const char* op, const TensorImpl& view, bool indirect) {
  const char* what = indirect ? "its base or another view of its base has been modified inplace"
                              : "is being modified inplace";
  switch (view.creation_meta) {
    case CreationMeta::MultiOutputNode:
      XG_ERROR("{}: output of {} is a view and {}. This view is the output of a function that returns multiple views. "
               "Such functions do not allow the output views to be modified inplace. You should replace the inplace "
               "operation by an out-of-place one",
               op, view.view_creator ? view.view_creator : "a multi-output view op", what);
    case CreationMeta::NoGradMode:
      XG_ERROR("{}: a view was created in no_grad mode and {} with grad mode enabled. Given that this use case is "
               "ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the "
               "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both "
               "outside (if you want the inplace to be tracked)",
               op, indirect ? "its base or another view of its base has been modified inplace" : "is being modified inplace");
    case CreationMeta::InCustomFunction:
      XG_ERROR("{}: output of {} is a view and {}. This view was created inside a custom Function (or because an input "
               "was returned as-is) and the autograd logic to handle view+inplace would override the custom backward "
               "associated with the custom Function, leading to incorrect gradients. This behavior is forbidden. You "
               "can fix this by cloning the output of the custom Function",
               op, view.view_creator ? view.view_creator : "a custom Function", what);
    case CreationMeta::Default: break;
  }
  XG_ERROR("{}: internal error: no view restriction to report", op);
}

}  // namespace

void refresh_view_grad_fn(const std::shared_ptr<TensorImpl>& view_impl) {
  TensorImpl& view = *view_impl;
  if (!view.view_base) return;
  const uint64_t version = view.storage->version;
  if (view.view_version == version) return;
  const TensorImpl& base = *view.view_base;
  if (!view.grad_fn && !base.requires_grad) {
    view.view_version = version;  // nothing to rebuild: no history on either side
    return;
  }
  if (view.creation_meta != CreationMeta::Default) throw_view_error("grad_fn", view, true);
  const Tensor base_tensor(view.view_base);
  const auto [from, to] = relative(detail::geometry_of(base_tensor), {view.sizes, view.strides, view.storage_offset});
  auto node = std::allocate_shared<FunctionNode>(
      PoolAllocator<FunctionNode>(), "AsStridedBackward",
      BackwardFn([from = from, to = to](const BackwardContext&, const Tensor& gy) {
        return TensorList{strided_scatter_add(gy, to, from)};
      }));
  node->set_inputs(&base_tensor, 1);
  std::shared_ptr<Node> old_fn = std::exchange(view.grad_fn, std::move(node));
  view.output_nr = 0;
  view.requires_grad = true;
  view.view_version = version;
  move_retained_grad(view_impl, old_fn.get());
}

void check_view_inplace(const char* op, const Tensor& view) {
  const TensorImpl& impl = *view.impl();
  if (impl.creation_meta != CreationMeta::Default) throw_view_error(op, impl, false);
  const TensorImpl& base = *impl.view_base;
  XG_CHECK(!(base.requires_grad && !base.grad_fn),
           "{}: a view of a leaf tensor that requires grad is being used in an in-place operation (modify the leaf "
           "inside an xg::NoGradGuard scope, e.g. for initialisation)",
           op);
}

void rebase_view_history(const Tensor& view, const Tensor& result) {
  TensorImpl& impl = *view.impl();
  TensorImpl& base = *impl.view_base;
  const Tensor base_tensor(impl.view_base);
  Edge old_edge;
  if (base.grad_fn) {
    old_edge.node = base.grad_fn;
    old_edge.output_nr = base.output_nr;
  }
  const auto [from, to] = relative(detail::geometry_of(base_tensor), {impl.sizes, impl.strides, impl.storage_offset});
  auto node = std::make_shared<CopySlices>(base_tensor, std::move(old_edge), from, to, result.grad_fn());
  // The base's retain_grad() registration stays on its old grad_fn, as in PyTorch's rebase_history
  // (only the view's moves): base.grad is the gradient of the base's value before this write.
  base.grad_fn = std::move(node);
  base.output_nr = 0;
  base.requires_grad = true;
  // The view's own grad_fn is now stale (the version moved): the next read rebuilds it from the base
  // (and moves a retain_grad registration there).
  std::shared_ptr<Node> old_view_fn = std::move(impl.grad_fn);
  impl.grad_fn.reset();
  move_retained_grad(view.impl(), old_view_fn.get());
}

}  // namespace autograd

// ---- methods ------------------------------------------------------------------------------------------
Tensor Tensor::slice(int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) const {
  return xg::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return xg::select(*this, dim, index); }
Tensor Tensor::operator[](int64_t index) const { return xg::select(*this, 0, index); }
Tensor Tensor::movedim(int64_t source, int64_t destination) const { return xg::movedim(*this, source, destination); }
Tensor Tensor::movedim(const std::vector<int64_t>& source, const std::vector<int64_t>& destination) const {
  return xg::movedim(*this, source, destination);
}
Tensor Tensor::unflatten(int64_t dim, const Shape& sizes) const { return xg::unflatten(*this, dim, sizes); }
std::vector<Tensor> Tensor::unbind(int64_t dim) const { return xg::unbind(*this, dim); }
Tensor Tensor::diagonal(int64_t offset, int64_t dim1, int64_t dim2) const { return xg::diagonal(*this, offset, dim1, dim2); }
Tensor Tensor::as_strided(const Shape& sizes, const Shape& strides, std::optional<int64_t> storage_offset) const {
  return xg::as_strided(*this, sizes, strides, storage_offset);
}
Tensor Tensor::unfold(int64_t dim, int64_t size, int64_t step) const { return unfold_dim(*this, dim, size, step); }

}  // namespace xg

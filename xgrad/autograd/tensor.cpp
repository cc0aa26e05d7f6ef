#include "xgrad/autograd/tensor.hpp"

#include <cmath>
#include <mutex>
#include <ostream>
#include <random>
#include <sstream>

#include "xgrad/autograd/kernels.hpp"
#include "xgrad/autograd/random.hpp"

namespace xg {

namespace detail {

std::shared_ptr<Storage> new_storage(Dtype dtype, int64_t numel) {
  const std::size_t item = dtype == kFloat32 ? sizeof(float) : sizeof(double);
  if (numel < 0 || static_cast<uint64_t>(numel) > std::numeric_limits<std::size_t>::max() / 2 / item)
    throw_out_of_memory(static_cast<std::size_t>(numel), item, dtype_name(dtype).data());
  auto storage = std::allocate_shared<Storage>(PoolAllocator<Storage>());
  const std::size_t bytes = std::max<std::size_t>(static_cast<std::size_t>(numel) * item, 1);
  storage->data = cached_allocate(bytes);
  if (storage->data == nullptr) throw_out_of_memory(static_cast<std::size_t>(numel), item, dtype_name(dtype).data());
  storage->cached_bytes = bytes;
  storage->numel = numel;
  storage->dtype = dtype;
  return storage;
}

std::shared_ptr<TensorImpl> make_impl(std::shared_ptr<Storage> storage, bool requires_grad) {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  std::visit(
      [&](const auto& a) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) {
          const auto& shape = a.shape();
          const size_t n = shape.size();
          impl->sizes.resize_for_overwrite(n);
          impl->strides.resize_for_overwrite(n);
          int64_t stride = 1;
          for (size_t i = n; i-- > 0;) {
            impl->sizes[i] = static_cast<int64_t>(shape[i]);
            impl->strides[i] = stride;
            stride *= std::max<int64_t>(impl->sizes[i], 1);
          }
          impl->numel = static_cast<int64_t>(a.size());
        }
      },
      storage->owner);
  impl->storage = std::move(storage);
  impl->requires_grad = requires_grad;
  return impl;
}

std::shared_ptr<TensorImpl> make_contiguous_impl(std::shared_ptr<Storage> storage, const Sizes& sizes, int64_t numel) {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  const size_t n = sizes.size();
  impl->sizes.resize_for_overwrite(n);
  impl->strides.resize_for_overwrite(n);
  int64_t* out_sizes = impl->sizes.data();
  int64_t* out_strides = impl->strides.data();
  int64_t stride = 1;
  for (size_t i = n; i-- > 0;) {
    out_sizes[i] = sizes[i];
    out_strides[i] = stride;
    stride *= std::max<int64_t>(sizes[i], 1);
  }
  impl->numel = numel;
  impl->storage = std::move(storage);
  return impl;
}

std::shared_ptr<TensorImpl> alias(const Tensor& t, bool requires_grad) {
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  const TensorImpl& from = *t.impl();
  impl->storage = from.storage;
  impl->sizes = from.sizes;
  impl->strides = from.strides;
  impl->storage_offset = from.storage_offset;
  impl->numel = from.numel;
  impl->is_contiguous = from.is_contiguous;
  impl->requires_grad = requires_grad;
  return impl;
}

bool compute_contiguous(const Sizes& sizes, const Sizes& strides) {
  for (int64_t s : sizes)
    if (s == 0) return true;
  int64_t expected = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= sizes[i];
  }
  return true;
}

void set_geometry(TensorImpl& impl, Sizes sizes, Sizes strides, int64_t storage_offset) {
  impl.is_contiguous = compute_contiguous(sizes, strides);
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  impl.numel = numel;
  impl.sizes = std::move(sizes);
  impl.strides = std::move(strides);
  impl.storage_offset = storage_offset;
}

void throw_dtype_access(Dtype have, Dtype want) {
  XG_ERROR("array: the tensor holds {} elements, but {} elements were requested", have, want);
}

void throw_not_contiguous(const char* op, const Tensor& t) {
  XG_ERROR("{}: the tensor of shape {} is not contiguous (strides {}); call contiguous() first, or use strided<T>()",
           op, shape_string(t.shape()), shape_string(t.strides()));
}

std::vector<int64_t> normalize_dims(const char* op, const std::vector<int64_t>& dims, int64_t ndim) {
  std::vector<int64_t> result;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) result.push_back(d);
    return result;
  }
  for (int64_t d : dims) result.push_back(normalize_dim(op, d, ndim));
  std::sort(result.begin(), result.end());
  XG_CHECK(std::adjacent_find(result.begin(), result.end()) == result.end(), "{}: dim appears more than once in {}", op,
           fmt::format("{}", dims));
  if (ndim == 0) result.clear();  // reducing a 0-D tensor over dim 0 is the identity
  return result;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  if (a == b) return a;
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    XG_CHECK(da == db || da == 1 || db == 1,
             "{}: shapes {} and {} cannot be broadcast together (dimension {}: {} vs {})", op, shape_string(a),
             shape_string(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  checked_numel(op, out);  // [2^32, 1] with [1, 2^32] has 2^64 elements
  return out;
}

void broadcast_strides(const Shape& shape, const Shape& out_shape, int64_t* strides) {
  const size_t n = out_shape.size();
  const size_t offset = n - shape.size();
  int64_t stride = 1;
  for (size_t i = n; i-- > 0;) {
    if (i < offset) {
      strides[i] = 0;
      continue;
    }
    int64_t dim = shape[i - offset];
    strides[i] = (dim == 1 && out_shape[i] != 1) ? 0 : stride;
    stride *= dim;
  }
}

}  // namespace detail

// ---- basic queries ---------------------------------------------------------------------------
Dtype Tensor::dtype() const {
  XG_CHECK(defined(), "dtype: the tensor is undefined");
  return impl_->storage->dtype;
}

Shape Tensor::shape() const {
  XG_CHECK(defined(), "shape: the tensor is undefined");
  return Shape(impl_->sizes.begin(), impl_->sizes.end());
}

int64_t Tensor::dim() const {
  XG_CHECK(defined(), "dim: the tensor is undefined");
  return static_cast<int64_t>(impl_->sizes.size());
}


bool Tensor::has_shape(const Shape& expected) const {
  XG_CHECK(defined(), "shape: the tensor is undefined");
  const Sizes& s = impl_->sizes;
  return s.size() == expected.size() && std::equal(s.begin(), s.end(), expected.begin());
}

Shape Tensor::strides() const {
  XG_CHECK(defined(), "strides: the tensor is undefined");
  return Shape(impl_->strides.begin(), impl_->strides.end());
}

int64_t Tensor::stride(int64_t d) const {
  XG_CHECK(defined(), "stride: the tensor is undefined");
  return impl_->strides[static_cast<size_t>(detail::normalize_dim("stride", d, dim()))];
}

int64_t Tensor::storage_offset() const {
  XG_CHECK(defined(), "storage_offset: the tensor is undefined");
  return impl_->storage_offset;
}

void Tensor::detail_throw_undefined(const char* op) { XG_ERROR("{}: the tensor is undefined", op); }

Tensor Tensor::contiguous() const {
  XG_CHECK(defined(), "contiguous: the tensor is undefined");
  return impl_->is_contiguous ? *this : clone();
}

bool Tensor::is_alias_of(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

Tensor Tensor::_base() const { return is_view() ? Tensor(impl_->view_base) : Tensor(); }

int64_t Tensor::size(int64_t d) const {
  Shape s = shape();
  return s.empty() ? 1 : s[detail::normalize_dim("size", d, static_cast<int64_t>(s.size()))];
}

// ---- autograd metadata -----------------------------------------------------------------------
Tensor& Tensor::requires_grad_(bool requires) {
  XG_CHECK(defined(), "requires_grad_: the tensor is undefined");
  XG_CHECK(!requires || is_floating_point(),
           "requires_grad_: only floating-point tensors (float32, float64) can require gradients, got {}", dtype());
  XG_CHECK(requires || is_leaf(),
           "requires_grad_: you can only change requires_grad of leaf tensors; use detach() for a non-leaf");
  impl_->requires_grad = requires;
  return *this;
}

Tensor Tensor::grad() const {
  XG_CHECK(defined(), "grad: the tensor is undefined");
  return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  XG_CHECK(defined(), "set_grad: the tensor is undefined");
  if (grad.defined()) {
    XG_CHECK(grad.shape() == shape() && grad.dtype() == dtype(),
             "set_grad: expected a gradient of shape {} and dtype {}, got shape {} and dtype {}", shape_string(shape()),
             dtype(), shape_string(grad.shape()), grad.dtype());
  }
  impl_->grad = grad.impl();
}

const std::shared_ptr<autograd::Node>& Tensor::view_grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  if (!impl_) return none;
  autograd::refresh_view_grad_fn(impl_);
  return impl_->grad_fn;
}

bool Tensor::view_requires_grad() const {
  autograd::refresh_view_grad_fn(impl_);
  return impl_->requires_grad || impl_->view_base->requires_grad;
}

Tensor Tensor::detach() const {
  XG_CHECK(defined(), "detach: the tensor is undefined");
  return Tensor(detail::alias(*this, false));
}

Tensor& Tensor::detach_() {
  XG_CHECK(defined(), "detach_: the tensor is undefined");
  XG_CHECK(!is_view(), "detach_: can't detach views in-place; use detach() instead (the tensor of shape {} is a view)",
           shape_string(shape()));
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
  return *this;
}

void Tensor::retain_grad() const {
  XG_CHECK(defined() && requires_grad(), "retain_grad: can't retain_grad on a tensor that doesn't require grad");
  if (is_leaf() || impl_->retains_grad) return;
  impl_->retains_grad = true;
  impl_->grad_fn->retained.emplace_back(impl_->output_nr, impl_);
}

unsigned Tensor::register_hook(TensorHook hook) const {
  XG_CHECK(defined() && requires_grad(), "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  if (is_leaf()) {
    unsigned id = impl_->next_hook_id++;
    impl_->hooks.emplace_back(id, std::move(hook));
    return id;
  }
  return impl_->grad_fn->add_pre_hook(impl_->output_nr, std::move(hook));
}

void Tensor::remove_hook(unsigned handle) const {
  XG_CHECK(defined(), "remove_hook: the tensor is undefined");
  if (is_leaf()) {
    auto& hooks = impl_->hooks;
    hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == handle; }), hooks.end());
  } else {
    impl_->grad_fn->remove_pre_hook(handle);
  }
}

uint64_t Tensor::_version() const {
  XG_CHECK(defined(), "_version: the tensor is undefined");
  return impl_->storage->version;
}

Tensor Tensor::to(Dtype target) const { return to_dtype(*this, target); }

// ---- factories -------------------------------------------------------------------------------
namespace {
template <class Fill>
Tensor make_filled(const char* op, const Shape& shape, TensorOptions options, Fill fill) {
  Tensor result = detail::dispatch(options.dtype_, [&](auto tag) {
    using T = decltype(tag);
    Array<T> array = detail::new_array<T>(shape, op);  // checks the sizes, names op when out of memory
    fill(array);
    return detail::make_tensor(std::move(array));
  });
  if (options.requires_grad_) result.requires_grad_(true);
  return result;
}
}  // namespace

Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  Shape s = shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape;
  const int64_t numel = detail::checked_numel("tensor", s);
  XG_CHECK(numel == static_cast<int64_t>(values.size()), "tensor: {} values cannot fill shape {} ({} elements)", values.size(),
           shape_string(s), numel);
  for (double v : values) detail::check_scalar_fits("tensor", options.dtype_, v);  // no undefined casts to int64
  return make_filled("tensor", s, options, [&](auto& a) { std::copy(values.begin(), values.end(), a.begin()); });
}

Tensor tensor(std::initializer_list<double> values, TensorOptions options) {
  return tensor(std::vector<double>(values), {}, options);
}

Tensor scalar_tensor(double value, TensorOptions options) {
  detail::check_scalar_fits("scalar_tensor", options.dtype_, value);
  return make_filled("scalar_tensor", {}, options, [&](auto& a) { *a.data() = static_cast<typename std::decay_t<decltype(a)>::value_type>(value); });
}

Tensor empty(IntArrayRef shape_list, TensorOptions options) {
  const std::vector<int64_t> shape = shape_list.vec();
  return make_filled("empty", shape, options, [](auto&) {});
}

namespace {
/// full, zeros and ones, each naming itself in errors.
Tensor filled(const char* op, const Shape& shape, double value, TensorOptions options) {
  detail::check_scalar_fits(op, options.dtype_, value);  // a fractional value truncates, as PyTorch's full
  return make_filled(op, shape, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    std::fill(a.begin(), a.end(), static_cast<T>(value));
  });
}
}  // namespace

Tensor full(IntArrayRef shape, double value, TensorOptions options) { return filled("full", shape.vec(), value, options); }
Tensor zeros(IntArrayRef shape, TensorOptions options) { return filled("zeros", shape.vec(), 0.0, options); }
Tensor ones(IntArrayRef shape, TensorOptions options) { return filled("ones", shape.vec(), 1.0, options); }
Tensor zeros_like(const Tensor& like, std::optional<Dtype> dtype) { return zeros(like.shape(), dtype.value_or(like.dtype())); }
Tensor ones_like(const Tensor& like, std::optional<Dtype> dtype) { return ones(like.shape(), dtype.value_or(like.dtype())); }
Tensor full_like(const Tensor& like, double value, std::optional<Dtype> dtype) {
  return full(like.shape(), value, dtype.value_or(like.dtype()));
}

Tensor arange(double end, TensorOptions options) { return arange(0, end, 1, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  XG_CHECK(step != 0, "arange: step must be nonzero");
  XG_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), "arange: start, end and step must be finite");
  XG_CHECK((end - start) / step >= 0, "arange: upper bound and larger bound inconsistent with step sign (start {}, end {}, step {})",
           start, end, step);
  // The count as a double first: casting one beyond int64's range to int64 is undefined behaviour.
  const double count = std::ceil((end - start) / step);
  XG_CHECK(count < 0x1p63, "arange: start {}, end {} and step {} give {} elements, more than int64 can count", start, end, step, count);
  const auto n = static_cast<int64_t>(count);
  return make_filled("arange", {n}, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    for (int64_t i = 0; i < n; ++i) a.data()[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
}

namespace {
/// PyTorch's linspace kernel: step in the element type, the first half counted up from start and the
/// second half down from end; `map` turns each value into the element (identity, or base ** value).
template <class Map>
Tensor spaced(const char* op, double start, double end, int64_t steps, TensorOptions options, Map map) {
  XG_CHECK(steps >= 0, "{}: number of steps must be non-negative, got {}", op, steps);
  XG_CHECK(is_floating(options.dtype_), "{}: expected a floating dtype (float32 or float64), got {}", op, options.dtype_);
  XG_CHECK(std::isfinite(start) && std::isfinite(end), "{}: start and end must be finite, got {} and {}", op, start, end);
  return make_filled(op, {steps}, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    const T first = static_cast<T>(start), last = static_cast<T>(end);
    if (steps == 1) {
      a.data()[0] = map(first);
      return;
    }
    const T step = (last - first) / static_cast<T>(steps - 1);
    const int64_t halfway = steps / 2;
    for (int64_t i = 0; i < steps; ++i)
      a.data()[i] = map(i < halfway ? first + step * static_cast<T>(i) : last - step * static_cast<T>(steps - i - 1));
  });
}
}  // namespace

Tensor linspace(double start, double end, int64_t steps, TensorOptions options) {
  return spaced("linspace", start, end, steps, options, [](auto v) { return v; });
}

Tensor logspace(double start, double end, int64_t steps, double base, TensorOptions options) {
  return spaced("logspace", start, end, steps, options, [base](auto v) {
    using T = decltype(v);
    return static_cast<T>(std::pow(base, static_cast<double>(v)));  // in double, rounded once (PyTorch's)
  });
}

Tensor eye(int64_t n, std::optional<int64_t> m, TensorOptions options) {
  int64_t cols = m.value_or(n);
  XG_CHECK(n >= 0 && cols >= 0, "eye: expected non-negative sizes, got {} x {}", n, cols);
  return make_filled("eye", {n, cols}, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    std::fill(a.begin(), a.end(), T(0));
    for (int64_t i = 0; i < std::min(n, cols); ++i) a.data()[i * cols + i] = T(1);
  });
}

Tensor rand(IntArrayRef shape_list, TensorOptions options) {
  const std::vector<int64_t> shape = shape_list.vec();
  XG_CHECK(is_floating(options.dtype_), "rand: expected a floating-point dtype, got {}", options.dtype_);
  return make_filled("rand", shape, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    auto lock = random::lock_generator();
    for (T& v : a) v = static_cast<T>(dist(random::generator()));
  });
}

Tensor randn(IntArrayRef shape_list, TensorOptions options) {
  const std::vector<int64_t> shape = shape_list.vec();
  XG_CHECK(is_floating(options.dtype_), "randn: expected a floating-point dtype, got {}", options.dtype_);
  return make_filled("randn", shape, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    std::normal_distribution<double> dist(0.0, 1.0);
    auto lock = random::lock_generator();
    for (T& v : a) v = static_cast<T>(dist(random::generator()));
  });
}

Tensor randint(int64_t low, int64_t high, IntArrayRef shape_list, TensorOptions options) {
  const std::vector<int64_t> shape = shape_list.vec();
  XG_CHECK(low < high, "randint: expected low < high, got low={} high={}", low, high);
  return make_filled("randint", shape, options, [&](auto& a) {
    using T = typename std::decay_t<decltype(a)>::value_type;
    std::uniform_int_distribution<int64_t> dist(low, high - 1);
    auto lock = random::lock_generator();
    for (T& v : a) v = static_cast<T>(dist(random::generator()));
  });
}

Tensor rand_like(const Tensor& like) { return rand(like.shape(), like.dtype()); }
Tensor randn_like(const Tensor& like) { return randn(like.shape(), like.dtype()); }

Tensor randperm(int64_t n) {
  XG_CHECK(n >= 0, "randperm: expected n >= 0, got {}", n);
  Array<int64_t> a = detail::new_array<int64_t>({n}, "randperm");
  std::iota(a.begin(), a.end(), int64_t{0});
  auto lock = random::lock_generator();
  auto& gen = random::generator();
  // Fisher-Yates with our own index draw, so the sequence does not depend on the standard library.
  for (int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(gen() % static_cast<uint64_t>(i + 1));
    std::swap(a.data()[i], a.data()[j]);
  }
  return detail::make_tensor(std::move(a));
}

void manual_seed(uint64_t seed) { random::seed(seed); }

// ---- memory the caller owns --------------------------------------------------------------------
Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, std::function<void(void*)> deleter,
                 TensorOptions options) {
  XG_CHECK(data != nullptr || detail::checked_numel("from_blob", sizes) == 0, "from_blob: the data pointer is null");
  XG_CHECK(sizes.size() == strides.size(), "from_blob: expected one stride per dimension, got sizes {} and strides {}",
           shape_string(sizes), shape_string(strides));
  detail::checked_numel("from_blob", sizes);
  int64_t span = 1;  // elements from the first to one past the last addressed element
  for (size_t d = 0; d < sizes.size(); ++d) {
    XG_CHECK(sizes[d] >= 0, "from_blob: invalid size {} in {}", sizes[d], shape_string(sizes));
    XG_CHECK(strides[d] >= 0, "from_blob: negative strides are not supported, got {}", shape_string(strides));
    if (sizes[d] == 0) span = 0;
  }
  if (span != 0)
    for (size_t d = 0; d < sizes.size(); ++d) span = detail::checked_add("from_blob", span, detail::checked_mul("from_blob", sizes[d] - 1, strides[d]));
  auto storage = std::allocate_shared<Storage>(PoolAllocator<Storage>());
  storage->dtype = options.dtype_;
  storage->data = data;
  storage->numel = span;
  storage->deleter = std::move(deleter);
  auto impl = std::allocate_shared<TensorImpl>(PoolAllocator<TensorImpl>());
  impl->storage = std::move(storage);
  detail::set_geometry(*impl, Sizes(sizes.begin(), sizes.end()), Sizes(strides.begin(), strides.end()), 0);
  Tensor result(std::move(impl));
  if (options.requires_grad_) result.requires_grad_(true);
  return result;
}

Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, TensorOptions options) {
  return from_blob(data, sizes, strides, nullptr, options);
}

Tensor from_blob(void* data, const Shape& sizes, TensorOptions options) {
  return from_blob(data, sizes, detail::contiguous_strides(sizes), nullptr, options);
}

// ---- comparison of whole tensors -------------------------------------------------------------
bool allclose(const Tensor& a_in, const Tensor& b_in, double rtol, double atol) {
  detail::check_same_dtype("allclose", a_in, b_in);
  XG_CHECK(a_in.shape() == b_in.shape(), "allclose: shapes differ: {} vs {}", shape_string(a_in.shape()), shape_string(b_in.shape()));
  const Tensor a = a_in.detach().contiguous(), b = b_in.detach().contiguous();
  return detail::dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.contiguous_data<T>();
    const T* y = b.contiguous_data<T>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      double u = static_cast<double>(x[i]), v = static_cast<double>(y[i]);
      if (std::isnan(u) || std::isnan(v)) return false;
      if (u == v) continue;
      if (!(std::abs(u - v) <= atol + rtol * std::abs(v))) return false;
    }
    return true;
  });
}

bool equal(const Tensor& a_in, const Tensor& b_in) {
  if (a_in.dtype() != b_in.dtype() || a_in.shape() != b_in.shape()) return false;
  const Tensor a = a_in.detach().contiguous(), b = b_in.detach().contiguous();
  return detail::dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = a.contiguous_data<T>();
    return std::equal(x, x + a.numel(), b.contiguous_data<T>());
  });
}

// ---- printing --------------------------------------------------------------------------------
std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace {
template <class T>
void print_elements(std::ostringstream& out, const T* data, const Shape& shape, size_t dim, int64_t offset,
                    const std::vector<int64_t>& strides, bool summarize, int indent) {
  constexpr int64_t kEdge = 3;
  auto element = [&](int64_t i) {
    if constexpr (std::is_floating_point_v<T>) out << fmt::format("{:.4f}", data[i]);
    else out << data[i];
  };
  if (dim == shape.size()) {
    element(offset);
    return;
  }
  out << '[';
  int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdge && i == kEdge) {
      out << "...";
      i = n - kEdge - 1;
      out << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
      continue;
    }
    print_elements(out, data, shape, dim + 1, offset + i * strides[dim], strides, summarize, indent + 1);
    if (i + 1 < n) out << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  out << ']';
}
}  // namespace

std::string Tensor::toString() const {
  if (!defined()) return "[ undefined Tensor ]";
  std::ostringstream out;
  out << "tensor(";
  Shape s = shape();
  std::vector<int64_t> element_strides = strides();  // prints a view in place, without a copy
  detail::dispatch(dtype(), [&](auto tag) {
    using T = decltype(tag);
    print_elements(out, data_ptr<T>(), s, 0, 0, element_strides, numel() > 1000, 7);
  });
  if (dtype() != kFloat32) out << ", dtype=" << dtype_name(dtype());
  if (grad_fn()) out << ", grad_fn=<" << grad_fn()->name() << ">";
  else if (requires_grad()) out << ", requires_grad=true";
  out << ")";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.toString(); }

}  // namespace xg

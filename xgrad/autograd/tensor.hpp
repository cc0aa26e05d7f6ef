#pragma once
/// xg::Tensor: a reference-counted handle to an n-dimensional array (float32, float64 or int64) with
/// the autograd metadata that lets ops record themselves on the tape. Copies of a Tensor share data,
/// exactly as torch::Tensor handles do.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "xgrad/autograd/allocator.hpp"
#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/autograd/dtype.hpp"
#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/small_vector.hpp"

namespace xg {

/// A tensor's dimensions, outermost first (PyTorch's sizes()).
using Shape = std::vector<int64_t>;
/// libtorch spells std::optional as c10::optional / torch::optional; xg::optional is std::optional.
using std::nullopt;
using std::optional;

/// The xtensor container behind every tensor: row-major, contiguous, from the caching allocator.
template <class T>
using Array = xt::xarray<T, xt::layout_type::row_major, CachingAllocator<T>>;

/// Sizes and strides of a tensor, inline up to 4 dimensions (no heap allocation per tensor).
using Sizes = SmallVector<int64_t, 4>;

/// A buffer shared by a tensor, all its views and its detached aliases. The version counter is bumped
/// by every in-place change through any of them, so backward can detect data it needs being overwritten.
/// The storage knows only elements; the shape lives in each TensorImpl (sizes, strides, offset).
struct Storage {
  /// An xtensor container whose buffer the storage took over (from_array, make_tensor); empty otherwise.
  using Owner = std::variant<std::monostate, Array<float>, Array<double>, Array<int64_t>>;
  void* data = nullptr;   // the first element of the buffer
  int64_t numel = 0;      // elements in the buffer
  Dtype dtype = kFloat32;
  std::size_t cached_bytes = 0;        // a block of the caching allocator, freed with the storage
  std::function<void(void*)> deleter;  // from_blob: called once with `data` when the storage dies
  Owner owner;
  uint64_t version = 0;
  Storage() noexcept {}  // user-provided: no zero-fill of the whole object before the initialisers
  /// Takes over a container's buffer (moved in once; no element copy).
  template <class T>
  explicit Storage(Array<T>&& array) : dtype(dtype_of<T>()), owner(std::in_place_type<Array<T>>, std::move(array)) {
    auto& held = std::get<Array<T>>(owner);
    data = held.data();
    numel = static_cast<int64_t>(held.size());
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (deleter) deleter(data);
    else if (cached_bytes != 0) detail::cached_deallocate(data, cached_bytes);
  }
};

/// How a view was made, for PyTorch's rules on modifying views in place (NOTE [Autograd View
/// Variables]): a view made with grad mode off, one of several outputs of split/chunk/unbind, or the
/// output of a custom Function may not be modified in place while autograd records.
enum class CreationMeta : uint8_t { Default, NoGradMode, MultiOutputNode, InCustomFunction };

namespace autograd {
class Node;
}
class Tensor;

/// A gradient hook: receives the gradient, returns a replacement or an undefined Tensor to keep it.
using TensorHook = std::function<Tensor(const Tensor&)>;

/// Data plus autograd metadata. Users hold it through Tensor.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Sizes sizes;                 // dimensions, outermost first
  Sizes strides;               // element strides (PyTorch's values; 0 along expanded dims)
  int64_t storage_offset = 0;  // elements from storage->data to the first element
  int64_t numel = 1;           // product of sizes, cached whenever the geometry is set
  bool is_contiguous = true;   // row-major and dense; cached whenever the geometry is set
  bool requires_grad = false;
  bool retains_grad = false;
  uint32_t output_nr = 0;                    // which output of grad_fn this tensor is
  std::shared_ptr<autograd::Node> grad_fn;  // null for leaves
  std::shared_ptr<TensorImpl> grad;         // accumulated gradient (leaves and retain_grad tensors)
  std::vector<std::pair<unsigned, TensorHook>> hooks;  // leaf hooks, run before accumulation
  unsigned next_hook_id = 0;
  // A differentiable view (PyTorch's DifferentiableViewMeta): the root base it shares storage with
  // (never itself a view), the storage version when grad_fn was last set (an in-place change of the
  // base or of another view makes the view's grad_fn stale: it is rebuilt on the next read), and how
  // the view was made. Null view_base: not a view.
  std::shared_ptr<TensorImpl> view_base;
  uint64_t view_version = 0;
  CreationMeta creation_meta = CreationMeta::Default;
  const char* view_creator = nullptr;  // the op that made a MultiOutputNode / InCustomFunction view
  // User-provided, so that allocate_shared's value-initialisation runs only the member initialisers
  // above instead of first zero-filling the whole object (every op's output is one of these).
  TensorImpl() noexcept {}
  ~TensorImpl();  // releases deep graphs iteratively (no recursion down a 100k-node chain)
};

/// Creation options, as torch::TensorOptions: dtype and requires_grad.
struct TensorOptions {
  Dtype dtype_ = kFloat32;
  bool requires_grad_ = false;
  TensorOptions() = default;
  TensorOptions(Dtype dtype) : dtype_(dtype) {}  // NOLINT: implicit like torch::kFloat64 -> options
  TensorOptions& dtype(Dtype dtype) { dtype_ = dtype; return *this; }
  TensorOptions& requires_grad(bool requires) { requires_grad_ = requires; return *this; }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  /// Wraps an xtensor container (moved in, no copy).
  template <class T>
  explicit Tensor(Array<T> array);

  bool defined() const { return impl_ != nullptr; }
  Dtype dtype() const;
  /// Dimensions, outermost first; sizes() is the PyTorch spelling.
  Shape shape() const;
  Shape sizes() const { return shape(); }
  /// Size of one dimension; negative dims count from the end.
  int64_t size(int64_t dim) const;
  /// shape() == shape, without building a vector.
  bool has_shape(const Shape& shape) const;
  int64_t dim() const;
  int64_t numel() const {
    if (!impl_) detail_throw_undefined("numel");
    return impl_->numel;
  }
  bool is_floating_point() const { return is_floating(dtype()); }
  /// Element strides, one per dimension (PyTorch's values: 0 along an expanded dimension).
  Shape strides() const;
  int64_t stride(int64_t dim) const;
  /// Elements from the start of the storage to this tensor's first element.
  int64_t storage_offset() const;
  /// Row-major and dense (dims of size 1 are ignored; an empty tensor is contiguous), as PyTorch.
  bool is_contiguous() const {
    if (!impl_) detail_throw_undefined("is_contiguous");
    return impl_->is_contiguous;
  }
  /// *this when contiguous, otherwise a contiguous copy (differentiable).
  Tensor contiguous() const;
  /// True when both tensors share one storage (a view and its base, two views, detach()).
  bool is_alias_of(const Tensor& other) const;
  /// True for the result of a view op (view, narrow, select, transpose, expand, ...).
  bool is_view() const { return impl_ && impl_->view_base != nullptr; }
  /// The tensor a view was taken from (the root, for a view of a view); undefined if not a view.
  Tensor _base() const;

  // ---- autograd -----------------------------------------------------------------------------
  /// A view requires grad when its base does (even if it was taken with grad mode off).
  bool requires_grad() const {
    return impl_ && (impl_->requires_grad || (impl_->view_base && view_requires_grad()));
  }
  /// Marks a leaf as requiring gradients (float tensors only). Returns *this for chaining.
  Tensor& requires_grad_(bool requires = true);
  /// The accumulated gradient, or an undefined Tensor.
  Tensor grad() const;
  /// Replaces (or, with an undefined Tensor, clears) the accumulated gradient.
  void set_grad(const Tensor& grad) const;
  bool is_leaf() const { return !grad_fn(); }
  /// The node that made this tensor (null for a leaf). A view's is rebuilt first when its storage was
  /// modified in place since it was set (out of line; a tensor that is not a view pays one test).
  const std::shared_ptr<autograd::Node>& grad_fn() const {
    if (impl_ && !impl_->view_base) return impl_->grad_fn;
    return view_grad_fn();
  }
  /// Back-propagates from this tensor; gradient is required unless this is a one-element tensor.
  /// retain_graph defaults to create_graph, as in PyTorch.
  void backward(const Tensor& gradient = {}, std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;
  /// A new leaf sharing this tensor's data (and version counter), outside the graph.
  Tensor detach() const;
  Tensor& detach_();
  /// Keeps .grad() of a non-leaf after backward.
  void retain_grad() const;
  bool retains_grad() const { return impl_ && impl_->retains_grad; }
  /// Registers a gradient hook; returns a handle for remove_hook.
  unsigned register_hook(TensorHook hook) const;
  void remove_hook(unsigned handle) const;
  /// How many in-place changes this tensor's data has seen.
  uint64_t _version() const;

  // ---- data ---------------------------------------------------------------------------------
  /// The elements of a contiguous tensor as an xtensor container (an adaptor over the storage: writes
  /// go to the tensor), for custom kernels; T must match dtype(). A non-contiguous tensor is an error:
  /// call contiguous() first, or use strided<T>(). Keep the tensor alive while the adaptor is used.
  template <class T>
  auto array() const;
  /// An xtensor adaptor with this tensor's strides, for any tensor (index it with operator() or
  /// iterate it; its data()/linear iterators do not follow the strides).
  template <class T>
  auto strided() const;
  /// The first element in the shared storage (for a non-contiguous tensor, address elements with
  /// strides()), as PyTorch's data_ptr.
  template <class T>
  T* data_ptr() const;
  /// data_ptr of a tensor that must be contiguous: an error naming the shape and strides otherwise.
  /// For kernels that read or write the elements as one flat array.
  template <class T>
  T* contiguous_data() const;
  /// The value of a one-element tensor, converted to T.
  template <class T>
  T item() const;
  /// Converts the dtype (differentiable between float types); same dtype returns *this.
  Tensor to(Dtype dtype) const;
  /// A copy with its own (contiguous) data; differentiable.
  Tensor clone() const;
  std::string toString() const;

  // ---- methods forwarding to the ops of the same name (see ops.hpp) ---------------------------
  Tensor sum() const;
  Tensor sum(IntArrayRef dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(IntArrayRef dims, bool keepdim = false) const;
  Tensor max() const;
  std::tuple<Tensor, Tensor> max(int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(int64_t dim, bool keepdim = false) const;
  Tensor argmax(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor argmin(std::optional<int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor var(IntArrayRef dims = {}, bool unbiased = true, bool keepdim = false) const;
  Tensor std(IntArrayRef dims = {}, bool unbiased = true, bool keepdim = false) const;
  Tensor logsumexp(IntArrayRef dims, bool keepdim = false) const;
  Tensor norm(double p = 2, IntArrayRef dims = {}, bool keepdim = false) const;
  Tensor view(IntArrayRef shape) const;
  Tensor reshape(IntArrayRef shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor permute(IntArrayRef dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;
  Tensor expand(IntArrayRef shape) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim = 0, std::optional<int64_t> start = std::nullopt, std::optional<int64_t> end = std::nullopt,
               int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  /// select(0, index), as torch::Tensor::operator[].
  Tensor operator[](int64_t index) const;
  Tensor movedim(int64_t source, int64_t destination) const;
  Tensor movedim(const std::vector<int64_t>& source, const std::vector<int64_t>& destination) const;
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  std::vector<Tensor> unbind(int64_t dim = 0) const;
  Tensor diagonal(int64_t offset = 0, int64_t dim1 = 0, int64_t dim2 = 1) const;
  Tensor as_strided(const Shape& sizes, const Shape& strides, std::optional<int64_t> storage_offset = std::nullopt) const;
  /// All windows of `size` elements along dim, `step` apart, as a new last dimension (a view).
  Tensor unfold(int64_t dim, int64_t size, int64_t step) const;
  Tensor index_select(int64_t dim, const Tensor& index) const;
  // Rearranging and combining (see the free functions in ops.hpp).
  Tensor flip(IntArrayRef dims) const;
  Tensor roll(IntArrayRef shifts, IntArrayRef dims = {}) const;
  Tensor repeat(IntArrayRef repeats) const;
  Tensor tile(IntArrayRef dims) const;
  Tensor tril(int64_t diagonal = 0) const;
  Tensor triu(int64_t diagonal = 0) const;
  Tensor outer(const Tensor& other) const;
  Tensor trace() const;
  Tensor lerp(const Tensor& end, double weight) const;
  Tensor lerp(const Tensor& end, const Tensor& weight) const;
  Tensor cumsum(int64_t dim) const;
  Tensor addmm(const Tensor& mat1, const Tensor& mat2, double beta = 1.0, double alpha = 1.0) const;
  Tensor baddbmm(const Tensor& batch1, const Tensor& batch2, double beta = 1.0, double alpha = 1.0) const;
  Tensor diag(int64_t diagonal = 0) const;
  Tensor diag_embed(int64_t offset = 0, int64_t dim1 = -2, int64_t dim2 = -1) const;
  Tensor repeat_interleave(const Tensor& repeats, std::optional<int64_t> dim = std::nullopt) const;
  Tensor repeat_interleave(int64_t repeats, std::optional<int64_t> dim = std::nullopt) const;
  std::tuple<Tensor, Tensor> sort(int64_t dim = -1, bool descending = false) const;
  Tensor argsort(int64_t dim = -1, bool descending = false) const;
  std::tuple<Tensor, Tensor> topk(int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) const;
  std::tuple<Tensor, Tensor> kthvalue(int64_t k, int64_t dim = -1, bool keepdim = false) const;
  std::tuple<Tensor, Tensor> median(int64_t dim, bool keepdim = false) const;
  Tensor median() const;
  Tensor gather(int64_t dim, const Tensor& index) const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  std::vector<Tensor> split(int64_t split_size, int64_t dim = 0) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t dim = 0) const;
  Tensor matmul(const Tensor& other) const;
  Tensor mm(const Tensor& other) const;
  Tensor bmm(const Tensor& other) const;
  Tensor dot(const Tensor& other) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor neg() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor clamp(std::optional<double> min, std::optional<double> max = std::nullopt) const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;

  // ---- in-place (PyTorch's safety: version counter, no in-place on a leaf requiring grad) -------
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double other);
  Tensor& sub_(const Tensor& other, double alpha = 1.0);
  Tensor& sub_(double other);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double other);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double other);
  Tensor& zero_();
  Tensor& fill_(double value);
  /// Copies src (broadcast to this shape, converted to this dtype) into this tensor.
  Tensor& copy_(const Tensor& src);
  // Random fills from xg's generator (xg::manual_seed); like fill_, they overwrite every element (the
  // gradient to the old values is zero) and follow the in-place rules of views and leaves.
  /// Uniform on [from, to) (floating dtypes; from <= to).
  Tensor& uniform_(double from = 0.0, double to = 1.0);
  /// Normal with the given mean and std (floating dtypes; std >= 0).
  Tensor& normal_(double mean = 0.0, double std = 1.0);
  /// 1 with probability p, else 0 (any dtype; p in [0, 1]).
  Tensor& bernoulli_(double p = 0.5);
  /// Integers uniform on [from, to) (any dtype; from < to).
  Tensor& random_(int64_t from, int64_t to);
  /// Integers uniform on [0, to).
  Tensor& random_(int64_t to);
  /// value on the main diagonal (all dims equal above 2-D); wrap: a tall matrix's diagonal restarts
  /// every columns + 1 rows, as NumPy's fill_diagonal.
  Tensor& fill_diagonal_(double value, bool wrap = false);

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  /// True when both handles refer to the same tensor.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  bool view_requires_grad() const;
  const std::shared_ptr<autograd::Node>& view_grad_fn() const;
  [[noreturn]] static void detail_throw_undefined(const char* op);
  std::shared_ptr<TensorImpl> impl_;
};

using TensorList = std::vector<Tensor>;

// ---- construction --------------------------------------------------------------------------
/// Makes a tensor from an xtensor container (moved in).
template <class T>
Tensor from_array(Array<T> array, bool requires_grad = false);
/// Makes a tensor from any xtensor expression (evaluated into a new container).
template <class E>
Tensor from_xtensor(const xt::xexpression<E>& expression, bool requires_grad = false) {
  using T = typename E::value_type;
  Array<T> array = expression.derived_cast();
  return from_array<T>(std::move(array), requires_grad);
}
/// Values in row-major order plus a shape; an empty shape means a 1-D tensor of all values.
Tensor tensor(const std::vector<double>& values, const Shape& shape = {}, TensorOptions options = {});
Tensor tensor(std::initializer_list<double> values, TensorOptions options = {});
/// A zero-dimensional tensor holding one value.
Tensor scalar_tensor(double value, TensorOptions options = {});
Tensor empty(IntArrayRef shape, TensorOptions options = {});
Tensor zeros(IntArrayRef shape, TensorOptions options = {});
Tensor ones(IntArrayRef shape, TensorOptions options = {});
Tensor full(IntArrayRef shape, double value, TensorOptions options = {});
Tensor zeros_like(const Tensor& like, std::optional<Dtype> dtype = std::nullopt);
Tensor ones_like(const Tensor& like, std::optional<Dtype> dtype = std::nullopt);
Tensor full_like(const Tensor& like, double value, std::optional<Dtype> dtype = std::nullopt);
/// [0, end) and [start, end) by step, as torch::arange (default dtype int64 as in PyTorch for integers).
Tensor arange(double end, TensorOptions options = TensorOptions(kInt64));
Tensor arange(double start, double end, double step = 1, TensorOptions options = TensorOptions(kInt64));
/// libtorch's TensorOptions helpers: `xg::zeros({2}, xg::requires_grad())`, `xg::ones(3, xg::dtype(xg::kFloat64))`.
inline TensorOptions requires_grad(bool requires = true) { return TensorOptions().requires_grad(requires); }
inline TensorOptions dtype(Dtype value) { return TensorOptions(value); }
/// `steps` values evenly spaced from start to end inclusive (PyTorch's formula: the first half counted
/// up from start, the second half down from end, so both ends are exact). Floating dtypes only.
Tensor linspace(double start, double end, int64_t steps, TensorOptions options = TensorOptions());
/// base ** linspace(start, end, steps).
Tensor logspace(double start, double end, int64_t steps, double base = 10.0, TensorOptions options = TensorOptions());
/// n x m identity (m defaults to n).
Tensor eye(int64_t n, std::optional<int64_t> m = std::nullopt, TensorOptions options = {});
/// Uniform on [0, 1).
Tensor rand(IntArrayRef shape, TensorOptions options = {});
/// Standard normal.
Tensor randn(IntArrayRef shape, TensorOptions options = {});
/// Integers uniform on [low, high).
Tensor randint(int64_t low, int64_t high, IntArrayRef shape, TensorOptions options = TensorOptions(kInt64));
Tensor rand_like(const Tensor& like);
Tensor randn_like(const Tensor& like);
/// A random permutation of 0..n-1 (int64).
Tensor randperm(int64_t n);
/// A tensor over memory the caller owns (no copy): `strides` in elements (row-major when omitted);
/// `deleter`, if given, is called once with `data` when the last tensor or view of it is destroyed.
/// The memory must stay valid until then.
Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, std::function<void(void*)> deleter,
                 TensorOptions options = {});
Tensor from_blob(void* data, const Shape& sizes, const Shape& strides, TensorOptions options = {});
Tensor from_blob(void* data, const Shape& sizes, TensorOptions options = {});
/// Seeds the global generator used by rand, randn, randint, randperm, dropout and shuffling.
void manual_seed(uint64_t seed);

/// |a - b| <= atol + rtol * |b| everywhere (same shape and dtype required).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
/// Same shape, dtype and values.
bool equal(const Tensor& a, const Tensor& b);

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);
/// "[2, 3]".
std::string shape_string(const Shape& shape);

// ---- template definitions ------------------------------------------------------------------
namespace detail {
/// A tensor over all of a freshly made storage, contiguous, with the shape of its container.
std::shared_ptr<TensorImpl> make_impl(std::shared_ptr<Storage> storage, bool requires_grad);
/// A tensor over all of `storage` with the given sizes, contiguous (numel = product of sizes).
std::shared_ptr<TensorImpl> make_contiguous_impl(std::shared_ptr<Storage> storage, const Sizes& sizes, int64_t numel);
/// A new TensorImpl with t's storage and geometry and no autograd history (not a view): detach(),
/// saved outputs, an input a custom Function returns as is.
std::shared_ptr<TensorImpl> alias(const Tensor& t, bool requires_grad);
/// t itself when contiguous, otherwise a contiguous copy outside the graph: for kernels that read
/// their operands as flat arrays and record their own node on the original inputs.
Tensor dense(const Tensor& t);
/// Sets sizes, strides and offset and recomputes is_contiguous.
void set_geometry(TensorImpl& impl, Sizes sizes, Sizes strides, int64_t storage_offset);
/// PyTorch's is_contiguous: row-major dense, ignoring dims of size 1; an empty tensor is contiguous.
bool compute_contiguous(const Sizes& sizes, const Sizes& strides);
[[noreturn]] void throw_dtype_access(Dtype have, Dtype want);
[[noreturn]] void throw_not_contiguous(const char* op, const Tensor& t);
/// f(first element) with the element's C++ type.
template <class F>
auto dispatch_element(const Tensor& t, F&& f) {
  const TensorImpl& impl = *t.impl();
  switch (impl.storage->dtype) {
    case Dtype::Float32: return f(static_cast<const float*>(impl.storage->data)[impl.storage_offset]);
    case Dtype::Float64: return f(static_cast<const double*>(impl.storage->data)[impl.storage_offset]);
    case Dtype::Int64: break;
  }
  return f(static_cast<const int64_t*>(impl.storage->data)[impl.storage_offset]);
}
/// A new storage holding `array` (moved in once), from the small-object pool.
template <class T>
std::shared_ptr<Storage> make_storage(Array<T>&& array) {
  return std::allocate_shared<Storage>(PoolAllocator<Storage>(), std::move(array));
}
/// A storage of `numel` uninitialised elements of `dtype` from the caching allocator (out of memory:
/// an xg::Error naming the enclosing AllocationScope's op).
std::shared_ptr<Storage> new_storage(Dtype dtype, int64_t numel);
}  // namespace detail

template <class T>
Tensor::Tensor(Array<T> array) : impl_(detail::make_impl(detail::make_storage<T>(std::move(array)), false)) {}

template <class T>
Tensor from_array(Array<T> array, bool requires_grad) {
  Tensor result(std::move(array));
  if (requires_grad) result.requires_grad_(true);
  return result;
}

// Both accessors sit on every kernel's path: forced inline (the checks' error paths are out of line).
template <class T>
[[gnu::always_inline]] inline T* Tensor::data_ptr() const {
  if (!impl_) detail_throw_undefined("data_ptr");
  if (impl_->storage->dtype != dtype_of<T>()) detail::throw_dtype_access(dtype(), dtype_of<T>());
  return static_cast<T*>(impl_->storage->data) + impl_->storage_offset;
}

template <class T>
[[gnu::always_inline]] inline T* Tensor::contiguous_data() const {
  T* data = data_ptr<T>();
  if (!impl_->is_contiguous) detail::throw_not_contiguous("contiguous_data", *this);
  return data;
}

template <class T>
auto Tensor::array() const {
  T* data = data_ptr<T>();
  if (!impl_->is_contiguous) detail::throw_not_contiguous("array", *this);
  typename Array<T>::shape_type shape(impl_->sizes.begin(), impl_->sizes.end());
  return xt::adapt(data, static_cast<size_t>(numel()), xt::no_ownership(), shape);
}

template <class T>
auto Tensor::strided() const {
  T* data = data_ptr<T>();
  typename Array<T>::shape_type shape(impl_->sizes.begin(), impl_->sizes.end());
  xt::svector<std::ptrdiff_t, 4> strides(impl_->strides.begin(), impl_->strides.end());
  return xt::adapt(data, static_cast<size_t>(numel()), xt::no_ownership(), shape, strides);
}

template <class T>
T Tensor::item() const {
  XG_CHECK(defined(), "item: the tensor is undefined");
  XG_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}", shape_string(shape()));
  return detail::dispatch_element(*this, [](auto v) { return static_cast<T>(v); });
}

}  // namespace xg

template <>
struct fmt::formatter<xg::Tensor> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(const xg::Tensor& tensor, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(tensor.toString(), ctx);
  }
};

// Issue 14: strided tensors and views that share memory (see xgrad/autograd/DESIGN-views.md).
//
// - Aliasing for each of the 23 view ops: writes through the view reach the base and writes
//   through the base reach the view. Sizes, strides, storage offsets and is_contiguous() are
//   checked against PyTorch 1.13's values.
// - contiguous() and clone(), reshape against view, storage lifetime, no buffer per view, and one
//   version counter.
// - DESIGN-views.md §3 cases 1-11 with hand-derived numbers, and the errors listed in §3.
// - gradcheck and gradgradcheck of every differentiable view op on non-contiguous inputs, of
//   CopySlices and of a regenerated AsStridedBackward.
// - from_blob, BLAS on transposed or sliced operands, and 1 against 2 threads on strided kernels.
//
// Every expected number was written by hand from PyTorch's rules and checked against torch 1.13
// (/usr/bin/python3). Tests never compare xgrad with its own earlier output. Values are read by
// values() below, which walks sizes() and strides() from data_ptr(). It does not depend on
// contiguous(), clone() or strided(). It relies on data_ptr<T>() being valid for any strides (the
// documented contract), so the XGRAD_STRICT_DATA_PTR migration mode must leave [views] out.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "xgrad/xgrad.hpp"

using xg::Shape;
using xg::Tensor;
using xg::TensorList;
namespace ag = xg::autograd;
using Catch::Matchers::Contains;

namespace {

using V = std::vector<double>;

const char* const kNoThrow = "<<no exception was thrown>>";
const char* const kWrongType = "<<an exception that is not xg::Error was thrown>>";

/// The message of the xg::Error that f throws (or a marker that no / another exception was thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const xg::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string(kWrongType) + " " + e.what();
  } catch (...) {
    return kWrongType;
  }
  return kNoThrow;
}

/// Any integer container (std::vector, xt::svector, ...) as a std::vector<int64_t>, so the tests do
/// not depend on the exact return type of sizes() / strides().
template <class C>
std::vector<int64_t> vec(const C& c) {
  return std::vector<int64_t>(c.begin(), c.end());
}

template <class T>
V walk(const Tensor& t) {
  const std::vector<int64_t> sizes = vec(t.sizes());
  const std::vector<int64_t> strides = vec(t.strides());
  REQUIRE(sizes.size() == strides.size());
  const int64_t n = t.numel();
  V out;
  out.reserve(static_cast<size_t>(n));
  if (n == 0) return out;
  const T* first = t.data_ptr<T>();  // the first element: storage base + storage_offset()
  std::vector<int64_t> index(sizes.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < sizes.size(); ++d) offset += index[d] * strides[d];
    out.push_back(static_cast<double>(first[offset]));
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/// The tensor's elements in row-major order of its sizes, read through its own strides.
V values(const Tensor& t) {
  switch (t.dtype()) {
    case xg::Dtype::Float32: return walk<float>(t);
    case xg::Dtype::Float64: return walk<double>(t);
    case xg::Dtype::Int64: return walk<int64_t>(t);
  }
  return {};
}

void check_values(const Tensor& t, const V& expected, double tol = 1e-12) {
  const V got = values(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(expected[i]).epsilon(tol).margin(tol));
  }
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

/// start, start + 1, ... (float64, contiguous), so a view's values are the storage indices it covers.
Tensor iota(const Shape& shape, double start = 0) {
  V v(static_cast<size_t>(numel_of(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<double>(i);
  return xg::tensor(v, shape, xg::kFloat64);
}

V seq(int64_t begin, int64_t end) {
  V v;
  for (int64_t i = begin; i < end; ++i) v.push_back(static_cast<double>(i));
  return v;
}

/// A float64 leaf requiring grad.
Tensor leaf(const V& v, const Shape& shape) {
  Tensor t = xg::tensor(v, shape, xg::kFloat64);
  t.requires_grad_();
  return t;
}

/// A standard normal float64 leaf requiring grad.
Tensor normal(const Shape& shape) {
  Tensor t = xg::randn(shape, xg::kFloat64);
  t.requires_grad_();
  return t;
}

struct Geometry {
  Shape sizes;
  Shape strides;
  int64_t offset;
  bool contiguous;
};

void check_geometry(const Tensor& v, const Geometry& g) {
  CHECK(vec(v.sizes()) == g.sizes);
  CHECK(vec(v.strides()) == g.strides);
  CHECK(v.dim() == static_cast<int64_t>(g.sizes.size()));
  for (size_t d = 0; d < g.strides.size(); ++d) CHECK(v.stride(static_cast<int64_t>(d)) == g.strides[d]);
  if (!g.strides.empty()) CHECK(v.stride(-1) == g.strides.back());
  CHECK(v.storage_offset() == g.offset);
  CHECK(v.is_contiguous() == g.contiguous);
}

enum class Write { Yes, No };  // No: the view has overlapping elements (expand, overlapping windows)

/// The aliasing contract of one view op. base = 0, 1, ..., n-1 in `base_shape`, so `expected` (the
/// view's values in row-major order) also lists the storage elements the view covers.
/// 1. geometry, aliasing and values; creating the view bumps no version;
/// 2. (Write::Yes) writes through the view (copy_ of distinct marks, then mul_) land in the base at
///    exactly those elements;
/// 3. writes through the base (copy_, then add_) are seen by the view.
void check_alias(const std::string& what, const Shape& base_shape, const std::function<Tensor(const Tensor&)>& make,
                 const Geometry& g, const V& expected, Write write = Write::Yes, bool is_view = true) {
  INFO("view op: " << what);
  Tensor base = iota(base_shape);
  const double* base_data = base.data_ptr<double>();
  Tensor v = make(base);
  REQUIRE(v.defined());
  check_geometry(v, g);
  CHECK(v.dtype() == xg::kFloat64);
  CHECK(v.numel() == static_cast<int64_t>(expected.size()));
  CHECK(v.is_alias_of(base));
  CHECK(base.is_alias_of(v));
  CHECK_FALSE(v.is_same(base));  // a new tensor, even when the geometry is unchanged
  CHECK(v.is_view() == is_view);
  CHECK(base._version() == 0);
  CHECK(v._version() == 0);
  CHECK(values(v) == expected);
  if (!expected.empty()) CHECK(v.data_ptr<double>() == base_data + g.offset);
  if (v.numel() == 1) CHECK(v.item<double>() == expected[0]);

  const int64_t n = base.numel();
  if (write == Write::Yes) {
    // Distinct marks -1, -2, ... in the view's row-major order.
    V marks(expected.size());
    for (size_t k = 0; k < marks.size(); ++k) marks[k] = -static_cast<double>(k + 1);
    Tensor source = g.sizes.empty() ? xg::scalar_tensor(marks.at(0), xg::kFloat64) : xg::tensor(marks, g.sizes, xg::kFloat64);
    v.copy_(source);
    V want = seq(0, n);
    for (size_t k = 0; k < expected.size(); ++k) want[static_cast<size_t>(expected[k])] = marks[k];
    CHECK(values(base) == want);
    CHECK(values(v) == marks);

    v.mul_(2.0);
    for (size_t k = 0; k < expected.size(); ++k) want[static_cast<size_t>(expected[k])] = 2 * marks[k];
    CHECK(values(base) == want);
    CHECK(base._version() == 2);
    CHECK(v._version() == 2);
  }

  // Through the base: every element becomes 100 + i, then 101 + i.
  base.copy_(iota(base_shape, 100));
  V want_view(expected.size());
  for (size_t k = 0; k < expected.size(); ++k) want_view[k] = 100 + expected[k];
  CHECK(values(v) == want_view);
  base.add_(1.0);
  for (double& w : want_view) w += 1;
  CHECK(values(v) == want_view);
  CHECK(v._version() == base._version());
}

/// Asserts that `expr` throws xg::Error whose message satisfies `matcher`.
#define CHECK_XG_ERROR(expr, matcher)                                      \
  do {                                                                     \
    const std::string xg_message_ = error_of([&] { (void)(expr); });       \
    CHECK_THAT(xg_message_, !Contains(kNoThrow) && !Contains(kWrongType)); \
    CHECK_THAT(xg_message_, matcher);                                      \
  } while (0)

// The saved-tensor check. The brief's wording is "modified by an inplace operation"; the message
// today reads "in-place", so both spellings are accepted.
#define VERSION_ERROR (Contains("modified by an inplace operation") || Contains("modified by an in-place operation"))

using Fn = std::function<Tensor(const TensorList&)>;

void check_grads(const std::string& what, const Fn& f, const TensorList& inputs) {
  INFO("gradient check of " << what);
  CHECK(ag::gradcheck(f, inputs));
  CHECK(ag::gradgradcheck(f, inputs));
}

void check_grads_multi(const std::string& what, const ag::GradcheckFunction& f, const TensorList& inputs) {
  INFO("gradient check of " << what);
  CHECK(ag::gradcheck(f, inputs));
  CHECK(ag::gradgradcheck(f, inputs));
}

/// [n, k] x [k, m] by the textbook triple loop, over values read through the operands' strides.
V naive_mm(const Tensor& a, const Tensor& b) {
  REQUIRE(a.dim() == 2);
  REQUIRE(b.dim() == 2);
  const int64_t n = a.size(0), k = a.size(1), m = b.size(1);
  REQUIRE(b.size(0) == k);
  const V av = values(a), bv = values(b);
  V out(static_cast<size_t>(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += av[static_cast<size_t>(i * k + p)] * bv[static_cast<size_t>(p * m + j)];
      out[static_cast<size_t>(i * m + j)] = s;
    }
  return out;
}

/// matmul(a, b) against the same product of contiguous copies (allclose 1e-12) and the naive loop.
void check_product(const std::string& what, const Tensor& a, const Tensor& b) {
  INFO("product: " << what);
  Tensor got = xg::matmul(a, b);
  Tensor packed = xg::matmul(a.contiguous(), b.contiguous());
  REQUIRE(vec(got.sizes()) == vec(packed.sizes()));
  CHECK(xg::allclose(got, packed, 1e-12, 1e-12));
  CHECK(got.is_contiguous());
  if (a.dim() == 2 && b.dim() == 2) {
    check_values(got, naive_mm(a, b), 1e-12);
  } else if (a.dim() == 3 && b.dim() == 3) {
    for (int64_t i = 0; i < got.size(0); ++i) check_values(got[i], naive_mm(a[i], b[i]), 1e-12);
  }
}

/// Restores the thread count when the test ends, even on a failed REQUIRE.
struct ThreadCountGuard {
  int saved = xg::get_num_threads();
  ~ThreadCountGuard() { xg::set_num_threads(saved); }
};

bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

// =================================================================================================
// 1. Aliasing and geometry, one TEST_CASE per group of view ops
// =================================================================================================

TEST_CASE("views: view and reshape share memory", "[views][alias]") {
  check_alias("view({6, 4}) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.view({6, 4}); },
              {{6, 4}, {4, 1}, 0, true}, seq(0, 24));
  check_alias("view({-1}) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.view({-1}); },
              {{24}, {1}, 0, true}, seq(0, 24));
  // computeStride: [4, 4] with strides {6, 1} splits its last dim without a copy.
  check_alias("view({4, 2, 2}) of narrow(1, 0, 4) of [4, 6]", {4, 6},
              [](const Tensor& b) { return b.narrow(1, 0, 4).view({4, 2, 2}); }, {{4, 2, 2}, {6, 2, 1}, 0, false},
              {0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21});
  check_alias("view({2, 2, 3}) of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().view({2, 2, 3}); },
              {{2, 2, 3}, {2, 1, 4}, 0, false}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  check_alias("view({3, 2, 2}) of expand({3, 4}) of [3, 1]", {3, 1},
              [](const Tensor& b) { return b.expand({3, 4}).view({3, 2, 2}); }, {{3, 2, 2}, {1, 0, 0}, 0, false},
              {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}, Write::No);
  check_alias("xg::view free function", {2, 3, 4}, [](const Tensor& b) { return xg::view(b, {4, 6}); },
              {{4, 6}, {6, 1}, 0, true}, seq(0, 24));

  check_alias("reshape({4, 6}) of contiguous [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.reshape({4, 6}); },
              {{4, 6}, {6, 1}, 0, true}, seq(0, 24));
  check_alias("reshape({4, 2, 2}) of narrow(1, 0, 4) (viewable)", {4, 6},
              [](const Tensor& b) { return b.narrow(1, 0, 4).reshape({4, 2, 2}); }, {{4, 2, 2}, {6, 2, 1}, 0, false},
              {0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21});
  check_alias("xg::reshape free function", {2, 3, 4}, [](const Tensor& b) { return xg::reshape(b, {2, 12}); },
              {{2, 12}, {12, 1}, 0, true}, seq(0, 24));
}

TEST_CASE("views: narrow, slice, select and operator[] share memory", "[views][alias]") {
  check_alias("narrow(1, 1, 2) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.narrow(1, 1, 2); },
              {{3, 2}, {4, 1}, 1, false}, {1, 2, 5, 6, 9, 10});
  check_alias("narrow(0, 1, 1) of [3, 4] (size-1 dims do not break contiguity)", {3, 4},
              [](const Tensor& b) { return b.narrow(0, 1, 1); }, {{1, 4}, {4, 1}, 4, true}, {4, 5, 6, 7});
  check_alias("narrow(1, 2, 1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.narrow(1, 2, 1); },
              {{3, 1}, {4, 1}, 2, false}, {2, 6, 10});
  check_alias("xg::narrow free function", {3, 4}, [](const Tensor& b) { return xg::narrow(b, 0, 1, 2); },
              {{2, 4}, {4, 1}, 4, true}, seq(4, 12));

  check_alias("slice(x, 1, 0, 4, 2) of [3, 4]", {3, 4}, [](const Tensor& b) { return xg::slice(b, 1, 0, 4, 2); },
              {{3, 2}, {4, 2}, 0, false}, {0, 2, 4, 6, 8, 10});
  check_alias("slice(x, 1, nullopt, nullopt, 2) of [3, 4]", {3, 4},
              [](const Tensor& b) { return xg::slice(b, 1, std::nullopt, std::nullopt, 2); }, {{3, 2}, {4, 2}, 0, false},
              {0, 2, 4, 6, 8, 10});
  check_alias("slice(0, 1, 3, 1) method of [3, 4]", {3, 4}, [](const Tensor& b) { return b.slice(0, 1, 3, 1); },
              {{2, 4}, {4, 1}, 4, true}, seq(4, 12));
  check_alias("slice(x, 1, -3, -1) of [3, 4]", {3, 4}, [](const Tensor& b) { return xg::slice(b, 1, -3, -1); },
              {{3, 2}, {4, 1}, 1, false}, {1, 2, 5, 6, 9, 10});
  check_alias("slice(x, 1, 2, 100) of [3, 4] (end clamped)", {3, 4}, [](const Tensor& b) { return xg::slice(b, 1, 2, 100); },
              {{3, 2}, {4, 1}, 2, false}, {2, 3, 6, 7, 10, 11});
  check_alias("slice(0, 1, 10, 3) of [10]", {10}, [](const Tensor& b) { return b.slice(0, 1, 10, 3); },
              {{3}, {3}, 1, false}, {1, 4, 7});

  check_alias("select(1, 2) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.select(1, 2); }, {{3}, {4}, 2, false},
              {2, 6, 10});
  check_alias("select(0, -1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.select(0, -1); }, {{4}, {1}, 8, true},
              {8, 9, 10, 11});
  check_alias("xg::select free function", {3, 4}, [](const Tensor& b) { return xg::select(b, 1, 0); },
              {{3}, {4}, 0, false}, {0, 4, 8});
  check_alias("operator[](1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b[1]; }, {{4}, {1}, 4, true}, {4, 5, 6, 7});
  check_alias("operator[](1)[2] of [3, 4] (0-d)", {3, 4}, [](const Tensor& b) { return b[1][2]; }, {{}, {}, 6, true}, {6});
  check_alias("operator[](2) of [2, 3, 4] transposed (0, 2)", {2, 3, 4}, [](const Tensor& b) { return b.transpose(0, 2)[2]; },
              {{3, 2}, {4, 12}, 2, false}, {2, 14, 6, 18, 10, 22});
}

TEST_CASE("views: transpose, t, permute and movedim share memory", "[views][alias]") {
  const V transposed_02 = {0, 12, 4, 16, 8, 20, 1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22, 3, 15, 7, 19, 11, 23};
  check_alias("transpose(0, 2) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.transpose(0, 2); },
              {{4, 3, 2}, {1, 4, 12}, 0, false}, transposed_02);
  check_alias("xg::transpose free function", {2, 3, 4}, [](const Tensor& b) { return xg::transpose(b, 2, 0); },
              {{4, 3, 2}, {1, 4, 12}, 0, false}, transposed_02);
  check_alias("transpose(-1, -2) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.transpose(-1, -2); },
              {{2, 4, 3}, {12, 1, 4}, 0, false},
              {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, 12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23});
  check_alias("transpose(0, 0) (a new view, not self)", {3, 4}, [](const Tensor& b) { return b.transpose(0, 0); },
              {{3, 4}, {4, 1}, 0, true}, seq(0, 12));

  const V t34 = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
  check_alias("t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t(); }, {{4, 3}, {1, 4}, 0, false}, t34);
  check_alias("xg::t free function", {3, 4}, [](const Tensor& b) { return xg::t(b); }, {{4, 3}, {1, 4}, 0, false}, t34);
  check_alias("t() of 1-D (a new view, not self)", {3}, [](const Tensor& b) { return b.t(); }, {{3}, {1}, 0, true}, {0, 1, 2});
  check_alias("t() of narrow(0, 1, 1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.narrow(0, 1, 1).t(); },
              {{4, 1}, {1, 4}, 4, true}, {4, 5, 6, 7});

  const V permuted = {0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23};
  check_alias("permute({2, 0, 1}) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.permute({2, 0, 1}); },
              {{4, 2, 3}, {1, 12, 4}, 0, false}, permuted);
  check_alias("permute({-1, 0, 1}) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.permute({-1, 0, 1}); },
              {{4, 2, 3}, {1, 12, 4}, 0, false}, permuted);
  check_alias("xg::permute free function", {2, 3, 4}, [](const Tensor& b) { return xg::permute(b, {2, 0, 1}); },
              {{4, 2, 3}, {1, 12, 4}, 0, false}, permuted);

  const V moved = {0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23};
  check_alias("movedim(0, 2) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.movedim(0, 2); },
              {{3, 4, 2}, {4, 1, 12}, 0, false}, moved);
  check_alias("movedim({0, 1}, {2, 0}) of [2, 3, 4]", {2, 3, 4},
              [](const Tensor& b) { return b.movedim(std::vector<int64_t>{0, 1}, std::vector<int64_t>{2, 0}); },
              {{3, 4, 2}, {4, 1, 12}, 0, false}, moved);
  check_alias("movedim(-1, 0) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.movedim(-1, 0); },
              {{4, 2, 3}, {1, 12, 4}, 0, false}, permuted);
  check_alias("xg::movedim free function", {2, 3, 4}, [](const Tensor& b) { return xg::movedim(b, 0, 2); },
              {{3, 4, 2}, {4, 1, 12}, 0, false}, moved);
}

TEST_CASE("views: expand and expand_as share memory", "[views][alias]") {
  check_alias("expand({3, 4}) of [3, 1]", {3, 1}, [](const Tensor& b) { return b.expand({3, 4}); },
              {{3, 4}, {1, 0}, 0, false}, {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}, Write::No);
  check_alias("expand({2, 3}) of [3]", {3}, [](const Tensor& b) { return b.expand({2, 3}); }, {{2, 3}, {0, 1}, 0, false},
              {0, 1, 2, 0, 1, 2}, Write::No);
  check_alias("xg::expand free function", {3}, [](const Tensor& b) { return xg::expand(b, {2, 3}); },
              {{2, 3}, {0, 1}, 0, false}, {0, 1, 2, 0, 1, 2}, Write::No);
  // Same shape: a new view without overlap, so it can be written.
  check_alias("expand({-1, -1}) of [3, 1]", {3, 1}, [](const Tensor& b) { return b.expand({-1, -1}); },
              {{3, 1}, {1, 1}, 0, true}, {0, 1, 2});
  const Tensor like = xg::zeros({2, 3, 4}, xg::kFloat64);
  const V expanded = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2};
  check_alias("expand_as([2, 3, 4]) of [3, 1]", {3, 1}, [&](const Tensor& b) { return b.expand_as(like); },
              {{2, 3, 4}, {0, 1, 0}, 0, false}, expanded, Write::No);
  check_alias("xg::expand_as free function", {3, 1}, [&](const Tensor& b) { return b.expand_as(like); },
              {{2, 3, 4}, {0, 1, 0}, 0, false}, expanded, Write::No);
}

TEST_CASE("views: squeeze, unsqueeze, flatten and unflatten share memory", "[views][alias]") {
  check_alias("squeeze() of [3, 1, 4, 1]", {3, 1, 4, 1}, [](const Tensor& b) { return b.squeeze(); },
              {{3, 4}, {4, 1}, 0, true}, seq(0, 12));
  check_alias("squeeze(1) of [3, 1, 4, 1]", {3, 1, 4, 1}, [](const Tensor& b) { return b.squeeze(1); },
              {{3, 4, 1}, {4, 1, 1}, 0, true}, seq(0, 12));
  check_alias("squeeze(-1) of [3, 1, 4, 1]", {3, 1, 4, 1}, [](const Tensor& b) { return b.squeeze(-1); },
              {{3, 1, 4}, {4, 4, 1}, 0, true}, seq(0, 12));
  check_alias("squeeze(0) of [3, 1, 4, 1] (size 3: a new view, not self)", {3, 1, 4, 1},
              [](const Tensor& b) { return b.squeeze(0); }, {{3, 1, 4, 1}, {4, 4, 1, 1}, 0, true}, seq(0, 12));
  check_alias("squeeze() of narrow(0, 1, 1) of a step-2 slice of [2, 6]", {2, 6}, [](const Tensor& b) { return b.slice(1, 0, 6, 2).narrow(0, 1, 1).squeeze(); },
              {{3}, {2}, 6, false}, {6, 8, 10});
  check_alias("xg::squeeze free functions", {3, 1, 4, 1}, [](const Tensor& b) { return xg::squeeze(xg::squeeze(b, 3)); },
              {{3, 4}, {4, 1}, 0, true}, seq(0, 12));

  check_alias("unsqueeze(1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unsqueeze(1); },
              {{3, 1, 4}, {4, 4, 1}, 0, true}, seq(0, 12));
  check_alias("unsqueeze(-1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unsqueeze(-1); },
              {{3, 4, 1}, {4, 1, 1}, 0, true}, seq(0, 12));
  const V t34 = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
  check_alias("unsqueeze(0) of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().unsqueeze(0); },
              {{1, 4, 3}, {4, 1, 4}, 0, false}, t34);
  check_alias("unsqueeze(1) of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().unsqueeze(1); },
              {{4, 1, 3}, {1, 12, 4}, 0, false}, t34);
  check_alias("unsqueeze(2) of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().unsqueeze(2); },
              {{4, 3, 1}, {1, 4, 1}, 0, false}, t34);
  check_alias("xg::unsqueeze free function", {3, 4}, [](const Tensor& b) { return xg::unsqueeze(b, 0); },
              {{1, 3, 4}, {12, 4, 1}, 0, true}, seq(0, 12));

  check_alias("flatten(1, 2) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.flatten(1, 2); },
              {{2, 12}, {12, 1}, 0, true}, seq(0, 24));
  check_alias("flatten() of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.flatten(); }, {{24}, {1}, 0, true},
              seq(0, 24));
  check_alias("flatten(0, 1) of narrow(2, 0, 2) of [2, 3, 4]", {2, 3, 4},
              [](const Tensor& b) { return b.narrow(2, 0, 2).flatten(0, 1); }, {{6, 2}, {4, 1}, 0, false},
              {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21});
  check_alias("xg::flatten free function", {2, 3, 4}, [](const Tensor& b) { return xg::flatten(b, 0, 1); },
              {{6, 4}, {4, 1}, 0, true}, seq(0, 24));

  check_alias("unflatten(1, {2, 2}) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unflatten(1, {2, 2}); },
              {{3, 2, 2}, {4, 2, 1}, 0, true}, seq(0, 12));
  check_alias("unflatten(0, {2, 2}) of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().unflatten(0, {2, 2}); },
              {{2, 2, 3}, {2, 1, 4}, 0, false}, t34);
  check_alias("xg::unflatten free function", {3, 4}, [](const Tensor& b) { return xg::unflatten(b, 1, {2, 2}); },
              {{3, 2, 2}, {4, 2, 1}, 0, true}, seq(0, 12));
}

TEST_CASE("views: chunk, split and unbind pieces share memory", "[views][alias]") {
  check_alias("chunk(2, 1)[0] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.chunk(2, 1)[0]; },
              {{3, 2}, {4, 1}, 0, false}, {0, 1, 4, 5, 8, 9});
  check_alias("chunk(2, 1)[1] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.chunk(2, 1)[1]; },
              {{3, 2}, {4, 1}, 2, false}, {2, 3, 6, 7, 10, 11});
  check_alias("chunk(3)[1] of [7]", {7}, [](const Tensor& b) { return b.chunk(3, 0)[1]; }, {{3}, {1}, 3, true}, {3, 4, 5});
  check_alias("chunk(3)[2] of [7]", {7}, [](const Tensor& b) { return b.chunk(3, 0)[2]; }, {{1}, {1}, 6, true}, {6});
  check_alias("xg::chunk free function", {3, 4}, [](const Tensor& b) { return xg::chunk(b, 2, 1)[1]; },
              {{3, 2}, {4, 1}, 2, false}, {2, 3, 6, 7, 10, 11});

  check_alias("split(2)[1] of [5, 2]", {5, 2}, [](const Tensor& b) { return b.split(2, 0)[1]; }, {{2, 2}, {2, 1}, 4, true},
              {4, 5, 6, 7});
  check_alias("split(2)[2] of [5, 2]", {5, 2}, [](const Tensor& b) { return b.split(2, 0)[2]; }, {{1, 2}, {2, 1}, 8, true},
              {8, 9});
  check_alias("split(3, 1)[0] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.split(3, 1)[0]; },
              {{3, 3}, {4, 1}, 0, false}, {0, 1, 2, 4, 5, 6, 8, 9, 10});
  check_alias("split(3, 1)[1] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.split(3, 1)[1]; },
              {{3, 1}, {4, 1}, 3, false}, {3, 7, 11});
  check_alias("xg::split free function", {5, 2}, [](const Tensor& b) { return xg::split(b, 2, 0)[1]; },
              {{2, 2}, {2, 1}, 4, true}, {4, 5, 6, 7});

  check_alias("unbind(1)[0] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unbind(1)[0]; }, {{3}, {4}, 0, false},
              {0, 4, 8});
  check_alias("unbind(1)[3] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unbind(1)[3]; }, {{3}, {4}, 3, false},
              {3, 7, 11});
  check_alias("unbind(0)[2] of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unbind(0)[2]; }, {{4}, {1}, 8, true},
              {8, 9, 10, 11});
  check_alias("xg::unbind free function", {3, 4}, [](const Tensor& b) { return xg::unbind(b, 1)[1]; },
              {{3}, {4}, 1, false}, {1, 5, 9});

  SECTION("all pieces together cover the base exactly once") {
    Tensor base = iota({3, 4});
    TensorList pieces = base.unbind(1);
    REQUIRE(pieces.size() == 4);
    for (size_t j = 0; j < pieces.size(); ++j) pieces[j].fill_(10.0 * static_cast<double>(j));
    CHECK(values(base) == V{0, 10, 20, 30, 0, 10, 20, 30, 0, 10, 20, 30});
    TensorList parts = base.split(3, 1);
    REQUIRE(parts.size() == 2);
    parts[1].fill_(-1.0);
    CHECK(values(base) == V{0, 10, 20, -1, 0, 10, 20, -1, 0, 10, 20, -1});
  }
}

TEST_CASE("views: diagonal, as_strided and unfold share memory", "[views][alias]") {
  check_alias("diagonal() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.diagonal(); }, {{3}, {5}, 0, false},
              {0, 5, 10});
  check_alias("diagonal(1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.diagonal(1); }, {{3}, {5}, 1, false},
              {1, 6, 11});
  check_alias("diagonal(-1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.diagonal(-1); }, {{2}, {5}, 4, false},
              {4, 9});
  check_alias("diagonal(0, 1, 2) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.diagonal(0, 1, 2); },
              {{2, 3}, {12, 5}, 0, false}, {0, 5, 10, 12, 17, 22});
  check_alias("diagonal(-1, 2, 0) of [2, 3, 4]", {2, 3, 4}, [](const Tensor& b) { return b.diagonal(-1, 2, 0); },
              {{3, 2}, {4, 13}, 1, false}, {1, 14, 5, 18, 9, 22});
  check_alias("diagonal() of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().diagonal(); },
              {{3}, {5}, 0, false}, {0, 5, 10});
  check_alias("xg::diagonal free function", {3, 4}, [](const Tensor& b) { return xg::diagonal(b, 1, 0, 1); },
              {{3}, {5}, 1, false}, {1, 6, 11});

  check_alias("as_strided({2, 2}, {1, 2}, 1) of [10]", {10}, [](const Tensor& b) { return b.as_strided({2, 2}, {1, 2}, 1); },
              {{2, 2}, {1, 2}, 1, false}, {1, 3, 2, 4});
  // Without an offset: the input's own storage offset. With one: absolute in the storage.
  check_alias("as_strided({3}, {2}) of narrow(0, 2, 5) of [10]", {10},
              [](const Tensor& b) { return b.narrow(0, 2, 5).as_strided({3}, {2}, std::nullopt); }, {{3}, {2}, 2, false},
              {2, 4, 6});
  check_alias("as_strided({2}, {1}, 0) of narrow(0, 2, 5) of [10]", {10},
              [](const Tensor& b) { return b.narrow(0, 2, 5).as_strided({2}, {1}, 0); }, {{2}, {1}, 0, true}, {0, 1});
  check_alias("as_strided({3, 2}, {1, 1}) of [10] (overlapping)", {10},
              [](const Tensor& b) { return b.as_strided({3, 2}, {1, 1}, 0); }, {{3, 2}, {1, 1}, 0, false},
              {0, 1, 1, 2, 2, 3}, Write::No);
  check_alias("xg::as_strided free function", {10}, [](const Tensor& b) { return xg::as_strided(b, {2, 2}, {1, 2}, 1); },
              {{2, 2}, {1, 2}, 1, false}, {1, 3, 2, 4});

  check_alias("unfold(0, 4, 3) of [10] (overlapping windows)", {10}, [](const Tensor& b) { return b.unfold(0, 4, 3); },
              {{3, 4}, {3, 1}, 0, false}, {0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9}, Write::No);
  check_alias("unfold(0, 2, 3) of [10] (disjoint windows)", {10}, [](const Tensor& b) { return b.unfold(0, 2, 3); },
              {{3, 2}, {3, 1}, 0, false}, {0, 1, 3, 4, 6, 7});
  check_alias("unfold(1, 2, 2) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unfold(1, 2, 2); },
              {{3, 2, 2}, {4, 2, 1}, 0, true}, seq(0, 12));
  check_alias("unfold(0, 2, 1) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.unfold(0, 2, 1); },
              {{2, 4, 2}, {4, 1, 4}, 0, false}, {0, 4, 1, 5, 2, 6, 3, 7, 4, 8, 5, 9, 6, 10, 7, 11}, Write::No);
}

TEST_CASE("views: detach is an alias with the same geometry but not a view", "[views][alias]") {
  check_alias("detach() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.detach(); }, {{3, 4}, {4, 1}, 0, true},
              seq(0, 12), Write::Yes, /*is_view=*/false);
  check_alias("detach() of t() of [3, 4]", {3, 4}, [](const Tensor& b) { return b.t().detach(); },
              {{4, 3}, {1, 4}, 0, false}, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, Write::Yes, /*is_view=*/false);
  check_alias("detach() of narrow(1, 1, 2) of [3, 4]", {3, 4}, [](const Tensor& b) { return b.narrow(1, 1, 2).detach(); },
              {{3, 2}, {4, 1}, 1, false}, {1, 2, 5, 6, 9, 10}, Write::Yes, /*is_view=*/false);
}

TEST_CASE("views: an empty view is contiguous and 0-d views read with item", "[views][alias]") {
  Tensor base = iota({3, 4});
  Tensor empty = base.narrow(1, 0, 0);
  check_geometry(empty, {{3, 0}, {4, 1}, 0, true});
  CHECK(empty.numel() == 0);
  CHECK(values(empty).empty());
  CHECK(empty.is_alias_of(base));

  CHECK(base[2][3].item<double>() == 11);
  CHECK(base.t()[3][1].item<double>() == 7);
  CHECK(base.diagonal()[2].item<double>() == 10);
}

TEST_CASE("views: writes through a slice of a parameter under NoGradGuard initialise it", "[views][alias]") {
  Tensor w = xg::zeros({3, 4}, xg::kFloat64);
  w.requires_grad_();
  {
    xg::NoGradGuard guard;
    w[1].fill_(1.0);
    w.narrow(1, 3, 1).fill_(2.0);
    w.diagonal().mul_(5.0);  // w[0][0] = 0, w[1][1] = 5, w[2][2] = 0
    w.t()[0].add_(3.0);      // column 0
  }
  CHECK(values(w) == V{3, 0, 0, 2, 4, 5, 1, 2, 3, 0, 0, 2});
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  CHECK(w._version() == 4);
}

TEST_CASE("views: nn::init through a view writes into the parameter and nowhere else", "[views][alias][init]") {
  namespace init = xg::nn::init;
  xg::manual_seed(3);
  Tensor w = xg::full({4, 6}, 7.0, xg::kFloat64).requires_grad_();
  {
    xg::NoGradGuard guard;
    init::zeros_(w.narrow(0, 0, 2));          // rows 0 and 1
    init::ones_(w[2]);                        // row 2
    init::constant_(w.t()[5], -1.0);          // column 5, through a transposed view
  }
  const V got = values(w);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) {
      const double expected = c == 5 ? -1.0 : r < 2 ? 0.0 : r == 2 ? 1.0 : 7.0;
      INFO("row " << r << " column " << c);
      CHECK(got[static_cast<size_t>(r * 6 + c)] == expected);
    }
  // Random initialisers: only the view's elements change, and they take values in the bound.
  Tensor u = xg::full({4, 6}, 7.0, xg::kFloat64).requires_grad_();
  {
    xg::NoGradGuard guard;
    init::uniform_(u.slice(1, 0, 6, 2), -0.5, 0.5);   // even columns
    init::normal_(u.slice(1, 1, 6, 2));               // odd columns of every row, after the first pass
  }
  const V uv = values(u);
  int changed_even = 0;
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; c += 2) {
      const double v = uv[static_cast<size_t>(r * 6 + c)];
      CHECK(v >= -0.5);
      CHECK(v < 0.5);
      changed_even += v != 7.0;
    }
  CHECK(changed_even == 12);
  int changed_odd = 0;
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 1; c < 6; c += 2) changed_odd += uv[static_cast<size_t>(r * 6 + c)] != 7.0;
  CHECK(changed_odd == 12);
  // kaiming_uniform_ of the transposed [6, 4] view: fan_in 4, bound sqrt(6 / 4) (a = 0).
  Tensor k = xg::full({4, 6}, 100.0, xg::kFloat64).requires_grad_();
  {
    xg::NoGradGuard guard;
    init::kaiming_uniform_(k.t());
  }
  for (double v : values(k)) {
    CHECK(std::abs(v) <= std::sqrt(6.0 / 4.0));
  }
}

TEST_CASE("views: Embedding's padding row is zeroed in the weight itself", "[views][alias][init]") {
  xg::manual_seed(1);
  xg::nn::Embedding embedding(xg::nn::EmbeddingOptions(5, 3).padding_idx(2));
  const V got = values(embedding->weight.detach().to(xg::kFloat64));
  for (int64_t c = 0; c < 3; ++c) CHECK(got[static_cast<size_t>(2 * 3 + c)] == 0.0);
  int nonzero = 0;
  for (size_t i = 0; i < got.size(); ++i) nonzero += got[i] != 0.0;
  CHECK(nonzero == 12);
}

TEST_CASE("views: optimizers refuse a non-contiguous parameter by name", "[views][errors]") {
  Tensor storage = xg::ones({3, 4}, xg::kFloat64);
  Tensor param = storage.t().detach().requires_grad_();  // a leaf with transposed strides
  REQUIRE_FALSE(param.is_contiguous());
  (param * param).sum().backward();
  xg::optim::SGD sgd({param}, xg::optim::SGDOptions(0.1));
  CHECK_XG_ERROR(sgd.step(), Contains("SGD") && Contains("not contiguous") && Contains("strides [1, 4]"));
  CHECK(values(storage) == V(12, 1.0));  // nothing written
}

// =================================================================================================
// 2. contiguous(), clone(), view of view, reshape against view
// =================================================================================================

TEST_CASE("views: contiguous() is self when contiguous and a copy otherwise", "[views][contiguous]") {
  Tensor x = iota({3, 4});
  CHECK(x.contiguous().is_same(x));
  Tensor row = x.narrow(0, 1, 2);  // a contiguous view with an offset
  REQUIRE(row.is_contiguous());
  CHECK(row.contiguous().is_same(row));
  Tensor flat = iota({3});
  CHECK(flat.flatten().is_same(flat));  // flatten of 1-D returns self, as in PyTorch

  Tensor t = x.t();
  Tensor c = t.contiguous();
  CHECK_FALSE(c.is_same(t));
  CHECK_FALSE(c.is_alias_of(x));
  CHECK_FALSE(c.is_view());
  check_geometry(c, {{4, 3}, {3, 1}, 0, true});
  CHECK(values(c) == V{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  c.fill_(-1.0);
  CHECK(values(x) == seq(0, 12));  // the copy is independent
  x.fill_(7.0);
  CHECK(values(c) == V(12, -1.0));

  Tensor e = iota({3, 1}).expand({3, 4}).contiguous();
  check_geometry(e, {{3, 4}, {4, 1}, 0, true});
  CHECK(values(e) == V{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
}

TEST_CASE("views: clone never aliases", "[views][contiguous]") {
  Tensor x = iota({3, 4});
  for (const Tensor& source : {x, x.t(), x.narrow(1, 1, 2), x.diagonal(), iota({3, 1}).expand({3, 4})}) {
    Tensor c = source.clone();
    CHECK_FALSE(c.is_alias_of(source));
    CHECK_FALSE(c.is_view());
    CHECK(c.is_contiguous());  // contiguous() is defined as clone() on a non-contiguous tensor
    CHECK(values(c) == values(source));
  }
  Tensor c = x.t().clone();
  c.fill_(0.0);
  CHECK(values(x) == seq(0, 12));
}

TEST_CASE("views: a view of a view aliases the root", "[views][contiguous]") {
  Tensor root = iota({4, 6});
  Tensor v3;
  {
    Tensor v1 = root.narrow(0, 1, 2);  // [2, 6], offset 6
    Tensor v2 = v1.t();                // [6, 2], strides {1, 6}, offset 6
    v3 = v2.narrow(0, 2, 3);           // [3, 2], strides {1, 6}, offset 8
  }
  check_geometry(v3, {{3, 2}, {1, 6}, 8, false});
  CHECK(v3.is_alias_of(root));
  CHECK(values(v3) == V{8, 14, 9, 15, 10, 16});
  v3.fill_(-1.0);
  V want = seq(0, 24);
  for (int i : {8, 9, 10, 14, 15, 16}) want[static_cast<size_t>(i)] = -1;
  CHECK(values(root) == want);
  root.zero_();
  CHECK(values(v3) == V(6, 0.0));
}

TEST_CASE("views: reshape views when it can and copies otherwise; view refuses", "[views][contiguous]") {
  Tensor a = iota({3, 4});
  Tensor r = a.reshape({12});
  CHECK(r.is_alias_of(a));
  CHECK(r.is_view());

  Tensor copy = a.t().reshape({12});
  CHECK_FALSE(copy.is_alias_of(a));
  CHECK_FALSE(copy.is_view());
  check_geometry(copy, {{12}, {1}, 0, true});
  CHECK(values(copy) == V{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  copy.fill_(0.0);
  CHECK(values(a) == seq(0, 12));

  Tensor copy2 = xg::reshape(a.t(), {2, 6});
  CHECK_FALSE(copy2.is_alias_of(a));
  CHECK(values(copy2) == V{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});

  CHECK_XG_ERROR(a.t().view({12}), Contains("view size is not compatible with input tensor's size and stride"));
  CHECK_XG_ERROR(a.t().view({2, 6}), Contains("view size is not compatible with input tensor's size and stride"));
  CHECK_XG_ERROR(iota({3, 1}).expand({3, 4}).view({12}), Contains("view size is not compatible"));
  // Every other column is one chunk of stride 2: viewable (torch 1.13 gives stride (2,)).
  Tensor every_other = a.slice(1, 0, 4, 2).view({6});
  CHECK(every_other.is_alias_of(a));
  CHECK(every_other.strides() == xg::Shape{2});
  CHECK(values(every_other) == V{0, 2, 4, 6, 8, 10});
  CHECK(values(a.t().contiguous().view({12})) == V{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
}

TEST_CASE("views: array<T>() refuses non-contiguous tensors; strided<T>() reads any geometry", "[views][contiguous][errors]") {
  Tensor x = iota({3, 4});
  Tensor t = x.t();
  CHECK_XG_ERROR(t.array<double>(), Contains("not contiguous"));
  CHECK_XG_ERROR(x.narrow(1, 1, 2).array<double>(), Contains("not contiguous"));
  CHECK_XG_ERROR(iota({3, 1}).expand({3, 4}).array<double>(), Contains("not contiguous"));

  auto s = t.strided<double>();
  CHECK(s(0, 0) == 0);
  CHECK(s(1, 2) == 9);
  CHECK(s(3, 0) == 3);
  CHECK(s(3, 2) == 11);
  x.mul_(2.0);  // the adaptor owns nothing: it sees the new values
  CHECK(s(1, 2) == 18);

  Tensor e = iota({3, 1}).expand({3, 4});
  auto se = e.strided<double>();
  CHECK(se(2, 0) == 2);
  CHECK(se(2, 3) == 2);
  CHECK(se(0, 3) == 0);

  Tensor rows = iota({3, 4}).narrow(0, 1, 2);  // contiguous with an offset: array<T>() works
  auto a = rows.array<double>();
  CHECK(a(0, 0) == 4);
  CHECK(a(1, 3) == 11);
}

// =================================================================================================
// 3. Storage lifetime and allocation
// =================================================================================================

TEST_CASE("views: a view outlives its base's handle", "[views][lifetime]") {
  Tensor v, w;
  {
    Tensor base = iota({3, 4});
    v = base.narrow(1, 1, 2);  // elements 1, 2, 5, 6, 9, 10
    w = base.t()[1];           // column 1: elements 1, 5, 9
  }
  CHECK(values(v) == V{1, 2, 5, 6, 9, 10});
  CHECK(values(w) == V{1, 5, 9});
  CHECK(v.is_alias_of(w));
  v.fill_(0.0);  // still one storage: w sees it
  CHECK(values(w) == V{0, 0, 0});
  w.fill_(-3.0);
  CHECK(values(v) == V{-3, 0, -3, 0, -3, 0});
}

TEST_CASE("views: the buffer lives while any view does and is freed with the last", "[views][lifetime][memory]") {
  constexpr size_t kBytes = 256 * 256 * sizeof(double);
  const size_t start = xg::allocator_stats().allocated_bytes;
  Tensor v;
  size_t with_base = 0;
  {
    Tensor base = xg::zeros({256, 256}, xg::kFloat64);
    with_base = xg::allocator_stats().allocated_bytes;
    REQUIRE(with_base >= start + kBytes);
    v = base.slice(0, 0, 256, 2).t();
  }
  CHECK(xg::allocator_stats().allocated_bytes == with_base);  // the view keeps the whole buffer
  CHECK(values(v[0]).size() == 128);
  v = Tensor();
  CHECK(xg::allocator_stats().allocated_bytes + kBytes <= with_base);
  CHECK(xg::allocator_stats().allocated_bytes == start);
}

TEST_CASE("views: creating views allocates no buffer", "[views][lifetime][memory]") {
  Tensor base = iota({4, 6});
  Tensor param = normal({4, 6});  // views of it record nodes; still no tensor buffer
  std::vector<Tensor> views;
  views.reserve(1000);
  auto make_views = [&views](const Tensor& b) {
    for (int i = 0; i < 4; ++i) {
      views.push_back(b.narrow(1, 1, 2));
      views.push_back(b.t());
      views.push_back(b.transpose(0, 1));
      views.push_back(b[i]);
      views.push_back(b.select(1, i));
      views.push_back(b.diagonal());
      views.push_back(b.view({24}));
      views.push_back(b.reshape({6, 4}));
      views.push_back(b.unsqueeze(0));
      views.push_back(b.unsqueeze(0).squeeze(0));
      views.push_back(b.unsqueeze(0).squeeze());
      views.push_back(xg::slice(b, 1, 0, 6, 2));
      views.push_back(b.unsqueeze(0).expand({3, 4, 6}));
      views.push_back(b.narrow(0, 0, 1).expand_as(b));
      views.push_back(b.permute({1, 0}));
      views.push_back(b.movedim(0, 1));
      views.push_back(b.flatten());
      views.push_back(b.unflatten(1, {2, 3}));
      views.push_back(b.as_strided({2, 2}, {1, 6}, 1));
      views.push_back(b.unfold(1, 2, 2));
      views.push_back(b.chunk(2, 1)[0]);
      views.push_back(b.split(3, 1)[1]);
      views.push_back(b.unbind(0)[2]);
      views.push_back(b.detach());
      views.push_back(b.contiguous());
    }
  };
  const xg::AllocatorStats before = xg::allocator_stats();
  make_views(base);
  make_views(param);
  const xg::AllocatorStats after = xg::allocator_stats();
  REQUIRE(views.size() >= 100);
  CHECK(after.allocated_bytes == before.allocated_bytes);
  CHECK(after.cache_hits == before.cache_hits);  // not even a cache request
  CHECK(after.system_allocations == before.system_allocations);
  for (const Tensor& v : views) CHECK((v.is_alias_of(base) || v.is_alias_of(param)));

  // The measurement itself can see an allocation.
  Tensor copy = base.t().contiguous();
  CHECK_FALSE(copy.is_alias_of(base));
  CHECK(xg::allocator_stats().allocated_bytes >= after.allocated_bytes + 24 * sizeof(double));
}

// =================================================================================================
// 4. One version counter per storage
// =================================================================================================

TEST_CASE("views: base, views and detach share one version counter", "[views][version]") {
  Tensor base = iota({3, 4});
  Tensor v = base.t();
  Tensor d = base.detach();
  Tensor w = v[1];
  auto versions = [&] { return std::vector<uint64_t>{base._version(), v._version(), d._version(), w._version()}; };
  CHECK(versions() == std::vector<uint64_t>{0, 0, 0, 0});
  w.add_(1.0);
  CHECK(versions() == std::vector<uint64_t>{1, 1, 1, 1});
  d.mul_(2.0);
  CHECK(versions() == std::vector<uint64_t>{2, 2, 2, 2});
  base.fill_(0.0);
  CHECK(versions() == std::vector<uint64_t>{3, 3, 3, 3});
  Tensor late = base.diagonal();  // a view made later starts at the shared value
  CHECK(late._version() == 3);
  late.zero_();
  CHECK(versions() == std::vector<uint64_t>{4, 4, 4, 4});
  Tensor copy = base.t().contiguous();
  CHECK(copy._version() == 0);  // a copy has its own counter
  copy.add_(1.0);
  CHECK(base._version() == 4);
}

TEST_CASE("views: modifying a view of a saved tensor fails backward", "[views][version][errors]") {
  SECTION("b = a * a, then a[0].add_(1)") {
    Tensor x = xg::ones({2, 3}, xg::kFloat64);
    x.requires_grad_();
    Tensor a = x * 1.0;
    Tensor b = a * a;
    a[0].add_(1.0);
    CHECK(a._version() == 1);
    CHECK_XG_ERROR(b.sum().backward(), VERSION_ERROR);
  }
  SECTION("a = y[:3], b = y[3:], a.mul_(b): b was saved at version 0, and the message names [3], not [6]") {
    Tensor x = xg::ones({6}, xg::kFloat64);
    x.requires_grad_();
    Tensor y = x * 1.0;
    Tensor a = y.slice(0, 0, 3, 1);
    Tensor b = y.slice(0, 3, 6, 1);
    a.mul_(b);
    CHECK_XG_ERROR(y.sum().backward(), VERSION_ERROR && Contains("[3]") && !Contains("[6]"));
  }
  SECTION("detach().add_ under a saved input") {
    Tensor x = xg::ones({3}, xg::kFloat64);
    x.requires_grad_();
    Tensor a = x * 2.0;
    Tensor b = a.sin();  // sin saves its input
    a.detach().add_(1.0);
    CHECK_XG_ERROR(b.sum().backward(), VERSION_ERROR);
  }
}

// =================================================================================================
// 5. DESIGN-views.md §3, expected results 1-11 (float64)
// =================================================================================================

TEST_CASE("views: case 1, in-place on a narrow of a non-leaf", "[views][autograd]") {
  Tensor x = xg::ones({2, 3}, xg::kFloat64);
  x.requires_grad_();
  Tensor y = x * 1.0;
  Tensor n = y.narrow(0, 0, 1);
  n.mul_(2.0);
  CHECK(values(y) == V{2, 2, 2, 1, 1, 1});
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == "CopySlices");
  REQUIRE(n.grad_fn());
  CHECK_THAT(n.grad_fn()->name(), Contains("AsStridedBackward"));
  y.sum().backward();
  check_values(x.grad(), {2, 2, 2, 1, 1, 1});
}

TEST_CASE("views: case 2, copy_ into a view of a base without grad", "[views][autograd]") {
  Tensor base = xg::zeros({3, 2}, xg::kFloat64);
  Tensor var = leaf({1, 2}, {2});
  CHECK_FALSE(base.requires_grad());
  base[1].copy_(var);
  CHECK(values(base) == V{0, 0, 1, 2, 0, 0});
  CHECK(base.requires_grad());
  REQUIRE(base.grad_fn());
  CHECK(base.grad_fn()->name() == "CopySlices");
  TensorList g = ag::grad({(base * base).sum()}, {var});
  REQUIRE(g.size() == 1);
  check_values(g[0], {2, 4});
}

TEST_CASE("views: case 3, a view taken before its base is overwritten", "[views][autograd]") {
  Tensor base = xg::zeros({3, 2}, xg::kFloat64);
  Tensor view = base[1];
  CHECK_FALSE(view.requires_grad());
  Tensor var = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  base.copy_(var);
  CHECK(view.requires_grad());
  CHECK(values(view) == V{3, 4});
  TensorList g = ag::grad({(view * view).sum()}, {var});
  check_values(g[0], {0, 0, 6, 8, 0, 0});
}

TEST_CASE("views: case 4, in-place on a view of a view", "[views][autograd]") {
  Tensor x = leaf({1, 2, 3, 4}, {4});
  Tensor y = x.clone();
  Tensor v = y.slice(0, 1, 3, 1);
  Tensor w = v.slice(0, 0, 1, 1);
  w.mul_(3.0);
  CHECK(values(y) == V{1, 6, 3, 4});
  CHECK(values(v) == V{6, 3});
  TensorList g1 = ag::grad({y.sum()}, {x}, {}, /*retain_graph=*/true);
  check_values(g1[0], {1, 3, 1, 1});
  TensorList g2 = ag::grad({(v * v).sum()}, {x});
  check_values(g2[0], {0, 36, 6, 0});
}

TEST_CASE("views: case 5, base modified after the view was taken", "[views][autograd]") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = x * 1.0;
  Tensor v = y.slice(0, 1, 3, 1);
  REQUIRE(v.grad_fn());
  CHECK_THAT(v.grad_fn()->name(), Contains("SliceBackward"));
  y.mul_(3.0);
  REQUIRE(v.grad_fn());
  CHECK_THAT(v.grad_fn()->name(), Contains("AsStridedBackward"));
  CHECK(values(v) == V{6, 9});
  (v * v).sum().backward();
  check_values(x.grad(), {0, 36, 54});
}

TEST_CASE("views: case 6, in-place on a row of a transposed view", "[views][autograd]") {
  const Tensor weights = xg::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2}, xg::kFloat64);
  Tensor x = leaf({0, 1, 2, 3}, {2, 2});
  Tensor y = x * 1.0;
  Tensor column = y.t()[0];  // y[0][0], y[1][0]
  SECTION("copy_(exp(view)) stands in for exp_ (xgrad has no exp_): design's numbers") {
    column.copy_(column.exp());
    check_values(y, {1, 1, std::exp(2.0), 3});
    (y * weights).sum().backward();
    check_values(x.grad(), {1, 2, 22.16716829679195, 4});  // 3 e^2 at [1][0]
  }
  SECTION("mul_(3)") {
    column.mul_(3.0);
    check_values(y, {0, 1, 6, 3});
    (y * weights).sum().backward();
    check_values(x.grad(), {3, 2, 9, 4});
  }
  SECTION("mul_ by its own clone (squares the column)") {
    column.mul_(column.clone());
    check_values(y, {0, 1, 4, 3});
    (y * weights).sum().backward();
    check_values(x.grad(), {0, 2, 12, 4});  // 2 x * 3 at [1][0]
  }
}

TEST_CASE("views: case 7, in-place on a diagonal", "[views][autograd]") {
  Tensor x = leaf({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor y = x * 1.0;
  y.diagonal().mul_(10.0);
  CHECK(values(y) == V{0, 1, 2, 3, 40, 5});
  (y * y).sum().backward();
  check_values(x.grad(), {0, 2, 4, 6, 800, 10});
}

TEST_CASE("views: case 8, overlapping sibling views", "[views][autograd]") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = x * 1.0;
  Tensor a = y.slice(0, 0, 2, 1);
  Tensor b = y.slice(0, 1, 3, 1);
  a.mul_(2.0);
  CHECK(values(y) == V{2, 4, 3});
  CHECK(values(b) == V{4, 3});
  TensorList g = ag::grad({(b * b).sum()}, {x});
  check_values(g[0], {0, 16, 6});
}

TEST_CASE("views: case 9, unfold sums overlapping windows in backward", "[views][autograd]") {
  Tensor x = xg::arange(0, 10, 1, xg::kFloat64);
  x.requires_grad_();
  x.unfold(0, 4, 3).sum().backward();
  check_values(x.grad(), {1, 1, 1, 2, 1, 1, 2, 1, 1, 1});
}

TEST_CASE("views: case 10, in-place on a view under no-grad", "[views][autograd]") {
  SECTION("backward through the base") {
    Tensor x = xg::ones({2}, xg::kFloat64);
    x.requires_grad_();
    Tensor y = x * 1.0;
    Tensor v = y.view({2});
    REQUIRE(v.grad_fn());
    CHECK_THAT(v.grad_fn()->name(), !Contains("AsStridedBackward"));
    {
      xg::NoGradGuard guard;
      v.mul_(2.0);
    }
    CHECK(values(y) == V{2, 2});
    REQUIRE(v.grad_fn());
    CHECK_THAT(v.grad_fn()->name(), Contains("AsStridedBackward"));  // regenerated
    REQUIRE(y.grad_fn());
    CHECK_THAT(y.grad_fn()->name(), Contains("MulBackward"));  // no CopySlices without recording
    y.sum().backward();
    check_values(x.grad(), {1, 1});
  }
  SECTION("backward through the regenerated view") {
    Tensor x = xg::ones({2}, xg::kFloat64);
    x.requires_grad_();
    Tensor y = x * 1.0;
    Tensor v = y.view({2});
    {
      xg::NoGradGuard guard;
      v.mul_(2.0);
    }
    (v * xg::tensor({3.0, 5.0}, xg::kFloat64)).sum().backward();
    check_values(x.grad(), {3, 5});
  }
}

TEST_CASE("views: case 11, detach shares the version counter", "[views][autograd][version]") {
  Tensor x = xg::ones({3}, xg::kFloat64);
  x.requires_grad_();
  Tensor a = x * 2.0;
  Tensor b = a.exp();  // exp saves its output, not a
  a.detach().add_(1.0);
  CHECK(a._version() == 1);
  CHECK(values(a) == V{3, 3, 3});
  b.sum().backward();
  check_values(x.grad(), {14.7781121978613, 14.7781121978613, 14.7781121978613});  // 2 e^2
  // With sin instead of exp: see "modifying a view of a saved tensor fails backward".
}

// =================================================================================================
// 6. Errors (§3 'Errors')
// =================================================================================================

TEST_CASE("views: in-place on a view of a leaf that requires grad", "[views][errors]") {
  Tensor w = xg::ones({2, 3}, xg::kFloat64);
  w.requires_grad_();
  CHECK_XG_ERROR(w[0].mul_(2.0), Contains("a view of a leaf"));
  CHECK_XG_ERROR(w.narrow(1, 0, 1).fill_(3.0), Contains("a view of a leaf"));
  CHECK_XG_ERROR(w.t()[1].add_(xg::ones({2}, xg::kFloat64)), Contains("a view of a leaf"));
  CHECK_XG_ERROR(w.view({6}).copy_(xg::zeros({6}, xg::kFloat64)), Contains("a view of a leaf"));
  CHECK(values(w) == V(6, 1.0));
  CHECK(w._version() == 0);
  {
    xg::NoGradGuard guard;
    w[0].fill_(0.5);
  }
  CHECK(values(w) == V{0.5, 0.5, 0.5, 1, 1, 1});
  CHECK(w.is_leaf());
}

TEST_CASE("views: in-place on a piece of split, chunk or unbind", "[views][errors]") {
  Tensor x = xg::ones({4}, xg::kFloat64);
  x.requires_grad_();
  Tensor a = x * 1.0;
  CHECK_XG_ERROR(a.split(2, 0)[0].mul_(2.0), Contains("returns multiple views"));
  CHECK_XG_ERROR(a.chunk(2, 0)[1].add_(1.0), Contains("returns multiple views"));
  CHECK_XG_ERROR(a.unbind(0)[0].mul_(2.0), Contains("returns multiple views") && Contains("Unbind"));
  CHECK_XG_ERROR(xg::split(a, 2, 0)[0].fill_(2.0), Contains("returns multiple views"));
  CHECK_XG_ERROR(a.split(2, 0)[1].copy_(xg::zeros({2}, xg::kFloat64)), Contains("returns multiple views"));
  CHECK(values(a) == V{1, 1, 1, 1});

  SECTION("allowed when nothing requires grad, or under NoGradGuard") {
    Tensor plain = xg::ones({4}, xg::kFloat64);
    plain.split(2, 0)[0].mul_(2.0);
    plain.unbind(0)[3].fill_(5.0);
    CHECK(values(plain) == V{2, 2, 1, 5});
    {
      xg::NoGradGuard guard;
      a.chunk(2, 0)[1].mul_(3.0);
    }
    CHECK(values(a) == V{1, 1, 3, 3});
  }
  SECTION("a piece used after its base was modified in place (indirect form)") {
    TensorList pieces = a.split(2, 0);
    a.mul_(2.0);
    CHECK_XG_ERROR(pieces[0] * 1.0, Contains("returns multiple views"));
  }
}

TEST_CASE("views: a view made under no_grad modified with grad on", "[views][errors]") {
  Tensor x = xg::ones({4}, xg::kFloat64);
  x.requires_grad_();
  Tensor a = x * 1.0;
  Tensor v;
  {
    xg::NoGradGuard guard;
    v = a.slice(0, 0, 2, 1);
  }
  CHECK_XG_ERROR(v.mul_(2.0), Contains("no_grad mode"));
  CHECK(values(a) == V{1, 1, 1, 1});

  SECTION("indirect: the base is modified, then the view is used") {
    Tensor b = x * 1.0;
    Tensor u;
    {
      xg::NoGradGuard guard;
      u = b.slice(0, 0, 2, 1);
    }
    b.mul_(2.0);
    CHECK_XG_ERROR(u * 1.0, Contains("no_grad mode"));
  }
  SECTION("a view of a plain tensor made under no_grad, written with a source that requires grad") {
    Tensor plain = xg::ones({4}, xg::kFloat64);
    Tensor u;
    {
      xg::NoGradGuard guard;
      u = plain.slice(0, 0, 2, 1);
    }
    u.mul_(2.0);  // nothing records: fine
    CHECK(values(plain) == V{2, 2, 1, 1});
    CHECK_XG_ERROR(u.mul_(leaf({1, 1}, {2})), Contains("no_grad mode"));
  }
}

TEST_CASE("views: in-place on a tensor with internal overlap (expand)", "[views][errors]") {
  Tensor x = xg::zeros({1, 3}, xg::kFloat64);
  const char* const kInternal = "more than one element of the written-to tensor refers to a single memory location";
  CHECK_XG_ERROR(x.expand({2, 3}).add_(1.0), Contains(kInternal));
  CHECK_XG_ERROR(x.expand({2, 3}).sub_(1.0), Contains(kInternal));
  CHECK_XG_ERROR(x.expand({2, 3}).mul_(2.0), Contains(kInternal));
  CHECK_XG_ERROR(x.expand({2, 3}).div_(2.0), Contains(kInternal));
  CHECK_XG_ERROR(x.expand({2, 3}).add_(xg::ones({2, 3}, xg::kFloat64)), Contains(kInternal));
  CHECK_XG_ERROR(x.expand({2, 3}).copy_(xg::ones({2, 3}, xg::kFloat64)), Contains(kInternal));
  {
    xg::NoGradGuard guard;  // checked even when nothing records
    CHECK_XG_ERROR(x.expand({2, 3}).add_(1.0), Contains(kInternal));
  }
  Tensor p = xg::zeros({3, 1}, xg::kFloat64);
  p.requires_grad_();
  {
    xg::NoGradGuard guard;
    CHECK_XG_ERROR(p.expand({3, 4}).mul_(2.0), Contains(kInternal));
  }
  CHECK(values(x) == V{0, 0, 0});
  CHECK(x._version() == 0);

  // Reading an expanded source is fine, and so is a same-shape expand.
  Tensor y = xg::zeros({2, 3}, xg::kFloat64);
  y.add_(iota({3}).expand({2, 3}));
  CHECK(values(y) == V{0, 1, 2, 0, 1, 2});
  x.expand({1, 3}).add_(1.0);
  CHECK(values(x) == V{1, 1, 1});

  // Only stride-0 overlap is detected (as PyTorch): in-place on overlapping unfold windows passes.
  Tensor u = iota({10});
  CHECK_NOTHROW(u.unfold(0, 4, 3).add_(1.0));
  const V got = values(u);
  for (int i : {0, 1, 2, 4, 5, 7, 8, 9}) CHECK(got[static_cast<size_t>(i)] == i + 1);
  CHECK((got[3] == 4 || got[3] == 5));
  CHECK((got[6] == 7 || got[6] == 8));
}

TEST_CASE("views: in-place with a partially overlapping source", "[views][errors]") {
  const char* const kPartial = "some elements of the input tensor and the written-to tensor refer to a single memory location";
  Tensor x = iota({4});
  CHECK_XG_ERROR(x.slice(0, 1, 4, 1).add_(x.slice(0, 0, 3, 1)), Contains(kPartial));
  CHECK_XG_ERROR(x.slice(0, 1, 4, 1).copy_(x.slice(0, 0, 3, 1)), Contains(kPartial));
  CHECK_XG_ERROR(x.slice(0, 1, 4, 1).mul_(x.slice(0, 0, 3, 1)), Contains(kPartial));
  CHECK_XG_ERROR(x.slice(0, 0, 3, 1).sub_(x.slice(0, 1, 4, 1)), Contains(kPartial));
  CHECK_XG_ERROR(x.slice(0, 0, 3, 1).div_(x.slice(0, 1, 4, 1)), Contains(kPartial));
  CHECK(values(x) == V{0, 1, 2, 3});
  Tensor m = iota({3, 3});
  CHECK_XG_ERROR(m.add_(m.t()), Contains(kPartial));
  CHECK(values(m) == seq(0, 9));

  // Full overlap and disjoint ranges of one storage are allowed.
  x.add_(x);
  CHECK(values(x) == V{0, 2, 4, 6});
  x.copy_(x);
  CHECK(values(x) == V{0, 2, 4, 6});
  x.slice(0, 0, 2, 1).add_(x.slice(0, 2, 4, 1));
  CHECK(values(x) == V{4, 8, 4, 6});
}

// =================================================================================================
// 7. gradcheck and gradgradcheck (float64)
// =================================================================================================

TEST_CASE("views: gradcheck of every view op on non-contiguous inputs", "[views][gradcheck]") {
  xg::manual_seed(1401);
  const Tensor x34 = normal({3, 4});
  const Tensor x46 = normal({4, 6});
  const Tensor x234 = normal({2, 3, 4});
  const Tensor x314 = normal({3, 1, 4});
  const Tensor x13 = normal({1, 3});
  const Tensor x10 = normal({10});
  const Tensor x35 = normal({3, 5});

  check_grads("view of a narrowed input", [](const TensorList& in) { return in[0].narrow(1, 0, 4).view({4, 2, 2}); }, {x46});
  check_grads("view of a transposed input", [](const TensorList& in) { return in[0].t().view({2, 2, 3}); }, {x34});
  check_grads("reshape of a transposed input (copy)", [](const TensorList& in) { return in[0].t().reshape({12}); }, {x34});
  check_grads("reshape of a narrowed input (view)", [](const TensorList& in) { return in[0].narrow(1, 0, 4).reshape({4, 2, 2}); }, {x46});
  check_grads("flatten of a narrowed input", [](const TensorList& in) { return in[0].narrow(2, 0, 2).flatten(0, 1); }, {x234});
  check_grads("flatten of a transposed input", [](const TensorList& in) { return in[0].transpose(0, 2).flatten(); }, {x234});
  check_grads("unflatten of a transposed input", [](const TensorList& in) { return in[0].t().unflatten(0, {2, 2}); }, {x34});
  check_grads("squeeze() of a transposed input", [](const TensorList& in) { return in[0].transpose(0, 2).squeeze(); }, {x314});
  check_grads("squeeze(1) of a transposed input", [](const TensorList& in) { return in[0].transpose(0, 2).squeeze(1); }, {x314});
  check_grads("unsqueeze of a transposed input", [](const TensorList& in) { return in[0].t().unsqueeze(1); }, {x34});
  check_grads("transpose(0, 2)", [](const TensorList& in) { return in[0].transpose(0, 2); }, {x234});
  check_grads("t() of a step-2 slice", [](const TensorList& in) { return xg::slice(in[0], 1, 0, 6, 2).t(); }, {x46});
  check_grads("permute of a permuted input", [](const TensorList& in) { return in[0].permute({2, 0, 1}).permute({0, 2, 1}); }, {x234});
  check_grads("movedim(int)", [](const TensorList& in) { return in[0].transpose(0, 1).movedim(0, 2); }, {x234});
  check_grads("movedim(vector)", [](const TensorList& in) {
    return in[0].movedim(std::vector<int64_t>{0, 1}, std::vector<int64_t>{2, 0});
  }, {x234});
  check_grads("expand of a transposed input", [](const TensorList& in) { return in[0].t().expand({2, 3, 4}); }, {x13});
  check_grads("expand_as", [](const TensorList& in) { return in[0].t().expand_as(xg::zeros({2, 3, 4}, xg::kFloat64)); }, {x13});
  check_grads("narrow of a transposed input", [](const TensorList& in) { return in[0].t().narrow(0, 1, 2); }, {x34});
  check_grads("slice with step 2 and a negative start", [](const TensorList& in) { return xg::slice(in[0].t(), 0, -5, std::nullopt, 2); }, {x46});
  check_grads("select of a transposed input", [](const TensorList& in) { return in[0].t().select(1, 2); }, {x34});
  check_grads("operator[] of a transposed input", [](const TensorList& in) { return in[0].t()[3]; }, {x34});
  check_grads("diagonal of a transposed input", [](const TensorList& in) { return in[0].t().diagonal(); }, {x34});
  check_grads("diagonal(-1, 2, 0)", [](const TensorList& in) { return in[0].diagonal(-1, 2, 0); }, {x234});
  check_grads("diagonal(1) of a step-2 slice", [](const TensorList& in) { return xg::slice(in[0], 1, 0, 6, 2).diagonal(1); }, {x46});
  check_grads("as_strided", [](const TensorList& in) { return in[0].as_strided({2, 2}, {1, 2}, 1); }, {x10});
  check_grads("as_strided with overlapping windows", [](const TensorList& in) { return in[0].as_strided({3, 2}, {1, 1}, 0); }, {x10});
  check_grads("as_strided of a transposed input", [](const TensorList& in) { return in[0].t().as_strided({2, 3}, {1, 4}, 1); }, {x34});
  check_grads("unfold with overlapping windows of a transposed input", [](const TensorList& in) { return in[0].t().unfold(0, 3, 1); }, {x35});
  check_grads("unfold(1, 2, 2)", [](const TensorList& in) { return in[0].unfold(1, 2, 2); }, {x34});
  check_grads("contiguous of a transposed input", [](const TensorList& in) { return in[0].t().contiguous(); }, {x34});
  check_grads("clone of a step-2 slice", [](const TensorList& in) { return xg::slice(in[0], 0, 0, 4, 2).clone(); }, {x46});
  check_grads("a view feeding a non-linear op", [](const TensorList& in) {
    Tensor v = in[0].t().narrow(0, 1, 2);
    return v * v.sin();
  }, {x34});

  check_grads_multi("split of a transposed input", [](const TensorList& in) { return in[0].t().split(2, 0); }, {x35});
  check_grads_multi("chunk along dim 1", [](const TensorList& in) { return in[0].t().chunk(2, 1); }, {x46});
  check_grads_multi("unbind of a transposed input", [](const TensorList& in) { return in[0].t().unbind(1); }, {x34});
  check_grads_multi("pieces used non-linearly", [](const TensorList& in) {
    TensorList p = in[0].unbind(0);
    return TensorList{p[0] * p[1], p[2].exp()};
  }, {x34});
}

TEST_CASE("views: gradcheck with a non-contiguous leaf", "[views][gradcheck]") {
  xg::manual_seed(1402);
  Tensor transposed = xg::randn({3, 4}, xg::kFloat64).t().detach();  // [4, 3], strides {1, 4}
  transposed.requires_grad_();
  REQUIRE_FALSE(transposed.is_contiguous());
  Tensor strided = xg::slice(xg::randn({4, 6}, xg::kFloat64), 1, 0, 6, 2).detach();  // [4, 3], strides {6, 2}
  strided.requires_grad_();
  REQUIRE_FALSE(strided.is_contiguous());

  check_grads("narrow * narrow", [](const TensorList& in) { Tensor v = in[0].narrow(0, 1, 2); return v * v; }, {transposed});
  check_grads("mul of two non-contiguous leaves", [](const TensorList& in) { return in[0] * in[1]; }, {transposed, strided});
  check_grads("exp", [](const TensorList& in) { return in[0].exp(); }, {strided});
  check_grads("tanh", [](const TensorList& in) { return in[0].tanh(); }, {transposed});
  check_grads("sum over dim 1", [](const TensorList& in) { return in[0].sum({1}); }, {transposed});
  check_grads("softmax", [](const TensorList& in) { return in[0].softmax(0); }, {strided});
  check_grads("matmul", [](const TensorList& in) { return xg::matmul(in[0], in[1].t()); }, {transposed, strided});
  check_grads("view ops on the leaf", [](const TensorList& in) { return in[0].t().diagonal(1) * in[0][2]; }, {strided});
}

TEST_CASE("views: gradcheck of ops on views (saved views and strided kernels)", "[views][gradcheck]") {
  xg::manual_seed(1403);
  check_grads("matmul(x.t(), y)", [](const TensorList& in) { return xg::matmul(in[0].t(), in[1]); }, {normal({5, 4}), normal({5, 3})});
  check_grads("matmul of narrowed operands", [](const TensorList& in) {
    return xg::matmul(in[0].narrow(1, 1, 4), in[1].t());
  }, {normal({3, 6}), normal({5, 4})});
  check_grads("bmm of transposed batches", [](const TensorList& in) {
    return xg::bmm(in[0].transpose(1, 2), in[1].permute({1, 0, 2}));
  }, {normal({2, 4, 3}), normal({4, 2, 5})});
  check_grads("linear with a transposed weight and a strided bias", [](const TensorList& in) {
    return xg::linear(in[0], in[1].t(), xg::slice(in[2], 0, 0, 6, 2));
  }, {normal({2, 5}), normal({5, 3}), normal({6})});
  check_grads("broadcast mul with an expanded operand", [](const TensorList& in) {
    return in[0].t() * in[1].expand({4, 3});
  }, {normal({3, 4}), normal({1, 3})});
  check_grads("log_softmax over a permuted input", [](const TensorList& in) { return in[0].permute({2, 0, 1}).log_softmax(1); }, {normal({2, 3, 4})});
  check_grads("mean over dims of a transposed input", [](const TensorList& in) { return in[0].transpose(0, 2).mean({0, 2}); }, {normal({2, 3, 4})});
  check_grads("cat of views", [](const TensorList& in) { return xg::cat({in[0].t(), in[0].t().narrow(1, 0, 1)}, 1); }, {normal({3, 4})});
}

TEST_CASE("views: gradcheck of CopySlices", "[views][gradcheck][autograd]") {
  xg::manual_seed(1404);
  check_grads("y = x * 1; y.narrow(0, 0, 1).mul_(s) with s [1, 4]", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    y.narrow(0, 0, 1).mul_(in[1]);
    return y;
  }, {normal({3, 4}), normal({1, 4})});
  check_grads("y = x * 1; y.narrow(0, 0, 1).mul_(s) with s [4] (broadcast)", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    y.narrow(0, 0, 1).mul_(in[1]);
    return y;
  }, {normal({3, 4}), normal({4})});
  check_grads("y.t()[1].mul_(s)", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    y.t()[1].mul_(in[1]);
    return y;
  }, {normal({3, 4}), normal({3})});
  check_grads("y.diagonal().add_(s), then y * y", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    y.diagonal().add_(in[1]);
    return y * y;
  }, {normal({3, 4}), normal({3})});
  check_grads("copy_ into a step-2 slice", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    xg::slice(y, 1, 0, 4, 2).copy_(in[1].exp());
    return y;
  }, {normal({3, 4}), normal({3, 2})});
  check_grads("two in-place ops on sibling views", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    y.narrow(1, 0, 2).mul_(in[1]);
    y.narrow(1, 1, 2).add_(in[1] * in[1]);
    return y;
  }, {normal({3, 4}), normal({3, 2})});
  check_grads("copy_ into a view of a base that needs no grad (case 2)", [](const TensorList& in) {
    Tensor base = xg::zeros({3, 2}, xg::kFloat64);
    base[1].copy_(in[0]);
    return base * base;
  }, {normal({2})});
}

TEST_CASE("views: gradcheck of a regenerated AsStridedBackward", "[views][gradcheck][autograd]") {
  xg::manual_seed(1405);
  check_grads("view taken, base modified, view used", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    Tensor v = y.t().narrow(0, 1, 2);
    y.add_(in[0] * in[0]);
    return v * v;
  }, {normal({3, 4})});
  check_grads("view used after a sibling view was modified", [](const TensorList& in) {
    Tensor y = in[0] * 1.0;
    Tensor v = y.narrow(1, 1, 2);
    y.narrow(1, 0, 2).mul_(in[1]);
    return v * v;
  }, {normal({3, 4}), normal({3, 2})});
  check_grads("step-2 view used after the base was scaled", [](const TensorList& in) {
    Tensor y = in[0] * in[0];  // mul saves its inputs, not y (exp would save y and fail)
    Tensor v = xg::slice(y, 0, 0, 4, 2);
    y.mul_(in[1]);
    return v.sin();
  }, {normal({4, 3}), normal({3})});
}

// =================================================================================================
// 8. from_blob
// =================================================================================================

TEST_CASE("views: from_blob without a deleter reads and writes the caller's memory", "[views][from_blob]") {
  V buffer = {1, 2, 3, 4, 5, 6};
  const size_t allocated = xg::allocator_stats().allocated_bytes;
  {
    Tensor t = xg::from_blob(buffer.data(), {2, 3}, xg::kFloat64);
    CHECK(xg::allocator_stats().allocated_bytes == allocated);  // no cached buffer
    check_geometry(t, {{2, 3}, {3, 1}, 0, true});
    CHECK(t.dtype() == xg::kFloat64);
    CHECK(t.data_ptr<double>() == buffer.data());
    CHECK(values(t) == V{1, 2, 3, 4, 5, 6});
    t.mul_(2.0);
    CHECK(buffer == V{2, 4, 6, 8, 10, 12});
    buffer[4] = -1;
    CHECK(values(t) == V{2, 4, 6, 8, -1, 12});
    t.t()[2].fill_(0.0);  // column 2
    CHECK(buffer == V{2, 4, 0, 8, -1, 0});
  }
  CHECK(buffer == V{2, 4, 0, 8, -1, 0});  // nothing freed or touched

  float small[4] = {0.5f, 1.5f, 2.5f, 3.5f};
  Tensor f = xg::from_blob(small, {4});  // default options: float32
  CHECK(f.dtype() == xg::kFloat32);
  CHECK(values(f) == V{0.5, 1.5, 2.5, 3.5});
}

TEST_CASE("views: the from_blob deleter runs once, when the last alias dies", "[views][from_blob][lifetime]") {
  int calls = 0;
  auto* memory = new double[6]{1, 2, 3, 4, 5, 6};
  Tensor copy;
  {
    Tensor v;
    {
      Tensor t = xg::from_blob(memory, {2, 3}, {3, 1}, [&calls](void* p) {
        ++calls;
        delete[] static_cast<double*>(p);
      }, xg::kFloat64);
      v = t.t();
      Tensor d = t.detach();
      CHECK(d.is_alias_of(v));
      copy = t.clone();
      CHECK(calls == 0);
    }
    CHECK(calls == 0);  // v still holds the storage
    CHECK(values(v) == V{1, 4, 2, 5, 3, 6});
    v.mul_(10.0);
    CHECK(values(v) == V{10, 40, 20, 50, 30, 60});
  }
  CHECK(calls == 1);
  CHECK(values(copy) == V{1, 2, 3, 4, 5, 6});  // the clone owns its own buffer
  copy = Tensor();
  CHECK(calls == 1);
}

TEST_CASE("views: strided from_blob", "[views][from_blob]") {
  V buffer = seq(0, 12);  // a row-major [3, 4] in memory, seen as its transpose
  Tensor t = xg::from_blob(buffer.data(), {4, 3}, {1, 4}, [](void*) {}, xg::kFloat64);
  check_geometry(t, {{4, 3}, {1, 4}, 0, false});
  CHECK(values(t) == V{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  t[1].fill_(-1.0);  // buffer elements 1, 5, 9
  CHECK(buffer == V{0, -1, 2, 3, 4, -1, 6, 7, 8, -1, 10, 11});
  Tensor c = t.contiguous();
  CHECK_FALSE(c.is_alias_of(t));
  check_geometry(c, {{4, 3}, {3, 1}, 0, true});
  CHECK(values(c) == V{0, 4, 8, -1, -1, -1, 2, 6, 10, 3, 7, 11});

  V every_other = seq(0, 8);
  Tensor s = xg::from_blob(every_other.data(), {2, 2}, {4, 2}, [](void*) {}, xg::kFloat64);
  CHECK(values(s) == V{0, 2, 4, 6});
  CHECK(values(s.sum({1})) == V{2, 10});
}

// =================================================================================================
// 9. BLAS on views
// =================================================================================================

TEST_CASE("views: matmul on transposed and sliced operands", "[views][blas]") {
  xg::manual_seed(1409);
  auto randn = [](const Shape& s) { return xg::randn(s, xg::kFloat64); };
  const Tensor a54 = randn({5, 4}), b53 = randn({5, 3}), a45 = randn({4, 5}), b35 = randn({3, 5});
  const Tensor big = randn({6, 8});

  check_product("a.t() x b", a54.t(), b53);
  check_product("a x b.t()", a45, b35.t());
  check_product("a.t() x b.t()", a54.t(), randn({3, 5}).t());
  check_product("narrow along columns (ld > cols)", big.narrow(1, 1, 5), randn({5, 3}));
  check_product("narrow then transpose", big.narrow(0, 1, 4).t(), randn({4, 2}));
  check_product("step-2 columns", xg::slice(big, 1, 0, 8, 2), randn({4, 3}));
  check_product("step-2 rows, transposed", xg::slice(big, 0, 0, 6, 2).t(), randn({3, 5}));
  check_product("a row block times a column block", big.narrow(0, 2, 3), big.t().narrow(0, 0, 8).narrow(1, 1, 4));
  check_product("a size-1 inner dimension", big.narrow(1, 3, 1), big.narrow(0, 5, 1));
  check_product("bmm with transposed matrices", randn({2, 4, 3}).transpose(1, 2), randn({2, 4, 5}));
  check_product("bmm with a permuted batch", randn({3, 2, 4}).permute({1, 0, 2}), randn({2, 4, 5}).transpose(1, 2).transpose(1, 2));
  check_product("batch stride 0 (expanded)", randn({3, 4}).unsqueeze(0).expand({2, 3, 4}), randn({2, 4, 5}));

  SECTION("matrix times a step-2 vector") {
    Tensor m = randn({3, 4});
    Tensor v = xg::slice(randn({8}), 0, 0, 8, 2);
    Tensor got = xg::matmul(m, v);
    check_values(got, naive_mm(m, v.unsqueeze(1)), 1e-12);
    CHECK(xg::allclose(got, xg::matmul(m, v.contiguous()), 1e-12, 1e-12));
  }
  SECTION("a transposed from_blob operand") {
    V buffer = seq(0, 12);
    Tensor a = xg::from_blob(buffer.data(), {4, 3}, {1, 4}, [](void*) {}, xg::kFloat64);
    Tensor b = xg::tensor({1.0, -1.0, 2.0, 0.5, -3.0, 1.0}, {3, 2}, xg::kFloat64);
    // a = [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    check_values(xg::matmul(a, b), {-16, 10, -16, 10.5, -16, 11, -16, 11.5}, 1e-12);
    check_product("from_blob transposed", a, b);
  }
  SECTION("gemm flags combine with the operands' own transposition") {
    Tensor x = randn({4, 5}), y = randn({5, 3}), w = randn({5, 3});
    check_values(xg::gemm(x.t(), y, true, false), naive_mm(x, y), 1e-12);
    check_values(xg::gemm(x, w.t(), false, true), naive_mm(x, w), 1e-12);
    check_values(xg::gemm(x.t(), w.t(), true, true), naive_mm(x, w), 1e-12);
    check_values(xg::mm(x, y), naive_mm(x, y), 1e-12);
  }
  SECTION("linear with a transposed weight and a strided bias") {
    Tensor input = randn({2, 5}), w = randn({5, 3});
    Tensor bias = xg::slice(randn({6}), 0, 0, 6, 2);
    V want = naive_mm(input, w);
    const V b = values(bias);
    for (size_t i = 0; i < want.size(); ++i) want[i] += b[i % 3];
    check_values(xg::linear(input, w.t(), bias), want, 1e-12);
  }
  SECTION("a transposed operand allocates no more than a packed one") {
    Tensor p = randn({64, 64}), q = randn({64, 64});
    Tensor pt_packed = p.t().contiguous();
    auto requests = [] {
      const xg::AllocatorStats s = xg::allocator_stats();
      return s.cache_hits + s.system_allocations;
    };
    const size_t r0 = requests();
    Tensor packed = xg::matmul(pt_packed, q);
    const size_t packed_requests = requests() - r0;
    const size_t r1 = requests();
    Tensor strided = xg::matmul(p.t(), q);
    const size_t strided_requests = requests() - r1;
    CHECK(strided_requests == packed_requests);  // no hidden contiguous() copy
    CHECK(xg::allclose(strided, packed, 1e-12, 1e-12));
  }
}

// =================================================================================================
// 10. Threads
// =================================================================================================

TEST_CASE("views: strided kernels give the same bits on 1 and 2 threads", "[views][parallel]") {
  ThreadCountGuard restore;
  xg::manual_seed(1410);
  const Tensor x = xg::randn({300, 400}, xg::kFloat64);
  const Tensor z = xg::randn({400, 300}, xg::kFloat64);
  const Tensor row = xg::randn({300}, xg::kFloat64);
  const V xv = values(x), zv = values(z), rv = values(row);

  struct Results {
    V product, scaled, broadcast, packed, inplace, exp;
  };
  auto run = [&](int threads) {
    xg::set_num_threads(threads);
    REQUIRE(xg::get_num_threads() == threads);
    Results r;
    r.product = values(x.t() * z);
    r.scaled = values(x.t() * 3.0);
    r.broadcast = values(x.t() * row);
    r.packed = values(x.t().contiguous());
    Tensor w = x.clone();
    w.t().add_(z);  // a strided in-place target
    r.inplace = values(w);
    r.exp = values(xg::exp(x.t()));
    return r;
  };
  const Results one = run(1);
  const Results two = run(2);
  CHECK(same_bits(one.product, two.product));
  CHECK(same_bits(one.scaled, two.scaled));
  CHECK(same_bits(one.broadcast, two.broadcast));
  CHECK(same_bits(one.packed, two.packed));
  CHECK(same_bits(one.inplace, two.inplace));
  CHECK(same_bits(one.exp, two.exp));

  // One IEEE operation per element: the reference loops give the same bits.
  V product(120000), scaled(120000), broadcast(120000), packed(120000), inplace(xv);
  for (size_t i = 0; i < 400; ++i)
    for (size_t j = 0; j < 300; ++j) {
      const double xt = xv[j * 400 + i];  // x.t()[i][j]
      product[i * 300 + j] = xt * zv[i * 300 + j];
      scaled[i * 300 + j] = xt * 3.0;
      broadcast[i * 300 + j] = xt * rv[j];
      packed[i * 300 + j] = xt;
      inplace[j * 400 + i] = xt + zv[i * 300 + j];
    }
  CHECK(same_bits(two.product, product));
  CHECK(same_bits(two.scaled, scaled));
  CHECK(same_bits(two.broadcast, broadcast));
  CHECK(same_bits(two.packed, packed));
  CHECK(same_bits(two.inplace, inplace));
  for (size_t k : {size_t{0}, size_t{299}, size_t{300}, size_t{60001}, size_t{119999}}) {
    const size_t i = k / 300, j = k % 300;
    CHECK(two.exp[k] == Approx(std::exp(xv[j * 400 + i])).epsilon(1e-14));
  }
}

// =================================================================================================
// nn on non-contiguous inputs: the same values as the contiguous path, and correct gradients
// =================================================================================================

namespace {

/// A leaf with x's values whose dimensions are laid out in reverse order in memory (a permuted view of
/// a contiguous buffer, detached): the layout a permute/transpose hands to a layer.
Tensor reversed_layout(const Tensor& x) {
  std::vector<int64_t> reverse(static_cast<size_t>(x.dim()));
  for (int64_t d = 0; d < x.dim(); ++d) reverse[static_cast<size_t>(d)] = x.dim() - 1 - d;
  Tensor buffer = xg::zeros(x.permute(reverse).shape(), x.dtype()).permute(reverse);
  {
    xg::NoGradGuard guard;
    buffer.copy_(x.detach());
  }
  Tensor leaf = buffer.detach();
  if (x.requires_grad()) leaf.requires_grad_(true);
  return leaf;
}

void check_layer_on_views(const std::string& what, const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) {
  INFO(what);
  TensorList strided;
  for (const Tensor& t : inputs) strided.push_back(t.dim() >= 2 ? reversed_layout(t) : t);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].dim() >= 2) REQUIRE_FALSE(strided[i].is_contiguous());
  CHECK(xg::allclose(f(inputs).detach(), f(strided).detach(), 1e-13, 1e-13));
  CHECK(ag::gradcheck(f, strided));
  CHECK(ag::gradgradcheck(f, strided));
}

}  // namespace

TEST_CASE("views: layers and losses read permuted inputs as the contiguous ones", "[views][gradcheck][nn]") {
  namespace F = xg::nn::functional;
  xg::manual_seed(7);
  const auto o = xg::TensorOptions(xg::kFloat64).requires_grad(true);
  Tensor image = xg::randn({2, 3, 5, 5}, o), weight = xg::randn({4, 3, 3, 3}, o), bias = xg::randn({4}, o);
  check_layer_on_views("conv2d", [](const TensorList& in) { return F::conv2d(in[0], in[1], in[2], 1, 1); }, {image, weight, bias});
  Tensor planes = xg::randn({2, 3, 4, 4}, o);
  check_layer_on_views("max_pool2d", [](const TensorList& in) { return F::max_pool2d(in[0], 2); }, {planes});
  check_layer_on_views("avg_pool2d", [](const TensorList& in) { return F::avg_pool2d(in[0], 2); }, {planes});
  check_layer_on_views("adaptive_avg_pool2d", [](const TensorList& in) { return F::adaptive_avg_pool2d(in[0], {2, 3}); }, {planes});
  Tensor gamma = xg::randn({3}, o), beta = xg::randn({3}, o);
  check_layer_on_views("batch_norm (training)", [](const TensorList& in) {
    return F::batch_norm(in[0], Tensor(), Tensor(), F::BatchNormFuncOptions().weight(in[1]).bias(in[2]).training(true));
  }, {planes, gamma, beta});
  Tensor rows = xg::randn({2, 3, 4}, o), ln_weight = xg::randn({4}, o), ln_bias = xg::randn({4}, o);
  check_layer_on_views("layer_norm", [](const TensorList& in) {
    return F::layer_norm(in[0], F::LayerNormFuncOptions({4}).weight(in[1]).bias(in[2]));
  }, {rows, ln_weight, ln_bias});
  Tensor logits = xg::randn({5, 4}, o);
  const Tensor labels = xg::tensor({0, 3, 1, 2, 3}, xg::kInt64);
  check_layer_on_views("cross_entropy", [labels](const TensorList& in) { return F::cross_entropy(in[0], labels); }, {logits});
  Tensor target = xg::randn({5, 4}, o);
  check_layer_on_views("mse_loss", [](const TensorList& in) { return F::mse_loss(in[0], in[1]); }, {logits, target});
  Tensor probabilities = xg::rand({5, 4}, xg::kFloat64);
  check_layer_on_views("binary_cross_entropy_with_logits",
                       [probabilities](const TensorList& in) { return F::binary_cross_entropy_with_logits(in[0], probabilities); }, {logits});
  Tensor table = xg::randn({6, 3}, o);
  const Tensor ids = xg::tensor({5, 0, 2, 2}, xg::kInt64);
  check_layer_on_views("embedding", [ids](const TensorList& in) { return F::embedding(ids, in[0]); }, {table});
  Tensor x = xg::randn({3, 4}, o), w = xg::randn({5, 4}, o), b = xg::randn({5}, o);
  check_layer_on_views("linear", [](const TensorList& in) { return xg::linear(in[0], in[1], in[2]); }, {x, w, b});
}

TEST_CASE("views: a graph that saved a view of a base modified in place is freed without backward", "[views][lifetime]") {
  // y's history becomes CopySlices(MulBackward), and MulBackward saved b, a view of y: holding b's
  // base from the saved tensor would make a cycle y -> CopySlices -> MulBackward -> b -> y.
  std::weak_ptr<xg::TensorImpl> base, node_owner;
  std::weak_ptr<ag::Node> history;
  {
    Tensor x = xg::ones({4}, xg::kFloat64).requires_grad_();
    Tensor y = x * 2.0;
    Tensor a = y.slice(0, 0, 2), b = y.slice(0, 2, 4);
    a.mul_(b);
    REQUIRE(y.grad_fn());
    CHECK(std::string(y.grad_fn()->name()) == "CopySlices");
    base = y.impl();
    history = y.grad_fn();
    node_owner = b.impl();
  }
  CHECK(base.expired());
  CHECK(node_owner.expired());
  CHECK(history.expired());
  // Its backward is PyTorch's version error (b was saved at version 0; the mul_ itself moved it), and
  // the failed backward leaves nothing behind either.
  {
    Tensor x = xg::ones({4}, xg::kFloat64).requires_grad_();
    Tensor y = x * 2.0;
    y.slice(0, 0, 2).mul_(y.slice(0, 2, 4));
    base = y.impl();
    CHECK_XG_ERROR(y.sum().backward(), Contains("modified by an in-place operation") && Contains("shape [2]"));
  }
  CHECK(base.expired());
}

TEST_CASE("views: retain_grad follows the tensor's current value through in-place ops", "[views][autograd]") {
  // PyTorch moves a tensor's retains_grad hook to its new grad_fn when an in-place op (or a rebuilt
  // view history) replaces it, so .grad is d loss / d (the tensor's value at backward time).
  SECTION("a non-view modified in place") {
    Tensor a = leaf({1, 2, 3}, {3});
    Tensor x = a * 1.0;
    x.retain_grad();
    x.mul_(2.0);
    (x * xg::tensor({1.0, 10.0, 100.0}, xg::kFloat64)).sum().backward();
    check_values(x.grad(), {1, 10, 100});
    check_values(a.grad(), {2, 20, 200});
  }
  SECTION("a view modified in place through itself") {
    Tensor a = leaf({1, 2, 3, 4}, {2, 2});
    Tensor b = a * 1.0;
    Tensor v = b[0];
    v.retain_grad();
    v.mul_(3.0);
    (v * xg::tensor({1.0, 10.0}, xg::kFloat64)).sum().backward();
    check_values(v.grad(), {1, 10});
    check_values(a.grad(), {3, 30, 0, 0});
  }
  SECTION("a view whose base is modified in place") {
    Tensor a = leaf({1, 2, 3, 4}, {2, 2});
    Tensor b = a * 1.0;
    Tensor v = b[0];
    v.retain_grad();
    b.mul_(3.0);
    (v * xg::tensor({1.0, 10.0}, xg::kFloat64)).sum().backward();
    check_values(v.grad(), {1, 10});
    check_values(a.grad(), {3, 30, 0, 0});
  }
  SECTION("a base modified in place through a view keeps its registration (as PyTorch)") {
    Tensor a = leaf({1, 2, 3, 4}, {2, 2});
    Tensor b = a * 1.0;
    b.retain_grad();
    b[1].mul_(5.0);
    (b * xg::tensor({1.0, 10.0, 100.0, 1000.0}, {2, 2}, xg::kFloat64)).sum().backward();
    // PyTorch (rebase_history) leaves the base's registration on its old grad_fn: b.grad is the gradient
    // of b's value before the write through the view (torch 1.13 prints the same).
    check_values(b.grad(), {1, 10, 500, 5000});
    check_values(a.grad(), {1, 10, 500, 5000});
  }
}

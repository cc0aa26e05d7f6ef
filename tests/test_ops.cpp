// Every differentiable op: forward values against independent references (hand literals, formulas
// or naive loops written here), first-order gradcheck and second-order gradgradcheck in float64,
// with broadcast operands and operands produced by transposing/permuting a leaf.
// Non-differentiable helpers (comparisons, arg*, one_hot, factories, allclose, printing, int64) are
// checked on small literal examples.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/xgrad.hpp"

using xg::Shape;
using xg::Tensor;
using xg::TensorList;
namespace ag = xg::autograd;
using Catch::Matchers::Contains;

namespace {

// ---- construction helpers -----------------------------------------------------------------------
int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor make(const std::vector<double>& v, const Shape& shape, xg::Dtype dtype = xg::kFloat64) {
  if (shape.empty()) return xg::scalar_tensor(v.at(0), dtype);
  return xg::tensor(v, shape, dtype);
}

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = make(v, shape);
  t.requires_grad_();
  return t;
}

/// Standard normal float64 leaf requiring grad.
Tensor normal(const Shape& s) {
  Tensor t = xg::randn(s, xg::kFloat64);
  t.requires_grad_();
  return t;
}

/// Uniform on [lo, hi) float64 leaf requiring grad.
Tensor positive(const Shape& s, double lo = 0.5, double hi = 2.0) {
  Tensor t = xg::rand(s, xg::kFloat64);
  double* p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  t.requires_grad_();
  return t;
}

/// Pairwise distinct values away from 0 (shuffled +step, -2 step, +3 step, ...) plus an offset: no
/// ties and no kinks (|x| >= step - |offset|, any two values differ by >= 2 step).
Tensor distinct(const Shape& s, double step = 0.15, double offset = 0.0) {
  const int64_t n = numel_of(s);
  Tensor perm = xg::randperm(n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = perm.data_ptr<int64_t>()[i];
    v[static_cast<size_t>(i)] = static_cast<double>(p + 1) * step * (p % 2 ? -1.0 : 1.0) + offset;
  }
  return leaf(v, s);
}

std::vector<double> vals(const Tensor& view) {
  const Tensor t = view.contiguous();  // a view's elements in row-major order
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype()) {
      case xg::Dtype::Float32: out[i] = static_cast<double>(t.data_ptr<float>()[i]); break;
      case xg::Dtype::Float64: out[i] = t.data_ptr<double>()[i]; break;
      case xg::Dtype::Int64: out[i] = static_cast<double>(t.data_ptr<int64_t>()[i]); break;
    }
  }
  return out;
}

void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  std::vector<double> got = vals(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(expected[i]).epsilon(tol).margin(tol));
  }
}

/// How a non-contiguous copy of an input is laid out.
enum class Layout {
  StrideTwo,  // the last dimension has stride 2 (every other element of a zero-filled buffer)
  Reversed,   // the dimensions' order in memory reversed (a transposed / permuted 3-D layout)
};

/// A leaf with x's values and requires_grad in a non-contiguous layout: an input that every op must
/// read exactly as the contiguous one.
Tensor non_contiguous(const Tensor& x, Layout layout) {
  if (!x.defined() || x.dim() == 0) return x;
  Tensor strided;
  if (layout == Layout::StrideTwo) {
    Shape wide = x.shape();
    wide.back() *= 2;
    strided = xg::zeros(wide, x.dtype()).slice(-1, 0, std::nullopt, 2);
  } else {
    if (x.dim() < 2) return non_contiguous(x, Layout::StrideTwo);
    std::vector<int64_t> reverse(static_cast<size_t>(x.dim()));
    for (int64_t d = 0; d < x.dim(); ++d) reverse[static_cast<size_t>(d)] = x.dim() - 1 - d;
    strided = xg::zeros(x.permute(reverse).shape(), x.dtype()).permute(reverse);
  }
  {
    xg::NoGradGuard no_grad;
    strided.copy_(x.detach());
  }
  Tensor leaf = strided.detach();  // an alias with the view's strides, outside the graph
  if (x.requires_grad()) leaf.requires_grad_(true);
  return leaf;
}

TensorList non_contiguous(const TensorList& inputs, Layout layout) {
  TensorList out;
  for (const Tensor& t : inputs) out.push_back(non_contiguous(t, layout));
  return out;
}

/// Forward values, gradcheck and gradgradcheck on non-contiguous copies of the inputs: the values
/// equal the contiguous run bit for bit.
void check_non_contiguous(const ag::GradcheckFunction& f, const TensorList& inputs) {
  const TensorList expected = f(inputs);
  for (Layout layout : {Layout::StrideTwo, Layout::Reversed}) {
    INFO((layout == Layout::StrideTwo ? "on inputs whose last dimension has stride 2" : "on inputs with reversed dimension order"));
    const TensorList strided = non_contiguous(inputs, layout);
    const TensorList got = f(strided);
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i)
      if (expected[i].defined()) CHECK(xg::equal(expected[i].detach(), got[i].detach()));
    CHECK(ag::gradcheck(f, strided));
    CHECK(ag::gradgradcheck(f, strided));
  }
}

void check_grads(const std::string& what, const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) {
  INFO("gradient check of " << what);
  CHECK(ag::gradcheck(f, inputs));
  CHECK(ag::gradgradcheck(f, inputs));
  check_non_contiguous([&](const TensorList& in) { return TensorList{f(in)}; }, inputs);
}

void check_grads_multi(const std::string& what, const ag::GradcheckFunction& f, const TensorList& inputs) {
  INFO("gradient check of " << what);
  CHECK(ag::gradcheck(f, inputs));
  CHECK(ag::gradgradcheck(f, inputs));
  check_non_contiguous(f, inputs);
}

std::string shape_str(const Shape& s) { return xg::shape_string(s); }

// ---- naive references ---------------------------------------------------------------------------
Shape unravel(int64_t flat, const Shape& s) {
  Shape idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}

int64_t ravel(const Shape& idx, const Shape& s) {
  int64_t flat = 0;
  for (size_t d = 0; d < s.size(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}

struct Nd {
  std::vector<double> v;
  Shape s;
};

Nd nd_of(const Tensor& t) { return {vals(t), t.shape()}; }

/// NumPy broadcasting, written out element by element.
Nd naive_binary(const Nd& a, const Nd& b, const std::function<double(double, double)>& f) {
  const size_t n = std::max(a.s.size(), b.s.size());
  auto dim = [n](const Shape& s, size_t i) { return i < n - s.size() ? int64_t{1} : s[i - (n - s.size())]; };
  Shape out(n);
  for (size_t i = 0; i < n; ++i) out[i] = std::max(dim(a.s, i), dim(b.s, i));
  Nd r{std::vector<double>(static_cast<size_t>(numel_of(out))), out};
  for (int64_t k = 0; k < numel_of(out); ++k) {
    Shape idx = unravel(k, out);
    auto source = [&](const Shape& s) {
      Shape sub;
      for (size_t j = 0; j < s.size(); ++j) sub.push_back(s[j] == 1 ? 0 : idx[j + (n - s.size())]);
      return ravel(sub, s);
    };
    r.v[static_cast<size_t>(k)] = f(a.v[static_cast<size_t>(source(a.s))], b.v[static_cast<size_t>(source(b.s))]);
  }
  return r;
}

/// For element `flat` of shape s, the flat index of its slot in the reduction over dims (keepdim layout).
int64_t reduced_slot(int64_t flat, const Shape& s, const std::set<int64_t>& dims) {
  Shape idx = unravel(flat, s), ks = s;
  for (int64_t d : dims) {
    idx[static_cast<size_t>(d)] = 0;
    ks[static_cast<size_t>(d)] = 1;
  }
  return ravel(idx, ks);
}

std::set<int64_t> norm_dims(const std::vector<int64_t>& dims, size_t rank) {
  std::set<int64_t> r;
  if (dims.empty())
    for (size_t d = 0; d < rank; ++d) r.insert(static_cast<int64_t>(d));
  for (int64_t d : dims) r.insert(d < 0 ? d + static_cast<int64_t>(rank) : d);
  return r;
}

Shape reduced_shape(const Shape& s, const std::set<int64_t>& dims, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < s.size(); ++d) {
    if (!dims.count(static_cast<int64_t>(d))) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

/// Generic naive reduction: per slot, fold(values of the slot) -> value.
Nd naive_reduce(const Nd& x, const std::vector<int64_t>& dims_in, bool keepdim,
                const std::function<double(const std::vector<double>&)>& fold) {
  std::set<int64_t> dims = norm_dims(dims_in, x.s.size());
  Shape ks = reduced_shape(x.s, dims, true);
  std::vector<std::vector<double>> groups(static_cast<size_t>(numel_of(ks)));
  for (int64_t i = 0; i < numel_of(x.s); ++i) groups[static_cast<size_t>(reduced_slot(i, x.s, dims))].push_back(x.v[static_cast<size_t>(i)]);
  Nd r{{}, reduced_shape(x.s, dims, keepdim)};
  for (const auto& g : groups) r.v.push_back(fold(g));
  return r;
}

double fold_sum(const std::vector<double>& g) {
  double s = 0;
  for (double v : g) s += v;
  return s;
}
double fold_mean(const std::vector<double>& g) { return fold_sum(g) / static_cast<double>(g.size()); }
double fold_var(const std::vector<double>& g, bool unbiased) {
  double m = fold_mean(g), s = 0;
  for (double v : g) s += (v - m) * (v - m);
  return s / static_cast<double>(g.size() - (unbiased ? 1 : 0));
}

/// PyTorch matmul semantics written independently: promote 1-D, broadcast batch dims, loop.
Nd naive_matmul(Nd a, Nd b) {
  const bool a1 = a.s.size() == 1, b1 = b.s.size() == 1;
  if (a1) a.s.insert(a.s.begin(), 1);
  if (b1) b.s.push_back(1);
  Shape ba(a.s.begin(), a.s.end() - 2), bb(b.s.begin(), b.s.end() - 2);
  const size_t nb = std::max(ba.size(), bb.size());
  while (ba.size() < nb) ba.insert(ba.begin(), 1);
  while (bb.size() < nb) bb.insert(bb.begin(), 1);
  Shape batch(nb);
  for (size_t i = 0; i < nb; ++i) batch[i] = std::max(ba[i], bb[i]);
  const int64_t n = a.s[a.s.size() - 2], k = a.s.back(), m = b.s.back();
  REQUIRE(b.s[b.s.size() - 2] == k);
  Nd r;
  for (int64_t bi = 0; bi < numel_of(batch); ++bi) {
    Shape idx = unravel(bi, batch), ia(nb), ib(nb);
    for (size_t d = 0; d < nb; ++d) {
      ia[d] = ba[d] == 1 ? 0 : idx[d];
      ib[d] = bb[d] == 1 ? 0 : idx[d];
    }
    const int64_t oa = ravel(ia, ba) * n * k, ob = ravel(ib, bb) * k * m;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l) acc += a.v[static_cast<size_t>(oa + i * k + l)] * b.v[static_cast<size_t>(ob + l * m + j)];
        r.v.push_back(acc);
      }
  }
  r.s = batch;
  if (!a1) r.s.push_back(n);
  if (!b1) r.s.push_back(m);
  return r;
}

/// out[perm] layout: out index i_0..i_{n-1} reads x at position with x_dim[perm[j]] = i_j.
Nd naive_permute(const Nd& x, const std::vector<int64_t>& perm) {
  Shape out(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) out[j] = x.s[static_cast<size_t>(perm[j])];
  Nd r{{}, out};
  for (int64_t k = 0; k < numel_of(out); ++k) {
    Shape oi = unravel(k, out), xi(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) xi[static_cast<size_t>(perm[j])] = oi[j];
    r.v.push_back(x.v[static_cast<size_t>(ravel(xi, x.s))]);
  }
  return r;
}

void check_nd(const Tensor& t, const Nd& expected, double tol = 1e-12) {
  CHECK(t.shape() == expected.s);
  if (t.shape() == expected.s) check_values(t, expected.v, tol);
}

}  // namespace

// =================================================================================================
// Elementwise binary ops
// =================================================================================================

namespace {
struct BinaryCase {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
  bool positive_rhs;  // divisor / base must stay away from 0
};

std::vector<BinaryCase> arithmetic_cases() {
  using T = const Tensor&;
  return {
      {"add", [](T a, T b) { return xg::add(a, b); }, [](double x, double y) { return x + y; }, false},
      {"add(alpha=-2.5)", [](T a, T b) { return xg::add(a, b, -2.5); }, [](double x, double y) { return x - 2.5 * y; }, false},
      {"sub", [](T a, T b) { return xg::sub(a, b); }, [](double x, double y) { return x - y; }, false},
      {"sub(alpha=0.5)", [](T a, T b) { return xg::sub(a, b, 0.5); }, [](double x, double y) { return x - 0.5 * y; }, false},
      {"mul", [](T a, T b) { return xg::mul(a, b); }, [](double x, double y) { return x * y; }, false},
      {"div", [](T a, T b) { return xg::div(a, b); }, [](double x, double y) { return x / y; }, true},
      {"operator+", [](T a, T b) { return a + b; }, [](double x, double y) { return x + y; }, false},
      {"operator-", [](T a, T b) { return a - b; }, [](double x, double y) { return x - y; }, false},
      {"operator*", [](T a, T b) { return a * b; }, [](double x, double y) { return x * y; }, false},
      {"operator/", [](T a, T b) { return a / b; }, [](double x, double y) { return x / y; }, true},
  };
}

const std::vector<std::pair<Shape, Shape>> kBroadcastShapes = {
    {{2, 3}, {2, 3}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{}, {2, 3}}, {{2, 3}, {}}, {{2, 1, 3}, {4, 1}}, {{4}, {3, 4}},
};
}  // namespace

TEST_CASE("ops: add/sub/mul/div tensor-tensor forward values and gradients under broadcasting", "[ops]") {
  xg::manual_seed(1);
  for (const BinaryCase& c : arithmetic_cases()) {
    for (const auto& [sa, sb] : kBroadcastShapes) {
      INFO(c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      Tensor a = normal(sa);
      Tensor b = c.positive_rhs ? positive(sb) : normal(sb);
      check_nd(c.op(a, b), naive_binary(nd_of(a), nd_of(b), c.ref));
      auto op = c.op;
      check_grads(c.name, [op](const TensorList& in) { return op(in[0], in[1]); }, {a, b});
    }
  }
}

TEST_CASE("ops: binary ops on transposed / permuted leaves (gradients flow through the permutation)", "[ops]") {
  xg::manual_seed(2);
  for (const BinaryCase& c : arithmetic_cases()) {
    INFO(c.name);
    auto op = c.op;
    // lhs = transpose of a [3, 2] leaf, rhs plain [2, 3]
    Tensor a = normal({3, 2});
    Tensor b = c.positive_rhs ? positive({2, 3}) : normal({2, 3});
    Tensor at = xg::transpose(a, 0, 1);
    Nd ref_at = naive_permute(nd_of(a), {1, 0});
    check_nd(op(at, b), naive_binary(ref_at, nd_of(b), c.ref));
    check_grads(c.name + " transposed lhs", [op](const TensorList& in) { return op(xg::transpose(in[0], 0, 1), in[1]); }, {a, b});
    // rhs = permute of a [4, 1, 3] leaf to [3, 4, 1] broadcast against [3, 1, 2]
    Tensor lhs = normal({3, 1, 2});
    Tensor rhs = c.positive_rhs ? positive({4, 1, 3}) : normal({4, 1, 3});
    Nd ref_rhs = naive_permute(nd_of(rhs), {2, 0, 1});
    check_nd(op(lhs, xg::permute(rhs, {2, 0, 1})), naive_binary(nd_of(lhs), ref_rhs, c.ref));
    check_grads(c.name + " permuted rhs with broadcasting",
                [op](const TensorList& in) { return op(in[0], xg::permute(in[1], {2, 0, 1})); }, {lhs, rhs});
  }
}

TEST_CASE("ops: the same tensor on both sides of a binary op", "[ops]") {
  xg::manual_seed(3);
  Tensor x = positive({2, 3});
  check_grads("mul(x, x)", [](const TensorList& in) { return xg::mul(in[0], in[0]); }, {x});
  check_grads("div(x, x)", [](const TensorList& in) { return xg::div(in[0], in[0]); }, {x});
  check_grads("sub(x, x.t())", [](const TensorList& in) { return xg::sub(in[0], xg::t(in[0])); }, {positive({3, 3})});
}

TEST_CASE("ops: scalar arithmetic on either side (add/sub/mul/div, rsub, rdiv, operators, neg)", "[ops]") {
  xg::manual_seed(4);
  using T = const Tensor&;
  struct ScalarCase {
    std::string name;
    std::function<Tensor(T)> op;
    std::function<double(double)> ref;
    bool positive_input;
  };
  std::vector<ScalarCase> cases = {
      {"add(x, 1.5)", [](T x) { return xg::add(x, 1.5); }, [](double v) { return v + 1.5; }, false},
      {"sub(x, 0.7)", [](T x) { return xg::sub(x, 0.7); }, [](double v) { return v - 0.7; }, false},
      {"mul(x, -2)", [](T x) { return xg::mul(x, -2.0); }, [](double v) { return -2.0 * v; }, false},
      {"div(x, 4)", [](T x) { return xg::div(x, 4.0); }, [](double v) { return v / 4.0; }, false},
      {"rsub(x, 2)", [](T x) { return xg::rsub(x, 2.0); }, [](double v) { return 2.0 - v; }, false},
      {"rdiv(x, 3)", [](T x) { return xg::rdiv(x, 3.0); }, [](double v) { return 3.0 / v; }, true},
      {"x + 1.5", [](T x) { return x + 1.5; }, [](double v) { return v + 1.5; }, false},
      {"1.5 + x", [](T x) { return 1.5 + x; }, [](double v) { return 1.5 + v; }, false},
      {"x - 0.7", [](T x) { return x - 0.7; }, [](double v) { return v - 0.7; }, false},
      {"2 - x", [](T x) { return 2.0 - x; }, [](double v) { return 2.0 - v; }, false},
      {"x * 3", [](T x) { return x * 3.0; }, [](double v) { return 3.0 * v; }, false},
      {"3 * x", [](T x) { return 3.0 * x; }, [](double v) { return 3.0 * v; }, false},
      {"x / 2", [](T x) { return x / 2.0; }, [](double v) { return v / 2.0; }, false},
      {"2 / x", [](T x) { return 2.0 / x; }, [](double v) { return 2.0 / v; }, true},
      {"-x", [](T x) { return -x; }, [](double v) { return -v; }, false},
      {"neg", [](T x) { return xg::neg(x); }, [](double v) { return -v; }, false},
      {"x.neg()", [](T x) { return x.neg(); }, [](double v) { return -v; }, false},
  };
  for (const ScalarCase& c : cases) {
    INFO(c.name);
    Tensor x = c.positive_input ? positive({2, 3}) : normal({2, 3});
    Tensor y = c.op(x);
    std::vector<double> expected;
    for (double v : vals(x)) expected.push_back(c.ref(v));
    check_values(y, expected);
    auto op = c.op;
    check_grads(c.name, [op](const TensorList& in) { return op(in[0]); }, {x});
    Tensor xt = c.positive_input ? positive({3, 2}) : normal({3, 2});
    check_grads(c.name + " on a transposed leaf", [op](const TensorList& in) { return op(xg::transpose(in[0], 0, 1)); }, {xt});
  }
  // 0-D input
  Tensor s = xg::scalar_tensor(0.75, xg::kFloat64).requires_grad_();
  check_values(xg::rdiv(s, 3.0), {4.0});
  check_grads("rdiv on 0-D", [](const TensorList& in) { return xg::rdiv(in[0], 3.0); }, {s});
}

TEST_CASE("ops: pow with scalar exponent, tensor exponent and scalar base", "[ops]") {
  xg::manual_seed(5);
  using T = const Tensor&;
  struct PowCase {
    std::string name;
    std::function<Tensor(T)> op;
    std::function<double(double)> ref;
    bool positive_input;
  };
  std::vector<PowCase> cases = {
      {"pow(x, 3)", [](T x) { return xg::pow(x, 3.0); }, [](double v) { return v * v * v; }, false},
      {"pow(x, 2)", [](T x) { return xg::pow(x, 2.0); }, [](double v) { return v * v; }, false},
      {"x.pow(2)", [](T x) { return x.pow(2.0); }, [](double v) { return v * v; }, false},
      {"pow(x, 1)", [](T x) { return xg::pow(x, 1.0); }, [](double v) { return v; }, false},
      {"pow(x, 0)", [](T x) { return xg::pow(x, 0.0); }, [](double) { return 1.0; }, false},
      {"pow(x, 0.5)", [](T x) { return xg::pow(x, 0.5); }, [](double v) { return std::sqrt(v); }, true},
      {"pow(x, -1.5)", [](T x) { return xg::pow(x, -1.5); }, [](double v) { return 1.0 / (v * std::sqrt(v)); }, true},
      {"pow(x, 1.7)", [](T x) { return xg::pow(x, 1.7); }, [](double v) { return std::exp(1.7 * std::log(v)); }, true},
      {"pow(x, -2)", [](T x) { return xg::pow(x, -2.0); }, [](double v) { return 1.0 / (v * v); }, false},
  };
  for (const PowCase& c : cases) {
    INFO(c.name);
    Tensor x = c.positive_input ? positive({2, 3}) : distinct({2, 3}, 0.2);
    std::vector<double> expected;
    for (double v : vals(x)) expected.push_back(c.ref(v));
    check_values(c.op(x), expected, 1e-12);
    auto op = c.op;
    check_grads(c.name, [op](const TensorList& in) { return op(in[0]); }, {x});
  }
  // Hand values.
  check_values(xg::pow(xg::tensor({2.0, 3.0}, xg::kFloat64), 3.0), {8.0, 27.0});
  check_values(xg::pow(xg::tensor({4.0, 9.0}, xg::kFloat64), 0.5), {2.0, 3.0});
  check_values(xg::pow(xg::tensor({2.0, 3.0}, xg::kFloat64), xg::tensor({3.0, 2.0}, xg::kFloat64)), {8.0, 9.0});
  check_values(xg::pow(2.0, xg::tensor({3.0, -1.0, 0.5}, xg::kFloat64)), {8.0, 0.5, std::sqrt(2.0)});

  // Tensor exponent (positive base), with broadcasting and a transposed leaf.
  const std::vector<std::pair<Shape, Shape>> shapes = {{{2, 3}, {2, 3}}, {{3, 1}, {1, 4}}, {{2, 3}, {}}, {{}, {2, 3}}, {{4}, {3, 4}}};
  for (const auto& [sb, se] : shapes) {
    INFO("pow(base " << shape_str(sb) << ", exponent " << shape_str(se) << ")");
    Tensor base = positive(sb);
    Tensor e = normal(se);
    check_nd(xg::pow(base, e), naive_binary(nd_of(base), nd_of(e), [](double x, double y) { return std::pow(x, y); }));
    check_grads("pow(tensor, tensor)", [](const TensorList& in) { return xg::pow(in[0], in[1]); }, {base, e});
  }
  Tensor bt = positive({3, 2});
  Tensor et = normal({2, 3});
  check_grads("pow(transposed base, exponent)", [](const TensorList& in) { return xg::pow(xg::transpose(in[0], 0, 1), in[1]); }, {bt, et});
  check_grads("x.pow(tensor)", [](const TensorList& in) { return in[0].pow(in[1]); }, {positive({2, 2}), normal({2, 2})});

  // Scalar base.
  for (double base : {2.0, 0.5, 3.7}) {
    INFO("pow(" << base << ", e)");
    Tensor e = normal({2, 3});
    std::vector<double> expected;
    for (double v : vals(e)) expected.push_back(std::pow(base, v));
    check_values(xg::pow(base, e), expected);
    check_grads("pow(scalar, tensor)", [base](const TensorList& in) { return xg::pow(base, in[0]); }, {e});
    Tensor et2 = normal({3, 2});
    check_grads("pow(scalar, transposed)", [base](const TensorList& in) { return xg::pow(base, xg::transpose(in[0], 0, 1)); }, {et2});
  }
}

TEST_CASE("ops: minimum and maximum (no ties) with broadcasting; ties split the gradient", "[ops]") {
  xg::manual_seed(6);
  using T = const Tensor&;
  struct MinMax {
    std::string name;
    std::function<Tensor(T, T)> op;
    std::function<double(double, double)> ref;
  };
  std::vector<MinMax> cases = {
      {"minimum", [](T a, T b) { return xg::minimum(a, b); }, [](double x, double y) { return std::min(x, y); }},
      {"maximum", [](T a, T b) { return xg::maximum(a, b); }, [](double x, double y) { return std::max(x, y); }},
  };
  for (const MinMax& c : cases) {
    for (const auto& [sa, sb] : kBroadcastShapes) {
      INFO(c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      // a on the grid k * 0.15, b on the grid k * 0.15 + 0.05: never closer than 0.05.
      Tensor a = distinct(sa, 0.15);
      Tensor b = distinct(sb, 0.15, 0.05);
      check_nd(c.op(a, b), naive_binary(nd_of(a), nd_of(b), c.ref));
      auto op = c.op;
      check_grads(c.name, [op](const TensorList& in) { return op(in[0], in[1]); }, {a, b});
    }
    Tensor a = distinct({3, 2});
    Tensor b = distinct({2, 3}, 0.15, 0.05);
    auto op = c.op;
    check_grads(c.name + " transposed lhs", [op](const TensorList& in) { return op(xg::transpose(in[0], 0, 1), in[1]); }, {a, b});
  }
  // Hand values.
  Tensor p = xg::tensor({1.0, -2.0, 3.0}, xg::kFloat64), q = xg::tensor({0.5, 4.0, 3.0}, xg::kFloat64);
  check_values(xg::minimum(p, q), {0.5, -2.0, 3.0});
  check_values(xg::maximum(p, q), {1.0, 4.0, 3.0});
  // A tie shares the gradient equally (PyTorch's convention).
  Tensor x = xg::tensor({1.0, 2.0}, xg::kFloat64).requires_grad_();
  Tensor y = xg::tensor({1.0, 3.0}, xg::kFloat64).requires_grad_();
  xg::maximum(x, y).sum().backward();
  check_values(x.grad(), {0.5, 0.0});
  check_values(y.grad(), {0.5, 1.0});
}

TEST_CASE("ops: where with broadcasting condition and operands", "[ops]") {
  xg::manual_seed(7);
  // float mask condition [2, 3], a [2, 3], b [3]
  Tensor cond = xg::tensor({1, 0, 1, 0, 0, 1}, {2, 3}, xg::kFloat64);
  Tensor a = normal({2, 3}), b = normal({3});
  Tensor out = xg::where(cond, a, b);
  {
    std::vector<double> va = vals(a), vb = vals(b), expected;
    std::vector<double> vc = vals(cond);
    for (int i = 0; i < 6; ++i) expected.push_back(vc[i] != 0 ? va[i] : vb[i % 3]);
    check_values(out, expected);
  }
  check_grads("where(mask, a, b[3])", [cond](const TensorList& in) { return xg::where(cond, in[0], in[1]); }, {a, b});
  // int64 condition [3], a 0-D, b [2, 3]
  Tensor ci = xg::tensor({0, 1, 1}, {3}, xg::kInt64);
  Tensor s = normal({}), m = normal({2, 3});
  {
    std::vector<double> vm = vals(m), expected;
    const double vs = vals(s)[0];
    for (int i = 0; i < 6; ++i) expected.push_back(i % 3 == 0 ? vm[i] : vs);
    check_values(xg::where(ci, s, m), expected);
  }
  check_grads("where(int cond, 0-D, [2,3])", [ci](const TensorList& in) { return xg::where(ci, in[0], in[1]); }, {s, m});
  // condition [2, 1], a from a transposed leaf, b [2, 3]
  Tensor c2 = xg::tensor({1, 0}, {2, 1}, xg::kFloat64);
  Tensor lt = normal({3, 2}), r = normal({2, 3});
  check_grads("where(cond[2,1], transposed a, b)", [c2](const TensorList& in) { return xg::where(c2, xg::transpose(in[0], 0, 1), in[1]); },
              {lt, r});
}

TEST_CASE("ops: comparisons give 0/1 masks in the operands' dtype and are not differentiable", "[ops]") {
  Tensor a = xg::tensor({1.0, 2.0, 3.0});
  Tensor b = xg::tensor({3.0, 2.0, 1.0});
  check_values(xg::eq(a, b), {0, 1, 0});
  check_values(xg::ne(a, b), {1, 0, 1});
  check_values(xg::lt(a, b), {1, 0, 0});
  check_values(xg::le(a, b), {1, 1, 0});
  check_values(xg::gt(a, b), {0, 0, 1});
  check_values(xg::ge(a, b), {0, 1, 1});
  CHECK(xg::eq(a, b).dtype() == xg::kFloat32);
  check_values(a == b, {0, 1, 0});
  check_values(a != b, {1, 0, 1});
  check_values(a < b, {1, 0, 0});
  check_values(a <= b, {1, 1, 0});
  check_values(a > b, {0, 0, 1});
  check_values(a >= b, {0, 1, 1});
  check_values(a.eq(b), {0, 1, 0});
  check_values(a.ne(b), {1, 0, 1});
  check_values(a.lt(b), {1, 0, 0});
  check_values(a.le(b), {1, 1, 0});
  check_values(a.gt(b), {0, 0, 1});
  check_values(a.ge(b), {0, 1, 1});
  // with a scalar
  check_values(xg::eq(a, 2.0), {0, 1, 0});
  check_values(xg::ne(a, 2.0), {1, 0, 1});
  check_values(xg::lt(a, 2.0), {1, 0, 0});
  check_values(xg::le(a, 2.0), {1, 1, 0});
  check_values(xg::gt(a, 2.0), {0, 0, 1});
  check_values(xg::ge(a, 2.0), {0, 1, 1});
  check_values(a == 2.0, {0, 1, 0});
  check_values(a > 2.0, {0, 0, 1});
  check_values(a <= 2.0, {1, 1, 0});
  // broadcasting [3, 1] vs [1, 3]: lower-triangular-style mask
  Tensor col = xg::tensor({1, 2, 3}, {3, 1}, xg::kFloat64), row = xg::tensor({1, 2, 3}, {1, 3}, xg::kFloat64);
  Tensor m = xg::ge(col, row);
  CHECK(m.shape() == Shape{3, 3});
  check_values(m, {1, 0, 0, 1, 1, 0, 1, 1, 1});
  CHECK(m.dtype() == xg::kFloat64);
  // float32 tensors compare against a double scalar at float32 precision (as PyTorch does)
  Tensor f = xg::tensor({0.1, 0.2, 0.3});
  check_values(xg::eq(f, 0.1), {1, 0, 0});
  check_values(xg::gt(f, 0.1), {0, 1, 1});
  check_values(xg::le(f, 0.3), {1, 1, 1});
  // int64 tensors compare against a fractional scalar without truncating it
  Tensor i = xg::tensor({1, 2, 3}, {3}, xg::kInt64);
  check_values(xg::lt(i, 2.5), {1, 1, 0});
  check_values(xg::eq(i, 2.0), {0, 1, 0});
  CHECK(xg::lt(i, 2.5).dtype() == xg::kInt64);
  // not differentiable
  Tensor x = xg::tensor({1.0, 2.0}, xg::kFloat64).requires_grad_();
  CHECK_FALSE(xg::lt(x, 1.5).requires_grad());
  CHECK_FALSE(xg::eq(x, x).requires_grad());
}

// =================================================================================================
// Elementwise unary ops
// =================================================================================================

namespace {
double gelu_ref(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }
double gelu_tanh_ref(double v) {
  return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}
}  // namespace

TEST_CASE("ops: unary ops match their formulas and pass gradcheck/gradgradcheck", "[ops]") {
  xg::manual_seed(8);
  using T = const Tensor&;
  struct UnaryCase {
    std::string name;
    std::function<Tensor(T)> op;
    std::function<double(double)> ref;
    bool positive_input;
  };
  std::vector<UnaryCase> cases = {
      {"exp", [](T x) { return xg::exp(x); }, [](double v) { return std::exp(v); }, false},
      {"x.exp()", [](T x) { return x.exp(); }, [](double v) { return std::exp(v); }, false},
      {"log", [](T x) { return xg::log(x); }, [](double v) { return std::log(v); }, true},
      {"x.log()", [](T x) { return x.log(); }, [](double v) { return std::log(v); }, true},
      {"sqrt", [](T x) { return xg::sqrt(x); }, [](double v) { return std::sqrt(v); }, true},
      {"x.sqrt()", [](T x) { return x.sqrt(); }, [](double v) { return std::sqrt(v); }, true},
      {"abs", [](T x) { return xg::abs(x); }, [](double v) { return std::fabs(v); }, false},
      {"x.abs()", [](T x) { return x.abs(); }, [](double v) { return std::fabs(v); }, false},
      {"sin", [](T x) { return xg::sin(x); }, [](double v) { return std::sin(v); }, false},
      {"cos", [](T x) { return xg::cos(x); }, [](double v) { return std::cos(v); }, false},
      {"x.sin()", [](T x) { return x.sin(); }, [](double v) { return std::sin(v); }, false},
      {"x.cos()", [](T x) { return x.cos(); }, [](double v) { return std::cos(v); }, false},
      {"erf", [](T x) { return xg::erf(x); }, [](double v) { return std::erf(v); }, false},
      {"tanh", [](T x) { return xg::tanh(x); }, [](double v) { return std::tanh(v); }, false},
      {"x.tanh()", [](T x) { return x.tanh(); }, [](double v) { return std::tanh(v); }, false},
      {"sigmoid", [](T x) { return xg::sigmoid(x); }, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, false},
      {"x.sigmoid()", [](T x) { return x.sigmoid(); }, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, false},
      {"relu", [](T x) { return xg::relu(x); }, [](double v) { return v > 0 ? v : 0.0; }, false},
      {"x.relu()", [](T x) { return x.relu(); }, [](double v) { return v > 0 ? v : 0.0; }, false},
      {"leaky_relu", [](T x) { return xg::leaky_relu(x); }, [](double v) { return v > 0 ? v : 0.01 * v; }, false},
      {"leaky_relu(0.2)", [](T x) { return xg::leaky_relu(x, 0.2); }, [](double v) { return v > 0 ? v : 0.2 * v; }, false},
      {"elu", [](T x) { return xg::elu(x); }, [](double v) { return v > 0 ? v : std::exp(v) - 1.0; }, false},
      {"elu(1.3)", [](T x) { return xg::elu(x, 1.3); }, [](double v) { return v > 0 ? v : 1.3 * (std::exp(v) - 1.0); }, false},
      {"gelu", [](T x) { return xg::gelu(x); }, gelu_ref, false},
      {"gelu(none)", [](T x) { return xg::gelu(x, "none"); }, gelu_ref, false},
      {"gelu(tanh)", [](T x) { return xg::gelu(x, "tanh"); }, gelu_tanh_ref, false},
      {"softplus", [](T x) { return xg::softplus(x); }, [](double v) { return std::log(1.0 + std::exp(v)); }, false},
      {"softplus(beta=3)", [](T x) { return xg::softplus(x, 3.0); }, [](double v) { return std::log(1.0 + std::exp(3.0 * v)) / 3.0; }, false},
      {"clamp(min=-0.4)", [](T x) { return xg::clamp(x, -0.4); }, [](double v) { return std::max(v, -0.4); }, false},
      {"clamp(max=0.55)", [](T x) { return xg::clamp(x, std::nullopt, 0.55); }, [](double v) { return std::min(v, 0.55); }, false},
      {"clamp(-0.4, 0.55)", [](T x) { return xg::clamp(x, -0.4, 0.55); }, [](double v) { return std::min(std::max(v, -0.4), 0.55); }, false},
      {"x.clamp(-0.4, 0.55)", [](T x) { return x.clamp(-0.4, 0.55); }, [](double v) { return std::min(std::max(v, -0.4), 0.55); }, false},
      {"neg", [](T x) { return xg::neg(x); }, [](double v) { return -v; }, false},
  };
  for (const UnaryCase& c : cases) {
    INFO(c.name);
    // distinct(): |x| >= 0.15, no value within 0.05 of the clamp bounds.
    Tensor x = c.positive_input ? positive({2, 3}) : distinct({2, 3});
    std::vector<double> expected;
    for (double v : vals(x)) expected.push_back(c.ref(v));
    check_values(c.op(x), expected, 1e-12);
    auto op = c.op;
    check_grads(c.name, [op](const TensorList& in) { return op(in[0]); }, {x});
    // The function under test gets the transpose of a [3, 2] leaf.
    Tensor xt = c.positive_input ? positive({3, 2}) : distinct({3, 2});
    Nd ref_t = naive_permute(nd_of(xt), {1, 0});
    std::vector<double> expected_t;
    for (double v : ref_t.v) expected_t.push_back(c.ref(v));
    Tensor yt = op(xg::transpose(xt, 0, 1));
    CHECK(yt.shape() == Shape{2, 3});
    check_values(yt, expected_t, 1e-12);
    check_grads(c.name + " on a transposed leaf", [op](const TensorList& in) { return op(xg::transpose(in[0], 0, 1)); }, {xt});
    // and a 0-D input
    Tensor s = c.positive_input ? positive({}) : xg::scalar_tensor(-0.65, xg::kFloat64).requires_grad_();
    check_values(op(s), {c.ref(vals(s)[0])}, 1e-12);
    check_grads(c.name + " on 0-D", [op](const TensorList& in) { return op(in[0]); }, {s});
  }
}

TEST_CASE("ops: unary hand values", "[ops]") {
  Tensor x = xg::tensor({0.0, 1.0, -1.0}, xg::kFloat64);
  check_values(xg::sigmoid(x), {0.5, 0.7310585786300049, 0.2689414213699951});
  check_values(xg::tanh(x), {0.0, 0.7615941559557649, -0.7615941559557649});
  check_values(xg::erf(xg::tensor({0.5}, xg::kFloat64)), {0.5204998778130465});
  check_values(xg::gelu(x), {0.0, 0.8413447460685429, -0.15865525393145707});  // x * Phi(x)
  check_values(xg::softplus(xg::tensor({0.0}, xg::kFloat64)), {0.6931471805599453});
  check_values(xg::relu(x), {0.0, 1.0, 0.0});
  check_values(xg::leaky_relu(x, 0.1), {0.0, 1.0, -0.1});
  check_values(xg::elu(x, 2.0), {0.0, 1.0, 2.0 * (std::exp(-1.0) - 1.0)});
  check_values(xg::abs(x), {0.0, 1.0, 1.0});
  check_values(xg::clamp(xg::tensor({-2.0, 0.5, 2.0}, xg::kFloat64), -1.0, 1.0), {-1.0, 0.5, 1.0});
  // float32 path agrees
  check_values(xg::exp(xg::tensor({1.0f})), {std::exp(1.0)}, 1e-6);
  check_values(xg::gelu(xg::tensor({1.0}), "tanh"), {gelu_tanh_ref(1.0)}, 1e-6);
  // gradients at the hand points
  Tensor g = xg::tensor({0.0, 2.0}, xg::kFloat64).requires_grad_();
  xg::sigmoid(g).sum().backward();
  const double s2 = 1.0 / (1.0 + std::exp(-2.0));
  check_values(g.grad(), {0.25, s2 * (1 - s2)});
  // clamp passes gradient only inside [min, max]
  Tensor c = xg::tensor({-2.0, 0.5, 2.0}, xg::kFloat64).requires_grad_();
  xg::clamp(c, -1.0, 1.0).sum().backward();
  check_values(c.grad(), {0.0, 1.0, 0.0});
  // relu / leaky_relu / abs gradients away from 0
  Tensor r = xg::tensor({-1.5, 0.5}, xg::kFloat64).requires_grad_();
  (xg::relu(r) + xg::leaky_relu(r, 0.1) + xg::abs(r)).sum().backward();
  check_values(r.grad(), {0.0 + 0.1 - 1.0, 1.0 + 1.0 + 1.0});
}

TEST_CASE("ops: softplus with beta and threshold (linear above the threshold)", "[ops]") {
  // beta = 2, threshold = 1: z = 2x is {-2.4, -0.6, 0.4, 0.7, 1.6, 2.8}; the last two are linear.
  Tensor x = leaf({-1.2, -0.3, 0.2, 0.35, 0.8, 1.4}, {2, 3});
  std::vector<double> expected;
  for (double v : vals(x)) expected.push_back(2 * v > 1.0 ? v : std::log1p(std::exp(2 * v)) / 2.0);
  check_values(xg::softplus(x, 2.0, 1.0), expected);
  CHECK(vals(xg::softplus(x, 2.0, 1.0))[4] == 0.8);  // exactly x in the linear region
  check_grads("softplus(beta=2, threshold=1)", [](const TensorList& in) { return xg::softplus(in[0], 2.0, 1.0); }, {x});
  // the gradient is 1 above the threshold and sigmoid(beta x) below
  Tensor y = leaf({-0.3, 0.8}, {2});
  xg::softplus(y, 2.0, 1.0).sum().backward();
  check_values(y.grad(), {1.0 / (1.0 + std::exp(0.6)), 1.0});
  // default threshold 20 with beta 0.5: x = 50 gives z = 25 > 20, linear
  check_values(xg::softplus(xg::tensor({50.0}, xg::kFloat64), 0.5), {50.0});
  check_values(xg::softplus(xg::tensor({30.0}, xg::kFloat64), 0.5), {std::log1p(std::exp(15.0)) / 0.5});
  Tensor xt = leaf({-1.2, 0.8, -0.3, 0.35, 0.2, 1.4}, {3, 2});
  check_grads("softplus(beta=2, threshold=1) on a transposed leaf",
              [](const TensorList& in) { return xg::softplus(xg::transpose(in[0], 0, 1), 2.0, 1.0); }, {xt});
}

TEST_CASE("ops: to_dtype between float32 and float64 is differentiable and returns gradients in the leaf's dtype", "[ops]") {
  // float32 leaf -> float64
  Tensor x32 = xg::tensor({1.5, -2.0, 0.25}).requires_grad_();
  Tensor y64 = xg::to_dtype(x32, xg::kFloat64);
  CHECK(y64.dtype() == xg::kFloat64);
  check_values(y64, {1.5, -2.0, 0.25});
  (y64 * xg::tensor({1.0, 2.0, 3.0}, xg::kFloat64)).sum().backward();
  REQUIRE(x32.grad().defined());
  CHECK(x32.grad().dtype() == xg::kFloat32);
  check_values(x32.grad(), {1.0, 2.0, 3.0});
  // float64 leaf -> float32
  Tensor x64 = xg::tensor({1.5, -2.0}, xg::kFloat64).requires_grad_();
  Tensor y32 = x64.to(xg::kFloat32);
  CHECK(y32.dtype() == xg::kFloat32);
  (y32 * y32).sum().backward();
  REQUIRE(x64.grad().defined());
  CHECK(x64.grad().dtype() == xg::kFloat64);
  check_values(x64.grad(), {3.0, -4.0}, 1e-6);
  // same dtype is the identity
  CHECK(xg::to_dtype(x64, xg::kFloat64).is_same(x64));
  // to int64 truncates and is not differentiable
  Tensor i = xg::to_dtype(xg::tensor({1.7, -2.2}, xg::kFloat64).requires_grad_(), xg::kInt64);
  CHECK(i.dtype() == xg::kInt64);
  check_values(i, {1, -2});
  CHECK_FALSE(i.requires_grad());
  // int64 -> float
  check_values(xg::to_dtype(xg::tensor({3, -4}, {2}, xg::kInt64), xg::kFloat64), {3.0, -4.0});
  // gradcheck through a float32 round trip (coarser step: float32 resolution)
  auto opts = ag::GradcheckOptions().set_eps(1e-3).set_atol(1e-3).set_rtol(1e-2);
  Tensor x = leaf({0.5, -1.25, 2.0, 0.75}, {2, 2});
  auto fn = [](const TensorList& in) { return xg::to_dtype(xg::mul(xg::to_dtype(in[0], xg::kFloat32), 3.0), xg::kFloat64); };
  CHECK(ag::gradcheck(std::function<Tensor(const TensorList&)>(fn), {x}, opts));
  CHECK(ag::gradgradcheck(std::function<Tensor(const TensorList&)>(fn), {x}, opts));
  auto fn2 = [](const TensorList& in) {
    Tensor h = xg::to_dtype(xg::transpose(in[0], 0, 1), xg::kFloat32);
    return xg::mul(xg::to_dtype(h, xg::kFloat64), in[0]);
  };
  CHECK(ag::gradcheck(std::function<Tensor(const TensorList&)>(fn2), {x}, opts));
  CHECK(ag::gradgradcheck(std::function<Tensor(const TensorList&)>(fn2), {x}, opts));
}

// =================================================================================================
// Reductions
// =================================================================================================

TEST_CASE("ops: sum and mean over all and over dims, keepdim both ways", "[ops]") {
  xg::manual_seed(9);
  Tensor x = normal({2, 3, 4});
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {0, 1, 2}, {2, 0}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      INFO("dims " << fmt::format("{}", dims) << " keepdim " << keepdim);
      check_nd(xg::sum(x, dims, keepdim), naive_reduce(nd_of(x), dims, keepdim, fold_sum), 1e-12);
      check_nd(xg::mean(x, dims, keepdim), naive_reduce(nd_of(x), dims, keepdim, fold_mean), 1e-12);
      check_grads("sum", [dims, keepdim](const TensorList& in) { return xg::sum(in[0], dims, keepdim); }, {x});
      check_grads("mean", [dims, keepdim](const TensorList& in) { return xg::mean(in[0], dims, keepdim); }, {x});
    }
  }
  check_values(x.sum(), {fold_sum(vals(x))}, 1e-12);
  check_values(x.mean(), {fold_mean(vals(x))}, 1e-12);
  CHECK(xg::sum(x).dim() == 0);
  // hand values
  Tensor h = xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kFloat64);
  check_values(xg::sum(h, {0}), {5, 7, 9});
  check_values(xg::sum(h, {1}), {6, 15});
  check_values(xg::mean(h, {1}, true), {2, 5});
  CHECK(xg::mean(h, {1}, true).shape() == Shape{2, 1});
  check_values(h.mean(), {3.5});
  // a permuted leaf
  Tensor p = normal({4, 2, 3});
  check_grads("sum(permute(x), dims {1})", [](const TensorList& in) { return xg::sum(xg::permute(in[0], {1, 2, 0}), {1}); }, {p});
  check_grads("mean(permute(x), dims {0, 2}, keepdim)",
              [](const TensorList& in) { return xg::mean(xg::permute(in[0], {1, 2, 0}), {0, 2}, true); }, {p});
  // 0-D input
  Tensor s = normal({});
  check_grads("sum of 0-D", [](const TensorList& in) { return xg::sum(in[0]); }, {s});
  check_grads("mean of 0-D", [](const TensorList& in) { return xg::mean(in[0]); }, {s});
}

TEST_CASE("ops: max and min over all elements and along a dim with indices", "[ops]") {
  xg::manual_seed(10);
  Tensor x = distinct({3, 4});
  const std::vector<double> v = vals(x);
  check_values(xg::max(x), {*std::max_element(v.begin(), v.end())});
  check_values(xg::min(x), {*std::min_element(v.begin(), v.end())});
  check_values(x.max(), {*std::max_element(v.begin(), v.end())});
  check_values(x.min(), {*std::min_element(v.begin(), v.end())});
  check_grads("max()", [](const TensorList& in) { return xg::max(in[0]); }, {x});
  check_grads("min()", [](const TensorList& in) { return xg::min(in[0]); }, {x});
  Tensor xt = distinct({4, 3});
  check_grads("max(transposed)", [](const TensorList& in) { return xg::max(xg::transpose(in[0], 0, 1)); }, {xt});

  Tensor y = distinct({2, 3, 4});
  const Shape ys = y.shape();
  const std::vector<double> yv = vals(y);
  for (int64_t dim : {0, 1, 2, -1}) {
    for (bool keepdim : {false, true}) {
      for (bool is_max : {true, false}) {
        INFO((is_max ? "max" : "min") << " dim " << dim << " keepdim " << keepdim);
        auto [values, indices] = is_max ? xg::max(y, dim, keepdim) : xg::min(y, dim, keepdim);
        // naive: first extreme along dim
        const int64_t d = dim < 0 ? dim + 3 : dim;
        Shape ks = ys;
        ks[static_cast<size_t>(d)] = 1;
        std::vector<double> best(static_cast<size_t>(numel_of(ks)), is_max ? -INFINITY : INFINITY), best_index(best.size(), -1);
        for (int64_t i = 0; i < numel_of(ys); ++i) {
          const int64_t slot = reduced_slot(i, ys, {d});
          const double val = yv[static_cast<size_t>(i)];
          if (is_max ? val > best[static_cast<size_t>(slot)] : val < best[static_cast<size_t>(slot)]) {
            best[static_cast<size_t>(slot)] = val;
            best_index[static_cast<size_t>(slot)] = static_cast<double>(unravel(i, ys)[static_cast<size_t>(d)]);
          }
        }
        const Shape expected_shape = reduced_shape(ys, {d}, keepdim);
        CHECK(values.shape() == expected_shape);
        CHECK(indices.shape() == expected_shape);
        CHECK(indices.dtype() == xg::kInt64);
        CHECK_FALSE(indices.requires_grad());
        check_values(values, best);
        check_values(indices, best_index);
        check_grads("max/min along dim", [dim, keepdim, is_max](const TensorList& in) {
          return std::get<0>(is_max ? xg::max(in[0], dim, keepdim) : xg::min(in[0], dim, keepdim));
        }, {y});
      }
    }
  }
  // method spelling and a permuted leaf
  auto [mv, mi] = y.max(1);
  check_values(mi, vals(std::get<1>(xg::max(y, 1))));
  check_grads("min(permuted, dim 0)", [](const TensorList& in) { return std::get<0>(xg::min(xg::permute(in[0], {2, 0, 1}), 0)); }, {y});
  // hand values and the gradient going to the selected index
  Tensor h = xg::tensor({1, 5, 2, 7, 3, 4}, {2, 3}, xg::kFloat64).requires_grad_();
  auto [hv, hi] = xg::max(h, 1);
  check_values(hv, {5, 7});
  check_values(hi, {1, 0});
  hv.sum().backward();
  check_values(h.grad(), {0, 1, 0, 1, 0, 0});
  // max over all with a tie splits the gradient evenly (PyTorch's convention)
  Tensor t = xg::tensor({1.0, 3.0, 3.0}, xg::kFloat64).requires_grad_();
  xg::max(t).backward();
  check_values(t.grad(), {0.0, 0.5, 0.5});
}

TEST_CASE("ops: dim-wise ops accept dim 0 of a 0-D tensor", "[ops]") {
  Tensor s = xg::scalar_tensor(2.5, xg::kFloat64).requires_grad_();
  auto [v, i] = xg::max(s, 0);
  CHECK(v.dim() == 0);
  CHECK(i.dim() == 0);
  check_values(v, {2.5});
  check_values(i, {0});
  v.backward();
  check_values(s.grad(), {1.0});
  Tensor zero_index = xg::zeros({}, xg::kInt64);
  check_values(xg::gather(s, 0, zero_index), {2.5});
  check_values(xg::index_select(s, 0, xg::tensor({0}, {1}, xg::kInt64)), {2.5});
  check_values(xg::scatter_add(s, 0, zero_index, xg::scalar_tensor(1.0, xg::kFloat64)), {3.5});
  check_values(xg::softmax(s, 0), {1.0});
  check_values(xg::log_softmax(s, -1), {0.0});
  check_grads("max(0-D, 0)", [](const TensorList& in) { return std::get<0>(xg::max(in[0], 0)); }, {s});
  check_grads("min(0-D, 0, keepdim)", [](const TensorList& in) { return std::get<0>(xg::min(in[0], 0, true)); }, {s});
  check_grads("gather(0-D)", [zero_index](const TensorList& in) { return xg::gather(in[0], 0, zero_index); }, {s});
  Tensor src = xg::scalar_tensor(-0.5, xg::kFloat64).requires_grad_();
  check_grads("scatter_add(0-D)", [zero_index](const TensorList& in) { return xg::scatter_add(in[0], 0, zero_index, in[1]); }, {s, src});
  Tensor one = xg::tensor({0}, {1}, xg::kInt64);
  check_grads("index_select(0-D)", [one](const TensorList& in) { return xg::index_select(in[0], 0, one); }, {s});
  check_grads("logsumexp(0-D)", [](const TensorList& in) { return xg::logsumexp(in[0], {0}); }, {s});
  check_grads("squeeze(0-D, 0)", [](const TensorList& in) { return xg::mul(xg::squeeze(in[0], 0), 2.0); }, {s});
  check_grads("transpose(0-D, 0, -1)", [](const TensorList& in) { return xg::mul(xg::transpose(in[0], 0, -1), 2.0); }, {s});
}

TEST_CASE("ops: argmax and argmin return the first index on ties", "[ops]") {
  Tensor x = xg::tensor({1, 3, 3, 2, 0, 0}, {2, 3}, xg::kFloat64);
  CHECK(xg::argmax(x).dtype() == xg::kInt64);
  CHECK(xg::argmax(x).dim() == 0);
  check_values(xg::argmax(x), {1});
  check_values(xg::argmin(x), {4});
  check_values(xg::argmax(x, 1), {1, 0});
  check_values(xg::argmin(x, 1), {0, 1});
  check_values(xg::argmax(x, 0), {1, 0, 0});
  check_values(xg::argmin(x, 0), {0, 1, 1});
  check_values(xg::argmax(x, -1), {1, 0});
  CHECK(xg::argmax(x, 1, true).shape() == Shape{2, 1});
  CHECK(xg::argmax(x, std::nullopt, true).shape() == Shape{1, 1});
  check_values(x.argmax(1), {1, 0});
  check_values(x.argmin(), {4});
  // all equal: index 0
  check_values(xg::argmax(xg::ones({5})), {0});
  check_values(xg::argmin(xg::ones({5})), {0});
  // int64 input
  check_values(xg::argmax(xg::tensor({4, 9, 9, 1}, {4}, xg::kInt64)), {1});
}

TEST_CASE("ops: var and std (unbiased and biased, over dims, keepdim)", "[ops]") {
  // hand values: var({1,2,3,4}) = 5/3 unbiased, 5/4 biased
  Tensor h = xg::tensor({1, 2, 3, 4}, xg::kFloat64);
  check_values(xg::var(h), {5.0 / 3.0});
  check_values(xg::var(h, {}, false), {1.25});
  check_values(xg::std(h), {std::sqrt(5.0 / 3.0)});
  check_values(xg::std(h, {}, false), {std::sqrt(1.25)});
  check_values(h.var(), {5.0 / 3.0});
  check_values(h.std(), {std::sqrt(5.0 / 3.0)});
  Tensor h2 = xg::tensor({2, 4, 4, 4, 5, 5, 7, 9}, {2, 4}, xg::kFloat64);  // rows {2,4,4,4}, {5,5,7,9}
  check_values(xg::var(h2, {1}, false), {0.75, 2.75});
  check_values(xg::var(h2, {}, false), {4.0});  // the classic example: population sd 2
  check_values(xg::std(h2, {}, false), {2.0});
  check_values(xg::var(h2, {0}, true, true), {4.5, 0.5, 4.5, 12.5});
  CHECK(xg::var(h2, {0}, true, true).shape() == Shape{1, 4});

  xg::manual_seed(11);
  Tensor x = normal({3, 4});
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {-1}, {0, 1}};
  for (const auto& dims : dim_sets)
    for (bool unbiased : {true, false})
      for (bool keepdim : {false, true}) {
        INFO("dims " << fmt::format("{}", dims) << " unbiased " << unbiased << " keepdim " << keepdim);
        check_nd(xg::var(x, dims, unbiased, keepdim),
                 naive_reduce(nd_of(x), dims, keepdim, [unbiased](const std::vector<double>& g) { return fold_var(g, unbiased); }), 1e-12);
        check_nd(xg::std(x, dims, unbiased, keepdim),
                 naive_reduce(nd_of(x), dims, keepdim, [unbiased](const std::vector<double>& g) { return std::sqrt(fold_var(g, unbiased)); }),
                 1e-12);
        check_grads("var", [dims, unbiased, keepdim](const TensorList& in) { return xg::var(in[0], dims, unbiased, keepdim); }, {x});
        check_grads("std", [dims, unbiased, keepdim](const TensorList& in) { return xg::std(in[0], dims, unbiased, keepdim); }, {x});
      }
  Tensor xt = normal({4, 3});
  check_grads("var(transposed, dim 1)", [](const TensorList& in) { return xg::var(xg::transpose(in[0], 0, 1), {1}); }, {xt});
  check_grads("std(transposed)", [](const TensorList& in) { return xg::std(xg::transpose(in[0], 0, 1), {}, false); }, {xt});
}

TEST_CASE("ops: logsumexp over dims, stable at large logits", "[ops]") {
  xg::manual_seed(12);
  Tensor x = normal({2, 3, 2});
  auto fold_lse = [](const std::vector<double>& g) {
    double s = 0;
    for (double v : g) s += std::exp(v);
    return std::log(s);
  };
  const std::vector<std::vector<int64_t>> dim_sets = {{1}, {0, 2}, {-1}, {0, 1, 2}, {}};
  for (const auto& dims : dim_sets)
    for (bool keepdim : {false, true}) {
      INFO("dims " << fmt::format("{}", dims) << " keepdim " << keepdim);
      check_nd(xg::logsumexp(x, dims, keepdim), naive_reduce(nd_of(x), dims, keepdim, fold_lse), 1e-12);
      check_grads("logsumexp", [dims, keepdim](const TensorList& in) { return xg::logsumexp(in[0], dims, keepdim); }, {x});
    }
  check_grads("logsumexp(permuted, {0})", [](const TensorList& in) { return xg::logsumexp(xg::permute(in[0], {2, 0, 1}), {0}); }, {x});
  // large logits: finite and exact
  Tensor big = xg::tensor({1000.0, 0.0}, xg::kFloat64);
  check_values(xg::logsumexp(big, {0}), {1000.0});
  check_values(xg::logsumexp(xg::tensor({1000.0, 1000.0}, xg::kFloat64), {0}), {1000.0 + std::log(2.0)});
  check_values(xg::logsumexp(xg::tensor({-1000.0, -1000.0}, xg::kFloat64), {0}), {-1000.0 + std::log(2.0)});
  check_values(xg::logsumexp(xg::tensor({1000.0f, 0.0f}), {0}), {1000.0}, 1e-6);
  check_values(big.logsumexp({0}), {1000.0});
  // gradient = softmax, finite at large logits
  Tensor g = xg::tensor({1000.0, 0.0, 999.0}, xg::kFloat64).requires_grad_();
  xg::logsumexp(g, {0}).backward();
  const double e = std::exp(-1.0);
  check_values(g.grad(), {1.0 / (1.0 + e), 0.0, e / (1.0 + e)});
}

TEST_CASE("ops: norm for p = 1, 2, 3 and infinity", "[ops]") {
  xg::manual_seed(13);
  Tensor x = distinct({3, 4});  // no zeros, distinct magnitudes (no inf-norm ties)
  for (double p : std::vector<double>{1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
    const std::vector<std::vector<int64_t>> dim_sets = {{}, {1}, {0}, {-1}, {0, 1}};
    for (const auto& dims : dim_sets)
      for (bool keepdim : {false, true}) {
        INFO("p " << p << " dims " << fmt::format("{}", dims) << " keepdim " << keepdim);
        auto fold = [p](const std::vector<double>& g) {
          double acc = 0;
          for (double v : g) acc = std::isinf(p) ? std::max(acc, std::fabs(v)) : acc + std::pow(std::fabs(v), p);
          return std::isinf(p) ? acc : std::pow(acc, 1.0 / p);
        };
        check_nd(xg::norm(x, p, dims, keepdim), naive_reduce(nd_of(x), dims, keepdim, fold), 1e-12);
        check_grads("norm", [p, dims, keepdim](const TensorList& in) { return xg::norm(in[0], p, dims, keepdim); }, {x});
      }
    Tensor xt = distinct({4, 3});
    check_grads("norm(transposed, dim 0)", [p](const TensorList& in) { return xg::norm(xg::transpose(in[0], 0, 1), p, {0}); }, {xt});
  }
  // hand values
  Tensor h = xg::tensor({3.0, -4.0}, xg::kFloat64);
  check_values(xg::norm(h), {5.0});
  check_values(xg::norm(h, 1), {7.0});
  check_values(xg::norm(h, INFINITY), {4.0});
  check_values(xg::norm(h, 3), {std::cbrt(27.0 + 64.0)});
  check_values(h.norm(), {5.0});
  // gradient of the 2-norm at a hand point: x / ||x||
  Tensor g = xg::tensor({3.0, -4.0}, xg::kFloat64).requires_grad_();
  xg::norm(g).backward();
  check_values(g.grad(), {0.6, -0.8});
  // a zero slice has gradient 0 for every p (PyTorch's subgradient), the other slice the usual
  // d||x||_p / dx = x |x|^(p-2) / ||x||_p^(p-1) (sign(x) for p = 1, one-hot of max |x| for inf)
  for (double p : std::vector<double>{1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
    INFO("p " << p);
    Tensor z = xg::tensor({0, 0, 3, -4}, {2, 2}, xg::kFloat64).requires_grad_();
    xg::norm(z, p, {1}).sum().backward();
    std::vector<double> expected = {0, 0};
    if (p == 1) {
      expected.insert(expected.end(), {1.0, -1.0});
    } else if (std::isinf(p)) {
      expected.insert(expected.end(), {0.0, -1.0});
    } else {
      const double n = std::pow(std::pow(3.0, p) + std::pow(4.0, p), 1.0 / p);
      expected.insert(expected.end(), {3.0 * std::pow(3.0, p - 2) / std::pow(n, p - 1), -4.0 * std::pow(4.0, p - 2) / std::pow(n, p - 1)});
    }
    check_values(z.grad(), expected, 1e-12);
    Tensor all_zero = xg::zeros({3}, xg::kFloat64).requires_grad_();
    xg::norm(all_zero, p).backward();
    check_values(all_zero.grad(), {0, 0, 0});
    check_values(xg::norm(xg::zeros({3}, xg::kFloat64), p), {0});
  }
}

TEST_CASE("ops: sum_to reduces a broadcast shape back", "[ops]") {
  xg::manual_seed(14);
  Tensor x = normal({2, 3, 4});
  const std::vector<std::pair<Shape, std::vector<int64_t>>> targets = {
      {{3, 1}, {0, 2}}, {{1, 4}, {0, 1}}, {{4}, {0, 1}}, {{2, 3, 4}, {}}, {{2, 1, 1}, {1, 2}}, {{}, {0, 1, 2}}, {{3, 4}, {0}}};
  for (const auto& [target, summed] : targets) {
    INFO("sum_to " << shape_str(target));
    Tensor y = xg::sum_to(x, target);
    Nd ref = naive_reduce(nd_of(x), summed.empty() ? std::vector<int64_t>{} : summed, true, fold_sum);
    if (summed.empty()) ref = nd_of(x);
    CHECK(y.shape() == target);
    check_values(y, ref.v, 1e-12);
    check_grads("sum_to", [target = target](const TensorList& in) { return xg::sum_to(in[0], target); }, {x});
  }
  check_values(xg::sum_to(xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kFloat64), {1, 3}), {5, 7, 9});
}

// =================================================================================================
// Softmax
// =================================================================================================

TEST_CASE("ops: softmax and log_softmax values, rows sum to 1, gradients", "[ops]") {
  xg::manual_seed(15);
  Tensor x = normal({3, 4});
  const std::vector<double> xv = vals(x);
  for (int64_t dim : {0, 1, -1, -2}) {
    INFO("dim " << dim);
    const int64_t d = dim < 0 ? dim + 2 : dim;
    Nd sums = naive_reduce(nd_of(x), {d}, true, [](const std::vector<double>& g) {
      double s = 0;
      for (double v : g) s += std::exp(v);
      return s;
    });
    std::vector<double> expected, expected_log;
    for (int64_t i = 0; i < 12; ++i) {
      const double total = sums.v[static_cast<size_t>(reduced_slot(i, {3, 4}, {d}))];
      expected.push_back(std::exp(xv[static_cast<size_t>(i)]) / total);
      expected_log.push_back(xv[static_cast<size_t>(i)] - std::log(total));
    }
    Tensor s = xg::softmax(x, dim);
    check_values(s, expected, 1e-12);
    check_values(xg::log_softmax(x, dim), expected_log, 1e-12);
    // slices along dim sum to 1
    check_values(xg::sum(s, {dim}), std::vector<double>(d == 0 ? 4 : 3, 1.0), 1e-12);
    check_grads("softmax", [dim](const TensorList& in) { return xg::softmax(in[0], dim); }, {x});
    check_grads("log_softmax", [dim](const TensorList& in) { return xg::log_softmax(in[0], dim); }, {x});
  }
  check_values(x.softmax(1), vals(xg::softmax(x, 1)));
  check_values(x.log_softmax(1), vals(xg::log_softmax(x, 1)));
  Tensor xt = normal({4, 3});
  check_grads("softmax(transposed, 1)", [](const TensorList& in) { return xg::softmax(xg::transpose(in[0], 0, 1), 1); }, {xt});
  check_grads("log_softmax(transposed, 0)", [](const TensorList& in) { return xg::log_softmax(xg::transpose(in[0], 0, 1), 0); }, {xt});
  Tensor x3 = normal({2, 3, 2});
  check_grads("softmax 3-D middle dim", [](const TensorList& in) { return xg::softmax(in[0], 1); }, {x3});
  check_grads("log_softmax 3-D middle dim", [](const TensorList& in) { return xg::log_softmax(in[0], 1); }, {x3});
}

TEST_CASE("ops: softmax, log_softmax and logsumexp are finite and exact at logits of +-1000", "[ops]") {
  Tensor a = xg::tensor({1000.0, 0.0}, xg::kFloat64);
  check_values(xg::softmax(a, 0), {1.0, 0.0});
  check_values(xg::log_softmax(a, 0), {0.0, -1000.0});
  check_values(xg::log_softmax(xg::tensor({-1000.0, 1000.0}, xg::kFloat64), 0), {-2000.0, 0.0});
  check_values(xg::softmax(xg::tensor({1000.0, 1000.0}, xg::kFloat64), 0), {0.5, 0.5});
  check_values(xg::softmax(xg::tensor({-1000.0, -1000.0}, xg::kFloat64), 0), {0.5, 0.5});
  check_values(xg::log_softmax(xg::tensor({-1000.0, -1000.0}, xg::kFloat64), 0), {-std::log(2.0), -std::log(2.0)});
  // float32
  check_values(xg::softmax(xg::tensor({1000.0, 0.0}), 0), {1.0, 0.0}, 1e-6);
  check_values(xg::log_softmax(xg::tensor({1000.0, 0.0}), 0), {0.0, -1000.0}, 1e-6);
  // rows of a [2, 3] with huge logits
  Tensor b = xg::tensor({1000, 999, -1000, -1000, -999, -998}, {2, 3}, xg::kFloat64);
  const double z1 = 1 + std::exp(-1.0), z2 = std::exp(-2.0) + std::exp(-1.0) + 1;
  check_values(xg::softmax(b, 1), {1 / z1, std::exp(-1.0) / z1, 0.0, std::exp(-2.0) / z2, std::exp(-1.0) / z2, 1 / z2});
  check_values(xg::log_softmax(b, 1), {-std::log(z1), -1 - std::log(z1), -2000 - std::log(z1), -2 - std::log(z2), -1 - std::log(z2), -std::log(z2)});
  // gradients are finite there
  Tensor g = xg::tensor({1000.0, 0.0, -1000.0}, xg::kFloat64).requires_grad_();
  (xg::log_softmax(g, 0) * xg::tensor({1.0, 2.0, 3.0}, xg::kFloat64)).sum().backward();
  // d/dx_j sum_i w_i (x_i - lse) = w_j - softmax_j * sum(w) = {1 - 6, 2, 3}
  check_values(g.grad(), {-5.0, 2.0, 3.0});
  Tensor h = xg::tensor({1000.0, 0.0}, xg::kFloat64).requires_grad_();
  (xg::softmax(h, 0) * xg::tensor({1.0, 2.0}, xg::kFloat64)).sum().backward();
  check_values(h.grad(), {0.0, 0.0});
}

// =================================================================================================
// Linear algebra
// =================================================================================================

TEST_CASE("ops: matmul in every PyTorch rank combination matches a triple loop", "[ops]") {
  xg::manual_seed(16);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}},                // 1-D . 1-D = dot
      {{2, 3}, {3, 4}},          // mm
      {{3}, {3, 2}},             // 1-D . 2-D
      {{2, 3}, {3}},             // 2-D . 1-D
      {{2, 2, 3}, {3, 2}},       // 3-D . 2-D
      {{2, 2, 3}, {3}},          // 3-D . 1-D
      {{2, 3}, {2, 3, 2}},       // 2-D . 3-D
      {{3}, {2, 3, 2}},          // 1-D . 3-D
      {{2, 2, 3}, {2, 3, 2}},    // bmm
      {{2, 1, 3, 4}, {5, 4, 2}}, // broadcast batch
      {{1, 2, 3}, {2, 1, 3, 2}}, // broadcast batch, other way round
  };
  for (const auto& [sa, sb] : shapes) {
    INFO("matmul " << shape_str(sa) << " x " << shape_str(sb));
    Tensor a = normal(sa), b = normal(sb);
    check_nd(xg::matmul(a, b), naive_matmul(nd_of(a), nd_of(b)), 1e-12);
    check_nd(a.matmul(b), naive_matmul(nd_of(a), nd_of(b)), 1e-12);
    check_grads("matmul", [](const TensorList& in) { return xg::matmul(in[0], in[1]); }, {a, b});
  }
  // hand value
  Tensor p = xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64), q = xg::tensor({5, 6, 7, 8}, {2, 2}, xg::kFloat64);
  check_values(xg::matmul(p, q), {19, 22, 43, 50});
  check_values(xg::matmul(xg::tensor({1, 2}, xg::kFloat64), q), {19, 22});
  check_values(xg::matmul(p, xg::tensor({1, 1}, xg::kFloat64)), {3, 7});
  // float32 path
  check_values(xg::matmul(xg::tensor({1, 2, 3, 4}, {2, 2}), xg::tensor({5, 6, 7, 8}, {2, 2})), {19, 22, 43, 50}, 1e-6);
  // transposed / permuted leaves as operands
  Tensor at = normal({3, 2}), bt = normal({4, 3});
  check_nd(xg::matmul(xg::transpose(at, 0, 1), xg::transpose(bt, 0, 1)),
           naive_matmul(naive_permute(nd_of(at), {1, 0}), naive_permute(nd_of(bt), {1, 0})), 1e-12);
  check_grads("matmul(a^T, b^T)", [](const TensorList& in) { return xg::matmul(xg::transpose(in[0], 0, 1), xg::transpose(in[1], 0, 1)); },
              {at, bt});
  Tensor pa = normal({3, 2, 2});
  Tensor pb = normal({3, 2});
  check_grads("matmul(permute(a), b)", [](const TensorList& in) { return xg::matmul(xg::permute(in[0], {1, 2, 0}), in[1]); }, {pa, pb});
  // x^T x with the same leaf twice
  check_grads("matmul(x^T, x)", [](const TensorList& in) { return xg::matmul(xg::t(in[0]), in[0]); }, {normal({3, 2})});
}

TEST_CASE("ops: mm, bmm, dot, t, transpose", "[ops]") {
  xg::manual_seed(17);
  Tensor a = normal({2, 3}), b = normal({3, 4});
  check_nd(xg::mm(a, b), naive_matmul(nd_of(a), nd_of(b)), 1e-12);
  check_nd(a.mm(b), naive_matmul(nd_of(a), nd_of(b)), 1e-12);
  check_grads("mm", [](const TensorList& in) { return xg::mm(in[0], in[1]); }, {a, b});
  Tensor c = normal({2, 2, 3}), d = normal({2, 3, 2});
  check_nd(xg::bmm(c, d), naive_matmul(nd_of(c), nd_of(d)), 1e-12);
  check_nd(c.bmm(d), naive_matmul(nd_of(c), nd_of(d)), 1e-12);
  check_grads("bmm", [](const TensorList& in) { return xg::bmm(in[0], in[1]); }, {c, d});
  check_grads("bmm(permuted lhs)", [](const TensorList& in) { return xg::bmm(xg::permute(in[0], {0, 2, 1}), in[1]); },
              {normal({2, 3, 2}), normal({2, 3, 2})});
  Tensor u = normal({4}), v = normal({4});
  {
    double acc = 0;
    for (int i = 0; i < 4; ++i) acc += vals(u)[i] * vals(v)[i];
    check_values(xg::dot(u, v), {acc}, 1e-12);
    check_values(u.dot(v), {acc}, 1e-12);
    CHECK(xg::dot(u, v).dim() == 0);
  }
  check_values(xg::dot(xg::tensor({1, 2, 3}, xg::kFloat64), xg::tensor({4, 5, 6}, xg::kFloat64)), {32});
  check_grads("dot", [](const TensorList& in) { return xg::dot(in[0], in[1]); }, {u, v});
  check_grads("dot(x, x)", [](const TensorList& in) { return xg::dot(in[0], in[0]); }, {u});
  // t
  Tensor m = xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kFloat64);
  CHECK(xg::t(m).shape() == Shape{3, 2});
  check_values(xg::t(m), {1, 4, 2, 5, 3, 6});
  check_values(m.t(), {1, 4, 2, 5, 3, 6});
  CHECK(xg::t(xg::tensor({1, 2, 3}, xg::kFloat64)).shape() == Shape{3});
  check_grads("t", [](const TensorList& in) { return xg::t(in[0]); }, {a});
  check_grads("t of 1-D", [](const TensorList& in) { return xg::mul(xg::t(in[0]), 2.0); }, {u});
  // transpose
  Tensor x = normal({2, 3, 4});
  for (auto [d0, d1] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {0, 2}, {1, 2}, {-1, 0}, {2, 2}}) {
    INFO("transpose " << d0 << " " << d1);
    std::vector<int64_t> perm = {0, 1, 2};
    std::swap(perm[static_cast<size_t>(d0 < 0 ? d0 + 3 : d0)], perm[static_cast<size_t>(d1 < 0 ? d1 + 3 : d1)]);
    check_nd(xg::transpose(x, d0, d1), naive_permute(nd_of(x), perm));
    check_nd(x.transpose(d0, d1), naive_permute(nd_of(x), perm));
    check_grads("transpose", [d0 = d0, d1 = d1](const TensorList& in) { return xg::transpose(in[0], d0, d1); }, {x});
  }
}

TEST_CASE("ops: linear with and without bias, 1-D/2-D/3-D input", "[ops]") {
  xg::manual_seed(18);
  Tensor w = normal({2, 3}), b = normal({2});
  const std::vector<Shape> input_shapes = {{4, 3}, {2, 2, 3}, {3}};
  for (const Shape& sx : input_shapes) {
    INFO("linear input " << shape_str(sx));
    Tensor x = normal(sx);
    Nd wt = naive_permute(nd_of(w), {1, 0});
    Nd ref = naive_matmul(nd_of(x), wt);
    check_nd(xg::linear(x, w), ref, 1e-12);
    Nd ref_b = naive_binary(ref, nd_of(b), [](double p, double q) { return p + q; });
    check_nd(xg::linear(x, w, b), ref_b, 1e-12);
    check_grads("linear with bias", [](const TensorList& in) { return xg::linear(in[0], in[1], in[2]); }, {x, w, b});
    check_grads("linear without bias", [](const TensorList& in) { return xg::linear(in[0], in[1]); }, {x, w});
  }
  // hand value
  Tensor hx = xg::tensor({1, 2, 3}, {1, 3}, xg::kFloat64);
  Tensor hw = xg::tensor({1, 0, -1, 2, 1, 0}, {2, 3}, xg::kFloat64);
  check_values(xg::linear(hx, hw, xg::tensor({10, 20}, xg::kFloat64)), {8, 24});
  // transposed input and transposed weight leaves; bias only needing grad
  Tensor xt = normal({3, 4}), wt = normal({3, 2});
  check_grads("linear(x^T, w^T, b)", [](const TensorList& in) { return xg::linear(xg::transpose(in[0], 0, 1), xg::transpose(in[1], 0, 1), in[2]); },
              {xt, wt, b});
  Tensor fixed_x = xg::randn({4, 3}, xg::kFloat64), fixed_w = xg::randn({2, 3}, xg::kFloat64);
  check_grads("linear, only bias requires grad", [fixed_x, fixed_w](const TensorList& in) { return xg::linear(fixed_x, fixed_w, in[0]); }, {b});
}

TEST_CASE("ops: gemm with all four transpose flag combinations, 2-D and batched", "[ops]") {
  xg::manual_seed(19);
  const int64_t m = 2, k = 3, n = 4;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool batched : {false, true}) {
        INFO("ta " << ta << " tb " << tb << " batched " << batched);
        Shape sa = ta ? Shape{k, m} : Shape{m, k};
        Shape sb = tb ? Shape{n, k} : Shape{k, n};
        const int64_t batch = batched ? 2 : 1;
        if (batched) {
          sa.insert(sa.begin(), batch);
          sb.insert(sb.begin(), batch);
        }
        Tensor a = normal(sa), b = normal(sb);
        const std::vector<double> av = vals(a), bv = vals(b);
        std::vector<double> expected;
        for (int64_t p = 0; p < batch; ++p)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              double acc = 0;
              for (int64_t l = 0; l < k; ++l) {
                const double x = ta ? av[static_cast<size_t>(p * m * k + l * m + i)] : av[static_cast<size_t>(p * m * k + i * k + l)];
                const double y = tb ? bv[static_cast<size_t>(p * k * n + j * k + l)] : bv[static_cast<size_t>(p * k * n + l * n + j)];
                acc += x * y;
              }
              expected.push_back(acc);
            }
        Tensor c = xg::gemm(a, b, ta, tb);
        CHECK(c.shape() == (batched ? Shape{batch, m, n} : Shape{m, n}));
        check_values(c, expected, 1e-12);
        check_grads("gemm", [ta = ta, tb = tb](const TensorList& in) { return xg::gemm(in[0], in[1], ta, tb); }, {a, b});
      }
  // gemm(x, x, true, false) = x^T x with one leaf used twice
  check_grads("gemm(x, x, T, N)", [](const TensorList& in) { return xg::gemm(in[0], in[0], true, false); }, {normal({3, 2})});
  check_grads("gemm(x, x, N, T)", [](const TensorList& in) { return xg::gemm(in[0], in[0], false, true); }, {normal({3, 2})});
}

// =================================================================================================
// Shape and indexing ops
// =================================================================================================

TEST_CASE("ops: clone, reshape, view, flatten", "[ops]") {
  xg::manual_seed(20);
  Tensor x = normal({2, 3, 2});
  const std::vector<double> xv = vals(x);
  // clone: same values, own storage
  Tensor c = xg::clone(x);
  check_values(c, xv);
  {
    xg::NoGradGuard guard;
    Tensor c2 = x.clone();
    c2.add_(1.0);
    check_values(x, xv);
  }
  check_grads("clone", [](const TensorList& in) { return xg::clone(in[0]); }, {x});
  check_grads("x.clone()", [](const TensorList& in) { return in[0].clone(); }, {x});
  for (const Shape& target : std::vector<Shape>{{3, 4}, {3, -1}, {-1}, {12}, {2, 1, 6}, {-1, 2, 3}}) {
    INFO("reshape to " << shape_str(target));
    Tensor r = xg::reshape(x, target);
    CHECK(r.numel() == 12);
    check_values(r, xv);  // row-major order preserved
    check_values(xg::view(x, target), xv);
    check_values(x.view(target), xv);
    check_values(x.reshape(target), xv);
    check_grads("reshape", [target](const TensorList& in) { return xg::reshape(in[0], target); }, {x});
    // view of a non-contiguous input is an error unless its strides allow it (checked in test_views.cpp),
    // so view gets the contiguous gradient checks only.
    CHECK(ag::gradcheck([target](const TensorList& in) { return xg::view(in[0], target); }, {x}));
    CHECK(ag::gradgradcheck([target](const TensorList& in) { return xg::view(in[0], target); }, {x}));
  }
  CHECK(xg::reshape(x, {3, -1}).shape() == Shape{3, 4});
  CHECK(xg::reshape(x, {-1, 2, 3}).shape() == Shape{2, 2, 3});
  CHECK(xg::reshape(xg::scalar_tensor(2.0), {1, 1}).shape() == Shape{1, 1});
  // reshape of a transposed leaf: the transposed order, not the storage order
  Tensor m = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(xg::reshape(xg::transpose(m, 0, 1), {-1}), {1, 4, 2, 5, 3, 6});
  check_grads("reshape(transposed)", [](const TensorList& in) { return xg::mul(xg::reshape(xg::transpose(in[0], 0, 1), {-1}), xg::tensor({1, 2, 3, 4, 5, 6}, xg::kFloat64)); }, {m});
  // flatten
  CHECK(xg::flatten(x).shape() == Shape{12});
  CHECK(xg::flatten(x, 1).shape() == Shape{2, 6});
  CHECK(xg::flatten(x, 0, 1).shape() == Shape{6, 2});
  CHECK(xg::flatten(x, -2, -1).shape() == Shape{2, 6});
  CHECK(x.flatten(1).shape() == Shape{2, 6});
  CHECK(xg::flatten(xg::scalar_tensor(1.0)).shape() == Shape{1});
  check_values(xg::flatten(x, 1), xv);
  check_grads("flatten(1)", [](const TensorList& in) { return xg::flatten(in[0], 1); }, {x});
  check_grads("flatten(0, 1) of permuted", [](const TensorList& in) { return xg::flatten(xg::permute(in[0], {2, 0, 1}), 0, 1); }, {x});
}

TEST_CASE("ops: squeeze, unsqueeze, permute, expand", "[ops]") {
  xg::manual_seed(21);
  Tensor x = normal({1, 3, 1, 2});
  const std::vector<double> xv = vals(x);
  CHECK(xg::squeeze(x).shape() == Shape{3, 2});
  CHECK(xg::squeeze(x, 2).shape() == Shape{1, 3, 2});
  CHECK(xg::squeeze(x, 0).shape() == Shape{3, 1, 2});
  CHECK(xg::squeeze(x, -2).shape() == Shape{1, 3, 2});
  CHECK(xg::squeeze(x, 1).shape() == Shape{1, 3, 1, 2});  // size 3: unchanged
  CHECK(x.squeeze().shape() == Shape{3, 2});
  CHECK(x.squeeze(0).shape() == Shape{3, 1, 2});
  check_values(xg::squeeze(x), xv);
  check_grads("squeeze()", [](const TensorList& in) { return xg::squeeze(in[0]); }, {x});
  check_grads("squeeze(2)", [](const TensorList& in) { return xg::squeeze(in[0], 2); }, {x});
  check_grads("squeeze(1) no-op", [](const TensorList& in) { return xg::squeeze(in[0], 1); }, {x});
  Tensor y = normal({2, 3});
  CHECK(xg::unsqueeze(y, 0).shape() == Shape{1, 2, 3});
  CHECK(xg::unsqueeze(y, 1).shape() == Shape{2, 1, 3});
  CHECK(xg::unsqueeze(y, 2).shape() == Shape{2, 3, 1});
  CHECK(xg::unsqueeze(y, -1).shape() == Shape{2, 3, 1});
  CHECK(xg::unsqueeze(y, -3).shape() == Shape{1, 2, 3});
  CHECK(y.unsqueeze(1).shape() == Shape{2, 1, 3});
  check_values(xg::unsqueeze(y, 1), vals(y));
  check_grads("unsqueeze(-1)", [](const TensorList& in) { return xg::unsqueeze(in[0], -1); }, {y});
  check_grads("unsqueeze(1) of transposed", [](const TensorList& in) { return xg::unsqueeze(xg::transpose(in[0], 0, 1), 1); }, {y});
  // permute
  Tensor z = normal({2, 3, 4});
  for (const std::vector<int64_t>& perm : std::vector<std::vector<int64_t>>{{2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {0, 1, 2}, {-1, 0, 1}}) {
    INFO("permute " << fmt::format("{}", perm));
    std::vector<int64_t> p = perm;
    for (auto& d : p) d = d < 0 ? d + 3 : d;
    check_nd(xg::permute(z, perm), naive_permute(nd_of(z), p));
    check_nd(z.permute(perm), naive_permute(nd_of(z), p));
    check_grads("permute", [perm](const TensorList& in) { return xg::permute(in[0], perm); }, {z});
  }
  check_values(xg::permute(xg::tensor({1, 2, 3, 4, 5, 6}, {1, 2, 3}, xg::kFloat64), {2, 0, 1}), {1, 4, 2, 5, 3, 6});
  // expand
  Tensor e = normal({3, 1});
  const std::vector<double> ev = vals(e);
  Tensor ex = xg::expand(e, {2, 3, 4});
  CHECK(ex.shape() == Shape{2, 3, 4});
  {
    std::vector<double> expected;
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) expected.push_back(ev[static_cast<size_t>(i)]);
    check_values(ex, expected);
  }
  CHECK(xg::expand(e, {-1, 5}).shape() == Shape{3, 5});
  CHECK(xg::expand(e, {2, -1, 4}).shape() == Shape{2, 3, 4});
  CHECK(e.expand({3, 2}).shape() == Shape{3, 2});
  CHECK(e.expand_as(xg::zeros({3, 6})).shape() == Shape{3, 6});
  CHECK(xg::broadcast_to(e, {3, 2}).shape() == Shape{3, 2});
  check_grads("expand", [](const TensorList& in) { return xg::expand(in[0], {2, 3, 4}); }, {e});
  check_grads("expand(-1, 5)", [](const TensorList& in) { return xg::expand(in[0], {-1, 5}); }, {e});
  check_grads("broadcast_to", [](const TensorList& in) { return xg::broadcast_to(in[0], {2, 3, 2}); }, {e});
  Tensor s = normal({});
  check_grads("expand 0-D", [](const TensorList& in) { return xg::expand(in[0], {2, 2}); }, {s});
  Tensor et = normal({1, 3});
  check_grads("expand(transposed)", [](const TensorList& in) { return xg::expand(xg::transpose(in[0], 0, 1), {2, 3, 4}); }, {et});
}

TEST_CASE("ops: narrow and slice (step, negative start)", "[ops]") {
  xg::manual_seed(22);
  Tensor h = xg::tensor({0, 1, 2, 3, 4, 10, 11, 12, 13, 14}, {2, 5}, xg::kFloat64);
  check_values(xg::narrow(h, 1, 1, 3), {1, 2, 3, 11, 12, 13});
  CHECK(xg::narrow(h, 1, 1, 3).shape() == Shape{2, 3});
  check_values(h.narrow(0, 1, 1), {10, 11, 12, 13, 14});
  check_values(xg::narrow(h, -1, -2, 2), {3, 4, 13, 14});
  check_values(xg::slice(h, 1, 0, std::nullopt, 2), {0, 2, 4, 10, 12, 14});
  check_values(xg::slice(h, 1, -4, std::nullopt, 2), {1, 3, 11, 13});
  check_values(xg::slice(h, 1, 1, -1), {1, 2, 3, 11, 12, 13});
  check_values(xg::slice(h, 1, -3), {2, 3, 4, 12, 13, 14});
  check_values(xg::slice(h, 1, 1, 100, 3), {1, 4, 11, 14});
  check_values(xg::slice(h, 0, -1), {10, 11, 12, 13, 14});
  CHECK(xg::slice(h, 1, 3, 2).shape() == Shape{2, 0});
  CHECK(xg::slice(h, 1, -100, 2).shape() == Shape{2, 2});

  Tensor x = normal({3, 5});
  check_grads("narrow(1, 1, 3)", [](const TensorList& in) { return xg::narrow(in[0], 1, 1, 3); }, {x});
  check_grads("narrow(0, -2, 2)", [](const TensorList& in) { return xg::narrow(in[0], 0, -2, 2); }, {x});
  check_grads("slice(1, -4, end, 2)", [](const TensorList& in) { return xg::slice(in[0], 1, -4, std::nullopt, 2); }, {x});
  check_grads("slice(1, 0, end, 3)", [](const TensorList& in) { return xg::slice(in[0], 1, 0, std::nullopt, 3); }, {x});
  check_grads("slice(0, 1, -1)", [](const TensorList& in) { return xg::slice(in[0], 0, 1, -1); }, {x});
  check_grads("slice(0, start, end, 2)", [](const TensorList& in) { return xg::slice(in[0], 0, std::nullopt, std::nullopt, 2); }, {x});
  Tensor xt = normal({5, 3});
  check_grads("slice(transposed, 1, -4, end, 2)",
              [](const TensorList& in) { return xg::slice(xg::transpose(in[0], 0, 1), 1, -4, std::nullopt, 2); }, {xt});
  check_grads("narrow(transposed)", [](const TensorList& in) { return xg::narrow(xg::transpose(in[0], 0, 1), 1, 2, 2); }, {xt});
  // gradient placement by hand: slice(step 2) of [5] puts ones at 0, 2, 4
  Tensor g = xg::zeros({5}, xg::kFloat64).requires_grad_();
  xg::slice(g, 0, 0, std::nullopt, 2).sum().backward();
  check_values(g.grad(), {1, 0, 1, 0, 1});
}

TEST_CASE("ops: cat and stack", "[ops]") {
  xg::manual_seed(23);
  Tensor p = xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64), q = xg::tensor({5, 6}, {1, 2}, xg::kFloat64);
  check_values(xg::cat({p, q}, 0), {1, 2, 3, 4, 5, 6});
  CHECK(xg::cat({p, q}, 0).shape() == Shape{3, 2});
  Tensor r = xg::tensor({7, 8}, {2, 1}, xg::kFloat64);
  check_values(xg::cat({p, r}, 1), {1, 2, 7, 3, 4, 8});
  check_values(xg::cat({p, r}, -1), {1, 2, 7, 3, 4, 8});
  check_values(xg::stack({xg::tensor({1, 2}, xg::kFloat64), xg::tensor({3, 4}, xg::kFloat64)}, 0), {1, 2, 3, 4});
  check_values(xg::stack({xg::tensor({1, 2}, xg::kFloat64), xg::tensor({3, 4}, xg::kFloat64)}, 1), {1, 3, 2, 4});
  CHECK(xg::stack({p, p, p}, 1).shape() == Shape{2, 3, 2});
  CHECK(xg::stack({p, p, p}, -1).shape() == Shape{2, 2, 3});

  Tensor a = normal({2, 3}), b = normal({1, 3}), c = normal({3, 3});
  check_grads("cat dim 0 of three", [](const TensorList& in) { return xg::cat({in[0], in[1], in[2]}, 0); }, {a, b, c});
  Tensor d = normal({2, 1}), e = normal({2, 2});
  check_grads("cat dim 1", [](const TensorList& in) { return xg::cat({in[0], in[1], in[2]}, 1); }, {a, d, e});
  check_grads("cat with a transposed piece", [](const TensorList& in) { return xg::cat({in[0], xg::transpose(in[1], 0, 1)}, 0); },
              {a, normal({3, 2})});
  check_grads("cat of x with itself", [](const TensorList& in) { return xg::cat({in[0], in[0]}, 1); }, {a});
  Tensor constant = xg::randn({1, 3}, xg::kFloat64);
  check_grads("cat with a constant", [constant](const TensorList& in) { return xg::cat({constant, in[0]}, 0); }, {a});
  Tensor f = normal({2, 3}), g = normal({2, 3});
  for (int64_t dim : {0, 1, 2, -1}) {
    INFO("stack dim " << dim);
    Tensor st = xg::stack({f, g}, dim);
    // naive: stack = element [.., k, ..] from tensor k
    const int64_t dd = dim < 0 ? dim + 3 : dim;
    Shape expected_shape = {2, 3};
    expected_shape.insert(expected_shape.begin() + dd, 2);
    CHECK(st.shape() == expected_shape);
    std::vector<double> expected;
    for (int64_t i = 0; i < 12; ++i) {
      Shape idx = unravel(i, expected_shape);
      const int64_t which = idx[static_cast<size_t>(dd)];
      idx.erase(idx.begin() + dd);
      expected.push_back(vals(which == 0 ? f : g)[static_cast<size_t>(ravel(idx, {2, 3}))]);
    }
    check_values(st, expected);
    check_grads("stack", [dim](const TensorList& in) { return xg::stack({in[0], in[1]}, dim); }, {f, g});
  }
  check_grads("stack of transposed leaves", [](const TensorList& in) { return xg::stack({xg::t(in[0]), in[1]}, 1); },
              {normal({3, 2}), normal({2, 3})});
}

TEST_CASE("ops: split, split_with_sizes, chunk", "[ops]") {
  xg::manual_seed(24);
  Tensor h = xg::tensor({0, 1, 2, 3, 4}, xg::kFloat64);
  TensorList parts = xg::split(h, 2);
  REQUIRE(parts.size() == 3);
  check_values(parts[0], {0, 1});
  check_values(parts[1], {2, 3});
  check_values(parts[2], {4});
  parts = xg::split_with_sizes(h, {1, 3, 1});
  REQUIRE(parts.size() == 3);
  check_values(parts[0], {0});
  check_values(parts[1], {1, 2, 3});
  check_values(parts[2], {4});
  parts = xg::chunk(h, 3);
  REQUIRE(parts.size() == 3);
  check_values(parts[0], {0, 1});
  check_values(parts[1], {2, 3});
  check_values(parts[2], {4});
  parts = xg::chunk(h, 5);
  REQUIRE(parts.size() == 5);
  check_values(parts[4], {4});
  Tensor m = xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kFloat64);
  parts = m.split(2, 1);
  REQUIRE(parts.size() == 2);
  check_values(parts[0], {1, 2, 4, 5});
  check_values(parts[1], {3, 6});
  parts = m.chunk(2, 0);
  REQUIRE(parts.size() == 2);
  check_values(parts[1], {4, 5, 6});

  Tensor x = normal({5, 2});
  check_grads_multi("split(2)", [](const TensorList& in) { return xg::split(in[0], 2); }, {x});
  check_grads_multi("split_with_sizes({1, 3, 1})", [](const TensorList& in) { return xg::split_with_sizes(in[0], {1, 3, 1}); }, {x});
  check_grads_multi("chunk(3)", [](const TensorList& in) { return xg::chunk(in[0], 3); }, {x});
  check_grads_multi("split along dim 1 of a transposed leaf", [](const TensorList& in) { return xg::split(xg::transpose(in[0], 0, 1), 2, 1); },
                    {x});
  check_grads_multi("chunk(2, -1)", [](const TensorList& in) { return xg::chunk(in[0], 2, -1); }, {x});
  // only one piece used downstream
  check_grads("split piece 1 only", [](const TensorList& in) { return xg::mul(xg::split(in[0], 2)[1], 3.0); }, {x});
}

TEST_CASE("ops: index_select, index_add, gather, scatter_add on literal examples and gradients", "[ops]") {
  xg::manual_seed(25);
  Tensor x = xg::tensor({1, 2, 3, 4, 5, 6}, {3, 2}, xg::kFloat64);
  Tensor idx = xg::tensor({2, 0, 2}, {3}, xg::kInt64);
  check_values(xg::index_select(x, 0, idx), {5, 6, 1, 2, 5, 6});
  check_values(x.index_select(0, idx), {5, 6, 1, 2, 5, 6});
  check_values(xg::index_select(x, 1, xg::tensor({1, 1, 0}, {3}, xg::kInt64)), {2, 2, 1, 4, 4, 3, 6, 6, 5});
  CHECK(xg::index_select(x, 1, xg::tensor({1, 1, 0}, {3}, xg::kInt64)).shape() == Shape{3, 3});
  // index_add: out[index[i]] += source[i] (repeated index accumulates)
  Tensor src = xg::tensor({10, 20, 30, 40, 50, 60}, {3, 2}, xg::kFloat64);
  check_values(xg::index_add(x, 0, idx, src), {1 + 30, 2 + 40, 3, 4, 5 + 10 + 50, 6 + 20 + 60});
  check_values(xg::index_add(xg::zeros({2, 3}, xg::kFloat64), 1, xg::tensor({2, 0}, {2}, xg::kInt64), xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64)),
               {2, 0, 1, 4, 0, 3});
  // gather (torch docs example)
  Tensor gx = xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64);
  check_values(xg::gather(gx, 1, xg::tensor({0, 0, 1, 0}, {2, 2}, xg::kInt64)), {1, 1, 4, 3});
  check_values(gx.gather(0, xg::tensor({1, 0, 1, 1}, {2, 2}, xg::kInt64)), {3, 2, 3, 4});
  check_values(xg::gather(gx, 1, xg::tensor({1, 0}, {2, 1}, xg::kInt64)), {2, 3});
  // scatter_add (torch docs example): index smaller than src
  Tensor sc = xg::scatter_add(xg::zeros({3, 5}, xg::kFloat64), 0, xg::tensor({0, 1, 2, 0, 0}, {1, 5}, xg::kInt64), xg::ones({2, 5}, xg::kFloat64));
  check_values(sc, {1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0});
  Tensor sc2 = xg::scatter_add(xg::ones({2, 3}, xg::kFloat64), 1, xg::tensor({2, 2, 0, 1}, {2, 2}, xg::kInt64),
                               xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64));
  check_values(sc2, {1, 1, 1 + 1 + 2, 1 + 3, 1 + 4, 1});

  // gradients
  Tensor a = normal({4, 3});
  Tensor i0 = xg::tensor({3, 0, 3, 1}, {4}, xg::kInt64);
  check_grads("index_select dim 0 (repeated)", [i0](const TensorList& in) { return xg::index_select(in[0], 0, i0); }, {a});
  Tensor i1 = xg::tensor({2, 2, 0}, {3}, xg::kInt64);
  check_grads("index_select dim 1 (repeated)", [i1](const TensorList& in) { return xg::index_select(in[0], 1, i1); }, {a});
  check_grads("index_select of transposed", [i1](const TensorList& in) { return xg::index_select(xg::transpose(in[0], 0, 1), 0, i1); }, {a});
  Tensor s4 = normal({4, 3});
  check_grads("index_add dim 0 (x and source)", [i0](const TensorList& in) { return xg::index_add(in[0], 0, i0, in[1]); }, {a, s4});
  Tensor s3 = normal({4, 3});
  check_grads("index_add dim 1", [i1](const TensorList& in) { return xg::index_add(in[0], 1, i1, in[1]); }, {a, s3});
  Tensor gi = xg::tensor({0, 2, 2, 1, 0, 0}, {2, 3}, xg::kInt64);
  check_grads("gather dim 0 (repeated)", [gi](const TensorList& in) { return xg::gather(in[0], 0, gi); }, {a});
  Tensor gi1 = xg::tensor({2, 0, 1, 1, 0, 0, 2, 2}, {4, 2}, xg::kInt64);
  check_grads("gather dim 1", [gi1](const TensorList& in) { return xg::gather(in[0], 1, gi1); }, {a});
  check_grads("gather of permuted", [gi](const TensorList& in) { return xg::gather(xg::transpose(in[0], 0, 1), 1, gi); }, {normal({4, 3})});
  Tensor sidx = xg::tensor({0, 3, 3, 1, 1, 1}, {2, 3}, xg::kInt64);
  Tensor ssrc = normal({3, 3});  // larger than the index: the extra row gets zero gradient
  check_grads("scatter_add dim 0 (src larger than index)", [sidx](const TensorList& in) { return xg::scatter_add(in[0], 0, sidx, in[1]); },
              {a, ssrc});
  Tensor sidx1 = xg::tensor({2, 2, 0, 1, 0, 1, 2, 2}, {4, 2}, xg::kInt64);
  check_grads("scatter_add dim 1", [sidx1](const TensorList& in) { return xg::scatter_add(in[0], 1, sidx1, in[1]); }, {a, normal({4, 2})});
  // scatter_add gradient to src by hand: src elements outside the index get 0
  Tensor base = xg::zeros({2, 2}, xg::kFloat64).requires_grad_();
  Tensor srcg = xg::zeros({2, 2}, xg::kFloat64).requires_grad_();
  (xg::scatter_add(base, 0, xg::tensor({1, 0}, {1, 2}, xg::kInt64), srcg) * xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kFloat64)).sum().backward();
  check_values(base.grad(), {1, 2, 3, 4});
  check_values(srcg.grad(), {3, 2, 0, 0});
}

TEST_CASE("ops: masked_fill and pad (positive and cropping amounts)", "[ops]") {
  xg::manual_seed(26);
  Tensor x = xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kFloat64);
  Tensor mask = xg::tensor({1, 0, 1}, {3}, xg::kFloat64);
  check_values(xg::masked_fill(x, mask, -1.0), {-1, 2, -1, -1, 5, -1});
  check_values(x.masked_fill(xg::tensor({0, 1}, {2, 1}, xg::kInt64), 9.0), {1, 2, 3, 9, 9, 9});
  Tensor a = normal({2, 3});
  check_grads("masked_fill", [mask](const TensorList& in) { return xg::masked_fill(in[0], mask, 0.5); }, {a});
  Tensor m2 = xg::tensor({1, 0, 0, 1, 1, 0}, {3, 2}, xg::kInt64);
  check_grads("masked_fill of transposed", [m2](const TensorList& in) { return xg::masked_fill(xg::transpose(in[0], 0, 1), m2, -2.0); }, {a});
  // masked elements get zero gradient
  Tensor g = xg::ones({3}, xg::kFloat64).requires_grad_();
  xg::masked_fill(g, mask, 7.0).sum().backward();
  check_values(g.grad(), {0, 1, 0});

  // pad: {left, right} of the last dim first
  Tensor p1 = xg::pad(x, {1, 2});
  CHECK(p1.shape() == Shape{2, 6});
  check_values(p1, {0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0});
  Tensor p2 = xg::pad(x, {0, 1, 1, 0}, 9.0);
  CHECK(p2.shape() == Shape{3, 4});
  check_values(p2, {9, 9, 9, 9, 1, 2, 3, 9, 4, 5, 6, 9});
  Tensor p3 = xg::pad(x, {-1, 0});
  CHECK(p3.shape() == Shape{2, 2});
  check_values(p3, {2, 3, 5, 6});
  Tensor p4 = xg::pad(x, {1, -2, 0, -1});
  CHECK(p4.shape() == Shape{1, 2});
  check_values(p4, {0, 1});
  Tensor p5 = xg::pad(x, {-1, -1, 1, 1}, 5.0);
  CHECK(p5.shape() == Shape{4, 1});
  check_values(p5, {5, 2, 5, 5});
  check_grads("pad positive", [](const TensorList& in) { return xg::pad(in[0], {1, 2}); }, {a});
  check_grads("pad two dims", [](const TensorList& in) { return xg::pad(in[0], {0, 1, 1, 0}, 3.0); }, {a});
  check_grads("pad cropping", [](const TensorList& in) { return xg::pad(in[0], {-1, 0}); }, {a});
  check_grads("pad mixed", [](const TensorList& in) { return xg::pad(in[0], {1, -2, 0, -1}); }, {a});
  check_grads("pad of transposed", [](const TensorList& in) { return xg::pad(xg::transpose(in[0], 0, 1), {2, -1}); }, {a});
}

// =================================================================================================
// Composite graphs: several ops chained, to catch gradients that only go wrong in combination
// =================================================================================================

TEST_CASE("ops: small composite models pass gradcheck and gradgradcheck", "[ops]") {
  xg::manual_seed(27);
  Tensor x = normal({4, 3}), w1 = normal({5, 3}), b1 = normal({5}), w2 = normal({2, 5});
  auto mlp = [](const TensorList& in) {
    Tensor h = xg::tanh(xg::linear(in[0], in[1], in[2]));
    Tensor logits = xg::linear(h, in[3]);
    return xg::mean(xg::neg(xg::sum(xg::log_softmax(logits, 1), {1})));
  };
  check_grads("mlp", mlp, {x, w1, b1, w2});
  auto attention = [](const TensorList& in) {
    Tensor q = in[0], k = in[1];
    Tensor scores = xg::div(xg::matmul(q, xg::transpose(k, -2, -1)), std::sqrt(3.0));
    return xg::matmul(xg::softmax(scores, -1), k);
  };
  check_grads("attention", attention, {normal({2, 2, 3}), normal({2, 3, 3})});
  auto layer_norm = [](const TensorList& in) {
    Tensor mu = xg::mean(in[0], {-1}, true);
    Tensor sd = xg::sqrt(xg::add(xg::var(in[0], {-1}, false, true), 1e-5));
    return xg::div(xg::sub(in[0], mu), sd);
  };
  check_grads("layer norm", layer_norm, {normal({2, 4})});
}

// =================================================================================================
// Non-differentiable helpers, factories, int64
// =================================================================================================

TEST_CASE("ops: one_hot", "[ops]") {
  Tensor oh = xg::one_hot(xg::tensor({0, 2, 1}, {3}, xg::kInt64));
  CHECK(oh.dtype() == xg::kInt64);
  CHECK(oh.shape() == Shape{3, 3});
  check_values(oh, {1, 0, 0, 0, 0, 1, 0, 1, 0});
  Tensor oh4 = xg::one_hot(xg::tensor({1, 3, 0, 0}, {2, 2}, xg::kInt64), 5);
  CHECK(oh4.shape() == Shape{2, 2, 5});
  check_values(oh4, {0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("ops: factories arange, eye, full, zeros, ones, randint, rand, randn, randperm", "[ops]") {
  Tensor r = xg::arange(5);
  CHECK(r.dtype() == xg::kInt64);
  check_values(r, {0, 1, 2, 3, 4});
  check_values(xg::arange(2, 8, 2), {2, 4, 6});
  check_values(xg::arange(1.0, 2.0, 0.25, xg::kFloat64), {1.0, 1.25, 1.5, 1.75});
  check_values(xg::arange(3, 0, -1), {3, 2, 1});
  CHECK(xg::arange(0).numel() == 0);
  Tensor e = xg::eye(3);
  CHECK(e.dtype() == xg::kFloat32);
  check_values(e, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  check_values(xg::eye(2, 3, xg::kFloat64), {1, 0, 0, 0, 1, 0});
  Tensor f = xg::full({2, 2}, 7.5, xg::kFloat64);
  CHECK(f.shape() == Shape{2, 2});
  check_values(f, {7.5, 7.5, 7.5, 7.5});
  check_values(xg::full({3}, 2.9, xg::kInt64), {2, 2, 2});
  check_values(xg::zeros({2, 3}), std::vector<double>(6, 0.0));
  check_values(xg::ones({2, 3}, xg::kInt64), std::vector<double>(6, 1.0));
  CHECK(xg::ones({2, 3}, xg::kInt64).dtype() == xg::kInt64);
  CHECK(xg::zeros({}).dim() == 0);
  CHECK(xg::zeros({0, 3}).numel() == 0);
  check_values(xg::zeros_like(f), std::vector<double>(4, 0.0));
  check_values(xg::ones_like(f), std::vector<double>(4, 1.0));
  check_values(xg::full_like(f, -1.0), std::vector<double>(4, -1.0));
  CHECK(xg::zeros_like(f, xg::kInt64).dtype() == xg::kInt64);
  Tensor o = xg::ones({2}, xg::TensorOptions(xg::kFloat64).requires_grad(true));
  CHECK(o.requires_grad());
  CHECK(o.is_leaf());

  xg::manual_seed(28);
  Tensor ri = xg::randint(3, 7, {2000});
  CHECK(ri.dtype() == xg::kInt64);
  std::set<double> seen;
  for (double v : vals(ri)) {
    CHECK(v >= 3);
    CHECK(v < 7);
    seen.insert(v);
  }
  CHECK(seen == std::set<double>{3, 4, 5, 6});
  Tensor u = xg::rand({2000}, xg::kFloat64);
  double lo = 1, hi = 0, mean = 0;
  for (double v : vals(u)) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    mean += v / 2000;
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(mean == Approx(0.5).margin(0.05));
  Tensor nrm = xg::randn({4000}, xg::kFloat64);
  double m1 = 0, m2 = 0;
  for (double v : vals(nrm)) {
    m1 += v / 4000;
    m2 += v * v / 4000;
  }
  CHECK(m1 == Approx(0.0).margin(0.1));
  CHECK(m2 == Approx(1.0).margin(0.1));
  Tensor perm = xg::randperm(10);
  std::vector<double> pv = vals(perm);
  std::sort(pv.begin(), pv.end());
  check_values(xg::tensor(pv, {10}, xg::kFloat64), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // manual_seed makes the streams reproducible
  xg::manual_seed(99);
  std::vector<double> first = vals(xg::randn({5}));
  xg::manual_seed(99);
  CHECK(vals(xg::randn({5})) == first);
}

TEST_CASE("ops: allclose and equal", "[ops]") {
  Tensor a = xg::tensor({1.0, 2.0, 3.0}, xg::kFloat64);
  CHECK(xg::allclose(a, xg::tensor({1.0, 2.0 + 1e-9, 3.0}, xg::kFloat64)));
  CHECK_FALSE(xg::allclose(a, xg::tensor({1.0, 2.1, 3.0}, xg::kFloat64)));
  CHECK(xg::allclose(a, xg::tensor({1.0, 2.1, 3.0}, xg::kFloat64), 0.1));
  CHECK(xg::allclose(a, xg::tensor({1.0, 2.05, 3.0}, xg::kFloat64), 0.0, 0.06));
  CHECK_FALSE(xg::allclose(a, xg::tensor({1.0, 2.05, 3.0}, xg::kFloat64), 0.0, 0.04));
  CHECK_FALSE(xg::allclose(xg::tensor({NAN}, xg::kFloat64), xg::tensor({NAN}, xg::kFloat64)));
  CHECK(xg::equal(a, xg::tensor({1.0, 2.0, 3.0}, xg::kFloat64)));
  CHECK_FALSE(xg::equal(a, xg::tensor({1.0, 2.0, 3.5}, xg::kFloat64)));
  CHECK_FALSE(xg::equal(a, xg::tensor({1.0, 2.0, 3.0})));  // dtype differs
  CHECK_FALSE(xg::equal(a, xg::tensor({1.0, 2.0, 3.0}, {3, 1}, xg::kFloat64)));
}

TEST_CASE("ops: printing shows values, dtype and autograd state", "[ops]") {
  std::ostringstream out;
  out << xg::tensor({1.5, -2.0});
  CHECK_THAT(out.str(), Catch::Contains("1.5000") && Catch::Contains("-2.0000"));
  std::ostringstream out2;
  out2 << xg::tensor({1, 2, 3, 4}, {2, 2}, xg::kInt64);
  CHECK_THAT(out2.str(), Catch::Contains("1") && Catch::Contains("4") && Catch::Contains("int64"));
  std::ostringstream out3;
  Tensor x = xg::tensor({0.25}, xg::kFloat64).requires_grad_();
  out3 << x * 2.0;
  CHECK_THAT(out3.str(), Catch::Contains("0.5000") && Catch::Contains("float64") && Catch::Contains("MulBackward"));
  CHECK_THAT(x.toString(), Catch::Contains("requires_grad"));
  CHECK_THAT(fmt::format("{}", xg::tensor({3.0})), Catch::Contains("3.0000"));
  CHECK(xg::shape_string({2, 3}) == "[2, 3]");
}

TEST_CASE("ops: int64 arithmetic, reductions and comparisons; int64 cannot require grad", "[ops]") {
  Tensor a = xg::tensor({1, 2, 3}, {3}, xg::kInt64), b = xg::tensor({10, 20, 30}, {3}, xg::kInt64);
  Tensor s = xg::add(a, b);
  CHECK(s.dtype() == xg::kInt64);
  check_values(s, {11, 22, 33});
  check_values(a + b, {11, 22, 33});
  check_values(xg::mul(a, b), {10, 40, 90});
  check_values(b - a, {9, 18, 27});
  check_values(xg::sub(b, a), {9, 18, 27});
  // int64 arithmetic stays exact beyond 2^53 (no round trip through double)
  Tensor huge = xg::zeros({2}, xg::kInt64);
  huge.data_ptr<int64_t>()[0] = (int64_t{1} << 53) + 1;
  huge.data_ptr<int64_t>()[1] = -((int64_t{1} << 60) + 3);
  Tensor zero = xg::zeros({2}, xg::kInt64), one = xg::ones({2}, xg::kInt64);
  CHECK(xg::sub(huge, zero).data_ptr<int64_t>()[0] == (int64_t{1} << 53) + 1);
  CHECK((huge - one).data_ptr<int64_t>()[1] == -((int64_t{1} << 60) + 4));
  CHECK(xg::add(huge, one).data_ptr<int64_t>()[0] == (int64_t{1} << 53) + 2);
  CHECK(xg::mul(huge, one).data_ptr<int64_t>()[1] == -((int64_t{1} << 60) + 3));
  CHECK(xg::sum(huge).data_ptr<int64_t>()[0] == (int64_t{1} << 53) + 1 - ((int64_t{1} << 60) + 3));
  check_values(xg::add(a, 5.0), {6, 7, 8});
  check_values(xg::mul(a, 3.0), {3, 6, 9});
  check_values(xg::neg(a), {-1, -2, -3});
  check_values(xg::abs(xg::tensor({-4, 5}, {2}, xg::kInt64)), {4, 5});
  Tensor big = xg::tensor({4000000000.0, 3000000000.0}, {2}, xg::kInt64);
  check_values(xg::sum(big), {7000000000.0});  // beyond int32
  CHECK(xg::sum(a).dtype() == xg::kInt64);
  check_values(xg::sum(xg::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, xg::kInt64), {1}), {6, 15});
  check_values(xg::add(xg::tensor({1, 2}, {2, 1}, xg::kInt64), a), {2, 3, 4, 3, 4, 5});  // broadcasting
  check_values(xg::eq(a, xg::tensor({1, 0, 3}, {3}, xg::kInt64)), {1, 0, 1});
  check_values(xg::gt(b, xg::tensor({15, 15, 35}, {3}, xg::kInt64)), {0, 1, 0});
  check_values(a >= 2.0, {0, 1, 1});
  CHECK((a >= 2.0).dtype() == xg::kInt64);
  check_values(std::get<0>(xg::max(b, 0)), {30});
  check_values(xg::max(b), {30});
  check_values(xg::min(b), {10});
  check_values(xg::reshape(a, {3, 1}), {1, 2, 3});
  check_values(xg::cat({a, b}), {1, 2, 3, 10, 20, 30});
  // no float-only ops silently accepted... and no gradients for int64
  CHECK_THROWS_AS(a.requires_grad_(), xg::Error);
  CHECK_THROWS_AS(xg::tensor({1, 2}, {2}, xg::TensorOptions(xg::kInt64).requires_grad(true)), xg::Error);
  CHECK_NOTHROW(a.requires_grad_(false));
  CHECK_FALSE(a.requires_grad());
}

// =================================================================================================
// Rearranging and combining: flip, roll, repeat, tile, tril, triu, outer, trace, lerp, cumsum,
// linspace, logspace. Expected values are written out by hand from the definitions.
// =================================================================================================

TEST_CASE("ops: flip and roll", "[ops][compose]") {
  const Tensor x = make({0, 1, 2, 3, 4, 5}, {2, 3});
  check_values(xg::flip(x, {0}), {3, 4, 5, 0, 1, 2});
  check_values(x.flip({0, 1}), {5, 4, 3, 2, 1, 0});
  check_values(x.flip(-1), {2, 1, 0, 5, 4, 3});
  Tensor same = x.flip({});
  check_values(same, vals(x));
  CHECK(same.data_ptr<double>() != x.data_ptr<double>());  // a copy even with nothing to flip
  CHECK_THROWS_WITH(x.flip({0, -2}), Contains("flip") && Contains("multiple times"));
  CHECK_THROWS_WITH(x.flip(2), Contains("flip") && Contains("dimension out of range"));

  const Tensor v = make({0, 1, 2, 3, 4}, {5});
  check_values(xg::roll(v, 2), {3, 4, 0, 1, 2});
  check_values(v.roll(-1), {1, 2, 3, 4, 0});
  check_values(v.roll(7), {3, 4, 0, 1, 2});  // 7 mod 5
  check_values(make({0, 1, 2, 3}, {2, 2}).roll(1), {3, 0, 1, 2});  // no dims: the flattened tensor
  check_values(x.roll({1, 1}, {0, 1}), {5, 3, 4, 2, 0, 1});
  CHECK(x.roll(1).shape() == Shape{2, 3});
  CHECK_THROWS_WITH(x.roll({1, 2}, {0}), Contains("roll") && Contains("2 shifts and 1 dims"));
  CHECK_THROWS_WITH(x.roll({1, 2}), Contains("roll") && Contains("one shift"));

  xg::manual_seed(41);
  check_grads("flip", [](const TensorList& in) { return xg::flip(in[0], {0, 2}); }, {normal({2, 3, 4})});
  check_grads("roll", [](const TensorList& in) { return xg::roll(in[0], {1, -2}, {1, 2}); }, {normal({2, 3, 4})});
  check_grads("roll flattened", [](const TensorList& in) { return xg::roll(in[0], 5); }, {normal({2, 3})});
}

TEST_CASE("ops: repeat and tile", "[ops][compose]") {
  const Tensor v = make({1, 2}, {2});
  Tensor r = v.repeat({2, 2});
  CHECK(r.shape() == Shape{2, 4});
  check_values(r, {1, 2, 1, 2, 1, 2, 1, 2});
  check_values(make({1, 2}, {2, 1}).repeat({1, 3}), {1, 1, 1, 2, 2, 2});
  const Tensor x = make({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r3 = x.repeat({2, 1, 2});
  CHECK(r3.shape() == Shape{2, 2, 6});
  check_values(r3, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  CHECK(x.repeat({0, 2}).shape() == Shape{0, 6});
  CHECK_THROWS_WITH(x.repeat(2), Contains("repeat") && Contains("can not be smaller"));
  CHECK_THROWS_WITH(x.repeat({1, -1}), Contains("repeat") && Contains("non-negative"));
  Tensor t = x.tile(2);  // fewer reps than dims: {1, 2}
  CHECK(t.shape() == Shape{2, 6});
  check_values(t, {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  CHECK(xg::tile(v, {3, 1}).shape() == Shape{3, 2});
  // Always a tensor of its own, even where a view would do (repeats of 1; a stride-0 layout).
  Tensor own = x.repeat({1, 1});
  CHECK(!own.is_alias_of(x));
  own.add_(1);
  check_values(x, {0, 1, 2, 3, 4, 5});
  Tensor rows = make({1, 2, 3}, {3}).repeat({2, 1});
  rows.add_(1);  // no internal overlap
  check_values(rows, {2, 3, 4, 2, 3, 4});

  xg::manual_seed(42);
  check_grads("repeat", [](const TensorList& in) { return xg::repeat(in[0], {2, 1, 3}); }, {normal({2, 3})});
  check_grads("tile", [](const TensorList& in) { return xg::tile(in[0], {2}); }, {normal({3, 2})});
}

TEST_CASE("ops: tril, triu, outer, trace", "[ops][compose]") {
  const Tensor m = make({0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3});
  check_values(xg::tril(m), {0, 0, 0, 3, 4, 0, 6, 7, 8});
  check_values(m.tril(-1), {0, 0, 0, 3, 0, 0, 6, 7, 0});
  check_values(m.triu(), {0, 1, 2, 0, 4, 5, 0, 0, 8});
  check_values(m.triu(1), {0, 1, 2, 0, 0, 5, 0, 0, 0});
  check_values(make({1, 2, 3, 4, 5, 6}, {2, 3}).tril(1), {1, 2, 0, 4, 5, 6});
  const double inf = std::numeric_limits<double>::infinity();
  check_values(make({1, inf, 3, 2}, {2, 2}).tril(), {1, 0, 3, 2});  // set to 0, not multiplied (inf * 0 is NaN)
  check_values(make({1, 2, std::nan(""), 4}, {2, 2}).triu(), {1, 2, 0, 4});
  CHECK(xg::triu(make({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})).shape() == Shape{2, 2, 2});
  check_values(xg::triu(make({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})), {1, 2, 0, 4, 5, 6, 0, 8});
  CHECK_THROWS_WITH(make({1, 2}, {2}).tril(), Contains("tril") && Contains("at least 2 dimensions"));

  Tensor o = xg::outer(make({1, 2}, {2}), make({3, 4, 5}, {3}));
  CHECK(o.shape() == Shape{2, 3});
  check_values(o, {3, 4, 5, 6, 8, 10});
  CHECK_THROWS_WITH(xg::outer(m, make({1}, {1})), Contains("outer") && Contains("1-D"));
  CHECK(m.trace().item<double>() == 12.0);
  CHECK(make({1, 2, 3, 4, 5, 6}, {2, 3}).trace().item<double>() == 6.0);  // 1 + 5
  CHECK_THROWS_WITH(make({1, 2}, {2}).trace(), Contains("trace") && Contains("2-D"));

  xg::manual_seed(43);
  check_grads("tril", [](const TensorList& in) { return xg::tril(in[0], -1); }, {normal({2, 3, 4})});
  check_grads("triu", [](const TensorList& in) { return xg::triu(in[0], 1); }, {normal({4, 3})});
  check_grads("outer", [](const TensorList& in) { return xg::outer(in[0], in[1]); }, {normal({3}), normal({4})});
  check_grads("trace", [](const TensorList& in) { return xg::trace(in[0]); }, {normal({3, 4})});
}

TEST_CASE("ops: lerp", "[ops][compose]") {
  const Tensor start = make({0, 1, -2}, {3}), end = make({10, 3, 2}, {3});
  check_values(xg::lerp(start, end, 0.25), {2.5, 1.5, -1});
  check_values(start.lerp(end, 0.75), {7.5, 2.5, 1});
  // weight 1 gives end exactly (end - (end - start) * 0); the one-sided formula would round.
  const Tensor a = make({0.1}, {1}), b = make({0.7}, {1});
  CHECK(xg::lerp(a, b, 1.0).item<double>() == 0.7);
  CHECK(xg::lerp(a, b, 0.0).item<double>() == 0.1);
  check_values(xg::lerp(start, end, make({0, 0.5, 1}, {3})), {0, 2, 2});

  xg::manual_seed(44);
  check_grads("lerp scalar weight", [](const TensorList& in) { return xg::lerp(in[0], in[1], 0.3); }, {normal({2, 3}), normal({3})});
  check_grads("lerp scalar weight above 0.5", [](const TensorList& in) { return xg::lerp(in[0], in[1], 0.8); }, {normal({2, 3}), normal({2, 3})});
  // Weights kept away from the |w| = 0.5 switch so finite differences stay on one formula.
  check_grads("lerp tensor weight", [](const TensorList& in) { return xg::lerp(in[0], in[1], in[2]); },
              {normal({2, 3}), normal({3}), leaf({0.1, 0.9, -0.2, 1.3, 0.3, 0.7}, {2, 3})});
}

TEST_CASE("ops: cumsum", "[ops][compose]") {
  check_values(xg::cumsum(make({1, 2, 3, 4}, {4}), 0), {1, 3, 6, 10});
  const Tensor x = make({0, 1, 2, 3, 4, 5}, {2, 3});
  check_values(x.cumsum(1), {0, 1, 3, 3, 7, 12});
  check_values(x.cumsum(0), {0, 1, 2, 3, 5, 7});
  check_values(x.cumsum(-1), {0, 1, 3, 3, 7, 12});
  check_values(xg::arange(1, 5).cumsum(0), {1, 3, 6, 10});  // int64 stays int64
  CHECK(xg::arange(1, 5).cumsum(0).dtype() == xg::kInt64);
  CHECK(make({7}, {}).cumsum(0).item<double>() == 7.0);
  // float32 accumulates in double: 2^24 + 1 + 1 is 2^24 + 2, where a float running sum stays at 2^24.
  Tensor f = make({16777216, 1, 1}, {3}, xg::kFloat32).cumsum(0);
  CHECK(f.data_ptr<float>()[2] == 16777218.0f);
  CHECK_THROWS_WITH(x.cumsum(2), Contains("cumsum") && Contains("dimension out of range"));

  xg::manual_seed(45);
  check_grads("cumsum", [](const TensorList& in) { return xg::cumsum(in[0], 1); }, {normal({2, 4, 3})});
  check_grads("cumsum dim 0", [](const TensorList& in) { return xg::cumsum(in[0], 0); }, {normal({5})});
}

TEST_CASE("ops: linspace and logspace", "[ops][compose]") {
  check_values(xg::linspace(0, 1, 5, xg::kFloat64), {0, 0.25, 0.5, 0.75, 1});
  check_values(xg::linspace(3, -1, 3, xg::kFloat64), {3, 1, -1});
  CHECK(xg::linspace(0, 1, 5).dtype() == xg::kFloat32);
  CHECK(xg::linspace(2, 9, 1, xg::kFloat64).item<double>() == 2.0);
  CHECK(xg::linspace(0, 1, 0).numel() == 0);
  // Both ends exact: the second half is counted down from end.
  Tensor l = xg::linspace(0, 0.3, 7, xg::kFloat64);
  CHECK(l.data_ptr<double>()[6] == 0.3);
  CHECK(l.data_ptr<double>()[0] == 0.0);
  CHECK_THROWS_WITH(xg::linspace(0, 1, -1), Contains("linspace") && Contains("non-negative"));
  CHECK_THROWS_WITH(xg::linspace(0, 1, 3, xg::kInt64), Contains("linspace") && Contains("floating"));
  check_values(xg::logspace(0, 2, 3, 10, xg::kFloat64), {1, 10, 100});
  check_values(xg::logspace(0, 3, 4, 2, xg::kFloat64), {1, 2, 4, 8});
}

TEST_CASE("ops: sort, argsort, topk, kthvalue, median", "[ops][sort]") {
  const Tensor x = make({3, 1, 2, 1}, {4});
  auto [asc, asc_i] = xg::sort(x);
  check_values(asc, {1, 1, 2, 3});
  check_values(asc_i, {1, 3, 2, 0});  // stable: the two 1s keep their order
  auto [desc, desc_i] = x.sort(0, true);
  check_values(desc, {3, 2, 1, 1});
  check_values(desc_i, {0, 2, 1, 3});
  check_values(xg::argsort(x), {1, 3, 2, 0});
  check_values(std::get<1>(xg::sort(x, /*stable=*/true, 0, false)), {1, 3, 2, 0});
  const double nan = std::nan("");
  const Tensor with_nan = make({2, nan, 1}, {3});
  check_values(std::get<1>(with_nan.sort()), {2, 0, 1});  // NaN last ascending
  check_values(std::get<1>(with_nan.sort(0, true)), {1, 0, 2});  // and first descending
  auto [cols, cols_i] = make({3, 1, 2, 4}, {2, 2}).sort(0);
  check_values(cols, {2, 1, 3, 4});
  check_values(cols_i, {1, 0, 0, 1});
  check_values(std::get<1>(xg::sort(xg::tensor({3, 1, 2}, {3}, xg::kInt64))), {1, 2, 0});

  const Tensor y = make({5, 1, 4, 2, 3}, {5});
  auto [top, top_i] = y.topk(2);
  check_values(top, {5, 4});
  check_values(top_i, {0, 2});
  auto [bottom, bottom_i] = xg::topk(y, 3, 0, /*largest=*/false);
  check_values(bottom, {1, 2, 3});
  check_values(bottom_i, {1, 3, 4});
  CHECK(std::get<0>(y.topk(0)).numel() == 0);
  CHECK_THROWS_WITH(y.topk(6), Contains("topk") && Contains("k (6) is out of range"));

  auto [second, second_i] = y.kthvalue(2);
  CHECK(second.item<double>() == 2.0);
  CHECK(second_i.item<int64_t>() == 3);
  auto [kept, kept_i] = make({3, 1, 2, 6, 5, 4}, {2, 3}).kthvalue(1, 1, true);
  CHECK(kept.shape() == Shape{2, 1});
  check_values(kept, {1, 4});
  check_values(kept_i, {1, 2});
  CHECK_THROWS_WITH(y.kthvalue(0), Contains("kthvalue") && Contains("counts from 1"));
  // 0-D inputs: one element along dim 0 (PyTorch's results are 0-D).
  const Tensor scalar = make({3}, {});
  CHECK(std::get<0>(scalar.kthvalue(1)).item<double>() == 3.0);
  CHECK(std::get<1>(scalar.kthvalue(1)).dim() == 0);
  CHECK(std::get<0>(scalar.median(0)).item<double>() == 3.0);
  CHECK(std::get<0>(scalar.sort()).dim() == 0);
  CHECK(std::get<1>(scalar.topk(1)).item<int64_t>() == 0);
  CHECK(scalar.argsort().item<int64_t>() == 0);

  auto [med, med_i] = make({5, 1, 4, 2}, {4}).median(0);  // sorted 1 2 4 5: the lower median is 2
  CHECK(med.item<double>() == 2.0);
  CHECK(med_i.item<int64_t>() == 3);
  CHECK(make({5, 1, 4, 2}, {4}).median().item<double>() == 2.0);
  auto [med_nan, med_nan_i] = make({1, nan, 3, nan}, {4}).median(0);
  CHECK(std::isnan(med_nan.item<double>()));
  CHECK(med_nan_i.item<int64_t>() == 1);
  CHECK(std::isnan(make({1, nan, 3}, {3}).median().item<double>()));
  check_values(std::get<0>(make({3, 1, 2, 6, 5, 4}, {2, 3}).median(1)), {2, 5});
  CHECK_THROWS_WITH(xg::zeros({0}).median(), Contains("median") && Contains("empty"));

  // Gradients at ties: median() splits evenly between the elements equal to it, median(dim) and sort
  // send it to the returned index.
  Tensor tied = leaf({1, 2, 2, 3}, {4});
  xg::median(tied).backward();
  check_values(tied.grad(), {0, 0.5, 0.5, 0});
  Tensor tied_dim = leaf({2, 2, 1}, {3});
  std::get<0>(xg::median(tied_dim, 0)).backward();
  check_values(tied_dim.grad(), {1, 0, 0});

  xg::manual_seed(46);
  check_grads("sort", [](const TensorList& in) { return std::get<0>(xg::sort(in[0], 1)); }, {distinct({2, 3, 4})});
  check_grads("sort descending", [](const TensorList& in) { return std::get<0>(xg::sort(in[0], 0, true)); }, {distinct({3, 2})});
  check_grads("topk", [](const TensorList& in) { return std::get<0>(xg::topk(in[0], 2, -1)); }, {distinct({3, 4})});
  check_grads("kthvalue", [](const TensorList& in) { return std::get<0>(xg::kthvalue(in[0], 2, 0, true)); }, {distinct({3, 4})});
  check_grads("median(dim)", [](const TensorList& in) { return std::get<0>(xg::median(in[0], 1)); }, {distinct({2, 5})});
  check_grads("median()", [](const TensorList& in) { return xg::median(in[0]); }, {distinct({3, 3})});
}

TEST_CASE("ops: a bare integer wherever libtorch's IntArrayRef takes one", "[ops][intarrayref]") {
  CHECK(xg::zeros(3).shape() == Shape{3});
  CHECK(xg::ones(2, xg::kFloat64).shape() == Shape{2});
  CHECK(xg::randn(4).shape() == Shape{4});
  CHECK(xg::rand(2).shape() == Shape{2});
  CHECK(xg::empty(5).shape() == Shape{5});
  CHECK(xg::full(2, 7.0).shape() == Shape{2});
  CHECK(xg::randint(0, 3, 6).shape() == Shape{6});
  const Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3});
  check_values(x.sum(0), {5, 7, 9});
  check_values(xg::sum(x, 1, true), {6, 15});
  check_values(x.mean(-1), {2, 5});
  check_values(x.norm(1, 1), {6, 15});
  check_values(x.norm(2, 0), {std::sqrt(17.0), std::sqrt(29.0), std::sqrt(45.0)});
  CHECK(x.view(-1).shape() == Shape{6});
  CHECK(x.reshape(6).shape() == Shape{6});
  CHECK(x.sum(0).expand({2, 3}).shape() == Shape{2, 3});
  CHECK(make({1}, {1}).expand(4).shape() == Shape{4});
  CHECK(x.permute({1, 0}).shape() == Shape{3, 2});
  check_values(x.var(0), {4.5, 4.5, 4.5});
  check_values(x.var({0}), {4.5, 4.5, 4.5});
  // A bool is not accepted as dims (x.var(false) does not compile); the biased variance is var({}, false).
  static_assert(!std::is_convertible_v<bool, xg::IntArrayRef>);
  static_assert(std::is_convertible_v<int, xg::IntArrayRef>);
  CHECK(x.var({}, false).item<double>() == Approx(17.5 / 6.0));
  check_values(x.logsumexp(0), {std::log(std::exp(1.0) + std::exp(4.0)), std::log(std::exp(2.0) + std::exp(5.0)),
                                std::log(std::exp(3.0) + std::exp(6.0))});
  // A vector or a braced list works as before, and a Shape from shape() too.
  const std::vector<int64_t> dims{0, 1};
  CHECK(x.sum(dims).item<double>() == 21.0);
  CHECK(xg::zeros(x.shape()).shape() == Shape{2, 3});
}

TEST_CASE("ops: addmm, baddbmm, diag, diag_embed, meshgrid, repeat_interleave, cdist", "[ops][compose]") {
  const Tensor m1 = make({1, 2, 3, 4}, {2, 2}), eye2 = xg::eye(2, std::nullopt, xg::kFloat64);
  check_values(xg::addmm(make({1, 1, 1, 1}, {2, 2}), m1, eye2, 2, 3), {5, 8, 11, 14});
  check_values(make({10, 20}, {2}).addmm(m1, m1), {17, 30, 25, 42});  // input broadcast over rows
  const double nan = std::nan("");
  check_values(xg::addmm(make({nan, nan, nan, nan}, {2, 2}), m1, eye2, 0, 1), {1, 2, 3, 4});  // beta 0 ignores NaN
  CHECK_THROWS_WITH(xg::addmm(xg::zeros({3, 2, 2}, xg::kFloat64), m1, m1), Contains("expand"));
  CHECK_THROWS_WITH(xg::addmm(m1, make({1, 2}, {2}), m1), Contains("addmm") && Contains("2-D"));
  Tensor b = xg::baddbmm(make({1}, {1}), xg::stack({m1, eye2}), xg::stack({eye2, m1}), 1, 2);
  CHECK(b.shape() == Shape{2, 2, 2});
  check_values(b, {3, 5, 7, 9, 3, 5, 7, 9});

  check_values(xg::diag(make({1, 2}, {2})), {1, 0, 0, 2});
  check_values(make({1, 2}, {2}).diag(1), {0, 1, 0, 0, 0, 2, 0, 0, 0});
  const Tensor m3 = make({0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3});
  check_values(m3.diag(1), {1, 5});
  check_values(m3.diag(-1), {3, 7});
  const Tensor pairs = make({1, 2, 3, 4}, {2, 2});
  check_values(pairs.diag_embed(), {1, 0, 0, 2, 3, 0, 0, 4});
  Tensor moved = xg::diag_embed(pairs, 0, 0, 2);
  CHECK(moved.shape() == Shape{2, 2, 2});
  check_values(moved, {1, 0, 3, 0, 0, 2, 0, 4});
  CHECK(xg::diag_embed(make({1, 2}, {2}), -1).shape() == Shape{3, 3});
  CHECK_THROWS_WITH(xg::diag(xg::zeros({2, 2, 2})), Contains("diag") && Contains("1-D or 2-D"));

  auto ij = xg::meshgrid({make({1, 2, 3}, {3}), make({4, 5}, {2})});
  CHECK(ij[0].shape() == Shape{3, 2});
  check_values(ij[0], {1, 1, 2, 2, 3, 3});
  check_values(ij[1], {4, 5, 4, 5, 4, 5});
  auto xy = xg::meshgrid({make({1, 2, 3}, {3}), make({4, 5}, {2})}, "xy");
  CHECK(xy[0].shape() == Shape{2, 3});
  check_values(xy[0], {1, 2, 3, 1, 2, 3});
  check_values(xy[1], {4, 4, 4, 5, 5, 5});
  CHECK_THROWS_WITH(xg::meshgrid({make({1}, {1})}, "yx"), Contains("meshgrid") && Contains("indexing"));

  check_values(make({1, 2, 3}, {3}).repeat_interleave(2), {1, 1, 2, 2, 3, 3});
  check_values(pairs.repeat_interleave(xg::tensor({1, 2}, {2}, xg::kInt64), 0), {1, 2, 3, 4, 3, 4});
  check_values(pairs.repeat_interleave(2), {1, 1, 2, 2, 3, 3, 4, 4});
  check_values(xg::repeat_interleave(xg::tensor({1, 0, 2}, {3}, xg::kInt64)), {0, 2, 2});
  CHECK_THROWS_WITH(pairs.repeat_interleave(xg::tensor({1, 2, 3}, {3}, xg::kInt64), 0), Contains("repeat_interleave"));
  CHECK_THROWS_WITH(pairs.repeat_interleave(-1), Contains("repeat_interleave") && Contains("negative"));

  const Tensor points = make({0, 0, 1, 1}, {2, 2}), target = make({3, 4}, {1, 2});
  check_values(xg::cdist(points, target), {5, std::sqrt(13.0)});
  check_values(xg::cdist(points, target, 1), {7, 5});
  check_values(xg::cdist(points, make({0, 1}, {1, 2}), 0), {1, 1});  // the count of differing coordinates
  CHECK(xg::cdist(xg::zeros({3, 4, 2}), xg::zeros({3, 5, 2})).shape() == Shape{3, 4, 5});
  CHECK_THROWS_WITH(xg::cdist(points, make({1, 2, 3}, {1, 3})), Contains("cdist") && Contains("columns"));

  xg::manual_seed(47);
  check_grads("addmm", [](const TensorList& in) { return xg::addmm(in[0], in[1], in[2], 0.5, 2); }, {normal({3}), normal({2, 4}), normal({4, 3})});
  check_grads("addmm beta 0", [](const TensorList& in) { return xg::addmm(in[0], in[1], in[2], 0, 1); }, {normal({2, 3}), normal({2, 4}), normal({4, 3})});
  check_grads("baddbmm", [](const TensorList& in) { return xg::baddbmm(in[0], in[1], in[2], 2, 0.5); },
              {normal({1, 3}), normal({2, 2, 4}), normal({2, 4, 3})});
  check_grads("diag of a vector", [](const TensorList& in) { return xg::diag(in[0], -1); }, {normal({3})});
  check_grads("diag of a matrix", [](const TensorList& in) { return xg::diag(in[0], 1); }, {normal({3, 4})});
  check_grads("diag_embed", [](const TensorList& in) { return xg::diag_embed(in[0], 1, 0, 2); }, {normal({2, 3})});
  check_grads_multi("meshgrid", [](const TensorList& in) { return xg::meshgrid({in[0], in[1]}, "xy"); }, {normal({3}), normal({2})});
  check_grads("repeat_interleave", [](const TensorList& in) { return xg::repeat_interleave(in[0], xg::tensor({2, 0, 1}, {3}, xg::kInt64), 1); },
              {normal({2, 3})});
  check_grads("cdist", [](const TensorList& in) { return xg::cdist(in[0], in[1]); }, {distinct({3, 2}), distinct({4, 2}, 0.15, 0.07)});
  check_grads("cdist p=3", [](const TensorList& in) { return xg::cdist(in[0], in[1], 3); }, {distinct({2, 2, 3}), distinct({2, 3, 3}, 0.15, 0.05)});
}

TEST_CASE("ops: random fills, fill_diagonal_, requires_grad() and dtype() options", "[ops][fills]") {
  xg::manual_seed(49);
  Tensor u = xg::empty({1000}, xg::kFloat64);
  u.uniform_(2, 5);
  CHECK(xg::min(u).item<double>() >= 2.0);
  CHECK(xg::max(u).item<double>() < 5.0);
  CHECK(u.mean().item<double>() == Approx(3.5).margin(0.15));  // sd of the mean: 0.87 / sqrt(1000) = 0.027
  Tensor n = xg::empty({4000}, xg::kFloat64);
  n.normal_(1, 2);
  CHECK(n.mean().item<double>() == Approx(1.0).margin(0.2));  // sd of the mean 0.032
  CHECK(n.std().item<double>() == Approx(2.0).margin(0.15));
  Tensor b = xg::zeros({4000}, xg::kInt64);
  b.bernoulli_(0.25);
  CHECK(b.sum().item<int64_t>() > 850);  // mean 1000, sd 27
  CHECK(b.sum().item<int64_t>() < 1150);
  CHECK(xg::max(b).item<int64_t>() == 1);
  Tensor r = xg::zeros({2000}, xg::kFloat32);
  r.random_(3, 7);
  CHECK(xg::min(r).item<float>() == 3.0f);
  CHECK(xg::max(r).item<float>() == 6.0f);
  for (float v : std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + r.numel())) CHECK(v == std::floor(v));
  CHECK_THROWS_WITH(xg::zeros({2}, xg::kInt64).uniform_(), Contains("uniform_") && Contains("floating"));
  CHECK_THROWS_WITH(xg::zeros({2}).normal_(0, -1), Contains("normal_") && Contains("std >= 0"));
  CHECK_THROWS_WITH(xg::zeros({2}).random_(5, 5), Contains("random_"));
  Tensor param = xg::zeros({2}, xg::requires_grad());
  CHECK(param.requires_grad());
  CHECK_THROWS_WITH(param.uniform_(), Contains("uniform_"));  // in place on a leaf that requires grad

  Tensor m = xg::zeros({3, 3}, xg::dtype(xg::kFloat64));
  CHECK(m.dtype() == xg::kFloat64);
  m.fill_diagonal_(5);
  check_values(m, {5, 0, 0, 0, 5, 0, 0, 0, 5});
  Tensor tall = xg::zeros({7, 3}, xg::kFloat64);
  tall.fill_diagonal_(1, /*wrap=*/true);  // rows 0, 1, 2, then 4, 5, 6 (row 3 is the gap)
  check_values(tall.sum(1), {1, 1, 1, 0, 1, 1, 1});
  Tensor no_wrap = xg::zeros({7, 3}, xg::kFloat64);
  no_wrap.fill_diagonal_(1);
  check_values(no_wrap.sum(1), {1, 1, 1, 0, 0, 0, 0});
  Tensor cube = xg::zeros({2, 2, 2}, xg::kFloat64);
  cube.fill_diagonal_(3);
  check_values(cube, {3, 0, 0, 0, 0, 0, 0, 3});
  CHECK_THROWS_WITH(xg::zeros({2, 3, 3}).fill_diagonal_(1), Contains("fill_diagonal_") && Contains("equal length"));
  // Through autograd: the diagonal's old values get no gradient, the rest pass it on.
  Tensor w = leaf({1, 2, 3, 4}, {2, 2});
  Tensor y = w * 1.0;
  y.fill_diagonal_(0);
  y.sum().backward();
  check_values(w.grad(), {0, 1, 1, 0});
}

// Numerical safety at extreme inputs: log_softmax, softmax, logsumexp, cross-entropy (with and without label
// smoothing), BCE-with-logits (with and without pos_weight), softplus and sigmoid at logits of +-1e4 (and
// other values where naive formulas overflow or cancel), in float64 and float32, forward values and
// gradients against the textbook formulas evaluated in long double. Then anomaly mode: every op that can
// turn finite inputs into NaN/Inf is caught at that op, forward or backward, and named.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;
namespace F = xg::nn::functional;
using Catch::Matchers::Contains;
using Real = long double;

namespace {

/// The values of a tensor as long double (any dtype).
std::vector<Real> values_of(const Tensor& t) {
  Tensor d = t.to(kFloat64).contiguous();  // a view's elements in row-major order
  std::vector<Real> out(static_cast<size_t>(d.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = d.data_ptr<double>()[i];
  return out;
}

/// A few roundings of the dtype: 8 units in the last place.
double tolerance(Dtype dtype) {
  return 8.0 * (dtype == kFloat64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon());
}

/// Every element finite and within tolerance * (scale + |expected|) of the long double reference. scale = 1
/// asks for working precision; scale = the inputs' magnitude allows the rounding of intermediate values of
/// that size (e.g. logsumexp = 1e4 + log(5) in float32 has an ulp of 1e-3).
void check_close(const Tensor& actual, const std::vector<Real>& expected, const std::string& what, double scale = 1.0) {
  INFO(what << " (" << dtype_name(actual.dtype()) << ")");
  const std::vector<Real> got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  const double tol = tolerance(actual.dtype());
  for (size_t i = 0; i < got.size(); ++i) {
    const double error = std::fabs(static_cast<double>(got[i] - expected[i]));
    const double allowed = tol * (scale + std::fabs(static_cast<double>(expected[i])));
    INFO(fmt::format("element {}: got {:.17g}, expected {:.17g}, error {:.3g}, allowed {:.3g}", i, static_cast<double>(got[i]),
                     static_cast<double>(expected[i]), error, allowed));
    CHECK(std::isfinite(static_cast<double>(got[i])));
    CHECK(error <= allowed);
  }
}

/// Row-wise references for a [rows, cols] matrix stored row-major.
Real row_logsumexp(const std::vector<Real>& x, size_t row, size_t cols) {
  Real m = x[row * cols];
  for (size_t c = 0; c < cols; ++c) m = std::max(m, x[row * cols + c]);
  Real s = 0;
  for (size_t c = 0; c < cols; ++c) s += std::exp(x[row * cols + c] - m);
  return m + std::log(s);
}

Real sigmoid_ref(Real x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
Real softplus_ref(Real x) { return std::max(x, Real(0)) + std::log1p(std::exp(-std::fabs(x))); }  // log(1 + e^x)

// Logits at +-1e4 mixed with ordinary values: ties at the maximum, a whole row at -1e4, a whole row at +1e4.
const std::vector<double> kLogits = {1e4, -1e4, 0.0, 1e4 - 1.0, -5.0,      //
                                     -1e4, -1e4, -1e4, -1e4, -1e4,        //
                                     1e4, 1e4, 1e4, 1e4, 1e4,             //
                                     -1e4, 1e4, -1e4, 3.0, -9999.5};
constexpr int64_t kRows = 4, kCols = 5;
const std::vector<double> kRowWeights = {0.3, -0.7, 1.0, 0.25, -0.5, 0.9, 0.1, -0.2, 0.6, -1.0,
                                         0.4, 0.4, -0.8, 0.05, 0.7, -0.6, 0.2, 0.9, -0.3, 0.15};

}  // namespace

namespace {

/// log_softmax (along both dims), softmax, logsumexp at +-1e4 and their gradients against long double.
void check_softmax_family(double scale) {
  const std::vector<Real> x(kLogits.begin(), kLogits.end());
  const std::vector<Real> w(kRowWeights.begin(), kRowWeights.end());
  std::vector<Real> lse(kRows), log_softmax_ref(x.size()), softmax_ref(x.size()), grad_ref(x.size());
  for (size_t r = 0; r < kRows; ++r) {
    lse[r] = row_logsumexp(x, r, kCols);
    Real weight_sum = 0;
    for (size_t c = 0; c < kCols; ++c) weight_sum += w[r * kCols + c];
    for (size_t c = 0; c < kCols; ++c) {
      const size_t i = r * kCols + c;
      log_softmax_ref[i] = x[i] - lse[r];
      softmax_ref[i] = std::exp(x[i] - lse[r]);
      // d/dx_i sum_j w_j log_softmax_j = w_i - softmax_i * sum_j w_j
      grad_ref[i] = w[i] - softmax_ref[i] * weight_sum;
    }
  }
  for (Dtype dtype : {kFloat64, kFloat32}) {
    Tensor logits = tensor(kLogits, {kRows, kCols}, dtype).requires_grad_();
    Tensor weights = tensor(kRowWeights, {kRows, kCols}, dtype);
    Tensor out = log_softmax(logits, 1);
    check_close(out, log_softmax_ref, "log_softmax", scale);
    (out * weights).sum().backward();
    check_close(logits.grad(), grad_ref, "d log_softmax", scale);

    check_close(softmax(logits, 1), softmax_ref, "softmax", scale);
    // The same along dim 0 of the transpose.
    check_close(log_softmax(logits.t(), 0).t(), log_softmax_ref, "log_softmax along dim 0", scale);

    Tensor leaf = tensor(kLogits, {kRows, kCols}, dtype).requires_grad_();
    Tensor row_lse = logsumexp(leaf, {1});
    check_close(row_lse, lse, "logsumexp", scale);
    row_lse.sum().backward();
    check_close(leaf.grad(), softmax_ref, "d logsumexp = softmax", scale);
  }
}

/// cross_entropy (plain, label-smoothed) and nll_loss(log_softmax) at +-1e4 logits, values and gradients.
void check_cross_entropy(double scale) {
  const std::vector<Real> x(kLogits.begin(), kLogits.end());
  const std::vector<int64_t> targets = {1, 2, 0, 1};
  const Real smoothing = 0.1L;
  std::vector<Real> per_row(kRows), grad_plain(x.size()), grad_smooth(x.size());
  Real mean_plain = 0, mean_smooth = 0;
  for (size_t r = 0; r < kRows; ++r) {
    const Real lse = row_logsumexp(x, r, kCols);
    per_row[r] = lse - x[r * kCols + targets[r]];
    Real mean_neg_log_p = 0;
    for (size_t c = 0; c < kCols; ++c) mean_neg_log_p += (lse - x[r * kCols + c]) / kCols;
    mean_plain += per_row[r] / kRows;
    mean_smooth += ((1 - smoothing) * per_row[r] + smoothing * mean_neg_log_p) / kRows;
    for (size_t c = 0; c < kCols; ++c) {
      const Real p = std::exp(x[r * kCols + c] - lse);
      const Real onehot = c == static_cast<size_t>(targets[r]) ? 1 : 0;
      grad_plain[r * kCols + c] = (p - onehot) / kRows;
      grad_smooth[r * kCols + c] = (p - (1 - smoothing) * onehot - smoothing / kCols) / kRows;
    }
  }
  for (Dtype dtype : {kFloat64, kFloat32}) {
    Tensor labels = tensor({1, 2, 0, 1}, {kRows}, kInt64);
    Tensor logits = tensor(kLogits, {kRows, kCols}, dtype).requires_grad_();
    check_close(F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction("none")), per_row, "cross_entropy none", scale);
    Tensor loss = F::cross_entropy(logits, labels);
    check_close(loss, {mean_plain}, "cross_entropy mean", scale);
    loss.backward();
    check_close(logits.grad(), grad_plain, "d cross_entropy", scale);

    Tensor logits2 = tensor(kLogits, {kRows, kCols}, dtype).requires_grad_();
    Tensor smoothed = F::cross_entropy(logits2, labels, F::CrossEntropyFuncOptions().label_smoothing(0.1));
    check_close(smoothed, {mean_smooth}, "cross_entropy label_smoothing 0.1", scale);
    smoothed.backward();
    check_close(logits2.grad(), grad_smooth, "d cross_entropy label_smoothing 0.1", scale);

    // nll_loss(log_softmax) is the unfused spelling of the same loss.
    Tensor logits3 = tensor(kLogits, {kRows, kCols}, dtype).requires_grad_();
    Tensor nll = F::nll_loss(log_softmax(logits3, 1), labels);
    check_close(nll, {mean_plain}, "nll_loss(log_softmax)", scale);
    nll.backward();
    check_close(logits3.grad(), grad_plain, "d nll_loss(log_softmax)", scale);
  }
}

}  // namespace

TEST_CASE("numerics: log_softmax, softmax, logsumexp, cross_entropy stay finite and accurate at +-1e4 logits", "[reliability][numerics]") {
  // Accurate to the rounding of values of the logits' size (1e4): what a stable implementation guarantees.
  check_softmax_family(1e4);
  check_cross_entropy(1e4);
}

TEST_CASE("numerics: log_softmax and cross_entropy at +-1e4 are accurate to working precision", "[reliability][numerics]") {
  // Computed as (x - max) - log(sum), not x - (max + log(sum)): max + log(sum) would round at the
  // logits' magnitude, an absolute error of up to 5e-4 in float32 log-probabilities at logits of 1e4.
  check_softmax_family(1.0);
  check_cross_entropy(1.0);
}

TEST_CASE("numerics: binary_cross_entropy_with_logits at +-1e4, with and without pos_weight", "[reliability][numerics]") {
  // Wrong-sign logits of size 1e4 give losses of 1e4 (not inf); right-sign ones give exactly 0-ish.
  const std::vector<double> logits = {1e4, -1e4, 1e4, -1e4, 0.0, 30.0, -30.0, 1e4, -40.0, 745.0};
  const std::vector<double> targets = {1.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.7, 0.3, 1.0, 0.0};
  const Real pos_weight = 3;
  std::vector<Real> loss_ref, grad_ref, weighted_ref, weighted_grad_ref;
  for (size_t i = 0; i < logits.size(); ++i) {
    const Real x = logits[i], t = targets[i];
    // -[t log s(x) + (1 - t) log(1 - s(x))] = (1 - t) x + softplus(-x)
    loss_ref.push_back((1 - t) * x + softplus_ref(-x));
    grad_ref.push_back(sigmoid_ref(x) - t);
    // pos_weight p: (1 - t) x + (1 + (p - 1) t) softplus(-x); derivative (1 - t) - (1 + (p - 1) t) s(-x)
    const Real scale = 1 + (pos_weight - 1) * t;
    weighted_ref.push_back((1 - t) * x + scale * softplus_ref(-x));
    weighted_grad_ref.push_back((1 - t) - scale * sigmoid_ref(-x));
  }
  const int64_t n = static_cast<int64_t>(logits.size());
  for (Dtype dtype : {kFloat64, kFloat32}) {
    Tensor x = tensor(logits, {n}, dtype).requires_grad_();
    Tensor t = tensor(targets, {n}, dtype);
    Tensor losses = F::binary_cross_entropy_with_logits(x, t, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction("none"));
    check_close(losses, loss_ref, "bce_with_logits");
    losses.sum().backward();
    check_close(x.grad(), grad_ref, "d bce_with_logits");

    Tensor x2 = tensor(logits, {n}, dtype).requires_grad_();
    Tensor weighted = F::binary_cross_entropy_with_logits(
        x2, t, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction("none").pos_weight(full({n}, 3.0, dtype)));
    check_close(weighted, weighted_ref, "bce_with_logits pos_weight 3");
    weighted.sum().backward();
    check_close(x2.grad(), weighted_grad_ref, "d bce_with_logits pos_weight 3");
  }
}

TEST_CASE("numerics: softplus and sigmoid at +-1e4 and around the softplus threshold", "[reliability][numerics]") {
  const std::vector<double> inputs = {1e4, -1e4, 19.99, 20.01, 0.0, -50.0, 50.0, -745.0, 710.0, 1e-8};
  const int64_t n = static_cast<int64_t>(inputs.size());
  for (double beta : {1.0, 0.5, 3.0}) {
    const double threshold = 20.0;
    std::vector<Real> value_ref, grad_ref;
    for (double v : inputs) {
      const Real bx = beta * static_cast<Real>(v);
      // PyTorch's definition: linear above the threshold, log(1 + e^(beta x)) / beta below it.
      value_ref.push_back(bx > threshold ? Real(v) : softplus_ref(bx) / beta);
      grad_ref.push_back(bx > threshold ? Real(1) : sigmoid_ref(bx));
    }
    for (Dtype dtype : {kFloat64, kFloat32}) {
      INFO("beta " << beta);
      Tensor x = tensor(inputs, {n}, dtype).requires_grad_();
      Tensor y = softplus(x, beta, threshold);
      check_close(y, value_ref, "softplus");
      y.sum().backward();
      check_close(x.grad(), grad_ref, "d softplus");
    }
  }
  std::vector<Real> sigmoid_values, sigmoid_grads;
  for (double v : inputs) {
    const Real s = sigmoid_ref(v);
    sigmoid_values.push_back(s);
    sigmoid_grads.push_back(s * (1 - s));
  }
  for (Dtype dtype : {kFloat64, kFloat32}) {
    Tensor x = tensor(inputs, {n}, dtype).requires_grad_();
    Tensor y = sigmoid(x);
    check_close(y, sigmoid_values, "sigmoid");
    y.sum().backward();
    check_close(x.grad(), sigmoid_grads, "d sigmoid");
  }
}

// ---- anomaly mode --------------------------------------------------------------------------------

namespace {

const char* const kNoThrow = "<<no exception was thrown>>";

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<<not an xg::Error>> ") + e.what();
  }
  return kNoThrow;
}

struct ForwardCase {
  const char* op;  // the name the message must contain
  std::function<Tensor()> run;
};

/// Runs each case under DetectAnomalyGuard and checks the error names the op; also checks that the same
/// computation is allowed (no error) outside anomaly mode and really does produce NaN or Inf.
void check_forward_cases(const std::vector<ForwardCase>& cases) {
  for (const ForwardCase& c : cases) {
    INFO("op " << c.op);
    Tensor result;
    REQUIRE_NOTHROW(result = c.run());
    bool has_non_finite = false;
    for (Real v : values_of(result)) has_non_finite = has_non_finite || !std::isfinite(static_cast<double>(v));
    REQUIRE(has_non_finite);  // the case does produce what anomaly mode must catch
    DetectAnomalyGuard anomaly;
    const std::string message = error_of(c.run);
    CHECK_THAT(message, Contains("anomaly") && Contains(c.op) && !Contains(kNoThrow));
  }
}

}  // namespace

TEST_CASE("anomaly mode: elementwise ops that turn finite inputs into NaN or Inf are named in forward", "[reliability][anomaly]") {
  const Tensor minus_one = tensor({-1.0, 4.0}, kFloat64);
  const Tensor zero = tensor({0.0, 1.0}, kFloat64);
  const Tensor huge = tensor({1e308, 1.0}, kFloat64);
  check_forward_cases({
      {"log", [&] { return log(minus_one); }},
      {"sqrt", [&] { return sqrt(minus_one); }},
      {"div", [&] { return div(zero, zero); }},
      {"pow", [&] { return pow(minus_one, 0.5); }},
      {"exp", [&] { return exp(tensor({1000.0}, kFloat64)); }},
      {"mul", [&] { return mul(huge, huge); }},
      {"add", [&] { return add(huge, huge); }},
      {"sub", [&] { return sub(huge, neg(huge)); }},
  });
}

TEST_CASE("anomaly mode: the first op to produce a NaN is named, not the ops it flows into", "[reliability][anomaly]") {
  Tensor x = tensor({-1.0, 2.0}, kFloat64).requires_grad_();
  DetectAnomalyGuard anomaly;
  const std::string message = error_of([&] { return (log(x * 2.0) + 1.0).exp().sum(); });
  CHECK_THAT(message, Contains("anomaly detected: log "));
}

TEST_CASE("anomaly mode: a NaN or Inf appearing in backward names the backward node", "[reliability][anomaly]") {
  DetectAnomalyGuard anomaly;
  // d/dx x^0.5 at 0 is inf.
  Tensor x = tensor({0.0, 1.0}, kFloat64).requires_grad_();
  CHECK_THAT(error_of([&] { pow(x, 0.5).sum().backward(); }), Contains("anomaly") && Contains("PowBackward"));
  // d/dx (a / x) at x = 1e-200: a / x^2 overflows.
  Tensor z = tensor({1e-200, 1.0}, kFloat64).requires_grad_();
  CHECK_THAT(error_of([&] { div(tensor({1e-200, 1.0}, kFloat64), z).sum().backward(); }), Contains("anomaly") && Contains("DivBackward"));
}

TEST_CASE("numerics: the gradient of norm at the zero vector is finite (PyTorch's subgradient 0)", "[reliability][numerics]") {
  for (double p : {2.0, 1.0, 3.0}) {
    INFO("p = " << p);
    Tensor x = zeros({3}, kFloat64).requires_grad_();
    norm(x, p).backward();
    check_close(x.grad(), {0, 0, 0}, "d norm at 0");
  }
}

TEST_CASE("anomaly mode: reductions and matrix products that overflow are named in forward", "[reliability][anomaly]") {
  // mean, var, norm and matmul are built on sum, mul and gemm; the error must name the op the caller
  // used, not the inner one that overflowed first.
  const Tensor huge = tensor({1e308, 1e308}, kFloat64);
  const Tensor big_matrix = tensor({1e200, 1e200, 1e200, 1e200}, {2, 2}, kFloat64);
  check_forward_cases({
      {"sum", [&] { return sum(huge); }},
      {"mean", [&] { return mean(huge); }},
      {"matmul", [&] { return matmul(big_matrix, big_matrix); }},
      {"mm", [&] { return mm(big_matrix, big_matrix); }},
      {"bmm", [&] { return bmm(big_matrix.reshape({1, 2, 2}), big_matrix.reshape({1, 2, 2})); }},
      {"dot", [&] { return dot(huge, huge); }},
      {"linear", [&] { return linear(big_matrix, big_matrix); }},
      {"var", [&] { return var(tensor({1e300, -1e300}, kFloat64)); }},
      {"norm", [&] { return norm(huge); }},
      // Losses built from sub, mul, abs and sum are named as the loss.
      {"mse_loss", [&] { return nn::functional::mse_loss(huge, neg(huge)); }},
      {"l1_loss", [&] { return nn::functional::l1_loss(huge, neg(huge)); }},
      {"huber_loss", [&] { return nn::functional::huber_loss(huge, neg(huge)); }},
      {"nll_loss", [&] { return nn::functional::nll_loss(tensor({-1e308, 0.0, -1e308, 0.0}, {2, 2}, kFloat64), tensor({0, 0}, {2}, kInt64), nn::functional::NLLLossFuncOptions().reduction("sum")); }},
      // conv2d is im2col + gemm + a bias move: named as conv2d, not as the gemm inside.
      {"conv2d", [&] { return nn::functional::conv2d(big_matrix.reshape({1, 1, 2, 2}), big_matrix.reshape({1, 1, 2, 2})); }},
  });
}

// ---- issue 13: PyTorch 1.13's conventions at the edges (ties, zeros, NaN, int scalars, empty batches) ----
// Expected values are worked out by hand from the formulas in the comments; gradients are exact here.
namespace {

/// The gradient of sum(f(x)) with respect to a float64 leaf holding `values`.
std::vector<double> grad_of(const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& values, const Shape& shape) {
  Tensor x = tensor(values, shape, kFloat64).requires_grad_();
  sum(f(x)).backward();
  Tensor g = x.grad();
  return std::vector<double>(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
}

std::vector<double> doubles_of(const Tensor& t) {
  Tensor d = t.to(kFloat64).contiguous();  // a view's elements in row-major order
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

/// Elementwise equality where NaN equals NaN.
void check_same(const std::vector<double>& got, const std::vector<double>& expected, const std::string& what) {
  INFO(what << ": got " << fmt::format("{}", got) << ", expected " << fmt::format("{}", expected));
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(((std::isnan(got[i]) && std::isnan(expected[i])) || got[i] == Approx(expected[i]).margin(1e-15)));
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// float64 central-difference checks of a single-output function (first and second derivatives).
bool gradcheck_of(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) { return autograd::gradcheck(f, inputs); }
bool gradgradcheck_of(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) { return autograd::gradgradcheck(f, inputs); }

}  // namespace

TEST_CASE("edges: a non-integral scalar with an int64 tensor is an error until type promotion, not a truncation", "[numerics][edges]") {
  Tensor a = arange(6);
  // PyTorch promotes these to float; xgrad used to truncate the scalar (arange(6) * 0.5 gave zeros).
  CHECK_THROWS_WITH(a * 0.5, Contains("mul") && Contains("0.5") && Contains("int64") && Contains("type promotion"));
  CHECK_THROWS_WITH(a + 0.7, Contains("add") && Contains("0.7") && Contains("int64"));
  CHECK_THROWS_WITH(a - 0.5, Contains("sub") && Contains("int64"));
  CHECK_THROWS_WITH(a.clone().sub_(0.5), Contains("sub_") && Contains("0.5"));
  CHECK_THROWS_WITH(2.5 - a, Contains("rsub") && Contains("2.5"));
  CHECK_THROWS_WITH(add(a, a, 0.5), Contains("add") && Contains("0.5"));
  CHECK_THROWS_WITH(sub(a, a, 1.5), Contains("sub") && Contains("1.5"));
  CHECK_THROWS_WITH(clamp(a, 0.5), Contains("clamp") && Contains("0.5"));
  CHECK_THROWS_WITH(clamp(a, std::nullopt, 2.5), Contains("clamp") && Contains("2.5"));
  CHECK_THROWS_WITH(a.clone().add_(0.5), Contains("add_") && Contains("0.5"));
  CHECK_THROWS_WITH(a.clone().mul_(0.5), Contains("mul_") && Contains("0.5"));
  CHECK_THROWS_WITH(a.clone().add_(a, 0.5), Contains("add_") && Contains("0.5"));
  // True division of int tensors would promote too.
  CHECK_THROWS_WITH(a / 2.0, Contains("div") && Contains("int64"));
  CHECK_THROWS_WITH(div(a, a), Contains("div") && Contains("int64"));
  CHECK_THROWS_WITH(2.0 / a, Contains("rdiv") && Contains("int64"));
  CHECK_THROWS(a.clone().div_(2.0));
  // NaN, infinities and out-of-range values have no int64 value at all (the C++ cast is undefined).
  CHECK_THROWS_WITH(a * kNaN, Contains("mul") && Contains("overflow"));
  CHECK_THROWS_WITH(a.clone().fill_(1e30), Contains("fill_") && Contains("overflow"));
  CHECK_THROWS_WITH(a.clone().fill_(kNaN), Contains("fill_"));
  CHECK_THROWS_WITH(full({2}, INFINITY, kInt64), Contains("full"));
  CHECK_THROWS_WITH(masked_fill(a, gt(a, 2.0), 1e19), Contains("masked_fill"));
  // Integral scalars stay exact; fill_, full and masked_fill truncate a fraction as PyTorch's do.
  check_same(doubles_of(a * 2.0), {0, 2, 4, 6, 8, 10}, "arange(6) * 2");
  check_same(doubles_of(a + 3.0), {3, 4, 5, 6, 7, 8}, "arange(6) + 3");
  check_same(doubles_of(clamp(a, 1.0, 3.0)), {1, 1, 2, 3, 3, 3}, "clamp(arange(6), 1, 3)");
  check_same(doubles_of(clamp(a, -INFINITY, 2.0)), {0, 1, 2, 2, 2, 2}, "clamp(arange(6), -inf, 2)");
  check_same(doubles_of(full({2}, 2.5, kInt64)), {2, 2}, "full(2.5, int64)");
  check_same(doubles_of(a.clone().fill_(-1.5)), {-1, -1, -1, -1, -1, -1}, "fill_(-1.5)");
  CHECK_THROWS_WITH(tensor({1.0, kNaN}, kInt64), Contains("tensor") && Contains("int64"));
  // Converting NaN, infinities or out-of-range floats to int64 was an undefined cast: now INT64_MIN, as
  // PyTorch's CPU conversion gives on x86; in-range values truncate toward zero.
  const double lowest = static_cast<double>(std::numeric_limits<int64_t>::min());
  check_same(doubles_of(tensor({kNaN, INFINITY, -INFINITY, 1e30, 2.7, -2.7}, kFloat64).to(kInt64)),
             {lowest, lowest, lowest, lowest, 2, -2}, "float64 -> int64");
  check_same(doubles_of(tensor({kNaN, 3.5}, kFloat32).to(kInt64)), {lowest, 3}, "float32 -> int64");
  // Float tensors take any scalar.
  check_same(doubles_of(arange(3, kFloat64) * 0.5), {0, 0.5, 1}, "float arange * 0.5");
}

TEST_CASE("edges: lp_pool2d of an all-zero window has gradient 0, not NaN", "[numerics][edges]") {
  // Windows (kernel 2, stride 2) of a [1, 1, 2, 4] input: [[0, 0], [0, 0]] and [[3, 0], [0, 4]].
  // p = 2: out = sqrt(sum x^2); d/dx = x / out: 0 for the zero window (PyTorch), 3/5 and 4/5 for the other.
  const std::vector<double> x = {0, 0, 3, 0, 0, 0, 0, 4};
  check_same(grad_of([](const Tensor& t) { return F::lp_pool2d(t, 2, 2); }, x, {1, 1, 2, 4}), {0, 0, 0.6, 0, 0, 0, 0, 0.8}, "lp_pool2d p=2");
  // p = 3: out = (sum x^3)^(1/3) = 91^(1/3); d/dx = x^2 / out^2.
  const double out3 = std::cbrt(91.0);
  check_same(grad_of([](const Tensor& t) { return F::lp_pool2d(t, 3, 2); }, x, {1, 1, 2, 4}),
             {0, 0, 9 / (out3 * out3), 0, 0, 0, 0, 16 / (out3 * out3)}, "lp_pool2d p=3");
  // Away from zero windows, the gradient is unchanged: gradcheck on a transposed (strided) view.
  manual_seed(13);
  Tensor leaf = add(rand({1, 2, 4, 6}, kFloat64), 0.5).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return F::lp_pool2d(transpose(t[0], 2, 3), 2, 2); }, {leaf}));
}

TEST_CASE("edges: std of a constant slice has gradient 0; var is unaffected", "[numerics][edges]") {
  // Row 0 is constant (std 0: PyTorch's gradient 0); row 1 = [1, 2, 3]: std 1, d std/dx = (x - mean) / ((n - 1) std).
  const std::vector<double> x = {2, 2, 2, 1, 2, 3};
  check_same(grad_of([](const Tensor& t) { return xg::std(t, {1}); }, x, {2, 3}), {0, 0, 0, -0.5, 0, 0.5}, "std dim");
  check_same(grad_of([](const Tensor& t) { return xg::std(t, {1}, false, true); }, x, {2, 3}),
             {0, 0, 0, -1 / std::sqrt(6.0), 0, 1 / std::sqrt(6.0)}, "std dim biased keepdim");
  check_same(grad_of([](const Tensor& t) { return xg::std(t); }, {5, 5, 5, 5}, {2, 2}), {0, 0, 0, 0}, "std all");
  // var: d/dx = 2 (x - mean) / (n - 1).
  check_same(grad_of([](const Tensor& t) { return var(t, {1}); }, x, {2, 3}), {0, 0, 0, -1, 0, 1}, "var dim");
  check_same(grad_of([](const Tensor& t) { return var(t); }, {5, 5, 5, 5}, {2, 2}), {0, 0, 0, 0}, "var all");
  Tensor leaf = tensor({0.3, -1.2, 2.0, 0.7, 1.1, -0.4}, {2, 3}, kFloat64).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return xg::std(transpose(t[0], 0, 1), {0}); }, {leaf}));
  CHECK(gradgradcheck_of([](const TensorList& t) { return xg::std(t[0], {1}); }, {leaf}));
}

TEST_CASE("edges: ties in inf-norm, max and min share or route the gradient as PyTorch's", "[numerics][edges]") {
  const std::vector<double> x = {1, -3, 3, 2, 0, 1};
  // norm(inf) along a dim: |x| = 3 is tied in row 0, so each gets half, times sign(x).
  check_same(grad_of([](const Tensor& t) { return norm(t, INFINITY, {1}); }, x, {2, 3}), {0, -0.5, 0.5, 1, 0, 0}, "norm inf dim");
  check_same(grad_of([](const Tensor& t) { return norm(t, INFINITY, {1}, true); }, x, {2, 3}), {0, -0.5, 0.5, 1, 0, 0}, "norm inf keepdim");
  check_same(grad_of([](const Tensor& t) { return norm(t, INFINITY, {0}); }, x, {2, 3}), {0, -1, 1, 1, 0, 0}, "norm inf dim 0");
  check_same(grad_of([](const Tensor& t) { return norm(t, INFINITY); }, x, {2, 3}), {0, -0.5, 0.5, 0, 0, 0}, "norm inf all");
  // A zero slice: norm 0, gradient 0 for every p.
  for (double p : {double(INFINITY), 2.0, 3.0, 0.5})
    check_same(grad_of([p](const Tensor& t) { return norm(t, p, {1}); }, {0, 0, 0, 0}, {2, 2}), {0, 0, 0, 0}, fmt::format("norm p={} at 0", p));
  // max/min over all elements split ties evenly; max/min along a dim give it to the returned index.
  check_same(grad_of([](const Tensor& t) { return max(t); }, {3, 1, 3}, {3}), {0.5, 0, 0.5}, "max all");
  check_same(grad_of([](const Tensor& t) { return min(t); }, {1, 1, 3, 1}, {4}), {1.0 / 3, 1.0 / 3, 0, 1.0 / 3}, "min all");
  check_same(grad_of([](const Tensor& t) { return std::get<0>(max(t, 1)); }, {3, 3, 1, 2, 5, 5}, {2, 3}), {1, 0, 0, 0, 1, 0}, "max dim");
  // NaN propagates through max/min and receives the gradient.
  Tensor m = tensor({1, kNaN, 2}, kFloat64).requires_grad_();
  Tensor mx = max(m);
  CHECK(std::isnan(mx.item<double>()));
  mx.backward();
  check_same(doubles_of(m.grad()), {0, 1, 0}, "max all NaN");
  check_same(grad_of([](const Tensor& t) { return std::get<0>(min(t, 1)); }, {1, kNaN, 2, 3, 0, 1}, {2, 3}), {0, 1, 0, 0, 1, 0}, "min dim NaN");
  Tensor leaf = tensor({0.3, -1.2, 2.0, 0.7, 1.1, -0.4}, {2, 3}, kFloat64).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return norm(transpose(t[0], 0, 1), INFINITY, {1}); }, {leaf}));
  CHECK(gradcheck_of([](const TensorList& t) { return norm(t[0], INFINITY, {0}, true); }, {leaf}));
  CHECK(gradcheck_of([](const TensorList& t) { return max(t[0]); }, {leaf}));
}

TEST_CASE("edges: nll_loss with every target ignored is NaN with gradient 0; empty batches", "[numerics][edges]") {
  // PyTorch 1.13: mean over zero total weight is 0/0 = NaN; no element is selected, so the gradient is 0.
  Tensor logp = log_softmax(tensor({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3}, kFloat64), 1).detach().requires_grad_();
  Tensor target = tensor({-100, -100}, {2}, kInt64);
  Tensor loss = F::nll_loss(logp, target);
  CHECK(std::isnan(loss.item<double>()));
  loss.backward();
  check_same(doubles_of(logp.grad()), {0, 0, 0, 0, 0, 0}, "nll_loss all ignored");
  Tensor logits = tensor({0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3}, kFloat64).requires_grad_();
  Tensor ce = F::cross_entropy(logits, target);
  CHECK(std::isnan(ce.item<double>()));
  ce.backward();
  check_same(doubles_of(logits.grad()), {0, 0, 0, 0, 0, 0}, "cross_entropy all ignored");
  // An empty batch: "mean" is NaN (0/0), "sum" is 0, and backward runs (an empty gradient).
  Tensor empty_in = zeros({0, 3}, kFloat64).requires_grad_();
  Tensor empty_target = zeros({0}, kInt64);
  for (const Tensor& l : {F::mse_loss(empty_in, zeros({0, 3}, kFloat64)), F::cross_entropy(empty_in, empty_target),
                          F::nll_loss(empty_in, empty_target), F::cross_entropy(empty_in, zeros({0, 3}, kFloat64))}) {
    CHECK(std::isnan(l.item<double>()));
    l.backward();
    CHECK(empty_in.grad().shape() == Shape{0, 3});
  }
  CHECK(F::mse_loss(empty_in, zeros({0, 3}, kFloat64), F::MSELossFuncOptions().reduction("sum")).item<double>() == 0);
  // kl_div "batchmean" divides the sum by N: 0 / 0 = NaN for an empty batch, as PyTorch.
  Tensor kl = F::kl_div(empty_in, zeros({0, 3}, kFloat64), F::KLDivFuncOptions().reduction("batchmean"));
  CHECK(std::isnan(kl.item<double>()));
  kl.backward();
  CHECK(empty_in.grad().shape() == Shape{0, 3});
}

TEST_CASE("edges: mean over no elements and var or std without degrees of freedom are NaN, as PyTorch", "[numerics][edges]") {
  // mean of zero elements is 0/0 = NaN with an empty gradient, over all dims or some.
  Tensor empty = zeros({0, 3}, kFloat64).requires_grad_();
  Tensor m = mean(empty, {0});
  REQUIRE(m.shape() == Shape{3});
  check_same(doubles_of(m), {kNaN, kNaN, kNaN}, "mean over an empty dim");
  m.sum().backward();
  CHECK(empty.grad().shape() == Shape{0, 3});
  CHECK(std::isnan(mean(zeros({2, 0}, kFloat64)).item<double>()));
  CHECK(mean(zeros({2, 0}, kFloat64), {1}).shape() == Shape{2});
  // var/std with one element per slice (unbiased: n - 1 = 0) or none: NaN values and NaN gradients.
  Tensor x = tensor({2.0, 3.0}, {1, 2}, kFloat64).requires_grad_();
  Tensor v = var(x, {0});
  check_same(doubles_of(v), {kNaN, kNaN}, "var of one row");
  v.sum().backward();
  check_same(doubles_of(x.grad()), {kNaN, kNaN}, "var's gradient without degrees of freedom");
  Tensor y = tensor({2.0, 3.0}, {1, 2}, kFloat64).requires_grad_();
  Tensor s = xg::std(y, {0});
  check_same(doubles_of(s), {kNaN, kNaN}, "std of one row");
  s.sum().backward();
  check_same(doubles_of(y.grad()), {kNaN, kNaN}, "std's gradient without degrees of freedom");
  CHECK(std::isnan(var(zeros({0}, kFloat64), {}, false).item<double>()));
  // With degrees of freedom left the usual values: var([2, 3]) = 0.5 (unbiased), 0.25 (biased).
  CHECK(var(tensor({2.0, 3.0}, kFloat64)).item<double>() == Approx(0.5));
  CHECK(var(tensor({2.0, 3.0}, kFloat64), {}, false).item<double>() == Approx(0.25));
}

TEST_CASE("edges: NaN propagates through relu, maximum/minimum and elu with PyTorch's gradients", "[numerics][edges]") {
  // relu = clamp_min(x, 0): relu(NaN) = NaN; its backward masks only where the output is <= 0.
  Tensor r = relu(tensor({kNaN, 1, -1}, kFloat64));
  check_same(doubles_of(r), {kNaN, 1, 0}, "relu");
  check_same(grad_of([](const Tensor& t) { return relu(t); }, {kNaN, 1, -1}, {3}), {1, 1, 0}, "relu grad");
  check_same(doubles_of(leaky_relu(tensor({kNaN, -2}, kFloat64), 0.1)), {kNaN, -0.2}, "leaky_relu");
  check_same(grad_of([](const Tensor& t) { return leaky_relu(t, 0.1); }, {kNaN, -2, 3}, {3}), {0.1, 0.1, 1}, "leaky_relu grad");
  // clamp(NaN) = NaN with gradient 0 (PyTorch's clamp_backward: where(min <= x <= max, g, 0)).
  check_same(doubles_of(clamp(tensor({kNaN, 5}, kFloat64), -1.0, 1.0)), {kNaN, 1}, "clamp");
  check_same(grad_of([](const Tensor& t) { return clamp(t, -1.0, 1.0); }, {kNaN, 5, 0.5}, {3}), {0, 0, 1}, "clamp grad");
  // elu(NaN) = NaN; its backward takes the x > 0 branch unless x <= 0, so NaN passes the gradient.
  check_same(grad_of([](const Tensor& t) { return elu(t); }, {kNaN, 2}, {2}), {1, 1}, "elu grad");
  Tensor e = tensor({-1.5, 0.5, -0.2, 2.0, 0.7, -3.0}, {2, 3}, kFloat64).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return elu(transpose(t[0], 0, 1), 1.5); }, {e}));
  CHECK(gradgradcheck_of([](const TensorList& t) { return elu(t[0], 1.5); }, {e}));
  // maximum/minimum: a NaN in either operand wins; PyTorch's backward zeroes an operand only where it
  // strictly loses (so at a NaN both get the gradient) and halves it at a tie.
  const std::vector<double> a = {kNaN, 1, 2, 5}, b = {0, kNaN, 2, 1};
  check_same(doubles_of(maximum(tensor(a, {4}, kFloat64), tensor(b, {4}, kFloat64))), {kNaN, kNaN, 2, 5}, "maximum");
  check_same(doubles_of(minimum(tensor(a, {4}, kFloat64), tensor(b, {4}, kFloat64))), {kNaN, kNaN, 2, 1}, "minimum");
  Tensor ta = tensor(a, {4}, kFloat64).requires_grad_(), tb = tensor(b, {4}, kFloat64).requires_grad_();
  sum(maximum(ta, tb)).backward();
  check_same(doubles_of(ta.grad()), {1, 1, 0.5, 1}, "maximum grad a");
  check_same(doubles_of(tb.grad()), {1, 1, 0.5, 0}, "maximum grad b");
  Tensor ua = tensor(a, {4}, kFloat64).requires_grad_(), ub = tensor(b, {4}, kFloat64).requires_grad_();
  sum(minimum(ua, ub)).backward();
  check_same(doubles_of(ua.grad()), {1, 1, 0.5, 0}, "minimum grad a");
  check_same(doubles_of(ub.grad()), {1, 1, 0.5, 1}, "minimum grad b");
  Tensor p = tensor({0.3, -1.2, 2.0}, kFloat64).requires_grad_(), q = tensor({0.1}, kFloat64).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return maximum(t[0], t[1]); }, {p, q}));  // broadcast operand
  CHECK(gradcheck_of([](const TensorList& t) { return minimum(t[0], t[1]); }, {p, q}));
}

TEST_CASE("edges: pow at base 0 has PyTorch's gradients for both the base and the exponent", "[numerics][edges]") {
  // d/dx x^e = e x^(e-1), but 0 where e == 0 (PyTorch); d/de x^e = x^e log x, but 0 where x == 0 and e >= 0.
  Tensor x = tensor({0, 0, 0, 0, 2, 4}, kFloat64).requires_grad_();
  Tensor e = tensor({0, 1, 2, -1, 0, 0.5}, kFloat64).requires_grad_();
  sum(pow(x, e)).backward();
  const std::vector<double> gx = doubles_of(x.grad()), ge = doubles_of(e.grad());
  check_same({gx[0], gx[1], gx[2], gx[4], gx[5]}, {0, 1, 0, 0, 0.25}, "d/dbase");
  CHECK((std::isinf(gx[3]) && gx[3] < 0));  // -1 * 0^-2 = -inf, as PyTorch
  check_same({ge[0], ge[1], ge[2], ge[4], ge[5]}, {0, 0, 0, std::log(2.0), 2 * std::log(4.0)}, "d/dexponent");
  CHECK((std::isinf(ge[3]) && ge[3] < 0));  // 0^-1 log 0 = inf * -inf, as PyTorch
  // Scalar exponent 0 and scalar base 0.
  check_same(grad_of([](const Tensor& t) { return pow(t, 0.0); }, {0, 3}, {2}), {0, 0}, "x^0");
  check_same(grad_of([](const Tensor& t) { return pow(0.0, t); }, {0, 1, 2}, {3}), {0, 0, 0}, "0^e");
  // Gradchecks, with a broadcast exponent, away from 0.
  Tensor base = tensor({0.5, 1.5, 2.5, 0.7, 1.2, 3.0}, {2, 3}, kFloat64).requires_grad_();
  Tensor exponent = tensor({0.0, 1.5, -0.5}, {3}, kFloat64).requires_grad_();
  CHECK(gradcheck_of([](const TensorList& t) { return pow(t[0], t[1]); }, {base, exponent}));
  CHECK(gradgradcheck_of([](const TensorList& t) { return pow(t[0], t[1]); }, {base, exponent}));
}

TEST_CASE("edges: NaN or negative eps is rejected by every normalization, functional or module", "[numerics][edges]") {
  Tensor x = randn({2, 4, 3}, kFloat64);
  for (double eps : {kNaN, -1e-5}) {
    INFO("eps = " << eps);
    CHECK_THROWS_WITH(F::layer_norm(x, F::LayerNormFuncOptions({3}).eps(eps)), Contains("layer_norm") && Contains("eps"));
    CHECK_THROWS_WITH(F::group_norm(x, F::GroupNormFuncOptions(2).eps(eps)), Contains("group_norm") && Contains("eps"));
    CHECK_THROWS_WITH(F::batch_norm(x, Tensor(), Tensor(), F::BatchNormFuncOptions().training(true).eps(eps)),
                      Contains("batch_norm") && Contains("eps"));
    CHECK_THROWS_WITH(nn::LayerNorm(nn::LayerNormOptions({3}).eps(eps)), Contains("LayerNorm") && Contains("eps"));
    CHECK_THROWS_WITH(nn::GroupNorm(nn::GroupNormOptions(2, 4).eps(eps)), Contains("GroupNorm") && Contains("eps"));
    CHECK_THROWS_WITH(nn::BatchNorm1d(nn::BatchNormOptions(4).eps(eps)), Contains("BatchNorm") && Contains("eps"));
  }
  CHECK(F::layer_norm(x, F::LayerNormFuncOptions({3}).eps(0.0)).shape() == x.shape());
}

TEST_CASE("edges: normalizations, softmax and losses on a batch of 0 return empty results and backward runs", "[numerics][edges]") {
  nn::GroupNorm gn(2, 4);
  nn::LayerNorm ln(nn::LayerNormOptions({3}));
  nn::BatchNorm1d bn(4);
  for (auto& [name, layer] : std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>>{
           {"GroupNorm", [&](const Tensor& t) { return gn(t); }},
           {"LayerNorm", [&](const Tensor& t) { return ln(t); }},
           {"BatchNorm1d", [&](const Tensor& t) { return bn(t); }},
           {"softmax", [](const Tensor& t) { return softmax(t, 1); }},
           {"log_softmax", [](const Tensor& t) { return log_softmax(t, 1); }}}) {
    INFO(name);
    Tensor x = zeros({0, 4, 3}).requires_grad_();
    Tensor y = layer(x);
    CHECK(y.shape() == Shape{0, 4, 3});
    sum(y).backward();
    CHECK(x.grad().shape() == Shape{0, 4, 3});
  }
  // Nothing was normalised: the parameters get zero gradients and the running statistics are untouched.
  check_same(doubles_of(gn->weight.grad()), {0, 0, 0, 0}, "GroupNorm weight grad");
  check_same(doubles_of(bn->running_mean), {0, 0, 0, 0}, "BatchNorm running_mean");
  check_same(doubles_of(bn->running_var), {1, 1, 1, 1}, "BatchNorm running_var");
}

// Pooling: forward values (and max-pool indices) against naive loops written here, PyTorch's
// output-size rule (ceil_mode's last-window correction) on hand-worked sizes, float64 gradcheck and
// gradgradcheck away from ties, modules' printing and shapes, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/gradcheck.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/nn/pooling.hpp"

using namespace xg;
namespace F = xg::nn::functional;
using Catch::Matchers::Contains;
using xg::nn::ExpandingArray;

namespace {

std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

void check_close(const Tensor& actual, const std::vector<double>& expected, double tolerance = 1e-12) {
  std::vector<double> got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expected[i]));
  CHECK(worst <= tolerance);
}

/// Distinct values (a shuffled 0.1-spaced ramp, centred): no ties, so max pooling is differentiable.
Tensor distinct(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return ((randperm(n).to(kFloat64) - double(n) / 2) * 0.1).reshape(shape);
}

/// PyTorch's pooling_output_shape, written out again for the references.
int64_t out_size(int64_t in, int64_t k, int64_t p, int64_t s, int64_t d, bool ceil_mode) {
  const double span = double(in + 2 * p - d * (k - 1) - 1) / double(s);
  int64_t out = int64_t(ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

struct Pool {
  int64_t kh, kw, sh, sw, ph = 0, pw = 0, dh = 1, dw = 1;
  bool ceil_mode = false;
};

/// Naive max pooling over planes [P, H, W]: values and flat argmax (first maximum in scan order).
void naive_max_pool(const std::vector<double>& x, int64_t P, int64_t H, int64_t W, const Pool& c, std::vector<double>& values,
                    std::vector<int64_t>& indices, int64_t& OH, int64_t& OW) {
  OH = out_size(H, c.kh, c.ph, c.sh, c.dh, c.ceil_mode);
  OW = out_size(W, c.kw, c.pw, c.sw, c.dw, c.ceil_mode);
  values.assign(size_t(P * OH * OW), 0.0);
  indices.assign(size_t(P * OH * OW), -1);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t y = 0; y < OH; ++y)
      for (int64_t z = 0; z < OW; ++z) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t arg = -1;
        for (int64_t i = 0; i < c.kh; ++i)
          for (int64_t j = 0; j < c.kw; ++j) {
            const int64_t h = y * c.sh - c.ph + i * c.dh, w = z * c.sw - c.pw + j * c.dw;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            if (arg < 0 || x[(p * H + h) * W + w] > best) {
              best = x[(p * H + h) * W + w];
              arg = h * W + w;
            }
          }
        values[(p * OH + y) * OW + z] = best;
        indices[(p * OH + y) * OW + z] = arg;
      }
}

/// Naive avg_pool2d from PyTorch's documented window rule.
std::vector<double> naive_avg_pool(const std::vector<double>& x, int64_t P, int64_t H, int64_t W, const Pool& c, bool count_include_pad,
                                   int64_t divisor_override, int64_t& OH, int64_t& OW) {
  OH = out_size(H, c.kh, c.ph, c.sh, 1, c.ceil_mode);
  OW = out_size(W, c.kw, c.pw, c.sw, 1, c.ceil_mode);
  std::vector<double> out(size_t(P * OH * OW), 0.0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t y = 0; y < OH; ++y)
      for (int64_t z = 0; z < OW; ++z) {
        const int64_t h0 = y * c.sh - c.ph, w0 = z * c.sw - c.pw;
        const int64_t h1 = std::min(h0 + c.kh, H + c.ph), w1 = std::min(w0 + c.kw, W + c.pw);
        const int64_t padded_count = (h1 - h0) * (w1 - w0);
        double total = 0;
        int64_t inside = 0;
        for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h1, H); ++h)
          for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w1, W); ++w) {
            total += x[(p * H + h) * W + w];
            ++inside;
          }
        const double divisor = divisor_override ? double(divisor_override) : count_include_pad ? double(padded_count) : double(inside);
        out[(p * OH + y) * OW + z] = inside == 0 ? 0.0 : total / divisor;
      }
  return out;
}

bool checks(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs, bool second_order) {
  return autograd::gradcheck(f, inputs) && (!second_order || autograd::gradgradcheck(f, inputs));
}

}  // namespace

TEST_CASE("pooling output sizes follow PyTorch's rule, including ceil_mode's last-window correction", "[nn][pooling]") {
  // Worked by hand: floor/ceil of (in + 2p - d(k-1) - 1) / s, + 1; with ceil_mode a window that would
  // start at or past in + p is dropped.
  CHECK(F::max_pool2d(zeros({1, 1, 5, 5}), 2).shape() == Shape{1, 1, 2, 2});
  CHECK(F::max_pool2d(zeros({1, 1, 5, 5}), 2, std::nullopt, 0, 1, true).shape() == Shape{1, 1, 3, 3});
  // in 5, k 3, s 3, p 1: ceil((5+2-3)/3) + 1 = 3, but the third window would start at 6 - 1 = 5 = in: dropped.
  CHECK(F::max_pool2d(zeros({1, 1, 5, 5}), 3, 3, 1, 1, true).shape() == Shape{1, 1, 2, 2});
  CHECK(F::avg_pool2d(zeros({1, 5, 5}), 3, 3, 1, true).shape() == Shape{1, 2, 2});
  // in 6, k 3, s 2, p 1: floor 3, ceil 4 (the last window starts at 6 - 1 = 5 < 7).
  CHECK(F::max_pool2d(zeros({2, 6, 6}), 3, 2, 1).shape() == Shape{2, 3, 3});
  CHECK(F::max_pool2d(zeros({2, 6, 6}), 3, 2, 1, 1, true).shape() == Shape{2, 4, 4});
  // dilation 2, k 3: effective 5; in 9 -> (9 - 5)/2 + 1 = 3.
  CHECK(F::max_pool1d(zeros({1, 3, 9}), 3, 2, 0, 2).shape() == Shape{1, 3, 3});
  CHECK(F::adaptive_avg_pool2d(zeros({2, 3, 7, 5}), {3, 4}).shape() == Shape{2, 3, 3, 4});
  CHECK(F::lp_pool2d(zeros({1, 2, 7, 7}), 2, 3, 2, true).shape() == Shape{1, 2, 3, 3});
}

TEST_CASE("max_pool2d / max_pool1d values and indices match a naive loop", "[nn][pooling]") {
  manual_seed(21);
  std::vector<Pool> configs{
      {2, 2, 2, 2},
      {3, 3, 2, 2, 1, 1},
      {3, 2, 2, 1, 1, 1, 1, 1, true},
      {3, 3, 2, 3, 1, 0, 2, 2},
      {3, 3, 3, 3, 1, 1, 1, 1, true},
      {2, 3, 3, 2, 0, 1, 2, 1, true},
  };
  for (size_t k = 0; k < configs.size(); ++k) {
    const Pool& c = configs[k];
    INFO("config " << k);
    Tensor x = randn({2, 3, 7, 8}, kFloat64);
    std::vector<double> values;
    std::vector<int64_t> indices;
    int64_t OH = 0, OW = 0;
    naive_max_pool(values_of(x), 6, 7, 8, c, values, indices, OH, OW);
    auto [y, index] = F::max_pool2d_with_indices(x, ExpandingArray<2>{c.kh, c.kw}, ExpandingArray<2>{c.sh, c.sw},
                                                 ExpandingArray<2>{c.ph, c.pw}, ExpandingArray<2>{c.dh, c.dw}, c.ceil_mode);
    CHECK(y.shape() == Shape{2, 3, OH, OW});
    CHECK(index.dtype() == kInt64);
    check_close(y, values);
    CHECK(std::vector<int64_t>(index.data_ptr<int64_t>(), index.data_ptr<int64_t>() + index.numel()) == indices);
    // Unbatched input gives the same planes.
    check_close(F::max_pool2d(x.narrow(0, 0, 1).squeeze(0), ExpandingArray<2>{c.kh, c.kw}, ExpandingArray<2>{c.sh, c.sw},
                              ExpandingArray<2>{c.ph, c.pw}, ExpandingArray<2>{c.dh, c.dw}, c.ceil_mode),
                std::vector<double>(values.begin(), values.begin() + 3 * OH * OW));
  }
  // 1-D: planes of height 1, indices into each row.
  Tensor x = randn({2, 2, 10}, kFloat64);
  std::vector<double> values;
  std::vector<int64_t> indices;
  int64_t OH = 0, OW = 0;
  naive_max_pool(values_of(x), 4, 1, 10, {1, 3, 1, 2, 0, 1, 1, 2, true}, values, indices, OH, OW);
  auto [y, index] = F::max_pool1d_with_indices(x, 3, 2, 1, 2, true);
  CHECK(y.shape() == Shape{2, 2, OW});
  check_close(y, values);
  CHECK(std::vector<int64_t>(index.data_ptr<int64_t>(), index.data_ptr<int64_t>() + index.numel()) == indices);
  CHECK(F::max_pool1d(x.narrow(0, 0, 1).squeeze(0), 3, 2, 1, 2, true).shape() == Shape{2, OW});
  // Ties go to the first maximum in scan order, as in PyTorch.
  auto [tied, tied_index] = F::max_pool2d_with_indices(ones({1, 1, 2, 2}), 2);
  CHECK(tied_index.item<int64_t>() == 0);
}

TEST_CASE("max pooling gradcheck and gradgradcheck away from ties", "[nn][pooling]") {
  manual_seed(22);
  Tensor x = distinct({2, 2, 5, 6}).requires_grad_();
  CHECK(checks([](const TensorList& t) { return F::max_pool2d(t[0], {3, 2}, {2, 2}, 1, 1, true); }, {x}, true));
  CHECK(checks([](const TensorList& t) { return F::max_pool2d(t[0], 2, 1, 0, 2); }, {x}, false));
  Tensor u = distinct({3, 5, 6}).requires_grad_();
  CHECK(checks([](const TensorList& t) { return F::max_pool2d(t[0], 3, 2, 1); }, {u}, false));
  Tensor r = distinct({2, 3, 9}).requires_grad_();
  CHECK(checks([](const TensorList& t) { return F::max_pool1d(t[0], 3, 2, 1, 1, true); }, {r}, true));
  // The gradient lands on the argmax positions only.
  Tensor v = distinct({1, 1, 4, 4}).requires_grad_();
  auto [y, index] = F::max_pool2d_with_indices(v, 2);
  y.sum().backward();
  CHECK(v.grad().sum().item<double>() == 4.0);
  for (int64_t k = 0; k < 4; ++k) CHECK(v.grad().reshape({16}).narrow(0, index.reshape({4}).narrow(0, k, 1).item<int64_t>(), 1).item<double>() == 1.0);
}

TEST_CASE("avg_pool2d matches a naive loop for padding, ceil_mode, count_include_pad and divisor_override", "[nn][pooling]") {
  manual_seed(23);
  struct Case {
    Pool pool;
    bool count_include_pad;
    int64_t divisor_override;
  };
  std::vector<Case> cases{
      {{2, 2, 2, 2}, true, 0},
      {{3, 3, 2, 2, 1, 1}, true, 0},
      {{3, 3, 2, 2, 1, 1}, false, 0},
      {{3, 2, 2, 1, 1, 1, 1, 1, true}, true, 0},
      {{3, 2, 2, 1, 1, 1, 1, 1, true}, false, 0},
      {{2, 3, 3, 2, 1, 0, 1, 1, true}, true, 5},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    INFO("case " << k);
    Tensor x = randn({2, 2, 7, 6}, kFloat64);
    int64_t OH = 0, OW = 0;
    std::vector<double> expected = naive_avg_pool(values_of(x), 4, 7, 6, c.pool, c.count_include_pad, c.divisor_override, OH, OW);
    std::optional<int64_t> divisor = c.divisor_override ? std::optional<int64_t>(c.divisor_override) : std::nullopt;
    Tensor y = F::avg_pool2d(x, ExpandingArray<2>{c.pool.kh, c.pool.kw}, ExpandingArray<2>{c.pool.sh, c.pool.sw},
                             ExpandingArray<2>{c.pool.ph, c.pool.pw}, c.pool.ceil_mode, c.count_include_pad, divisor);
    CHECK(y.shape() == Shape{2, 2, OH, OW});
    check_close(y, expected);
    Tensor leaf = x.detach().requires_grad_();
    auto f = [&](const TensorList& t) {
      return F::avg_pool2d(t[0], ExpandingArray<2>{c.pool.kh, c.pool.kw}, ExpandingArray<2>{c.pool.sh, c.pool.sw},
                           ExpandingArray<2>{c.pool.ph, c.pool.pw}, c.pool.ceil_mode, c.count_include_pad, divisor);
    };
    CHECK(checks(f, {leaf}, k == 4));
  }
  // Hand-worked: a 2x2 input, kernel 2, padding 1: each window holds one pixel of 4 (include pad) or 1.
  Tensor x = tensor({1, 2, 3, 4}, {1, 2, 2}, kFloat64);
  check_close(F::avg_pool2d(x, 2, 2, 1), {0.25, 0.5, 0.75, 1.0});
  check_close(F::avg_pool2d(x, 2, 2, 1, false, false), {1, 2, 3, 4});
}

TEST_CASE("adaptive_avg_pool2d uses PyTorch's floor/ceil windows", "[nn][pooling]") {
  manual_seed(24);
  for (const auto& [in, out] : std::vector<std::pair<Shape, Shape>>{{{7, 5}, {3, 2}}, {{4, 3}, {6, 5}}, {{6, 6}, {1, 1}}, {{5, 7}, {5, 7}}}) {
    const int64_t H = in[0], W = in[1], OH = out[0], OW = out[1];
    Tensor x = randn({2, 3, H, W}, kFloat64);
    std::vector<double> xv = values_of(x), expected;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          const auto h0 = int64_t(std::floor(double(i * H) / OH)), h1 = int64_t(std::ceil(double((i + 1) * H) / OH));
          const auto w0 = int64_t(std::floor(double(j * W) / OW)), w1 = int64_t(std::ceil(double((j + 1) * W) / OW));
          double total = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) total += xv[(p * H + h) * W + w];
          expected.push_back(total / double((h1 - h0) * (w1 - w0)));
        }
    Tensor y = F::adaptive_avg_pool2d(x, {OH, OW});
    CHECK(y.shape() == Shape{2, 3, OH, OW});
    check_close(y, expected);
    CHECK(F::adaptive_avg_pool2d(x.narrow(0, 0, 1).squeeze(0), {OH, OW}).shape() == Shape{3, OH, OW});
  }
  CHECK(F::adaptive_avg_pool2d(ones({1, 1, 4, 4}), 1).item<double>() == 1.0);
  Tensor x = randn({1, 2, 5, 7}, kFloat64).requires_grad_();
  CHECK(checks([](const TensorList& t) { return F::adaptive_avg_pool2d(t[0], {3, 4}); }, {x}, true));
}

TEST_CASE("lp_pool2d is (sum x^p)^(1/p), with PyTorch's kernel-area scaling on ceil_mode's partial windows", "[nn][pooling]") {
  manual_seed(25);
  Tensor x = add(rand({1, 2, 6, 6}, kFloat64), 0.5);
  std::vector<double> xv = values_of(x);
  for (double p : {2.0, 3.0}) {
    std::vector<double> expected;
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 2; ++j) {
          double total = 0;
          for (int64_t h = 2 * i; h < 2 * i + 3; ++h)
            for (int64_t w = 2 * j; w < 2 * j + 3; ++w) total += std::pow(xv[(c * 6 + h) * 6 + w], p);
          expected.push_back(std::pow(total, 1.0 / p));
        }
    check_close(F::lp_pool2d(x, p, 3, 2), expected, 1e-12);
  }
  // ceil_mode on 3x3 with kernel 2: the partial windows are scaled by area / count = 4 / 2 or 4 / 1.
  Tensor small = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3}, kFloat64);
  check_close(F::lp_pool2d(small, 2, 2, std::nullopt, true),
              {std::sqrt(1 + 4 + 16 + 25.0), std::sqrt((9 + 36.0) * 2), std::sqrt((49 + 64.0) * 2), std::sqrt(81.0 * 4)}, 1e-12);
  Tensor leaf = x.detach().requires_grad_();
  CHECK(checks([](const TensorList& t) { return F::lp_pool2d(t[0], 2, {3, 2}, 2, true); }, {leaf}, false));
  CHECK(checks([](const TensorList& t) { return F::lp_pool2d(t[0], 3, 2); }, {leaf}, false));
}

TEST_CASE("pooling modules: shapes, indices and PyTorch's printing", "[nn][pooling]") {
  manual_seed(26);
  nn::MaxPool2d pool(2);
  CHECK(pool->extra_repr() == "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False");
  CHECK(pool->name() == "MaxPool2d");
  CHECK(pool(randn({4, 32, 28, 28})).shape() == Shape{4, 32, 14, 14});
  CHECK(pool(randn({32, 28, 28})).shape() == Shape{32, 14, 14});
  nn::MaxPool2d custom(nn::MaxPool2dOptions({3, 2}).stride(2).padding(1).ceil_mode(true));
  CHECK(custom->extra_repr() == "kernel_size=(3, 2), stride=2, padding=1, dilation=1, ceil_mode=True");
  Tensor x = distinct({1, 2, 5, 5});
  auto [values, indices] = custom->forward_with_indices(x);
  auto [values2, indices2] = F::max_pool2d_with_indices(x, {3, 2}, ExpandingArray<2>(2), 1, 1, true);
  CHECK(equal(values, values2));
  CHECK(equal(indices, indices2));
  CHECK(equal(custom(x), values));

  nn::MaxPool1d pool1(nn::MaxPool1dOptions(3).stride(1));
  CHECK(pool1->extra_repr() == "kernel_size=3, stride=1, padding=0, dilation=1, ceil_mode=False");
  CHECK(pool1(randn({2, 4, 10})).shape() == Shape{2, 4, 8});
  CHECK(std::get<1>(pool1->forward_with_indices(randn({4, 10}))).shape() == Shape{4, 8});

  nn::AvgPool2d avg(3);
  CHECK(avg->extra_repr() == "kernel_size=3, stride=3, padding=0");
  CHECK(avg(randn({1, 2, 9, 9})).shape() == Shape{1, 2, 3, 3});
  nn::AvgPool2d avg_custom(nn::AvgPool2dOptions({2, 2}).stride(1).padding(1).count_include_pad(false).divisor_override(3));
  CHECK(avg_custom->extra_repr() == "kernel_size=(2, 2), stride=1, padding=1");
  Tensor a = randn({2, 4, 4}, kFloat64);
  CHECK(equal(avg_custom(a), F::avg_pool2d(a, 2, 1, 1, false, false, 3)));

  nn::AdaptiveAvgPool2d adaptive(nn::AdaptiveAvgPool2dOptions({5, 7}));
  CHECK(adaptive->extra_repr() == "output_size=(5, 7)");
  CHECK(adaptive(randn({2, 3, 10, 9})).shape() == Shape{2, 3, 5, 7});
  CHECK(nn::AdaptiveAvgPool2d(1)->extra_repr() == "output_size=1");

  nn::LPPool2d lp(2, 3);
  CHECK(lp->extra_repr() == "norm_type=2, kernel_size=3, stride=None, ceil_mode=False");
  CHECK(lp(rand({1, 1, 6, 6})).shape() == Shape{1, 1, 2, 2});
  nn::LPPool2d lp_custom(nn::LPPool2dOptions(1.5, {2, 3}).stride(ExpandingArray<2>{1, 2}).ceil_mode(true));
  CHECK(lp_custom->extra_repr() == "norm_type=1.5, kernel_size=(2, 3), stride=(1, 2), ceil_mode=True");
  CHECK(lp_custom(rand({3, 4, 6})).shape() == Shape{3, 3, 3});
}

TEST_CASE("pooling errors name the op and the shapes", "[nn][pooling]") {
  CHECK_THROWS_WITH(F::max_pool2d(randn({4, 4}), 2), Contains("max_pool2d: expected a 3-D (unbatched) or 4-D (batched) input, got shape [4, 4]"));
  CHECK_THROWS_WITH(F::max_pool1d(randn({1, 2, 3, 4}), 2), Contains("max_pool1d") && Contains("[1, 2, 3, 4]"));
  CHECK_THROWS_WITH(F::max_pool2d(randn({1, 1, 2, 2}), 3), Contains("max_pool2d") && Contains("[1, 1, 2, 2]") && Contains("too small"));
  CHECK_THROWS_WITH(F::max_pool2d(randn({1, 1, 8, 8}), 3, 1, 2), Contains("pad should be at most half of kernel size") && Contains("(2, 2)"));
  CHECK_THROWS_WITH(nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)), Contains("MaxPool2d: pad should be at most half of kernel size"));
  CHECK_THROWS_WITH(nn::MaxPool1d(nn::MaxPool1dOptions(2).stride(0)), Contains("MaxPool1d: stride must be positive"));
  nn::MaxPool2d pool(3);
  CHECK_THROWS_WITH(pool(randn({2, 1, 2, 2})), Contains("MaxPool2d") && Contains("[2, 1, 2, 2]"));
  CHECK_THROWS_WITH(pool(randn({2})), Contains("MaxPool2d") && Contains("[2]"));
  CHECK_THROWS_WITH(F::avg_pool2d(randn({1, 4, 4}), 2, 2, 0, false, true, 0), Contains("avg_pool2d: divisor_override must be nonzero"));
  CHECK_THROWS_WITH(nn::AvgPool2d(nn::AvgPool2dOptions(3).padding(2)), Contains("AvgPool2d: pad should be at most half"));
  CHECK_THROWS_WITH(F::adaptive_avg_pool2d(randn({1, 4, 4}), {0, 2}), Contains("adaptive_avg_pool2d: output_size must be positive"));
  CHECK_THROWS_WITH(F::adaptive_avg_pool2d(randn({1, 0, 4}), 2), Contains("non-empty spatial dimensions") && Contains("[1, 0, 4]"));
  CHECK_THROWS_WITH(nn::LPPool2d(0, 2), Contains("LPPool2d: norm_type must be positive"));
  CHECK_THROWS_WITH(F::max_pool2d(randint(0, 3, {1, 4, 4}), 2), Contains("max_pool2d") && Contains("int64"));
}

TEST_CASE("pooling split over threads matches the naive loops, forward and backward", "[nn][pooling][parallel]") {
  // Large enough that every pooling kernel splits its planes over 2 threads.
  const int saved = get_num_threads();
  set_num_threads(2);
  manual_seed(26);
  const int64_t N = 16, C = 8, H = 30, W = 28, P = N * C;
  Tensor x = randn({N, C, H, W}, kFloat64);
  const std::vector<double> xv = values_of(x);
  for (const Pool& c : {Pool{2, 2, 2, 2}, Pool{3, 3, 2, 2, 1, 1}}) {
    INFO("kernel " << c.kh << ", padding " << c.ph);
    std::vector<double> values;
    std::vector<int64_t> indices;
    int64_t OH = 0, OW = 0;
    naive_max_pool(xv, P, H, W, c, values, indices, OH, OW);
    Tensor leaf = x.detach().requires_grad_();
    auto [y, index] = F::max_pool2d_with_indices(leaf, ExpandingArray<2>{c.kh, c.kw}, ExpandingArray<2>{c.sh, c.sw},
                                                 ExpandingArray<2>{c.ph, c.pw});
    check_close(y, values);
    CHECK(std::vector<int64_t>(index.data_ptr<int64_t>(), index.data_ptr<int64_t>() + index.numel()) == indices);
    // Backward of sum(y * g): g added at each window's argmax.
    Tensor g = randn(y.shape(), kFloat64);
    sum(mul(y, g)).backward();
    const std::vector<double> gv = values_of(g);
    std::vector<double> expected(xv.size(), 0.0);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t o = 0; o < OH * OW; ++o) expected[size_t(p * H * W + indices[size_t(p * OH * OW + o)])] += gv[size_t(p * OH * OW + o)];
    check_close(leaf.grad(), expected);
  }
  // Average pooling with padding (the general window path), forward and backward.
  const Pool c{3, 3, 2, 2, 1, 1};
  int64_t OH = 0, OW = 0;
  const std::vector<double> expected = naive_avg_pool(xv, P, H, W, c, true, 0, OH, OW);
  Tensor leaf = x.detach().requires_grad_();
  Tensor y = F::avg_pool2d(leaf, 3, 2, 1);
  check_close(y, expected);
  Tensor g = randn(y.shape(), kFloat64);
  sum(mul(y, g)).backward();
  const std::vector<double> gv = values_of(g);
  std::vector<double> grad(xv.size(), 0.0);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t oz = 0; oz < OW; ++oz)
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 3; ++j) {
            const int64_t h = oy * 2 - 1 + i, w = oz * 2 - 1 + j;
            if (h >= 0 && h < H && w >= 0 && w < W) grad[size_t((p * H + h) * W + w)] += gv[size_t((p * OH + oy) * OW + oz)] / 9.0;
          }
  check_close(leaf.grad(), grad);
  set_num_threads(saved);
}

TEST_CASE("double backward of pooling alone gives zeros that require grad, as PyTorch", "[nn][pooling][double_backward]") {
  manual_seed(25);
  using Pool = std::function<Tensor(const Tensor&)>;
  std::vector<std::pair<const char*, Pool>> pools = {
      {"max_pool2d", [](const Tensor& t) { return F::max_pool2d(t, 2); }},
      {"max_pool1d", [](const Tensor& t) { return F::max_pool1d(t.flatten(2), 2); }},
      {"avg_pool2d", [](const Tensor& t) { return F::avg_pool2d(t, 2); }},
      {"adaptive_avg_pool2d", [](const Tensor& t) { return F::adaptive_avg_pool2d(t, {1, 1}); }},
  };
  for (const auto& [name, pool] : pools) {
    INFO(name);
    Tensor x = distinct({1, 2, 4, 4}).requires_grad_();
    Tensor g = autograd::grad({pool(x).sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
    REQUIRE(g.requires_grad());
    // The first derivative is unchanged: the window weights sum to the number of outputs.
    const double outputs = static_cast<double>(pool(x.detach()).numel());
    CHECK(g.sum().item<double>() == Approx(outputs));
    Tensor gg = autograd::grad({g.sum()}, {x})[0];
    REQUIRE(gg.defined());
    CHECK(equal(gg, zeros({1, 2, 4, 4}, kFloat64)));
  }
}

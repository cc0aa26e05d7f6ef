// The functional forms libtorch keeps in namespace torch, with ATen's positional signatures, in xg::
// (nll_loss, cross_entropy_loss, mse_loss, l1_loss, binary_cross_entropy(_with_logits), max_pool2d,
// avg_pool2d, conv2d, dropout). Expected values are worked out by hand from the definitions.
#include <catch2/catch.hpp>

#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& shape) { return tensor(v, shape, kFloat64); }
double at(const Tensor& t, int64_t i) { return t.contiguous().to(kFloat64).data_ptr<double>()[i]; }
}  // namespace

TEST_CASE("xg::nll_loss and friends: ATen's signatures and reductions", "[torch_functions]") {
  const Tensor logp = f64({-1, -2, -3, -0.5}, {2, 2});
  const Tensor target = tensor({0, 1}, {2}, kInt64);
  CHECK(nll_loss(logp, target).item<double>() == Approx(0.75));
  CHECK(nll_loss(logp, target, {}, Reduction::Sum).item<double>() == Approx(1.5));
  Tensor each = nll_loss(logp, target, {}, Reduction::None);
  CHECK(each.shape() == Shape{2});
  CHECK(at(each, 1) == Approx(0.5));
  CHECK(nll_loss(logp, target, f64({2, 1}, {2})).item<double>() == Approx(2.5 / 3.0));
  CHECK(nll_loss(logp, target, {}, Reduction::Mean, /*ignore_index=*/1).item<double>() == Approx(1.0));
  CHECK_THROWS_WITH(nll_loss(logp, target, {}, 5), Contains("nll_loss") && Contains("reduction must be"));

  CHECK(cross_entropy_loss(f64({0, 0}, {1, 2}), tensor({1}, {1}, kInt64)).item<double>() == Approx(std::log(2.0)));
  // label smoothing 0.5 over 2 classes: the target distribution is (0.25, 0.75); both log-probs are -log 2.
  CHECK(cross_entropy_loss(f64({0, 0}, {1, 2}), tensor({1}, {1}, kInt64), {}, Reduction::Mean, -100, 0.5).item<double>() ==
        Approx(std::log(2.0)));
  CHECK(mse_loss(f64({1, 2}, {2}), f64({3, 2}, {2})).item<double>() == Approx(2.0));
  CHECK(mse_loss(f64({1, 2}, {2}), f64({3, 2}, {2}), Reduction::Sum).item<double>() == Approx(4.0));
  CHECK(l1_loss(f64({1, 2}, {2}), f64({3, 2}, {2})).item<double>() == Approx(1.0));
  CHECK(binary_cross_entropy(f64({0.5}, {1}), f64({1}, {1})).item<double>() == Approx(std::log(2.0)));
  CHECK(binary_cross_entropy_with_logits(f64({0}, {1}), f64({1}, {1})).item<double>() == Approx(std::log(2.0)));
  CHECK(binary_cross_entropy_with_logits(f64({0}, {1}), f64({1}, {1}), {}, f64({3}, {1})).item<double>() == Approx(3 * std::log(2.0)));
}

TEST_CASE("xg::max_pool2d, avg_pool2d, conv2d, dropout", "[torch_functions]") {
  const Tensor x = arange(0, 16, 1, kFloat64).reshape({1, 1, 4, 4});
  Tensor m = max_pool2d(x, 2);
  CHECK(m.shape() == Shape{1, 1, 2, 2});
  CHECK(at(m, 0) == 5);
  CHECK(at(m, 3) == 15);
  CHECK(max_pool2d(x, 2, 1).shape() == Shape{1, 1, 3, 3});
  CHECK(max_pool2d(x, {1, 2}).shape() == Shape{1, 1, 4, 2});
  CHECK(max_pool2d(x, 2, 2, 1).shape() == Shape{1, 1, 3, 3});
  CHECK_THROWS_WITH(max_pool2d(x, {1, 2, 3}), Contains("max_pool2d") && Contains("kernel_size must be one value or two"));
  Tensor a = avg_pool2d(x, 2);
  CHECK(at(a, 0) == Approx(2.5));
  CHECK(at(a, 3) == Approx(12.5));

  const Tensor ones3 = ones({1, 1, 3, 3}, kFloat64), kernel = ones({1, 1, 2, 2}, kFloat64), bias = f64({1}, {1});
  Tensor c = conv2d(ones3, kernel, bias);
  CHECK(c.shape() == Shape{1, 1, 2, 2});
  CHECK(at(c, 0) == 5);
  Tensor padded = conv2d(ones3, kernel, bias, 1, 1);
  CHECK(padded.shape() == Shape{1, 1, 4, 4});
  CHECK(at(padded, 0) == 2);  // one input element under the corner
  CHECK(conv2d(ones3, kernel, {}, 2).shape() == Shape{1, 1, 1, 1});

  CHECK(equal(dropout(x, 0.5, false), x));
  CHECK(equal(dropout(x, 0.0, true), x));
  CHECK(dropout(x, 1.0, true).abs().sum().item<double>() == 0.0);

  manual_seed(48);
  Tensor input = randn({1, 2, 4, 4}, kFloat64).requires_grad_();
  Tensor weight = randn({3, 2, 2, 2}, kFloat64).requires_grad_();
  CHECK(autograd::gradcheck([](const TensorList& in) { return conv2d(in[0], in[1], {}, 1, 1); }, {input, weight}));
  CHECK(autograd::gradcheck([](const TensorList& in) { return avg_pool2d(in[0], 2, 1); }, {input}));
}

// Layers: Linear, Flatten/Unflatten/Identity, activations, Dropout/Dropout2d, BatchNorm1d/2d (the
// fused primitive), LayerNorm, GroupNorm, Embedding. Values are checked against naive loops written
// here; gradients with float64 gradcheck w.r.t. inputs and parameters.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xg;
namespace F = xg::nn::functional;
using Catch::Matchers::Contains;

namespace {

bool check_gradients(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) {
  return autograd::gradcheck(f, inputs);
}

bool check_second_order(const std::function<Tensor(const TensorList&)>& f, const TensorList& inputs) {
  return autograd::gradgradcheck(f, inputs);
}

/// Element at a flat row-major index of a float64 tensor.
double at(const Tensor& t, int64_t i) { return t.data_ptr<double>()[i]; }

/// Naive batch norm of [N, C, S] (S = product of trailing dims) with given statistics per channel.
Tensor naive_batch_norm(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var, const Tensor& w,
                        const Tensor& b, double eps) {
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  Tensor out = empty(x.shape(), kFloat64);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t e = (i * c + k) * s + j;
        const double scale = w.defined() ? at(w, k) : 1.0, shift = b.defined() ? at(b, k) : 0.0;
        out.data_ptr<double>()[e] = (at(x, e) - mean[k]) / std::sqrt(var[k] + eps) * scale + shift;
      }
  return out;
}

/// Per-channel mean and variance (biased or unbiased) of [N, C, S].
std::pair<std::vector<double>, std::vector<double>> channel_stats(const Tensor& x, bool unbiased) {
  const int64_t n = x.size(0), c = x.size(1), s = x.numel() / (n * c);
  std::vector<double> mean(c, 0.0), var(c, 0.0);
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) mean[k] += at(x, (i * c + k) * s + j);
    mean[k] /= static_cast<double>(n * s);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j) {
        const double d = at(x, (i * c + k) * s + j) - mean[k];
        var[k] += d * d;
      }
    var[k] /= static_cast<double>(n * s - (unbiased ? 1 : 0));
  }
  return {mean, var};
}

}  // namespace

// ---- Linear ---------------------------------------------------------------------------------------------
TEST_CASE("Linear: PyTorch's init bounds, forward against a naive loop, gradcheck", "[nn][layers]") {
  manual_seed(10);
  nn::Linear fc(5, 3);
  CHECK(fc->weight.shape() == Shape{3, 5});
  CHECK(fc->bias.shape() == Shape{3});
  CHECK(fc->named_parameters().keys() == std::vector<std::string>{"weight", "bias"});
  const double bound = 1.0 / std::sqrt(5.0);
  CHECK(max(abs(fc->weight)).item<double>() <= bound);
  CHECK(max(abs(fc->bias)).item<double>() <= bound);

  nn::Linear big(400, 300);
  CHECK(max(abs(big->weight)).item<double>() <= 0.05);
  CHECK(max(abs(big->weight)).item<double>() > 0.0499);
  CHECK(big->weight.std().item<double>() == Approx(0.05 / std::sqrt(3.0)).epsilon(0.01));

  fc->to(kFloat64);
  Tensor x = randn({4, 2, 5}, kFloat64).requires_grad_();
  Tensor y = fc(x);
  REQUIRE(y.shape() == Shape{4, 2, 3});
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t o = 0; o < 3; ++o) {
      double expected = at(fc->bias, o);
      for (int64_t i = 0; i < 5; ++i) expected += at(x, r * 5 + i) * at(fc->weight, o * 5 + i);
      CHECK(at(y, r * 3 + o) == Approx(expected).margin(1e-12));
    }
  CHECK(check_gradients([&](const TensorList& in) { return fc(in[0]); }, {x, fc->weight, fc->bias}));

  nn::Linear no_bias(nn::LinearOptions(5, 2).bias(false));
  CHECK_FALSE(no_bias->bias.defined());
  CHECK(no_bias->parameters().size() == 1);
  CHECK(no_bias->to_string().find("Linear(in_features=5, out_features=2, bias=false)") == 0);
}

TEST_CASE("Linear: a wrong input width names both shapes", "[nn][layers]") {
  nn::Linear fc(784, 30);
  CHECK_THROWS_WITH(fc(randn({64, 100})), Contains("Linear") && Contains("784") && Contains("in_features") && Contains("[64, 100]"));
  CHECK_THROWS_WITH(fc(randn({64, 784}, kFloat64)), Contains("Linear") && Contains("float64"));
  CHECK_THROWS_WITH(nn::Linear(-1, 3), Contains("Linear") && Contains("-1"));
}

TEST_CASE("Flatten, Unflatten, Identity", "[nn][layers]") {
  Tensor x = randn({2, 3, 4, 5}, kFloat64).requires_grad_();
  nn::Flatten flatten;
  CHECK(flatten(x).shape() == Shape{2, 60});
  CHECK(nn::Flatten(nn::FlattenOptions().start_dim(0).end_dim(1))(x).shape() == Shape{6, 4, 5});
  nn::Unflatten unflatten(1, std::vector<int64_t>{3, -1});
  CHECK(unflatten(flatten(x)).shape() == Shape{2, 3, 20});
  CHECK(equal(reshape(unflatten(flatten(x)), x.shape()), x));
  CHECK(nn::Unflatten(nn::UnflattenOptions(-1, {1, 60}))(flatten(x)).shape() == Shape{2, 1, 60});
  CHECK_THROWS_WITH(nn::Unflatten(1, std::vector<int64_t>{7, 8})(flatten(x)), Contains("Unflatten") && Contains("60") && Contains("[7, 8]"));
  CHECK_THROWS_WITH(nn::Unflatten(1, std::vector<int64_t>{-1, -1}), Contains("only one"));
  nn::Identity identity;
  CHECK(identity(x).is_same(x));
  CHECK(check_gradients([&](const TensorList& in) { return unflatten(flatten(in[0])); }, {x}));
}

// ---- activations ------------------------------------------------------------------------------------------
TEST_CASE("Activation modules match their formulas and pass gradcheck", "[nn][layers]") {
  // Points away from the kinks at 0 (ReLU, LeakyReLU, ELU).
  Tensor x = tensor({-2.5, -1.2, -0.3, 0.4, 0.9, 2.2}, {2, 3}, kFloat64).requires_grad_();
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> module;
    std::function<double(double)> reference;
  };
  nn::LeakyReLU leaky(nn::LeakyReLUOptions().negative_slope(0.2));
  nn::ELU elu(nn::ELUOptions().alpha(1.5));
  nn::GELU gelu, gelu_tanh(nn::GELUOptions().approximate("tanh"));
  nn::Softplus softplus(nn::SoftplusOptions().beta(2.0).threshold(3.0));
  nn::ReLU relu;
  nn::Sigmoid sigmoid;
  nn::Tanh tanh_module;
  const double pi = std::acos(-1.0);
  std::vector<Case> cases{
      {"ReLU", [&](const Tensor& t) { return relu(t); }, [](double v) { return v > 0 ? v : 0.0; }},
      {"LeakyReLU", [&](const Tensor& t) { return leaky(t); }, [](double v) { return v > 0 ? v : 0.2 * v; }},
      {"ELU", [&](const Tensor& t) { return elu(t); }, [](double v) { return v > 0 ? v : 1.5 * (std::exp(v) - 1); }},
      {"GELU", [&](const Tensor& t) { return gelu(t); }, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
      {"GELU(tanh)", [&](const Tensor& t) { return gelu_tanh(t); },
       [pi](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / pi) * (v + 0.044715 * v * v * v))); }},
      {"Sigmoid", [&](const Tensor& t) { return sigmoid(t); }, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"Tanh", [&](const Tensor& t) { return tanh_module(t); }, [](double v) { return std::tanh(v); }},
      // beta * x = 4.4 > threshold 3 for the last element: linear there.
      {"Softplus", [&](const Tensor& t) { return softplus(t); }, [](double v) { return 2 * v > 3 ? v : std::log1p(std::exp(2 * v)) / 2; }},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Tensor y = c.module(x);
    REQUIRE(y.shape() == x.shape());
    for (int64_t i = 0; i < 6; ++i) CHECK(at(y, i) == Approx(c.reference(at(x, i))).margin(1e-12));
    CHECK(check_gradients([&](const TensorList& in) { return c.module(in[0]); }, {x}));
  }
  nn::Softmax softmax(1);
  nn::LogSoftmax log_softmax(nn::LogSoftmaxOptions(0));
  Tensor s = softmax(x);
  for (int64_t r = 0; r < 2; ++r) {
    double total = 0;
    for (int64_t k = 0; k < 3; ++k) total += std::exp(at(x, r * 3 + k));
    for (int64_t k = 0; k < 3; ++k) CHECK(at(s, r * 3 + k) == Approx(std::exp(at(x, r * 3 + k)) / total));
  }
  Tensor ls = log_softmax(x);
  for (int64_t k = 0; k < 3; ++k) {
    const double total = std::exp(at(x, k)) + std::exp(at(x, 3 + k));
    CHECK(at(ls, k) == Approx(at(x, k) - std::log(total)));
  }
  CHECK(check_gradients([&](const TensorList& in) { return mul(softmax(in[0]), in[0]); }, {x}));
  CHECK(check_gradients([&](const TensorList& in) { return log_softmax(in[0]); }, {x}));
  CHECK(allclose(F::softmax(x, 1), s));
  CHECK(allclose(F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.2)), leaky(x)));
  CHECK_THROWS_WITH(nn::GELU(nn::GELUOptions().approximate("fast")), Contains("GELU") && Contains("fast"));
  CHECK_THROWS_WITH(nn::Softplus(nn::SoftplusOptions().beta(0)), Contains("Softplus") && Contains("beta"));
}

// ---- dropout ---------------------------------------------------------------------------------------------
TEST_CASE("Dropout: inverted scaling, mean roughly preserved, identity in eval, p validated", "[nn][layers]") {
  manual_seed(11);
  nn::Dropout dropout(nn::DropoutOptions(0.3));
  Tensor x = full({200, 500}, 2.0);
  Tensor y = dropout(x);
  const float* p = y.data_ptr<float>();
  int64_t zeros_count = 0;
  int64_t wrong_scale = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (p[i] == 0.0f) ++zeros_count;
    else if (std::abs(p[i] - 2.0 / 0.7) > 1e-5) ++wrong_scale;
  }
  CHECK(wrong_scale == 0);
  CHECK(static_cast<double>(zeros_count) / static_cast<double>(y.numel()) == Approx(0.3).margin(0.005));
  CHECK(y.mean().item<double>() == Approx(2.0).epsilon(0.01));

  dropout->eval();
  CHECK(dropout(x).is_same(x));
  dropout->train();
  CHECK(F::dropout(x, 0.3, /*training=*/false).is_same(x));
  CHECK(F::dropout(x, 0.0).is_same(x));

  // Reproducible from the global seed.
  manual_seed(3);
  Tensor a = F::dropout(x, F::DropoutFuncOptions().p(0.5));
  manual_seed(3);
  CHECK(equal(a, F::dropout(x, 0.5)));

  // p = 1: zeros, but still connected to the graph with a zero gradient.
  Tensor leaf = randn({3, 4}).requires_grad_();
  Tensor dropped = F::dropout(leaf, 1.0);
  CHECK(equal(dropped, zeros({3, 4})));
  dropped.sum().backward();
  CHECK(equal(leaf.grad(), zeros({3, 4})));

  CHECK_THROWS_WITH(nn::Dropout(1.5), Contains("Dropout") && Contains("between 0 and 1") && Contains("1.5"));
  CHECK_THROWS_WITH(F::dropout(x, -0.1), Contains("dropout") && Contains("-0.1"));
  CHECK_THROWS_WITH(nn::Dropout2d(2.0), Contains("Dropout2d"));
}

TEST_CASE("Dropout: gradient flows through the kept elements only (gradcheck with a fixed seed)", "[nn][layers]") {
  Tensor x = randn({6, 7}, kFloat64).requires_grad_();
  CHECK(check_gradients([](const TensorList& in) {
    manual_seed(42);  // the same mask at every evaluation
    return F::dropout(in[0], 0.4);
  }, {x}));
  manual_seed(42);
  Tensor y = F::dropout(x, 0.4);
  y.sum().backward();
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(at(x.grad(), i) == Approx(at(y, i) == 0.0 ? 0.0 : 1.0 / 0.6));
}

TEST_CASE("Dropout2d zeroes whole channels of [N, C, H, W] and of unbatched [C, H, W]", "[nn][layers]") {
  manual_seed(12);
  nn::Dropout2d dropout(0.5);
  Tensor x = ones({8, 16, 3, 4}, kFloat64);
  Tensor y = dropout(x);
  int64_t dropped = 0;
  for (int64_t channel = 0; channel < 8 * 16; ++channel) {
    const double first = at(y, channel * 12);
    CHECK((first == 0.0 || first == 2.0));
    dropped += first == 0.0;
    for (int64_t k = 1; k < 12; ++k) CHECK(at(y, channel * 12 + k) == first);
  }
  CHECK(dropped > 30);
  CHECK(dropped < 98);
  Tensor unbatched = dropout(ones({32, 2, 2}, kFloat64));
  for (int64_t c = 0; c < 32; ++c)
    for (int64_t k = 1; k < 4; ++k) CHECK(at(unbatched, c * 4 + k) == at(unbatched, c * 4));
  Tensor g = randn({2, 3, 2, 2}, kFloat64).requires_grad_();
  CHECK(check_gradients([](const TensorList& in) {
    manual_seed(9);
    return F::dropout2d(in[0], 0.5);
  }, {g}));
  dropout->eval();
  CHECK(dropout(x).is_same(x));
  CHECK_THROWS_WITH(nn::Dropout2d(0.5)(ones({4, 5})), Contains("Dropout2d") && Contains("[4, 5]"));
}

// ---- BatchNorm ---------------------------------------------------------------------------------------------
TEST_CASE("BatchNorm2d training: batch statistics, running-stat update with the unbiased variance", "[nn][layers]") {
  manual_seed(13);
  nn::BatchNorm2d bn(3);
  bn->to(kFloat64);
  CHECK(bn->named_parameters().keys() == std::vector<std::string>{"weight", "bias"});
  CHECK(bn->named_buffers().keys() == std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn->num_batches_tracked.dtype() == kInt64);
  CHECK(equal(bn->weight, ones({3}, kFloat64)));
  CHECK(equal(bn->bias, zeros({3}, kFloat64)));
  {
    NoGradGuard no_grad;
    bn->weight.copy_(tensor({0.5, 2.0, -1.0}, kFloat64));
    bn->bias.copy_(tensor({0.1, -0.2, 0.3}, kFloat64));
  }
  Tensor x = add(mul(randn({4, 3, 5, 2}, kFloat64), 3.0), 1.5);
  Tensor y = bn(x);
  auto [mean, biased_var] = channel_stats(x, false);
  CHECK(allclose(y, naive_batch_norm(x, mean, biased_var, bn->weight, bn->bias, 1e-5), 1e-10, 1e-10));
  auto [mean2, unbiased_var] = channel_stats(x, true);
  for (int64_t k = 0; k < 3; ++k) {
    CHECK(at(bn->running_mean, k) == Approx(0.9 * 0.0 + 0.1 * mean[k]));
    CHECK(at(bn->running_var, k) == Approx(0.9 * 1.0 + 0.1 * unbiased_var[k]));
  }
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);

  // Eval: the running statistics, not the batch's.
  bn->eval();
  Tensor z = bn(x);
  std::vector<double> rm(3), rv(3);
  for (int64_t k = 0; k < 3; ++k) {
    rm[k] = at(bn->running_mean, k);
    rv[k] = at(bn->running_var, k);
  }
  CHECK(allclose(z, naive_batch_norm(x, rm, rv, bn->weight, bn->bias, 1e-5), 1e-10, 1e-10));
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);  // eval does not count batches
}

TEST_CASE("BatchNorm momentum = nullopt keeps a cumulative average; track_running_stats = false", "[nn][layers]") {
  manual_seed(14);
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(2).momentum(std::nullopt).eps(1e-3));
  bn->to(kFloat64);
  std::vector<double> mean_sum(2, 0.0), var_sum(2, 0.0);
  for (int step = 0; step < 3; ++step) {
    Tensor x = add(randn({6, 2}, kFloat64), static_cast<double>(step));
    bn(x);
    auto [mean, var] = channel_stats(x, true);
    for (int k = 0; k < 2; ++k) {
      mean_sum[k] += mean[k];
      var_sum[k] += var[k];
    }
  }
  CHECK(bn->num_batches_tracked.item<int64_t>() == 3);
  for (int k = 0; k < 2; ++k) {
    CHECK(at(bn->running_mean, k) == Approx(mean_sum[k] / 3));
    CHECK(at(bn->running_var, k) == Approx(var_sum[k] / 3));
  }

  nn::BatchNorm1d stateless(nn::BatchNorm1dOptions(2).track_running_stats(false).affine(false));
  CHECK(stateless->buffers().empty());
  CHECK(stateless->parameters().empty());
  stateless->eval();  // no running statistics: eval normalises with the batch's own
  Tensor x = randn({5, 2, 3});
  Tensor y = stateless(x);
  Tensor per_channel_mean = y.mean({0, 2});
  CHECK(allclose(per_channel_mean, zeros({2}), 0, 1e-5));
  CHECK(allclose(y.var({0, 2}, false), ones({2}), 0, 1e-3));
}

TEST_CASE("BatchNorm gradcheck w.r.t. input, weight and bias (training and eval; 1d and 2d)", "[nn][layers]") {
  manual_seed(15);
  nn::BatchNorm2d bn2(3);
  bn2->to(kFloat64);
  {
    NoGradGuard no_grad;
    bn2->weight.copy_(tensor({0.7, -1.3, 2.0}, kFloat64));
    bn2->bias.copy_(tensor({0.2, 0.0, -0.5}, kFloat64));
  }
  Tensor x = randn({3, 3, 2, 2}, kFloat64).requires_grad_();
  // Weighting the output makes the check sensitive to every element (sum(y) has zero gradient in x).
  Tensor mix = randn({3, 3, 2, 2}, kFloat64);
  auto f2 = [&](const TensorList& in) { return mul(bn2(in[0]), mix); };
  CHECK(check_gradients(f2, {x, bn2->weight, bn2->bias}));
  bn2->eval();
  CHECK(check_gradients(f2, {x, bn2->weight, bn2->bias}));

  nn::BatchNorm1d bn1(4);
  bn1->to(kFloat64);
  Tensor x2 = randn({5, 4}, kFloat64).requires_grad_();
  Tensor x3 = randn({3, 4, 3}, kFloat64).requires_grad_();
  Tensor mix2 = randn({5, 4}, kFloat64), mix3 = randn({3, 4, 3}, kFloat64);
  CHECK(check_gradients([&](const TensorList& in) { return mul(bn1(in[0]), mix2); }, {x2, bn1->weight, bn1->bias}));
  CHECK(check_gradients([&](const TensorList& in) { return mul(bn1(in[0]), mix3); }, {x3, bn1->weight, bn1->bias}));
  nn::BatchNorm1d plain(nn::BatchNorm1dOptions(4).affine(false));
  plain->to(kFloat64);
  CHECK(check_gradients([&](const TensorList& in) { return mul(plain(in[0]), mix2); }, {x2}));
}

TEST_CASE("batch_norm primitive: gradgradcheck, and the fused backward equals the op-based one", "[nn][layers]") {
  manual_seed(16);
  Tensor x = randn({4, 2, 3}, kFloat64).requires_grad_();
  Tensor w = tensor({1.5, -0.5}, kFloat64).requires_grad_();
  Tensor b = tensor({0.3, 0.1}, kFloat64).requires_grad_();
  Tensor mix = randn({4, 2, 3}, kFloat64);
  auto train = [&](const TensorList& in) {
    return mul(F::batch_norm(in[0], {}, {}, F::BatchNormFuncOptions().weight(in[1]).bias(in[2]).training(true)), mix);
  };
  CHECK(check_gradients(train, {x, w, b}));
  CHECK(check_second_order(train, {x, w, b}));
  Tensor rm = tensor({0.2, -0.1}, kFloat64), rv = tensor({1.5, 0.7}, kFloat64);
  auto eval = [&](const TensorList& in) {
    return mul(F::batch_norm(in[0], rm, rv, F::BatchNormFuncOptions().weight(in[1]).bias(in[2])), mix);
  };
  CHECK(check_gradients(eval, {x, w, b}));
  CHECK(check_second_order(eval, {x, w, b}));

  // First-order gradients through the fused kernel (plain backward) and through the op-based
  // formula (create_graph records it) agree.
  Tensor y = train({x, w, b}).sum();
  TensorList fused = autograd::grad({y}, {x, w, b}, {}, true, false);
  TensorList composite = autograd::grad({y}, {x, w, b}, {}, true, true);
  for (size_t i = 0; i < 3; ++i) CHECK(allclose(fused[i], composite[i].detach(), 1e-10, 1e-12));

  // float32 agrees with float64.
  Tensor y32 = F::batch_norm(x.detach().to(kFloat32), {}, {}, F::BatchNormFuncOptions().training(true));
  Tensor y64 = F::batch_norm(x.detach(), {}, {}, F::BatchNormFuncOptions().training(true));
  CHECK(allclose(y32.to(kFloat64), y64, 1e-4, 1e-5));
}

TEST_CASE("BatchNorm input checks name the layer and the shape", "[nn][layers]") {
  nn::BatchNorm2d bn(4);
  CHECK_THROWS_WITH(bn(randn({2, 4, 5})), Contains("BatchNorm2d") && Contains("4D") && Contains("[2, 4, 5]"));
  CHECK_THROWS_WITH(bn(randn({2, 3, 5, 5})), Contains("BatchNorm2d") && Contains("4 channels") && Contains("[2, 3, 5, 5]"));
  nn::BatchNorm1d bn1(3);
  CHECK_THROWS_WITH(bn1(randn({1, 3})), Contains("more than 1 value per channel") && Contains("[1, 3]"));
  CHECK_THROWS_WITH(bn1(randn({2, 3, 4, 5})), Contains("BatchNorm1d") && Contains("2D or 3D"));
  CHECK_THROWS_WITH(nn::BatchNorm1d(0), Contains("num_features"));
  CHECK_THROWS_WITH(F::batch_norm(randn({2, 3}), {}, {}), Contains("running_mean") && Contains("training"));
}

TEST_CASE("BatchNorm2d(32) forward + backward timing on [64, 32, 14, 14] float32", "[.][nn][layers][bench]") {
  nn::BatchNorm2d bn(32);
  Tensor x = randn({64, 32, 14, 14}).requires_grad_();
  Tensor gy = randn({64, 32, 14, 14});
  std::vector<double> times;
  for (int i = 0; i < 25; ++i) {
    auto start = std::chrono::steady_clock::now();
    Tensor y = bn(x);
    y.backward(gy);
    auto stop = std::chrono::steady_clock::now();
    if (i >= 5) times.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
    x.set_grad({});
    bn->zero_grad();
  }
  std::sort(times.begin(), times.end());
  WARN("BatchNorm2d(32) fwd+bwd on [64,32,14,14] f32: median " << times[times.size() / 2] << " us over " << times.size() << " runs");
}

// ---- LayerNorm, GroupNorm ------------------------------------------------------------------------------
TEST_CASE("LayerNorm: values, gradcheck, shape errors", "[nn][layers]") {
  manual_seed(17);
  nn::LayerNorm ln(nn::LayerNormOptions({2, 3}).eps(1e-4));
  ln->to(kFloat64);
  CHECK(ln->weight.shape() == Shape{2, 3});
  {
    NoGradGuard no_grad;
    ln->weight.copy_(randn({2, 3}, kFloat64));
    ln->bias.copy_(randn({2, 3}, kFloat64));
  }
  Tensor x = randn({4, 2, 3}, kFloat64).requires_grad_();
  Tensor y = ln(x);
  for (int64_t s = 0; s < 4; ++s) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 6; ++k) m += at(x, s * 6 + k) / 6;
    for (int64_t k = 0; k < 6; ++k) v += (at(x, s * 6 + k) - m) * (at(x, s * 6 + k) - m) / 6;
    for (int64_t k = 0; k < 6; ++k)
      CHECK(at(y, s * 6 + k) == Approx((at(x, s * 6 + k) - m) / std::sqrt(v + 1e-4) * at(ln->weight, k) + at(ln->bias, k)));
  }
  Tensor mix = randn({4, 2, 3}, kFloat64);
  CHECK(check_gradients([&](const TensorList& in) { return mul(ln(in[0]), mix); }, {x, ln->weight, ln->bias}));
  CHECK_THROWS_WITH(ln(randn({4, 3, 2}, kFloat64)), Contains("LayerNorm") && Contains("[2, 3]") && Contains("[4, 3, 2]"));
  nn::LayerNorm plain(nn::LayerNormOptions({3}).elementwise_affine(false));
  CHECK(plain->parameters().empty());
}

TEST_CASE("GroupNorm: values, gradcheck, divisibility error", "[nn][layers]") {
  manual_seed(18);
  nn::GroupNorm gn(2, 4);
  gn->to(kFloat64);
  {
    NoGradGuard no_grad;
    gn->weight.copy_(randn({4}, kFloat64));
    gn->bias.copy_(randn({4}, kFloat64));
  }
  Tensor x = randn({3, 4, 5}, kFloat64).requires_grad_();
  Tensor y = gn(x);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t g = 0; g < 2; ++g) {
      // group g = channels 2g, 2g+1: 10 contiguous elements.
      const int64_t base = n * 20 + g * 10;
      double m = 0, v = 0;
      for (int64_t k = 0; k < 10; ++k) m += at(x, base + k) / 10;
      for (int64_t k = 0; k < 10; ++k) v += (at(x, base + k) - m) * (at(x, base + k) - m) / 10;
      for (int64_t k = 0; k < 10; ++k) {
        const int64_t channel = 2 * g + k / 5;
        CHECK(at(y, base + k) == Approx((at(x, base + k) - m) / std::sqrt(v + 1e-5) * at(gn->weight, channel) + at(gn->bias, channel)));
      }
    }
  Tensor mix = randn({3, 4, 5}, kFloat64);
  CHECK(check_gradients([&](const TensorList& in) { return mul(gn(in[0]), mix); }, {x, gn->weight, gn->bias}));
  CHECK_THROWS_WITH(nn::GroupNorm(3, 4), Contains("GroupNorm") && Contains("divisible"));
  CHECK_THROWS_WITH(gn(randn({3, 6, 5}, kFloat64)), Contains("GroupNorm") && Contains("[3, 6, 5]"));
}

// ---- Embedding -----------------------------------------------------------------------------------------
TEST_CASE("Embedding: lookup of any index shape, N(0,1) init, padding_idx, errors", "[nn][layers]") {
  manual_seed(19);
  nn::Embedding big(1000, 64);
  CHECK(big->weight.mean().item<double>() == Approx(0.0).margin(0.01));
  CHECK(big->weight.std().item<double>() == Approx(1.0).epsilon(0.01));

  nn::Embedding emb(nn::EmbeddingOptions(6, 3).padding_idx(-1));  // = row 5
  emb->to(kFloat64);
  CHECK(*emb->options.padding_idx() == 5);
  CHECK(equal(emb->weight.narrow(0, 5, 1), zeros({1, 3}, kFloat64)));
  Tensor ids = tensor({0, 5, 2, 2, 4, 5}, {2, 3}, kInt64);
  Tensor out = emb(ids);
  REQUIRE(out.shape() == Shape{2, 3, 3});
  const int64_t rows[] = {0, 5, 2, 2, 4, 5};
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t d = 0; d < 3; ++d) CHECK(at(out, p * 3 + d) == at(emb->weight, rows[p] * 3 + d));

  Tensor weights = randn({2, 3, 3}, kFloat64);
  mul(out, weights).sum().backward();
  Tensor grad = emb->weight.grad();
  for (int64_t d = 0; d < 3; ++d) {
    CHECK(at(grad, 5 * 3 + d) == 0.0);  // the padding row receives nothing
    CHECK(at(grad, 2 * 3 + d) == Approx(at(weights, 2 * 3 + d) + at(weights, 3 * 3 + d)));  // used twice: accumulated
    CHECK(at(grad, 1 * 3 + d) == 0.0);  // unused
  }
  nn::Embedding plain(5, 2);
  plain->to(kFloat64);
  Tensor scalar_id = tensor({3}, {}, kInt64);
  CHECK(plain(reshape(scalar_id, {})).shape() == Shape{2});
  CHECK(check_gradients([&](const TensorList&) { return plain(tensor({1, 3, 3, 0}, {4}, kInt64)); }, {plain->weight}));
  // The functional form with a padding index: same rows, no gradient to the padding row.
  Tensor table = randn({4, 2}, kFloat64).requires_grad_();
  Tensor picked = F::embedding(tensor({3, 1, 3}, {3}, kInt64), table, F::EmbeddingFuncOptions().padding_idx(3));
  CHECK(equal(picked.narrow(0, 1, 1).detach(), table.narrow(0, 1, 1).detach()));
  CHECK(equal(picked.narrow(0, 0, 1).detach(), table.narrow(0, 3, 1).detach()));  // padding keeps its value
  picked.sum().backward();
  CHECK(equal(table.grad(), tensor({0, 0, 1, 1, 0, 0, 0, 0}, {4, 2}, kFloat64)));

  CHECK_THROWS_WITH(emb(tensor({0, 1}, {2}, kFloat32)), Contains("Embedding") && Contains("int64") && Contains("float32"));
  CHECK_THROWS_WITH(emb(tensor({0, 6}, {2}, kInt64)), Contains("Embedding") && Contains("index 6") && Contains("num_embeddings = 6"));
  CHECK_THROWS_WITH(nn::Embedding(nn::EmbeddingOptions(4, 2).padding_idx(4)), Contains("padding_idx"));
}

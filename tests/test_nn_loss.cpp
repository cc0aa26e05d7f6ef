// Losses against naive loops of PyTorch's documented formulas, float64 gradcheck (and gradgradcheck
// for the primitive ones) w.r.t. input and target, error messages, and the weight penalties.
#include <catch2/catch.hpp>

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
double at(const Tensor& t, int64_t i) { return t.data_ptr<double>()[i]; }

/// Applies a reduction to per-element naive losses.
double reduced(const std::vector<double>& losses, const std::string& reduction) {
  double total = 0;
  for (double v : losses) total += v;
  return reduction == "sum" ? total : total / static_cast<double>(losses.size());
}

/// PyTorch's cross-entropy for class indices, written out position by position:
///   l = -(1 - eps) w[y] logp[y] - eps / C sum_c w[c] logp[c]  (0 where y == ignore_index),
/// "mean" = sum l / sum of w[y] over non-ignored positions. Input [N, C, S] flattened, target [N, S].
struct NaiveCrossEntropy {
  std::vector<double> per_position;
  double sum = 0, mean = 0;
};
NaiveCrossEntropy naive_cross_entropy(const Tensor& x, const std::vector<int64_t>& target, int64_t n, int64_t c, int64_t s,
                                      const std::vector<double>& weight, int64_t ignore_index, double eps) {
  NaiveCrossEntropy result;
  double weight_total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < s; ++j) {
      const int64_t y = target[i * s + j];
      if (y == ignore_index) {
        result.per_position.push_back(0.0);
        continue;
      }
      double norm = 0;
      for (int64_t k = 0; k < c; ++k) norm += std::exp(at(x, (i * c + k) * s + j));
      auto logp = [&](int64_t k) { return at(x, (i * c + k) * s + j) - std::log(norm); };
      const double wy = weight.empty() ? 1.0 : weight[y];
      double loss = -(1 - eps) * wy * logp(y);
      for (int64_t k = 0; k < c; ++k) loss -= eps / static_cast<double>(c) * (weight.empty() ? 1.0 : weight[k]) * logp(k);
      result.per_position.push_back(loss);
      result.sum += loss;
      weight_total += wy;
    }
  result.mean = result.sum / weight_total;
  return result;
}

Tensor index_tensor(const std::vector<int64_t>& values, const Shape& shape) {
  return tensor(std::vector<double>(values.begin(), values.end()), shape, kInt64);
}

}  // namespace

// ---- regression losses -----------------------------------------------------------------------------------
TEST_CASE("MSE, L1, SmoothL1 and Huber: values for every reduction, gradcheck w.r.t. input and target", "[nn][loss]") {
  Tensor input = tensor({0.3, -1.7, 2.4, 0.05, -0.4, 1.1}, {2, 3}, kFloat64).requires_grad_();
  Tensor target = tensor({0.1, 0.6, -0.2, 0.0, -0.35, 3.0}, {2, 3}, kFloat64).requires_grad_();
  std::vector<double> d;
  for (int64_t i = 0; i < 6; ++i) d.push_back(at(input, i) - at(target, i));
  auto pointwise = [&](auto f) {
    std::vector<double> out;
    for (double v : d) out.push_back(f(v));
    return out;
  };
  const double beta = 0.5, delta = 0.8;
  auto squared = pointwise([](double v) { return v * v; });
  auto absolute = pointwise([](double v) { return std::abs(v); });
  auto smooth = pointwise([&](double v) { return std::abs(v) < beta ? 0.5 * v * v / beta : std::abs(v) - 0.5 * beta; });
  auto huber = pointwise([&](double v) { return std::abs(v) < delta ? 0.5 * v * v : delta * (std::abs(v) - 0.5 * delta); });
  for (std::string reduction : {"mean", "sum"}) {
    INFO(reduction);
    CHECK(F::mse_loss(input, target, F::MSELossFuncOptions().reduction(reduction)).item<double>() == Approx(reduced(squared, reduction)));
    CHECK(nn::L1Loss(nn::L1LossOptions().reduction(reduction))(input, target).item<double>() == Approx(reduced(absolute, reduction)));
    CHECK(nn::SmoothL1Loss(nn::SmoothL1LossOptions().reduction(reduction).beta(beta))(input, target).item<double>() ==
          Approx(reduced(smooth, reduction)));
    CHECK(nn::HuberLoss(nn::HuberLossOptions().reduction(reduction).delta(delta))(input, target).item<double>() ==
          Approx(reduced(huber, reduction)));
  }
  Tensor none = nn::MSELoss(nn::MSELossOptions().reduction("none"))(input, target);
  REQUIRE(none.shape() == Shape{2, 3});
  for (int64_t i = 0; i < 6; ++i) CHECK(at(none, i) == Approx(squared[i]));
  CHECK(equal(F::smooth_l1_loss(input, target, F::SmoothL1LossFuncOptions().beta(0)), F::l1_loss(input, target)));

  nn::MSELoss mse;
  nn::L1Loss l1;
  nn::SmoothL1Loss smooth_l1(nn::SmoothL1LossOptions().beta(beta));
  nn::HuberLoss huber_loss(nn::HuberLossOptions().delta(delta).reduction("none"));
  CHECK(check_gradients([&](const TensorList& in) { return mse(in[0], in[1]); }, {input, target}));
  CHECK(check_gradients([&](const TensorList& in) { return l1(in[0], in[1]); }, {input, target}));
  CHECK(check_gradients([&](const TensorList& in) { return smooth_l1(in[0], in[1]); }, {input, target}));
  CHECK(check_gradients([&](const TensorList& in) { return huber_loss(in[0], in[1]); }, {input, target}));
}

// ---- cross-entropy ------------------------------------------------------------------------------------------
TEST_CASE("CrossEntropy with class indices, weight, ignore_index and label smoothing matches the naive formula", "[nn][loss]") {
  manual_seed(20);
  const int64_t n = 5, c = 4;
  Tensor x = mul(randn({n, c}, kFloat64), 2.0).requires_grad_();
  const std::vector<int64_t> labels{2, 0, 3, 1, 2};
  const std::vector<int64_t> with_ignored{2, -100, 3, 1, -100};
  const std::vector<double> class_weight{0.5, 2.0, 1.0, 3.0};
  Tensor w = tensor(class_weight, {4}, kFloat64);
  struct Case {
    std::vector<int64_t> target;
    bool weighted;
    double eps;
  };
  for (const Case& k : {Case{labels, false, 0.0}, Case{labels, true, 0.0}, Case{with_ignored, true, 0.0}, Case{with_ignored, false, 0.2},
                        Case{with_ignored, true, 0.3}, Case{labels, true, 1.0}}) {
    INFO("weighted " << k.weighted << ", ignored " << (k.target == with_ignored) << ", eps " << k.eps);
    Tensor t = index_tensor(k.target, {n});
    auto options = [&](const std::string& reduction) {
      F::CrossEntropyFuncOptions o;
      o.reduction(reduction).label_smoothing(k.eps);
      if (k.weighted) o.weight(w);
      return o;
    };
    NaiveCrossEntropy expected = naive_cross_entropy(x, k.target, n, c, 1, k.weighted ? class_weight : std::vector<double>{}, -100, k.eps);
    CHECK(F::cross_entropy(x, t, options("mean")).item<double>() == Approx(expected.mean).epsilon(1e-12));
    CHECK(F::cross_entropy(x, t, options("sum")).item<double>() == Approx(expected.sum).epsilon(1e-12));
    Tensor none = F::cross_entropy(x, t, options("none"));
    REQUIRE(none.shape() == Shape{n});
    for (int64_t i = 0; i < n; ++i) CHECK(at(none, i) == Approx(expected.per_position[i]).margin(1e-12));
    for (std::string reduction : {"mean", "sum", "none"})
      CHECK(check_gradients([&](const TensorList& in) { return F::cross_entropy(in[0], t, options(reduction)); }, {x}));
  }
  // A module with a class weight keeps it as a buffer named "weight".
  nn::CrossEntropyLoss module(nn::CrossEntropyLossOptions().weight(w).ignore_index(1).label_smoothing(0.1));
  CHECK(module->named_buffers().keys() == std::vector<std::string>{"weight"});
  NaiveCrossEntropy expected = naive_cross_entropy(x, labels, n, c, 1, class_weight, 1, 0.1);
  CHECK(module(x, index_tensor(labels, {n})).item<double>() == Approx(expected.mean).epsilon(1e-12));
}

TEST_CASE("CrossEntropy on [N, C, d1, d2] and unbatched [C]; second derivatives; fused = op-based gradient", "[nn][loss]") {
  manual_seed(21);
  Tensor x = randn({2, 3, 2, 2}, kFloat64).requires_grad_();
  std::vector<int64_t> labels{0, 2, 1, 7, 2, 2, 0, 1};  // 7 is the ignore_index
  Tensor t = index_tensor(labels, {2, 2, 2});
  const std::vector<double> class_weight{1.0, 0.4, 2.5};
  auto options = F::CrossEntropyFuncOptions().ignore_index(7).weight(tensor(class_weight, {3}, kFloat64)).label_smoothing(0.15);
  NaiveCrossEntropy expected = naive_cross_entropy(x, labels, 2, 3, 4, class_weight, 7, 0.15);
  CHECK(F::cross_entropy(x, t, options).item<double>() == Approx(expected.mean).epsilon(1e-12));
  Tensor none = F::cross_entropy(x, t, F::CrossEntropyFuncOptions(options).reduction("none"));
  REQUIRE(none.shape() == Shape{2, 2, 2});
  for (int64_t i = 0; i < 8; ++i) CHECK(at(none, i) == Approx(expected.per_position[i]).margin(1e-12));
  auto f = [&](const TensorList& in) { return F::cross_entropy(in[0], t, options); };
  CHECK(check_gradients(f, {x}));
  CHECK(check_second_order(f, {x}));
  auto f_none = [&](const TensorList& in) { return F::cross_entropy(in[0], t, F::CrossEntropyFuncOptions(options).reduction("none")); };
  CHECK(check_second_order(f_none, {x}));

  Tensor loss = f({x});
  TensorList fused = autograd::grad({loss}, {x}, {}, true, false);
  TensorList composite = autograd::grad({loss}, {x}, {}, true, true);
  CHECK(allclose(fused[0], composite[0].detach(), 1e-10, 1e-14));

  Tensor single = tensor({0.5, -1.0, 2.0}, {3}, kFloat64).requires_grad_();
  Tensor single_loss = F::cross_entropy(single, reshape(index_tensor({1}, {1}), {}));
  CHECK(single_loss.dim() == 0);
  const double norm = std::exp(0.5) + std::exp(-1.0) + std::exp(2.0);
  CHECK(single_loss.item<double>() == Approx(-(-1.0 - std::log(norm))));
}

TEST_CASE("CrossEntropy with probability targets (and smoothing, weights); finite at huge logits", "[nn][loss]") {
  manual_seed(22);
  Tensor x = randn({3, 4}, kFloat64).requires_grad_();
  Tensor p = softmax(randn({3, 4}, kFloat64), 1).requires_grad_();
  const std::vector<double> class_weight{1.0, 2.0, 0.5, 1.5};
  for (double eps : {0.0, 0.2}) {
    for (bool weighted : {false, true}) {
      std::vector<double> per_row;
      for (int64_t i = 0; i < 3; ++i) {
        double norm = 0;
        for (int64_t k = 0; k < 4; ++k) norm += std::exp(at(x, i * 4 + k));
        double loss = 0;
        for (int64_t k = 0; k < 4; ++k) {
          const double target = at(p, i * 4 + k) * (1 - eps) + eps / 4;
          loss -= (weighted ? class_weight[k] : 1.0) * target * (at(x, i * 4 + k) - std::log(norm));
        }
        per_row.push_back(loss);
      }
      F::CrossEntropyFuncOptions o;
      o.label_smoothing(eps);
      if (weighted) o.weight(tensor(class_weight, {4}, kFloat64));
      CHECK(F::cross_entropy(x, p, o).item<double>() == Approx(reduced(per_row, "mean")));  // / N, not / sum of weights
      CHECK(F::cross_entropy(x, p, F::CrossEntropyFuncOptions(o).reduction("sum")).item<double>() == Approx(reduced(per_row, "sum")));
      CHECK(check_gradients([&](const TensorList& in) { return F::cross_entropy(in[0], in[1], o); }, {x, p}));
    }
  }
  // Class indices at logits of +-1e4: exact and finite, with a finite gradient.
  Tensor huge = tensor({1e4, -1e4, 0.0, -1e4, 1e4, 1e4}, {2, 3}, kFloat64).requires_grad_();
  Tensor loss = F::cross_entropy(huge, index_tensor({1, 2}, {2}), F::CrossEntropyFuncOptions().reduction("none"));
  CHECK(at(loss, 0) == Approx(2e4));
  CHECK(at(loss, 1) == Approx(std::log(2.0)));
  loss.sum().backward();
  CHECK(std::isfinite(huge.grad().sum().item<double>()));
  CHECK(at(huge.grad(), 1) == Approx(-1.0));
}

TEST_CASE("CrossEntropy and NLL error messages", "[nn][loss]") {
  Tensor x = randn({4, 10});
  CHECK_THROWS_WITH(F::cross_entropy(x, index_tensor({1, 2, 10, 3}, {4})),
                    Contains("cross_entropy") && Contains("target 10") && Contains("10 classes"));
  CHECK_THROWS_WITH(F::cross_entropy(x, index_tensor({1, 2, 3, 4}, {4, 1})), Contains("cross_entropy") && Contains("[4]") && Contains("[4, 1]"));
  CHECK_THROWS_WITH(F::cross_entropy(x, randn({4})), Contains("cross_entropy") && Contains("float32") && Contains("[4]"));
  CHECK_THROWS_WITH(F::cross_entropy(x, index_tensor({1, 2, 3, 4}, {4}), F::CrossEntropyFuncOptions().reduction("avg")),
                    Contains("cross_entropy") && Contains("reduction") && Contains("avg"));
  CHECK_THROWS_WITH(nn::CrossEntropyLoss(nn::CrossEntropyLossOptions().reduction("mena")), Contains("CrossEntropyLoss") && Contains("mena"));
  CHECK_THROWS_WITH(nn::MSELoss(nn::MSELossOptions().reduction("batchmean")), Contains("MSELoss") && Contains("batchmean"));
  CHECK_THROWS_WITH(F::cross_entropy(x, index_tensor({1, 2, 3, 4}, {4}), F::CrossEntropyFuncOptions().weight(ones({9}))),
                    Contains("weight") && Contains("[10]") && Contains("[9]"));
  CHECK_THROWS_WITH(F::nll_loss(x, index_tensor({-1, 2, 3, 4}, {4})), Contains("nll_loss") && Contains("target -1"));
  CHECK_THROWS_WITH(F::mse_loss(randn({64, 1}), randn({64})), Contains("mse_loss") && Contains("[64, 1]") && Contains("[64]"));
  CHECK_THROWS_WITH(F::binary_cross_entropy(tensor({0.5, 1.5}), tensor({0.0, 1.0})), Contains("between 0 and 1"));
}

TEST_CASE("NLLLoss matches the naive formula and equals cross_entropy of log_softmax", "[nn][loss]") {
  manual_seed(23);
  Tensor x = randn({4, 3, 2}, kFloat64).requires_grad_();
  Tensor logp = log_softmax(x, 1);
  std::vector<int64_t> labels{0, 2, 1, -5, 2, 1, 0, 0};
  Tensor t = index_tensor(labels, {4, 2});
  const std::vector<double> class_weight{0.2, 1.0, 3.0};
  nn::NLLLoss nll(nn::NLLLossOptions().weight(tensor(class_weight, {3}, kFloat64)).ignore_index(-5));
  double total = 0, weights = 0;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t y = labels[i * 2 + j];
      if (y == -5) continue;
      total -= class_weight[y] * at(logp, (i * 3 + y) * 2 + j);
      weights += class_weight[y];
    }
  CHECK(nll(logp, t).item<double>() == Approx(total / weights));
  CHECK(F::nll_loss(logp, t, F::NLLLossFuncOptions().weight(tensor(class_weight, {3}, kFloat64)).ignore_index(-5).reduction("sum"))
            .item<double>() == Approx(total));
  CHECK(nll(logp, t).item<double>() ==
        Approx(F::cross_entropy(x, t, F::CrossEntropyFuncOptions().weight(tensor(class_weight, {3}, kFloat64)).ignore_index(-5)).item<double>()));
  CHECK(F::nll_loss(logp, t, F::NLLLossFuncOptions().ignore_index(-5).reduction("none")).shape() == Shape{4, 2});
  Tensor lp = logp.detach().requires_grad_();
  CHECK(check_gradients([&](const TensorList& in) { return nll(in[0], t); }, {lp}));
  CHECK(check_second_order([&](const TensorList& in) { return nll(log_softmax(in[0], 1), t); }, {x}));
}

// ---- binary cross-entropy -----------------------------------------------------------------------------------
TEST_CASE("BCELoss: values (with weight), clamped logs at 0 and 1, gradcheck and gradgradcheck", "[nn][loss]") {
  Tensor x = tensor({0.2, 0.9, 0.55, 0.03}, {2, 2}, kFloat64).requires_grad_();
  Tensor t = tensor({0.0, 1.0, 0.3, 1.0}, {2, 2}, kFloat64).requires_grad_();
  Tensor w = tensor({2.0, 0.5}, {2}, kFloat64);  // broadcast along the last dim
  std::vector<double> losses;
  for (int64_t i = 0; i < 4; ++i)
    losses.push_back(-at(w, i % 2) * (at(t, i) * std::log(at(x, i)) + (1 - at(t, i)) * std::log(1 - at(x, i))));
  nn::BCELoss bce(nn::BCELossOptions().weight(w));
  CHECK(bce(x, t).item<double>() == Approx(reduced(losses, "mean")));
  CHECK(F::binary_cross_entropy(x, t, F::BinaryCrossEntropyFuncOptions().weight(w).reduction("sum")).item<double>() ==
        Approx(reduced(losses, "sum")));
  CHECK(check_gradients([&](const TensorList& in) { return bce(in[0], in[1]); }, {x, t}));
  CHECK(check_second_order([&](const TensorList& in) { return F::binary_cross_entropy(in[0], in[1]); }, {x, t}));

  // Probabilities of exactly 0 and 1: each log is clamped at -100, so the loss is 100 (not inf).
  Tensor edge = tensor({0.0, 1.0}, kFloat64).requires_grad_();
  Tensor edge_loss = F::binary_cross_entropy(edge, tensor({1.0, 0.0}, kFloat64), F::BinaryCrossEntropyFuncOptions().reduction("none"));
  CHECK(at(edge_loss, 0) == Approx(100.0));
  CHECK(at(edge_loss, 1) == Approx(100.0));
  edge_loss.sum().backward();
  CHECK(std::isfinite(at(edge.grad(), 0)));
  CHECK(at(edge.grad(), 0) == Approx(-1e12));  // (x - t) / clamp(x (1 - x), 1e-12)
}

TEST_CASE("BCEWithLogitsLoss: values with weight and pos_weight, stable at +-1e4, gradients", "[nn][loss]") {
  Tensor x = tensor({-2.0, 0.5, 3.0, -0.7, 0.0, 1.2}, {2, 3}, kFloat64).requires_grad_();
  Tensor t = tensor({0.0, 1.0, 1.0, 0.4, 1.0, 0.0}, {2, 3}, kFloat64).requires_grad_();
  Tensor w = tensor({1.0, 0.5}, {2, 1}, kFloat64);
  Tensor pw = tensor({3.0, 1.0, 0.5}, {3}, kFloat64);
  std::vector<double> losses;
  for (int64_t i = 0; i < 6; ++i) {
    const double s = 1 / (1 + std::exp(-at(x, i)));
    losses.push_back(-at(w, i / 3) * (at(pw, i % 3) * at(t, i) * std::log(s) + (1 - at(t, i)) * std::log(1 - s)));
  }
  nn::BCEWithLogitsLoss loss(nn::BCEWithLogitsLossOptions().weight(w).pos_weight(pw));
  CHECK(loss->named_buffers().keys() == std::vector<std::string>{"weight", "pos_weight"});
  CHECK(loss(x, t).item<double>() == Approx(reduced(losses, "mean")));
  CHECK(check_gradients([&](const TensorList& in) { return loss(in[0], in[1]); }, {x, t}));
  CHECK(check_second_order([&](const TensorList& in) { return loss(in[0], in[1]); }, {x, t}));
  nn::BCEWithLogitsLoss plain(nn::BCEWithLogitsLossOptions().reduction("none"));
  CHECK(check_second_order([&](const TensorList& in) { return plain(in[0], in[1]); }, {x, t}));
  // Without pos_weight it equals BCE of the sigmoid.
  CHECK(allclose(plain(x, t), F::binary_cross_entropy(sigmoid(x), t, F::BinaryCrossEntropyFuncOptions().reduction("none")), 1e-12, 1e-12));

  Tensor huge = tensor({1e4, 1e4, -1e4, -1e4}, kFloat64).requires_grad_();
  Tensor labels = tensor({1.0, 0.0, 1.0, 0.0}, kFloat64);
  Tensor values = plain(huge, labels);
  CHECK(at(values, 0) == 0.0);
  CHECK(at(values, 1) == Approx(1e4));
  CHECK(at(values, 2) == Approx(1e4));
  CHECK(at(values, 3) == 0.0);
  values.sum().backward();
  CHECK(equal(huge.grad(), tensor({0.0, 1.0, -1.0, 0.0}, kFloat64)));  // sigmoid(x) - t
  Tensor huge32 = tensor({1e4f, -1e4f}).requires_grad_();
  Tensor loss32 = F::binary_cross_entropy_with_logits(huge32, tensor({0.0, 1.0}), F::BinaryCrossEntropyWithLogitsFuncOptions().reduction("sum"));
  CHECK(loss32.item<double>() == Approx(2e4));
}

// ---- KL divergence -----------------------------------------------------------------------------------------
TEST_CASE("KLDivLoss: batchmean/mean/sum/none, log_target, zero targets, gradcheck", "[nn][loss]") {
  manual_seed(24);
  Tensor input = log_softmax(randn({3, 4}, kFloat64), 1).detach().requires_grad_();
  Tensor target = tensor({0.1, 0.2, 0.3, 0.4, 0.0, 0.5, 0.5, 0.0, 0.25, 0.25, 0.25, 0.25}, {3, 4}, kFloat64).requires_grad_();
  std::vector<double> pointwise;
  for (int64_t i = 0; i < 12; ++i)
    pointwise.push_back(at(target, i) > 0 ? at(target, i) * (std::log(at(target, i)) - at(input, i)) : 0.0);
  const double total = reduced(pointwise, "sum");
  CHECK(nn::KLDivLoss(nn::KLDivLossOptions().reduction("batchmean"))(input, target).item<double>() == Approx(total / 3));
  CHECK(nn::KLDivLoss()(input, target).item<double>() == Approx(total / 12));
  CHECK(F::kl_div(input, target, F::KLDivFuncOptions().reduction("sum")).item<double>() == Approx(total));
  Tensor log_target = log(tensor({0.1, 0.2, 0.3, 0.4, 0.1, 0.5, 0.3, 0.1, 0.25, 0.25, 0.25, 0.25}, {3, 4}, kFloat64)).detach().requires_grad_();
  double log_total = 0;
  for (int64_t i = 0; i < 12; ++i) log_total += std::exp(at(log_target, i)) * (at(log_target, i) - at(input, i));
  CHECK(F::kl_div(input, log_target, F::KLDivFuncOptions().reduction("batchmean").log_target(true)).item<double>() == Approx(log_total / 3));
  // Away from t = 0, where d/dt of t log t is -inf.
  Tensor positive_target = softmax(randn({3, 4}, kFloat64), 1).detach().requires_grad_();
  CHECK(check_gradients([&](const TensorList& in) { return F::kl_div(in[0], in[1], F::KLDivFuncOptions().reduction("batchmean")); },
                        {input, positive_target}));
  // With zero targets, the gradient w.r.t. the input is still exact (-t / N).
  F::kl_div(input, target.detach(), F::KLDivFuncOptions().reduction("batchmean")).backward();
  CHECK(allclose(input.grad(), div(neg(target.detach()), 3.0)));
  CHECK(check_gradients([&](const TensorList& in) { return F::kl_div(in[0], in[1], F::KLDivFuncOptions().log_target(true)); },
                        {input, log_target}));
  CHECK_THROWS_WITH(nn::KLDivLoss(nn::KLDivLossOptions().reduction("batch")), Contains("KLDivLoss") && Contains("batchmean"));
}

// ---- penalties -------------------------------------------------------------------------------------------
TEST_CASE("l2_penalty and l1_penalty sum the weights (biases only on request) and are differentiable", "[nn][loss]") {
  manual_seed(25);
  nn::Sequential model(nn::Linear(3, 2), nn::Functional(xg::tanh), nn::Linear(2, 1));
  model->to(kFloat64);
  auto params = model->named_parameters();
  double squares = 0, squares_all = 0, absolutes = 0;
  for (const auto& [name, p] : params) {
    for (int64_t i = 0; i < p.numel(); ++i) {
      squares_all += at(p, i) * at(p, i);
      if (name.find("bias") == std::string::npos) {
        squares += at(p, i) * at(p, i);
        absolutes += std::abs(at(p, i));
      }
    }
  }
  CHECK(nn::l2_penalty(*model).item<double>() == Approx(squares));
  CHECK(nn::l2_penalty(*model, /*include_biases=*/true).item<double>() == Approx(squares_all));
  CHECK(nn::l1_penalty(*model).item<double>() == Approx(absolutes));
  nn::l2_penalty(*model).backward();
  CHECK(allclose(params["0.weight"].grad(), mul(params["0.weight"], 2.0)));
  CHECK_FALSE(params["0.bias"].grad().defined());
  CHECK(check_gradients([&](const TensorList&) { return nn::l1_penalty(*model, true); }, model->parameters()));
}

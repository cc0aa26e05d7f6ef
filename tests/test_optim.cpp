// Optimizers: a few steps on loss = sum(w^2) from w = [1, -2] (gradient 2w) compared, in float32 and
// float64, with reference loops written here straight from PyTorch's documented algorithms; hand-worked
// literals for the first steps; parameter groups, skipped parameters, per-parameter step counts, option
// errors, state dicts (in memory and flat) and a bit-identical resume; convergence on XOR.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {

using Values = std::vector<double>;

Values values_of(const Tensor& t) {
  Tensor d = t.detach().to(kFloat64);
  const double* data = d.data_ptr<double>();
  return Values(data, data + d.numel());
}

/// Runs `steps` steps of an optimizer on loss = sum(w^2) from w = [1, -2]; returns w after each step.
template <class Opt, class Options>
std::vector<Values> run(Dtype dtype, const Options& options, int steps) {
  Tensor w = tensor({1.0, -2.0}, dtype).requires_grad_();
  Opt optimizer(TensorList{w}, options);
  std::vector<Values> trajectory;
  for (int s = 0; s < steps; ++s) {
    optimizer.zero_grad();
    (w * w).sum().backward();
    optimizer.step();
    trajectory.push_back(values_of(w));
  }
  return trajectory;
}

void check_trajectory(const std::vector<Values>& got, const std::vector<Values>& expected, double rel) {
  REQUIRE(got.size() == expected.size());
  for (size_t s = 0; s < got.size(); ++s) {
    for (size_t i = 0; i < got[s].size(); ++i) {
      INFO("step " << s + 1 << ", element " << i << ": got " << got[s][i] << ", expected " << expected[s][i]);
      CHECK(std::abs(got[s][i] - expected[s][i]) <= rel * std::max(1.0, std::abs(expected[s][i])));
    }
  }
}

// ---- reference loops (scalar, float64), one line per line of PyTorch's documented algorithm ----------
std::vector<Values> reference_sgd(double lr, double momentum, double dampening, double weight_decay, bool nesterov,
                                  bool maximize, int steps, const Values& start = {1.0, -2.0}) {
  Values w = start, b(start.size());
  std::vector<Values> out;
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < w.size(); ++i) {
      double g = 2 * w[i];
      if (maximize) g = -g;
      g += weight_decay * w[i];
      if (momentum != 0) {
        b[i] = t > 1 ? momentum * b[i] + (1 - dampening) * g : g;
        g = nesterov ? g + momentum * b[i] : b[i];
      }
      w[i] -= lr * g;
    }
    out.push_back(w);
  }
  return out;
}

std::vector<Values> reference_adam(double lr, double beta1, double beta2, double eps, double weight_decay,
                                   bool amsgrad, bool maximize, bool decoupled, int steps, const Values& start = {1.0, -2.0}) {
  Values w = start, m(start.size()), v(start.size()), v_max(start.size());
  std::vector<Values> out;
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < w.size(); ++i) {
      double g = 2 * w[i];
      if (maximize) g = -g;
      if (decoupled) w[i] -= lr * weight_decay * w[i];
      else g += weight_decay * w[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(beta1, t));
      v_max[i] = std::max(v_max[i], v[i]);
      const double v_hat = (amsgrad ? v_max[i] : v[i]) / (1 - std::pow(beta2, t));
      w[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
    out.push_back(w);
  }
  return out;
}

std::vector<Values> reference_rmsprop(double lr, double alpha, double eps, double weight_decay, double momentum,
                                      bool centered, int steps, const Values& start = {1.0, -2.0}) {
  Values w = start, v(start.size()), g_avg(start.size()), b(start.size());
  std::vector<Values> out;
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < w.size(); ++i) {
      double g = 2 * w[i] + weight_decay * w[i];
      v[i] = alpha * v[i] + (1 - alpha) * g * g;
      double v_tilde = v[i];
      if (centered) {
        g_avg[i] = alpha * g_avg[i] + (1 - alpha) * g;
        v_tilde -= g_avg[i] * g_avg[i];
      }
      if (momentum > 0) {
        b[i] = momentum * b[i] + g / (std::sqrt(v_tilde) + eps);
        w[i] -= lr * b[i];
      } else {
        w[i] -= lr * g / (std::sqrt(v_tilde) + eps);
      }
    }
    out.push_back(w);
  }
  return out;
}

std::vector<Values> reference_adagrad(double lr, double lr_decay, double weight_decay, double initial_accumulator,
                                      double eps, int steps, const Values& start = {1.0, -2.0}) {
  Values w = start, sum(start.size(), initial_accumulator);
  std::vector<Values> out;
  for (int t = 1; t <= steps; ++t) {
    const double clr = lr / (1 + (t - 1) * lr_decay);
    for (size_t i = 0; i < w.size(); ++i) {
      const double g = 2 * w[i] + weight_decay * w[i];
      sum[i] += g * g;
      w[i] -= clr * g / (std::sqrt(sum[i]) + eps);
    }
    out.push_back(w);
  }
  return out;
}

std::vector<Values> reference_adadelta(double lr, double rho, double eps, double weight_decay, int steps, const Values& start = {1.0, -2.0}) {
  Values w = start, v(start.size()), u(start.size());
  std::vector<Values> out;
  for (int t = 1; t <= steps; ++t) {
    for (size_t i = 0; i < w.size(); ++i) {
      const double g = 2 * w[i] + weight_decay * w[i];
      v[i] = v[i] * rho + g * g * (1 - rho);
      const double delta = std::sqrt(u[i] + eps) / std::sqrt(v[i] + eps) * g;
      u[i] = u[i] * rho + delta * delta * (1 - rho);
      w[i] -= lr * delta;
    }
    out.push_back(w);
  }
  return out;
}

}  // namespace

// ---- update formulas ----------------------------------------------------------------------------------

TEST_CASE("SGD with momentum, Nesterov and weight decay follows the documented update", "[optim][sgd]") {
  const auto options = optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1);
  // By hand (lr 0.1, momentum 0.9, weight decay 0.1, g = 2w + 0.1w = 2.1w):
  //  step 1: g = [2.1, -4.2], b = g, g + 0.9 b = [3.99, -7.98]                  -> w = [0.601, -1.202]
  //  step 2: g = [1.2621, -2.5242], b = 0.9 b + g = [3.1521, -6.3042],
  //          g + 0.9 b = [4.09899, -8.19798]                                      -> w = [0.191101, -0.382202]
  const std::vector<Values> by_hand{{0.601, -1.202}, {0.191101, -0.382202}};
  check_trajectory(run<optim::SGD>(kFloat64, options, 2), by_hand, 1e-12);
  check_trajectory(run<optim::SGD>(kFloat32, options, 2), by_hand, 1e-6);
  const auto reference = reference_sgd(0.1, 0.9, 0, 0.1, true, false, 3);
  check_trajectory(run<optim::SGD>(kFloat64, options, 3), reference, 1e-12);
  check_trajectory(run<optim::SGD>(kFloat32, options, 3), reference, 1e-6);
}

TEST_CASE("SGD plain, with dampening, and maximize", "[optim][sgd]") {
  // Plain: w <- w - 0.1 * 2w = 0.8 w.
  check_trajectory(run<optim::SGD>(kFloat64, optim::SGDOptions(0.1), 2), {{0.8, -1.6}, {0.64, -1.28}}, 1e-12);
  const auto damped = optim::SGDOptions(0.05).momentum(0.5).dampening(0.3);
  check_trajectory(run<optim::SGD>(kFloat64, damped, 3), reference_sgd(0.05, 0.5, 0.3, 0, false, false, 3), 1e-12);
  check_trajectory(run<optim::SGD>(kFloat32, damped, 3), reference_sgd(0.05, 0.5, 0.3, 0, false, false, 3), 1e-6);
  // maximize climbs: w <- w + 0.1 * 2w = 1.2 w.
  const auto up = optim::SGDOptions(0.1).momentum(0.9).maximize(true);
  check_trajectory(run<optim::SGD>(kFloat64, up, 3), reference_sgd(0.1, 0.9, 0, 0, false, true, 3), 1e-12);
  CHECK(run<optim::SGD>(kFloat64, optim::SGDOptions(0.1).maximize(true), 1)[0] == Values{1.2, -2.4});
}

TEST_CASE("Adam follows the documented update, with its own bias correction", "[optim][adam]") {
  // Step 1 by hand: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2, so w <- w - lr * g / (|g| + eps)
  // = w - 0.1 * sign(g) (up to eps): [0.9, -1.9].
  const auto first = run<optim::Adam>(kFloat64, optim::AdamOptions(0.1), 1);
  CHECK(first[0][0] == Approx(0.9).epsilon(1e-7));
  CHECK(first[0][1] == Approx(-1.9).epsilon(1e-7));
  const auto plain = optim::AdamOptions(0.1);
  check_trajectory(run<optim::Adam>(kFloat64, plain, 3), reference_adam(0.1, 0.9, 0.999, 1e-8, 0, false, false, false, 3), 1e-12);
  check_trajectory(run<optim::Adam>(kFloat32, plain, 3), reference_adam(0.1, 0.9, 0.999, 1e-8, 0, false, false, false, 3), 1e-6);
}

TEST_CASE("Adam with amsgrad, weight decay and other betas", "[optim][adam]") {
  // A large lr makes w overshoot and the gradient shrink, so v falls and the amsgrad maximum matters.
  const auto options = optim::AdamOptions(0.8).betas({0.5, 0.6}).eps(1e-6).weight_decay(0.3).amsgrad(true);
  const auto reference = reference_adam(0.8, 0.5, 0.6, 1e-6, 0.3, true, false, false, 4);
  check_trajectory(run<optim::Adam>(kFloat64, options, 4), reference, 1e-12);
  check_trajectory(run<optim::Adam>(kFloat32, options, 4), reference, 1e-5);
  // The reference without amsgrad differs at these settings: the option is really exercised.
  const auto without = reference_adam(0.8, 0.5, 0.6, 1e-6, 0.3, false, false, false, 4);
  CHECK(std::abs(without[3][0] - reference[3][0]) > 1e-3);
  // maximize: the same steps upward.
  const auto up = optim::AdamOptions(0.1).maximize(true);
  check_trajectory(run<optim::Adam>(kFloat64, up, 3), reference_adam(0.1, 0.9, 0.999, 1e-8, 0, false, true, false, 3), 1e-12);
}

TEST_CASE("AdamW decays the weights directly, not through the gradient", "[optim][adamw]") {
  CHECK(std::get<1>(optim::AdamWOptions().betas()) == 0.999);
  CHECK(optim::AdamWOptions().weight_decay() == 1e-2);  // PyTorch's default
  const auto options = optim::AdamWOptions(0.1).weight_decay(0.5);
  const auto reference = reference_adam(0.1, 0.9, 0.999, 1e-8, 0.5, false, false, true, 3);
  check_trajectory(run<optim::AdamW>(kFloat64, options, 3), reference, 1e-12);
  check_trajectory(run<optim::AdamW>(kFloat32, options, 3), reference, 1e-6);
  // Step 1 by hand: w <- w (1 - 0.1 * 0.5) - 0.1 sign(g) = [0.95 - 0.1, -1.9 + 0.1] = [0.85, -1.8].
  CHECK(reference[0][0] == Approx(0.85).epsilon(1e-7));
  CHECK(reference[0][1] == Approx(-1.8).epsilon(1e-7));
  // Adam's coupled decay gives a different trajectory.
  const auto coupled = reference_adam(0.1, 0.9, 0.999, 1e-8, 0.5, false, false, false, 3);
  CHECK(std::abs(coupled[2][0] - reference[2][0]) > 1e-3);
  const auto amsgrad = optim::AdamWOptions(0.8).betas({0.5, 0.6}).weight_decay(0.1).amsgrad(true);
  check_trajectory(run<optim::AdamW>(kFloat64, amsgrad, 4), reference_adam(0.8, 0.5, 0.6, 1e-8, 0.1, true, false, true, 4), 1e-12);
}

TEST_CASE("RMSprop plain and centered with momentum and weight decay", "[optim][rmsprop]") {
  // Step 1 plain by hand: v = 0.01 g^2, w <- w - 0.01 g / (0.1 |g| + 1e-8) = w - 0.1 sign(g): [0.9, -1.9].
  const auto plain = run<optim::RMSprop>(kFloat64, optim::RMSpropOptions(0.01), 1);
  CHECK(plain[0][0] == Approx(0.9).epsilon(1e-7));
  check_trajectory(run<optim::RMSprop>(kFloat64, optim::RMSpropOptions(0.01), 3),
                   reference_rmsprop(0.01, 0.99, 1e-8, 0, 0, false, 3), 1e-12);
  const auto centered = optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.8).centered(true).weight_decay(0.1);
  const auto reference = reference_rmsprop(0.01, 0.9, 1e-8, 0.1, 0.8, true, 3);
  check_trajectory(run<optim::RMSprop>(kFloat64, centered, 3), reference, 1e-12);
  check_trajectory(run<optim::RMSprop>(kFloat32, centered, 3), reference, 1e-5);
}

TEST_CASE("Adagrad with lr_decay, weight decay and an initial accumulator", "[optim][adagrad]") {
  // Step 1 by hand (defaults): sum = g^2, w <- w - 0.1 g / (|g| + 1e-10) = [0.9, -1.9].
  const auto plain = run<optim::Adagrad>(kFloat64, optim::AdagradOptions(0.1), 1);
  CHECK(plain[0][0] == Approx(0.9).epsilon(1e-9));
  CHECK(plain[0][1] == Approx(-1.9).epsilon(1e-9));
  const auto options = optim::AdagradOptions(0.1).lr_decay(0.5).weight_decay(0.2).initial_accumulator_value(0.3);
  const auto reference = reference_adagrad(0.1, 0.5, 0.2, 0.3, 1e-10, 3);
  check_trajectory(run<optim::Adagrad>(kFloat64, options, 3), reference, 1e-12);
  check_trajectory(run<optim::Adagrad>(kFloat32, options, 3), reference, 1e-6);
}

TEST_CASE("Adadelta follows the documented update", "[optim][adadelta]") {
  // Step 1 by hand (lr 1, rho 0.9, eps 1e-6), element 0: g = 2, v = 0.4,
  // delta = sqrt(1e-6) / sqrt(0.400001) * 2 = 0.00316227371..., w = 1 - delta.
  const auto first = run<optim::Adadelta>(kFloat64, optim::AdadeltaOptions(), 1);
  CHECK(first[0][0] == Approx(1 - 2e-3 / std::sqrt(0.400001)).epsilon(1e-14));
  const auto options = optim::AdadeltaOptions(0.5).rho(0.8).eps(1e-4).weight_decay(0.1);
  const auto reference = reference_adadelta(0.5, 0.8, 1e-4, 0.1, 3);
  check_trajectory(run<optim::Adadelta>(kFloat64, options, 3), reference, 1e-12);
  check_trajectory(run<optim::Adadelta>(kFloat32, options, 3), reference, 1e-5);
}

// ---- the optimizer base ---------------------------------------------------------------------------------

TEST_CASE("parameter groups have their own options, readable and changeable at run time", "[optim]") {
  Tensor weight = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor bias = tensor({1.0}, kFloat64).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(TensorList{weight}, optim::SGDOptions(0.1).weight_decay(0.5));
  groups.emplace_back(TensorList{bias});  // takes the defaults
  optim::SGD optimizer(groups, optim::SGDOptions(0.2));
  REQUIRE(optimizer.param_groups().size() == 2);
  CHECK(optimizer.param_groups()[0].lr() == 0.1);
  CHECK(optimizer.param_groups()[1].lr() == 0.2);
  CHECK(static_cast<optim::SGDOptions&>(optimizer.param_groups()[0].options()).weight_decay() == 0.5);
  CHECK(static_cast<optim::SGDOptions&>(optimizer.param_groups()[1].options()).weight_decay() == 0);
  weight.set_grad(tensor({1.0, 1.0}, kFloat64));
  bias.set_grad(tensor({1.0}, kFloat64));
  optimizer.step();
  // weight: w - 0.1 (1 + 0.5 w) = [1 - 0.15, 2 - 0.2]; bias: 1 - 0.2 * 1.
  CHECK(values_of(weight) == Values{1 - 0.1 * 1.5, 2 - 0.1 * 2.0});
  CHECK(values_of(bias) == Values{1 - 0.2});
  // Change lr at run time, through the typed options and through the shorthand.
  static_cast<optim::SGDOptions&>(optimizer.param_groups()[0].options()).lr(0.01).weight_decay(0);
  optimizer.param_groups()[1].set_lr(0.5);
  const Values w_before = values_of(weight);
  optimizer.step();
  CHECK(values_of(weight)[0] == w_before[0] - 0.01);
  CHECK(values_of(bias)[0] == Approx(0.8 - 0.5));
  // add_param_group with the defaults; the same tensor twice is an error.
  Tensor extra = zeros({3}, kFloat64).requires_grad_();
  optimizer.add_param_group(optim::OptimizerParamGroup({extra}));
  CHECK(optimizer.param_groups().size() == 3);
  CHECK(optimizer.param_groups()[2].lr() == 0.2);
  CHECK(optimizer.size() == 3);  // tensors over all groups
  CHECK_THROWS_WITH(optimizer.add_param_group(optim::OptimizerParamGroup({weight})),
                    Contains("SGD: some parameters appear in more than one parameter group"));
  CHECK_THROWS_WITH(optimizer.add_param_group(optim::OptimizerParamGroup({extra * 2})),
                    Contains("SGD: can't optimize a non-leaf tensor"));
  CHECK_THROWS_WITH(optimizer.add_param_group(optim::OptimizerParamGroup({zeros({1})}, optim::AdamOptions())),
                    Contains("SGD: the options of a parameter group are not SGDOptions"));
  CHECK_THROWS_WITH(optimizer.add_param_group(optim::OptimizerParamGroup({zeros({1})}, optim::SGDOptions(-1))),
                    Contains("SGD: invalid learning rate: -1"));
}

TEST_CASE("parameters without a gradient are skipped; zero_grad clears or zero-fills", "[optim]") {
  Tensor a = tensor({1.0, 2.0}).requires_grad_();
  Tensor b = tensor({3.0}).requires_grad_();
  optim::Adam optimizer({a, b}, optim::AdamOptions(0.1));
  (a * a).sum().backward();
  optimizer.step();
  CHECK(values_of(b) == Values{3.0});
  CHECK(optimizer.has_state(a));
  CHECK_FALSE(optimizer.has_state(b));
  CHECK_THROWS_WITH(optimizer.state(b), Contains("Adam: state: this parameter (shape [1]) has no state yet"));
  optimizer.zero_grad(false);
  REQUIRE(a.grad().defined());
  CHECK(values_of(a.grad()) == Values{0.0, 0.0});
  optimizer.zero_grad();
  CHECK_FALSE(a.grad().defined());
  // The module's handle stays valid: updates are in place.
  Tensor alias = a;
  (a * a).sum().backward();
  optimizer.step();
  CHECK(alias.is_same(a));
  CHECK(a.is_leaf());
  CHECK(a.requires_grad());
}

TEST_CASE("each parameter keeps its own step count for bias correction", "[optim][adam]") {
  Tensor early = tensor({1.0}, kFloat64).requires_grad_();
  Tensor late = tensor({1.0}, kFloat64).requires_grad_();
  optim::Adam optimizer({early, late}, optim::AdamOptions(0.1));
  for (int s = 0; s < 3; ++s) {
    optimizer.zero_grad();
    Tensor loss = s < 2 ? early.sum() : (early + late).sum();  // late gets its first gradient at step 3
    loss.backward();
    optimizer.step();
  }
  CHECK(static_cast<optim::AdamParamState&>(optimizer.state(early)).step == 3);
  CHECK(static_cast<optim::AdamParamState&>(optimizer.state(late)).step == 1);
  // late's first update is bias-corrected with t = 1: exactly lr * g / (|g| + eps) = 0.1 (a shared t = 3
  // would give 0.1 * (0.1 / 0.271) / sqrt(0.001 / 0.002997) = 0.0639).
  CHECK(values_of(late)[0] == Approx(1 - 0.1).epsilon(1e-7));
}

TEST_CASE("step(closure) evaluates the closure with gradients enabled and returns its loss", "[optim]") {
  Tensor w = tensor({1.0, -2.0}, kFloat64).requires_grad_();
  optim::SGD optimizer({w}, optim::SGDOptions(0.1));
  int calls = 0;
  NoGradGuard outer;  // even inside no_grad the closure records
  Tensor loss = optimizer.step([&] {
    ++calls;
    optimizer.zero_grad();
    Tensor l = (w * w).sum();
    l.backward();
    return l;
  });
  CHECK(calls == 1);
  CHECK(loss.item<double>() == 5.0);
  CHECK(values_of(w) == Values{0.8, -1.6});
  CHECK_FALSE(optimizer.step().defined());  // without closure: no loss (and w.grad is still there)
}

TEST_CASE("invalid options are rejected with clear messages", "[optim][errors]") {
  Tensor w = zeros({2}).requires_grad_();
  CHECK_THROWS_WITH(optim::Adam({w}, optim::AdamOptions(1e-3).betas({1.5, 0.999})),
                    Contains("Adam: invalid beta parameter at index 0: 1.5 (expected in [0, 1))"));
  CHECK_THROWS_WITH(optim::Adam({w}, optim::AdamOptions(1e-3).betas({0.9, 1.0})),
                    Contains("Adam: invalid beta parameter at index 1: 1 (expected in [0, 1))"));
  CHECK_THROWS_WITH(optim::Adam({w}, optim::AdamOptions(-0.1)), Contains("Adam: invalid learning rate: -0.1"));
  CHECK_THROWS_WITH(optim::Adam({w}, optim::AdamOptions().eps(-1)), Contains("Adam: invalid epsilon value: -1"));
  CHECK_THROWS_WITH(optim::AdamW({w}, optim::AdamWOptions().weight_decay(-1)),
                    Contains("AdamW: invalid weight_decay value: -1"));
  CHECK_THROWS_WITH(optim::SGD({w}, optim::SGDOptions(0.1).nesterov(true)),
                    Contains("SGD: nesterov momentum requires a momentum > 0 and zero dampening (got momentum 0"));
  CHECK_THROWS_WITH(optim::SGD({w}, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
                    Contains("dampening 0.1"));
  CHECK_THROWS_WITH(optim::SGD({w}, optim::SGDOptions(0.1).momentum(-0.5)), Contains("SGD: invalid momentum value: -0.5"));
  CHECK_THROWS_WITH(optim::RMSprop({w}, optim::RMSpropOptions().eps(-1)), Contains("RMSprop: invalid epsilon value"));
  CHECK_THROWS_WITH(optim::RMSprop({w}, optim::RMSpropOptions().momentum(-1)), Contains("RMSprop: invalid momentum"));
  CHECK_THROWS_WITH(optim::Adagrad({w}, optim::AdagradOptions().lr_decay(-1)), Contains("Adagrad: invalid lr_decay value: -1"));
  CHECK_THROWS_WITH(optim::Adagrad({w}, optim::AdagradOptions().initial_accumulator_value(-1)),
                    Contains("Adagrad: invalid initial_accumulator_value"));
  CHECK_THROWS_WITH(optim::Adadelta({w}, optim::AdadeltaOptions().rho(1.5)),
                    Contains("Adadelta: invalid rho value: 1.5 (expected in [0, 1])"));
  CHECK_THROWS_WITH(optim::SGD({w, w}), Contains("SGD: some parameters appear in more than one parameter group"));
  CHECK_THROWS_WITH(optim::SGD({arange(3)}), Contains("SGD: can only optimize floating-point tensors"));
}

// ---- state dicts and resume ----------------------------------------------------------------------------

namespace {
struct TinyNetImpl : nn::Module {
  TinyNetImpl() {
    weight = register_parameter("weight", randn({3, 2}, kFloat64));
    bias = register_parameter("bias", randn({3}, kFloat64));
  }
  Tensor forward(const Tensor& x) { return linear(x, weight, bias); }
  Tensor weight, bias;
};
XG_MODULE(TinyNet);

/// One training step on fixed data; weight decay on the weight only.
void train(TinyNet& net, optim::Optimizer& optimizer, const Tensor& x, const Tensor& y, int steps) {
  for (int s = 0; s < steps; ++s) {
    optimizer.zero_grad();
    Tensor diff = net(x) - y;
    (diff * diff).mean().backward();
    optimizer.step();
  }
}

std::unique_ptr<optim::Adam> make_adam(TinyNet& net, double lr) {
  std::vector<optim::OptimizerParamGroup> groups;
  groups.emplace_back(TensorList{net->weight}, optim::AdamOptions(lr).weight_decay(1e-2).amsgrad(true));
  groups.emplace_back(TensorList{net->bias}, optim::AdamOptions(lr).betas({0.8, 0.99}));
  return std::make_unique<optim::Adam>(groups);
}
}  // namespace

TEST_CASE("a run interrupted and resumed from a flat state dict is bit-identical", "[optim][state]") {
  manual_seed(11);
  const Tensor x = randn({8, 2}, kFloat64), y = randn({8, 3}, kFloat64);
  manual_seed(5);
  TinyNet uninterrupted;
  auto optimizer = make_adam(uninterrupted, 0.05);
  train(uninterrupted, *optimizer, x, y, 10);

  manual_seed(5);
  TinyNet first_half;
  auto first_optimizer = make_adam(first_half, 0.05);
  train(first_half, *first_optimizer, x, y, 5);
  first_optimizer->param_groups()[1].set_lr(0.05);  // unchanged, but proves lr travels with the state
  const auto model_state = first_half->state_dict();
  const std::map<std::string, Tensor> flat = first_optimizer->state_dict().to_tensors();
  first_optimizer.reset();

  manual_seed(99);  // a different initialisation, overwritten by the checkpoint
  TinyNet resumed;
  resumed->load_state_dict(model_state);
  auto resumed_optimizer = make_adam(resumed, 0.5);  // wrong lr on purpose: the state dict restores it
  resumed_optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(flat));
  CHECK(resumed_optimizer->param_groups()[0].lr() == 0.05);
  train(resumed, *resumed_optimizer, x, y, 5);

  CHECK(equal(resumed->weight, uninterrupted->weight));
  CHECK(equal(resumed->bias, uninterrupted->bias));
  CHECK(static_cast<optim::AdamParamState&>(resumed_optimizer->state(resumed->weight)).step == 10);
  // Without loading the state, the resumed run would differ.
  manual_seed(5);
  TinyNet fresh;
  auto fresh_optimizer = make_adam(fresh, 0.05);
  train(fresh, *fresh_optimizer, x, y, 5);
  auto restarted = make_adam(fresh, 0.05);
  train(fresh, *restarted, x, y, 5);
  CHECK_FALSE(equal(fresh->weight, uninterrupted->weight));
}

TEST_CASE("in-memory state dicts of every optimizer resume bit-identically", "[optim][state]") {
  auto check_resume = [](auto make) {
    manual_seed(11);
    const Tensor x = randn({8, 2}, kFloat64), y = randn({8, 3}, kFloat64);
    manual_seed(5);
    TinyNet a;
    auto opt_a = make(a);
    train(a, *opt_a, x, y, 6);
    manual_seed(5);
    TinyNet b;
    auto opt_b = make(b);
    train(b, *opt_b, x, y, 3);
    const auto saved = opt_b->state_dict();
    auto opt_c = make(b);
    opt_c->load_state_dict(saved);
    train(b, *opt_c, x, y, 3);
    CHECK(equal(a->weight, b->weight));
    CHECK(equal(a->bias, b->bias));
  };
  check_resume([](TinyNet& n) {
    return std::make_unique<optim::SGD>(n->parameters(), optim::SGDOptions(0.1).momentum(0.9).nesterov(true));
  });
  check_resume([](TinyNet& n) {
    return std::make_unique<optim::RMSprop>(n->parameters(), optim::RMSpropOptions(0.01).momentum(0.5).centered(true));
  });
  check_resume([](TinyNet& n) { return std::make_unique<optim::AdamW>(n->parameters(), optim::AdamWOptions(0.05)); });
  check_resume([](TinyNet& n) {
    return std::make_unique<optim::Adagrad>(n->parameters(), optim::AdagradOptions(0.1).lr_decay(0.1));
  });
  check_resume([](TinyNet& n) { return std::make_unique<optim::Adadelta>(n->parameters()); });
}

TEST_CASE("the flat state dict names its entries and validates what it loads", "[optim][state]") {
  manual_seed(1);
  TinyNet net;
  auto optimizer = make_adam(net, 0.05);
  const Tensor x = randn({4, 2}, kFloat64), y = randn({4, 3}, kFloat64);
  train(net, *optimizer, x, y, 2);
  const auto flat = optimizer->state_dict().to_tensors();
  REQUIRE(flat.count("state.0.exp_avg") == 1);
  CHECK(flat.at("state.0.exp_avg").shape() == Shape{3, 2});
  CHECK(flat.at("state.0.max_exp_avg_sq").shape() == Shape{3, 2});  // amsgrad group
  CHECK(flat.count("state.1.max_exp_avg_sq") == 0);                  // no amsgrad on the bias
  CHECK(flat.at("state.1.step").dtype() == kInt64);
  CHECK(flat.at("state.1.step").dim() == 0);
  CHECK(flat.at("state.1.step").item<int64_t>() == 2);
  CHECK(flat.at("param_groups.0.lr").dtype() == kFloat64);
  CHECK(flat.at("param_groups.0.lr").item<double>() == 0.05);
  CHECK(values_of(flat.at("param_groups.1.betas")) == Values{0.8, 0.99});
  CHECK(flat.at("param_groups.0.amsgrad").item<int64_t>() == 1);
  CHECK(flat.at("param_groups.1.params").item<int64_t>() == 1);
  // The saved tensors are copies: stepping on does not change them.
  const Values saved = values_of(flat.at("state.0.exp_avg"));
  train(net, *optimizer, x, y, 1);
  CHECK(values_of(flat.at("state.0.exp_avg")) == saved);

  auto broken = flat;
  broken["state.0.exp_avg"] = zeros({3}, kFloat64);
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("Adam: load_state_dict: state.0.exp_avg has shape [3], expected [3, 2]"));
  broken = flat;
  broken.erase("state.1.exp_avg_sq");
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("state.1.exp_avg_sq is missing"));
  broken = flat;
  broken["state.1.momentum_buffer"] = zeros({3}, kFloat64);
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("unexpected key state.1.momentum_buffer"));
  broken = flat;
  broken.erase("param_groups.0.eps");
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("the option param_groups.0.eps is missing"));
  broken = flat;
  broken["param_groups.0.betas"] = tensor({0.9, 0.99, 0.1}, kFloat64);
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("param_groups.0.betas should be a pair of reals"));
  broken = flat;
  broken["param_groups.0.betas"] = tensor({1.5, 0.99}, kFloat64);
  CHECK_THROWS_WITH(optimizer->load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("Adam: invalid beta parameter at index 0: 1.5"));
  broken = flat;
  broken["junk"] = zeros({1});
  CHECK_THROWS_WITH(optim::OptimizerStateDict::from_tensors(broken), Contains("unexpected key 'junk'"));
  // A failed load leaves the optimizer as it was.
  CHECK(static_cast<optim::AdamParamState&>(optimizer->state(net->weight)).step == 3);
  // Group structure must match.
  optim::Adam single(net->parameters());
  CHECK_THROWS_WITH(single.load_state_dict(optim::OptimizerStateDict::from_tensors(flat)),
                    Contains("Adam: load_state_dict: the state dict has 2 parameter groups, the optimizer has 1"));
  // Loading into float32 parameters converts the state.
  TinyNet net32;
  net32->to(kFloat32);
  auto optimizer32 = make_adam(net32, 0.05);
  optimizer32->load_state_dict(optim::OptimizerStateDict::from_tensors(flat));
  CHECK(static_cast<optim::AdamParamState&>(optimizer32->state(net32->weight)).exp_avg.dtype() == kFloat32);
  train(net32, *optimizer32, x.to(kFloat32), y.to(kFloat32), 1);
}

// ---- convergence --------------------------------------------------------------------------------------

namespace {
/// Trains a 2-8-1 tanh/sigmoid network on XOR; returns the final mean squared error.
template <class Make>
double train_xor(Make make, int steps) {
  manual_seed(3);
  Tensor w1 = (randn({8, 2}, kFloat64) * 1.0).requires_grad_();
  Tensor b1 = zeros({8}, kFloat64).requires_grad_();
  Tensor w2 = (randn({1, 8}, kFloat64) * 0.5).requires_grad_();
  Tensor b2 = zeros({1}, kFloat64).requires_grad_();
  const Tensor x = tensor({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}, kFloat64);
  const Tensor y = tensor({0, 1, 1, 0}, {4, 1}, kFloat64);
  auto optimizer = make(TensorList{w1, b1, w2, b2});
  double loss_value = 0;
  for (int s = 0; s < steps; ++s) {
    optimizer->zero_grad();
    Tensor out = sigmoid(linear(tanh(linear(x, w1, b1)), w2, b2));
    Tensor loss = ((out - y) * (out - y)).mean();
    loss.backward();
    optimizer->step();
    loss_value = loss.item<double>();
  }
  return loss_value;
}
}  // namespace

TEST_CASE("optimizers learn XOR", "[optim][convergence]") {
  CHECK(train_xor([](TensorList p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions(0.05)); }, 400) < 1e-3);
  CHECK(train_xor([](TensorList p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions(0.05)); }, 400) < 1e-3);
  CHECK(train_xor([](TensorList p) {
          return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.5).momentum(0.9).nesterov(true));
        }, 400) < 1e-2);
  CHECK(train_xor([](TensorList p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(0.01)); }, 400) < 1e-2);
  CHECK(train_xor([](TensorList p) { return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions(0.3)); }, 400) < 1e-2);
  CHECK(train_xor([](TensorList p) { return std::make_unique<optim::Adadelta>(p, optim::AdadeltaOptions(10.0)); }, 400) < 5e-2);
}

TEST_CASE("optimizer updates split over threads follow the reference loops element by element", "[optim][parallel]") {
  // 100,003 distinct starting values (an odd count, so the pieces are uneven): a piece that started at
  // the wrong offset, or a lost piece, would leave elements that do not follow their own reference.
  const int saved = get_num_threads();
  set_num_threads(2);
  Values start(100003);
  for (size_t i = 0; i < start.size(); ++i) start[i] = (i % 2 ? -1.0 : 1.0) * (0.5 + 1e-5 * double(i));
  auto run_large = [&](auto make_optimizer, int steps) {
    Tensor w = tensor(start, {int64_t(start.size())}, kFloat64).requires_grad_();
    auto optimizer = make_optimizer(TensorList{w});
    std::vector<Values> trajectory;
    for (int s = 0; s < steps; ++s) {
      optimizer.zero_grad();
      (w * w).sum().backward();
      optimizer.step();
      trajectory.push_back(values_of(w));
    }
    return trajectory;
  };
  check_trajectory(run_large([](TensorList p) { return optim::SGD(p, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01).nesterov(true)); }, 3),
                   reference_sgd(0.1, 0.9, 0, 0.01, true, false, 3, start), 1e-12);
  check_trajectory(run_large([](TensorList p) { return optim::Adam(p, optim::AdamOptions(0.01).amsgrad(true).weight_decay(0.1)); }, 3),
                   reference_adam(0.01, 0.9, 0.999, 1e-8, 0.1, true, false, false, 3, start), 1e-12);
  check_trajectory(run_large([](TensorList p) { return optim::RMSprop(p, optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.8).centered(true).weight_decay(0.1)); }, 3),
                   reference_rmsprop(0.01, 0.9, 1e-8, 0.1, 0.8, true, 3, start), 1e-12);
  check_trajectory(run_large([](TensorList p) { return optim::Adagrad(p, optim::AdagradOptions(0.1).lr_decay(0.5).weight_decay(0.2).initial_accumulator_value(0.3)); }, 3),
                   reference_adagrad(0.1, 0.5, 0.2, 0.3, 1e-10, 3, start), 1e-12);
  check_trajectory(run_large([](TensorList p) { return optim::Adadelta(p, optim::AdadeltaOptions(0.5).rho(0.8).eps(1e-4).weight_decay(0.1)); }, 3),
                   reference_adadelta(0.5, 0.8, 1e-4, 0.1, 3, start), 1e-12);
  set_num_threads(saved);
}

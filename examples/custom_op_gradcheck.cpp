// Adding a differentiable op of your own, and proving its gradient before trusting it.
//
// The op is squareplus, a smooth ReLU with a learnable softness b > 0:
//
//     y = (x + sqrt(x^2 + b)) / 2,   dy/dx = (1 + x / sqrt(x^2 + b)) / 2,   dy/db = 1 / (4 sqrt(x^2 + b))
//
// written as an xg::autograd::Function with its own backward (as torch::autograd::Function). Then:
//   1. gradcheck (first derivatives against central finite differences, float64) and gradgradcheck
//      (second derivatives: the backward itself differentiated) on it;
//   2. the report gradcheck gives for a deliberately wrong backward (the factor 1/2 of dy/dx forgotten);
//   3. a subtler bug: a backward that reuses sqrt(x^2 + b) cached by forward is right to first order, so
//      gradcheck passes, but the cached value carries no history, so gradgradcheck catches it;
//   4. a small network with squareplus activations (b learned per layer) trained on two interleaved spirals.
//
// smoke-test: --steps 300
#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <xgrad/xgrad.hpp>

#include "common/training.hpp"

namespace nn = xg::nn;
namespace F = xg::nn::functional;
using xg::Tensor;
using xg::TensorList;
using xg::autograd::AutogradContext;

namespace {

/// squareplus(x, b) = (x + sqrt(x^2 + b)) / 2 with b broadcast against x (b > 0).
struct Squareplus : xg::autograd::Function<Squareplus> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& b) {
    ctx->save_for_backward({x, b});
    return (x + xg::sqrt(x * x + b)) * 0.5;
  }
  // Written with xgrad ops on the saved inputs: under create_graph these ops are recorded, which is what
  // makes second derivatives (gradgradcheck, Hessian-vector products) work.
  static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
    const TensorList saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &b = saved[1];
    const Tensor& grad_y = grad_outputs[0];
    const Tensor root = xg::sqrt(x * x + b);
    Tensor grad_x, grad_b;
    if (ctx->needs_input_grad(0)) grad_x = grad_y * (x / root + 1.0) * 0.5;
    // b was broadcast against x in forward: its gradient sums over the broadcast dimensions.
    if (ctx->needs_input_grad(1)) grad_b = xg::sum_to(grad_y / (root * 4.0), b.shape());
    return {grad_x, grad_b};
  }
};

/// The same op with a bug in backward: dy/dx lost its factor 1/2.
struct SquareplusWrongBackward : xg::autograd::Function<SquareplusWrongBackward> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& b) {
    ctx->save_for_backward({x, b});
    return (x + xg::sqrt(x * x + b)) * 0.5;
  }
  static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
    const TensorList saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &b = saved[1];
    const Tensor root = xg::sqrt(x * x + b);
    return {grad_outputs[0] * (x / root + 1.0), xg::sum_to(grad_outputs[0] / (root * 4.0), b.shape())};
  }
};

/// Right first derivatives, but backward reuses sqrt(x^2 + b) computed in forward. Forward runs with
/// recording off, so the cached root is a constant to autograd: d(backward)/dx misses its dependence on x.
struct SquareplusCachedRoot : xg::autograd::Function<SquareplusCachedRoot> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& b) {
    const Tensor root = xg::sqrt(x * x + b);
    ctx->save_for_backward({x, b});
    ctx->saved_data["root"] = root;
    return (x + root) * 0.5;
  }
  static TensorList backward(AutogradContext* ctx, TensorList grad_outputs) {
    const TensorList saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &b = saved[1];
    const Tensor& root = ctx->saved_data["root"].toTensor();
    return {grad_outputs[0] * (x / root + 1.0) * 0.5, xg::sum_to(grad_outputs[0] / (root * 4.0), b.shape())};
  }
};

/// Runs a check that raises on failure and prints "passed" or the report; returns whether it passed.
template <class Check>
bool report(const std::string& what, Check check) {
  try {
    check();
    std::cout << "  " << what << ": passed\n";
    return true;
  } catch (const xg::Error& error) {
    std::cout << "  " << what << ": FAILED\n";
    std::cout << "    " << error.what() << "\n";
    return false;
  }
}

/// Two interleaved spirals: points [2 * per_class, 2] (float32) and labels int64.
std::pair<Tensor, Tensor> make_spirals(int64_t per_class, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<double> position(0.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.03);
  std::vector<double> points, labels;
  for (int64_t label = 0; label < 2; ++label)
    for (int64_t i = 0; i < per_class; ++i) {
      const double t = position(generator);
      const double angle = 3.0 * M_PI * t + M_PI * static_cast<double>(label);
      const double radius = 0.1 + 0.9 * t;
      points.push_back(radius * std::cos(angle) + noise(generator));
      points.push_back(radius * std::sin(angle) + noise(generator));
      labels.push_back(static_cast<double>(label));
    }
  return {xg::tensor(points, {2 * per_class, 2}), xg::tensor(labels, {2 * per_class}, xg::TensorOptions(xg::kInt64))};
}

/// A 2-H-H-2 network with squareplus activations; each activation layer learns its own b = softplus(raw) > 0.
struct SquareplusNetImpl : nn::Module {
  explicit SquareplusNetImpl(int64_t hidden)
      : fc1(register_module("fc1", nn::Linear(2, hidden))),
        fc2(register_module("fc2", nn::Linear(hidden, hidden))),
        fc3(register_module("fc3", nn::Linear(hidden, 2))),
        // softplus(0.5413) = 1: both activations start as squareplus with b = 1.
        softness1(register_parameter("softness1", xg::full({1}, 0.5413))),
        softness2(register_parameter("softness2", xg::full({1}, 0.5413))) {}
  Tensor forward(const Tensor& points) {
    Tensor h = Squareplus::apply(fc1(points), xg::softplus(softness1));
    h = Squareplus::apply(fc2(h), xg::softplus(softness2));
    return fc3(h);
  }
  nn::Linear fc1, fc2, fc3;
  Tensor softness1, softness2;
};
XG_MODULE(SquareplusNet);

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"A custom differentiable op (squareplus): gradcheck, gradgradcheck, a wrong backward's report, then training"};
  int64_t steps = 1500, hidden = 32, points_per_class = 200;
  double lr = 0.01;
  uint64_t seed = 0;
  app.add_option("--steps", steps, "Full-batch Adam steps on the spirals")
      ->capture_default_str()
      ->check(training::size_range(10000000));
  app.add_option("--hidden", hidden, "Units per hidden layer")->capture_default_str()->check(training::size_range(8192));
  app.add_option("--points", points_per_class, "Points per spiral")->capture_default_str()->check(training::size_range(1000000));
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (steps <= 0 || hidden <= 0 || points_per_class <= 0 || !(lr > 0)) {
    std::cerr << "error: --steps, --hidden, --points and --lr must be positive (see --help)\n";
    return 2;
  }
  xg::manual_seed(seed);

  // ---- 1-3: the checks, in float64 at points away from anything singular (b > 0 everywhere) ----
  const Tensor x = xg::randn({3, 4}, xg::TensorOptions(xg::kFloat64)).requires_grad_();
  const Tensor b = (xg::rand({4}, xg::TensorOptions(xg::kFloat64)) + 0.5).requires_grad_();
  auto check_op = [&](auto op_tag, bool second_order) {
    using Op = decltype(op_tag);
    auto fn = [](const TensorList& inputs) { return Op::apply(inputs[0], inputs[1]); };
    if (second_order) xg::autograd::gradgradcheck(fn, {x, b});
    else xg::autograd::gradcheck(fn, {x, b});
  };

  std::cout << "1. squareplus(x, b) = (x + sqrt(x^2 + b)) / 2, x [3, 4], b [4] (broadcast), float64\n";
  const bool first_ok = report("gradcheck    ", [&] { check_op(Squareplus{}, false); });
  const bool second_ok = report("gradgradcheck", [&] { check_op(Squareplus{}, true); });

  std::cout << "\n2. a wrong backward (dy/dx without its factor 1/2): what gradcheck reports\n";
  const bool wrong_caught = !report("gradcheck    ", [&] { check_op(SquareplusWrongBackward{}, false); });

  std::cout << "\n3. a backward that reuses sqrt(x^2 + b) cached by forward\n";
  const bool cached_first_ok = report("gradcheck    ", [&] { check_op(SquareplusCachedRoot{}, false); });
  const bool cached_caught = !report("gradgradcheck", [&] { check_op(SquareplusCachedRoot{}, true); });

  // Not an assertion on xgrad's output but on this program's claims: if a check did not behave as the
  // text above says, say so and fail.
  if (!(first_ok && second_ok && wrong_caught && cached_first_ok && cached_caught)) {
    std::cerr << "error: the checks did not come out as expected (see above)\n";
    return 1;
  }

  // ---- 4: training with the op ----
  std::cout << fmt::format("\n4. training a 2-{0}-{0}-2 squareplus network on two spirals ({1} points), Adam lr {2}\n", hidden,
                           2 * points_per_class, lr);
  const auto [train_points, train_labels] = make_spirals(points_per_class, seed + 1);
  const auto [test_points, test_labels] = make_spirals(points_per_class, seed + 2);
  SquareplusNet model(hidden);
  xg::optim::Adam optimizer(model->parameters(), xg::optim::AdamOptions(lr));
  auto accuracy = [&](const Tensor& points, const Tensor& labels) {
    xg::NoGradGuard no_grad;
    return xg::eq(model(points).argmax(1), labels).to(xg::kFloat64).mean().item<double>();
  };
  double first_loss = 0.0, last_loss = 0.0;
  for (int64_t step = 0; step <= steps; ++step) {
    optimizer.zero_grad();
    const Tensor loss = F::cross_entropy(model(train_points), train_labels);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      std::cerr << fmt::format("error: the loss became {} at step {}; try a smaller --lr\n", value, step);
      return 1;
    }
    if (step == 0) first_loss = value;
    last_loss = value;
    if (step % std::max<int64_t>(1, steps / 6) == 0 || step == steps)
      std::cout << fmt::format("  step {:5d}: loss {:.4f}, train accuracy {:.1f}%, b = {:.3f}, {:.3f}\n", step, value,
                               100.0 * accuracy(train_points, train_labels), xg::softplus(model->softness1).item<double>(),
                               xg::softplus(model->softness2).item<double>());
    if (step == steps) break;
    loss.backward();
    optimizer.step();
  }
  std::cout << fmt::format("custom_op_gradcheck: test accuracy {:.1f}% on {} fresh spiral points; loss {:.4f} -> {:.4f}\n",
                           100.0 * accuracy(test_points, test_labels), test_labels.numel(), first_loss, last_loss);
  if (!(last_loss < first_loss)) {
    std::cerr << "error: the loss did not go down\n";
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }

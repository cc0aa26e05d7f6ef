// Second-order methods with create_graph: a Hessian-vector product through double backward, checked
// against finite differences of gradients, then three optimisers from the same start on a small network:
// gradient descent, L-BFGS (xg::optim::LBFGS with a strong-Wolfe line search) and Newton-CG (truncated
// conjugate gradients on H d = -g using only Hessian-vector products, then a backtracking line search).
//
// The problem: a 1-H-H-1 tanh network fitted to y = sin(3x) + 0.3x on 128 points in [-2, 2], in float64,
// full batch (second-order methods want exact gradients).
//
// smoke-test: --iterations 8
#include <algorithm>
#include <cmath>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <xgrad/xgrad.hpp>

#include "common/training.hpp"

namespace nn = xg::nn;
namespace F = xg::nn::functional;
using xg::Tensor;
using xg::TensorList;

namespace {

// ---- vectors made of several parameter tensors ------------------------------------------------------

double dot(const TensorList& a, const TensorList& b) {
  xg::NoGradGuard no_grad;
  double total = 0.0;
  for (size_t i = 0; i < a.size(); ++i) total += (a[i] * b[i]).sum().item<double>();
  return total;
}

/// a + alpha * b, elementwise over the lists.
TensorList axpy(const TensorList& a, double alpha, const TensorList& b) {
  xg::NoGradGuard no_grad;
  TensorList out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(a[i] + b[i] * alpha);
  return out;
}

TensorList scaled(const TensorList& a, double alpha) {
  xg::NoGradGuard no_grad;
  TensorList out;
  for (const Tensor& t : a) out.push_back(t * alpha);
  return out;
}

TensorList detached(const TensorList& a) {
  TensorList out;
  for (const Tensor& t : a) out.push_back(t.detach());
  return out;
}

/// Moves the parameters by alpha * direction, in place (outside the tape).
void move_parameters(const TensorList& parameters, double alpha, const TensorList& direction) {
  xg::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters.size(); ++i) {
    Tensor p = parameters[i];
    p.add_(direction[i], alpha);
  }
}

double max_abs(const TensorList& a) {
  xg::NoGradGuard no_grad;
  double m = 0.0;
  for (const Tensor& t : a) m = std::max(m, t.abs().max().item<double>());
  return m;
}

struct CurveFitNetImpl : nn::Module {
  explicit CurveFitNetImpl(int64_t hidden)
      : fc1(register_module("fc1", nn::Linear(1, hidden))),
        fc2(register_module("fc2", nn::Linear(hidden, hidden))),
        fc3(register_module("fc3", nn::Linear(hidden, 1))) {}
  /// x [N, 1] -> y [N, 1].
  Tensor forward(const Tensor& x) { return fc3(xg::tanh(fc2(xg::tanh(fc1(x))))); }
  nn::Linear fc1, fc2, fc3;
};
XG_MODULE(CurveFitNet);

/// A copy of every parameter's value (to restart each optimiser from the same point).
nn::OrderedDict<Tensor> snapshot(const nn::Module& model) {
  nn::OrderedDict<Tensor> copy;
  for (const auto& item : model.state_dict()) copy.insert(item.first, item.second.detach().clone());
  return copy;
}

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"Hessian-vector products with create_graph, checked by finite differences; gradient descent vs L-BFGS vs Newton-CG"};
  int64_t iterations = 25, hidden = 16, cg_iterations = 30;
  double gd_lr = 0.1;
  uint64_t seed = 0;
  app.add_option("--iterations", iterations, "Outer iterations of each optimiser")
      ->capture_default_str()
      ->check(training::size_range(1000000));
  app.add_option("--hidden", hidden, "Units per hidden layer")->capture_default_str()->check(training::size_range(4096));
  app.add_option("--cg-iterations", cg_iterations, "Newton-CG: most conjugate-gradient steps per Newton step")
      ->capture_default_str()
      ->check(training::size_range(10000));
  app.add_option("--gd-lr", gd_lr, "Gradient descent's step size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (iterations <= 0 || hidden <= 0 || cg_iterations <= 0 || !(gd_lr > 0)) {
    std::cerr << "error: --iterations, --hidden, --cg-iterations and --gd-lr must be positive (see --help)\n";
    return 2;
  }
  xg::manual_seed(seed);

  const Tensor x = xg::arange(-2.0, 2.0, 4.0 / 128, xg::TensorOptions(xg::kFloat64)).unsqueeze(1);
  const Tensor y = xg::sin(x * 3.0) + x * 0.3;
  CurveFitNet model(hidden);
  model->to(xg::kFloat64);
  const TensorList parameters = model->parameters();
  auto loss_function = [&] { return F::mse_loss(model(x), y); };
  auto gradient = [&](bool create_graph) { return xg::autograd::grad({loss_function()}, parameters, {}, std::nullopt, create_graph); };

  // ---- 1. Hessian-vector product -----------------------------------------------------------------
  // H v = d/dw (g(w) . v): differentiate the gradient, recorded with create_graph, against v.
  TensorList v, u;
  for (const Tensor& p : parameters) v.push_back(xg::randn(p.shape(), xg::TensorOptions(xg::kFloat64)));
  for (const Tensor& p : parameters) u.push_back(xg::randn(p.shape(), xg::TensorOptions(xg::kFloat64)));
  const TensorList g = gradient(/*create_graph=*/true);
  auto hessian_vector_product = [&](const TensorList& gradients, const TensorList& vector) {
    Tensor g_dot_v = xg::zeros({}, xg::TensorOptions(xg::kFloat64));
    for (size_t i = 0; i < gradients.size(); ++i) g_dot_v = g_dot_v + (gradients[i] * vector[i]).sum();
    return detached(xg::autograd::grad({g_dot_v}, parameters, {}, /*retain_graph=*/true));
  };
  const TensorList hv = hessian_vector_product(g, v);
  const TensorList hu = hessian_vector_product(g, u);

  // Central differences of the gradient along v: (g(w + eps v) - g(w - eps v)) / (2 eps).
  const double eps = 1e-5;
  move_parameters(parameters, eps, v);
  const TensorList g_plus = detached(gradient(false));
  move_parameters(parameters, -2 * eps, v);
  const TensorList g_minus = detached(gradient(false));
  move_parameters(parameters, eps, v);
  const TensorList hv_numeric = scaled(axpy(g_plus, -1.0, g_minus), 1.0 / (2 * eps));
  const double hv_error = max_abs(axpy(hv, -1.0, hv_numeric)) / std::max(max_abs(hv_numeric), 1e-300);
  // A Hessian is symmetric: u . (H v) = v . (H u).
  const double uhv = dot(u, hv), vhu = dot(v, hu);
  const double symmetry_error = std::abs(uhv - vhu) / std::max(std::abs(uhv), 1e-300);
  std::cout << fmt::format("1. Hessian-vector product of a 1-{0}-{0}-1 tanh network's loss ({1} parameters), float64\n", hidden,
                           model->num_parameters());
  std::cout << fmt::format("   |Hv (double backward) - Hv (finite differences of gradients, eps {})|max / |Hv|max = {:.2e}\n", eps,
                           hv_error);
  std::cout << fmt::format("   symmetry: u.(Hv) = {:.10f}, v.(Hu) = {:.10f}, relative difference {:.2e}\n", uhv, vhu, symmetry_error);
  const bool hvp_ok = hv_error < 1e-6 && symmetry_error < 1e-10;
  if (!hvp_ok) std::cerr << "error: the Hessian-vector product disagrees with finite differences or is not symmetric\n";

  // ---- 2. three optimisers from the same start ---------------------------------------------------
  const nn::OrderedDict<Tensor> start = snapshot(*model);
  const double initial_loss = loss_function().item<double>();
  struct Trace {
    std::vector<double> loss;
    int64_t gradient_evaluations = 0;  // loss + gradient evaluations (a Hessian-vector product counts as 2)
  };

  Trace descent;
  {
    model->load_state_dict(start);
    xg::optim::SGD optimizer(parameters, xg::optim::SGDOptions(gd_lr));
    for (int64_t i = 0; i < iterations; ++i) {
      optimizer.zero_grad();
      Tensor loss = loss_function();
      loss.backward();
      optimizer.step();
      ++descent.gradient_evaluations;
      descent.loss.push_back(loss_function().item<double>());
    }
  }

  Trace lbfgs;
  {
    model->load_state_dict(start);
    xg::optim::LBFGS optimizer(parameters, xg::optim::LBFGSOptions(1.0).max_iter(1).history_size(20).line_search_fn("strong_wolfe"));
    auto closure = [&] {
      optimizer.zero_grad();
      Tensor loss = loss_function();
      loss.backward();
      ++lbfgs.gradient_evaluations;
      return loss;
    };
    for (int64_t i = 0; i < iterations; ++i) {
      optimizer.step(closure);
      lbfgs.loss.push_back(loss_function().item<double>());
    }
  }

  Trace newton;
  int64_t negative_curvature = 0;
  double damping = 1.0;
  {
    model->load_state_dict(start);
    for (int64_t i = 0; i < iterations; ++i) {
      Tensor loss = loss_function();
      const TensorList grads = xg::autograd::grad({loss}, parameters, {}, std::nullopt, /*create_graph=*/true);
      ++newton.gradient_evaluations;
      const TensorList g_value = detached(grads);
      const double loss_value = loss.item<double>();
      const double g_norm = std::sqrt(dot(g_value, g_value));
      // Truncated CG on (H + damping I) d = -g. The network's loss is not convex: the damping (adapted
      // below, as Levenberg-Marquardt does) keeps the system positive definite near the current point; CG
      // still stops at a direction of negative curvature, keeping the last descent direction.
      TensorList d = scaled(g_value, 0.0), r = scaled(g_value, -1.0), p = r;
      double rr = dot(r, r);
      for (int64_t k = 0; k < cg_iterations; ++k) {
        const TensorList hp = axpy(hessian_vector_product(grads, p), damping, p);
        newton.gradient_evaluations += 2;
        const double curvature = dot(p, hp);
        if (curvature <= 0) {
          ++negative_curvature;
          if (k == 0) d = scaled(r, 1.0 / (damping + g_norm));  // a short steepest-descent step
          break;
        }
        const double alpha = rr / curvature;
        d = axpy(d, alpha, p);
        r = axpy(r, -alpha, hp);
        const double rr_next = dot(r, r);
        if (std::sqrt(rr_next) < std::min(0.5, std::sqrt(g_norm)) * g_norm) break;  // the usual forcing term
        p = axpy(r, rr_next / rr, p);
        rr = rr_next;
      }
      // The quadratic model's predicted change: with r = -g - A d, g.d + d.A d / 2 = (g.d - d.r) / 2.
      const double slope = dot(g_value, d);
      const double predicted = 0.5 * (slope - dot(d, r));
      // Backtracking (Armijo) line search from the full step.
      double step = 1.0;
      move_parameters(parameters, step, d);
      double trial = loss_function().item<double>();
      ++newton.gradient_evaluations;
      while (trial > loss_value + 1e-4 * step * slope && step > 1e-8) {
        move_parameters(parameters, -step / 2, d);
        step /= 2;
        trial = loss_function().item<double>();
        ++newton.gradient_evaluations;
      }
      // Trust the model more (less damping) when it predicted the full step's decrease well.
      const double agreement = step == 1.0 && predicted < 0 ? (trial - loss_value) / predicted : 0.0;
      if (agreement > 0.75) damping *= 2.0 / 3.0;
      else if (agreement < 0.25) damping *= 1.5;
      newton.loss.push_back(trial);
    }
  }

  std::cout << fmt::format("\n2. fitting y = sin(3x) + 0.3x on 128 points (mean squared error), all from the same start (loss {:.3e})\n",
                           initial_loss);
  std::cout << fmt::format("   {:>9}  {:>22}  {:>22}  {:>22}\n", "iteration", fmt::format("gradient descent {}", gd_lr), "L-BFGS",
                           "Newton-CG");
  for (int64_t i = 0; i < iterations; ++i)
    if (i < 5 || (i + 1) % 5 == 0 || i + 1 == iterations)
      std::cout << fmt::format("   {:>9}  {:>22.4e}  {:>22.4e}  {:>22.4e}\n", i + 1, descent.loss[static_cast<size_t>(i)],
                               lbfgs.loss[static_cast<size_t>(i)], newton.loss[static_cast<size_t>(i)]);
  std::cout << fmt::format("   {:>9}  {:>22}  {:>22}  {:>22}\n", "gradients", descent.gradient_evaluations, lbfgs.gradient_evaluations,
                           newton.gradient_evaluations);
  std::cout << "   (gradients: loss and gradient evaluations, a Hessian-vector product counted as two; Newton-CG met "
            << negative_curvature << " direction(s) of negative curvature and ended with damping " << fmt::format("{:.2g}", damping)
            << ")\n";

  const bool learned = lbfgs.loss.back() < initial_loss && newton.loss.back() < initial_loss && descent.loss.back() < initial_loss;
  if (!learned) std::cerr << "error: the loss did not go down for every method\n";
  std::cout << fmt::format("second_order: final loss {:.3e} (gradient descent), {:.3e} (L-BFGS), {:.3e} (Newton-CG)\n",
                           descent.loss.back(), lbfgs.loss.back(), newton.loss.back());
  return hvp_ok && learned ? 0 : 1;
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }

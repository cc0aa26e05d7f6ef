// Fits a 2-layer tanh network to a real function, y = sin(x) + 0.3 cos(3x) on [-pi, pi], with a
// hand-written SGD loop over .grad(): the smallest complete use of the tape.
// smoke-test: --steps 500
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include <xgrad/xgrad.hpp>

#include "common/training.hpp"

namespace {

struct Settings {
  int64_t hidden = 32;
  int64_t steps = 20000;
  int64_t batch = 64;
  double lr = 0.05;
  uint64_t seed = 0;
};

void usage() {
  std::cout << "demo_fit: fit a 1-H-1 tanh network to sin(x) + 0.3 cos(3x) with plain SGD\n"
               "  --hidden N   hidden units (default 32)\n"
               "  --steps N    SGD steps (default 20000)\n"
               "  --batch N    samples per step (default 64)\n"
               "  --lr X       learning rate (default 0.05)\n"
               "  --seed N     random seed (default 0)\n";
}

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::cerr << "demo_fit: " << arg << " needs a value (see --help)\n";
      std::exit(2);
    }
    std::string value = argv[++i];
    try {
      if (arg == "--hidden") s.hidden = std::stoll(value);
      else if (arg == "--steps") s.steps = std::stoll(value);
      else if (arg == "--batch") s.batch = std::stoll(value);
      else if (arg == "--lr") s.lr = std::stod(value);
      else if (arg == "--seed") s.seed = std::stoull(value);
      else {
        std::cerr << "demo_fit: unknown option " << arg << " (see --help)\n";
        std::exit(2);
      }
    } catch (const std::exception&) {
      std::cerr << "demo_fit: bad value '" << value << "' for " << arg << "\n";
      std::exit(2);
    }
  }
  // Upper bounds far above any sensible run: a typo must not become an allocation of terabytes.
  if (s.hidden <= 0 || s.hidden > 65536 || s.steps <= 0 || s.steps > 100000000 || s.batch <= 0 || s.batch > (1 << 20) ||
      !(s.lr > 0) || !std::isfinite(s.lr)) {
    std::cerr << "demo_fit: --hidden must be in [1, 65536], --steps in [1, 1e8], --batch in [1, 1048576] and --lr a positive "
                 "number\n";
    std::exit(2);
  }
  return s;
}

xg::Tensor target(const xg::Tensor& x) { return xg::sin(x) + xg::cos(x * 3.0) * 0.3; }

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  xg::manual_seed(s.seed);

  // Parameters: N(0, 1/fan_in) weights, zero biases.
  xg::Tensor w1 = (xg::randn({s.hidden, 1}) * 1.0).requires_grad_();
  xg::Tensor b1 = xg::zeros({s.hidden}).requires_grad_();
  xg::Tensor w2 = (xg::randn({1, s.hidden}) / std::sqrt(double(s.hidden))).requires_grad_();
  xg::Tensor b2 = xg::zeros({1}).requires_grad_();
  const xg::TensorList parameters{w1, b1, w2, b2};

  auto model = [&](const xg::Tensor& x) { return xg::linear(xg::tanh(xg::linear(x, w1, b1)), w2, b2); };

  // A fixed evaluation grid.
  xg::Tensor grid = (xg::arange(0, 201, 1, xg::kFloat32) / 100.0 - 1.0) * M_PI;
  grid = grid.unsqueeze(1);
  auto evaluate = [&] {
    xg::NoGradGuard no_grad;
    xg::Tensor error = model(grid) - target(grid);
    return (error * error).mean().item<double>();
  };

  std::cout << "fitting sin(x) + 0.3 cos(3x) on [-pi, pi] with a 1-" << s.hidden << "-1 tanh network, SGD lr " << s.lr
            << ", batch " << s.batch << "\n";
  const double initial = evaluate();
  std::cout << "step     0  eval MSE " << initial << "\n";
  for (int64_t step = 1; step <= s.steps; ++step) {
    xg::Tensor x = (xg::rand({s.batch, 1}) * 2.0 - 1.0) * M_PI;
    xg::Tensor error = model(x) - target(x);
    xg::Tensor loss = (error * error).mean();
    for (const xg::Tensor& p : parameters) p.set_grad(xg::Tensor());
    loss.backward();
    {
      xg::NoGradGuard no_grad;
      for (const xg::Tensor& p : parameters) {
        xg::Tensor param = p;
        param.sub_(p.grad() * s.lr);
      }
    }
    if (step % (s.steps / 10 > 0 ? s.steps / 10 : 1) == 0) {
      const double value = loss.item<double>();
      XG_CHECK(std::isfinite(value), "demo_fit: the training loss became {} at step {}: training diverged (try a smaller --lr)",
               value, step);
      std::cout << "step " << std::string(5 - std::min<size_t>(5, std::to_string(step).size()), ' ') << step
                << "  train loss " << value << "  eval MSE " << evaluate() << "\n";
    }
  }
  const double final_mse = evaluate();
  XG_CHECK(std::isfinite(final_mse), "demo_fit: the evaluation MSE became {}: training diverged (try a smaller --lr)", final_mse);
  std::cout << "final eval MSE " << final_mse << " (from " << initial << ")\n";
  {
    xg::NoGradGuard no_grad;
    xg::Tensor probe = xg::tensor({-2.0, -1.0, 0.0, 1.0, 2.0}).unsqueeze(1);
    xg::Tensor predicted = model(probe), expected = target(probe);
    for (int i = 0; i < 5; ++i)
      std::cout << "  f(" << probe.data_ptr<float>()[i] << ") = " << expected.data_ptr<float>()[i] << ", network: "
                << predicted.data_ptr<float>()[i] << "\n";
  }
  return final_mse < initial ? 0 : 1;
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }

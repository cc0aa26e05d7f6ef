// L-BFGS: Rosenbrock with the strong-Wolfe line search, a quadratic without line search, budgets,
// early exit at an optimum, state save/load, errors.
#include <catch2/catch.hpp>

#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
/// Rosenbrock's function (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1).
Tensor rosenbrock(const Tensor& p) {
  Tensor x = p.narrow(0, 0, 1), y = p.narrow(0, 1, 1);
  Tensor a = 1.0 - x, b = y - x * x;
  return (a * a + 100.0 * b * b).sum();
}

optim::LossClosure closure_for(optim::Optimizer& optimizer, const Tensor& p, int& evaluations) {
  return [&optimizer, p, &evaluations] {
    ++evaluations;
    optimizer.zero_grad();
    Tensor loss = rosenbrock(p);
    loss.backward();
    return loss;
  };
}
}  // namespace

TEST_CASE("LBFGS with strong Wolfe minimises Rosenbrock from (-1.5, 2) within its budget", "[optim][lbfgs]") {
  Tensor p = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  optim::LBFGS optimizer({p}, optim::LBFGSOptions(1).max_iter(100).line_search_fn("strong_wolfe"));
  int evaluations = 0;
  const Tensor first_loss = optimizer.step(closure_for(optimizer, p, evaluations));
  CHECK(first_loss.item<double>() == Approx(std::pow(2.5, 2) + 100 * std::pow(2 - 2.25, 2)));  // f(-1.5, 2) = 12.5
  // One step (max_iter 100, max_eval 125) ends when the loss changes by less than tolerance_change = 1e-9.
  INFO("x = " << p.data_ptr<double>()[0] << ", y = " << p.data_ptr<double>()[1] << " after " << evaluations);
  CHECK(evaluations <= 1 + 125);
  CHECK(rosenbrock(p.detach()).item<double>() < 1e-9);
  CHECK(std::abs(p.data_ptr<double>()[0] - 1) < 1e-5);
  CHECK(std::abs(p.data_ptr<double>()[1] - 1) < 1e-5);
  auto& state = static_cast<optim::LBFGSParamState&>(optimizer.state(p));
  CHECK(state.func_evals == evaluations);
  CHECK(state.n_iter < 100);
  CHECK(state.old_dirs.size() == state.ro.size());

  // With a tighter tolerance_change, the same single step reaches the minimiser to 1e-6.
  Tensor q = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  optim::LBFGS tight({q}, optim::LBFGSOptions(1).max_iter(100).tolerance_change(1e-12).line_search_fn("strong_wolfe"));
  int tight_evaluations = 0;
  tight.step(closure_for(tight, q, tight_evaluations));
  INFO("x = " << q.data_ptr<double>()[0] << ", y = " << q.data_ptr<double>()[1] << " after " << tight_evaluations);
  CHECK(tight_evaluations <= 1 + 125);
  CHECK(std::abs(q.data_ptr<double>()[0] - 1) < 1e-6);
  CHECK(std::abs(q.data_ptr<double>()[1] - 1) < 1e-6);
  CHECK(rosenbrock(q.detach()).item<double>() < 1e-12);
}

TEST_CASE("LBFGS respects max_iter and max_eval", "[optim][lbfgs]") {
  Tensor p = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  optim::LBFGS optimizer({p}, optim::LBFGSOptions(1).max_iter(4).max_eval(1000).line_search_fn("strong_wolfe"));
  int evaluations = 0;
  optimizer.step(closure_for(optimizer, p, evaluations));
  auto& state = static_cast<optim::LBFGSParamState&>(optimizer.state(p));
  CHECK(state.n_iter == 4);
  CHECK(evaluations <= 1 + 4 * 25);
  // max_eval = 3 stops after the first iteration's evaluations reach it.
  Tensor q = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  optim::LBFGS limited({q}, optim::LBFGSOptions(0.001).max_iter(50).max_eval(3));
  int limited_evaluations = 0;
  limited.step(closure_for(limited, q, limited_evaluations));
  CHECK(limited_evaluations == 3);  // no line search: one evaluation per iteration
  CHECK(static_cast<optim::LBFGSParamState&>(limited.state(q)).n_iter == 2);
}

TEST_CASE("LBFGS without line search solves a convex quadratic", "[optim][lbfgs]") {
  // f(x) = 0.5 x^T A x - b^T x with A = [[3, 1, 0], [1, 4, 1], [0, 1, 2]] (positive definite), b = [1, 2, 3]:
  // the minimiser solves A x = b, checked through the residual.
  const Tensor A = tensor({3, 1, 0, 1, 4, 1, 0, 1, 2}, {3, 3}, kFloat64);
  const Tensor b = tensor({1, 2, 3}, kFloat64);
  Tensor x = zeros({3}, kFloat64).requires_grad_();
  optim::LBFGS optimizer({x}, optim::LBFGSOptions(1).max_iter(50).tolerance_grad(1e-11).tolerance_change(0));
  optimizer.step([&] {
    optimizer.zero_grad();
    Tensor loss = 0.5 * dot(x, matmul(A, x)) - dot(b, x);
    loss.backward();
    return loss;
  });
  const Tensor residual = matmul(A, x.detach()) - b;
  CHECK(residual.abs().max().item<double>() < 1e-9);
}

TEST_CASE("LBFGS in float32 converges on Rosenbrock", "[optim][lbfgs]") {
  Tensor p = tensor({-1.5, 2.0}, kFloat32).requires_grad_();
  optim::LBFGS optimizer({p}, optim::LBFGSOptions(1).max_iter(100).line_search_fn("strong_wolfe"));
  int evaluations = 0;
  auto closure = closure_for(optimizer, p, evaluations);
  for (int call = 0; call < 3; ++call) optimizer.step(closure);
  CHECK(std::abs(p.data_ptr<float>()[0] - 1) < 1e-3);
  CHECK(std::abs(p.data_ptr<float>()[1] - 1) < 2e-3);
}

TEST_CASE("LBFGS returns at once at an optimum", "[optim][lbfgs]") {
  Tensor p = tensor({1.0, 1.0}, kFloat64).requires_grad_();
  optim::LBFGS optimizer({p}, optim::LBFGSOptions().line_search_fn("strong_wolfe"));
  int evaluations = 0;
  const Tensor loss = optimizer.step(closure_for(optimizer, p, evaluations));
  CHECK(loss.item<double>() == 0.0);
  CHECK(evaluations == 1);
  CHECK(p.data_ptr<double>()[0] == 1.0);
}

TEST_CASE("LBFGS state resumes bit-identically", "[optim][lbfgs][state]") {
  const auto options = optim::LBFGSOptions(1).max_iter(5).history_size(3).line_search_fn("strong_wolfe");
  Tensor a = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  optim::LBFGS uninterrupted({a}, options);
  int count = 0;
  for (int s = 0; s < 4; ++s) uninterrupted.step(closure_for(uninterrupted, a, count));

  Tensor b = tensor({-1.5, 2.0}, kFloat64).requires_grad_();
  auto first = std::make_unique<optim::LBFGS>(TensorList{b}, options);
  for (int s = 0; s < 2; ++s) first->step(closure_for(*first, b, count));
  const auto flat = first->state_dict().to_tensors();
  first.reset();
  CHECK(flat.at("state.0.old_dirs").shape() == Shape{3, 2});  // history_size 3 reached
  CHECK(flat.at("state.0.d").shape() == Shape{2});
  CHECK(flat.at("state.0.n_iter").item<int64_t>() >= 2);  // max_eval (6) may end a step before max_iter
  CHECK(flat.at("param_groups.0.line_search_fn").dtype() == kInt64);
  optim::LBFGS resumed({b}, optim::LBFGSOptions(1).max_iter(5).history_size(3));
  resumed.load_state_dict(optim::OptimizerStateDict::from_tensors(flat));
  CHECK(static_cast<const optim::LBFGSOptions&>(resumed.param_groups()[0].options()).line_search_fn() ==
        std::optional<std::string>("strong_wolfe"));
  for (int s = 0; s < 2; ++s) resumed.step(closure_for(resumed, b, count));
  CHECK(equal(a, b));

  auto broken = flat;
  broken["state.0.d"] = zeros({3}, kFloat64);
  CHECK_THROWS_WITH(resumed.load_state_dict(optim::OptimizerStateDict::from_tensors(broken)),
                    Contains("LBFGS: load_state_dict: state.0.d has shape [3], expected [2]"));
}

TEST_CASE("LBFGS errors", "[optim][lbfgs][errors]") {
  Tensor p = zeros({2}, kFloat64).requires_grad_();
  CHECK_THROWS_WITH(optim::LBFGS({p}, optim::LBFGSOptions().line_search_fn("backtracking")),
                    Contains("LBFGS: only 'strong_wolfe' is supported as line_search_fn, got 'backtracking'"));
  CHECK_THROWS_WITH(optim::LBFGS({p}, optim::LBFGSOptions().history_size(0)), Contains("LBFGS: invalid history_size: 0"));
  CHECK_THROWS_WITH(optim::LBFGS({p}, optim::LBFGSOptions().max_iter(0)), Contains("LBFGS: invalid max_iter: 0"));
  optim::LBFGS optimizer({p});
  CHECK_THROWS_WITH(optimizer.step(), Contains("LBFGS: step needs a closure"));
  CHECK_THROWS_WITH(optimizer.step([] { return Tensor(); }), Contains("the closure must return the loss"));
  Tensor q = zeros({1}, kFloat64).requires_grad_();
  std::vector<optim::OptimizerParamGroup> groups{optim::OptimizerParamGroup({p}), optim::OptimizerParamGroup({q})};
  CHECK_THROWS_WITH(optim::LBFGS(groups), Contains("LBFGS: doesn't support per-parameter options"));
}

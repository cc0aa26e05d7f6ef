// Learning-rate schedules against their closed forms, written out here; ReduceLROnPlateau's patience and
// cooldown walked through by hand; scheduler state save/load; gradient clipping.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
constexpr double kPi = 3.14159265358979323846;

/// Checks the lr after construction (epoch 0) and after each of `epochs` steps against expected(epoch, group).
template <class Scheduler, class Expected>
void check_schedule(optim::Optimizer& optimizer, Scheduler& scheduler, int epochs, Expected expected) {
  for (int epoch = 0; epoch <= epochs; ++epoch) {
    if (epoch > 0) scheduler.step();
    for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
      INFO("epoch " << epoch << ", group " << g);
      CHECK(optimizer.param_groups()[g].lr() == Approx(expected(epoch, g)).epsilon(1e-12).margin(1e-15));
      CHECK(scheduler.get_last_lr()[g] == optimizer.param_groups()[g].lr());
    }
    CHECK(scheduler.last_epoch() == epoch);
  }
}

struct TwoGroups {
  Tensor a = zeros({2}).requires_grad_();
  Tensor b = zeros({1}).requires_grad_();
  optim::SGD optimizer{std::vector<optim::OptimizerParamGroup>{
                           optim::OptimizerParamGroup({a}, optim::SGDOptions(0.1).momentum(0.9)),
                           optim::OptimizerParamGroup({b}, optim::SGDOptions(0.02))},
                       optim::SGDOptions(0.1)};
  double base(size_t g) const { return g == 0 ? 0.1 : 0.02; }
};
}  // namespace

TEST_CASE("StepLR, MultiStepLR and ExponentialLR follow their closed forms", "[optim][scheduler]") {
  {
    TwoGroups setup;
    optim::StepLR scheduler(setup.optimizer, 3, 0.5);
    check_schedule(setup.optimizer, scheduler, 10,
                   [&](int e, size_t g) { return setup.base(g) * std::pow(0.5, e / 3); });
  }
  {
    TwoGroups setup;
    optim::MultiStepLR scheduler(setup.optimizer, {7, 2, 4}, 0.1);  // order does not matter
    check_schedule(setup.optimizer, scheduler, 9, [&](int e, size_t g) {
      const int passed = (e >= 2) + (e >= 4) + (e >= 7);
      return setup.base(g) * std::pow(0.1, passed);
    });
  }
  {
    TwoGroups setup;
    optim::ExponentialLR scheduler(setup.optimizer, 0.9);
    check_schedule(setup.optimizer, scheduler, 12, [&](int e, size_t g) { return setup.base(g) * std::pow(0.9, e); });
  }
}

TEST_CASE("CosineAnnealingLR, LambdaLR and LinearLR follow their closed forms", "[optim][scheduler]") {
  {
    TwoGroups setup;
    optim::CosineAnnealingLR scheduler(setup.optimizer, 10, 0.001);
    check_schedule(setup.optimizer, scheduler, 15, [&](int e, size_t g) {
      return 0.001 + (setup.base(g) - 0.001) * (1 + std::cos(kPi * e / 10)) / 2;
    });
    // At T_max the rate is eta_min.
  }
  {
    TwoGroups setup;
    optim::LambdaLR scheduler(setup.optimizer, [](int64_t e) { return 1.0 / (1.0 + e); });
    check_schedule(setup.optimizer, scheduler, 6, [&](int e, size_t g) { return setup.base(g) / (1.0 + e); });
  }
  {
    TwoGroups setup;
    optim::LambdaLR scheduler(setup.optimizer,
                              std::vector<optim::LambdaLR::Lambda>{[](int64_t e) { return 0.5 * e; },
                                                                   [](int64_t) { return 3.0; }});
    check_schedule(setup.optimizer, scheduler, 4, [&](int e, size_t g) { return g == 0 ? 0.1 * 0.5 * e : 0.06; });
  }
  {
    TwoGroups setup;
    optim::LinearLR scheduler(setup.optimizer);  // 1/3 -> 1 over 5 epochs
    // Factors by hand: 1/3, 7/15, 9/15, 11/15, 13/15, 1, 1, ...
    const double factors[] = {1.0 / 3, 7.0 / 15, 9.0 / 15, 11.0 / 15, 13.0 / 15, 1, 1, 1};
    check_schedule(setup.optimizer, scheduler, 7, [&](int e, size_t g) { return setup.base(g) * factors[e]; });
  }
  {
    TwoGroups setup;
    optim::LinearLR scheduler(setup.optimizer, 1.0, 0.5, 4);  // decay variant
    check_schedule(setup.optimizer, scheduler, 6, [&](int e, size_t g) {
      return setup.base(g) * (1.0 - 0.5 * std::min(e, 4) / 4.0);
    });
  }
}

TEST_CASE("OneCycleLR: two-phase cosine with momentum cycling", "[optim][scheduler][onecycle]") {
  Tensor w = zeros({2}).requires_grad_();
  optim::SGD optimizer({w}, optim::SGDOptions(0.5).momentum(0.9));
  optim::OneCycleLR scheduler(optimizer, optim::OneCycleLROptions(1.0).total_steps(10));
  // initial = 1 / 25 = 0.04, min = 0.04 / 1e4; warm-up ends at step 0.3 * 10 - 1 = 2, annealing at 9.
  auto cos_anneal = [](double start, double end, double pct) { return end + (start - end) / 2 * (std::cos(kPi * pct) + 1); };
  auto& options = static_cast<optim::SGDOptions&>(optimizer.param_groups()[0].options());
  for (int k = 0; k <= 10; ++k) {
    if (k > 0) scheduler.step();
    const bool warm = k <= 2;
    const double pct = warm ? k / 2.0 : (k - 2) / 7.0;
    const double lr = warm ? cos_anneal(0.04, 1.0, pct) : cos_anneal(1.0, 4e-6, pct);
    const double momentum = warm ? cos_anneal(0.95, 0.85, pct) : cos_anneal(0.85, 0.95, pct);
    INFO("step " << k);
    CHECK(optimizer.param_groups()[0].lr() == Approx(lr).epsilon(1e-12));
    CHECK(options.momentum() == Approx(momentum).epsilon(1e-12));
  }
  // Step 10 (allowed, as in PyTorch) runs past the end of the cosine, which turns back up.
  CHECK(optimizer.param_groups()[0].lr() > 4e-6);
  CHECK_THROWS_WITH(scheduler.step(), Contains("OneCycleLR: tried to step 11 times; the specified number of total steps is 10"));
}

TEST_CASE("OneCycleLR: three-phase linear, epochs x steps_per_epoch, Adam's beta1", "[optim][scheduler][onecycle]") {
  Tensor w = zeros({2}).requires_grad_();
  optim::Adam optimizer({w}, optim::AdamOptions(0.5).betas({0.9, 0.99}));
  optim::OneCycleLR scheduler(
      optimizer, optim::OneCycleLROptions(0.8).epochs(2).steps_per_epoch(10).anneal_strategy("linear").three_phase(true).pct_start(0.25)
                     .div_factor(8).final_div_factor(100));
  CHECK(scheduler.total_steps() == 20);
  // initial 0.1, max 0.8, min 0.001; phase ends at 0.25 * 20 - 1 = 4, 2 * 5 - 2 = 8, 19.
  auto linear = [](double start, double end, double pct) { return (end - start) * pct + start; };
  auto& options = static_cast<optim::AdamOptions&>(optimizer.param_groups()[0].options());
  for (int k = 0; k <= 20; ++k) {
    if (k > 0) scheduler.step();
    double lr, beta1;
    if (k <= 4) {
      lr = linear(0.1, 0.8, k / 4.0);
      beta1 = linear(0.95, 0.85, k / 4.0);
    } else if (k <= 8) {
      lr = linear(0.8, 0.1, (k - 4) / 4.0);
      beta1 = linear(0.85, 0.95, (k - 4) / 4.0);
    } else {
      lr = linear(0.1, 0.001, (k - 8) / 11.0);
      beta1 = 0.95;
    }
    INFO("step " << k);
    CHECK(optimizer.param_groups()[0].lr() == Approx(lr).epsilon(1e-12));
    CHECK(std::get<0>(options.betas()) == Approx(beta1).epsilon(1e-12));
    CHECK(std::get<1>(options.betas()) == 0.99);
  }
  Tensor v = zeros({1}).requires_grad_();
  optim::Adagrad no_momentum({v});
  CHECK_THROWS_WITH(optim::OneCycleLR(no_momentum, optim::OneCycleLROptions(0.1).total_steps(5)),
                    Contains("OneCycleLR: the optimizer must support momentum or beta1"));
  optim::OneCycleLR without_cycling(no_momentum, optim::OneCycleLROptions(0.1).total_steps(5).cycle_momentum(false));
  CHECK(no_momentum.param_groups()[0].lr() == Approx(0.004));
  CHECK_THROWS_WITH(optim::OneCycleLR(optimizer, optim::OneCycleLROptions(0.1)),
                    Contains("OneCycleLR: you must define either total_steps or (epochs and steps_per_epoch)"));
  CHECK_THROWS_WITH(optim::OneCycleLR(optimizer, optim::OneCycleLROptions(0.1).total_steps(5).anneal_strategy("exp")),
                    Contains("anneal_strategy must be 'cos' or 'linear', got 'exp'"));
}

TEST_CASE("ReduceLROnPlateau: patience, cooldown, min_lr", "[optim][scheduler][plateau]") {
  Tensor w = zeros({1}).requires_grad_();
  optim::SGD optimizer({w}, optim::SGDOptions(1.0));
  optim::ReduceLROnPlateau scheduler(optimizer, optim::ReduceLROnPlateauOptions().factor(0.5).patience(2).cooldown(1).min_lr(0.3));
  // By hand: 10 and 9 improve; the next three 9s are bad epochs 1, 2, 3 -> 3 > patience: lr 0.5, cooldown 1;
  // epoch 6 counts as bad but the cooldown resets the count; epochs 7, 8, 9 are bad 1, 2, 3 -> lr
  // max(0.25, 0.3) = 0.3 (cooldown again); 8 improves at epoch 10; epochs 11-13 are bad 1, 2, 3, but the
  // reduction max(0.15, 0.3) = 0.3 changes nothing; epoch 14 is in the new cooldown.
  const double metrics[] = {10, 9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8};
  const double expected_lr[] = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3};
  const int expected_bad[] = {0, 0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 0, 0};
  for (int e = 0; e < 14; ++e) {
    scheduler.step(metrics[e]);
    INFO("epoch " << e + 1);
    CHECK(optimizer.param_groups()[0].lr() == expected_lr[e]);
    CHECK(scheduler.get_last_lr()[0] == expected_lr[e]);
    CHECK(scheduler.num_bad_epochs() == expected_bad[e]);
  }
  CHECK(scheduler.best() == 8);
  CHECK(scheduler.last_epoch() == 14);
}

TEST_CASE("ReduceLROnPlateau: max mode with an absolute threshold", "[optim][scheduler][plateau]") {
  Tensor w = zeros({1}).requires_grad_();
  optim::Adam optimizer({w}, optim::AdamOptions(0.1));
  optim::ReduceLROnPlateau scheduler(
      optimizer, optim::ReduceLROnPlateauOptions().mode("max").factor(0.1).patience(0).threshold(0.01).threshold_mode("abs"));
  scheduler.step(0.5);    // better than -inf
  CHECK(optimizer.param_groups()[0].lr() == 0.1);
  scheduler.step(0.505);  // +0.005 < threshold 0.01: a bad epoch, 1 > patience 0 -> 0.01
  CHECK(optimizer.param_groups()[0].lr() == Approx(0.01));
  scheduler.step(0.52);   // +0.02 beats best 0.5 by more than 0.01
  CHECK(optimizer.param_groups()[0].lr() == Approx(0.01));
  CHECK(scheduler.best() == 0.52);
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(optimizer, optim::ReduceLROnPlateauOptions().factor(1.0)),
                    Contains("ReduceLROnPlateau: factor should be < 1.0, got 1"));
  CHECK_THROWS_WITH(optim::ReduceLROnPlateau(optimizer, optim::ReduceLROnPlateauOptions().mode("up")),
                    Contains("mode 'up' is unknown"));
  // State round trip.
  const auto state = scheduler.state_dict();
  optim::ReduceLROnPlateau restored(optimizer, optim::ReduceLROnPlateauOptions().mode("max"));
  restored.load_state_dict(state);
  CHECK(restored.best() == 0.52);
  CHECK(restored.last_epoch() == 3);
  auto broken = state;
  broken.erase("best");
  CHECK_THROWS_WITH(restored.load_state_dict(broken), Contains("ReduceLROnPlateau: load_state_dict: 'best' is missing"));
}

TEST_CASE("schedulers save and load their state; a resumed schedule continues", "[optim][scheduler][state]") {
  TwoGroups first;
  optim::CosineAnnealingLR scheduler(first.optimizer, 8, 0.0);
  for (int e = 0; e < 3; ++e) scheduler.step();
  const auto scheduler_state = scheduler.state_dict();
  CHECK(scheduler_state.at("last_epoch") == 3);
  CHECK(scheduler_state.at("base_lrs.1") == Approx(0.02));
  const auto optimizer_state = first.optimizer.state_dict();

  TwoGroups second;
  second.optimizer.load_state_dict(optimizer_state);  // restores the groups' current lr
  optim::CosineAnnealingLR resumed(second.optimizer, 8, 0.0);
  resumed.load_state_dict(scheduler_state);
  for (int e = 0; e < 3; ++e) {
    scheduler.step();
    resumed.step();
    CHECK(resumed.get_last_lr() == scheduler.get_last_lr());
  }
  CHECK(resumed.last_epoch() == 6);
  auto broken = scheduler_state;
  broken["surprise"] = 1;
  CHECK_THROWS_WITH(resumed.load_state_dict(broken), Contains("CosineAnnealingLR: load_state_dict: unexpected key 'surprise'"));
  broken = scheduler_state;
  broken.erase("base_lrs.0");
  CHECK_THROWS_WITH(resumed.load_state_dict(broken), Contains("'base_lrs.0' is missing"));
}

TEST_CASE("scheduler option errors", "[optim][scheduler][errors]") {
  TwoGroups setup;
  CHECK_THROWS_WITH(optim::StepLR(setup.optimizer, 0), Contains("StepLR: step_size must be positive, got 0"));
  CHECK_THROWS_WITH(optim::LinearLR(setup.optimizer, 0.0),
                    Contains("LinearLR: start_factor expected to be greater than 0 and less or equal to 1, got 0"));
  CHECK_THROWS_WITH(optim::CosineAnnealingLR(setup.optimizer, 0), Contains("CosineAnnealingLR: T_max must be positive"));
  CHECK_THROWS_WITH(optim::LambdaLR(setup.optimizer, std::vector<optim::LambdaLR::Lambda>{[](int64_t) { return 1.0; }}),
                    Contains("LambdaLR: expected 2 lr_lambdas (one per parameter group), got 1"));
}

// ---- gradient clipping ------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm_ returns the total norm and scales by max_norm / (norm + 1e-6)", "[optim][clip]") {
  for (Dtype dtype : {kFloat64, kFloat32}) {
    Tensor a = zeros({2}, dtype).requires_grad_();
    Tensor b = zeros({1}, dtype).requires_grad_();
    Tensor c = zeros({3}, dtype).requires_grad_();  // no gradient: skipped
    a.set_grad(tensor({3.0, 4.0}, dtype));
    b.set_grad(tensor({-12.0}, dtype));
    // 2-norm of [3, 4, -12] = 13.
    const double total = optim::clip_grad_norm_({a, b, c}, 6.5);
    CHECK(total == Approx(13.0).epsilon(1e-12));
    const double coef = 6.5 / (13.0 + 1e-6);
    const double tol = dtype == kFloat64 ? 1e-12 : 1e-6;
    Tensor ga = a.grad().to(kFloat64), gb = b.grad().to(kFloat64);
    CHECK(ga.data_ptr<double>()[0] == Approx(3 * coef).epsilon(tol));
    CHECK(ga.data_ptr<double>()[1] == Approx(4 * coef).epsilon(tol));
    CHECK(gb.data_ptr<double>()[0] == Approx(-12 * coef).epsilon(tol));
    CHECK_FALSE(c.grad().defined());
    // Below max_norm nothing changes; the returned norm is the norm before clipping.
    CHECK(optim::clip_grad_norm_({a, b}, 100.0) == Approx(6.5).epsilon(1e-6));
    CHECK(b.grad().to(kFloat64).data_ptr<double>()[0] == Approx(-12 * coef).epsilon(tol));
  }
  Tensor a = zeros({2}, kFloat64).requires_grad_();
  Tensor b = zeros({1}, kFloat64).requires_grad_();
  auto reset = [&] {
    a.set_grad(tensor({3.0, 4.0}, kFloat64));
    b.set_grad(tensor({-12.0}, kFloat64));
  };
  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, std::numeric_limits<double>::infinity()) == 12.0);
  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 1.0) == 19.0);
  reset();
  CHECK(optim::clip_grad_norm_({a, b}, 100.0, 3.0) == Approx(std::cbrt(27.0 + 64.0 + 1728.0)).epsilon(1e-12));
  reset();
  optim::clip_grad_norm_({a, b}, 1.0, std::numeric_limits<double>::infinity());
  CHECK(b.grad().data_ptr<double>()[0] == Approx(-12.0 / (12.0 + 1e-6)).epsilon(1e-12));
  CHECK(optim::clip_grad_norm_(TensorList{zeros({1}).requires_grad_()}, 1.0) == 0.0);  // no gradients
  // Non-finite norms.
  a.set_grad(tensor({std::nan(""), 1.0}, kFloat64));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({a}, 1.0, 2.0, true),
                    Contains("clip_grad_norm_: the total norm of order 2 for gradients from `parameters` is non-finite"));
  CHECK(std::isnan(optim::clip_grad_norm_(a, 1.0)));
  a.set_grad(tensor({std::nan(""), 1.0}, kFloat64));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({a}, 1.0, std::numeric_limits<double>::infinity(), true),
                    Contains("non-finite"));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({a}, 1.0, -1.0), Contains("norm_type must be positive or infinity"));
}

TEST_CASE("clip_grad_value_ clamps every gradient element", "[optim][clip]") {
  Tensor a = zeros({4}).requires_grad_();
  a.set_grad(tensor({-3.0, -0.5, 0.25, 7.0}));
  optim::clip_grad_value_(a, 1.0);
  const float* g = a.grad().data_ptr<float>();
  CHECK(g[0] == -1.0f);
  CHECK(g[1] == -0.5f);
  CHECK(g[2] == 0.25f);
  CHECK(g[3] == 1.0f);
  CHECK_THROWS_WITH(optim::clip_grad_value_(a, -1.0), Contains("clip_grad_value_: clip_value must be >= 0"));
}

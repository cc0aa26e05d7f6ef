#include "xgrad/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace xg::optim {
namespace {
constexpr double kPi = 3.14159265358979323846;

std::vector<double> group_lrs(const Optimizer& optimizer) {
  std::vector<double> lrs;
  for (const auto& group : optimizer.param_groups()) lrs.push_back(group.lr());
  return lrs;
}

/// Keys a state dict may hold besides the listed ones: prefix.<g> for each group.
void check_known_keys(const std::string& name, const SchedulerStateDict& state, const std::set<std::string>& known) {
  for (const auto& entry : state)
    XG_CHECK(known.count(entry.first) != 0, "{}: load_state_dict: unexpected key '{}'", name, entry.first);
}
}  // namespace

// ---- base ---------------------------------------------------------------------------------------------
LRScheduler::LRScheduler(Optimizer& optimizer, std::string name)
    : optimizer_(optimizer), name_(std::move(name)), base_lrs_(group_lrs(optimizer)) {}

void LRScheduler::initial_step() { step(); }

void LRScheduler::step() {
  XG_CHECK(optimizer_.param_groups().size() == base_lrs_.size(),
           "{}: the optimizer has {} parameter groups but the scheduler was created for {}", name_,
           optimizer_.param_groups().size(), base_lrs_.size());
  ++last_epoch_;
  std::vector<double> lrs = get_lr();
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.param_groups()[g].set_lr(lrs[g]);
  last_lr_ = std::move(lrs);
}

double LRScheduler::read(const SchedulerStateDict& state, const std::string& key) const {
  auto it = state.find(key);
  XG_CHECK(it != state.end(), "{}: load_state_dict: '{}' is missing from the state dict", name_, key);
  return it->second;
}

SchedulerStateDict LRScheduler::state_dict() const {
  SchedulerStateDict state;
  state["last_epoch"] = static_cast<double>(last_epoch_);
  for (size_t g = 0; g < base_lrs_.size(); ++g) state[fmt::format("base_lrs.{}", g)] = base_lrs_[g];
  for (size_t g = 0; g < last_lr_.size(); ++g) state[fmt::format("last_lr.{}", g)] = last_lr_[g];
  return state;
}

void LRScheduler::load_state_dict(const SchedulerStateDict& state) {
  std::set<std::string> known{"last_epoch"};
  std::vector<double> base(base_lrs_.size()), last(base_lrs_.size());
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const std::string base_key = fmt::format("base_lrs.{}", g), last_key = fmt::format("last_lr.{}", g);
    base[g] = read(state, base_key);
    last[g] = read(state, last_key);
    known.insert(base_key);
    known.insert(last_key);
  }
  const double epoch = read(state, "last_epoch");
  check_known_keys(name_, state, known);
  last_epoch_ = static_cast<int64_t>(epoch);
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
}

// ---- StepLR, MultiStepLR, ExponentialLR ---------------------------------------------------------------
StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  XG_CHECK(step_size > 0, "StepLR: step_size must be positive, got {}", step_size);
  // PyTorch accepts any gamma; a NaN or infinite one would turn every later learning rate into NaN or inf.
  XG_CHECK(std::isfinite(gamma), "StepLR: gamma must be finite, got {}", gamma);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  const double factor = std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_));
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * factor);
  return lrs;
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  XG_CHECK(std::isfinite(gamma), "MultiStepLR: gamma must be finite, got {}", gamma);
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  // A milestone listed twice decays twice, as with PyTorch's Counter of milestones.
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin();
  const double factor = std::pow(gamma_, static_cast<double>(passed));
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * factor);
  return lrs;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  XG_CHECK(std::isfinite(gamma), "ExponentialLR: gamma must be finite, got {}", gamma);
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  const double factor = std::pow(gamma_, static_cast<double>(last_epoch_));
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * factor);
  return lrs;
}

// ---- CosineAnnealingLR, LambdaLR, LinearLR --------------------------------------------------------------
CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  XG_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got {}", T_max);
  XG_CHECK(std::isfinite(eta_min), "CosineAnnealingLR: eta_min must be finite, got {}", eta_min);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  const double cosine = std::cos(kPi * static_cast<double>(last_epoch_) / static_cast<double>(T_max_));
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(eta_min_ + (base - eta_min_) * (1 + cosine) / 2);
  return lrs;
}

LambdaLR::LambdaLR(Optimizer& optimizer, Lambda lr_lambda)
    : LambdaLR(optimizer, std::vector<Lambda>(optimizer.param_groups().size(), lr_lambda)) {}

LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas)
    : LRScheduler(optimizer, "LambdaLR"), lr_lambdas_(std::move(lr_lambdas)) {
  XG_CHECK(lr_lambdas_.size() == base_lrs_.size(), "LambdaLR: expected {} lr_lambdas (one per parameter group), got {}",
           base_lrs_.size(), lr_lambdas_.size());
  for (size_t g = 0; g < lr_lambdas_.size(); ++g)
    XG_CHECK(static_cast<bool>(lr_lambdas_[g]), "LambdaLR: lr_lambda {} is empty", g);
  initial_step();
}

std::vector<double> LambdaLR::get_lr() {
  std::vector<double> lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) lrs.push_back(base_lrs_[g] * lr_lambdas_[g](last_epoch_));
  return lrs;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer, "LinearLR"), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  XG_CHECK(start_factor > 0 && start_factor <= 1,
           "LinearLR: start_factor expected to be greater than 0 and less or equal to 1, got {}", start_factor);
  XG_CHECK(end_factor >= 0 && end_factor <= 1, "LinearLR: end_factor expected to be between 0 and 1, got {}", end_factor);
  XG_CHECK(total_iters > 0, "LinearLR: total_iters must be positive, got {}", total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  const double progress = static_cast<double>(std::min(last_epoch_, total_iters_)) / static_cast<double>(total_iters_);
  const double factor = start_factor_ + (end_factor_ - start_factor_) * progress;
  std::vector<double> lrs;
  for (double base : base_lrs_) lrs.push_back(base * factor);
  return lrs;
}

// ---- OneCycleLR ---------------------------------------------------------------------------------------
OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options)
    : LRScheduler(optimizer, "OneCycleLR"), options_(options) {
  const size_t groups = base_lrs_.size();
  if (options.total_steps()) {
    total_steps_ = *options.total_steps();
    XG_CHECK(total_steps_ > 0, "OneCycleLR: expected a positive total_steps, got {}", total_steps_);
  } else {
    XG_CHECK(options.epochs() && options.steps_per_epoch(),
             "OneCycleLR: you must define either total_steps or (epochs and steps_per_epoch)");
    XG_CHECK(*options.epochs() > 0, "OneCycleLR: expected a positive epochs, got {}", *options.epochs());
    XG_CHECK(*options.steps_per_epoch() > 0, "OneCycleLR: expected a positive steps_per_epoch, got {}",
             *options.steps_per_epoch());
    total_steps_ = *options.epochs() * *options.steps_per_epoch();
  }
  XG_CHECK(options.pct_start() >= 0 && options.pct_start() <= 1, "OneCycleLR: expected a pct_start in [0, 1], got {}",
           options.pct_start());
  XG_CHECK(options.anneal_strategy() == "cos" || options.anneal_strategy() == "linear",
           "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got '{}'", options.anneal_strategy());
  XG_CHECK(options.div_factor() > 0 && options.final_div_factor() > 0,
           "OneCycleLR: div_factor and final_div_factor must be positive, got {} and {}", options.div_factor(),
           options.final_div_factor());
  const auto& max_lr = options.max_lr();
  XG_CHECK(max_lr.size() == 1 || max_lr.size() == groups,
           "OneCycleLR: expected one max_lr or one per parameter group ({}), got {}", groups, max_lr.size());

  const double total = static_cast<double>(total_steps_), pct = options.pct_start();
  if (options.three_phase()) {
    phases_ = {{pct * total - 1, 0, 1, 1, 0}, {2 * pct * total - 2, 1, 0, 0, 1}, {total - 1, 0, 2, 1, 1}};
  } else {
    phases_ = {{pct * total - 1, 0, 1, 1, 0}, {total - 1, 1, 2, 0, 1}};
  }
  for (size_t g = 0; g < groups; ++g) {
    const double peak = max_lr.size() == 1 ? max_lr[0] : max_lr[g];
    const double initial = peak / options.div_factor();
    group_lrs_.push_back({initial, peak, initial / options.final_div_factor()});
    base_lrs_[g] = initial;
    if (options.cycle_momentum()) {
      XG_CHECK(optimizer.param_groups()[g].options().get_momentum().has_value(),
               "OneCycleLR: the optimizer must support momentum or beta1 with cycle_momentum enabled");
      group_momentums_.push_back({options.base_momentum(), options.max_momentum()});
      optimizer.param_groups()[g].options().set_momentum(options.max_momentum());
    }
  }
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy() == "cos") return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1);
  return (end - start) * pct + start;
}

std::vector<double> OneCycleLR::get_lr() {
  const int64_t step_num = last_epoch_;
  XG_CHECK(step_num <= total_steps_, "OneCycleLR: tried to step {} times; the specified number of total steps is {}",
           step_num, total_steps_);
  std::vector<double> lrs;
  for (size_t g = 0; g < group_lrs_.size(); ++g) {
    double start_step = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& phase = phases_[i];
      if (static_cast<double>(step_num) <= phase.end_step || i + 1 == phases_.size()) {
        const double pct = (static_cast<double>(step_num) - start_step) / (phase.end_step - start_step);
        lrs.push_back(anneal(group_lrs_[g][phase.start_lr], group_lrs_[g][phase.end_lr], pct));
        if (options_.cycle_momentum()) {
          const auto& momentum = group_momentums_[g];
          optimizer_.param_groups()[g].options().set_momentum(
              anneal(momentum[phase.start_momentum], momentum[phase.end_momentum], pct));
        }
        break;
      }
      start_step = phase.end_step;
    }
  }
  return lrs;
}

// ---- ReduceLROnPlateau ----------------------------------------------------------------------------------
ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
  XG_CHECK(options_.factor() < 1.0, "ReduceLROnPlateau: factor should be < 1.0, got {}", options_.factor());
  XG_CHECK(options_.factor() >= 0, "ReduceLROnPlateau: factor should be >= 0, got {}", options_.factor());
  XG_CHECK(options_.mode() == "min" || options_.mode() == "max", "ReduceLROnPlateau: mode '{}' is unknown (min or max)",
           options_.mode());
  XG_CHECK(options_.threshold_mode() == "rel" || options_.threshold_mode() == "abs",
           "ReduceLROnPlateau: threshold_mode '{}' is unknown (rel or abs)", options_.threshold_mode());
  XG_CHECK(options_.patience() >= 0, "ReduceLROnPlateau: patience should be >= 0, got {}", options_.patience());
  XG_CHECK(options_.cooldown() >= 0, "ReduceLROnPlateau: cooldown should be >= 0, got {}", options_.cooldown());
  const size_t groups = optimizer.param_groups().size();
  if (options_.min_lrs().empty()) {
    min_lrs_.assign(groups, options_.min_lr());
  } else {
    XG_CHECK(options_.min_lrs().size() == groups, "ReduceLROnPlateau: expected {} min_lrs (one per group), got {}",
             groups, options_.min_lrs().size());
    min_lrs_ = options_.min_lrs();
  }
  best_ = options_.mode() == "min" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  last_lr_ = group_lrs(optimizer);
}

bool ReduceLROnPlateau::is_better(double metric) const {
  const double threshold = options_.threshold();
  const bool relative = options_.threshold_mode() == "rel";
  if (options_.mode() == "min") return relative ? metric < best_ * (1 - threshold) : metric < best_ - threshold;
  return relative ? metric > best_ * (threshold + 1) : metric > best_ + threshold;
}

void ReduceLROnPlateau::step(double metric) {
  XG_CHECK(optimizer_.param_groups().size() == min_lrs_.size(),
           "ReduceLROnPlateau: the optimizer has {} parameter groups but the scheduler was created for {}",
           optimizer_.param_groups().size(), min_lrs_.size());
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (in_cooldown()) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs during cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience()) {
    for (size_t g = 0; g < min_lrs_.size(); ++g) {
      auto& group = optimizer_.param_groups()[g];
      const double old_lr = group.lr();
      const double new_lr = std::max(old_lr * options_.factor(), min_lrs_[g]);
      if (old_lr - new_lr > options_.eps()) group.set_lr(new_lr);
    }
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  last_lr_ = group_lrs(optimizer_);
}

SchedulerStateDict ReduceLROnPlateau::state_dict() const {
  SchedulerStateDict state{{"last_epoch", static_cast<double>(last_epoch_)},
                           {"best", best_},
                           {"num_bad_epochs", static_cast<double>(num_bad_epochs_)},
                           {"cooldown_counter", static_cast<double>(cooldown_counter_)}};
  for (size_t g = 0; g < last_lr_.size(); ++g) state[fmt::format("last_lr.{}", g)] = last_lr_[g];
  return state;
}

void ReduceLROnPlateau::load_state_dict(const SchedulerStateDict& state) {
  auto read = [&](const std::string& key) {
    auto it = state.find(key);
    XG_CHECK(it != state.end(), "ReduceLROnPlateau: load_state_dict: '{}' is missing from the state dict", key);
    return it->second;
  };
  std::set<std::string> known{"last_epoch", "best", "num_bad_epochs", "cooldown_counter"};
  std::vector<double> last(min_lrs_.size());
  for (size_t g = 0; g < last.size(); ++g) {
    const std::string key = fmt::format("last_lr.{}", g);
    last[g] = read(key);
    known.insert(key);
  }
  const double epoch = read("last_epoch"), best = read("best"), bad = read("num_bad_epochs");
  const double cooldown = read("cooldown_counter");
  check_known_keys("ReduceLROnPlateau", state, known);
  last_epoch_ = static_cast<int64_t>(epoch);
  best_ = best;
  num_bad_epochs_ = static_cast<int64_t>(bad);
  cooldown_counter_ = static_cast<int64_t>(cooldown);
  last_lr_ = std::move(last);
}

}  // namespace xg::optim

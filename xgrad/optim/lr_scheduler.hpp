#pragma once
/// Learning-rate schedules (torch.optim.lr_scheduler): StepLR, MultiStepLR, ExponentialLR,
/// CosineAnnealingLR, LambdaLR, LinearLR, OneCycleLR and ReduceLROnPlateau.
///
/// As in PyTorch, constructing a scheduler records each group's current lr as its base lr and performs the
/// initial step to epoch 0; call step() once per epoch (OneCycleLR: once per batch) after optimizer.step().
/// Rates come from each schedule's closed form in the base lrs and the epoch count, so they never drift; a
/// scheduler therefore overrides rates set by hand or by another (non-plateau) scheduler.
#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// A scheduler's state: "last_epoch", "base_lrs.<g>", "last_lr.<g>" and schedule-specific counters.
using SchedulerStateDict = std::map<std::string, double>;

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;
  /// Advances one epoch and writes the new rates into the optimizer's groups.
  void step();
  /// The rates the last step set, one per parameter group.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  /// The epoch count (0 right after construction).
  int64_t last_epoch() const { return last_epoch_; }
  /// The base rates (each group's lr at construction).
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  virtual SchedulerStateDict state_dict() const;
  /// Restores the epoch count and rates (the optimizer's own state dict restores the groups' lr).
  virtual void load_state_dict(const SchedulerStateDict& state);

 protected:
  LRScheduler(Optimizer& optimizer, std::string name);
  /// The initial step to epoch 0; every derived constructor calls it last.
  void initial_step();
  /// The rates at last_epoch_, one per group.
  virtual std::vector<double> get_lr() = 0;
  /// Reads a required entry, with an error naming the scheduler and key.
  double read(const SchedulerStateDict& state, const std::string& key) const;

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  std::vector<double> last_lr_;
};

/// lr = base_lr * gamma^(epoch / step_size) (integer division).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = base_lr * gamma^(number of milestones <= epoch).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

/// lr = base_lr * gamma^epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  std::vector<double> get_lr() override;

 private:
  double gamma_;
};

/// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (SGDR without restarts).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0);

 protected:
  std::vector<double> get_lr() override;

 private:
  int64_t T_max_;
  double eta_min_;
};

/// lr = base_lr * lr_lambda(epoch); one function for every group or one per group.
class LambdaLR : public LRScheduler {
 public:
  using Lambda = std::function<double(int64_t epoch)>;
  LambdaLR(Optimizer& optimizer, Lambda lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas);

 protected:
  std::vector<double> get_lr() override;

 private:
  std::vector<Lambda> lr_lambdas_;
};

/// Linear warm-up: lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) /
/// total_iters).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);

 protected:
  std::vector<double> get_lr() override;

 private:
  double start_factor_, end_factor_;
  int64_t total_iters_;
};

/// OneCycleLR's options (PyTorch's defaults): total_steps, or epochs and steps_per_epoch, must be given.
struct OneCycleLROptions {
  using optional_int_t = std::optional<int64_t>;
  /// One peak rate for every group.
  OneCycleLROptions(double max_lr) : max_lr_({max_lr}) {}  // NOLINT: implicit
  /// One peak rate per group.
  OneCycleLROptions(std::vector<double> max_lr) : max_lr_(std::move(max_lr)) {}  // NOLINT: implicit
  XG_OPTIM_ARG(std::vector<double>, max_lr);
  XG_OPTIM_ARG(optional_int_t, total_steps) = std::nullopt;
  XG_OPTIM_ARG(optional_int_t, epochs) = std::nullopt;
  XG_OPTIM_ARG(optional_int_t, steps_per_epoch) = std::nullopt;
  XG_OPTIM_ARG(double, pct_start) = 0.3;
  /// "cos" or "linear".
  XG_OPTIM_ARG(std::string, anneal_strategy) = "cos";
  /// Cycles momentum (SGD, RMSprop) or betas[0] (Adam, AdamW) inversely to the rate.
  XG_OPTIM_ARG(bool, cycle_momentum) = true;
  XG_OPTIM_ARG(double, base_momentum) = 0.85;
  XG_OPTIM_ARG(double, max_momentum) = 0.95;
  XG_OPTIM_ARG(double, div_factor) = 25;
  XG_OPTIM_ARG(double, final_div_factor) = 1e4;
  XG_OPTIM_ARG(bool, three_phase) = false;
};

/// The 1cycle policy: from max_lr / div_factor up to max_lr over pct_start of the steps, then down to
/// max_lr / div_factor / final_div_factor (three_phase: back to the initial rate first, then down).
/// Step once per batch; stepping more than total_steps times is an error.
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options);
  int64_t total_steps() const { return total_steps_; }

 protected:
  std::vector<double> get_lr() override;

 private:
  struct Phase {
    double end_step;
    int start_lr, end_lr;  // 0 = initial, 1 = max, 2 = min
    int start_momentum, end_momentum;  // 0 = base, 1 = max
  };
  double anneal(double start, double end, double pct) const;
  OneCycleLROptions options_;
  int64_t total_steps_ = 0;
  std::vector<Phase> phases_;
  std::vector<std::array<double, 3>> group_lrs_;       // initial, max, min per group
  std::vector<std::array<double, 2>> group_momentums_;  // base, max per group
};

/// ReduceLROnPlateau's options (PyTorch's defaults).
struct ReduceLROnPlateauOptions {
  /// "min": the metric should decrease (a loss); "max": increase (an accuracy).
  XG_OPTIM_ARG(std::string, mode) = "min";
  /// new_lr = lr * factor (< 1).
  XG_OPTIM_ARG(double, factor) = 0.1;
  /// Epochs without improvement tolerated before reducing.
  XG_OPTIM_ARG(int64_t, patience) = 10;
  /// The margin an improvement must beat (relative or absolute, per threshold_mode).
  XG_OPTIM_ARG(double, threshold) = 1e-4;
  /// "rel" or "abs".
  XG_OPTIM_ARG(std::string, threshold_mode) = "rel";
  /// Epochs to wait after a reduction before counting bad epochs again.
  XG_OPTIM_ARG(int64_t, cooldown) = 0;
  /// Lower bound of every group's lr.
  XG_OPTIM_ARG(double, min_lr) = 0;
  /// Per-group lower bounds (overrides min_lr when not empty).
  XG_OPTIM_ARG(std::vector<double>, min_lrs) = {};
  /// Reductions smaller than eps are skipped.
  XG_OPTIM_ARG(double, eps) = 1e-8;
};

/// Holds the rate until the metric stops improving for `patience` epochs, then multiplies it by `factor`.
class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  /// Reports the epoch's metric (validation loss or accuracy); may reduce the groups' rates.
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  /// The best metric so far (+inf / -inf before the first step).
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }
  /// "last_epoch", "best", "num_bad_epochs", "cooldown_counter", "last_lr.<g>".
  SchedulerStateDict state_dict() const;
  void load_state_dict(const SchedulerStateDict& state);

 private:
  bool is_better(double metric) const;
  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace xg::optim

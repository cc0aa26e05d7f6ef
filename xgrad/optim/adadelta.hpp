#pragma once
/// Adadelta with weight decay and maximize (torch.optim.Adadelta).
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: AdadeltaOptions(1.0).rho(0.9).eps(1e-6).weight_decay(0).
struct AdadeltaOptions : public OptimizerCloneableOptions<AdadeltaOptions> {
  AdadeltaOptions(double lr = 1.0) : lr_(lr) {}  // NOLINT: implicit, like the other options
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(double, rho) = 0.9;
  XG_OPTIM_ARG(double, eps) = 1e-6;
  XG_OPTIM_ARG(double, weight_decay) = 0;
  XG_OPTIM_ARG(bool, maximize) = false;

 public:
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("rho", rho_);
    v("eps", eps_);
    v("weight_decay", weight_decay_);
    v("maximize", maximize_);
  }
};

/// Per-parameter state: step count, running mean of g^2 and running mean of squared updates.
struct AdadeltaParamState : public OptimizerParamState {
  int64_t step = 0;
  Tensor square_avg, acc_delta;
  void fields(StateFields& f) override {
    f.counter("step", step);
    f.tensor("square_avg", square_avg);
    f.tensor("acc_delta", acc_delta);
  }
};

class Adadelta : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit Adadelta(TensorList params, AdadeltaOptions defaults = {});
  /// Groups with their own options.
  explicit Adadelta(std::vector<OptimizerParamGroup> param_groups, AdadeltaOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<AdadeltaParamState>();
  }
};

}  // namespace xg::optim

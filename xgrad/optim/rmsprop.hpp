#pragma once
/// RMSprop with weight decay, momentum, the centered variant and maximize (torch.optim.RMSprop).
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: RMSpropOptions(1e-2).alpha(0.99).eps(1e-8).weight_decay(0).momentum(0).centered(false).
struct RMSpropOptions : public OptimizerCloneableOptions<RMSpropOptions> {
  RMSpropOptions(double lr = 1e-2) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::RMSpropOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(double, alpha) = 0.99;
  XG_OPTIM_ARG(double, eps) = 1e-8;
  XG_OPTIM_ARG(double, weight_decay) = 0;
  XG_OPTIM_ARG(double, momentum) = 0;
  XG_OPTIM_ARG(bool, centered) = false;
  XG_OPTIM_ARG(bool, maximize) = false;

 public:
  std::optional<double> get_momentum() const override { return momentum_; }
  void set_momentum(double momentum) override { momentum_ = momentum; }
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("alpha", alpha_);
    v("eps", eps_);
    v("weight_decay", weight_decay_);
    v("momentum", momentum_);
    v("centered", centered_);
    v("maximize", maximize_);
  }
};

/// Per-parameter state: step count, running mean of g^2, momentum buffer (momentum > 0) and running mean
/// of g (centered).
struct RMSpropParamState : public OptimizerParamState {
  int64_t step = 0;
  Tensor square_avg, momentum_buffer, grad_avg;
  void fields(StateFields& f) override {
    f.counter("step", step);
    f.tensor("square_avg", square_avg);
    f.tensor("momentum_buffer", momentum_buffer, /*required=*/false);
    f.tensor("grad_avg", grad_avg, /*required=*/false);
  }
};

class RMSprop : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit RMSprop(TensorList params, RMSpropOptions defaults = {});
  /// Groups with their own options.
  explicit RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<RMSpropParamState>();
  }
};

}  // namespace xg::optim

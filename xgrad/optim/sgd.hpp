#pragma once
/// Stochastic gradient descent with momentum, dampening, Nesterov momentum, weight decay and maximize
/// (torch.optim.SGD / torch::optim::SGD).
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: SGDOptions(0.01).momentum(0.9).nesterov(true).
struct SGDOptions : public OptimizerCloneableOptions<SGDOptions> {
  SGDOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::SGDOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(double, momentum) = 0;
  XG_OPTIM_ARG(double, dampening) = 0;
  XG_OPTIM_ARG(double, weight_decay) = 0;
  XG_OPTIM_ARG(bool, nesterov) = false;
  XG_OPTIM_ARG(bool, maximize) = false;

 public:
  std::optional<double> get_momentum() const override { return momentum_; }
  void set_momentum(double momentum) override { momentum_ = momentum; }
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("momentum", momentum_);
    v("dampening", dampening_);
    v("weight_decay", weight_decay_);
    v("nesterov", nesterov_);
    v("maximize", maximize_);
  }
};

/// Per-parameter state: the momentum buffer (created at the first step with momentum != 0) and the step count.
struct SGDParamState : public OptimizerParamState {
  int64_t step = 0;
  Tensor momentum_buffer;
  void fields(StateFields& f) override {
    f.counter("step", step);
    f.tensor("momentum_buffer", momentum_buffer, /*required=*/false);
  }
};

class SGD : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit SGD(TensorList params, SGDOptions defaults = {});
  /// Groups with their own options (e.g. no weight decay on biases).
  explicit SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<SGDParamState>();
  }
};

}  // namespace xg::optim

#pragma once
/// Adagrad with learning-rate decay, weight decay, an initial accumulator value and maximize
/// (torch.optim.Adagrad / torch::optim::Adagrad).
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: AdagradOptions(1e-2).lr_decay(0).weight_decay(0).initial_accumulator_value(0).eps(1e-10).
struct AdagradOptions : public OptimizerCloneableOptions<AdagradOptions> {
  AdagradOptions(double lr = 1e-2) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::AdagradOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(double, lr_decay) = 0;
  XG_OPTIM_ARG(double, weight_decay) = 0;
  XG_OPTIM_ARG(double, initial_accumulator_value) = 0;
  XG_OPTIM_ARG(double, eps) = 1e-10;
  XG_OPTIM_ARG(bool, maximize) = false;

 public:
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("lr_decay", lr_decay_);
    v("weight_decay", weight_decay_);
    v("initial_accumulator_value", initial_accumulator_value_);
    v("eps", eps_);
    v("maximize", maximize_);
  }
};

/// Per-parameter state: step count and the running sum of squared gradients.
struct AdagradParamState : public OptimizerParamState {
  int64_t step = 0;
  Tensor sum;
  void fields(StateFields& f) override {
    f.counter("step", step);
    f.tensor("sum", sum);
  }
};

class Adagrad : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit Adagrad(TensorList params, AdagradOptions defaults = {});
  /// Groups with their own options.
  explicit Adagrad(std::vector<OptimizerParamGroup> param_groups, AdagradOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<AdagradParamState>();
  }
};

}  // namespace xg::optim

#pragma once
/// Adam with L2 weight decay, AMSGrad and maximize (torch.optim.Adam / torch::optim::Adam).
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: AdamOptions(1e-3).betas({0.9, 0.999}).eps(1e-8).weight_decay(0).amsgrad(false).
struct AdamOptions : public OptimizerCloneableOptions<AdamOptions> {
  using betas_t = std::tuple<double, double>;
  AdamOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::AdamOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  XG_OPTIM_ARG(double, eps) = 1e-8;
  XG_OPTIM_ARG(double, weight_decay) = 0;
  XG_OPTIM_ARG(bool, amsgrad) = false;
  XG_OPTIM_ARG(bool, maximize) = false;

 public:
  std::optional<double> get_momentum() const override { return std::get<0>(betas_); }
  void set_momentum(double momentum) override { std::get<0>(betas_) = momentum; }
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("betas", betas_);
    v("eps", eps_);
    v("weight_decay", weight_decay_);
    v("amsgrad", amsgrad_);
    v("maximize", maximize_);
  }
};

/// Per-parameter state: its own step count (for bias correction), the first and second moment estimates,
/// and the running maximum of the second moment (amsgrad only).
struct AdamParamState : public OptimizerParamState {
  int64_t step = 0;
  Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
  void fields(StateFields& f) override {
    f.counter("step", step);
    f.tensor("exp_avg", exp_avg);
    f.tensor("exp_avg_sq", exp_avg_sq);
    f.tensor("max_exp_avg_sq", max_exp_avg_sq, /*required=*/false);
  }
};

class Adam : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit Adam(TensorList params, AdamOptions defaults = {});
  /// Groups with their own options (e.g. no weight decay on biases).
  explicit Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<AdamParamState>();
  }
};

}  // namespace xg::optim

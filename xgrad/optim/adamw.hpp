#pragma once
/// AdamW: Adam with decoupled weight decay (torch.optim.AdamW / torch::optim::AdamW).
#include "xgrad/optim/adam.hpp"

namespace xg::optim {

/// Defaults as PyTorch: AdamWOptions(1e-3).betas({0.9, 0.999}).eps(1e-8).weight_decay(1e-2).amsgrad(false).
struct AdamWOptions : public OptimizerCloneableOptions<AdamWOptions> {
  using betas_t = std::tuple<double, double>;
  AdamWOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::AdamWOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  XG_OPTIM_ARG(double, eps) = 1e-8;
  XG_OPTIM_ARG(double, weight_decay) = 1e-2;
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

/// Same fields as Adam's: step, exp_avg, exp_avg_sq, max_exp_avg_sq.
struct AdamWParamState : public AdamParamState {};

class AdamW : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit AdamW(TensorList params, AdamWOptions defaults = {});
  /// Groups with their own options (e.g. no weight decay on biases or norms).
  explicit AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults = {});
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor&) const override {
    return std::make_unique<AdamWParamState>();
  }
};

}  // namespace xg::optim

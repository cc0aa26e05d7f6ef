#pragma once
/// L-BFGS with an optional strong-Wolfe line search (torch.optim.LBFGS / torch::optim::LBFGS), driven by a
/// closure that re-evaluates the loss and its gradient. One parameter group; the two-loop recursion and
/// the line search run in float64 over the flattened parameters whatever their dtype.
#include <deque>

#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// Defaults as PyTorch: LBFGSOptions(1).max_iter(20).max_eval(max_iter * 5 / 4).tolerance_grad(1e-7)
/// .tolerance_change(1e-9).history_size(100).line_search_fn(none); line_search_fn may be "strong_wolfe".
struct LBFGSOptions : public OptimizerCloneableOptions<LBFGSOptions> {
  using optional_int_t = std::optional<int64_t>;
  using optional_string_t = std::optional<std::string>;
  LBFGSOptions(double lr = 1) : lr_(lr) {}  // NOLINT: implicit, as torch::optim::LBFGSOptions
  XG_OPTIM_ARG(double, lr);
  XG_OPTIM_ARG(int64_t, max_iter) = 20;
  /// Unset means max_iter * 5 / 4 (read at each step, so it follows later changes of max_iter).
  XG_OPTIM_ARG(optional_int_t, max_eval) = std::nullopt;
  XG_OPTIM_ARG(double, tolerance_grad) = 1e-7;
  XG_OPTIM_ARG(double, tolerance_change) = 1e-9;
  XG_OPTIM_ARG(int64_t, history_size) = 100;
  XG_OPTIM_ARG(optional_string_t, line_search_fn) = std::nullopt;

 public:
  template <class Visitor>
  void visit_options(Visitor& v) {
    v("lr", lr_);
    v("max_iter", max_iter_);
    v("max_eval", max_eval_);
    v("tolerance_grad", tolerance_grad_);
    v("tolerance_change", tolerance_change_);
    v("history_size", history_size_);
    v("line_search_fn", line_search_fn_);
  }
};

/// The optimizer's state (kept under its first parameter, as PyTorch): evaluation and iteration counts,
/// the last direction d and step t, the curvature pairs (y, s) with rho = 1 / y.s, the initial Hessian
/// scale, and the previous gradient and loss. Vectors are flat over all parameters ([numel]).
struct LBFGSParamState : public OptimizerParamState {
  int64_t func_evals = 0, n_iter = 0;
  double t = 0, H_diag = 1, prev_loss = 0;
  std::vector<double> d, prev_flat_grad;
  std::deque<std::vector<double>> old_dirs, old_stps;
  std::deque<double> ro;
  /// Total number of parameter elements (not saved; fixes the shapes checked when loading).
  int64_t numel = 0;
  void fields(StateFields& f) override;
};

class LBFGS : public Optimizer {
 public:
  /// params: the tensors to update in place (e.g. model->parameters()).
  explicit LBFGS(TensorList params, LBFGSOptions defaults = {});
  /// Exactly one group (L-BFGS does not support per-parameter options).
  explicit LBFGS(std::vector<OptimizerParamGroup> param_groups, LBFGSOptions defaults = {});
  /// Up to max_iter iterations; the closure (required) must zero the gradients, compute the loss, call
  /// backward and return the loss. Returns the loss of the first evaluation.
  Tensor step(LossClosure closure = nullptr) override;

 protected:
  void check_options(const OptimizerOptions& options) const override;
  std::unique_ptr<OptimizerParamState> make_param_state(const Tensor& param) const override;

 private:
  int64_t total_numel() const;
  std::vector<double> gather_flat_grad() const;
  std::vector<double> gather_params() const;
  void set_params(const std::vector<double>& values);
  /// params += step * direction.
  void add_to_params(double step, const std::vector<double>& direction);
};

}  // namespace xg::optim

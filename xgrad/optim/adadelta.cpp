#include "xgrad/optim/adadelta.hpp"

#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg::optim {

Adadelta::Adadelta(TensorList params, AdadeltaOptions defaults)
    : Adadelta(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adadelta::Adadelta(std::vector<OptimizerParamGroup> param_groups, AdadeltaOptions defaults)
    : Optimizer(std::make_unique<AdadeltaOptions>(defaults), "Adadelta") {
  add_param_groups(param_groups);
}

void Adadelta::check_options(const OptimizerOptions& options) const {
  const auto* o = dynamic_cast<const AdadeltaOptions*>(&options);
  XG_CHECK(o != nullptr, "Adadelta: the options of a parameter group are not AdadeltaOptions");
  XG_CHECK(o->lr() >= 0, "Adadelta: invalid learning rate: {} (expected >= 0)", o->lr());
  XG_CHECK(o->rho() >= 0 && o->rho() <= 1, "Adadelta: invalid rho value: {} (expected in [0, 1])", o->rho());
  XG_CHECK(o->eps() >= 0, "Adadelta: invalid epsilon value: {} (expected >= 0)", o->eps());
  XG_CHECK(o->weight_decay() >= 0, "Adadelta: invalid weight_decay value: {} (expected >= 0)", o->weight_decay());
}

// PyTorch's documented update, per element:
//   g <- -g if maximize;  g <- g + weight_decay * p
//   v <- rho * v + (1 - rho) * g^2
//   delta <- sqrt(u + eps) / sqrt(v + eps) * g
//   u <- rho * u + (1 - rho) * delta^2
//   p <- p - lr * delta
Tensor Adadelta::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdadeltaOptions&>(group.options());
    for (const Tensor& param : group.params()) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      check_grad(param, grad);
      auto& state = param_state<AdadeltaParamState>(param);
      ++state.step;
      detail::ensure_state_tensor(state.square_avg, param);
      detail::ensure_state_tensor(state.acc_delta, param);
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* p = param.contiguous_data<T>();
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        T* square_avg = state.square_avg.contiguous_data<T>();
        T* acc_delta = state.acc_delta.contiguous_data<T>();
        const T lr = static_cast<T>(options.lr()), rho = static_cast<T>(options.rho());
        const T one_minus_rho = static_cast<T>(1.0 - options.rho()), eps = static_cast<T>(options.eps());
        const T weight_decay = static_cast<T>(options.weight_decay());
        const bool maximize = options.maximize(), decay = weight_decay != 0;
        // Elementwise: any split over threads gives the same bits.
        parallel_for(0, param.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            T d = maximize ? -g[i] : g[i];
            if (decay) d = d + weight_decay * p[i];
            square_avg[i] = square_avg[i] * rho + one_minus_rho * d * d;
            const T std_dev = std::sqrt(square_avg[i] + eps);
            const T delta = std::sqrt(acc_delta[i] + eps) / std_dev * d;
            acc_delta[i] = acc_delta[i] * rho + one_minus_rho * delta * delta;
            p[i] = p[i] - lr * delta;
          }
        });
      });
      detail::bump_version(param);
    }
  }
  return loss;
}

}  // namespace xg::optim

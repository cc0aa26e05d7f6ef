#include "xgrad/optim/adagrad.hpp"

#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg::optim {

Adagrad::Adagrad(TensorList params, AdagradOptions defaults)
    : Adagrad(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adagrad::Adagrad(std::vector<OptimizerParamGroup> param_groups, AdagradOptions defaults)
    : Optimizer(std::make_unique<AdagradOptions>(defaults), "Adagrad") {
  add_param_groups(param_groups);
}

void Adagrad::check_options(const OptimizerOptions& options) const {
  const auto* o = dynamic_cast<const AdagradOptions*>(&options);
  XG_CHECK(o != nullptr, "Adagrad: the options of a parameter group are not AdagradOptions");
  XG_CHECK(o->lr() >= 0, "Adagrad: invalid learning rate: {} (expected >= 0)", o->lr());
  XG_CHECK(o->lr_decay() >= 0, "Adagrad: invalid lr_decay value: {} (expected >= 0)", o->lr_decay());
  XG_CHECK(o->weight_decay() >= 0, "Adagrad: invalid weight_decay value: {} (expected >= 0)", o->weight_decay());
  XG_CHECK(o->initial_accumulator_value() >= 0,
           "Adagrad: invalid initial_accumulator_value value: {} (expected >= 0)", o->initial_accumulator_value());
  XG_CHECK(o->eps() >= 0, "Adagrad: invalid epsilon value: {} (expected >= 0)", o->eps());
}

// PyTorch's documented update, per element, t = this parameter's step count:
//   g <- -g if maximize;  g <- g + weight_decay * p
//   clr <- lr / (1 + (t - 1) * lr_decay)
//   sum <- sum + g^2   (sum starts at initial_accumulator_value)
//   p <- p - clr * g / (sqrt(sum) + eps)
Tensor Adagrad::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const AdagradOptions&>(group.options());
    for (const Tensor& param : group.params()) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      check_grad(param, grad);
      auto& state = param_state<AdagradParamState>(param);
      detail::ensure_state_tensor(state.sum, param, options.initial_accumulator_value());
      ++state.step;
      const double clr = options.lr() / (1.0 + static_cast<double>(state.step - 1) * options.lr_decay());
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* p = param.contiguous_data<T>();
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        T* sum = state.sum.contiguous_data<T>();
        const T step_size = static_cast<T>(clr), eps = static_cast<T>(options.eps());
        const T weight_decay = static_cast<T>(options.weight_decay());
        const bool maximize = options.maximize(), decay = weight_decay != 0;
        // Elementwise: any split over threads gives the same bits.
        parallel_for(0, param.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            T d = maximize ? -g[i] : g[i];
            if (decay) d = d + weight_decay * p[i];
            sum[i] = sum[i] + d * d;
            p[i] = p[i] - step_size * d / (std::sqrt(sum[i]) + eps);
          }
        });
      });
      detail::bump_version(param);
    }
  }
  return loss;
}

}  // namespace xg::optim

#include "xgrad/optim/sgd.hpp"

#include "xgrad/autograd/grad_mode.hpp"

namespace xg::optim {

SGD::SGD(TensorList params, SGDOptions defaults)
    : SGD(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

SGD::SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults)
    : Optimizer(std::make_unique<SGDOptions>(defaults), "SGD") {
  add_param_groups(param_groups);
}

void SGD::check_options(const OptimizerOptions& options) const {
  const auto* o = dynamic_cast<const SGDOptions*>(&options);
  XG_CHECK(o != nullptr, "SGD: the options of a parameter group are not SGDOptions");
  XG_CHECK(o->lr() >= 0, "SGD: invalid learning rate: {} (expected >= 0)", o->lr());
  XG_CHECK(o->momentum() >= 0, "SGD: invalid momentum value: {} (expected >= 0)", o->momentum());
  XG_CHECK(o->weight_decay() >= 0, "SGD: invalid weight_decay value: {} (expected >= 0)", o->weight_decay());
  XG_CHECK(!o->nesterov() || (o->momentum() > 0 && o->dampening() == 0),
           "SGD: nesterov momentum requires a momentum > 0 and zero dampening (got momentum {}, dampening {})",
           o->momentum(), o->dampening());
}

// PyTorch's update, per element (g = gradient):
//   g <- -g if maximize;  g <- g + weight_decay * p
//   if momentum != 0:  b <- g at the first step, else b <- momentum * b + (1 - dampening) * g
//                      g <- g + momentum * b if nesterov, else g <- b
//   p <- p - lr * g
// (maximize negates the gradient first, as torch.optim.SGD's code does since 1.12.)
Tensor SGD::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const SGDOptions&>(group.options());
    const bool use_momentum = options.momentum() != 0;
    for (const Tensor& param : group.params()) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      check_grad(param, grad);
      auto& state = param_state<SGDParamState>(param);
      ++state.step;
      bool first = false;
      if (use_momentum) {
        first = !state.momentum_buffer.defined();
        detail::ensure_state_tensor(state.momentum_buffer, param);
      }
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* p = param.data_ptr<T>();
        const T* g = grad.data_ptr<T>();
        T* buf = use_momentum ? state.momentum_buffer.data_ptr<T>() : nullptr;
        const T lr = static_cast<T>(options.lr()), weight_decay = static_cast<T>(options.weight_decay());
        const T momentum = static_cast<T>(options.momentum());
        const T one_minus_dampening = static_cast<T>(1.0 - options.dampening());
        const bool maximize = options.maximize(), nesterov = options.nesterov(), decay = weight_decay != 0;
        const int64_t n = param.numel();
        for (int64_t i = 0; i < n; ++i) {
          T d = maximize ? -g[i] : g[i];
          if (decay) d = d + weight_decay * p[i];
          if (use_momentum) {
            buf[i] = first ? d : buf[i] * momentum + one_minus_dampening * d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
          }
          p[i] = p[i] - lr * d;
        }
      });
      detail::bump_version(param);
    }
  }
  return loss;
}

}  // namespace xg::optim

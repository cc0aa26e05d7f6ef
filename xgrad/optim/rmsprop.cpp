#include "xgrad/optim/rmsprop.hpp"

#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/parallel.hpp"

namespace xg::optim {

namespace {
/// One parameter's update, specialised on the options so the loop has no branches and vectorises.
template <class T, bool kCentered, bool kMomentum>
void rmsprop_kernel(T* __restrict p, const T* __restrict g, T* __restrict square_avg, T* __restrict buf,
                    T* __restrict grad_avg, int64_t n, const RMSpropOptions& options) {
  const T lr = static_cast<T>(options.lr()), alpha = static_cast<T>(options.alpha());
  const T one_minus_alpha = static_cast<T>(1.0 - options.alpha()), eps = static_cast<T>(options.eps());
  const T weight_decay = static_cast<T>(options.weight_decay()), momentum = static_cast<T>(options.momentum());
  const T sign = options.maximize() ? T(-1) : T(1);  // exact: maximize negates the gradient
  const bool decay = weight_decay != 0;
  for (int64_t i = 0; i < n; ++i) {
    const T d = decay ? sign * g[i] + weight_decay * p[i] : sign * g[i];
    const T v = square_avg[i] * alpha + one_minus_alpha * d * d;
    square_avg[i] = v;
    T avg;
    if constexpr (kCentered) {
      const T mean = grad_avg[i] * alpha + one_minus_alpha * d;
      grad_avg[i] = mean;
      avg = std::sqrt(v - mean * mean) + eps;
    } else {
      avg = std::sqrt(v) + eps;
    }
    if constexpr (kMomentum) {
      const T b = buf[i] * momentum + d / avg;
      buf[i] = b;
      p[i] = p[i] - lr * b;
    } else {
      p[i] = p[i] - lr * d / avg;
    }
  }
}
}  // namespace

RMSprop::RMSprop(TensorList params, RMSpropOptions defaults)
    : RMSprop(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

RMSprop::RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults)
    : Optimizer(std::make_unique<RMSpropOptions>(defaults), "RMSprop") {
  add_param_groups(param_groups);
}

void RMSprop::check_options(const OptimizerOptions& options) const {
  const auto* o = dynamic_cast<const RMSpropOptions*>(&options);
  XG_CHECK(o != nullptr, "RMSprop: the options of a parameter group are not RMSpropOptions");
  XG_CHECK(o->lr() >= 0, "RMSprop: invalid learning rate: {} (expected >= 0)", o->lr());
  XG_CHECK(o->eps() >= 0, "RMSprop: invalid epsilon value: {} (expected >= 0)", o->eps());
  XG_CHECK(o->momentum() >= 0, "RMSprop: invalid momentum value: {} (expected >= 0)", o->momentum());
  XG_CHECK(o->weight_decay() >= 0, "RMSprop: invalid weight_decay value: {} (expected >= 0)", o->weight_decay());
  XG_CHECK(o->alpha() >= 0, "RMSprop: invalid alpha value: {} (expected >= 0)", o->alpha());
}

// PyTorch's documented update, per element:
//   g <- -g if maximize;  g <- g + weight_decay * p
//   v <- alpha * v + (1 - alpha) * g^2
//   centered: g_avg <- alpha * g_avg + (1 - alpha) * g;  avg <- sqrt(v - g_avg^2) + eps, else avg <- sqrt(v) + eps
//   momentum > 0: b <- momentum * b + g / avg;  p <- p - lr * b,   else p <- p - lr * g / avg
Tensor RMSprop::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const RMSpropOptions&>(group.options());
    const bool use_momentum = options.momentum() > 0, centered = options.centered();
    for (const Tensor& param : group.params()) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      check_grad(param, grad);
      auto& state = param_state<RMSpropParamState>(param);
      ++state.step;
      detail::ensure_state_tensor(state.square_avg, param);
      if (use_momentum) detail::ensure_state_tensor(state.momentum_buffer, param);
      if (centered) detail::ensure_state_tensor(state.grad_avg, param);
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* buf = use_momentum ? state.momentum_buffer.contiguous_data<T>() : nullptr;
        T* grad_avg = centered ? state.grad_avg.contiguous_data<T>() : nullptr;
        auto kernel = centered ? (use_momentum ? rmsprop_kernel<T, true, true> : rmsprop_kernel<T, true, false>)
                               : (use_momentum ? rmsprop_kernel<T, false, true> : rmsprop_kernel<T, false, false>);
        T* p = param.contiguous_data<T>();
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        T* square_avg = state.square_avg.contiguous_data<T>();
        // Elementwise: any split over threads gives the same bits.
        parallel_for(0, param.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
          kernel(p + lo, g + lo, square_avg + lo, buf ? buf + lo : nullptr, grad_avg ? grad_avg + lo : nullptr, hi - lo, options);
        });
      });
      detail::bump_version(param);
    }
  }
  return loss;
}

}  // namespace xg::optim

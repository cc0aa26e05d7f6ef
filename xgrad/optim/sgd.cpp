#include "xgrad/optim/sgd.hpp"

#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/parallel.hpp"

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
  // PyTorch checks no dampening; a NaN or infinite one makes every momentum update NaN.
  XG_CHECK(std::isfinite(o->dampening()), "SGD: invalid dampening value: {} (expected a finite number)", o->dampening());
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
namespace {

struct SGDHyper {
  double lr, weight_decay, momentum, dampening;
  bool maximize;
};

// One pass per parameter with the options as template flags: no per-element branches, so the loop
// vectorises (the branchy scalar loop was ~20 % of a 784-100-10 MLP step; bench/README.md).
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_kernel(T* __restrict p, const T* __restrict g, T* __restrict buf, int64_t n, const SGDHyper& h) {
  const T lr = static_cast<T>(h.lr), weight_decay = static_cast<T>(h.weight_decay);
  const T momentum = static_cast<T>(h.momentum), one_minus_dampening = static_cast<T>(1.0 - h.dampening);
  const T sign = h.maximize ? T(-1) : T(1);  // exact: maximize negates the gradient
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T d = sign * g[i];
    if constexpr (kDecay) d = d + weight_decay * p[i];
    if constexpr (kMomentum) {
      T b;
      if constexpr (kFirst) b = d;
      else b = buf[i] * momentum + one_minus_dampening * d;
      buf[i] = b;
      if constexpr (kNesterov) d = d + momentum * b;
      else d = b;
    }
    p[i] = p[i] - lr * d;
  }
}

template <class T, bool kDecay>
void sgd_update_decay(T* p, const T* g, T* buf, int64_t n, const SGDHyper& h, bool momentum, bool first, bool nesterov) {
  if (!momentum) return sgd_kernel<T, kDecay, false, false, false>(p, g, buf, n, h);
  if (first) {
    if (nesterov) return sgd_kernel<T, kDecay, true, true, true>(p, g, buf, n, h);
    return sgd_kernel<T, kDecay, true, true, false>(p, g, buf, n, h);
  }
  if (nesterov) return sgd_kernel<T, kDecay, true, false, true>(p, g, buf, n, h);
  return sgd_kernel<T, kDecay, true, false, false>(p, g, buf, n, h);
}

template <class T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, const SGDHyper& h, bool momentum, bool first, bool nesterov) {
  if (h.weight_decay != 0) sgd_update_decay<T, true>(p, g, buf, n, h, momentum, first, nesterov);
  else sgd_update_decay<T, false>(p, g, buf, n, h, momentum, first, nesterov);
}

}  // namespace

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
      const SGDHyper hyper{options.lr(), options.weight_decay(), options.momentum(), options.dampening(), options.maximize()};
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* p = param.contiguous_data<T>();
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        T* buf = use_momentum ? state.momentum_buffer.contiguous_data<T>() : nullptr;
        const bool nesterov = options.nesterov();
        // Elementwise: any split gives the same bits.
        parallel_for(0, param.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
          sgd_update<T>(p + lo, g + lo, buf ? buf + lo : nullptr, hi - lo, hyper, use_momentum, first, nesterov);
        });
      });
      detail::bump_version(param);
    }
  }
  return loss;
}

}  // namespace xg::optim

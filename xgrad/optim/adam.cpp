// Adam and AdamW share one fused kernel: a single pass over raw pointers per parameter, no temporaries.
#include <cmath>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/optim/adam.hpp"
#include "xgrad/optim/adamw.hpp"

namespace xg::optim {
namespace {

struct AdamHyper {
  double lr, beta1, beta2, eps;
  double l2_weight_decay;   // Adam: g <- g + weight_decay * p
  double decoupled_decay;   // AdamW: p <- p - lr * weight_decay * p (0 for Adam)
  bool amsgrad, maximize;
};

template <class Options>
AdamHyper hyper_of(const Options& o, bool decoupled) {
  return {o.lr(),
          std::get<0>(o.betas()),
          std::get<1>(o.betas()),
          o.eps(),
          decoupled ? 0.0 : o.weight_decay(),
          decoupled ? o.weight_decay() : 0.0,
          o.amsgrad(),
          o.maximize()};
}

// PyTorch's documented update, per element, t = this parameter's step count:
//   (AdamW) p <- p * (1 - lr * weight_decay)
//   g <- -g if maximize;  (Adam) g <- g + weight_decay * p
//   m <- beta1 * m + (1 - beta1) * g;  v <- beta2 * v + (1 - beta2) * g^2
//   v_max <- max(v_max, v) if amsgrad (the raw second moment, as PyTorch's code: issue #142323)
//   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v or v_max) / sqrt(1 - beta2^t) + eps)
// The scalars are formed in double and rounded to T once, as PyTorch does with Python floats.
template <class T, bool kAmsgrad, bool kL2, bool kDecoupled>
void adam_kernel(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict v_max,
                 int64_t n, const AdamHyper& h, int64_t step) {
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(step));
  const T step_size = static_cast<T>(h.lr / bias_correction1);
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T beta1 = static_cast<T>(h.beta1), beta2 = static_cast<T>(h.beta2);
  const T one_minus_beta1 = static_cast<T>(1.0 - h.beta1), one_minus_beta2 = static_cast<T>(1.0 - h.beta2);
  const T eps = static_cast<T>(h.eps), weight_decay = static_cast<T>(h.l2_weight_decay);
  const T decay_factor = static_cast<T>(1.0 - h.lr * h.decoupled_decay);
  const T sign = h.maximize ? T(-1) : T(1);  // exact: maximize negates the gradient
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T param = p[i];
    if constexpr (kDecoupled) param = param * decay_factor;
    T d = sign * g[i];
    if constexpr (kL2) d = d + weight_decay * param;
    const T m_i = m[i] * beta1 + one_minus_beta1 * d;
    const T v_i = v[i] * beta2 + one_minus_beta2 * d * d;
    m[i] = m_i;
    v[i] = v_i;
    T second = v_i;
    if constexpr (kAmsgrad) {
      second = v_max[i] < v_i ? v_i : v_max[i];
      v_max[i] = second;
    }
    const T denom = std::sqrt(second) / bias_correction2_sqrt + eps;
    p[i] = param - step_size * m_i / denom;
  }
}

/// Picks the kernel specialised for the options (no per-element branches, so the loop vectorises).
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* v_max, int64_t n, const AdamHyper& h, int64_t step) {
  const bool l2 = h.l2_weight_decay != 0, decoupled = h.decoupled_decay != 0;
  if (h.amsgrad) {
    if (l2) adam_kernel<T, true, true, false>(p, g, m, v, v_max, n, h, step);
    else if (decoupled) adam_kernel<T, true, false, true>(p, g, m, v, v_max, n, h, step);
    else adam_kernel<T, true, false, false>(p, g, m, v, v_max, n, h, step);
  } else {
    if (l2) adam_kernel<T, false, true, false>(p, g, m, v, v_max, n, h, step);
    else if (decoupled) adam_kernel<T, false, false, true>(p, g, m, v, v_max, n, h, step);
    else adam_kernel<T, false, false, false>(p, g, m, v, v_max, n, h, step);
  }
}

/// One Adam/AdamW step over every parameter with a gradient.
template <class Options, class State>
void adam_step(std::vector<OptimizerParamGroup>& groups, bool decoupled,
               const std::function<State&(const Tensor&)>& state_of,
               const std::function<void(const Tensor&, const Tensor&)>& check_grad) {
  NoGradGuard no_grad;
  for (auto& group : groups) {
    const AdamHyper hyper = hyper_of(static_cast<const Options&>(group.options()), decoupled);
    for (const Tensor& param : group.params()) {
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      check_grad(param, grad);
      State& state = state_of(param);
      ++state.step;
      detail::ensure_state_tensor(state.exp_avg, param);
      detail::ensure_state_tensor(state.exp_avg_sq, param);
      if (hyper.amsgrad) detail::ensure_state_tensor(state.max_exp_avg_sq, param);
      detail::dispatch_float(param, [&](auto tag) {
        using T = decltype(tag);
        T* p = param.contiguous_data<T>();
        const Tensor g_dense = xg::detail::dense(grad);
        const T* g = g_dense.contiguous_data<T>();
        T* m = state.exp_avg.template contiguous_data<T>();
        T* v = state.exp_avg_sq.template contiguous_data<T>();
        T* v_max = hyper.amsgrad ? state.max_exp_avg_sq.template contiguous_data<T>() : nullptr;
        // Elementwise: any split gives the same bits.
        parallel_for(0, param.numel(), kElementwiseGrain, [&](int64_t lo, int64_t hi) {
          adam_update<T>(p + lo, g + lo, m + lo, v + lo, v_max ? v_max + lo : nullptr, hi - lo, hyper, state.step);
        });
      });
      detail::bump_version(param);
    }
  }
}

template <class Options>
void check_adam_options(const char* name, const OptimizerOptions& options) {
  const auto* o = dynamic_cast<const Options*>(&options);
  XG_CHECK(o != nullptr, "{}: the options of a parameter group are not {}Options", name, name);
  XG_CHECK(o->lr() >= 0, "{}: invalid learning rate: {} (expected >= 0)", name, o->lr());
  XG_CHECK(o->eps() >= 0, "{}: invalid epsilon value: {} (expected >= 0)", name, o->eps());
  const double beta1 = std::get<0>(o->betas()), beta2 = std::get<1>(o->betas());
  XG_CHECK(beta1 >= 0 && beta1 < 1, "{}: invalid beta parameter at index 0: {} (expected in [0, 1))", name, beta1);
  XG_CHECK(beta2 >= 0 && beta2 < 1, "{}: invalid beta parameter at index 1: {} (expected in [0, 1))", name, beta2);
  XG_CHECK(o->weight_decay() >= 0, "{}: invalid weight_decay value: {} (expected >= 0)", name, o->weight_decay());
}

}  // namespace

// ---- Adam -------------------------------------------------------------------------------------------
Adam::Adam(TensorList params, AdamOptions defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

Adam::Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults)
    : Optimizer(std::make_unique<AdamOptions>(defaults), "Adam") {
  add_param_groups(param_groups);
}

void Adam::check_options(const OptimizerOptions& options) const { check_adam_options<AdamOptions>("Adam", options); }

Tensor Adam::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  adam_step<AdamOptions, AdamParamState>(
      param_groups_, /*decoupled=*/false, [this](const Tensor& p) -> AdamParamState& { return param_state<AdamParamState>(p); },
      [this](const Tensor& p, const Tensor& g) { check_grad(p, g); });
  return loss;
}

// ---- AdamW ------------------------------------------------------------------------------------------
AdamW::AdamW(TensorList params, AdamWOptions defaults)
    : AdamW(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults) {}

AdamW::AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : Optimizer(std::make_unique<AdamWOptions>(defaults), "AdamW") {
  add_param_groups(param_groups);
}

void AdamW::check_options(const OptimizerOptions& options) const { check_adam_options<AdamWOptions>("AdamW", options); }

Tensor AdamW::step(LossClosure closure) {
  Tensor loss = evaluate_closure(closure);
  adam_step<AdamWOptions, AdamWParamState>(
      param_groups_, /*decoupled=*/true,
      [this](const Tensor& p) -> AdamWParamState& { return param_state<AdamWParamState>(p); },
      [this](const Tensor& p, const Tensor& g) { check_grad(p, g); });
  return loss;
}

}  // namespace xg::optim

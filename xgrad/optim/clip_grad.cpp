#include "xgrad/optim/clip_grad.hpp"

#include <algorithm>
#include <cmath>

#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

double clip_grad_norm_(const TensorList& parameters, double max_norm, double norm_type, bool error_if_nonfinite) {
  const bool infinity_norm = std::isinf(norm_type) && norm_type > 0;
  XG_CHECK(infinity_norm || norm_type > 0, "clip_grad_norm_: norm_type must be positive or infinity, got {}", norm_type);
  // PyTorch checks nothing here: a negative max_norm flips the gradients' sign, a NaN one makes them NaN.
  // +inf stays valid: the usual way to only measure the norm.
  XG_CHECK(max_norm >= 0, "clip_grad_norm_: max_norm must be >= 0 (or inf to leave the gradients as they are), got {}", max_norm);
  TensorList grads;
  for (const Tensor& p : parameters) {
    XG_CHECK(p.defined(), "clip_grad_norm_: a parameter is undefined");
    if (Tensor g = p.grad(); g.defined()) grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  // One pass per gradient, accumulated in double: max |g| or sum |g|^p over all gradients together.
  double accumulated = 0;
  for (const Tensor& g : grads) {
    detail::dispatch_float(g, [&](auto tag) {
      using T = decltype(tag);
      const Tensor data_dense = xg::detail::dense(g);
      const T* data = data_dense.contiguous_data<T>();
      const int64_t n = g.numel();
      if (infinity_norm) {
        for (int64_t i = 0; i < n; ++i) accumulated = std::max(accumulated, static_cast<double>(std::abs(data[i])));
        // std::max drops NaN; keep it visible to the non-finite check.
        for (int64_t i = 0; i < n; ++i)
          if (std::isnan(data[i])) accumulated = std::numeric_limits<double>::quiet_NaN();
      } else if (norm_type == 2.0) {
        for (int64_t i = 0; i < n; ++i) accumulated += static_cast<double>(data[i]) * static_cast<double>(data[i]);
      } else if (norm_type == 1.0) {
        for (int64_t i = 0; i < n; ++i) accumulated += std::abs(static_cast<double>(data[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) accumulated += std::pow(std::abs(static_cast<double>(data[i])), norm_type);
      }
    });
  }
  const double total_norm = infinity_norm ? accumulated
                            : norm_type == 2.0 ? std::sqrt(accumulated)
                            : norm_type == 1.0 ? accumulated
                                               : std::pow(accumulated, 1.0 / norm_type);
  XG_CHECK(!error_if_nonfinite || std::isfinite(total_norm),
           "clip_grad_norm_: the total norm of order {} for gradients from `parameters` is non-finite ({}), so it "
           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
           "error_if_nonfinite=false",
           norm_type, total_norm);
  const double clip_coef = max_norm / (total_norm + 1e-6);
  // PyTorch multiplies by min(clip_coef, 1) always; multiplying by 1 changes nothing, so skip it. A NaN
  // coefficient (non-finite norm) still propagates, as in PyTorch.
  if (!(clip_coef < 1.0) && !std::isnan(clip_coef)) return total_norm;
  for (const Tensor& g : grads) {
    detail::dispatch_float(g, [&](auto tag) {
      using T = decltype(tag);
      T* data = g.contiguous_data<T>();
      const T coef = static_cast<T>(clip_coef);
      for (int64_t i = 0; i < g.numel(); ++i) data[i] = data[i] * coef;
    });
    detail::bump_version(g);
  }
  return total_norm;
}

double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type, bool error_if_nonfinite) {
  return clip_grad_norm_(TensorList{parameter}, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const TensorList& parameters, double clip_value) {
  XG_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  for (const Tensor& p : parameters) {
    XG_CHECK(p.defined(), "clip_grad_value_: a parameter is undefined");
    Tensor g = p.grad();
    if (!g.defined()) continue;
    detail::dispatch_float(g, [&](auto tag) {
      using T = decltype(tag);
      T* data = g.contiguous_data<T>();
      const T high = static_cast<T>(clip_value), low = -high;
      for (int64_t i = 0; i < g.numel(); ++i) data[i] = std::min(std::max(data[i], low), high);
    });
    detail::bump_version(g);
  }
}

void clip_grad_value_(const Tensor& parameter, double clip_value) { clip_grad_value_(TensorList{parameter}, clip_value); }

}  // namespace xg::optim

#pragma once
/// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), in xg::optim.
#include <limits>

#include "xgrad/autograd/tensor.hpp"

namespace xg::optim {

/// Scales the gradients of `parameters` in place so that their joint norm_type-norm (as if all were
/// concatenated; norm_type = infinity for the max-norm) is at most max_norm: each gradient is multiplied by
/// min(1, max_norm / (total_norm + 1e-6)). Parameters without a gradient are skipped. Returns the total
/// norm before clipping. With error_if_nonfinite, a NaN or infinite total norm is an error.
double clip_grad_norm_(const TensorList& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
/// The same for a single parameter.
double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

/// Clamps every gradient element into [-clip_value, clip_value] in place.
void clip_grad_value_(const TensorList& parameters, double clip_value);
void clip_grad_value_(const Tensor& parameter, double clip_value);

}  // namespace xg::optim

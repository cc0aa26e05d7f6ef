#pragma once
/// Proves a gradient: compares the analytic vector-Jacobian products from backward against central
/// finite differences, in float64. Works on any function of tensors, including user-defined ops.
#include <functional>
#include <string>

#include "xgrad/autograd/tensor.hpp"

namespace xg::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< absolute tolerance
  double rtol = 1e-3;  ///< relative tolerance (of the numerical value)
  /// Throw xg::Error with the report on failure (PyTorch's raise_exception); otherwise return false.
  bool raise_exception = true;
  GradcheckOptions& set_eps(double v) { eps = v; return *this; }
  GradcheckOptions& set_atol(double v) { atol = v; return *this; }
  GradcheckOptions& set_rtol(double v) { rtol = v; return *this; }
  GradcheckOptions& set_raise_exception(bool v) { raise_exception = v; return *this; }
};

/// A function under test: tensors in, tensors out.
using GradcheckFunction = std::function<TensorList(const TensorList&)>;

/// Checks d(outputs)/d(inputs) for every input that requires grad (they must be float64). Returns
/// true when every Jacobian element agrees: |analytic - numeric| <= atol + rtol * |numeric|. The
/// failure report names the input, the output, the element, and both values.
bool gradcheck(const GradcheckFunction& fn, const TensorList& inputs, const GradcheckOptions& options = {});
/// Single-output convenience.
bool gradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs, const GradcheckOptions& options = {});

/// Checks second derivatives: gradcheck of (inputs, v) -> grad(fn(inputs), inputs, v, create_graph)
/// with random v, as PyTorch's gradgradcheck.
bool gradgradcheck(const GradcheckFunction& fn, const TensorList& inputs, const GradcheckOptions& options = {});
bool gradgradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs, const GradcheckOptions& options = {});

}  // namespace xg::autograd

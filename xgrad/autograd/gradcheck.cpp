#include "xgrad/autograd/gradcheck.hpp"

#include <cmath>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/kernels.hpp"

namespace xg::autograd {

namespace {

struct Mismatch {
  bool found = false;
  size_t input = 0, output = 0;
  int64_t input_element = 0, output_element = 0;
  double analytic = 0, numeric = 0, excess = 0;
};

TensorList evaluate(const GradcheckFunction& fn, const TensorList& inputs) {
  TensorList outputs = fn(inputs);
  XG_CHECK(!outputs.empty(), "gradcheck: the function returned no outputs");
  for (size_t i = 0; i < outputs.size(); ++i) {
    XG_CHECK(outputs[i].defined(), "gradcheck: output {} is undefined", i);
    XG_CHECK(outputs[i].dtype() == kFloat64, "gradcheck: output {} is {}; gradcheck needs float64 for precision", i, outputs[i].dtype());
  }
  return outputs;
}

}  // namespace

bool gradcheck(const GradcheckFunction& fn, const TensorList& inputs, const GradcheckOptions& options) {
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    any = true;
    XG_CHECK(inputs[i].dtype() == kFloat64, "gradcheck: input {} is {}; gradcheck needs float64 inputs for precision", i, inputs[i].dtype());
    XG_CHECK(inputs[i].is_leaf(), "gradcheck: input {} must be a leaf tensor", i);
  }
  XG_CHECK(any, "gradcheck: no input requires grad; call requires_grad_() on the inputs to check");

  TensorList outputs = evaluate(fn, inputs);
  std::vector<int64_t> output_sizes;
  for (const Tensor& out : outputs) output_sizes.push_back(out.numel());

  // Numerical Jacobian columns: perturb each input element by +-eps.
  // numeric[input][output] is [numel(input) x numel(output)] in row-major.
  std::vector<std::vector<std::vector<double>>> numeric(inputs.size());
  {
    // Recording stays on: the function under test may itself differentiate (gradgradcheck).
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
      // The input may be a view (any strides): element e is addressed through its geometry.
      const detail::Geometry geometry = detail::geometry_of(inputs[i]);
      double* storage = detail::storage_data<double>(inputs[i]);
      const int64_t n = inputs[i].numel();
      numeric[i].resize(outputs.size());
      for (size_t o = 0; o < outputs.size(); ++o) numeric[i][o].assign(static_cast<size_t>(n * output_sizes[o]), 0.0);
      for (int64_t e = 0; e < n; ++e) {
        double* element = storage + detail::element_offset(geometry, e);
        const double original = *element;
        // An output may share the input's storage (identity, a no-op squeeze, a backward returning
        // its incoming gradient), so the f(x + eps) values are copied before the input moves again.
        *element = original + options.eps;
        TensorList plus = evaluate(fn, inputs);
        std::vector<std::vector<double>> plus_values(outputs.size());
        for (size_t o = 0; o < outputs.size(); ++o) {
          const Tensor dense = detail::dense(plus[o]);
          const double* p = dense.contiguous_data<double>();
          plus_values[o].assign(p, p + output_sizes[o]);
        }
        *element = original - options.eps;
        TensorList minus = evaluate(fn, inputs);
        for (size_t o = 0; o < outputs.size(); ++o) {
          const Tensor dense = detail::dense(minus[o]);
          const double* m = dense.contiguous_data<double>();
          for (int64_t k = 0; k < output_sizes[o]; ++k)
            numeric[i][o][static_cast<size_t>(e * output_sizes[o] + k)] =
                (plus_values[o][static_cast<size_t>(k)] - m[k]) / (2 * options.eps);
        }
        *element = original;
      }
    }
  }

  // Analytic Jacobian rows: one backward per output element with a one-hot grad_output.
  TensorList differentiable_inputs;
  std::vector<size_t> positions;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      differentiable_inputs.push_back(inputs[i]);
      positions.push_back(i);
    }
  Mismatch worst;
  for (size_t o = 0; o < outputs.size(); ++o) {
    for (int64_t k = 0; k < output_sizes[o]; ++k) {
      TensorList rows(differentiable_inputs.size());
      if (outputs[o].requires_grad()) {
        Tensor one_hot = zeros(outputs[o].shape(), kFloat64);
        one_hot.contiguous_data<double>()[k] = 1.0;
        rows = grad({outputs[o]}, differentiable_inputs, {one_hot}, /*retain_graph=*/true, false, /*allow_unused=*/true);
      }
      for (size_t j = 0; j < differentiable_inputs.size(); ++j) {
        const size_t i = positions[j];
        const int64_t n = inputs[i].numel();
        XG_CHECK(!rows[j].defined() || rows[j].shape() == inputs[i].shape(),
                 "gradcheck: the gradient of input {} has shape {} but the input has shape {}", i, shape_string(rows[j].shape()),
                 shape_string(inputs[i].shape()));
        const Tensor row = rows[j].defined() ? detail::dense(rows[j]) : Tensor();
        for (int64_t e = 0; e < n; ++e) {
          double analytic = row.defined() ? row.contiguous_data<double>()[e] : 0.0;
          double num = numeric[i][o][static_cast<size_t>(e * output_sizes[o] + k)];
          double excess = std::abs(analytic - num) - (options.atol + options.rtol * std::abs(num));
          if (std::isnan(analytic) != std::isnan(num)) excess = INFINITY;
          if (excess > 0 && (!worst.found || excess > worst.excess)) worst = {true, i, o, e, k, analytic, num, excess};
        }
      }
    }
  }
  if (!worst.found) return true;
  std::string report = fmt::format(
      "gradcheck: Jacobian mismatch for output {} with respect to input {} (shape {}): at input element {} and output element {}, "
      "numerical = {:.10g}, analytical = {:.10g}, difference {:.3g} exceeds atol {} + rtol {} * |numerical|",
      worst.output, worst.input, shape_string(inputs[worst.input].shape()), worst.input_element, worst.output_element, worst.numeric,
      worst.analytic, std::abs(worst.numeric - worst.analytic), options.atol, options.rtol);
  if (options.raise_exception) throw Error(report);
  return false;
}

bool gradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs, const GradcheckOptions& options) {
  return gradcheck(GradcheckFunction([&fn](const TensorList& in) { return TensorList{fn(in)}; }), inputs, options);
}

bool gradgradcheck(const GradcheckFunction& fn, const TensorList& inputs, const GradcheckOptions& options) {
  TensorList outputs = evaluate(fn, inputs);
  TensorList grad_outputs;
  for (const Tensor& out : outputs) grad_outputs.push_back(randn(out.shape(), kFloat64).requires_grad_());
  const size_t n_inputs = inputs.size();
  GradcheckFunction first_order = [fn, n_inputs](const TensorList& all) {
    TensorList in(all.begin(), all.begin() + n_inputs);
    TensorList v(all.begin() + n_inputs, all.end());
    TensorList out = fn(in);
    TensorList diff_inputs;
    for (const Tensor& t : in)
      if (t.requires_grad()) diff_inputs.push_back(t);
    TensorList used_outputs, used_v;
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i].requires_grad()) {
        used_outputs.push_back(out[i]);
        used_v.push_back(v[i]);
      }
    TensorList grads = grad(used_outputs, diff_inputs, used_v, true, /*create_graph=*/true, /*allow_unused=*/true);
    TensorList result;
    for (size_t i = 0; i < grads.size(); ++i) result.push_back(grads[i].defined() ? grads[i] : zeros(diff_inputs[i].shape(), kFloat64));
    return result;
  };
  TensorList all = inputs;
  all.insert(all.end(), grad_outputs.begin(), grad_outputs.end());
  return gradcheck(first_order, all, options);
}

bool gradgradcheck(const std::function<Tensor(const TensorList&)>& fn, const TensorList& inputs, const GradcheckOptions& options) {
  return gradgradcheck(GradcheckFunction([&fn](const TensorList& in) { return TensorList{fn(in)}; }), inputs, options);
}

}  // namespace xg::autograd

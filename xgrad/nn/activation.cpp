#include "xgrad/nn/activation.hpp"

#include <cmath>

namespace xg::nn {

namespace functional {
Tensor relu(const Tensor& input) { return xg::relu(input); }
Tensor leaky_relu(const Tensor& input, const LeakyReLUFuncOptions& options) { return xg::leaky_relu(input, options.negative_slope()); }
Tensor elu(const Tensor& input, const ELUFuncOptions& options) { return xg::elu(input, options.alpha()); }
Tensor gelu(const Tensor& input, const GELUFuncOptions& options) { return xg::gelu(input, options.approximate()); }
Tensor sigmoid(const Tensor& input) { return xg::sigmoid(input); }
Tensor tanh(const Tensor& input) { return xg::tanh(input); }
Tensor softplus(const Tensor& input, const SoftplusFuncOptions& options) {
  return xg::softplus(input, options.beta(), options.threshold());
}
Tensor softmax(const Tensor& input, const SoftmaxFuncOptions& options) { return xg::softmax(input, options.dim()); }
Tensor log_softmax(const Tensor& input, const LogSoftmaxFuncOptions& options) { return xg::log_softmax(input, options.dim()); }
}  // namespace functional

Tensor ReLUImpl::forward(const Tensor& input) { return xg::relu(input); }

LeakyReLUImpl::LeakyReLUImpl(const LeakyReLUOptions& options_) : options(options_) {
  XG_CHECK(std::isfinite(options.negative_slope()), "LeakyReLU: negative_slope must be finite, got {}", options.negative_slope());
}
Tensor LeakyReLUImpl::forward(const Tensor& input) { return xg::leaky_relu(input, options.negative_slope()); }
std::string LeakyReLUImpl::extra_repr() const { return fmt::format("negative_slope={}", options.negative_slope()); }

ELUImpl::ELUImpl(const ELUOptions& options_) : options(options_) {
  XG_CHECK(std::isfinite(options.alpha()), "ELU: alpha must be finite, got {}", options.alpha());
}
Tensor ELUImpl::forward(const Tensor& input) { return xg::elu(input, options.alpha()); }
std::string ELUImpl::extra_repr() const { return fmt::format("alpha={}", options.alpha()); }

GELUImpl::GELUImpl(const GELUOptions& options_) : options(options_) {
  XG_CHECK(options.approximate() == "none" || options.approximate() == "tanh",
           "GELU: approximate must be \"none\" or \"tanh\", got \"{}\"", options.approximate());
}
Tensor GELUImpl::forward(const Tensor& input) { return xg::gelu(input, options.approximate()); }
std::string GELUImpl::extra_repr() const { return fmt::format("approximate='{}'", options.approximate()); }

Tensor SigmoidImpl::forward(const Tensor& input) { return xg::sigmoid(input); }
Tensor TanhImpl::forward(const Tensor& input) { return xg::tanh(input); }

SoftplusImpl::SoftplusImpl(const SoftplusOptions& options_) : options(options_) {
  XG_CHECK(options.beta() != 0 && std::isfinite(options.beta()), "Softplus: beta must be finite and nonzero, got {}", options.beta());
}
Tensor SoftplusImpl::forward(const Tensor& input) { return xg::softplus(input, options.beta(), options.threshold()); }
std::string SoftplusImpl::extra_repr() const { return fmt::format("beta={}, threshold={}", options.beta(), options.threshold()); }

SoftmaxImpl::SoftmaxImpl(const SoftmaxOptions& options_) : options(options_) {}
Tensor SoftmaxImpl::forward(const Tensor& input) { return xg::softmax(input, options.dim()); }
std::string SoftmaxImpl::extra_repr() const { return fmt::format("dim={}", options.dim()); }

LogSoftmaxImpl::LogSoftmaxImpl(const LogSoftmaxOptions& options_) : options(options_) {}
Tensor LogSoftmaxImpl::forward(const Tensor& input) { return xg::log_softmax(input, options.dim()); }
std::string LogSoftmaxImpl::extra_repr() const { return fmt::format("dim={}", options.dim()); }

}  // namespace xg::nn

#pragma once
/// Activation modules and their functional forms (elementwise unless stated; any shape in, same
/// shape out). The math is the xgrad op of the same name; the modules hold the options.
#include <cstdint>
#include <string>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Options of LeakyReLU: negative_slope (default 0.01).
struct LeakyReLUOptions {
  LeakyReLUOptions& negative_slope(double value) { negative_slope_ = value; return *this; }
  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_ = 0.01;
};

/// Options of ELU: alpha (default 1).
struct ELUOptions {
  ELUOptions& alpha(double value) { alpha_ = value; return *this; }
  double alpha() const { return alpha_; }

 private:
  double alpha_ = 1.0;
};

/// Options of GELU: approximate, "none" (exact, erf) or "tanh".
struct GELUOptions {
  GELUOptions& approximate(std::string value) { approximate_ = std::move(value); return *this; }
  const std::string& approximate() const { return approximate_; }

 private:
  std::string approximate_ = "none";
};

/// Options of Softplus: beta (default 1), threshold (default 20; linear above beta * x > threshold).
struct SoftplusOptions {
  SoftplusOptions& beta(double value) { beta_ = value; return *this; }
  SoftplusOptions& threshold(double value) { threshold_ = value; return *this; }
  double beta() const { return beta_; }
  double threshold() const { return threshold_; }

 private:
  double beta_ = 1.0, threshold_ = 20.0;
};

/// Options of Softmax and LogSoftmax: the dim the probabilities sum over.
struct SoftmaxOptions {
  SoftmaxOptions(int64_t dim) : dim_(dim) {}  // NOLINT: implicit, so F::softmax(x, 1) reads naturally
  SoftmaxOptions& dim(int64_t value) { dim_ = value; return *this; }
  int64_t dim() const { return dim_; }

 private:
  int64_t dim_;
};
using LogSoftmaxOptions = SoftmaxOptions;

/// max(0, x).
class ReLUImpl : public Module {
 public:
  ReLUImpl() = default;
  /// x -> max(0, x), same shape.
  Tensor forward(const Tensor& input);
};
XG_MODULE(ReLU);

/// x if x > 0 else negative_slope * x.
class LeakyReLUImpl : public Module {
 public:
  explicit LeakyReLUImpl(const LeakyReLUOptions& options = {});
  /// Same shape.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  LeakyReLUOptions options;
};
XG_MODULE(LeakyReLU);

/// x if x > 0 else alpha * (exp(x) - 1).
class ELUImpl : public Module {
 public:
  explicit ELUImpl(const ELUOptions& options = {});
  /// Same shape.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  ELUOptions options;
};
XG_MODULE(ELU);

/// x * Phi(x) (exact) or its tanh approximation.
class GELUImpl : public Module {
 public:
  explicit GELUImpl(const GELUOptions& options = {});
  /// Same shape.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  GELUOptions options;
};
XG_MODULE(GELU);

/// 1 / (1 + exp(-x)).
class SigmoidImpl : public Module {
 public:
  SigmoidImpl() = default;
  /// Same shape.
  Tensor forward(const Tensor& input);
};
XG_MODULE(Sigmoid);

/// tanh(x).
class TanhImpl : public Module {
 public:
  TanhImpl() = default;
  /// Same shape.
  Tensor forward(const Tensor& input);
};
XG_MODULE(Tanh);

/// log(1 + exp(beta * x)) / beta, linear where beta * x > threshold.
class SoftplusImpl : public Module {
 public:
  explicit SoftplusImpl(const SoftplusOptions& options = {});
  /// Same shape.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  SoftplusOptions options;
};
XG_MODULE(Softplus);

/// exp(x) / sum(exp(x)) along dim (stable).
class SoftmaxImpl : public Module {
 public:
  explicit SoftmaxImpl(int64_t dim) : SoftmaxImpl(SoftmaxOptions(dim)) {}
  explicit SoftmaxImpl(const SoftmaxOptions& options);
  /// Same shape; sums to 1 along dim.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  SoftmaxOptions options;
};
XG_MODULE(Softmax);

/// x - logsumexp(x) along dim (stable).
class LogSoftmaxImpl : public Module {
 public:
  explicit LogSoftmaxImpl(int64_t dim) : LogSoftmaxImpl(LogSoftmaxOptions(dim)) {}
  explicit LogSoftmaxImpl(const LogSoftmaxOptions& options);
  /// Same shape.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  LogSoftmaxOptions options;
};
XG_MODULE(LogSoftmax);

namespace functional {
using LeakyReLUFuncOptions = LeakyReLUOptions;
using ELUFuncOptions = ELUOptions;
using GELUFuncOptions = GELUOptions;
using SoftplusFuncOptions = SoftplusOptions;
using SoftmaxFuncOptions = SoftmaxOptions;
using LogSoftmaxFuncOptions = SoftmaxOptions;

/// Elementwise, same shape.
Tensor relu(const Tensor& input);
Tensor leaky_relu(const Tensor& input, const LeakyReLUFuncOptions& options = {});
Tensor elu(const Tensor& input, const ELUFuncOptions& options = {});
Tensor gelu(const Tensor& input, const GELUFuncOptions& options = {});
Tensor sigmoid(const Tensor& input);
Tensor tanh(const Tensor& input);
Tensor softplus(const Tensor& input, const SoftplusFuncOptions& options = {});
/// Along options.dim(), same shape.
Tensor softmax(const Tensor& input, const SoftmaxFuncOptions& options);
Tensor log_softmax(const Tensor& input, const LogSoftmaxFuncOptions& options);
}  // namespace functional

}  // namespace xg::nn

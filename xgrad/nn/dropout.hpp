#pragma once
/// Dropout (elementwise) and Dropout2d (whole channels), inverted: kept values are scaled by
/// 1 / (1 - p) in training so evaluation is the identity. Masks come from the global generator
/// (xg::manual_seed makes them reproducible).
#include <string>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Options of Dropout and Dropout2d: p, the probability of zeroing (default 0.5), in [0, 1].
struct DropoutOptions {
  DropoutOptions(double p = 0.5) : p_(p) {}  // NOLINT: implicit, as torch::nn::DropoutOptions
  DropoutOptions& p(double value) { p_ = value; return *this; }
  double p() const { return p_; }

 private:
  double p_;
};
using Dropout2dOptions = DropoutOptions;

/// Zeroes each element with probability p in training mode: any shape -> same shape.
class DropoutImpl : public Module {
 public:
  explicit DropoutImpl(const DropoutOptions& options = {});
  explicit DropoutImpl(double p) : DropoutImpl(DropoutOptions(p)) {}
  /// Any shape -> same shape; the identity in eval mode.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  DropoutOptions options;
};
XG_MODULE(Dropout);

/// Zeroes whole channels with probability p in training mode: [N, C, H, W] (a mask per (n, c)) or an
/// unbatched [C, H, W] (a mask per c). Note: PyTorch 2.x still reads a 3-D input as [N, C, L] (a
/// documented historical quirk it plans to drop); xgrad implements the announced [C, H, W] reading.
class Dropout2dImpl : public Module {
 public:
  explicit Dropout2dImpl(const Dropout2dOptions& options = {});
  explicit Dropout2dImpl(double p) : Dropout2dImpl(Dropout2dOptions(p)) {}
  /// [N, C, H, W] or [C, H, W] -> same shape; the identity in eval mode.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;
  Dropout2dOptions options;
};
XG_MODULE(Dropout2d);

namespace functional {
/// Options of the functional forms: p (default 0.5) and training (default true).
struct DropoutFuncOptions {
  DropoutFuncOptions& p(double value) { p_ = value; return *this; }
  DropoutFuncOptions& training(bool value) { training_ = value; return *this; }
  double p() const { return p_; }
  bool training() const { return training_; }

 private:
  double p_ = 0.5;
  bool training_ = true;
};
using Dropout2dFuncOptions = DropoutFuncOptions;

/// Any shape -> same shape: each element zeroed with probability p, the rest scaled by 1 / (1 - p).
Tensor dropout(const Tensor& input, double p, bool training = true);
Tensor dropout(const Tensor& input, const DropoutFuncOptions& options = {});
/// [N, C, H, W] or [C, H, W] -> same shape: each channel zeroed with probability p, the rest scaled.
Tensor dropout2d(const Tensor& input, double p, bool training = true);
Tensor dropout2d(const Tensor& input, const Dropout2dFuncOptions& options = {});
}  // namespace functional

}  // namespace xg::nn

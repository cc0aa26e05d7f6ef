#pragma once
/// Loss functions (modules and xg::nn::functional forms) with PyTorch's formulas, options and
/// defaults, plus the L1/L2 weight penalties. `reduction` is "none" (per-element losses, the
/// target's shape), "mean" (default) or "sum"; KLDivLoss also takes "batchmean". Input and target
/// must have the same shape where PyTorch would warn about broadcasting: here it is an error.
#include <cstdint>
#include <string>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

// ---- options -------------------------------------------------------------------------------------
/// Options of MSELoss and L1Loss: reduction.
struct MSELossOptions {
  MSELossOptions(std::string reduction = "mean") : reduction_(std::move(reduction)) {}  // NOLINT
  MSELossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  const std::string& reduction() const { return reduction_; }

 private:
  std::string reduction_;
};
using L1LossOptions = MSELossOptions;

/// Options of SmoothL1Loss: reduction, beta (1; the |d| below which the loss is quadratic, 0 = L1).
struct SmoothL1LossOptions {
  SmoothL1LossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  SmoothL1LossOptions& beta(double value) { beta_ = value; return *this; }
  const std::string& reduction() const { return reduction_; }
  double beta() const { return beta_; }

 private:
  std::string reduction_ = "mean";
  double beta_ = 1.0;
};

/// Options of HuberLoss: reduction, delta (1; quadratic below, linear with slope delta above).
struct HuberLossOptions {
  HuberLossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  HuberLossOptions& delta(double value) { delta_ = value; return *this; }
  const std::string& reduction() const { return reduction_; }
  double delta() const { return delta_; }

 private:
  std::string reduction_ = "mean";
  double delta_ = 1.0;
};

/// Options of CrossEntropyLoss: weight ([C] per class, optional), ignore_index (-100), reduction,
/// label_smoothing (0, in [0, 1]).
struct CrossEntropyLossOptions {
  CrossEntropyLossOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  CrossEntropyLossOptions& ignore_index(int64_t value) { ignore_index_ = value; return *this; }
  CrossEntropyLossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  CrossEntropyLossOptions& label_smoothing(double value) { label_smoothing_ = value; return *this; }
  const Tensor& weight() const { return weight_; }
  int64_t ignore_index() const { return ignore_index_; }
  const std::string& reduction() const { return reduction_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  Tensor weight_;
  int64_t ignore_index_ = -100;
  std::string reduction_ = "mean";
  double label_smoothing_ = 0.0;
};

/// Options of NLLLoss: weight ([C], optional), ignore_index (-100), reduction.
struct NLLLossOptions {
  NLLLossOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  NLLLossOptions& ignore_index(int64_t value) { ignore_index_ = value; return *this; }
  NLLLossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  const Tensor& weight() const { return weight_; }
  int64_t ignore_index() const { return ignore_index_; }
  const std::string& reduction() const { return reduction_; }

 private:
  Tensor weight_;
  int64_t ignore_index_ = -100;
  std::string reduction_ = "mean";
};

/// Options of BCELoss: weight (broadcast to the input, optional), reduction.
struct BCELossOptions {
  BCELossOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  BCELossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  const Tensor& weight() const { return weight_; }
  const std::string& reduction() const { return reduction_; }

 private:
  Tensor weight_;
  std::string reduction_ = "mean";
};

/// Options of BCEWithLogitsLoss: weight (broadcast to the input), reduction, pos_weight (weight of
/// positive examples, broadcast along the last, class, dim: [C]).
struct BCEWithLogitsLossOptions {
  BCEWithLogitsLossOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  BCEWithLogitsLossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  BCEWithLogitsLossOptions& pos_weight(Tensor value) { pos_weight_ = std::move(value); return *this; }
  const Tensor& weight() const { return weight_; }
  const std::string& reduction() const { return reduction_; }
  const Tensor& pos_weight() const { return pos_weight_; }

 private:
  Tensor weight_, pos_weight_;
  std::string reduction_ = "mean";
};

/// Options of KLDivLoss: reduction ("none", "mean" (over all elements), "sum", "batchmean" (sum / N,
/// the true KL divergence per sample)), log_target (the target is given as log-probabilities).
struct KLDivLossOptions {
  KLDivLossOptions& reduction(std::string value) { reduction_ = std::move(value); return *this; }
  KLDivLossOptions& log_target(bool value) { log_target_ = value; return *this; }
  const std::string& reduction() const { return reduction_; }
  bool log_target() const { return log_target_; }

 private:
  std::string reduction_ = "mean";
  bool log_target_ = false;
};

// ---- functional -----------------------------------------------------------------------------------
namespace functional {
using MSELossFuncOptions = MSELossOptions;
using L1LossFuncOptions = L1LossOptions;
using SmoothL1LossFuncOptions = SmoothL1LossOptions;
using HuberLossFuncOptions = HuberLossOptions;
using CrossEntropyFuncOptions = CrossEntropyLossOptions;
using NLLLossFuncOptions = NLLLossOptions;
using BinaryCrossEntropyFuncOptions = BCELossOptions;
using BinaryCrossEntropyWithLogitsFuncOptions = BCEWithLogitsLossOptions;
using KLDivFuncOptions = KLDivLossOptions;

/// (input - target)^2; input and target of the same shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossFuncOptions& options = {});
/// |input - target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options = {});
/// 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta, d = input - target.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options = {});
/// 0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta).
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossFuncOptions& options = {});
/// Logits [N, C] or [N, C, d1...] (or unbatched [C]) against int64 class indices [N] / [N, d1...] (/ 0-D),
/// or against class probabilities of the input's shape. A fused log_softmax + nll.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options = {});
/// Log-probabilities [N, C] or [N, C, d1...] (or [C]) against int64 class indices [N] / [N, d1...] (/ 0-D).
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options = {});
/// -w (t log x + (1 - t) log(1 - x)), logs clamped to >= -100; input probabilities in [0, 1].
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BinaryCrossEntropyFuncOptions& options = {});
/// BCE of sigmoid(input) computed stably from the logits: w ((1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)).
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const BinaryCrossEntropyWithLogitsFuncOptions& options = {});
/// input: log-probabilities; target: probabilities (or log-probabilities with log_target);
/// pointwise target * (log target - input).
Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivFuncOptions& options = {});
}  // namespace functional

// ---- modules -------------------------------------------------------------------------------------
/// Mean squared error: (input, target) of the same shape -> scalar (or the shape, with "none").
class MSELossImpl : public Module {
 public:
  explicit MSELossImpl(const MSELossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  MSELossOptions options;
};
XG_MODULE(MSELoss);

/// Mean absolute error: (input, target) of the same shape -> scalar (or the shape, with "none").
class L1LossImpl : public Module {
 public:
  explicit L1LossImpl(const L1LossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  L1LossOptions options;
};
XG_MODULE(L1Loss);

/// Smooth L1 (quadratic within beta): (input, target) of the same shape -> scalar.
class SmoothL1LossImpl : public Module {
 public:
  explicit SmoothL1LossImpl(const SmoothL1LossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  SmoothL1LossOptions options;
};
XG_MODULE(SmoothL1Loss);

/// Huber (quadratic within delta, slope delta outside): (input, target) of the same shape -> scalar.
class HuberLossImpl : public Module {
 public:
  explicit HuberLossImpl(const HuberLossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  HuberLossOptions options;
};
XG_MODULE(HuberLoss);

/// Softmax cross-entropy: logits [N, C, *] and class indices [N, *] (or probabilities [N, C, *]) -> scalar.
/// The class weight is registered as the buffer "weight" (so to(dtype) converts it).
class CrossEntropyLossImpl : public Module {
 public:
  explicit CrossEntropyLossImpl(const CrossEntropyLossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  CrossEntropyLossOptions options;
  Tensor weight;  ///< [C] or undefined
};
XG_MODULE(CrossEntropyLoss);

/// Negative log-likelihood: log-probabilities [N, C, *] and class indices [N, *] -> scalar.
class NLLLossImpl : public Module {
 public:
  explicit NLLLossImpl(const NLLLossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  NLLLossOptions options;
  Tensor weight;  ///< [C] or undefined (buffer "weight")
};
XG_MODULE(NLLLoss);

/// Binary cross-entropy on probabilities: (input in [0, 1], target) of the same shape -> scalar.
class BCELossImpl : public Module {
 public:
  explicit BCELossImpl(const BCELossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  BCELossOptions options;
  Tensor weight;  ///< broadcastable to the input, or undefined (buffer "weight")
};
XG_MODULE(BCELoss);

/// Binary cross-entropy on logits (sigmoid folded in, stable at any magnitude): same shapes -> scalar.
class BCEWithLogitsLossImpl : public Module {
 public:
  explicit BCEWithLogitsLossImpl(const BCEWithLogitsLossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  BCEWithLogitsLossOptions options;
  Tensor weight;      ///< or undefined (buffer "weight")
  Tensor pos_weight;  ///< [C] or undefined (buffer "pos_weight")
};
XG_MODULE(BCEWithLogitsLoss);

/// Kullback-Leibler divergence: log-probabilities and (log-)probabilities of the same shape -> scalar.
class KLDivLossImpl : public Module {
 public:
  explicit KLDivLossImpl(const KLDivLossOptions& options = {});
  /// (input, target) -> the reduced loss (0-D), or per-element losses with reduction "none".
  Tensor forward(const Tensor& input, const Tensor& target);
  std::string extra_repr() const override;
  KLDivLossOptions options;
};
XG_MODULE(KLDivLoss);

// ---- regularisation --------------------------------------------------------------------------------
/// Sum of squared parameter elements (a 0-D tensor, differentiable). Biases -- parameters named "bias"
/// or ending in ".bias" -- are left out unless include_biases. Add lambda / 2 * l2_penalty(model) to a
/// loss for L2 regularisation (weight decay).
Tensor l2_penalty(const Module& module, bool include_biases = false);
/// Sum of absolute parameter values, biases left out unless include_biases (L1 regularisation).
Tensor l1_penalty(const Module& module, bool include_biases = false);

}  // namespace xg::nn

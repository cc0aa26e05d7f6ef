#pragma once
/// Normalisation layers: BatchNorm1d/2d (a fused primitive op), LayerNorm and GroupNorm (composite).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Options of BatchNorm1d/2d: num_features (C), eps (1e-5), momentum (0.1; nullopt = cumulative
/// moving average over num_batches_tracked), affine (learnable weight/bias, true), track_running_stats (true).
struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT: implicit, as torch
  BatchNormOptions& num_features(int64_t value) { num_features_ = value; return *this; }
  BatchNormOptions& eps(double value) { eps_ = value; return *this; }
  BatchNormOptions& momentum(std::optional<double> value) { momentum_ = value; return *this; }
  BatchNormOptions& affine(bool value) { affine_ = value; return *this; }
  BatchNormOptions& track_running_stats(bool value) { track_running_stats_ = value; return *this; }
  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true, track_running_stats_ = true;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

/// What BatchNorm1d and BatchNorm2d share; they differ only in the input ranks they accept.
/// Parameters weight [C] (ones), bias [C] (zeros); buffers running_mean [C] (zeros), running_var [C]
/// (ones), num_batches_tracked (int64 scalar) -- PyTorch's names, so state dicts line up.
class BatchNormImplBase : public Module {
 public:
  explicit BatchNormImplBase(const BatchNormOptions& options);
  /// [N, C, *] -> same shape. Training: batch statistics (biased variance) and a running-stat update
  /// (unbiased variance); eval: running statistics (batch statistics if !track_running_stats).
  Tensor forward(const Tensor& input);
  /// running_mean = 0, running_var = 1, num_batches_tracked = 0.
  void reset_running_stats();
  /// reset_running_stats() and weight = 1, bias = 0.
  void reset_parameters();
  std::string extra_repr() const override;

  BatchNormOptions options;
  Tensor weight;               ///< [C], undefined unless affine
  Tensor bias;                 ///< [C], undefined unless affine
  Tensor running_mean;         ///< [C], undefined unless track_running_stats
  Tensor running_var;          ///< [C], undefined unless track_running_stats
  Tensor num_batches_tracked;  ///< int64 scalar, undefined unless track_running_stats

 protected:
  /// Throws unless the input's rank suits the layer.
  virtual void check_input_dim(const Tensor& input) const = 0;
};

/// Batch normalisation over [N, C] or [N, C, L] (statistics per channel C over N and L).
class BatchNorm1dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm1dImpl(const BatchNorm1dOptions& options) : BatchNormImplBase(options) {}

 protected:
  void check_input_dim(const Tensor& input) const override;
};
XG_MODULE(BatchNorm1d);

/// Batch normalisation over [N, C, H, W] (statistics per channel C over N, H and W).
class BatchNorm2dImpl : public BatchNormImplBase {
 public:
  explicit BatchNorm2dImpl(const BatchNorm2dOptions& options) : BatchNormImplBase(options) {}

 protected:
  void check_input_dim(const Tensor& input) const override;
};
XG_MODULE(BatchNorm2d);

/// Options of LayerNorm: normalized_shape (the trailing dims normalised over), eps (1e-5),
/// elementwise_affine (learnable weight/bias of normalized_shape, true).
struct LayerNormOptions {
  LayerNormOptions(std::vector<int64_t> normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}  // NOLINT
  LayerNormOptions& normalized_shape(std::vector<int64_t> value) { normalized_shape_ = std::move(value); return *this; }
  LayerNormOptions& eps(double value) { eps_ = value; return *this; }
  LayerNormOptions& elementwise_affine(bool value) { elementwise_affine_ = value; return *this; }
  const std::vector<int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }

 private:
  std::vector<int64_t> normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

/// Normalises each sample over its trailing normalized_shape dims: [*, normalized_shape] -> same shape.
class LayerNormImpl : public Module {
 public:
  explicit LayerNormImpl(const LayerNormOptions& options);
  /// [*, normalized_shape...] -> same shape.
  Tensor forward(const Tensor& input);
  /// weight = 1, bias = 0.
  void reset_parameters();
  std::string extra_repr() const override;

  LayerNormOptions options;
  Tensor weight;  ///< normalized_shape (ones), undefined unless elementwise_affine
  Tensor bias;    ///< normalized_shape (zeros), undefined unless elementwise_affine
};
XG_MODULE(LayerNorm);

/// Options of GroupNorm: num_groups, num_channels (divisible by num_groups), eps (1e-5), affine (true).
struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels) : num_groups_(num_groups), num_channels_(num_channels) {}
  GroupNormOptions& num_groups(int64_t value) { num_groups_ = value; return *this; }
  GroupNormOptions& num_channels(int64_t value) { num_channels_ = value; return *this; }
  GroupNormOptions& eps(double value) { eps_ = value; return *this; }
  GroupNormOptions& affine(bool value) { affine_ = value; return *this; }
  int64_t num_groups() const { return num_groups_; }
  int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }

 private:
  int64_t num_groups_, num_channels_;
  double eps_ = 1e-5;
  bool affine_ = true;
};

/// Normalises each sample over groups of C / num_groups channels (and all spatial positions), then
/// applies a per-channel affine: [N, C, *] -> same shape.
class GroupNormImpl : public Module {
 public:
  GroupNormImpl(int64_t num_groups, int64_t num_channels) : GroupNormImpl(GroupNormOptions(num_groups, num_channels)) {}
  explicit GroupNormImpl(const GroupNormOptions& options);
  /// [N, C, *] -> same shape.
  Tensor forward(const Tensor& input);
  /// weight = 1, bias = 0.
  void reset_parameters();
  std::string extra_repr() const override;

  GroupNormOptions options;
  Tensor weight;  ///< [C] (ones), undefined unless affine
  Tensor bias;    ///< [C] (zeros), undefined unless affine
};
XG_MODULE(GroupNorm);

namespace functional {

/// Options of functional batch_norm: weight, bias ([C], optional), training (false: use the running
/// statistics), momentum (the running-average factor, 0.1), eps (1e-5).
struct BatchNormFuncOptions {
  BatchNormFuncOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  BatchNormFuncOptions& bias(Tensor value) { bias_ = std::move(value); return *this; }
  BatchNormFuncOptions& training(bool value) { training_ = value; return *this; }
  BatchNormFuncOptions& momentum(double value) { momentum_ = value; return *this; }
  BatchNormFuncOptions& eps(double value) { eps_ = value; return *this; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  bool training() const { return training_; }
  double momentum() const { return momentum_; }
  double eps() const { return eps_; }

 private:
  Tensor weight_, bias_;
  bool training_ = false;
  double momentum_ = 0.1;
  double eps_ = 1e-5;
};

/// The fused batch-norm primitive: input [N, C, *] -> same shape, y = (x - mean) / sqrt(var + eps) *
/// weight + bias per channel. training: batch statistics, and running_mean/running_var ([C], may be
/// undefined) are updated in place: r = (1 - momentum) r + momentum s, with the unbiased batch variance.
/// Not training: running statistics (required). Differentiable twice w.r.t. input, weight and bias.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const BatchNormFuncOptions& options = {});

/// Options of functional layer_norm: normalized_shape, weight, bias (normalized_shape, optional), eps.
struct LayerNormFuncOptions {
  LayerNormFuncOptions(std::vector<int64_t> normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}  // NOLINT
  LayerNormFuncOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  LayerNormFuncOptions& bias(Tensor value) { bias_ = std::move(value); return *this; }
  LayerNormFuncOptions& eps(double value) { eps_ = value; return *this; }
  const std::vector<int64_t>& normalized_shape() const { return normalized_shape_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  double eps() const { return eps_; }

 private:
  std::vector<int64_t> normalized_shape_;
  Tensor weight_, bias_;
  double eps_ = 1e-5;
};

/// [*, normalized_shape...] -> same shape (biased variance over the trailing dims).
Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options);

/// Options of functional group_norm: num_groups, weight, bias ([C], optional), eps.
struct GroupNormFuncOptions {
  GroupNormFuncOptions(int64_t num_groups) : num_groups_(num_groups) {}  // NOLINT
  GroupNormFuncOptions& weight(Tensor value) { weight_ = std::move(value); return *this; }
  GroupNormFuncOptions& bias(Tensor value) { bias_ = std::move(value); return *this; }
  GroupNormFuncOptions& eps(double value) { eps_ = value; return *this; }
  int64_t num_groups() const { return num_groups_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  double eps() const { return eps_; }

 private:
  int64_t num_groups_;
  Tensor weight_, bias_;
  double eps_ = 1e-5;
};

/// [N, C, *] -> same shape.
Tensor group_norm(const Tensor& input, const GroupNormFuncOptions& options);

}  // namespace functional

}  // namespace xg::nn

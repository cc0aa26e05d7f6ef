#pragma once
/// Linear (fully connected) layer and the shape helpers Flatten, Unflatten and Identity.
#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Options of Linear: in_features, out_features, bias (default true).
struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& in_features(int64_t value) { in_features_ = value; return *this; }
  LinearOptions& out_features(int64_t value) { out_features_ = value; return *this; }
  LinearOptions& bias(bool value) { bias_ = value; return *this; }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  bool bias() const { return bias_; }

 private:
  int64_t in_features_, out_features_;
  bool bias_ = true;
};

/// y = x W^T + b: x [..., in_features] -> [..., out_features]; weight [out, in], bias [out].
/// PyTorch's initialisation: W ~ kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), b likewise.
class LinearImpl : public Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features) : LinearImpl(LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const LinearOptions& options);
  /// x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& input);
  /// Re-draws weight and bias with the default initialisation.
  void reset_parameters();
  std::string extra_repr() const override;

  LinearOptions options;
  Tensor weight;  ///< [out_features, in_features]
  Tensor bias;    ///< [out_features], undefined when options.bias() is false
};
XG_MODULE(Linear);

/// Options of Flatten: start_dim (default 1), end_dim (default -1).
struct FlattenOptions {
  FlattenOptions& start_dim(int64_t value) { start_dim_ = value; return *this; }
  FlattenOptions& end_dim(int64_t value) { end_dim_ = value; return *this; }
  int64_t start_dim() const { return start_dim_; }
  int64_t end_dim() const { return end_dim_; }

 private:
  int64_t start_dim_ = 1, end_dim_ = -1;
};

/// Merges dims start_dim..end_dim: [N, C, H, W] -> [N, C*H*W] with the defaults.
class FlattenImpl : public Module {
 public:
  explicit FlattenImpl(const FlattenOptions& options = {});
  /// x [d0, ..., dn] -> the dims start_dim..end_dim merged into one.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  FlattenOptions options;
};
XG_MODULE(Flatten);

/// Options of Unflatten: the dim to expand and the sizes it becomes (one may be -1).
struct UnflattenOptions {
  UnflattenOptions(int64_t dim, std::vector<int64_t> sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  UnflattenOptions& dim(int64_t value) { dim_ = value; return *this; }
  UnflattenOptions& sizes(std::vector<int64_t> value) { sizes_ = std::move(value); return *this; }
  int64_t dim() const { return dim_; }
  const std::vector<int64_t>& sizes() const { return sizes_; }

 private:
  int64_t dim_;
  std::vector<int64_t> sizes_;
};

/// Splits one dim into several: Unflatten(1, {1, 28, 28}) maps [N, 784] -> [N, 1, 28, 28].
class UnflattenImpl : public Module {
 public:
  UnflattenImpl(int64_t dim, std::vector<int64_t> sizes) : UnflattenImpl(UnflattenOptions(dim, std::move(sizes))) {}
  explicit UnflattenImpl(const UnflattenOptions& options);
  /// x [..., d, ...] -> [..., sizes..., ...] with prod(sizes) == d.
  Tensor forward(const Tensor& input);
  std::string extra_repr() const override;

  UnflattenOptions options;
};
XG_MODULE(Unflatten);

/// Returns its input unchanged (a placeholder, e.g. for a removed layer).
class IdentityImpl : public Module {
 public:
  IdentityImpl() = default;
  /// x -> x (the same tensor).
  Tensor forward(const Tensor& input);
};
XG_MODULE(Identity);

namespace functional {
/// x [..., in] * weight [out, in]^T + bias [out] -> [..., out] (xg::linear: one GEMM, bias folded in).
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = {});
}  // namespace functional

}  // namespace xg::nn

#include "xgrad/nn/dropout.hpp"

#include <cmath>

namespace xg::nn {

namespace {

void check_probability(const char* op, double p) {
  XG_CHECK(p >= 0.0 && p <= 1.0, "{}: dropout probability has to be between 0 and 1, but got {}", op, p);
}

/// A mask of `shape` whose elements are 1 / (1 - p) with probability 1 - p and 0 otherwise: the
/// uniform draws of xg::rand turned into the scaled keep mask in place (one buffer, one pass).
Tensor scaled_keep_mask(const Shape& shape, Dtype dtype, double p) {
  Tensor mask = xg::rand(shape, dtype);
  const double keep = 1.0 - p, scale = 1.0 / keep;
  auto fill = [&](auto&& array) {
    using T = typename std::decay_t<decltype(array)>::value_type;
    const T threshold = static_cast<T>(keep), kept = static_cast<T>(scale);
    for (T& v : array) v = v < threshold ? kept : T(0);
  };
  if (dtype == kFloat32) fill(mask.array<float>());
  else fill(mask.array<double>());
  return mask;
}

Tensor dropout_with_mask_shape(const char* op, const Tensor& input, const Shape& mask_shape, double p, bool training) {
  check_probability(op, p);
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", op);
  XG_CHECK(input.is_floating_point(), "{}: expected a float32 or float64 input, got {}", op, input.dtype());
  if (!training || p == 0.0) return input;
  // p = 1 drops everything; multiplying by zero (not returning fresh zeros) keeps the input in the
  // graph with a zero gradient, as PyTorch does.
  if (p == 1.0) return mul(input, zeros({}, input.dtype()));
  return mul(input, scaled_keep_mask(mask_shape, input.dtype(), p));
}

Shape channel_mask_shape(const char* op, const Tensor& input) {
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", op);
  XG_CHECK(input.dim() == 3 || input.dim() == 4, "{}: expected a 4-D input [N, C, H, W] or a 3-D unbatched input [C, H, W], got shape {}",
           op, shape_string(input.shape()));
  Shape mask = input.shape();
  // One draw per channel: the trailing two (spatial) dims become 1 and broadcast.
  mask[mask.size() - 1] = 1;
  mask[mask.size() - 2] = 1;
  return mask;
}

}  // namespace

namespace functional {
Tensor dropout(const Tensor& input, double p, bool training) {
  XG_CHECK(input.defined(), "dropout: the input tensor is undefined");
  return dropout_with_mask_shape("dropout", input, input.shape(), p, training);
}
Tensor dropout(const Tensor& input, const DropoutFuncOptions& options) { return dropout(input, options.p(), options.training()); }

Tensor dropout2d(const Tensor& input, double p, bool training) {
  check_probability("dropout2d", p);
  return dropout_with_mask_shape("dropout2d", input, channel_mask_shape("dropout2d", input), p, training);
}
Tensor dropout2d(const Tensor& input, const Dropout2dFuncOptions& options) { return dropout2d(input, options.p(), options.training()); }
}  // namespace functional

DropoutImpl::DropoutImpl(const DropoutOptions& options_) : options(options_) { check_probability("Dropout", options.p()); }

Tensor DropoutImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "Dropout: the input tensor is undefined");
  return dropout_with_mask_shape("Dropout", input, input.shape(), options.p(), is_training());
}

std::string DropoutImpl::extra_repr() const { return fmt::format("p={}", options.p()); }

Dropout2dImpl::Dropout2dImpl(const Dropout2dOptions& options_) : options(options_) { check_probability("Dropout2d", options.p()); }

Tensor Dropout2dImpl::forward(const Tensor& input) {
  return dropout_with_mask_shape("Dropout2d", input, channel_mask_shape("Dropout2d", input), options.p(), is_training());
}

std::string Dropout2dImpl::extra_repr() const { return fmt::format("p={}", options.p()); }

}  // namespace xg::nn

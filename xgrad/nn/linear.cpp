#include "xgrad/nn/linear.hpp"

#include <cmath>

#include "xgrad/nn/init.hpp"

namespace xg::nn {

// ---- Linear ----------------------------------------------------------------------------------------
LinearImpl::LinearImpl(const LinearOptions& options_) : options(options_) {
  XG_CHECK(options.in_features() >= 0 && options.out_features() >= 0,
           "Linear: in_features and out_features must be non-negative, got in_features = {}, out_features = {}",
           options.in_features(), options.out_features());
  weight = register_parameter("weight", empty({options.out_features(), options.in_features()}));
  if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}));
  reset_parameters();
}

void LinearImpl::reset_parameters() {
  if (weight.numel() > 0) init::kaiming_uniform_(weight, std::sqrt(5.0));  // = U(-1/sqrt(in), 1/sqrt(in))
  if (bias.defined()) {
    const double bound = options.in_features() > 0 ? 1.0 / std::sqrt(static_cast<double>(options.in_features())) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor LinearImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "Linear: the input tensor is undefined");
  XG_CHECK(input.dim() >= 1 && input.size(-1) == options.in_features(),
           "Linear: expected input with last dimension {} (in_features), got shape {}", options.in_features(),
           shape_string(input.shape()));
  XG_CHECK(input.dtype() == weight.dtype(), "Linear: expected a {} input (the dtype of the parameters), got {}", weight.dtype(),
           input.dtype());
  return xg::linear(input, weight, bias);
}

std::string LinearImpl::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options.in_features(), options.out_features(), options.bias());
}

// ---- Flatten -----------------------------------------------------------------------------------------
FlattenImpl::FlattenImpl(const FlattenOptions& options_) : options(options_) {}

Tensor FlattenImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "Flatten: the input tensor is undefined");
  return xg::flatten(input, options.start_dim(), options.end_dim());
}

std::string FlattenImpl::extra_repr() const { return fmt::format("start_dim={}, end_dim={}", options.start_dim(), options.end_dim()); }

// ---- Unflatten ---------------------------------------------------------------------------------------
UnflattenImpl::UnflattenImpl(const UnflattenOptions& options_) : options(options_) {
  XG_CHECK(!options.sizes().empty(), "Unflatten: sizes must not be empty");
  int inferred = 0;
  for (int64_t s : options.sizes()) {
    XG_CHECK(s >= 0 || s == -1, "Unflatten: sizes must be non-negative or -1, got {}", fmt::format("{}", options.sizes()));
    inferred += s == -1;
  }
  XG_CHECK(inferred <= 1, "Unflatten: only one size can be inferred (-1), got {}", fmt::format("{}", options.sizes()));
}

Tensor UnflattenImpl::forward(const Tensor& input) {
  XG_CHECK(input.defined(), "Unflatten: the input tensor is undefined");
  const Shape shape = input.shape();
  const int64_t ndim = input.dim();
  XG_CHECK(options.dim() >= -ndim && options.dim() < ndim, "Unflatten: dim {} is out of range for an input of shape {}", options.dim(),
           shape_string(shape));
  const int64_t d = options.dim() < 0 ? options.dim() + ndim : options.dim();
  int64_t known = 1;
  bool has_inferred = false;
  for (int64_t s : options.sizes()) {
    if (s == -1) has_inferred = true;
    else known *= s;
  }
  const bool fits = has_inferred ? (known != 0 && shape[d] % known == 0) : known == shape[d];
  XG_CHECK(fits, "Unflatten: cannot unflatten dimension {} of size {} (input shape {}) into sizes {}", d, shape[d], shape_string(shape),
           fmt::format("{}", options.sizes()));
  Shape target(shape.begin(), shape.begin() + d);
  for (int64_t s : options.sizes()) target.push_back(s == -1 ? shape[d] / std::max<int64_t>(known, 1) : s);
  target.insert(target.end(), shape.begin() + d + 1, shape.end());
  return xg::reshape(input, target);
}

std::string UnflattenImpl::extra_repr() const {
  return fmt::format("dim={}, unflattened_size={}", options.dim(), fmt::format("{}", options.sizes()));
}

// ---- Identity ----------------------------------------------------------------------------------------
Tensor IdentityImpl::forward(const Tensor& input) { return input; }

namespace functional {
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) { return xg::linear(input, weight, bias); }
}  // namespace functional

}  // namespace xg::nn

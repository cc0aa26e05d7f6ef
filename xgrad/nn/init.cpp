// Parameter initialisers. Values are drawn in double from the global generator and rounded to the
// tensor's dtype, so a float32 and a float64 model seeded alike start from the same numbers.
#include "xgrad/nn/init.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/random.hpp"

namespace xg::nn::init {

namespace {

void check_floating(const char* op, const Tensor& tensor) {
  XG_CHECK(tensor.defined(), "init::{}: the tensor is undefined", op);
  XG_CHECK(tensor.is_floating_point(), "init::{}: expected a float32 or float64 tensor, got {}", op, tensor.dtype());
}

/// Overwrites every element with value_at(flat index) and bumps the version counter (an in-place
/// change that a recorded graph must notice).
template <class F>
Tensor fill_elements(const char* op, Tensor tensor, F value_at) {
  check_floating(op, tensor);
  NoGradGuard no_grad;
  // A view (w.narrow(0, 0, 2), w[0], w.t()) is filled through a contiguous scratch and copy_, so
  // initialising part of a parameter writes into the parameter itself.
  Tensor target = tensor.is_contiguous() ? tensor : empty(tensor.shape(), tensor.dtype());
  auto write = [&](auto&& array) {
    using T = typename std::decay_t<decltype(array)>::value_type;
    T* data = array.data();
    const int64_t n = static_cast<int64_t>(array.size());
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(value_at(i));
  };
  if (tensor.dtype() == kFloat32) write(target.array<float>());
  else write(target.array<double>());
  if (target.is_same(tensor)) ++tensor.impl()->storage->version;
  else tensor.copy_(target);
  return tensor;
}

/// Fills with draws of `distribution` from the global generator, in row-major order.
template <class Distribution>
Tensor fill_random(const char* op, Tensor tensor, Distribution distribution) {
  check_floating(op, tensor);
  auto lock = random::lock_generator();
  auto& generator = random::generator();
  return fill_elements(op, std::move(tensor), [&](int64_t) { return distribution(generator); });
}

int64_t fan_for_mode(const char* op, const Tensor& tensor, const std::string& mode) {
  XG_CHECK(mode == "fan_in" || mode == "fan_out", "init::{}: mode must be \"fan_in\" or \"fan_out\", got \"{}\"", op, mode);
  XG_CHECK(tensor.defined() && tensor.dim() >= 2,
           "init::{}: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (got shape {})", op,
           tensor.defined() ? shape_string(tensor.shape()) : std::string("undefined"));
  auto [fan_in, fan_out] = _calculate_fan_in_and_fan_out(tensor);
  const int64_t fan = mode == "fan_in" ? fan_in : fan_out;
  XG_CHECK(fan > 0, "init::{}: cannot initialise a tensor with zero elements (shape {})", op, shape_string(tensor.shape()));
  return fan;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, std::optional<double> param) {
  static const char* kUnitGain[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                                    "conv_transpose3d", "sigmoid"};
  for (const char* name : kUnitGain)
    if (nonlinearity == name) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = param.value_or(0.01);
    return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4.0;  // PyTorch's value, chosen for self-normalising nets
  XG_ERROR(
      "init::calculate_gain: unsupported nonlinearity \"{}\" (expected linear, conv1d, conv2d, conv3d, conv_transpose1d, "
      "conv_transpose2d, conv_transpose3d, sigmoid, tanh, relu, leaky_relu or selu)",
      nonlinearity);
}

std::pair<int64_t, int64_t> _calculate_fan_in_and_fan_out(const Tensor& tensor) {
  XG_CHECK(tensor.defined(), "init::_calculate_fan_in_and_fan_out: the tensor is undefined");
  XG_CHECK(tensor.dim() >= 2,
           "init::_calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor with fewer than 2 "
           "dimensions (got shape {})",
           shape_string(tensor.shape()));
  const Shape shape = tensor.shape();
  int64_t receptive_field = 1;
  for (size_t d = 2; d < shape.size(); ++d) receptive_field *= shape[d];
  return {shape[1] * receptive_field, shape[0] * receptive_field};
}

Tensor uniform_(Tensor tensor, double a, double b) {
  XG_CHECK(a <= b, "init::uniform_: expected a <= b, got a = {}, b = {}", a, b);
  if (a == b) return constant_(std::move(tensor), a);
  return fill_random("uniform_", std::move(tensor), std::uniform_real_distribution<double>(a, b));
}

Tensor normal_(Tensor tensor, double mean, double std) {
  XG_CHECK(std >= 0, "init::normal_: expected std >= 0, got {}", std);
  if (std == 0) return constant_(std::move(tensor), mean);
  return fill_random("normal_", std::move(tensor), std::normal_distribution<double>(mean, std));
}

Tensor constant_(Tensor tensor, double value) {
  return fill_elements("constant_", std::move(tensor), [value](int64_t) { return value; });
}

Tensor zeros_(Tensor tensor) { return constant_(std::move(tensor), 0.0); }
Tensor ones_(Tensor tensor) { return constant_(std::move(tensor), 1.0); }

Tensor eye_(Tensor tensor) {
  check_floating("eye_", tensor);
  XG_CHECK(tensor.dim() == 2, "init::eye_: only 2-D tensors are supported, got shape {}", shape_string(tensor.shape()));
  const int64_t cols = tensor.size(1);
  return fill_elements("eye_", std::move(tensor), [cols](int64_t i) { return i / cols == i % cols ? 1.0 : 0.0; });
}

Tensor xavier_uniform_(Tensor tensor, double gain) {
  check_floating("xavier_uniform_", tensor);
  const int64_t fan_in = fan_for_mode("xavier_uniform_", tensor, "fan_in");
  const int64_t fan_out = fan_for_mode("xavier_uniform_", tensor, "fan_out");
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor xavier_normal_(Tensor tensor, double gain) {
  check_floating("xavier_normal_", tensor);
  const int64_t fan_in = fan_for_mode("xavier_normal_", tensor, "fan_in");
  const int64_t fan_out = fan_for_mode("xavier_normal_", tensor, "fan_out");
  return normal_(std::move(tensor), 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

Tensor kaiming_uniform_(Tensor tensor, double a, const std::string& mode, const std::string& nonlinearity) {
  check_floating("kaiming_uniform_", tensor);
  const int64_t fan = fan_for_mode("kaiming_uniform_", tensor, mode);
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
  const double bound = std::sqrt(3.0) * std;  // U(-b, b) has standard deviation b / sqrt(3)
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor kaiming_normal_(Tensor tensor, double a, const std::string& mode, const std::string& nonlinearity) {
  check_floating("kaiming_normal_", tensor);
  const int64_t fan = fan_for_mode("kaiming_normal_", tensor, mode);
  return normal_(std::move(tensor), 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan)));
}

Tensor orthogonal_(Tensor tensor, double gain) {
  check_floating("orthogonal_", tensor);
  XG_CHECK(tensor.dim() >= 2, "init::orthogonal_: only tensors with 2 or more dimensions are supported, got shape {}",
           shape_string(tensor.shape()));
  if (tensor.numel() == 0) return tensor;
  const int64_t rows = tensor.size(0), cols = tensor.numel() / rows;
  // Work on the tall orientation [tall, narrow]; the Gaussian draws fill [rows, cols] row-major as
  // PyTorch's normal_ would, then get transposed when rows < cols (PyTorch's flattened.t_()).
  const bool transposed = rows < cols;
  const int64_t tall = transposed ? cols : rows, narrow = transposed ? rows : cols;
  std::vector<double> gaussian(static_cast<size_t>(rows * cols));
  {
    auto lock = random::lock_generator();
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double& v : gaussian) v = normal(random::generator());
  }
  // columns[j] = column j of the tall matrix, contiguous, for Gram-Schmidt.
  std::vector<std::vector<double>> columns(static_cast<size_t>(narrow), std::vector<double>(static_cast<size_t>(tall)));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = gaussian[static_cast<size_t>(r * cols + c)];
      if (transposed) columns[r][c] = v;
      else columns[c][r] = v;
    }
  // Modified Gram-Schmidt, each projection applied twice ("twice is enough", Kahan/Parlett) so Q is
  // orthogonal to double precision. It yields the QR factor with a positive diagonal of R, which is
  // exactly PyTorch's Q * sign(diag(R)).
  for (int64_t j = 0; j < narrow; ++j) {
    std::vector<double>& v = columns[j];
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t k = 0; k < j; ++k) {
        const std::vector<double>& q = columns[k];
        double projection = 0;
        for (int64_t i = 0; i < tall; ++i) projection += q[i] * v[i];
        for (int64_t i = 0; i < tall; ++i) v[i] -= projection * q[i];
      }
    double length = 0;
    for (double x : v) length += x * x;
    length = std::sqrt(length);
    XG_CHECK(length > 0, "init::orthogonal_: the random matrix was rank deficient (draw again)");
    for (double& x : v) x /= length;
  }
  return fill_elements("orthogonal_", std::move(tensor), [&](int64_t flat) {
    const int64_t r = flat / cols, c = flat % cols;
    // Element (r, c) of the result: Q[r][c] for a tall Q, Q^T[r][c] = Q[c][r] when transposed.
    return gain * (transposed ? columns[r][c] : columns[c][r]);
  });
}

Tensor normal_fan_in_(Tensor tensor) {
  check_floating("normal_fan_in_", tensor);
  const int64_t fan_in = fan_for_mode("normal_fan_in_", tensor, "fan_in");
  return normal_(std::move(tensor), 0.0, 1.0 / std::sqrt(static_cast<double>(fan_in)));
}

}  // namespace xg::nn::init

#pragma once
/// xg::nn::init: in-place parameter initialisers with PyTorch's names, defaults and formulas
/// (torch.nn.init). Each one writes under NoGradGuard, draws from the global generator (so
/// xg::manual_seed makes it reproducible) and returns the tensor it filled.
#include <optional>
#include <string>
#include <utility>

#include "xgrad/autograd/tensor.hpp"

namespace xg::nn::init {

/// The recommended gain for a nonlinearity: "linear", "conv1d/2d/3d", "conv_transpose1d/2d/3d",
/// "sigmoid" -> 1; "tanh" -> 5/3; "relu" -> sqrt(2); "leaky_relu" -> sqrt(2 / (1 + slope^2)) with
/// slope = param (default 0.01); "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, std::optional<double> param = std::nullopt);

/// (fan_in, fan_out) of a weight of >= 2 dims [out, in, k...]: (in * prod(k), out * prod(k)).
std::pair<int64_t, int64_t> _calculate_fan_in_and_fan_out(const Tensor& tensor);

/// U(a, b), any shape.
Tensor uniform_(Tensor tensor, double a = 0.0, double b = 1.0);
/// N(mean, std^2), any shape.
Tensor normal_(Tensor tensor, double mean = 0.0, double std = 1.0);
/// Every element = value.
Tensor constant_(Tensor tensor, double value);
Tensor zeros_(Tensor tensor);
Tensor ones_(Tensor tensor);
/// A 2-D tensor [n, m] set to the identity (ones on the main diagonal).
Tensor eye_(Tensor tensor);

/// Glorot: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)). Needs >= 2 dims.
Tensor xavier_uniform_(Tensor tensor, double gain = 1.0);
/// Glorot: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)). Needs >= 2 dims.
Tensor xavier_normal_(Tensor tensor, double gain = 1.0);

/// He: U(-bound, bound), bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a),
/// fan = fan_in or fan_out by mode ("fan_in" / "fan_out"). Needs >= 2 dims.
Tensor kaiming_uniform_(Tensor tensor, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
/// He: N(0, std^2), std = gain / sqrt(fan). Needs >= 2 dims.
Tensor kaiming_normal_(Tensor tensor, double a = 0.0, const std::string& mode = "fan_in",
                       const std::string& nonlinearity = "leaky_relu");

/// A (semi-)orthogonal matrix times gain: the tensor seen as [size(0), numel / size(0)] gets the Q of
/// the QR decomposition of a Gaussian matrix (signs fixed by diag(R), as PyTorch). Needs >= 2 dims.
Tensor orthogonal_(Tensor tensor, double gain = 1.0);

/// Nielsen's initialisation ("Neural Networks and Deep Learning", ch. 3): N(0, 1/fan_in), i.e.
/// std = 1 / sqrt(fan_in), so a neuron's weighted input has variance ~1 for unit inputs. Needs >= 2 dims.
Tensor normal_fan_in_(Tensor tensor);

}  // namespace xg::nn::init

#pragma once
/// The functional forms libtorch keeps in namespace torch (ATen's), with ATen's positional signatures, in
/// namespace xg: `xg::nll_loss(output, target, {}, xg::Reduction::Sum)`, `xg::max_pool2d(x, 2)`,
/// `xg::dropout(x, 0.5, is_training())`. They compute what the xg::nn::functional forms compute (the
/// options-struct spelling of torch::nn::functional), so a ported program keeps its calls as written.
#include <cstdint>
#include <optional>

#include "xgrad/autograd/array_ref.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg {

/// at::Reduction: how a loss reduces over the batch (an int64 in ATen's signatures).
namespace Reduction {
enum Reduction : int64_t { None = 0, Mean = 1, Sum = 2 };
}  // namespace Reduction

Tensor nll_loss(const Tensor& self, const Tensor& target, const Tensor& weight = {}, int64_t reduction = Reduction::Mean,
                int64_t ignore_index = -100);
Tensor cross_entropy_loss(const Tensor& self, const Tensor& target, const Tensor& weight = {}, int64_t reduction = Reduction::Mean,
                          int64_t ignore_index = -100, double label_smoothing = 0.0);
Tensor mse_loss(const Tensor& self, const Tensor& target, int64_t reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& self, const Tensor& target, int64_t reduction = Reduction::Mean);
Tensor binary_cross_entropy(const Tensor& self, const Tensor& target, const Tensor& weight = {}, int64_t reduction = Reduction::Mean);
Tensor binary_cross_entropy_with_logits(const Tensor& self, const Tensor& target, const Tensor& weight = {},
                                        const Tensor& pos_weight = {}, int64_t reduction = Reduction::Mean);
/// kernel_size, stride (empty: kernel_size), padding and dilation: one value or two.
Tensor max_pool2d(const Tensor& self, IntArrayRef kernel_size, IntArrayRef stride = {}, IntArrayRef padding = 0,
                  IntArrayRef dilation = 1, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& self, IntArrayRef kernel_size, IntArrayRef stride = {}, IntArrayRef padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true, std::optional<int64_t> divisor_override = std::nullopt);
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, IntArrayRef stride = 1, IntArrayRef padding = 0,
              IntArrayRef dilation = 1, int64_t groups = 1);
/// Zeroes elements with probability p and scales the rest by 1 / (1 - p) when train; identity otherwise.
Tensor dropout(const Tensor& input, double p, bool train);

}  // namespace xg

#include "xgrad/nn/torch_functions.hpp"

#include <string>

#include "xgrad/nn/conv.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/loss.hpp"
#include "xgrad/nn/pooling.hpp"

namespace xg {

namespace {
namespace F = nn::functional;

std::string reduction_name(const char* op, int64_t reduction) {
  switch (reduction) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    default: XG_ERROR("{}: reduction must be Reduction::None (0), Mean (1) or Sum (2), got {}", op, reduction);
  }
}

/// One value for both spatial dims or one per dim (ATen's IntArrayRef for a 2-D op).
nn::ExpandingArray<2> pair_of(const char* op, const char* what, IntArrayRef values) {
  XG_CHECK(values.size() == 1 || values.size() == 2, "{}: {} must be one value or two, got {}", op, what, fmt::format("{}", values.vec()));
  return values.size() == 1 ? nn::ExpandingArray<2>(values[0]) : nn::ExpandingArray<2>(std::vector<int64_t>{values[0], values[1]});
}
}  // namespace

Tensor nll_loss(const Tensor& self, const Tensor& target, const Tensor& weight, int64_t reduction, int64_t ignore_index) {
  return F::nll_loss(self, target,
                     F::NLLLossFuncOptions().weight(weight).reduction(reduction_name("nll_loss", reduction)).ignore_index(ignore_index));
}

Tensor cross_entropy_loss(const Tensor& self, const Tensor& target, const Tensor& weight, int64_t reduction, int64_t ignore_index,
                          double label_smoothing) {
  return F::cross_entropy(self, target,
                          F::CrossEntropyFuncOptions()
                              .weight(weight)
                              .reduction(reduction_name("cross_entropy_loss", reduction))
                              .ignore_index(ignore_index)
                              .label_smoothing(label_smoothing));
}

Tensor mse_loss(const Tensor& self, const Tensor& target, int64_t reduction) {
  return F::mse_loss(self, target, F::MSELossFuncOptions(reduction_name("mse_loss", reduction)));
}

Tensor l1_loss(const Tensor& self, const Tensor& target, int64_t reduction) {
  return F::l1_loss(self, target, F::L1LossFuncOptions(reduction_name("l1_loss", reduction)));
}

Tensor binary_cross_entropy(const Tensor& self, const Tensor& target, const Tensor& weight, int64_t reduction) {
  return F::binary_cross_entropy(
      self, target, F::BinaryCrossEntropyFuncOptions().weight(weight).reduction(reduction_name("binary_cross_entropy", reduction)));
}

Tensor binary_cross_entropy_with_logits(const Tensor& self, const Tensor& target, const Tensor& weight, const Tensor& pos_weight,
                                        int64_t reduction) {
  return F::binary_cross_entropy_with_logits(self, target,
                                             F::BinaryCrossEntropyWithLogitsFuncOptions()
                                                 .weight(weight)
                                                 .pos_weight(pos_weight)
                                                 .reduction(reduction_name("binary_cross_entropy_with_logits", reduction)));
}

Tensor max_pool2d(const Tensor& self, IntArrayRef kernel_size, IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                  bool ceil_mode) {
  const nn::ExpandingArray<2> kernel = pair_of("max_pool2d", "kernel_size", kernel_size);
  return F::max_pool2d(self, kernel, stride.empty() ? kernel : pair_of("max_pool2d", "stride", stride),
                       pair_of("max_pool2d", "padding", padding), pair_of("max_pool2d", "dilation", dilation), ceil_mode);
}

Tensor avg_pool2d(const Tensor& self, IntArrayRef kernel_size, IntArrayRef stride, IntArrayRef padding, bool ceil_mode,
                  bool count_include_pad, std::optional<int64_t> divisor_override) {
  const nn::ExpandingArray<2> kernel = pair_of("avg_pool2d", "kernel_size", kernel_size);
  return F::avg_pool2d(self, kernel, stride.empty() ? kernel : pair_of("avg_pool2d", "stride", stride),
                       pair_of("avg_pool2d", "padding", padding), ceil_mode, count_include_pad, divisor_override);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
              int64_t groups) {
  return F::conv2d(input, weight, bias, pair_of("conv2d", "stride", stride), nn::ConvPadding<2>(pair_of("conv2d", "padding", padding)),
                   pair_of("conv2d", "dilation", dilation), groups);
}

Tensor dropout(const Tensor& input, double p, bool train) { return F::dropout(input, p, train); }

}  // namespace xg

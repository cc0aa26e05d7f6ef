#pragma once
/// Pooling layers and their functional forms: MaxPool1d/2d (optionally with PyTorch's int64
/// indices), AvgPool2d, AdaptiveAvgPool2d, LPPool2d. Batched [N, C, H, W] and unbatched [C, H, W]
/// inputs (1-D: [N, C, L] and [C, L]). Max pooling's backward is a differentiable scatter to the
/// argmax whose own backward gathers by the same indices; average pooling's backward is its adjoint
/// window sum, whose backward is average pooling again, so gradients of every order follow.
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "xgrad/nn/conv.hpp"  // ExpandingArray
#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// An ExpandingArray or nothing (Python's None), for a pooling stride that defaults to the kernel
/// size: accepts std::nullopt, `2`, `{2, 1}`, an ExpandingArray or a std::optional of one.
template <size_t D>
class OptionalExpandingArray {
 public:
  OptionalExpandingArray() = default;
  OptionalExpandingArray(std::nullopt_t) {}  // NOLINT: implicit, as None
  OptionalExpandingArray(int64_t value) : value_(ExpandingArray<D>(value)) {}  // NOLINT
  OptionalExpandingArray(std::initializer_list<int64_t> values) : value_(ExpandingArray<D>(values)) {}
  OptionalExpandingArray(ExpandingArray<D> value) : value_(value) {}  // NOLINT
  OptionalExpandingArray(std::optional<ExpandingArray<D>> value) : value_(value) {}  // NOLINT
  const std::optional<ExpandingArray<D>>& get() const { return value_; }

 private:
  std::optional<ExpandingArray<D>> value_;
};

/// Options of MaxPool1d / MaxPool2d: kernel_size, stride (default kernel_size), padding (0; at most
/// half the kernel), dilation (1), ceil_mode (false).
template <size_t D>
struct MaxPoolOptions {
  MaxPoolOptions(ExpandingArray<D> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT: as PyTorch
  MaxPoolOptions& kernel_size(ExpandingArray<D> value) { kernel_size_ = value; return *this; }
  MaxPoolOptions& stride(ExpandingArray<D> value) { stride_ = value; return *this; }
  MaxPoolOptions& padding(ExpandingArray<D> value) { padding_ = value; return *this; }
  MaxPoolOptions& dilation(ExpandingArray<D> value) { dilation_ = value; return *this; }
  MaxPoolOptions& ceil_mode(bool value) { ceil_mode_ = value; return *this; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ExpandingArray<D>& padding() const { return padding_; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }

 private:
  ExpandingArray<D> kernel_size_, stride_;
  ExpandingArray<D> padding_ = 0;
  ExpandingArray<D> dilation_ = 1;
  bool ceil_mode_ = false;
};
using MaxPool1dOptions = MaxPoolOptions<1>;
using MaxPool2dOptions = MaxPoolOptions<2>;

/// The shared body of MaxPool1d and MaxPool2d.
template <size_t D>
class MaxPoolNdImpl : public Module {
 public:
  explicit MaxPoolNdImpl(const MaxPoolOptions<D>& options);
  /// D = 2: [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'] (D = 1: [.., L] -> [.., L']).
  Tensor forward(const Tensor& input);
  /// (values, int64 indices into each input plane's flattened H*W (or L)), as return_indices=True.
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& input);
  /// "kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False".
  std::string extra_repr() const override;

  MaxPoolOptions<D> options;
};

/// 1-D max pooling: [N, C, L] or [C, L] -> [N, C, L'] or [C, L'].
class MaxPool1dImpl : public MaxPoolNdImpl<1> {
 public:
  using MaxPoolNdImpl<1>::MaxPoolNdImpl;
  explicit MaxPool1dImpl(ExpandingArray<1> kernel_size) : MaxPoolNdImpl<1>(MaxPool1dOptions(kernel_size)) {}
};
XG_MODULE(MaxPool1d);

/// 2-D max pooling: [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
class MaxPool2dImpl : public MaxPoolNdImpl<2> {
 public:
  using MaxPoolNdImpl<2>::MaxPoolNdImpl;
  explicit MaxPool2dImpl(ExpandingArray<2> kernel_size) : MaxPoolNdImpl<2>(MaxPool2dOptions(kernel_size)) {}
};
XG_MODULE(MaxPool2d);

extern template class MaxPoolNdImpl<1>;
extern template class MaxPoolNdImpl<2>;

/// Options of AvgPool2d: kernel_size, stride (default kernel_size), padding (0; at most half the
/// kernel), ceil_mode (false), count_include_pad (true), divisor_override (none; nonzero when set).
struct AvgPool2dOptions {
  AvgPool2dOptions(ExpandingArray<2> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT: as PyTorch
  AvgPool2dOptions& kernel_size(ExpandingArray<2> value) { kernel_size_ = value; return *this; }
  AvgPool2dOptions& stride(ExpandingArray<2> value) { stride_ = value; return *this; }
  AvgPool2dOptions& padding(ExpandingArray<2> value) { padding_ = value; return *this; }
  AvgPool2dOptions& ceil_mode(bool value) { ceil_mode_ = value; return *this; }
  AvgPool2dOptions& count_include_pad(bool value) { count_include_pad_ = value; return *this; }
  AvgPool2dOptions& divisor_override(std::optional<int64_t> value) { divisor_override_ = value; return *this; }
  const ExpandingArray<2>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<2>& stride() const { return stride_; }
  const ExpandingArray<2>& padding() const { return padding_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }
  const std::optional<int64_t>& divisor_override() const { return divisor_override_; }

 private:
  ExpandingArray<2> kernel_size_, stride_;
  ExpandingArray<2> padding_ = 0;
  bool ceil_mode_ = false, count_include_pad_ = true;
  std::optional<int64_t> divisor_override_;
};

/// 2-D average pooling: [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
class AvgPool2dImpl : public Module {
 public:
  explicit AvgPool2dImpl(ExpandingArray<2> kernel_size) : AvgPool2dImpl(AvgPool2dOptions(kernel_size)) {}
  explicit AvgPool2dImpl(const AvgPool2dOptions& options);
  /// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
  Tensor forward(const Tensor& input);
  /// "kernel_size=2, stride=2, padding=0".
  std::string extra_repr() const override;

  AvgPool2dOptions options;
};
XG_MODULE(AvgPool2d);

/// Options of AdaptiveAvgPool2d: the output size (one value or (H', W')).
struct AdaptiveAvgPool2dOptions {
  AdaptiveAvgPool2dOptions(ExpandingArray<2> output_size) : output_size_(output_size) {}  // NOLINT: as PyTorch
  AdaptiveAvgPool2dOptions& output_size(ExpandingArray<2> value) { output_size_ = value; return *this; }
  const ExpandingArray<2>& output_size() const { return output_size_; }

 private:
  ExpandingArray<2> output_size_;
};

/// Average over PyTorch's adaptive windows [floor(i*H/H'), ceil((i+1)*H/H')) (likewise W):
/// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
class AdaptiveAvgPool2dImpl : public Module {
 public:
  explicit AdaptiveAvgPool2dImpl(ExpandingArray<2> output_size) : AdaptiveAvgPool2dImpl(AdaptiveAvgPool2dOptions(output_size)) {}
  explicit AdaptiveAvgPool2dImpl(const AdaptiveAvgPool2dOptions& options);
  /// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
  Tensor forward(const Tensor& input);
  /// "output_size=(5, 7)".
  std::string extra_repr() const override;

  AdaptiveAvgPool2dOptions options;
};
XG_MODULE(AdaptiveAvgPool2d);

/// Options of LPPool2d: norm_type p (> 0), kernel_size, stride (default kernel_size), ceil_mode (false).
struct LPPool2dOptions {
  LPPool2dOptions(double norm_type, ExpandingArray<2> kernel_size) : norm_type_(norm_type), kernel_size_(kernel_size) {}
  LPPool2dOptions& norm_type(double value) { norm_type_ = value; return *this; }
  LPPool2dOptions& kernel_size(ExpandingArray<2> value) { kernel_size_ = value; return *this; }
  LPPool2dOptions& stride(OptionalExpandingArray<2> value) { stride_ = value.get(); return *this; }
  LPPool2dOptions& ceil_mode(bool value) { ceil_mode_ = value; return *this; }
  double norm_type() const { return norm_type_; }
  const ExpandingArray<2>& kernel_size() const { return kernel_size_; }
  const std::optional<ExpandingArray<2>>& stride() const { return stride_; }
  bool ceil_mode() const { return ceil_mode_; }

 private:
  double norm_type_;
  ExpandingArray<2> kernel_size_;
  std::optional<ExpandingArray<2>> stride_;
  bool ceil_mode_ = false;
};

/// Power-average pooling (sum over the window of x^p)^(1/p), computed as PyTorch does:
/// (avg_pool2d(x^p) * kH*kW)^(1/p). [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
class LPPool2dImpl : public Module {
 public:
  LPPool2dImpl(double norm_type, ExpandingArray<2> kernel_size) : LPPool2dImpl(LPPool2dOptions(norm_type, kernel_size)) {}
  explicit LPPool2dImpl(const LPPool2dOptions& options);
  /// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'].
  Tensor forward(const Tensor& input);
  /// "norm_type=2, kernel_size=3, stride=None, ceil_mode=False".
  std::string extra_repr() const override;

  LPPool2dOptions options;
};
XG_MODULE(LPPool2d);

namespace functional {

/// [N, C, L] or [C, L] -> [N, C, L'], L' = (L + 2p - d(k-1) - 1 (+ s-1 with ceil_mode)) / s + 1,
/// less one when ceil_mode's last window would start past the input and the left padding.
Tensor max_pool1d(const Tensor& input, ExpandingArray<1> kernel_size, OptionalExpandingArray<1> stride = std::nullopt,
                  ExpandingArray<1> padding = 0, ExpandingArray<1> dilation = 1, bool ceil_mode = false);
/// As max_pool1d, also returning int64 indices (into each input row) of the maxima.
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, ExpandingArray<1> kernel_size,
                                                   OptionalExpandingArray<1> stride = std::nullopt, ExpandingArray<1> padding = 0,
                                                   ExpandingArray<1> dilation = 1, bool ceil_mode = false);
/// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'] (sizes as max_pool1d, per dimension).
Tensor max_pool2d(const Tensor& input, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride = std::nullopt,
                  ExpandingArray<2> padding = 0, ExpandingArray<2> dilation = 1, bool ceil_mode = false);
/// As max_pool2d, also returning int64 indices (into each input plane's flattened H*W) of the maxima.
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, ExpandingArray<2> kernel_size,
                                                   OptionalExpandingArray<2> stride = std::nullopt, ExpandingArray<2> padding = 0,
                                                   ExpandingArray<2> dilation = 1, bool ceil_mode = false);
/// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W']: window sums divided by the window
/// size (padding included when count_include_pad), or by divisor_override when given.
Tensor avg_pool2d(const Tensor& input, ExpandingArray<2> kernel_size, OptionalExpandingArray<2> stride = std::nullopt,
                  ExpandingArray<2> padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
/// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W'] with (H', W') = output_size.
Tensor adaptive_avg_pool2d(const Tensor& input, ExpandingArray<2> output_size);
/// [N, C, H, W] or [C, H, W] -> [N, C, H', W'] or [C, H', W']: (avg_pool2d(x^p) * kH*kW)^(1/p), no padding.
Tensor lp_pool2d(const Tensor& input, double norm_type, ExpandingArray<2> kernel_size,
                 OptionalExpandingArray<2> stride = std::nullopt, bool ceil_mode = false);

}  // namespace functional

}  // namespace xg::nn

#pragma once
/// Convolutions Conv1d / Conv2d and their functional forms, built as im2col + one batched GEMM over
/// the groups + a fused layout/bias step. im2col and col2im are differentiable primitives (each is
/// the other's backward), so gradients of every order follow from the tape.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// D integers written as one value (repeated D times) or as D values, like torch::ExpandingArray:
/// `5`, `{5, 3}`, `std::pair{5, 3}`. Remembers whether it came from one value, for PyTorch-style printing.
template <size_t D>
class ExpandingArray {
 public:
  ExpandingArray(int64_t value) : from_scalar_(true) { values_.fill(value); }  // NOLINT: implicit, as in PyTorch
  ExpandingArray(std::initializer_list<int64_t> values) : ExpandingArray(std::vector<int64_t>(values)) {}
  ExpandingArray(const std::array<int64_t, D>& values) : values_(values) {}  // NOLINT
  ExpandingArray(const std::vector<int64_t>& values) {  // NOLINT
    XG_CHECK(values.size() == D, "ExpandingArray: expected {} values, got {} ({})", D, values.size(), fmt::format("{}", values));
    std::copy(values.begin(), values.end(), values_.begin());
  }
  template <size_t E = D, class = std::enable_if_t<E == 2>>
  ExpandingArray(const std::pair<int64_t, int64_t>& values) : values_{values.first, values.second} {}  // NOLINT

  int64_t operator[](size_t i) const { return values_[i]; }
  const std::array<int64_t, D>& values() const { return values_; }
  bool from_scalar() const { return from_scalar_; }
  /// Python's tuple spelling: "(5, 5)", "(5,)".
  std::string tuple_string() const {
    if (D == 1) return fmt::format("({},)", values_[0]);
    return fmt::format("({})", fmt::join(values_, ", "));
  }
  /// As Python prints the argument the user gave: "2" for a scalar, "(2, 3)" otherwise.
  std::string repr() const { return from_scalar_ ? fmt::format("{}", values_[0]) : tuple_string(); }
  bool operator==(const ExpandingArray& other) const { return values_ == other.values_; }
  bool operator!=(const ExpandingArray& other) const { return values_ != other.values_; }

 private:
  std::array<int64_t, D> values_{};
  bool from_scalar_ = false;
};

/// A convolution's padding: D amounts (one value or D values) or the strings "valid" (no padding) or
/// "same" (output size = input size; stride 1 only; the extra element of an odd total goes right/bottom).
template <size_t D>
class ConvPadding {
 public:
  ConvPadding(int64_t value) : amounts_(value) {}  // NOLINT: implicit, as in PyTorch
  ConvPadding(std::initializer_list<int64_t> values) : amounts_(std::vector<int64_t>(values)) {}
  ConvPadding(ExpandingArray<D> amounts) : amounts_(amounts) {}  // NOLINT
  template <size_t N>
  ConvPadding(const char (&mode)[N]) : ConvPadding(std::string(mode)) {}  // NOLINT: a literal; not const char*, which 0 converts to
  ConvPadding(std::string mode) : amounts_(0), mode_(std::move(mode)) {  // NOLINT
    XG_CHECK(mode_ == "same" || mode_ == "valid", "padding: expected a number, \"same\" or \"valid\", got \"{}\"", mode_);
  }
  bool is_same() const { return mode_ == "same"; }
  bool is_valid() const { return mode_ == "valid"; }
  /// "" for numeric padding, else "same" or "valid".
  const std::string& mode() const { return mode_; }
  /// The amounts (zeros for "valid"; meaningless for "same", which depends on kernel and dilation).
  const ExpandingArray<D>& amounts() const { return amounts_; }

 private:
  ExpandingArray<D> amounts_;
  std::string mode_;
};

/// Options of Conv1d (D = 1) and Conv2d (D = 2), as torch::nn::ConvOptions: in_channels,
/// out_channels, kernel_size, stride (1), padding (0, or "same"/"valid"), dilation (1), groups (1),
/// bias (true), padding_mode ("zeros"; "reflect", "replicate", "circular" are rejected as unsupported).
template <size_t D>
struct ConvOptions {
  ConvOptions(int64_t in_channels, int64_t out_channels, ExpandingArray<D> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  ConvOptions& in_channels(int64_t value) { in_channels_ = value; return *this; }
  ConvOptions& out_channels(int64_t value) { out_channels_ = value; return *this; }
  ConvOptions& kernel_size(ExpandingArray<D> value) { kernel_size_ = value; return *this; }
  ConvOptions& stride(ExpandingArray<D> value) { stride_ = value; return *this; }
  ConvOptions& padding(ConvPadding<D> value) { padding_ = std::move(value); return *this; }
  ConvOptions& dilation(ExpandingArray<D> value) { dilation_ = value; return *this; }
  ConvOptions& groups(int64_t value) { groups_ = value; return *this; }
  ConvOptions& bias(bool value) { bias_ = value; return *this; }
  ConvOptions& padding_mode(std::string value) { padding_mode_ = std::move(value); return *this; }
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ConvPadding<D>& padding() const { return padding_; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }
  const std::string& padding_mode() const { return padding_mode_; }

 private:
  int64_t in_channels_, out_channels_;
  ExpandingArray<D> kernel_size_;
  ExpandingArray<D> stride_ = 1;
  ConvPadding<D> padding_ = 0;
  ExpandingArray<D> dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
  std::string padding_mode_ = "zeros";
};
using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;

/// The shared body of Conv1d and Conv2d: weight [out, in/groups, k...], bias [out], PyTorch's init
/// (kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, fan_in = in/groups * prod(k)).
template <size_t D>
class ConvNdImpl : public Module {
 public:
  explicit ConvNdImpl(const ConvOptions<D>& options);
  /// D = 2: [N, in, H, W] or [in, H, W] -> [N, out, H', W'] or [out, H', W']; D = 1 likewise with [.., L].
  Tensor forward(const Tensor& input);
  /// Re-draws weight and bias with the default initialisation.
  void reset_parameters();
  /// "1, 32, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)", as PyTorch prints it.
  std::string extra_repr() const override;

  ConvOptions<D> options;
  Tensor weight;  ///< [out_channels, in_channels / groups, k...]
  Tensor bias;    ///< [out_channels], undefined when options.bias() is false
};

/// 1-D convolution: [N, C_in, L] or [C_in, L] -> [N, C_out, L'] or [C_out, L'].
class Conv1dImpl : public ConvNdImpl<1> {
 public:
  using ConvNdImpl<1>::ConvNdImpl;
  Conv1dImpl(int64_t in_channels, int64_t out_channels, ExpandingArray<1> kernel_size)
      : ConvNdImpl<1>(Conv1dOptions(in_channels, out_channels, kernel_size)) {}
};
XG_MODULE(Conv1d);

/// 2-D convolution: [N, C_in, H, W] or [C_in, H, W] -> [N, C_out, H', W'] or [C_out, H', W'].
class Conv2dImpl : public ConvNdImpl<2> {
 public:
  using ConvNdImpl<2>::ConvNdImpl;
  Conv2dImpl(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size)
      : ConvNdImpl<2>(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
};
XG_MODULE(Conv2d);

extern template class ConvNdImpl<1>;
extern template class ConvNdImpl<2>;

namespace functional {

/// input [N, C_in, L] or [C_in, L], weight [C_out, C_in/groups, k], bias [C_out] (optional)
/// -> [N, C_out, L'] or [C_out, L'], L' = (L + 2p - d(k-1) - 1) / s + 1.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, ExpandingArray<1> stride = 1,
              const ConvPadding<1>& padding = 0, ExpandingArray<1> dilation = 1, int64_t groups = 1);
/// input [N, C_in, H, W] or [C_in, H, W], weight [C_out, C_in/groups, kH, kW], bias [C_out] (optional)
/// -> [N, C_out, H', W'] or [C_out, H', W'], H' = (H + 2pH - dH(kH-1) - 1) / sH + 1 (W' likewise).
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, ExpandingArray<2> stride = 1,
              const ConvPadding<2>& padding = 0, ExpandingArray<2> dilation = 1, int64_t groups = 1);

/// PyTorch's unfold (a differentiable primitive; its backward is col2im):
/// [N, C, H, W] or [C, H, W] -> [N, C*kH*kW, L] or [C*kH*kW, L], L = H' * W' sliding-window positions;
/// row (c*kH + i)*kW + j holds input[c, h'*sH - pH + i*dH, w'*sW - pW + j*dW] (zero outside the input).
Tensor im2col(const Tensor& input, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation = 1, ExpandingArray<2> padding = 0,
              ExpandingArray<2> stride = 1);
/// PyTorch's fold, the adjoint of im2col (overlapping entries are summed; its backward is im2col):
/// [N, C*kH*kW, L] or [C*kH*kW, L] -> [N, C, H, W] or [C, H, W] with (H, W) = output_size.
Tensor col2im(const Tensor& columns, ExpandingArray<2> output_size, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation = 1,
              ExpandingArray<2> padding = 0, ExpandingArray<2> stride = 1);
/// torch.nn.functional.unfold: the same as im2col.
inline Tensor unfold(const Tensor& input, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation = 1, ExpandingArray<2> padding = 0,
                     ExpandingArray<2> stride = 1) {
  return im2col(input, kernel_size, dilation, padding, stride);
}
/// torch.nn.functional.fold: the same as col2im.
inline Tensor fold(const Tensor& columns, ExpandingArray<2> output_size, ExpandingArray<2> kernel_size, ExpandingArray<2> dilation = 1,
                   ExpandingArray<2> padding = 0, ExpandingArray<2> stride = 1) {
  return col2im(columns, output_size, kernel_size, dilation, padding, stride);
}

}  // namespace functional

}  // namespace xg::nn

#pragma once
/// libtorch's enum constants (torch::kSum, torch::kFanOut, torch::kReLU, ...) as xg::k*. xgrad's
/// options take these choices as strings ("sum", "fan_out", "relu"); each constant converts to its
/// string, so `MSELossOptions().reduction(xg::kSum)` and
/// `nn::init::kaiming_normal_(w, 0, xg::kFanOut, xg::kReLU)` read as in libtorch. A constant naming a
/// choice the option does not support is rejected by the option's own check, like any other string.
#include <string>

namespace xg {
namespace enumtype {

#define XG_ENUM_CONSTANT(Name, text)                               \
  struct Name {                                                    \
    static constexpr const char* value = text;                     \
    operator std::string() const { return value; } /* NOLINT */    \
  };

// Reductions of losses.
XG_ENUM_CONSTANT(kNone, "none")
XG_ENUM_CONSTANT(kMean, "mean")
XG_ENUM_CONSTANT(kSum, "sum")
XG_ENUM_CONSTANT(kBatchMean, "batchmean")
// nn::init: fan modes and the nonlinearities of calculate_gain.
XG_ENUM_CONSTANT(kFanIn, "fan_in")
XG_ENUM_CONSTANT(kFanOut, "fan_out")
XG_ENUM_CONSTANT(kLinear, "linear")
XG_ENUM_CONSTANT(kConv1D, "conv1d")
XG_ENUM_CONSTANT(kConv2D, "conv2d")
XG_ENUM_CONSTANT(kConv3D, "conv3d")
XG_ENUM_CONSTANT(kConvTranspose1D, "conv_transpose1d")
XG_ENUM_CONSTANT(kConvTranspose2D, "conv_transpose2d")
XG_ENUM_CONSTANT(kConvTranspose3D, "conv_transpose3d")
XG_ENUM_CONSTANT(kSigmoid, "sigmoid")
XG_ENUM_CONSTANT(kTanh, "tanh")
XG_ENUM_CONSTANT(kReLU, "relu")
XG_ENUM_CONSTANT(kGELU, "gelu")
XG_ENUM_CONSTANT(kSiLU, "silu")
XG_ENUM_CONSTANT(kLeakyReLU, "leaky_relu")
XG_ENUM_CONSTANT(kSELU, "selu")
// Padding modes (convolutions, functional::pad).
XG_ENUM_CONSTANT(kZeros, "zeros")
XG_ENUM_CONSTANT(kConstant, "constant")
XG_ENUM_CONSTANT(kReflect, "reflect")
XG_ENUM_CONSTANT(kReplicate, "replicate")
XG_ENUM_CONSTANT(kCircular, "circular")
// Interpolation and grid sampling.
XG_ENUM_CONSTANT(kNearest, "nearest")
XG_ENUM_CONSTANT(kNearestExact, "nearest-exact")
XG_ENUM_CONSTANT(kBilinear, "bilinear")
XG_ENUM_CONSTANT(kBicubic, "bicubic")
XG_ENUM_CONSTANT(kTrilinear, "trilinear")
XG_ENUM_CONSTANT(kArea, "area")
XG_ENUM_CONSTANT(kBorder, "border")
XG_ENUM_CONSTANT(kReflection, "reflection")
// Recurrent layers' modes.
XG_ENUM_CONSTANT(kRNN_TANH, "RNN_TANH")
XG_ENUM_CONSTANT(kRNN_RELU, "RNN_RELU")
XG_ENUM_CONSTANT(kLSTM, "LSTM")
XG_ENUM_CONSTANT(kGRU, "GRU")

#undef XG_ENUM_CONSTANT

}  // namespace enumtype

inline constexpr enumtype::kNone kNone{};
inline constexpr enumtype::kMean kMean{};
inline constexpr enumtype::kSum kSum{};
inline constexpr enumtype::kBatchMean kBatchMean{};
inline constexpr enumtype::kFanIn kFanIn{};
inline constexpr enumtype::kFanOut kFanOut{};
inline constexpr enumtype::kLinear kLinear{};
inline constexpr enumtype::kConv1D kConv1D{};
inline constexpr enumtype::kConv2D kConv2D{};
inline constexpr enumtype::kConv3D kConv3D{};
inline constexpr enumtype::kConvTranspose1D kConvTranspose1D{};
inline constexpr enumtype::kConvTranspose2D kConvTranspose2D{};
inline constexpr enumtype::kConvTranspose3D kConvTranspose3D{};
inline constexpr enumtype::kSigmoid kSigmoid{};
inline constexpr enumtype::kTanh kTanh{};
inline constexpr enumtype::kReLU kReLU{};
inline constexpr enumtype::kGELU kGELU{};
inline constexpr enumtype::kSiLU kSiLU{};
inline constexpr enumtype::kLeakyReLU kLeakyReLU{};
inline constexpr enumtype::kSELU kSELU{};
inline constexpr enumtype::kZeros kZeros{};
inline constexpr enumtype::kConstant kConstant{};
inline constexpr enumtype::kReflect kReflect{};
inline constexpr enumtype::kReplicate kReplicate{};
inline constexpr enumtype::kCircular kCircular{};
inline constexpr enumtype::kNearest kNearest{};
inline constexpr enumtype::kNearestExact kNearestExact{};
inline constexpr enumtype::kBilinear kBilinear{};
inline constexpr enumtype::kBicubic kBicubic{};
inline constexpr enumtype::kTrilinear kTrilinear{};
inline constexpr enumtype::kArea kArea{};
inline constexpr enumtype::kBorder kBorder{};
inline constexpr enumtype::kReflection kReflection{};
inline constexpr enumtype::kRNN_TANH kRNN_TANH{};
inline constexpr enumtype::kRNN_RELU kRNN_RELU{};
inline constexpr enumtype::kLSTM kLSTM{};
inline constexpr enumtype::kGRU kGRU{};

}  // namespace xg

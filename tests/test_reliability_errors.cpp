// Bad input at the public entry points of nn (layers, functional forms, losses), optim (options, groups,
// clipping, schedulers) and data (datasets, loader, transforms, files): a table of each one's typical
// mistakes -- wrong rank, mismatched shapes, negative or zero sizes, out-of-range dims and indices, wrong
// dtype, empty inputs, NaN in options -- each asserting that an xg::Error is thrown and that its message
// names the op and the offending shape or value. tests/test_errors.cpp covers the tensor ops and autograd;
// this file does not repeat them.
//
// Where PyTorch accepts a NaN or infinite option (a scheduler's gamma, SGD's dampening, softplus's
// threshold, ...) and would silently produce NaN, xgrad rejects it: those rows are xgrad's policy, not
// PyTorch's behaviour.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;
namespace F = xg::nn::functional;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// One row of the table: what the user did, the call, and the words its message must contain.
struct BadInput {
  std::string what;
  std::function<void()> call;
  std::vector<std::string> keywords;
};

/// Runs every row; a row passes when the call throws xg::Error whose message holds every keyword.
void check_table(const std::vector<BadInput>& table) {
  for (const BadInput& row : table) {
    INFO("case: " << row.what);
    std::string message;
    bool threw_xg_error = false;
    try {
      row.call();
    } catch (const Error& error) {
      threw_xg_error = true;
      message = error.what();
    } catch (const std::exception& error) {
      message = std::string("<<not an xg::Error>> ") + error.what();
    }
    INFO("message: " << message);
    CHECK(threw_xg_error);
    for (const std::string& keyword : row.keywords) {
      INFO("expected keyword: " << keyword);
      CHECK(message.find(keyword) != std::string::npos);
    }
  }
}

/// A scratch file removed at the end of the test.
struct ScratchFile {
  fs::path path;
  explicit ScratchFile(const std::string& content, const std::string& name = "data.csv") {
    static int counter = 0;
    path = fs::temp_directory_path() / ("xgrad_reliability_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
    std::ofstream(path, std::ios::binary) << content;
  }
  ~ScratchFile() {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  std::string str() const { return path.string(); }
};

Tensor parameter(const Shape& shape) { return zeros(shape).requires_grad_(); }

}  // namespace

TEST_CASE("errors table: layers reject bad options and bad inputs, naming the layer and the shape", "[reliability][errors]") {
  nn::Linear linear(4, 3);
  nn::Conv2d conv(3, 8, 3);
  nn::Conv1d conv1d(2, 4, 3);
  nn::BatchNorm2d batch_norm(3);
  nn::BatchNorm1d batch_norm_1d(3);
  nn::LayerNorm layer_norm(nn::LayerNormOptions({4}));
  nn::GroupNorm group_norm(2, 4);
  nn::Embedding embedding(5, 3);
  nn::MaxPool2d max_pool(2);
  nn::Dropout2d dropout_2d(0.5);
  nn::LSTM lstm(3, 4);
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2));
  nn::LSTMCell lstm_cell(3, 4);
  nn::Softmax softmax_layer(2);
  check_table({
      // Linear, Flatten, Unflatten
      {"Linear with negative in_features", [] { nn::Linear(-1, 3); }, {"Linear", "-1"}},
      {"Linear input with the wrong last dimension", [&] { linear(zeros({2, 5})); }, {"Linear", "[2, 5]", "4"}},
      {"Linear on a 0-D input", [&] { linear(scalar_tensor(1.0)); }, {"Linear", "[]"}},
      {"Linear on float64 input", [&] { linear(zeros({2, 4}, kFloat64)); }, {"Linear", "float32", "float64"}},
      {"Linear on int64 input", [&] { linear(zeros({2, 4}, kInt64)); }, {"Linear", "int64"}},
      {"Flatten start_dim out of range", [] { nn::Flatten(nn::FlattenOptions().start_dim(3))(zeros({2, 3})); }, {"flatten", "3"}},
      {"Unflatten into sizes of the wrong product", [] { nn::Unflatten(nn::UnflattenOptions(1, {2, 2}))(zeros({3, 5})); }, {"Unflatten", "[3, 5]", "[2, 2]"}},
      {"Unflatten with two inferred sizes", [] { nn::Unflatten(nn::UnflattenOptions(1, {-1, -1})); }, {"Unflatten", "only one"}},
      {"Unflatten with a negative size", [] { nn::Unflatten(nn::UnflattenOptions(1, {-2, 3})); }, {"Unflatten", "-2"}},
      {"Unflatten dim out of range", [] { nn::Unflatten(nn::UnflattenOptions(5, {1}))(zeros({2, 3})); }, {"Unflatten", "5", "out of range"}},
      // Conv1d / Conv2d
      {"Conv2d with zero in_channels", [] { nn::Conv2d(0, 4, 3); }, {"Conv2d", "positive", "0"}},
      {"Conv2d with zero kernel_size", [] { nn::Conv2d(3, 4, 0); }, {"Conv2d", "kernel_size"}},
      {"Conv2d with zero stride", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).stride(0)); }, {"Conv2d", "stride", "0"}},
      {"Conv2d with negative padding", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding(-1)); }, {"Conv2d", "padding", "-1"}},
      {"Conv2d with zero dilation", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).dilation(0)); }, {"Conv2d", "dilation"}},
      {"Conv2d in_channels not divisible by groups", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)); }, {"Conv2d", "divisible", "groups"}},
      {"Conv2d with zero groups", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(0)); }, {"Conv2d", "groups", "0"}},
      {"Conv2d with an unsupported padding_mode", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding_mode("reflect")); }, {"Conv2d", "reflect"}},
      {"Conv2d padding 'same' with stride 2", [] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding("same").stride(2)); }, {"Conv2d", "same", "stride"}},
      {"padding given as an unknown string", [] { nn::ConvPadding<2>(std::string("full")); }, {"padding", "full"}},
      {"a kernel size with three values for Conv2d", [] { nn::ExpandingArray<2>(std::vector<int64_t>{1, 2, 3}); }, {"expected 2 values", "3"}},
      {"Conv2d input with the wrong channel count", [&] { conv(zeros({2, 5, 8, 8})); }, {"channels", "[2, 5, 8, 8]", "3"}},
      {"Conv2d on a 2-D input", [&] { conv(zeros({8, 8})); }, {"Conv2d", "[8, 8]", "3-D", "4-D"}},
      {"Conv2d on a 5-D input", [&] { conv(zeros({1, 1, 3, 8, 8})); }, {"Conv2d", "[1, 1, 3, 8, 8]"}},
      {"Conv2d on an image smaller than the kernel", [&] { conv(zeros({1, 3, 2, 2})); }, {"Conv2d", "smaller than", "kernel", "[1, 3, 2, 2]"}},
      {"Conv2d on float64 input", [&] { conv(zeros({1, 3, 8, 8}, kFloat64)); }, {"Conv2d", "float32", "float64"}},
      {"conv2d on int64 input", [] { F::conv2d(zeros({1, 3, 8, 8}, kInt64), zeros({4, 3, 3, 3}, kInt64)); }, {"conv2d", "int64"}},
      {"conv2d with a 3-D weight", [] { F::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3})); }, {"conv2d", "weight", "[4, 3, 3]"}},
      {"conv2d with a bias of the wrong size", [] { F::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({5})); }, {"conv2d", "bias", "[4]", "[5]"}},
      {"Conv1d on a sequence shorter than the kernel", [&] { conv1d(zeros({2, 2})); }, {"Conv1d", "smaller than", "[2, 2]"}},
      {"im2col on a 2-D input", [] { F::im2col(zeros({4, 4}), 2); }, {"im2col", "[4, 4]"}},
      {"col2im with a row count not divisible by the kernel area", [] { F::col2im(zeros({1, 5, 4}), {3, 3}, 2); }, {"col2im", "divisible", "[1, 5, 4]"}},
      // Pooling
      {"MaxPool2d with zero kernel_size", [] { nn::MaxPool2d(0); }, {"MaxPool2d", "kernel_size"}},
      {"MaxPool2d with padding above half the kernel", [] { nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)); }, {"MaxPool2d", "pad"}},
      {"MaxPool2d on a 2-D input", [&] { max_pool(zeros({4, 4})); }, {"MaxPool2d", "[4, 4]"}},
      {"MaxPool2d on int64 input", [&] { max_pool(zeros({1, 1, 4, 4}, kInt64)); }, {"MaxPool2d", "int64"}},
      {"max_pool2d with a window larger than the input", [] { F::max_pool2d(zeros({1, 1, 2, 2}), 3); }, {"max_pool2d", "[1, 1, 2, 2]"}},
      {"max_pool2d on empty spatial dimensions", [] { F::max_pool2d(zeros({1, 1, 0, 4}), 2); }, {"max_pool2d", "[1, 1, 0, 4]"}},
      {"AvgPool2d with zero stride", [] { nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(0)); }, {"AvgPool2d", "stride"}},
      {"avg_pool2d with divisor_override 0", [] { F::avg_pool2d(zeros({1, 1, 4, 4}), 2, std::nullopt, 0, false, true, 0); }, {"avg_pool2d", "divisor_override"}},
      {"AdaptiveAvgPool2d to size 0", [] { nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({0, 2})); }, {"AdaptiveAvgPool2d", "output_size"}},
      {"lp_pool2d with norm_type NaN", [] { F::lp_pool2d(ones({1, 1, 4, 4}), kNaN, 2); }, {"lp_pool2d", "norm_type", "nan"}},
      {"LPPool2d with norm_type 0", [] { nn::LPPool2d(nn::LPPool2dOptions(0.0, 2)); }, {"LPPool2d", "norm_type"}},
      // Normalisation
      {"BatchNorm2d with zero features", [] { nn::BatchNorm2d(0); }, {"BatchNorm", "num_features", "0"}},
      {"BatchNorm2d with NaN eps", [] { nn::BatchNorm2d(nn::BatchNormOptions(3).eps(kNaN)); }, {"BatchNorm", "eps", "nan"}},
      {"BatchNorm2d with momentum NaN", [] { nn::BatchNorm2d(nn::BatchNormOptions(3).momentum(kNaN)); }, {"BatchNorm", "momentum", "nan"}},
      {"BatchNorm2d with momentum 2", [] { nn::BatchNorm2d(nn::BatchNormOptions(3).momentum(2.0)); }, {"BatchNorm", "momentum", "2"}},
      {"BatchNorm2d input with the wrong channel count", [&] { batch_norm(zeros({2, 4, 5, 5})); }, {"BatchNorm2d", "3", "[2, 4, 5, 5]"}},
      {"BatchNorm2d on a 2-D input", [&] { batch_norm(zeros({2, 3})); }, {"BatchNorm2d", "4D", "[2, 3]"}},
      {"BatchNorm1d on a 4-D input", [&] { batch_norm_1d(zeros({4, 3, 2, 2})); }, {"BatchNorm1d", "[4, 3, 2, 2]"}},
      {"BatchNorm1d training on one sample", [&] { batch_norm_1d(zeros({1, 3})); }, {"batch_norm", "more than 1 value per channel", "[1, 3]"}},
      {"batch_norm with running stats of the wrong size", [] { F::batch_norm(zeros({2, 3}), zeros({4}), ones({4})); }, {"batch_norm", "[3]", "[4]"}},
      {"batch_norm in eval without running stats", [] { F::batch_norm(zeros({2, 3}), Tensor(), Tensor()); }, {"batch_norm", "running_mean"}},
      {"LayerNorm with an empty normalized_shape", [] { nn::LayerNorm(nn::LayerNormOptions(std::vector<int64_t>{})); }, {"LayerNorm", "empty"}},
      {"LayerNorm with a negative size", [] { nn::LayerNorm(nn::LayerNormOptions({-1})); }, {"LayerNorm", "[-1]"}},
      {"LayerNorm with NaN eps", [] { nn::LayerNorm(nn::LayerNormOptions({4}).eps(kNaN)); }, {"LayerNorm", "eps", "nan"}},
      {"LayerNorm input with the wrong trailing size", [&] { layer_norm(zeros({2, 5})); }, {"LayerNorm", "[4]", "[2, 5]"}},
      {"GroupNorm with channels not divisible by groups", [] { nn::GroupNorm(3, 4); }, {"GroupNorm", "divisible", "3", "4"}},
      {"GroupNorm with zero groups", [] { nn::GroupNorm(0, 4); }, {"GroupNorm", "positive"}},
      {"GroupNorm input with the wrong channel count", [&] { group_norm(zeros({2, 6, 3})); }, {"GroupNorm", "[2, 6, 3]"}},
      {"group_norm on a 1-D input", [] { F::group_norm(zeros({4}), 2); }, {"group_norm", "[4]"}},
      // Embedding
      {"Embedding with zero rows", [] { nn::Embedding(0, 3); }, {"Embedding", "0"}},
      {"Embedding with padding_idx out of range", [] { nn::Embedding(nn::EmbeddingOptions(5, 3).padding_idx(5)); }, {"padding_idx", "5"}},
      {"Embedding indexed with floats", [&] { embedding(zeros({2})); }, {"Embedding", "int64", "float32"}},
      {"Embedding index past the end", [&] { embedding(tensor({1, 5}, {2}, kInt64)); }, {"Embedding", "5", "out of range"}},
      {"Embedding negative index", [&] { embedding(tensor({-1}, {1}, kInt64)); }, {"Embedding", "-1", "out of range"}},
      {"embedding with a 1-D weight", [] { F::embedding(tensor({0}, {1}, kInt64), zeros({5})); }, {"embedding", "2-D", "[5]"}},
      // Dropout
      {"Dropout with p > 1", [] { nn::Dropout(1.5); }, {"Dropout", "between 0 and 1", "1.5"}},
      {"Dropout with negative p", [] { nn::Dropout(-0.1); }, {"Dropout", "-0.1"}},
      {"Dropout with NaN p", [] { nn::Dropout{kNaN}; }, {"Dropout", "nan"}},
      {"functional dropout with p NaN", [] { F::dropout(ones({3}), kNaN); }, {"dropout", "nan"}},
      {"functional dropout on int64 input", [] { F::dropout(ones({3}, kInt64), 0.5); }, {"dropout", "int64"}},
      {"Dropout2d on a 2-D input", [&] { dropout_2d(zeros({2, 3})); }, {"Dropout2d", "[2, 3]"}},
      // Activations
      {"LeakyReLU with NaN slope", [] { nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kNaN)); }, {"LeakyReLU", "negative_slope", "nan"}},
      {"ELU with infinite alpha", [] { nn::ELU(nn::ELUOptions().alpha(kInf)); }, {"ELU", "alpha", "inf"}},
      {"GELU with an unknown approximation", [] { nn::GELU(nn::GELUOptions().approximate("fast")); }, {"GELU", "fast"}},
      {"Softplus with beta 0", [] { nn::Softplus(nn::SoftplusOptions().beta(0.0)); }, {"Softplus", "beta", "0"}},
      {"Softplus with NaN beta", [] { nn::Softplus(nn::SoftplusOptions().beta(kNaN)); }, {"Softplus", "beta", "nan"}},
      {"softplus with threshold NaN", [] { softplus(ones({2}), 1.0, kNaN); }, {"softplus", "threshold", "nan"}},
      {"leaky_relu with slope NaN", [] { leaky_relu(ones({2}), kNaN); }, {"leaky_relu", "nan"}},
      {"Softmax over a dim the input lacks", [&] { softmax_layer(zeros({2, 3})); }, {"softmax", "2", "out of range"}},
      {"log_softmax on int64 input", [] { F::log_softmax(zeros({2}, kInt64), 0); }, {"log_softmax", "int64"}},
      // Recurrent layers
      {"LSTM with zero hidden_size", [] { nn::LSTM(3, 0); }, {"LSTM", "hidden_size", "0"}},
      {"RNN with zero input_size", [] { nn::RNN(0, 4); }, {"RNN", "input_size", "0"}},
      {"RNN with an unknown nonlinearity", [] { nn::RNN(nn::RNNOptions(3, 4).nonlinearity("sigmoid")); }, {"RNN", "nonlinearity", "sigmoid"}},
      {"LSTM with zero layers", [] { nn::LSTM(nn::LSTMOptions(3, 4).num_layers(0)); }, {"LSTM", "num_layers", "0"}},
      {"GRU with dropout 1.5", [] { nn::GRU(nn::GRUOptions(3, 4).dropout(1.5)); }, {"GRU", "dropout", "1.5"}},
      {"LSTM with dropout NaN", [] { nn::LSTM(nn::LSTMOptions(3, 4).dropout(kNaN)); }, {"LSTM", "dropout", "nan"}},
      {"LSTM input with the wrong feature count", [&] { lstm(zeros({5, 2, 4})); }, {"LSTM", "input_size", "[5, 2, 4]"}},
      {"LSTM on a 4-D input", [&] { lstm(zeros({5, 2, 3, 1})); }, {"LSTM", "[5, 2, 3, 1]"}},
      {"LSTM on an empty sequence", [&] { lstm(zeros({0, 2, 3})); }, {"LSTM", "at least one step", "[0, 2, 3]"}},
      {"LSTM on int64 input", [&] { lstm(zeros({5, 2, 3}, kInt64)); }, {"LSTM", "int64"}},
      {"GRU with an initial state of the wrong shape", [&] { gru(zeros({5, 2, 3}), zeros({1, 2, 4})); }, {"GRU", "[2, 2, 4]", "[1, 2, 4]"}},
      {"LSTMCell input with the wrong feature count", [&] { lstm_cell(zeros({2, 4})); }, {"LSTMCell", "input_size", "[2, 4]"}},
      {"LSTMCell state with the wrong batch size", [&] { lstm_cell(zeros({2, 3}), std::make_tuple(zeros({3, 4}), zeros({3, 4}))); }, {"LSTMCell", "[2, 4]", "[3, 4]"}},
  });
}

TEST_CASE("errors table: losses reject mismatched shapes, bad targets, bad options", "[reliability][errors]") {
  const Tensor logits = zeros({4, 5});
  const Tensor labels = tensor({0, 1, 2, 3}, {4}, kInt64);
  check_table({
      {"mse_loss with shapes that differ", [] { F::mse_loss(zeros({2, 3}), zeros({3, 2})); }, {"mse_loss", "[2, 3]", "[3, 2]"}},
      {"mse_loss with target broadcasting", [] { F::mse_loss(zeros({2, 3}), zeros({3})); }, {"mse_loss", "[2, 3]", "[3]"}},
      {"mse_loss with an unknown reduction", [] { F::mse_loss(zeros({2}), zeros({2}), F::MSELossFuncOptions("avg")); }, {"mse_loss", "reduction", "avg"}},
      {"MSELoss module with an unknown reduction", [] { nn::MSELoss(nn::MSELossOptions("avg"))(zeros({2}), zeros({2})); }, {"reduction", "avg"}},
      {"l1_loss with dtypes that differ", [] { F::l1_loss(zeros({2}), zeros({2}, kFloat64)); }, {"l1_loss", "float32", "float64"}},
      {"l1_loss on int64 tensors", [] { F::l1_loss(zeros({2}, kInt64), zeros({2}, kInt64)); }, {"l1_loss", "int64"}},
      {"smooth_l1_loss with negative beta", [] { F::smooth_l1_loss(zeros({2}), zeros({2}), F::SmoothL1LossFuncOptions().beta(-1)); }, {"smooth_l1_loss", "beta", "-1"}},
      {"smooth_l1_loss with NaN beta", [] { F::smooth_l1_loss(zeros({2}), zeros({2}), F::SmoothL1LossFuncOptions().beta(kNaN)); }, {"smooth_l1_loss", "beta", "nan"}},
      {"huber_loss with delta 0", [] { F::huber_loss(zeros({2}), zeros({2}), F::HuberLossFuncOptions().delta(0)); }, {"huber_loss", "delta", "0"}},
      {"cross_entropy with a class index past the end", [&] { F::cross_entropy(logits, tensor({0, 1, 5, 3}, {4}, kInt64)); }, {"cross_entropy", "5", "out of bounds", "5 classes"}},
      {"cross_entropy with a negative class index", [&] { F::cross_entropy(logits, tensor({0, -1, 2, 3}, {4}, kInt64)); }, {"cross_entropy", "-1", "out of bounds"}},
      {"cross_entropy with float class indices", [&] { F::cross_entropy(logits, zeros({4})); }, {"cross_entropy", "[4]", "[4, 5]"}},
      {"cross_entropy with a batch size mismatch", [&] { F::cross_entropy(logits, tensor({0, 1, 2}, {3}, kInt64)); }, {"cross_entropy", "[3]", "[4, 5]"}},
      {"cross_entropy on a 0-D input", [] { F::cross_entropy(scalar_tensor(1.0), scalar_tensor(0.0, kInt64)); }, {"cross_entropy", "0-D"}},
      {"cross_entropy on int64 logits", [&] { F::cross_entropy(zeros({4, 5}, kInt64), labels); }, {"cross_entropy", "int64"}},
      {"cross_entropy with label_smoothing 1.5", [&] { F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(1.5)); }, {"cross_entropy", "label_smoothing", "1.5"}},
      {"cross_entropy with label_smoothing NaN", [&] { F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(kNaN)); }, {"cross_entropy", "label_smoothing", "nan"}},
      {"cross_entropy with a class weight of the wrong size", [&] { F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().weight(ones({3}))); }, {"cross_entropy", "weight", "[5]", "[3]"}},
      {"CrossEntropyLoss with label_smoothing -0.1", [] { nn::CrossEntropyLoss(nn::CrossEntropyLossOptions().label_smoothing(-0.1)); }, {"CrossEntropyLoss", "label_smoothing", "-0.1"}},
      {"nll_loss with float targets", [&] { F::nll_loss(logits, zeros({4})); }, {"nll_loss", "int64", "float32"}},
      {"nll_loss with a class index past the end", [&] { F::nll_loss(logits, tensor({9, 0, 0, 0}, {4}, kInt64)); }, {"nll_loss", "9", "out of bounds"}},
      {"binary_cross_entropy on inputs outside [0, 1]", [] { F::binary_cross_entropy(tensor({0.5, 1.5}), tensor({0.0, 1.0})); }, {"binary_cross_entropy", "between 0 and 1"}},
      {"binary_cross_entropy on NaN probabilities", [] { F::binary_cross_entropy(tensor({kNaN}), tensor({1.0})); }, {"binary_cross_entropy", "between 0 and 1"}},
      {"binary_cross_entropy with shapes that differ", [] { F::binary_cross_entropy(zeros({2}), zeros({3})); }, {"binary_cross_entropy", "[2]", "[3]"}},
      {"bce_with_logits with a weight that does not broadcast", [] {
         F::binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), F::BinaryCrossEntropyWithLogitsFuncOptions().weight(ones({4})));
       }, {"binary_cross_entropy_with_logits", "[4]", "[2, 3]"}},
      {"bce_with_logits with a pos_weight that does not broadcast", [] {
         F::binary_cross_entropy_with_logits(zeros({2, 3}), zeros({2, 3}), F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(ones({2})));
       }, {"binary_cross_entropy_with_logits", "[2]", "[2, 3]"}},
      {"kl_div with an unknown reduction", [] { F::kl_div(zeros({2}), zeros({2}), F::KLDivFuncOptions().reduction("bogus")); }, {"kl_div", "reduction", "bogus"}},
  });
}

TEST_CASE("errors table: optimizers, clipping and schedulers reject bad options, NaN included", "[reliability][errors]") {
  const Tensor w = parameter({2});
  auto sgd = [&](optim::SGDOptions options) { optim::SGD({w}, options); };
  auto adam = [&](optim::AdamOptions options) { optim::Adam({w}, options); };
  optim::SGD optimizer({parameter({3})}, optim::SGDOptions(0.1).momentum(0.9));
  check_table({
      {"SGD with a negative learning rate", [&] { sgd(optim::SGDOptions(-1)); }, {"SGD", "learning rate", "-1"}},
      {"SGD with a NaN learning rate", [&] { sgd(optim::SGDOptions(kNaN)); }, {"SGD", "learning rate", "nan"}},
      {"SGD with negative momentum", [&] { sgd(optim::SGDOptions(0.1).momentum(-0.5)); }, {"SGD", "momentum", "-0.5"}},
      {"SGD with NaN weight decay", [&] { sgd(optim::SGDOptions(0.1).weight_decay(kNaN)); }, {"SGD", "weight_decay", "nan"}},
      {"SGD with nesterov but no momentum", [&] { sgd(optim::SGDOptions(0.1).nesterov(true)); }, {"SGD", "nesterov"}},
      {"SGD with dampening NaN", [&] { sgd(optim::SGDOptions(0.1).momentum(0.9).dampening(kNaN)); }, {"SGD", "dampening", "nan"}},
      {"Adam with beta1 = 1", [&] { adam(optim::AdamOptions(0.1).betas({1.0, 0.999})); }, {"Adam", "beta", "index 0", "1"}},
      {"Adam with a NaN beta2", [&] { adam(optim::AdamOptions(0.1).betas({0.9, kNaN})); }, {"Adam", "beta", "index 1", "nan"}},
      {"Adam with negative eps", [&] { adam(optim::AdamOptions(0.1).eps(-1e-8)); }, {"Adam", "epsilon", "-1e-08"}},
      {"AdamW with NaN weight decay", [&] { optim::AdamW({w}, optim::AdamWOptions(0.1).weight_decay(kNaN)); }, {"AdamW", "weight_decay", "nan"}},
      {"RMSprop with negative alpha", [&] { optim::RMSprop({w}, optim::RMSpropOptions(0.1).alpha(-1)); }, {"RMSprop", "alpha", "-1"}},
      {"Adagrad with negative lr_decay", [&] { optim::Adagrad({w}, optim::AdagradOptions(0.1).lr_decay(-1)); }, {"Adagrad", "lr_decay", "-1"}},
      {"Adadelta with rho 1.5", [&] { optim::Adadelta({w}, optim::AdadeltaOptions(1.0).rho(1.5)); }, {"Adadelta", "rho", "1.5"}},
      {"LBFGS with history_size 0", [&] { optim::LBFGS({w}, optim::LBFGSOptions(1).history_size(0)); }, {"LBFGS", "history_size", "0"}},
      {"LBFGS with an unknown line search", [&] { optim::LBFGS({w}, optim::LBFGSOptions(1).line_search_fn("armijo")); }, {"LBFGS", "armijo"}},
      {"LBFGS step without a closure", [&] { optim::LBFGS({w}).step(); }, {"LBFGS", "closure"}},
      {"an optimizer over an int64 tensor", [] { optim::SGD({zeros({2}, kInt64)}, optim::SGDOptions(0.1)); }, {"SGD", "floating-point", "int64"}},
      {"an optimizer over a non-leaf tensor", [&] { optim::SGD({w * 2.0}, optim::SGDOptions(0.1)); }, {"SGD", "non-leaf"}},
      {"an optimizer over an undefined tensor", [] { optim::SGD({Tensor()}, optim::SGDOptions(0.1)); }, {"SGD", "undefined"}},
      {"an optimizer over no parameters", [] { optim::SGD(TensorList{}, optim::SGDOptions(0.1)); }, {"SGD", "empty"}},
      {"the same parameter twice", [&] { optim::SGD({w, w}, optim::SGDOptions(0.1)); }, {"SGD", "parameter"}},
      {"a group with a parameter already in another group", [&] {
         optim::SGD two_groups({w}, optim::SGDOptions(0.1));
         two_groups.add_param_group(optim::OptimizerParamGroup({w}));
       }, {"SGD", "parameter"}},
      {"state of a parameter that never stepped", [&] { optimizer.state(w); }, {"state"}},
      {"clip_grad_norm_ with norm_type -1", [&] { optim::clip_grad_norm_({w}, 1.0, -1.0); }, {"clip_grad_norm_", "norm_type", "-1"}},
      {"clip_grad_norm_ of a NaN gradient with error_if_nonfinite", [] {
         Tensor p = parameter({2});
         (p * kNaN).sum().backward();
         optim::clip_grad_norm_({p}, 1.0, 2.0, true);
       }, {"clip_grad_norm_", "non-finite", "nan"}},
      {"clip_grad_norm_ with max_norm NaN", [] {
         Tensor p = parameter({2});
         (p * 3.0).sum().backward();
         optim::clip_grad_norm_({p}, kNaN);
       }, {"clip_grad_norm_", "max_norm", "nan"}},
      {"clip_grad_norm_ with a negative max_norm", [] {
         Tensor p = parameter({2});
         (p * 3.0).sum().backward();
         optim::clip_grad_norm_({p}, -1.0);
       }, {"clip_grad_norm_", "max_norm", "-1"}},
      {"clip_grad_value_ with a negative clip value", [&] { optim::clip_grad_value_({w}, -1.0); }, {"clip_grad_value_", "-1"}},
      {"StepLR with step_size 0", [&] { optim::StepLR(optimizer, 0); }, {"StepLR", "step_size", "0"}},
      {"StepLR with gamma NaN", [&] { optim::StepLR(optimizer, 2, kNaN); }, {"StepLR", "gamma", "nan"}},
      {"ExponentialLR with gamma NaN", [&] { optim::ExponentialLR(optimizer, kNaN); }, {"ExponentialLR", "gamma", "nan"}},
      {"MultiStepLR with gamma NaN", [&] { optim::MultiStepLR(optimizer, {1, 2}, kNaN); }, {"MultiStepLR", "gamma", "nan"}},
      {"CosineAnnealingLR with T_max 0", [&] { optim::CosineAnnealingLR(optimizer, 0); }, {"CosineAnnealingLR", "T_max", "0"}},
      {"CosineAnnealingLR with eta_min NaN", [&] { optim::CosineAnnealingLR(optimizer, 10, kNaN); }, {"CosineAnnealingLR", "eta_min", "nan"}},
      {"LinearLR with start_factor 0", [&] { optim::LinearLR(optimizer, 0.0); }, {"LinearLR", "start_factor", "0"}},
      {"LambdaLR with an empty function", [&] { optim::LambdaLR(optimizer, optim::LambdaLR::Lambda()); }, {"LambdaLR", "empty"}},
      {"OneCycleLR without total_steps or epochs", [&] { optim::OneCycleLR(optimizer, optim::OneCycleLROptions(0.1)); }, {"OneCycleLR", "total_steps"}},
      {"OneCycleLR with pct_start NaN", [&] { optim::OneCycleLR(optimizer, optim::OneCycleLROptions(0.1).total_steps(10).pct_start(kNaN)); }, {"OneCycleLR", "pct_start", "nan"}},
      {"OneCycleLR stepped past total_steps", [&] {
         optim::OneCycleLR schedule(optimizer, optim::OneCycleLROptions(0.1).total_steps(2));
         for (int i = 0; i < 3; ++i) schedule.step();
       }, {"OneCycleLR", "total steps", "2"}},
      {"ReduceLROnPlateau with factor 1", [&] { optim::ReduceLROnPlateau(optimizer, optim::ReduceLROnPlateauOptions().factor(1.0)); }, {"ReduceLROnPlateau", "factor", "1"}},
      {"ReduceLROnPlateau with an unknown mode", [&] { optim::ReduceLROnPlateau(optimizer, optim::ReduceLROnPlateauOptions().mode("avg")); }, {"ReduceLROnPlateau", "avg"}},
  });
}

TEST_CASE("errors table: datasets, loader, transforms and files reject bad input, naming the file and line", "[reliability][errors]") {
  auto dataset = std::make_shared<data::TensorDataset>(zeros({4, 2}), zeros({4}));
  ScratchFile ragged("a,b,y\n1,2,0\n3,4\n");
  ScratchFile not_a_number("a,b,y\n1,x2,0\n");
  ScratchFile fractional_label("a,y\n1,0.5\n");
  ScratchFile header_only("a,b,y\n");
  ScratchFile one_column("y\n1\n2\n");
  ScratchFile good("a,b,y\n1,2,0\n");
  ScratchFile headerless("1,2,0\n");
  ScratchFile truncated_idx(std::string("\0\0\x08\x01\0\0\0\x05\x01\x02", 10), "short.idx");
  check_table({
      {"TensorDataset with row counts that differ", [] { data::TensorDataset(zeros({3, 2}), zeros({4})); }, {"TensorDataset", "3", "4"}},
      {"TensorDataset of 0-D tensors", [] { data::TensorDataset(scalar_tensor(1.0), scalar_tensor(1.0)); }, {"TensorDataset", "leading"}},
      {"TensorDataset of undefined tensors", [] { data::TensorDataset(Tensor(), zeros({2})); }, {"TensorDataset", "defined"}},
      {"TensorDataset index past the end", [&] { dataset->get(4); }, {"TensorDataset", "4", "out of range"}},
      {"TensorDataset negative index", [&] { dataset->get(-1); }, {"TensorDataset", "-1"}},
      {"TensorDataset batch with an index past the end", [&] { dataset->get_batch({0, 7}); }, {"7", "out of range"}},
      {"Subset index past the base dataset", [&] { data::Subset(dataset, {0, 9}); }, {"Subset", "9", "out of range"}},
      {"random_split lengths that do not add up", [&] { data::random_split(dataset, {1, 2}, 0); }, {"random_split", "3", "4"}},
      {"random_split with a negative length", [&] { data::random_split(dataset, {5, -1}, 0); }, {"random_split", "-1"}},
      {"DataLoader with batch_size 0", [&] { data::DataLoader(dataset, data::DataLoaderOptions(0)); }, {"DataLoader", "batch_size", "0"}},
      {"DataLoader over a null dataset", [] { data::DataLoader(nullptr, data::DataLoaderOptions(2)); }, {"DataLoader", "null"}},
      {"DataLoader with a corrupt generator state", [&] { data::DataLoader(dataset).set_generator_state("not a state"); }, {"DataLoader", "generator state"}},
      {"Normalize with std 0", [] { data::transforms::Normalize({0.5}, {0.0}); }, {"Normalize", "std", "0"}},
      {"Normalize with NaN std", [] { data::transforms::Normalize({0.5}, {kNaN}); }, {"Normalize", "std", "nan"}},
      {"Normalize with NaN mean", [] { data::transforms::Normalize({kNaN}, {1.0}); }, {"Normalize", "mean", "nan"}},
      {"Normalize with mean and std of different lengths", [] { data::transforms::Normalize({0.5, 0.5}, {1.0}); }, {"Normalize", "2", "1"}},
      {"Normalize with 3 values for 1 channel", [] {
         std::mt19937_64 generator(0);
         data::transforms::Normalize({0.1, 0.2, 0.3}, {1.0, 1.0, 1.0})(zeros({2, 1, 4, 4}), generator);
       }, {"Normalize", "3", "1 channel(s)"}},
      {"a transform on a batch that is not [N, C, H, W]", [] {
         std::mt19937_64 generator(0);
         data::transforms::RandomHorizontalFlip(0.5)(zeros({4, 4}), generator);
       }, {"RandomHorizontalFlip", "[4, 4]"}},
      {"RandomTranslate with a negative shift", [] { data::transforms::RandomTranslate(-1); }, {"RandomTranslate", "-1"}},
      {"RandomHorizontalFlip with p NaN", [] { data::transforms::RandomHorizontalFlip{kNaN}; }, {"RandomHorizontalFlip", "nan"}},
      {"CSVDataset of a missing file", [] { data::CSVDataset("/nonexistent/xgrad/data.csv"); }, {"CSVDataset", "/nonexistent/xgrad/data.csv"}},
      {"CSVDataset row with too few fields", [&] { data::CSVDataset(ragged.str()); }, {"CSVDataset", ragged.str(), "line 3", "2 fields", "expected 3"}},
      {"CSVDataset field that is not a number", [&] { data::CSVDataset(not_a_number.str()); }, {"CSVDataset", "line 2", "column 2", "x2"}},
      {"CSVDataset class label that is not an integer", [&] { data::CSVDataset(fractional_label.str()); }, {"CSVDataset", "0.5", "integer"}},
      {"CSVDataset with no data rows", [&] { data::CSVDataset(header_only.str()); }, {"CSVDataset", "no data rows"}},
      {"CSVDataset with one column only", [&] { data::CSVDataset(one_column.str()); }, {"CSVDataset", "1 column"}},
      {"CSVDataset target name not in the header", [&] { data::CSVDataset(good.str(), data::CSVOptions().target_column(std::string("label"))); }, {"CSVDataset", "label", "a, b, y"}},
      {"CSVDataset target index out of range", [&] { data::CSVDataset(good.str(), data::CSVOptions().target_column(int64_t{3})); }, {"CSVDataset", "3", "out of range"}},
      {"CSVDataset with float64 targets", [&] { data::CSVDataset(good.str(), data::CSVOptions().target_type(kFloat64)); }, {"CSVDataset", "float64"}},
      {"CSVDataset target name without a header", [&] {
         data::CSVDataset(headerless.str(), data::CSVOptions().header(false).target_column(std::string("y")));
       }, {"CSVDataset", "header"}},
      {"read_idx of a missing file", [] { data::read_idx("/nonexistent/xgrad/images.idx"); }, {"read_idx", "/nonexistent/xgrad/images.idx"}},
      {"read_idx of a truncated file", [&] { data::read_idx(truncated_idx.str()); }, {"read_idx", truncated_idx.str(), "truncated"}},
      {"MNIST from a folder without the files", [] { data::MNIST("/nonexistent/xgrad/mnist"); }, {"MNIST", "/nonexistent/xgrad/mnist"}},
      {"write_idx_ubyte with too few values", [] { data::write_idx_ubyte("/tmp/unused.idx", {2, 2}, {1, 2, 3}); }, {"write_idx_ubyte", "[2, 2]", "3"}},
  });
}

TEST_CASE("errors table: modules reject bad names, conversions and state dicts", "[reliability][errors]") {
  nn::Linear linear(2, 3);
  check_table({
      {"a parameter with an empty name", [&] { linear->register_parameter("", zeros({1})); }, {"register_parameter", "empty"}},
      {"a parameter name containing '.'", [&] { linear->register_parameter("a.b", zeros({1})); }, {"register_parameter", "a.b", "'.'"}},
      {"a parameter name already taken", [&] { linear->register_parameter("weight", zeros({1})); }, {"weight"}},
      {"an int64 parameter", [&] { linear->register_parameter("counts", zeros({1}, kInt64)); }, {"register_parameter", "counts", "int64"}},
      {"a null submodule", [&] { linear->register_module("child", std::shared_ptr<nn::Module>()); }, {"register_module", "child", "null"}},
      {"converting a module to int64", [&] { linear->to(kInt64); }, {"Module::to", "int64"}},
      {"looking up a parameter that does not exist", [&] { linear->named_parameters()["nope"]; }, {"nope"}},
      {"a state dict with a tensor of the wrong shape", [&] {
         nn::OrderedDict<Tensor> state = linear->state_dict();
         state["weight"] = zeros({2, 2});
         linear->load_state_dict(state);
       }, {"load_state_dict", "weight", "[2, 2]", "[3, 2]"}},
      {"a state dict missing a key", [&] {
         nn::OrderedDict<Tensor> state = linear->state_dict();
         state.erase("bias");
         linear->load_state_dict(state);
       }, {"load_state_dict", "missing", "bias"}},
      {"nn::load of a missing file", [&] { nn::load(linear, "/nonexistent/xgrad/model.safetensors"); }, {"load", "/nonexistent/xgrad/model.safetensors"}},
  });
}

#pragma once
/// Recurrent layers with PyTorch's names, parameter layout and semantics: the cells RNNCell,
/// LSTMCell, GRUCell (one time step) and the sequence modules RNN, LSTM, GRU (stacked,
/// optionally bidirectional, dropout between layers). Gate rows are PyTorch's: LSTM [i, f, g, o],
/// GRU [r, z, n]. Everything is written with xgrad ops, so gradients of any order come from the tape.
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

// ---- options ----------------------------------------------------------------------------------

/// Options of RNNCell: input_size, hidden_size, bias, nonlinearity ("tanh" or "relu").
struct RNNCellOptions {
  RNNCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  RNNCellOptions& input_size(int64_t value) { input_size_ = value; return *this; }
  RNNCellOptions& hidden_size(int64_t value) { hidden_size_ = value; return *this; }
  RNNCellOptions& bias(bool value) { bias_ = value; return *this; }
  RNNCellOptions& nonlinearity(std::string value) { nonlinearity_ = std::move(value); return *this; }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  bool bias() const { return bias_; }
  const std::string& nonlinearity() const { return nonlinearity_; }

 private:
  int64_t input_size_, hidden_size_;
  bool bias_ = true;
  std::string nonlinearity_ = "tanh";
};

/// Options of LSTMCell and GRUCell: input_size, hidden_size, bias.
struct LSTMCellOptions {
  LSTMCellOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  LSTMCellOptions& input_size(int64_t value) { input_size_ = value; return *this; }
  LSTMCellOptions& hidden_size(int64_t value) { hidden_size_ = value; return *this; }
  LSTMCellOptions& bias(bool value) { bias_ = value; return *this; }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  bool bias() const { return bias_; }

 private:
  int64_t input_size_, hidden_size_;
  bool bias_ = true;
};
using GRUCellOptions = LSTMCellOptions;

/// Options of RNN: input_size, hidden_size, num_layers, nonlinearity ("tanh" or "relu"), bias,
/// batch_first, dropout (between layers, training only), bidirectional.
struct RNNOptions {
  RNNOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  RNNOptions& input_size(int64_t value) { input_size_ = value; return *this; }
  RNNOptions& hidden_size(int64_t value) { hidden_size_ = value; return *this; }
  RNNOptions& num_layers(int64_t value) { num_layers_ = value; return *this; }
  RNNOptions& nonlinearity(std::string value) { nonlinearity_ = std::move(value); return *this; }
  RNNOptions& bias(bool value) { bias_ = value; return *this; }
  RNNOptions& batch_first(bool value) { batch_first_ = value; return *this; }
  RNNOptions& dropout(double value) { dropout_ = value; return *this; }
  RNNOptions& bidirectional(bool value) { bidirectional_ = value; return *this; }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int64_t num_layers() const { return num_layers_; }
  const std::string& nonlinearity() const { return nonlinearity_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }
  double dropout() const { return dropout_; }
  bool bidirectional() const { return bidirectional_; }

 private:
  int64_t input_size_, hidden_size_;
  int64_t num_layers_ = 1;
  std::string nonlinearity_ = "tanh";
  bool bias_ = true;
  bool batch_first_ = false;
  double dropout_ = 0.0;
  bool bidirectional_ = false;
};

/// Options of LSTM and GRU: input_size, hidden_size, num_layers, bias, batch_first, dropout
/// (between layers, training only), bidirectional.
struct LSTMOptions {
  LSTMOptions(int64_t input_size, int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  LSTMOptions& input_size(int64_t value) { input_size_ = value; return *this; }
  LSTMOptions& hidden_size(int64_t value) { hidden_size_ = value; return *this; }
  LSTMOptions& num_layers(int64_t value) { num_layers_ = value; return *this; }
  LSTMOptions& bias(bool value) { bias_ = value; return *this; }
  LSTMOptions& batch_first(bool value) { batch_first_ = value; return *this; }
  LSTMOptions& dropout(double value) { dropout_ = value; return *this; }
  LSTMOptions& bidirectional(bool value) { bidirectional_ = value; return *this; }
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int64_t num_layers() const { return num_layers_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }
  double dropout() const { return dropout_; }
  bool bidirectional() const { return bidirectional_; }

 private:
  int64_t input_size_, hidden_size_;
  int64_t num_layers_ = 1;
  bool bias_ = true;
  bool batch_first_ = false;
  double dropout_ = 0.0;
  bool bidirectional_ = false;
};
using GRUOptions = LSTMOptions;

namespace detail {

/// Which recurrence a cell or sequence module runs.
enum class RNNMode { RnnTanh, RnnRelu, Lstm, Gru };

/// The shared machinery of RNNCell, LSTMCell and GRUCell: parameters and input checks.
class RNNCellImplBase : public Module {
 public:
  /// weight_ih [gates*H, input_size], weight_hh [gates*H, H], bias_ih and bias_hh [gates*H]
  /// (undefined without bias). gates = 4 (LSTM), 3 (GRU), 1 (RNN).
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
  /// Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch.
  void reset_parameters();
  /// "3, 5" plus ", bias=false" and ", nonlinearity=relu" when not the default.
  std::string extra_repr() const override;

 protected:
  RNNCellImplBase(const char* layer, RNNMode mode, int64_t input_size, int64_t hidden_size, bool bias);
  /// Checks input [N, in] or [in] and the hidden state(s) [N, H] or [H]; returns whether batched.
  bool check_forward(const Tensor& input, const std::vector<std::pair<const char*, const Tensor*>>& states) const;
  const char* layer_;
  RNNMode mode_;
  int64_t input_size_, hidden_size_;
  bool bias_;
};

/// The options every sequence module shares (RNN's nonlinearity becomes the mode).
struct RNNBaseOptions {
  RNNMode mode;
  int64_t input_size, hidden_size, num_layers;
  bool bias, batch_first;
  double dropout;
  bool bidirectional;
};

/// The shared machinery of RNN, LSTM and GRU: parameters per layer and direction, checks, and the
/// forward pass (input projection of all steps in one GEMM, one GEMM per step for all gates).
class RNNImplBase : public Module {
 public:
  /// Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch.
  void reset_parameters();
  /// All parameters in PyTorch's flat order: per layer, per direction: w_ih, w_hh[, b_ih, b_hh].
  std::vector<Tensor> flat_weights() const { return flat_weights_; }
  /// The same list (PyTorch's C++ frontend offers both names).
  std::vector<Tensor> all_weights() const { return flat_weights_; }
  /// "28, 128, num_layers=2, batch_first=true, bidirectional=true" (only non-defaults listed).
  std::string extra_repr() const override;

 protected:
  RNNImplBase(const char* layer, const RNNBaseOptions& options);
  /// input [T, N, in] ([N, T, in] with batch_first) or [T, in]; h0 (and c0 for LSTM) [L*D, N, H]
  /// or [L*D, H], undefined = zeros -> (output [T, N, D*H], h_n [L*D, N, H], c_n or undefined).
  std::tuple<Tensor, Tensor, Tensor> run(const Tensor& input, const Tensor& h0, const Tensor& c0) const;
  const char* layer_;
  RNNBaseOptions base_;
  std::vector<Tensor> flat_weights_;
};

}  // namespace detail

// ---- cells --------------------------------------------------------------------------------------

/// An Elman cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu.
class RNNCellImpl : public detail::RNNCellImplBase {
 public:
  explicit RNNCellImpl(const RNNCellOptions& options);
  RNNCellImpl(int64_t input_size, int64_t hidden_size) : RNNCellImpl(RNNCellOptions(input_size, hidden_size)) {}
  /// input [N, in] or [in], hx [N, H] or [H] (undefined = zeros) -> h' [N, H] or [H].
  Tensor forward(const Tensor& input, const Tensor& hx = {});
  RNNCellOptions options;
};
XG_MODULE(RNNCell);

/// A long short-term memory cell (gates i, f, g, o in that row order).
class LSTMCellImpl : public detail::RNNCellImplBase {
 public:
  explicit LSTMCellImpl(const LSTMCellOptions& options);
  LSTMCellImpl(int64_t input_size, int64_t hidden_size) : LSTMCellImpl(LSTMCellOptions(input_size, hidden_size)) {}
  /// input [N, in] or [in], (h, c) each [N, H] or [H] (absent = zeros) -> (h', c').
  std::tuple<Tensor, Tensor> forward(const Tensor& input, std::optional<std::tuple<Tensor, Tensor>> hx = std::nullopt);
  LSTMCellOptions options;
};
XG_MODULE(LSTMCell);

/// A gated recurrent unit cell (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).
class GRUCellImpl : public detail::RNNCellImplBase {
 public:
  explicit GRUCellImpl(const GRUCellOptions& options);
  GRUCellImpl(int64_t input_size, int64_t hidden_size) : GRUCellImpl(GRUCellOptions(input_size, hidden_size)) {}
  /// input [N, in] or [in], hx [N, H] or [H] (undefined = zeros) -> h' [N, H] or [H].
  Tensor forward(const Tensor& input, const Tensor& hx = {});
  GRUCellOptions options;
};
XG_MODULE(GRUCell);

// ---- sequence modules -----------------------------------------------------------------------------

/// A stack of Elman RNN layers. Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
/// bias_hh_l{k} (+ "_reverse" for the backward direction).
class RNNImpl : public detail::RNNImplBase {
 public:
  explicit RNNImpl(const RNNOptions& options);
  RNNImpl(int64_t input_size, int64_t hidden_size) : RNNImpl(RNNOptions(input_size, hidden_size)) {}
  /// input [T, N, in] ([N, T, in] with batch_first) or [T, in]; hx [L*D, N, H] or [L*D, H]
  /// (undefined = zeros) -> (output [T, N, D*H] (batch_first: [N, T, D*H]) or [T, D*H], h_n like hx).
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& hx = {});
  RNNOptions options;
};
XG_MODULE(RNN);

/// A stack of LSTM layers (gate rows [i, f, g, o]); parameters named as RNN's.
class LSTMImpl : public detail::RNNImplBase {
 public:
  explicit LSTMImpl(const LSTMOptions& options);
  LSTMImpl(int64_t input_size, int64_t hidden_size) : LSTMImpl(LSTMOptions(input_size, hidden_size)) {}
  /// input [T, N, in] ([N, T, in] with batch_first) or [T, in]; (h0, c0) each [L*D, N, H] or
  /// [L*D, H] (absent = zeros) -> (output [T, N, D*H], (h_n, c_n) shaped like h0).
  std::tuple<Tensor, std::tuple<Tensor, Tensor>> forward(const Tensor& input,
                                                         std::optional<std::tuple<Tensor, Tensor>> hx = std::nullopt);
  LSTMOptions options;
};
XG_MODULE(LSTM);

/// A stack of GRU layers (gate rows [r, z, n]); parameters named as RNN's.
class GRUImpl : public detail::RNNImplBase {
 public:
  explicit GRUImpl(const GRUOptions& options);
  GRUImpl(int64_t input_size, int64_t hidden_size) : GRUImpl(GRUOptions(input_size, hidden_size)) {}
  /// input [T, N, in] ([N, T, in] with batch_first) or [T, in]; hx [L*D, N, H] or [L*D, H]
  /// (undefined = zeros) -> (output [T, N, D*H], h_n like hx).
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& hx = {});
  GRUOptions options;
};
XG_MODULE(GRU);

}  // namespace xg::nn

// Recurrent layers. Every step is composed of xgrad ops (no hand-written backward): gradients and
// second derivatives come from the tape. Speed comes from the GEMM layout, as in cuDNN-less PyTorch:
// the input projection of all time steps is one GEMM per layer and direction, and each step costs
// one more GEMM that produces all gates of the recurrent part at once, split afterwards.
#include "xgrad/nn/rnn.hpp"

#include <cmath>

#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/init.hpp"

namespace xg::nn {

using detail::RNNMode;

namespace {

int64_t gate_count(RNNMode mode) {
  switch (mode) {
    case RNNMode::Lstm: return 4;
    case RNNMode::Gru: return 3;
    default: return 1;
  }
}

RNNMode mode_from_nonlinearity(const char* layer, const std::string& nonlinearity) {
  if (nonlinearity == "tanh") return RNNMode::RnnTanh;
  if (nonlinearity == "relu") return RNNMode::RnnRelu;
  XG_ERROR("{}: nonlinearity must be \"tanh\" or \"relu\", got \"{}\"", layer, nonlinearity);
}

/// Fills with U(-1/sqrt(H), 1/sqrt(H)), PyTorch's initialisation of every recurrent weight and bias.
void uniform_init(const std::vector<Tensor>& parameters, int64_t hidden_size) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  for (const Tensor& p : parameters)
    if (p.defined()) init::uniform_(p, -bound, bound);
}

// ---- one time step of each recurrence ------------------------------------------------------------
// input_gates is x W_ih^T + b_ih for this step ([.., G*H], computed ahead for the whole sequence);
// h and c are [.., H]. The recurrent part is one GEMM for all gates.

Tensor rnn_step(const Tensor& input_gates, const Tensor& h, const Tensor& w_hh, const Tensor& b_hh, bool use_relu) {
  Tensor pre_activation = add(input_gates, linear(h, w_hh, b_hh));
  return use_relu ? relu(pre_activation) : tanh(pre_activation);
}

std::pair<Tensor, Tensor> lstm_step(const Tensor& input_gates, const Tensor& h, const Tensor& c, const Tensor& w_hh,
                                    const Tensor& b_hh) {
  TensorList gates = chunk(add(input_gates, linear(h, w_hh, b_hh)), 4, -1);  // rows [i, f, g, o]
  Tensor in_gate = sigmoid(gates[0]);
  Tensor forget_gate = sigmoid(gates[1]);
  Tensor cell_candidate = tanh(gates[2]);
  Tensor out_gate = sigmoid(gates[3]);
  Tensor c_next = add(mul(forget_gate, c), mul(in_gate, cell_candidate));
  return {mul(out_gate, tanh(c_next)), c_next};
}

Tensor gru_step(const Tensor& input_gates, const Tensor& h, const Tensor& w_hh, const Tensor& b_hh, int64_t hidden_size) {
  // Rows [r, z, n]. r and z add input and hidden parts before the sigmoid, so they go through one
  // sigmoid together; n keeps its hidden part separate: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
  Tensor hidden_gates = linear(h, w_hh, b_hh);
  const std::vector<int64_t> sizes{2 * hidden_size, hidden_size};
  TensorList input_parts = split_with_sizes(input_gates, sizes, -1);
  TensorList hidden_parts = split_with_sizes(hidden_gates, sizes, -1);
  TensorList reset_update = chunk(sigmoid(add(input_parts[0], hidden_parts[0])), 2, -1);
  Tensor candidate = tanh(add(input_parts[1], mul(reset_update[0], hidden_parts[1])));
  // (1 - z) * n + z * h, with one multiplication fewer.
  return add(candidate, mul(reset_update[1], sub(h, candidate)));
}

void check_sizes(const char* layer, int64_t input_size, int64_t hidden_size) {
  XG_CHECK(input_size > 0, "{}: input_size must be positive, got {}", layer, input_size);
  XG_CHECK(hidden_size > 0, "{}: hidden_size must be positive, got {}", layer, hidden_size);
}

void check_input_dtype(const char* layer, const Tensor& input, const Tensor& weight) {
  XG_CHECK(input.is_floating_point(), "{}: expected a float32 or float64 input, got {}", layer, input.dtype());
  XG_CHECK(input.dtype() == weight.dtype(),
           "{}: the input is {} but the parameters are {} (convert one with .to() or module->to())", layer, input.dtype(),
           weight.dtype());
}

}  // namespace

namespace detail {

// ---- cells -------------------------------------------------------------------------------------------

RNNCellImplBase::RNNCellImplBase(const char* layer, RNNMode mode, int64_t input_size, int64_t hidden_size, bool bias)
    : Module(layer), layer_(layer), mode_(mode), input_size_(input_size), hidden_size_(hidden_size), bias_(bias) {
  check_sizes(layer, input_size, hidden_size);
  const int64_t gate_rows = gate_count(mode) * hidden_size;
  weight_ih = register_parameter("weight_ih", empty({gate_rows, input_size}));
  weight_hh = register_parameter("weight_hh", empty({gate_rows, hidden_size}));
  // Without bias the names stay registered as undefined, as PyTorch's C++ cells do.
  bias_ih = register_parameter("bias_ih", bias ? empty({gate_rows}) : Tensor(), bias);
  bias_hh = register_parameter("bias_hh", bias ? empty({gate_rows}) : Tensor(), bias);
  reset_parameters();
}

void RNNCellImplBase::reset_parameters() { uniform_init({weight_ih, weight_hh, bias_ih, bias_hh}, hidden_size_); }

std::string RNNCellImplBase::extra_repr() const {
  std::string text = fmt::format("{}, {}", input_size_, hidden_size_);
  if (!bias_) text += ", bias=false";
  if (mode_ == RNNMode::RnnRelu) text += ", nonlinearity=relu";
  return text;
}

bool RNNCellImplBase::check_forward(const Tensor& input,
                                    const std::vector<std::pair<const char*, const Tensor*>>& states) const {
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", layer_);
  XG_CHECK(input.dim() == 1 || input.dim() == 2,
           "{}: expected input to be 1-D ([input_size]) or 2-D ([batch, input_size]), got shape {}", layer_,
           shape_string(input.shape()));
  XG_CHECK(input.size(-1) == input_size_, "{}: expected input with {} features (input_size), got shape {}", layer_,
           input_size_, shape_string(input.shape()));
  check_input_dtype(layer_, input, weight_ih);
  const bool batched = input.dim() == 2;
  const Shape expected = batched ? Shape{input.size(0), hidden_size_} : Shape{hidden_size_};
  for (const auto& [name, state] : states) {
    if (!state->defined()) continue;
    XG_CHECK(state->shape() == expected, "{}: expected {} of shape {} for input of shape {}, got {}", layer_, name,
             shape_string(expected), shape_string(input.shape()), shape_string(state->shape()));
    XG_CHECK(state->dtype() == input.dtype(), "{}: {} is {} but the input is {}", layer_, name, state->dtype(), input.dtype());
  }
  return batched;
}

// ---- sequence modules ---------------------------------------------------------------------------------

RNNImplBase::RNNImplBase(const char* layer, const RNNBaseOptions& options) : Module(layer), layer_(layer), base_(options) {
  check_sizes(layer, options.input_size, options.hidden_size);
  XG_CHECK(options.num_layers > 0, "{}: num_layers must be positive, got {}", layer, options.num_layers);
  XG_CHECK(options.dropout >= 0.0 && options.dropout <= 1.0,
           "{}: dropout must be in [0, 1] (the probability of zeroing an element between layers), got {}", layer,
           options.dropout);
  const int64_t directions = options.bidirectional ? 2 : 1;
  const int64_t gate_rows = gate_count(options.mode) * options.hidden_size;
  for (int64_t layer_index = 0; layer_index < options.num_layers; ++layer_index) {
    const int64_t layer_input = layer_index == 0 ? options.input_size : options.hidden_size * directions;
    for (int64_t direction = 0; direction < directions; ++direction) {
      const std::string suffix = fmt::format("_l{}{}", layer_index, direction == 1 ? "_reverse" : "");
      flat_weights_.push_back(register_parameter("weight_ih" + suffix, empty({gate_rows, layer_input})));
      flat_weights_.push_back(register_parameter("weight_hh" + suffix, empty({gate_rows, options.hidden_size})));
      if (options.bias) {
        flat_weights_.push_back(register_parameter("bias_ih" + suffix, empty({gate_rows})));
        flat_weights_.push_back(register_parameter("bias_hh" + suffix, empty({gate_rows})));
      }
    }
  }
  reset_parameters();
}

void RNNImplBase::reset_parameters() { uniform_init(flat_weights_, base_.hidden_size); }

std::string RNNImplBase::extra_repr() const {
  std::string text = fmt::format("{}, {}", base_.input_size, base_.hidden_size);
  if (base_.num_layers != 1) text += fmt::format(", num_layers={}", base_.num_layers);
  if (!base_.bias) text += ", bias=false";
  if (base_.batch_first) text += ", batch_first=true";
  if (base_.dropout != 0.0) text += fmt::format(", dropout={}", base_.dropout);
  if (base_.bidirectional) text += ", bidirectional=true";
  if (base_.mode == RNNMode::RnnRelu) text += ", nonlinearity=relu";
  return text;
}

std::tuple<Tensor, Tensor, Tensor> RNNImplBase::run(const Tensor& input, const Tensor& h0, const Tensor& c0) const {
  const bool is_lstm = base_.mode == RNNMode::Lstm;
  XG_CHECK(input.defined(), "{}: the input tensor is undefined", layer_);
  XG_CHECK(input.dim() == 2 || input.dim() == 3,
           "{}: expected input to be 2-D (unbatched [seq_len, input_size]) or 3-D ([seq_len, batch, input_size], or "
           "[batch, seq_len, input_size] with batch_first), got shape {}",
           layer_, shape_string(input.shape()));
  XG_CHECK(input.size(-1) == base_.input_size, "{}: expected input with {} features (input_size), got shape {}", layer_,
           base_.input_size, shape_string(input.shape()));
  check_input_dtype(layer_, input, flat_weights_[0]);
  const bool batched = input.dim() == 3;
  // Time-major [T, N, in] from here on.
  const Tensor x = !batched ? unsqueeze(input, 1) : base_.batch_first ? transpose(input, 0, 1) : input;
  const int64_t steps = x.size(0), batch = x.size(1), hidden = base_.hidden_size;
  XG_CHECK(steps > 0, "{}: expected a sequence of at least one step, got input of shape {}", layer_,
           shape_string(input.shape()));
  const int64_t directions = base_.bidirectional ? 2 : 1, layers = base_.num_layers;
  const int64_t states = layers * directions;

  // Initial states as one [1, N, H] piece per layer and direction.
  const Shape state_shape = batched ? Shape{states, batch, hidden} : Shape{states, hidden};
  auto initial_states = [&](const Tensor& given, const char* name) {
    if (!given.defined()) return TensorList(states, zeros({1, batch, hidden}, x.dtype()));
    XG_CHECK(given.shape() == state_shape,
             "{}: expected {} of shape {} (num_layers * num_directions, {}hidden_size) for input of shape {}, got {}",
             layer_, name, shape_string(state_shape), batched ? "batch, " : "", shape_string(input.shape()),
             shape_string(given.shape()));
    XG_CHECK(given.dtype() == x.dtype(), "{}: {} is {} but the input is {}", layer_, name, given.dtype(), x.dtype());
    return split(batched ? given : unsqueeze(given, 1), 1, 0);
  };
  const TensorList h_initial = initial_states(h0, "h0");
  const TensorList c_initial = is_lstm ? initial_states(c0, "c0") : TensorList();

  const size_t per_direction = base_.bias ? 4 : 2;
  TensorList h_final(states), c_final(is_lstm ? states : 0);
  Tensor layer_input = x;
  for (int64_t layer_index = 0; layer_index < layers; ++layer_index) {
    TensorList direction_outputs;
    for (int64_t direction = 0; direction < directions; ++direction) {
      const int64_t state_index = layer_index * directions + direction;
      const Tensor* weights = &flat_weights_[state_index * per_direction];
      const Tensor no_bias;
      const Tensor& b_ih = base_.bias ? weights[2] : no_bias;
      const Tensor& b_hh = base_.bias ? weights[3] : no_bias;
      // All time steps' input projections in one GEMM: [T, N, in] -> [T, N, G*H], then T pieces.
      const TensorList input_gates = split(linear(layer_input, weights[0], b_ih), 1, 0);
      Tensor h = h_initial[state_index];
      Tensor c = is_lstm ? c_initial[state_index] : Tensor();
      TensorList outputs(steps);
      for (int64_t k = 0; k < steps; ++k) {
        const int64_t t = direction == 0 ? k : steps - 1 - k;  // the reverse direction reads the sequence backwards
        switch (base_.mode) {
          case RNNMode::Lstm: std::tie(h, c) = lstm_step(input_gates[t], h, c, weights[1], b_hh); break;
          case RNNMode::Gru: h = gru_step(input_gates[t], h, weights[1], b_hh, hidden); break;
          case RNNMode::RnnTanh: h = rnn_step(input_gates[t], h, weights[1], b_hh, false); break;
          case RNNMode::RnnRelu: h = rnn_step(input_gates[t], h, weights[1], b_hh, true); break;
        }
        outputs[t] = h;
      }
      h_final[state_index] = h;
      if (is_lstm) c_final[state_index] = c;
      direction_outputs.push_back(cat(outputs, 0));  // [T, N, H]
    }
    layer_input = directions == 1 ? direction_outputs[0] : cat(direction_outputs, 2);  // [T, N, D*H]
    // Dropout on every layer's output but the last, in training only (the identity otherwise).
    if (layer_index + 1 < layers) layer_input = functional::dropout(layer_input, base_.dropout, is_training());
  }

  Tensor output = layer_input, h_n = cat(h_final, 0), c_n = is_lstm ? cat(c_final, 0) : Tensor();
  if (!batched) {
    output = squeeze(output, 1);
    h_n = squeeze(h_n, 1);
    if (is_lstm) c_n = squeeze(c_n, 1);
  } else if (base_.batch_first) {
    output = transpose(output, 0, 1);
  }
  return {output, h_n, c_n};
}

}  // namespace detail

// ---- cells ---------------------------------------------------------------------------------------------

RNNCellImpl::RNNCellImpl(const RNNCellOptions& options_)
    : RNNCellImplBase("RNNCell", mode_from_nonlinearity("RNNCell", options_.nonlinearity()), options_.input_size(),
                      options_.hidden_size(), options_.bias()),
      options(options_) {}

Tensor RNNCellImpl::forward(const Tensor& input, const Tensor& hx) {
  const bool batched = check_forward(input, {{"hx", &hx}});
  const Tensor x = batched ? input : unsqueeze(input, 0);
  const Tensor h = !hx.defined() ? zeros({x.size(0), hidden_size_}, x.dtype()) : batched ? hx : unsqueeze(hx, 0);
  Tensor h_next = rnn_step(linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, mode_ == RNNMode::RnnRelu);
  return batched ? h_next : squeeze(h_next, 0);
}

LSTMCellImpl::LSTMCellImpl(const LSTMCellOptions& options_)
    : RNNCellImplBase("LSTMCell", RNNMode::Lstm, options_.input_size(), options_.hidden_size(), options_.bias()),
      options(options_) {}

std::tuple<Tensor, Tensor> LSTMCellImpl::forward(const Tensor& input, std::optional<std::tuple<Tensor, Tensor>> hx) {
  Tensor h0, c0;
  if (hx) std::tie(h0, c0) = *hx;
  const bool batched = check_forward(input, {{"h", &h0}, {"c", &c0}});
  const Tensor x = batched ? input : unsqueeze(input, 0);
  auto state = [&](const Tensor& given) {
    return !given.defined() ? zeros({x.size(0), hidden_size_}, x.dtype()) : batched ? given : unsqueeze(given, 0);
  };
  auto [h_next, c_next] = lstm_step(linear(x, weight_ih, bias_ih), state(h0), state(c0), weight_hh, bias_hh);
  if (!batched) return {squeeze(h_next, 0), squeeze(c_next, 0)};
  return {h_next, c_next};
}

GRUCellImpl::GRUCellImpl(const GRUCellOptions& options_)
    : RNNCellImplBase("GRUCell", RNNMode::Gru, options_.input_size(), options_.hidden_size(), options_.bias()),
      options(options_) {}

Tensor GRUCellImpl::forward(const Tensor& input, const Tensor& hx) {
  const bool batched = check_forward(input, {{"hx", &hx}});
  const Tensor x = batched ? input : unsqueeze(input, 0);
  const Tensor h = !hx.defined() ? zeros({x.size(0), hidden_size_}, x.dtype()) : batched ? hx : unsqueeze(hx, 0);
  Tensor h_next = gru_step(linear(x, weight_ih, bias_ih), h, weight_hh, bias_hh, hidden_size_);
  return batched ? h_next : squeeze(h_next, 0);
}

// ---- sequence modules ----------------------------------------------------------------------------------

RNNImpl::RNNImpl(const RNNOptions& options_)
    : RNNImplBase("RNN", {mode_from_nonlinearity("RNN", options_.nonlinearity()), options_.input_size(),
                          options_.hidden_size(), options_.num_layers(), options_.bias(), options_.batch_first(),
                          options_.dropout(), options_.bidirectional()}),
      options(options_) {}

std::tuple<Tensor, Tensor> RNNImpl::forward(const Tensor& input, const Tensor& hx) {
  auto [output, h_n, unused] = run(input, hx, Tensor());
  return {output, h_n};
}

LSTMImpl::LSTMImpl(const LSTMOptions& options_)
    : RNNImplBase("LSTM", {RNNMode::Lstm, options_.input_size(), options_.hidden_size(), options_.num_layers(),
                           options_.bias(), options_.batch_first(), options_.dropout(), options_.bidirectional()}),
      options(options_) {}

std::tuple<Tensor, std::tuple<Tensor, Tensor>> LSTMImpl::forward(const Tensor& input,
                                                                 std::optional<std::tuple<Tensor, Tensor>> hx) {
  Tensor h0, c0;
  if (hx) std::tie(h0, c0) = *hx;
  auto [output, h_n, c_n] = run(input, h0, c0);
  return {output, {h_n, c_n}};
}

GRUImpl::GRUImpl(const GRUOptions& options_)
    : RNNImplBase("GRU", {RNNMode::Gru, options_.input_size(), options_.hidden_size(), options_.num_layers(),
                          options_.bias(), options_.batch_first(), options_.dropout(), options_.bidirectional()}),
      options(options_) {}

std::tuple<Tensor, Tensor> GRUImpl::forward(const Tensor& input, const Tensor& hx) {
  auto [output, h_n, unused] = run(input, hx, Tensor());
  return {output, h_n};
}

}  // namespace xg::nn

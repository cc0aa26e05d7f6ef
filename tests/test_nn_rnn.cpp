// Recurrent layers: cell values against the gate equations written here as plain loops, stacked
// bidirectional sequences against a plain-loop reference, h_n against the output's ends,
// batch_first and unbatched equivalence, float64 gradcheck w.r.t. input, states and every parameter,
// gradgradcheck of a cell, dropout between layers, parameter names and init, errors, printing.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;
using Vec = std::vector<double>;

namespace {

Vec values_of(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  return Vec(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

/// Deterministic, distinct values in about [-0.9, 0.9], different per `seed`.
Vec pattern(int64_t count, double seed) {
  Vec v(count);
  for (int64_t i = 0; i < count; ++i) v[i] = 0.9 * std::sin(1.3 * static_cast<double>(i) + seed);
  return v;
}

/// Overwrites every parameter of a float64 module with pattern values (seeded by position).
void set_known_weights(nn::Module& module) {
  NoGradGuard no_grad;
  double seed = 0.5;
  for (Tensor p : module.parameters()) {
    p.copy_(tensor(pattern(p.numel(), seed), p.shape(), kFloat64));
    seed += 0.77;
  }
}

void check_close(const Tensor& actual, const Vec& expected, double tolerance = 1e-12) {
  Vec got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).margin(tolerance));
}

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

/// W [rows, cols] row-major times x, plus b (b may be empty for no bias).
Vec affine(const Vec& w, const Vec& b, const Vec& x, int64_t rows) {
  const int64_t cols = static_cast<int64_t>(x.size());
  Vec out(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = b.empty() ? 0.0 : b[r];
    for (int64_t c = 0; c < cols; ++c) sum += w[r * cols + c] * x[c];
    out[r] = sum;
  }
  return out;
}

/// The weights of one cell (or one layer and direction), and its recurrence.
struct RefCell {
  char mode;  // 'l' LSTM, 'g' GRU, 't' tanh RNN, 'r' relu RNN
  int64_t hidden;
  Vec w_ih, w_hh, b_ih, b_hh;

  int64_t gates() const { return mode == 'l' ? 4 : mode == 'g' ? 3 : 1; }

  /// One step for one sample: updates h (and c for LSTM) in place, from the PyTorch documentation's equations.
  void step(const Vec& x, Vec& h, Vec& c) const {
    const int64_t H = hidden;
    Vec gi = affine(w_ih, b_ih, x, gates() * H), gh = affine(w_hh, b_hh, h, gates() * H);
    Vec h_next(H), c_next(c);
    for (int64_t j = 0; j < H; ++j) {
      if (mode == 'l') {
        double i = sigmoid_ref(gi[j] + gh[j]), f = sigmoid_ref(gi[H + j] + gh[H + j]);
        double g = std::tanh(gi[2 * H + j] + gh[2 * H + j]), o = sigmoid_ref(gi[3 * H + j] + gh[3 * H + j]);
        c_next[j] = f * c[j] + i * g;
        h_next[j] = o * std::tanh(c_next[j]);
      } else if (mode == 'g') {
        double r = sigmoid_ref(gi[j] + gh[j]), z = sigmoid_ref(gi[H + j] + gh[H + j]);
        double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
        h_next[j] = (1 - z) * n + z * h[j];
      } else {
        double pre = gi[j] + gh[j];
        h_next[j] = mode == 't' ? std::tanh(pre) : std::max(pre, 0.0);
      }
    }
    h = h_next;
    c = c_next;
  }
};

/// Reads the cell weights of a module by the given parameter-name suffix ("" for cells, "_l1_reverse").
RefCell ref_cell(nn::Module& module, char mode, int64_t hidden, const std::string& suffix) {
  auto params = module.named_parameters();
  RefCell cell{mode, hidden, values_of(params["weight_ih" + suffix]), values_of(params["weight_hh" + suffix]), {}, {}};
  if (params.contains("bias_ih" + suffix)) {
    cell.b_ih = values_of(params["bias_ih" + suffix]);
    cell.b_hh = values_of(params["bias_hh" + suffix]);
  }
  return cell;
}

/// Row n of a [N, F] value list.
Vec row(const Vec& v, int64_t n, int64_t width) { return Vec(v.begin() + n * width, v.begin() + (n + 1) * width); }

/// Plain-loop stacked (bi)directional recurrence. x: [T][N][in] flattened; h0/c0: [L*D][N][H].
/// Returns output [T][N][D*H], h_n and c_n [L*D][N][H].
struct RefResult {
  Vec output, h_n, c_n;
};
RefResult ref_sequence(nn::Module& module, char mode, int64_t layers, bool bidirectional, int64_t hidden, const Vec& x,
                       int64_t steps, int64_t batch, int64_t input_size, const Vec& h0, const Vec& c0) {
  const int64_t D = bidirectional ? 2 : 1, H = hidden;
  Vec layer_in = x;
  int64_t width = input_size;
  RefResult result{{}, Vec(layers * D * batch * H), Vec(layers * D * batch * H)};
  for (int64_t l = 0; l < layers; ++l) {
    Vec layer_out(steps * batch * D * H);
    for (int64_t d = 0; d < D; ++d) {
      RefCell cell = ref_cell(module, mode, H, "_l" + std::to_string(l) + (d == 1 ? "_reverse" : ""));
      const int64_t s = l * D + d;
      for (int64_t n = 0; n < batch; ++n) {
        Vec h = row(h0, s * batch + n, H), c = row(c0, s * batch + n, H);
        for (int64_t k = 0; k < steps; ++k) {
          const int64_t t = d == 0 ? k : steps - 1 - k;
          cell.step(row(layer_in, t * batch + n, width), h, c);
          for (int64_t j = 0; j < H; ++j) layer_out[(t * batch + n) * D * H + d * H + j] = h[j];
        }
        for (int64_t j = 0; j < H; ++j) {
          result.h_n[(s * batch + n) * H + j] = h[j];
          result.c_n[(s * batch + n) * H + j] = c[j];
        }
      }
    }
    layer_in = layer_out;
    width = D * H;
  }
  result.output = layer_in;
  return result;
}

TensorList module_inputs(nn::Module& module, TensorList leading) {
  for (const Tensor& p : module.parameters()) leading.push_back(p);
  return leading;
}

}  // namespace

// ---- cells -------------------------------------------------------------------------------------------

TEST_CASE("LSTMCell, GRUCell, RNNCell follow the gate equations (batched, unbatched, default zero state)", "[nn][rnn]") {
  const int64_t N = 2, in = 3, H = 2;
  const Vec x = pattern(N * in, 0.1), h = pattern(N * H, 2.0), c = pattern(N * H, 3.0);
  const Tensor xt = tensor(x, {N, in}, kFloat64), ht = tensor(h, {N, H}, kFloat64), ct = tensor(c, {N, H}, kFloat64);

  auto reference = [&](const RefCell& cell, bool zero_state) {
    Vec h_out, c_out;
    for (int64_t n = 0; n < N; ++n) {
      Vec hn = zero_state ? Vec(H, 0.0) : row(h, n, H), cn = zero_state ? Vec(H, 0.0) : row(c, n, H);
      cell.step(row(x, n, in), hn, cn);
      h_out.insert(h_out.end(), hn.begin(), hn.end());
      c_out.insert(c_out.end(), cn.begin(), cn.end());
    }
    return std::make_pair(h_out, c_out);
  };

  SECTION("LSTMCell") {
    nn::LSTMCell cell(in, H);
    cell->to(kFloat64);
    set_known_weights(*cell);
    RefCell ref = ref_cell(*cell, 'l', H, "");
    auto [h1, c1] = cell(xt, std::make_tuple(ht, ct));
    CHECK(h1.shape() == Shape{N, H});
    check_close(h1, reference(ref, false).first);
    check_close(c1, reference(ref, false).second);
    auto [h0, c0] = cell(xt);
    check_close(h0, reference(ref, true).first);
    check_close(c0, reference(ref, true).second);
    // unbatched: [in] with [H] states gives [H]
    auto [hu, cu] = cell(xt.narrow(0, 1, 1).squeeze(0), std::make_tuple(ht.narrow(0, 1, 1).squeeze(0), ct.narrow(0, 1, 1).squeeze(0)));
    CHECK(hu.shape() == Shape{H});
    check_close(hu, row(reference(ref, false).first, 1, H));
    check_close(cu, row(reference(ref, false).second, 1, H));
  }
  SECTION("GRUCell") {
    nn::GRUCell cell(in, H);
    cell->to(kFloat64);
    set_known_weights(*cell);
    RefCell ref = ref_cell(*cell, 'g', H, "");
    check_close(cell(xt, ht), reference(ref, false).first);
    check_close(cell(xt), reference(ref, true).first);
    Tensor hu = cell(xt.narrow(0, 0, 1).squeeze(0), ht.narrow(0, 0, 1).squeeze(0));
    CHECK(hu.shape() == Shape{H});
    check_close(hu, row(reference(ref, false).first, 0, H));
  }
  SECTION("RNNCell tanh and relu, with and without bias") {
    nn::RNNCell tanh_cell(in, H);
    tanh_cell->to(kFloat64);
    set_known_weights(*tanh_cell);
    check_close(tanh_cell(xt, ht), reference(ref_cell(*tanh_cell, 't', H, ""), false).first);
    nn::RNNCell relu_cell(nn::RNNCellOptions(in, H).nonlinearity("relu").bias(false));
    relu_cell->to(kFloat64);
    set_known_weights(*relu_cell);
    RefCell ref = ref_cell(*relu_cell, 'r', H, "");
    CHECK(ref.b_ih.empty());
    Vec expected = reference(ref, false).first;
    int zeros_seen = 0, positives = 0;
    for (double v : expected) (v == 0.0 ? zeros_seen : positives)++;
    CHECK(zeros_seen > 0);  // the relu branch is exercised on both sides
    CHECK(positives > 0);
    check_close(relu_cell(xt, ht), expected);
  }
}

TEST_CASE("gradgradcheck of LSTMCell w.r.t. input, states and parameters", "[nn][rnn]") {
  manual_seed(11);
  nn::LSTMCell cell(3, 2);
  cell->to(kFloat64);
  Tensor x = randn({2, 3}, kFloat64).requires_grad_();
  Tensor h = randn({2, 2}, kFloat64).requires_grad_();
  Tensor c = randn({2, 2}, kFloat64).requires_grad_();
  autograd::GradcheckFunction f = [&](const TensorList& in) {
    auto [h1, c1] = cell(in[0], std::make_tuple(in[1], in[2]));
    return TensorList{h1, c1};
  };
  TensorList inputs = module_inputs(*cell, {x, h, c});
  CHECK(autograd::gradcheck(f, inputs));
  CHECK(autograd::gradgradcheck(f, inputs));
}

TEST_CASE("gradcheck of GRUCell and RNNCell", "[nn][rnn]") {
  manual_seed(12);
  nn::GRUCell gru(3, 2);
  gru->to(kFloat64);
  nn::RNNCell rnn(3, 2);
  rnn->to(kFloat64);
  Tensor x = randn({2, 3}, kFloat64).requires_grad_();
  Tensor h = randn({2, 2}, kFloat64).requires_grad_();
  std::function<Tensor(const TensorList&)> f_gru = [&](const TensorList& in) { return gru(in[0], in[1]); };
  std::function<Tensor(const TensorList&)> f_rnn = [&](const TensorList& in) { return rnn(in[0], in[1]); };
  CHECK(autograd::gradcheck(f_gru, module_inputs(*gru, {x, h})));
  CHECK(autograd::gradcheck(f_rnn, module_inputs(*rnn, {x, h})));
}

// ---- sequence modules ----------------------------------------------------------------------------------

TEST_CASE("stacked bidirectional LSTM, GRU, RNN match a plain-loop reference", "[nn][rnn]") {
  const int64_t T = 4, N = 2, in = 3, H = 2, L = 2, D = 2;
  const Vec x = pattern(T * N * in, 0.3), h0 = pattern(L * D * N * H, 1.1), c0 = pattern(L * D * N * H, 4.2);
  const Tensor xt = tensor(x, {T, N, in}, kFloat64);
  const Tensor h0t = tensor(h0, {L * D, N, H}, kFloat64), c0t = tensor(c0, {L * D, N, H}, kFloat64);
  const Vec zero_state(L * D * N * H, 0.0);

  SECTION("LSTM") {
    nn::LSTM lstm(nn::LSTMOptions(in, H).num_layers(L).bidirectional(true));
    lstm->to(kFloat64);
    set_known_weights(*lstm);
    RefResult ref = ref_sequence(*lstm, 'l', L, true, H, x, T, N, in, h0, c0);
    auto [output, state] = lstm(xt, std::make_tuple(h0t, c0t));
    auto [h_n, c_n] = state;
    CHECK(output.shape() == Shape{T, N, D * H});
    CHECK(h_n.shape() == Shape{L * D, N, H});
    check_close(output, ref.output);
    check_close(h_n, ref.h_n);
    check_close(c_n, ref.c_n);
    RefResult zero = ref_sequence(*lstm, 'l', L, true, H, x, T, N, in, zero_state, zero_state);
    check_close(std::get<0>(lstm(xt)), zero.output);
  }
  SECTION("GRU without bias") {
    nn::GRU gru(nn::GRUOptions(in, H).num_layers(L).bidirectional(true).bias(false));
    gru->to(kFloat64);
    set_known_weights(*gru);
    RefResult ref = ref_sequence(*gru, 'g', L, true, H, x, T, N, in, h0, zero_state);
    auto [output, h_n] = gru(xt, h0t);
    check_close(output, ref.output);
    check_close(h_n, ref.h_n);
  }
  SECTION("GRU, one direction, three layers") {
    nn::GRU gru(nn::GRUOptions(in, H).num_layers(3));
    gru->to(kFloat64);
    set_known_weights(*gru);
    const Vec h0_3 = pattern(3 * N * H, 0.9);
    RefResult ref = ref_sequence(*gru, 'g', 3, false, H, x, T, N, in, h0_3, Vec(3 * N * H, 0.0));
    auto [output, h_n] = gru(xt, tensor(h0_3, {3, N, H}, kFloat64));
    CHECK(output.shape() == Shape{T, N, H});
    check_close(output, ref.output);
    check_close(h_n, ref.h_n);
  }
  SECTION("RNN relu, bidirectional") {
    nn::RNN rnn(nn::RNNOptions(in, H).num_layers(L).bidirectional(true).nonlinearity("relu"));
    rnn->to(kFloat64);
    set_known_weights(*rnn);
    RefResult ref = ref_sequence(*rnn, 'r', L, true, H, x, T, N, in, h0, zero_state);
    auto [output, h_n] = rnn(xt, h0t);
    check_close(output, ref.output);
    check_close(h_n, ref.h_n);
  }
}

TEST_CASE("multi-layer bidirectional shapes; h_n holds the forward direction's last step and the reverse's first", "[nn][rnn]") {
  manual_seed(5);
  const int64_t T = 6, N = 3, in = 5, H = 4, L = 3;
  Tensor x = randn({T, N, in});
  nn::LSTM lstm(nn::LSTMOptions(in, H).num_layers(L).bidirectional(true));
  auto [output, state] = lstm(x);
  auto [h_n, c_n] = state;
  CHECK(output.shape() == Shape{T, N, 2 * H});
  CHECK(h_n.shape() == Shape{2 * L, N, H});
  CHECK(c_n.shape() == Shape{2 * L, N, H});
  CHECK(output.dtype() == kFloat32);
  // layer L-1: forward direction is state 2L-2, reverse is 2L-1
  CHECK(equal(output.narrow(0, T - 1, 1).narrow(2, 0, H).squeeze(0), h_n.narrow(0, 2 * L - 2, 1).squeeze(0)));
  CHECK(equal(output.narrow(0, 0, 1).narrow(2, H, H).squeeze(0), h_n.narrow(0, 2 * L - 1, 1).squeeze(0)));
  CHECK_FALSE(equal(output.narrow(0, 0, 1).narrow(2, 0, H).squeeze(0), h_n.narrow(0, 2 * L - 2, 1).squeeze(0)));

  nn::GRU gru(nn::GRUOptions(in, H).num_layers(2).bidirectional(true));
  auto [gru_out, gru_h] = gru(x);
  CHECK(gru_out.shape() == Shape{T, N, 2 * H});
  CHECK(gru_h.shape() == Shape{4, N, H});
  CHECK(equal(gru_out.narrow(0, T - 1, 1).narrow(2, 0, H).squeeze(0), gru_h.narrow(0, 2, 1).squeeze(0)));
  CHECK(equal(gru_out.narrow(0, 0, 1).narrow(2, H, H).squeeze(0), gru_h.narrow(0, 3, 1).squeeze(0)));

  nn::RNN rnn(nn::RNNOptions(in, H).num_layers(2));
  auto [rnn_out, rnn_h] = rnn(x);
  CHECK(rnn_out.shape() == Shape{T, N, H});
  CHECK(rnn_h.shape() == Shape{2, N, H});
  CHECK(equal(rnn_out.narrow(0, T - 1, 1).squeeze(0), rnn_h.narrow(0, 1, 1).squeeze(0)));
}

TEST_CASE("batch_first permutes input and output only; unbatched input equals a batch of one", "[nn][rnn]") {
  manual_seed(6);
  const int64_t T = 5, N = 3, in = 4, H = 3;
  nn::LSTM time_major(nn::LSTMOptions(in, H).num_layers(2).bidirectional(true));
  nn::LSTM batch_major(nn::LSTMOptions(in, H).num_layers(2).bidirectional(true).batch_first(true));
  batch_major->load_state_dict(time_major->state_dict());
  Tensor x = randn({T, N, in}), h0 = randn({4, N, H}), c0 = randn({4, N, H});
  auto [out_t, state_t] = time_major(x, std::make_tuple(h0, c0));
  auto [out_b, state_b] = batch_major(x.transpose(0, 1), std::make_tuple(h0, c0));
  CHECK(out_b.shape() == Shape{N, T, 2 * H});
  CHECK(allclose(out_b, out_t.transpose(0, 1), 1e-6, 1e-7));
  CHECK(allclose(std::get<0>(state_b), std::get<0>(state_t), 1e-6, 1e-7));  // h_n is never batch-first
  CHECK(allclose(std::get<1>(state_b), std::get<1>(state_t), 1e-6, 1e-7));

  nn::GRU gru(nn::GRUOptions(in, H).num_layers(2).bidirectional(true));
  Tensor x1 = randn({T, in}), h1 = randn({4, H});
  auto [out_u, h_u] = gru(x1, h1);
  CHECK(out_u.shape() == Shape{T, 2 * H});
  CHECK(h_u.shape() == Shape{4, H});
  auto [out_one, h_one] = gru(x1.unsqueeze(1), h1.unsqueeze(1));
  CHECK(allclose(out_u, out_one.squeeze(1)));
  CHECK(allclose(h_u, h_one.squeeze(1)));
}

TEST_CASE("float64 gradcheck of bidirectional 2-layer LSTM and GRU w.r.t. input, h0, c0 and every parameter", "[nn][rnn]") {
  manual_seed(7);
  const int64_t T = 3, N = 2, in = 3, H = 2;
  Tensor x = randn({T, N, in}, kFloat64).requires_grad_();
  Tensor h0 = randn({4, N, H}, kFloat64).requires_grad_();
  Tensor c0 = randn({4, N, H}, kFloat64).requires_grad_();
  SECTION("LSTM") {
    nn::LSTM lstm(nn::LSTMOptions(in, H).num_layers(2).bidirectional(true));
    lstm->to(kFloat64);
    autograd::GradcheckFunction f = [&](const TensorList& v) {
      auto [output, state] = lstm(v[0], std::make_tuple(v[1], v[2]));
      return TensorList{output, std::get<0>(state), std::get<1>(state)};
    };
    TensorList inputs = module_inputs(*lstm, {x, h0, c0});
    CHECK(inputs.size() == 3 + 16);
    CHECK(autograd::gradcheck(f, inputs));
  }
  SECTION("GRU (batch_first)") {
    nn::GRU gru(nn::GRUOptions(in, H).num_layers(2).bidirectional(true).batch_first(true));
    gru->to(kFloat64);
    Tensor xb = randn({N, T, in}, kFloat64).requires_grad_();
    autograd::GradcheckFunction f = [&](const TensorList& v) {
      auto [output, h_n] = gru(v[0], v[1]);
      return TensorList{output, h_n};
    };
    CHECK(autograd::gradcheck(f, module_inputs(*gru, {xb, h0})));
  }
  SECTION("RNN tanh, unbatched") {
    nn::RNN rnn(nn::RNNOptions(in, H).bidirectional(true));
    rnn->to(kFloat64);
    Tensor xu = randn({T, in}, kFloat64).requires_grad_();
    Tensor hu = randn({2, H}, kFloat64).requires_grad_();
    autograd::GradcheckFunction f = [&](const TensorList& v) {
      auto [output, h_n] = rnn(v[0], v[1]);
      return TensorList{output, h_n};
    };
    CHECK(autograd::gradcheck(f, module_inputs(*rnn, {xu, hu})));
  }
}

TEST_CASE("dropout between layers: inverted scaling in training, none after the last layer, none in eval", "[nn][rnn]") {
  manual_seed(8);
  // relu RNN with identity input weights and no recurrence: layer 1's output is layer 0's output
  // after dropout, so each element must be 0 or x / (1 - p).
  const int64_t T = 400;
  nn::RNN rnn(nn::RNNOptions(1, 1).num_layers(2).nonlinearity("relu").bias(false).dropout(0.25));
  rnn->to(kFloat64);
  {
    NoGradGuard no_grad;
    for (auto& [name, p] : rnn->named_parameters()) p.fill_(name.rfind("weight_ih", 0) == 0 ? 1.0 : 0.0);
  }
  Tensor x = rand({T, 1, 1}, kFloat64) + 0.5;
  Vec xs = values_of(x), out = values_of(std::get<0>(rnn(x)));
  int dropped = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (out[t] == 0.0) ++dropped;
    else CHECK(out[t] == Approx(xs[t] / 0.75).epsilon(1e-12));
  }
  CHECK(dropped > 0.25 * T - 45);  // binomial(400, 0.25): mean 100, sd 8.7
  CHECK(dropped < 0.25 * T + 45);
  rnn->eval();
  check_close(std::get<0>(rnn(x)), xs);

  // p = 1 zeroes the next layer's input entirely
  nn::RNN all_dropped(nn::RNNOptions(1, 1).num_layers(2).nonlinearity("relu").bias(false).dropout(1.0));
  all_dropped->to(kFloat64);
  for (double v : values_of(std::get<0>(all_dropped(x)))) CHECK(v == 0.0);

  // LSTM: random in training, deterministic in eval and equal to the same weights without dropout
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).dropout(0.5));
  nn::LSTM plain(nn::LSTMOptions(3, 4).num_layers(2));
  plain->load_state_dict(lstm->state_dict());
  Tensor seq = randn({5, 2, 3});
  CHECK_FALSE(equal(std::get<0>(lstm(seq)), std::get<0>(lstm(seq))));
  lstm->eval();
  CHECK(equal(std::get<0>(lstm(seq)), std::get<0>(lstm(seq))));
  CHECK(equal(std::get<0>(lstm(seq)), std::get<0>(plain(seq))));
  // one layer: nothing follows it, so no dropout even in training
  nn::GRU single(nn::GRUOptions(3, 4).dropout(0.5));
  CHECK(equal(std::get<0>(single(seq)), std::get<0>(single(seq))));
}

TEST_CASE("parameter names, shapes and PyTorch's uniform initialisation", "[nn][rnn]") {
  nn::LSTM lstm(nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true));
  std::vector<std::string> expected;
  for (std::string layer : {"l0", "l1"})
    for (std::string suffix : {"", "_reverse"})
      for (std::string kind : {"weight_ih_", "weight_hh_", "bias_ih_", "bias_hh_"}) expected.push_back(kind + layer + suffix);
  CHECK(lstm->named_parameters().keys() == expected);
  auto params = lstm->named_parameters();
  CHECK(params["weight_ih_l0"].shape() == Shape{16, 3});
  CHECK(params["weight_ih_l1_reverse"].shape() == Shape{16, 8});
  CHECK(params["weight_hh_l1"].shape() == Shape{16, 4});
  CHECK(params["bias_hh_l0_reverse"].shape() == Shape{16});
  CHECK(lstm->all_weights().size() == 16);
  CHECK(lstm->flat_weights().size() == 16);
  CHECK(lstm->all_weights()[5].is_same(params["weight_hh_l0_reverse"]));

  nn::GRU gru(nn::GRUOptions(3, 4).bias(false));
  CHECK(gru->named_parameters().keys() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
  CHECK(gru->named_parameters()["weight_hh_l0"].shape() == Shape{12, 4});
  nn::RNN rnn(5, 6);
  CHECK(rnn->named_parameters()["weight_ih_l0"].shape() == Shape{6, 5});

  nn::LSTMCell cell(3, 4);
  CHECK(cell->named_parameters().keys() == std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"});
  CHECK(cell->weight_ih.shape() == Shape{16, 3});
  nn::GRUCell no_bias(nn::GRUCellOptions(3, 4).bias(false));
  CHECK(no_bias->named_parameters().keys() == std::vector<std::string>{"weight_ih", "weight_hh"});
  CHECK_FALSE(no_bias->bias_ih.defined());

  nn::LSTM big(nn::LSTMOptions(16, 64).num_layers(2));
  const double bound = 1.0 / 8.0;
  for (const Tensor& p : big->parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.max().item<double>() <= bound);
    CHECK(p.min().item<double>() >= -bound);
    CHECK(p.abs().max().item<double>() > 0.9 * bound);  // spread over the whole interval
    CHECK(std::abs(p.mean().item<double>()) < 0.02);
  }
}

TEST_CASE("recurrent layers report bad options and bad input shapes", "[nn][rnn]") {
  CHECK_THROWS_WITH(nn::LSTM(nn::LSTMOptions(3, 0)), Contains("LSTM") && Contains("hidden_size") && Contains("0"));
  CHECK_THROWS_WITH(nn::GRU(nn::GRUOptions(3, 4).num_layers(0)), Contains("GRU") && Contains("num_layers") && Contains("0"));
  CHECK_THROWS_WITH(nn::LSTM(nn::LSTMOptions(3, 4).dropout(1.5)), Contains("LSTM") && Contains("dropout") && Contains("1.5"));
  CHECK_THROWS_WITH(nn::RNN(nn::RNNOptions(3, 4).dropout(-0.1)), Contains("RNN") && Contains("dropout") && Contains("-0.1"));
  CHECK_THROWS_WITH(nn::RNN(nn::RNNOptions(3, 4).nonlinearity("gelu")), Contains("RNN") && Contains("nonlinearity") && Contains("gelu"));
  CHECK_THROWS_WITH(nn::RNNCell(nn::RNNCellOptions(3, 4).nonlinearity("sigmoid")), Contains("RNNCell") && Contains("sigmoid"));
  CHECK_THROWS_WITH(nn::LSTMCell(3, -2), Contains("LSTMCell") && Contains("hidden_size") && Contains("-2"));
  CHECK_THROWS_WITH(nn::GRU(0, 4), Contains("GRU") && Contains("input_size"));

  nn::LSTM lstm(nn::LSTMOptions(28, 128).num_layers(2));
  CHECK_THROWS_WITH(lstm(zeros({64, 28, 30})), "LSTM: expected input with 28 features (input_size), got shape [64, 28, 30]");
  CHECK_THROWS_WITH(lstm(zeros({1, 2, 3, 28})), Contains("LSTM") && Contains("2-D") && Contains("3-D") && Contains("[1, 2, 3, 28]"));
  CHECK_THROWS_WITH(lstm(zeros({28})), Contains("LSTM") && Contains("[28]"));
  CHECK_THROWS_WITH(lstm(zeros({0, 4, 28})), Contains("LSTM") && Contains("at least one step"));
  Tensor x = zeros({10, 64, 28});
  CHECK_THROWS_WITH(lstm(x, std::make_tuple(zeros({1, 64, 128}), zeros({2, 64, 128}))),
                    Contains("LSTM") && Contains("h0") && Contains("[2, 64, 128]") && Contains("got [1, 64, 128]"));
  CHECK_THROWS_WITH(lstm(x, std::make_tuple(zeros({2, 64, 128}), zeros({2, 32, 128}))),
                    Contains("LSTM") && Contains("c0") && Contains("[2, 64, 128]") && Contains("got [2, 32, 128]"));
  CHECK_THROWS_WITH(lstm(zeros({10, 28}), std::make_tuple(zeros({2, 1, 128}), zeros({2, 1, 128}))),
                    Contains("h0") && Contains("[2, 128]") && Contains("got [2, 1, 128]"));
  CHECK_THROWS_WITH(lstm(zeros({10, 64, 28}, kFloat64)), Contains("LSTM") && Contains("float64") && Contains("float32"));
  nn::GRU gru(nn::GRUOptions(3, 4).bidirectional(true));
  CHECK_THROWS_WITH(gru(zeros({5, 2, 3}), zeros({1, 2, 4})), Contains("GRU") && Contains("h0") && Contains("[2, 2, 4]"));

  nn::LSTMCell cell(3, 4);
  CHECK_THROWS_WITH(cell(zeros({2, 5, 3})), Contains("LSTMCell") && Contains("1-D") && Contains("2-D") && Contains("[2, 5, 3]"));
  CHECK_THROWS_WITH(cell(zeros({2, 5})), "LSTMCell: expected input with 3 features (input_size), got shape [2, 5]");
  CHECK_THROWS_WITH(cell(zeros({2, 3}), std::make_tuple(zeros({2, 4}), zeros({3, 4}))),
                    Contains("LSTMCell") && Contains("c") && Contains("[2, 4]") && Contains("got [3, 4]"));
  nn::RNNCell rnn_cell(3, 4);
  CHECK_THROWS_WITH(rnn_cell(zeros({3}), zeros({1, 4})), Contains("RNNCell") && Contains("hx") && Contains("[4]") && Contains("got [1, 4]"));
  nn::GRUCell gru_cell(3, 4);
  CHECK_THROWS_WITH(gru_cell(zeros({2, 3}, kFloat64)), Contains("GRUCell") && Contains("float64"));
}

TEST_CASE("extra_repr and printing follow PyTorch", "[nn][rnn]") {
  CHECK(nn::LSTM(nn::LSTMOptions(28, 128).num_layers(2).batch_first(true).bidirectional(true))->extra_repr() ==
        "28, 128, num_layers=2, batch_first=true, bidirectional=true");
  CHECK(nn::GRU(nn::GRUOptions(10, 20).bias(false).dropout(0.5))->extra_repr() == "10, 20, bias=false, dropout=0.5");
  CHECK(nn::RNN(nn::RNNOptions(3, 4).nonlinearity("relu"))->extra_repr() == "3, 4, nonlinearity=relu");
  CHECK(nn::LSTMCell(3, 4)->extra_repr() == "3, 4");
  CHECK(nn::RNNCell(nn::RNNCellOptions(3, 4).nonlinearity("relu").bias(false))->extra_repr() == "3, 4, bias=false, nonlinearity=relu");
  nn::LSTM lstm(28, 128);
  CHECK_THAT(lstm->to_string(), Contains("LSTM(28, 128)") && Contains("weight_ih_l0 [512, 28]"));
  CHECK(nn::GRUCell(2, 3)->name() == "GRUCell");
  CHECK(lstm->options.hidden_size() == 128);
}

// Module hooks: forward pre-hooks, forward hooks and full backward hooks (PyTorch's nn.Module hooks).
// Expected gradients come from the layer's formula (y = x W^T + b: dL/dx = dL/dy W) or by hand.
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
/// forward(a, b) = a * b: two tensor inputs.
struct ProductImpl : nn::Module {
  Tensor forward(const Tensor& a, const Tensor& b) { return a * b; }
};
XG_MODULE(Product);
}  // namespace

TEST_CASE("forward pre-hooks and forward hooks run on a call, in order, and can replace values", "[nn][hooks]") {
  nn::Linear fc(3, 2);
  fc->to(kFloat64);
  Tensor x = randn({4, 3}, kFloat64);
  std::vector<std::string> calls;
  auto pre = fc->register_forward_pre_hook([&](nn::Module& m, const TensorList& inputs) -> std::optional<TensorList> {
    calls.push_back("pre " + m.name());
    CHECK(inputs.size() == 1);
    return TensorList{inputs[0] * 2.0};
  });
  auto post = fc->register_forward_hook([&](nn::Module&, const TensorList& inputs, const Tensor& output) -> std::optional<Tensor> {
    calls.push_back("post");
    CHECK(allclose(inputs[0], x * 2.0));  // sees the replaced input
    return output + 1.0;
  });
  auto observe = fc->register_forward_hook([&](nn::Module&, const TensorList&, const Tensor&) -> std::optional<Tensor> {
    calls.push_back("observe");
    return std::nullopt;
  });
  Tensor expected = linear(x * 2.0, fc->weight, fc->bias) + 1.0;
  CHECK(allclose(fc(x), expected, 0, 0));
  CHECK(calls == std::vector<std::string>{"pre Linear", "post", "observe"});
  // forward() itself is not a call of the module: no hooks (PyTorch's module.forward(x)).
  calls.clear();
  CHECK(allclose(fc->forward(x), linear(x, fc->weight, fc->bias), 0, 0));
  CHECK(calls.empty());
  // Removed hooks stop running; a second remove is a no-op.
  CHECK(pre.active());
  pre.remove();
  pre.remove();
  CHECK(!pre.active());
  post.remove();
  CHECK(allclose(fc(x), linear(x, fc->weight, fc->bias), 0, 0));
  CHECK(calls == std::vector<std::string>{"observe"});
  observe.remove();
  CHECK(!fc->has_hooks());
}

TEST_CASE("hooks run for modules called by a Sequential", "[nn][hooks]") {
  nn::Sequential seq(nn::Linear(2, 2), nn::Functional(xg::relu));
  int count = 0;
  seq[0]->register_forward_hook([&](nn::Module&, const TensorList&, const Tensor& out) -> std::optional<Tensor> {
    ++count;
    return out * 0.0 - 1.0;  // everything negative: the ReLU after it gives zeros
  });
  Tensor y = seq(ones({3, 2}));
  CHECK(count == 1);
  CHECK(equal(y, zeros({3, 2})));
}

TEST_CASE("full backward hooks see grad_input and grad_output and can replace grad_input", "[nn][hooks]") {
  nn::Linear fc(3, 2);
  fc->to(kFloat64);
  Tensor x = randn({4, 3}, kFloat64).requires_grad_(true);
  Tensor upstream = randn({4, 2}, kFloat64);
  TensorList seen_in, seen_out;
  auto handle = fc->register_full_backward_hook(
      [&](nn::Module&, const TensorList& grad_input, const TensorList& grad_output) -> std::optional<TensorList> {
        seen_in = grad_input;
        seen_out = grad_output;
        return std::nullopt;
      });
  (fc(x) * upstream).sum().backward();
  REQUIRE(seen_in.size() == 1);
  REQUIRE(seen_out.size() == 1);
  CHECK(allclose(seen_out[0], upstream, 0, 0));
  const Tensor dx = matmul(upstream, fc->weight);  // y = x W^T + b  =>  dL/dx = dL/dy W
  CHECK(allclose(seen_in[0], dx, 1e-12, 1e-14));
  CHECK(allclose(x.grad(), dx, 1e-12, 1e-14));
  // The parameters' gradients are untouched by the hook machinery: dL/dW = upstream^T x.
  CHECK(allclose(fc->weight.grad(), matmul(upstream.t(), x), 1e-12, 1e-14));
  handle.remove();

  // A replacement becomes the gradient that flows on.
  x.set_grad(Tensor());
  fc->zero_grad();
  fc->register_full_backward_hook([&](nn::Module&, const TensorList& grad_input, const TensorList&) -> std::optional<TensorList> {
    return TensorList{grad_input[0] * 3.0};
  });
  (fc(x) * upstream).sum().backward();
  CHECK(allclose(x.grad(), dx * 3.0, 1e-12, 1e-14));
}

TEST_CASE("full backward hooks: several inputs, inputs without grad, bad answers", "[nn][hooks]") {
  Product product;
  Tensor a = randn({3}, kFloat64).requires_grad_(true), b = randn({3}, kFloat64);
  TensorList seen_in, seen_out;
  product->register_full_backward_hook([&](nn::Module&, const TensorList& gi, const TensorList& go) -> std::optional<TensorList> {
    seen_in = gi;
    seen_out = go;
    return std::nullopt;
  });
  product(a, b).sum().backward();
  REQUIRE(seen_in.size() == 2);
  CHECK(allclose(seen_in[0], b, 0, 0));  // d(sum a*b)/da = b
  CHECK(!seen_in[1].defined());         // b does not require grad
  CHECK(allclose(seen_out[0], ones({3}, kFloat64), 0, 0));

  // No input requires grad (a first layer on data): the hook still runs, with undefined grad_input.
  nn::Linear first(2, 2);
  int runs = 0;
  first->register_full_backward_hook([&](nn::Module&, const TensorList& gi, const TensorList& go) -> std::optional<TensorList> {
    ++runs;
    CHECK(gi.size() == 1);
    CHECK(!gi[0].defined());
    CHECK(go[0].shape() == Shape{5, 2});
    return std::nullopt;
  });
  first(ones({5, 2})).sum().backward();
  CHECK(runs == 1);

  nn::Linear bad(2, 2);
  bad->register_full_backward_hook([](nn::Module&, const TensorList&, const TensorList&) -> std::optional<TensorList> {
    return TensorList{zeros({7})};
  });
  Tensor x = ones({1, 2}).requires_grad_(true);
  CHECK_THROWS_WITH(bad(x).sum().backward(), Contains("Linear") && Contains("shape [7]") && Contains("[1, 2]"));
  nn::Linear wrong_count(2, 2);
  wrong_count->register_forward_pre_hook([](nn::Module&, const TensorList& in) -> std::optional<TensorList> {
    return TensorList{in[0], in[0]};
  });
  CHECK_THROWS_WITH(wrong_count(x), Contains("pre-hook returned 2 inputs") && Contains("takes 1"));
  CHECK_THROWS_WITH(nn::Linear(1, 1)->register_forward_hook(nullptr), Contains("empty"));

  // A module whose forward is not tensors -> tensor cannot be hooked.
  nn::LSTM lstm(2, 3);
  lstm->register_forward_hook([](nn::Module&, const TensorList&, const Tensor&) -> std::optional<Tensor> { return std::nullopt; });
  CHECK_THROWS_WITH(lstm(zeros({1, 1, 2})), Contains("LSTM") && Contains("hooks need forward(Tensor, ...) -> Tensor"));
}

TEST_CASE("gradcheck through a module with a full backward hook", "[nn][hooks][gradcheck]") {
  nn::Linear fc(3, 2);
  fc->to(kFloat64);
  fc->register_full_backward_hook([](nn::Module&, const TensorList&, const TensorList&) -> std::optional<TensorList> { return std::nullopt; });
  Tensor x = randn({4, 3}, kFloat64).requires_grad_(true);
  CHECK(autograd::gradcheck([&](const TensorList& in) { return fc(in[0]); }, {x}));
  Tensor strided = randn({3, 4}, kFloat64).t().requires_grad_(true);  // non-contiguous
  CHECK(autograd::gradcheck([&](const TensorList& in) { return fc(in[0]); }, {strided}));
}

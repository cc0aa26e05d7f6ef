// Engine semantics: accumulation, shared subexpressions, retain_graph, no_grad, detach, hooks,
// autograd::grad with create_graph, anomaly mode, deep graphs, and memory that stays bounded.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
double value_at(const Tensor& t, int64_t i) { return t.to(kFloat64).data_ptr<double>()[i]; }
}  // namespace

TEST_CASE("a tensor used twice accumulates both paths (diamond)", "[engine]") {
  Tensor x = tensor({1.5, -2.0}, kFloat64).requires_grad_();
  Tensor a = x * 3.0;      // da/dx = 3
  Tensor b = x * x;        // db/dx = 2x
  Tensor y = (a * b).sum();  // y = 3x^3 -> dy/dx = 9x^2
  y.backward();
  CHECK(value_at(x.grad(), 0) == Approx(9 * 1.5 * 1.5));
  CHECK(value_at(x.grad(), 1) == Approx(9 * 4.0));
}

TEST_CASE("gradients accumulate across backward calls until zeroed", "[engine]") {
  Tensor x = tensor({2.0}, kFloat64).requires_grad_();
  (x * x).sum().backward();
  (x * x).sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(8.0));  // 2 * (2x)
  x.grad().zero_();
  (x * 5.0).sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(5.0));
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("retain_graph allows a second backward; without it the graph is released", "[engine]") {
  Tensor x = tensor({3.0}, kFloat64).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward({}, true);
  y.backward();
  CHECK(value_at(x.grad(), 0) == Approx(12.0));
  CHECK_THROWS_WITH(y.backward(), Contains("second time") && Contains("retain_graph"));
}

TEST_CASE("no_grad records nothing and is thread-local", "[engine]") {
  Tensor x = randn({3}).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    bool other_thread_records = false;
    std::thread worker([&] { other_thread_records = (x * 2.0).requires_grad(); });
    worker.join();
    CHECK(other_thread_records);
  }
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("detach cuts the graph and shares data", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  Tensor y = (x * d).sum();  // d is a constant: dy/dx = d = 2x
  y.backward();
  CHECK(value_at(x.grad(), 0) == Approx(2.0));
  CHECK(value_at(x.grad(), 1) == Approx(4.0));
  Tensor shared = x.detach();
  {
    NoGradGuard guard;
    shared.mul_(10.0);
  }
  CHECK(value_at(x, 1) == Approx(20.0));  // same storage
}

TEST_CASE("retain_grad keeps a non-leaf gradient; leaves are the default", "[engine]") {
  Tensor x = tensor({1.0, -1.0}, kFloat64).requires_grad_();
  Tensor h = x * 3.0;
  h.retain_grad();
  Tensor y = (h * h).sum();
  y.backward();
  CHECK(value_at(h.grad(), 0) == Approx(6.0));  // 2h
  CHECK(value_at(h.grad(), 1) == Approx(-6.0));
  CHECK(value_at(x.grad(), 0) == Approx(18.0));  // 2h * 3
  Tensor h2 = x * 1.0;
  (h2 * 2.0).sum().backward();
  CHECK_FALSE(h2.grad().defined());
}

TEST_CASE("hooks inspect and replace gradients of leaves and non-leaves", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor seen;
  unsigned handle = x.register_hook([&](const Tensor& g) {
    seen = g.clone();
    return g * 2.0;  // replace
  });
  Tensor h = x * 3.0;
  h.register_hook([](const Tensor& g) { return g + 1.0; });
  h.sum().backward();
  // h's gradient 1 -> 2 by its hook; times 3 -> 6 reaches x; x's hook doubles it.
  CHECK(value_at(seen, 0) == Approx(6.0));
  CHECK(value_at(x.grad(), 0) == Approx(12.0));
  x.remove_hook(handle);
  x.set_grad(Tensor());
  (x * 3.0).sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(3.0));
}

TEST_CASE("autograd::grad returns gradients without touching .grad()", "[engine]") {
  Tensor x = tensor({0.5, 1.5}, kFloat64).requires_grad_();
  Tensor w = tensor({2.0, -1.0}, kFloat64).requires_grad_();
  Tensor y = (x * w).sum();
  TensorList g = autograd::grad({y}, {x});
  CHECK(value_at(g[0], 0) == Approx(2.0));
  CHECK(value_at(g[0], 1) == Approx(-1.0));
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  Tensor unused = tensor({1.0}, kFloat64).requires_grad_();
  Tensor y2 = (x * w).sum();
  CHECK_THROWS_WITH(autograd::grad({y2}, {unused}, {}, true), Contains("not used"));
  TensorList g2 = autograd::grad({y2}, {x, unused}, {}, std::nullopt, false, true);
  CHECK_FALSE(g2[1].defined());
}

TEST_CASE("grad of a non-leaf intermediate", "[engine]") {
  Tensor x = tensor({2.0}, kFloat64).requires_grad_();
  Tensor h = x * x;       // 4
  Tensor y = (h * 3.0).sum();
  TensorList g = autograd::grad({y}, {h});
  CHECK(value_at(g[0], 0) == Approx(3.0));
}

TEST_CASE("create_graph gives a Hessian-vector product", "[engine]") {
  // f(x) = sum(x^3) / 3 + x0 * x1: H = diag(2x) + [[0,1],[1,0]].
  Tensor x = tensor({1.5, -0.5}, kFloat64).requires_grad_();
  Tensor f = (pow(x, 3.0) / 3.0).sum() + x.narrow(0, 0, 1).sum() * x.narrow(0, 1, 1).sum();
  TensorList g = autograd::grad({f}, {x}, {}, std::nullopt, /*create_graph=*/true);
  REQUIRE(g[0].requires_grad());
  Tensor v = tensor({1.0, 2.0}, kFloat64);
  TensorList hv = autograd::grad({(g[0] * v).sum()}, {x});
  CHECK(value_at(hv[0], 0) == Approx(2 * 1.5 * 1.0 + 2.0));
  CHECK(value_at(hv[0], 1) == Approx(1.0 + 2 * -0.5 * 2.0));
}

TEST_CASE("a gradient penalty differentiates through backward", "[engine]") {
  // loss = (d/dx sum(w * x^2))^2 summed = sum((2 w x)^2); d loss / dw = 8 w x^2.
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor w = tensor({0.5, -1.0}, kFloat64).requires_grad_();
  Tensor out = (w * x * x).sum();
  TensorList gx = autograd::grad({out}, {x}, {}, std::nullopt, true);
  Tensor penalty = (gx[0] * gx[0]).sum();
  penalty.backward();
  CHECK(value_at(w.grad(), 0) == Approx(8 * 0.5 * 1.0));
  CHECK(value_at(w.grad(), 1) == Approx(8 * -1.0 * 4.0));
}

TEST_CASE("backward on a non-scalar needs a gradient of the same shape", "[engine]") {
  Tensor x = randn({2, 3}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH(y.backward(), Contains("one element") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(y.backward(ones({3}, kFloat64)), Contains("[3]") && Contains("[2, 3]"));
  y.backward(full({2, 3}, 0.5, kFloat64));
  CHECK(allclose(x.grad(), full({2, 3}, 1.0, kFloat64)));
  Tensor c = randn({2});
  CHECK_THROWS_WITH(c.sum().backward(), Contains("does not require grad"));
}

TEST_CASE("in-place ops rebase history and the version counter catches stale saved tensors", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  y.mul_(3.0);  // y = 6x
  y.add_(x);    // y = 7x
  y.sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(7.0));

  Tensor a = tensor({0.5}, kFloat64).requires_grad_();
  Tensor e = exp(a * 1.0);  // exp saves its output
  uint64_t before = e._version();
  e.add_(1.0);
  CHECK(e._version() == before + 1);
  CHECK_THROWS_WITH((e * 1.0).sum().backward(), Contains("modified by an in-place operation"));

  Tensor leaf = tensor({1.0}, kFloat64).requires_grad_();
  CHECK_THROWS_WITH(leaf.add_(1.0), Contains("leaf"));
  {
    NoGradGuard guard;
    leaf.add_(1.0);  // optimizer-style update is allowed
  }
  CHECK(value_at(leaf, 0) == Approx(2.0));
}

TEST_CASE("mul_ on a non-leaf keeps the correct gradient for both operands", "[engine]") {
  Tensor x = tensor({2.0}, kFloat64).requires_grad_();
  Tensor z = tensor({5.0}, kFloat64).requires_grad_();
  Tensor y = x * 1.0;
  y.mul_(z);  // y = x z
  y.sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(5.0));
  CHECK(value_at(z.grad(), 0) == Approx(2.0));
}

TEST_CASE("anomaly mode names the op that produced NaN in backward and in forward", "[engine]") {
  Tensor x = tensor({0.0, 1.0}, kFloat64).requires_grad_();
  {
    DetectAnomalyGuard anomaly;
    Tensor y = sqrt(x).sum();  // d sqrt at 0 = inf
    CHECK_THROWS_WITH(y.backward(), Contains("SqrtBackward") && Contains("[2]"));
    Tensor neg = tensor({-1.0}, kFloat64);
    CHECK_THROWS_WITH(log(neg), Contains("log") && Contains("NaN"));
  }
  // Outside anomaly mode the same computation is allowed (and gives inf, as PyTorch does).
  Tensor y = sqrt(x).sum();
  y.backward();
  CHECK(std::isinf(value_at(x.grad(), 0)));
}

TEST_CASE("a 100,000-op chain backwards and is destroyed without stack overflow", "[engine]") {
  Tensor x = ones({4}).requires_grad_();
  Tensor h = x;
  for (int i = 0; i < 100000; ++i) h = h * 1.0;
  h.sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(1.0));
  // Destroy a chain that was never backwarded too.
  Tensor k = x;
  for (int i = 0; i < 100000; ++i) k = k + 0.0;
  k = Tensor();
  SUCCEED();
}

TEST_CASE("an evaluation loop that forgets no_grad does not grow memory", "[engine][memory]") {
  Tensor w = randn({32, 32}).requires_grad_();
  Tensor input = randn({8, 32});
  auto step = [&] { return relu(matmul(input, w)).sum().item<float>(); };
  for (int i = 0; i < 100; ++i) step();
  const size_t baseline = allocator_stats().allocated_bytes;
  const size_t system_before = allocator_stats().system_allocations;
  for (int i = 0; i < 10000; ++i) step();
  CHECK(allocator_stats().allocated_bytes <= baseline);
  // Steady state: buffers come from the cache, not from the system.
  CHECK(allocator_stats().system_allocations == system_before);
}

TEST_CASE("saved tensors are freed by backward unless retain_graph", "[engine][memory]") {
  Tensor w = randn({256, 256}).requires_grad_();
  const size_t before = allocator_stats().allocated_bytes;
  Tensor loss = exp(tanh(w * 2.0)).sum();  // tanh and exp each save their 256x256 output
  const size_t with_graph = allocator_stats().allocated_bytes;
  CHECK(with_graph >= before + 2 * 256 * 256 * sizeof(float));
  loss.backward();
  w.set_grad(Tensor());
  // What is left: the scalar loss (plus small scratch), not the three saved 256x256 buffers.
  CHECK(allocator_stats().allocated_bytes < before + 256 * 256 * sizeof(float));
}

namespace {
struct ScaleAndSquare : autograd::Function<ScaleAndSquare> {
  // forward(x, c) = (c x)^2; backward: 2 c^2 x
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x, double c) {
    ctx->saved_data["c"] = c;
    ctx->save_for_backward({x});
    return (x * c) * (x * c);
  }
  static TensorList backward(autograd::AutogradContext* ctx, TensorList grad_outputs) {
    Tensor x = ctx->get_saved_variables()[0];
    double c = ctx->saved_data["c"].toDouble();
    return {grad_outputs[0] * x * (2 * c * c), Tensor()};
  }
};
}  // namespace

TEST_CASE("a custom Function records, backwards, and supports create_graph", "[engine][function]") {
  Tensor x = tensor({1.0, -2.0}, kFloat64).requires_grad_();
  Tensor y = ScaleAndSquare::apply(x, 3.0);
  CHECK(value_at(y, 1) == Approx(36.0));
  CHECK(y.grad_fn() != nullptr);
  std::function<Tensor(const TensorList&)> f = [](const TensorList& in) { return ScaleAndSquare::apply(in[0], 3.0); };
  CHECK(autograd::gradcheck(f, {x}));
  CHECK(autograd::gradgradcheck(f, {x}));
  NoGradGuard guard;
  CHECK_FALSE(ScaleAndSquare::apply(x, 3.0).requires_grad());
}

TEST_CASE("dtype conversion is differentiable and gradients keep each leaf's dtype", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, kFloat32).requires_grad_();
  Tensor y = (x.to(kFloat64) * tensor({3.0, 4.0}, kFloat64)).sum();
  y.backward();
  REQUIRE(x.grad().dtype() == kFloat32);
  CHECK(value_at(x.grad(), 0) == Approx(3.0));
  CHECK(value_at(x.grad(), 1) == Approx(4.0));
  CHECK_THROWS_WITH(x.grad().item<float>(), Contains("one element"));
}

// ---- issue 13: hooks, in-place ops on non-leaves, double backward of piecewise-linear ops --------

TEST_CASE("a leaf's hook runs once per backward on the summed gradient", "[engine][hooks]") {
  Tensor x = tensor({1.0, -0.5}, kFloat64).requires_grad_();
  int calls = 0;
  x.register_hook([&](const Tensor& g) {
    ++calls;
    return clamp(g, -2.5, 2.5);
  });
  // y = 2x + 3x + x^2: partials 2, 3 and 2x, summed dy/dx = 5 + 2x = [7, 4]; clamped: [2.5, 2.5].
  // (Clamping each partial instead would give 2 + 2.5 + 2 = 6.5 for the first element.)
  Tensor y = (x * 2.0 + x * 3.0 + x * x).sum();
  y.backward();
  CHECK(calls == 1);
  CHECK(value_at(x.grad(), 0) == Approx(2.5));
  CHECK(value_at(x.grad(), 1) == Approx(2.5));
  // A second pass runs the hook once more and accumulates its clamped result.
  (x * 2.0 + x * 3.0 + x * x).sum().backward();
  CHECK(calls == 2);
  CHECK(value_at(x.grad(), 0) == Approx(5.0));

  // A non-leaf used three times: its hook also sees the total once.
  Tensor w = tensor({1.0, -0.5}, kFloat64).requires_grad_();
  Tensor h = w * 1.0;
  int h_calls = 0;
  Tensor seen;
  h.register_hook([&](const Tensor& g) {
    ++h_calls;
    seen = g.clone();
    return clamp(g, -2.5, 2.5);
  });
  (h * 2.0 + h * 3.0 + h * h).sum().backward();
  CHECK(h_calls == 1);
  CHECK(value_at(seen, 0) == Approx(7.0));
  CHECK(value_at(seen, 1) == Approx(4.0));
  CHECK(value_at(w.grad(), 0) == Approx(2.5));
}

TEST_CASE("a leaf's hook runs as soon as its last partial gradient arrives, mid-backward", "[engine][hooks]") {
  // As PyTorch's AccumulateGrad node: DistributedDataParallel starts its all-reduce from these hooks,
  // so a leaf whose gradient is complete early must not wait for the end of the pass.
  Tensor w = tensor({2.0}, kFloat64).requires_grad_();
  Tensor x = tensor({0.5}, kFloat64).requires_grad_();
  std::vector<std::string> events;
  w.register_hook([&](const Tensor&) {
    events.push_back("w");
    return Tensor();
  });
  Tensor h = x * 3.0;  // recorded first, so its node runs after the one that completes w
  h.register_hook([&](const Tensor&) {
    events.push_back("h");
    return Tensor();
  });
  // w gets its only partial from the last op; h's gradient (2w * exp(h)) arrives one node later.
  (h.exp() * w).sum().backward();
  REQUIRE(events.size() == 2);
  CHECK(events[0] == "w");
  CHECK(events[1] == "h");
  CHECK(value_at(w.grad(), 0) == Approx(std::exp(1.5)));
  CHECK(value_at(x.grad(), 0) == Approx(3.0 * 2.0 * std::exp(1.5)));
}

TEST_CASE("a hook returning a gradient of the wrong shape or dtype is an error naming the hook", "[engine][hooks][errors]") {
  Tensor x = zeros({2, 3}, kFloat64).requires_grad_();
  x.register_hook([](const Tensor& g) { return g.sum({0}); });
  CHECK_THROWS_WITH((x * 2.0).sum().backward(), Contains("hook") && Contains("[2, 3]") && Contains("[3]"));
  CHECK_FALSE(x.grad().defined());

  Tensor a = zeros({2, 3}, kFloat64).requires_grad_();
  Tensor h = a * 2.0;
  h.register_hook([](const Tensor& g) { return g.sum({1}); });
  CHECK_THROWS_WITH(h.sum().backward(), Contains("hook") && Contains("[2, 3]") && Contains("[2]"));

  Tensor b = zeros({2}, kFloat64).requires_grad_();
  b.register_hook([](const Tensor& g) { return g.to(kFloat32); });
  CHECK_THROWS_WITH((b * 2.0).sum().backward(), Contains("hook") && Contains("float32") && Contains("float64"));
}

TEST_CASE("fill_ and zero_ on a non-leaf keep it in the graph with a zero gradient to its old value", "[engine][inplace]") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = x * x;
  y.fill_(3.0);
  CHECK(y.requires_grad());
  CHECK(value_at(y, 1) == Approx(3.0));
  // z = sum(y x) with y constant 3: dz/dx = 3 (nothing through x^2).
  (y * x).sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(3.0));
  CHECK(value_at(x.grad(), 1) == Approx(3.0));

  // The old history receives zeros (PyTorch's FillBackward), not "unused".
  Tensor u = x * x;
  u.zero_();
  CHECK(u.requires_grad());
  TensorList g = autograd::grad({u.sum()}, {x});
  CHECK(value_at(g[0], 0) == 0.0);
  CHECK(value_at(g[0], 1) == 0.0);

  std::function<Tensor(const TensorList&)> f = [](const TensorList& in) {
    Tensor t = in[0] * in[0];
    t.fill_(3.0);
    return t * in[0] + t;
  };
  CHECK(autograd::gradcheck(f, {tensor({0.5, -1.5, 2.0}, kFloat64).requires_grad_()}));
}

TEST_CASE("copy_ into a non-leaf sends the gradient to the source and zeros to the old value", "[engine][inplace]") {
  Tensor x = tensor({1.0, 2.0}, kFloat64).requires_grad_();
  Tensor y = x * x;
  y.copy_(tensor({4.0, 5.0}, kFloat64));  // a constant source: y stays in the graph
  CHECK(y.requires_grad());
  (y * x).sum().backward();
  CHECK(value_at(x.grad(), 0) == Approx(4.0));
  CHECK(value_at(x.grad(), 1) == Approx(5.0));

  // Broadcast source that requires grad: d/dw = column sums of x, d/dx = w (y no longer depends on x^2).
  std::function<Tensor(const TensorList&)> f = [](const TensorList& in) {
    Tensor t = in[0] * in[0];
    t.copy_(in[1]);
    return t * in[0];
  };
  Tensor a = tensor({0.5, -1.0, 2.0, 1.5, 0.25, -0.75}, {2, 3}, kFloat64).requires_grad_();
  Tensor w = tensor({1.0, -2.0, 3.0}, kFloat64).requires_grad_();
  CHECK(autograd::gradcheck(f, {a, w}));
  TensorList g = autograd::grad({f({a, w}).sum()}, {a, w});
  CHECK(value_at(g[0], 3) == Approx(1.0));
  CHECK(value_at(g[1], 0) == Approx(0.5 + 1.5));
  CHECK(value_at(g[1], 2) == Approx(2.0 - 0.75));
}

TEST_CASE("double backward of relu, abs and leaky_relu alone gives zeros, as PyTorch", "[engine][double_backward]") {
  using Op = std::function<Tensor(const Tensor&)>;
  std::vector<std::pair<const char*, Op>> ops = {
      {"relu", [](const Tensor& t) { return relu(t); }},
      {"abs", [](const Tensor& t) { return abs(t); }},
      {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }},
  };
  for (const auto& [name, op] : ops) {
    INFO(name);
    Tensor x = tensor({-1.5, 0.5, 2.0}, kFloat64).requires_grad_();
    Tensor g = autograd::grad({op(x).sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
    REQUIRE(g.requires_grad());
    Tensor gg = autograd::grad({g.sum()}, {x})[0];
    REQUIRE(gg.defined());
    CHECK(equal(gg, zeros({3}, kFloat64)));
    // The first derivative itself is unchanged (relu: 0, 1, 1).
    if (std::string(name) == "relu") CHECK(equal(g.detach(), tensor({0.0, 1.0, 1.0}, kFloat64)));
  }
  // With a differentiable grad_output the second derivative still reaches both.
  Tensor x = tensor({-1.5, 0.5, 2.0}, kFloat64).requires_grad_();
  Tensor v = tensor({2.0, 3.0, 4.0}, kFloat64).requires_grad_();
  Tensor g = autograd::grad({relu(x)}, {x}, {v}, std::nullopt, true)[0];  // v * (x > 0)
  TensorList gg = autograd::grad({g.sum()}, {x, v});
  CHECK(equal(gg[0], zeros({3}, kFloat64)));
  CHECK(equal(gg[1], tensor({0.0, 1.0, 1.0}, kFloat64)));
  CHECK(autograd::gradgradcheck([](const TensorList& in) { return relu(in[0]); }, {x}));
}

TEST_CASE("ops whose PyTorch backward is built from the gradient alone stay constant under create_graph", "[engine][double_backward]") {
  // PyTorch 1.13's clamp_backward is where(mask, grad, 0) and max's is a masked fill of grad: the
  // first derivative does not require grad, so a second grad() is an error there too.
  Tensor x = tensor({-1.5, 0.5, 2.0}, kFloat64).requires_grad_();
  Tensor g = autograd::grad({clamp(x, -1.0, 1.0).sum()}, {x}, {}, std::nullopt, true)[0];
  CHECK_FALSE(g.requires_grad());
  Tensor m = autograd::grad({max(x)}, {x}, {}, std::nullopt, true)[0];
  CHECK_FALSE(m.requires_grad());
}

namespace {
// PyTorch's own custom-Function example: bias is an optional argument, and backward returns a
// gradient for it even when apply() was called without it.
struct LinearFunction : autograd::Function<LinearFunction> {
  static Tensor forward(autograd::AutogradContext* ctx, Tensor input, Tensor weight, Tensor bias = Tensor()) {
    ctx->save_for_backward({input, weight, bias});
    Tensor output = input.mm(weight.t());
    if (bias.defined()) output = output + bias.unsqueeze(0).expand_as(output);
    return output;
  }
  static TensorList backward(autograd::AutogradContext* ctx, TensorList grad_outputs) {
    TensorList saved = ctx->get_saved_variables();
    Tensor input = saved[0], weight = saved[1], bias = saved[2];
    Tensor grad_output = grad_outputs[0];
    Tensor grad_input = grad_output.mm(weight);
    Tensor grad_weight = grad_output.t().mm(input);
    Tensor grad_bias;
    if (bias.defined()) grad_bias = grad_output.sum({0});
    return {grad_input, grad_weight, grad_bias};
  }
};

struct ExtraDefinedGradient : autograd::Function<ExtraDefinedGradient> {
  static Tensor forward(autograd::AutogradContext*, Tensor x) { return x * 2.0; }
  static TensorList backward(autograd::AutogradContext*, TensorList g) { return {g[0] * 2.0, g[0]}; }
};
}  // namespace

TEST_CASE("a custom Function may return undefined gradients for omitted optional arguments", "[engine][function]") {
  Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2}, kFloat64).requires_grad_();
  Tensor w = tensor({0.5, -1.0, 2.0, 0.25, 1.0, -0.5}, {3, 2}, kFloat64).requires_grad_();
  Tensor y = LinearFunction::apply(x, w);
  y.sum().backward();
  // d sum(x w^T)/dx[i][k] = sum_j w[j][k]; /dw[j][k] = sum_i x[i][k].
  CHECK(value_at(x.grad(), 0) == Approx(0.5 + 2.0 + 1.0));
  CHECK(value_at(x.grad(), 1) == Approx(-1.0 + 0.25 - 0.5));
  CHECK(value_at(w.grad(), 0) == Approx(1.0 + 3.0));
  CHECK(value_at(w.grad(), 5) == Approx(2.0 + 4.0));
  Tensor b = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
  CHECK(autograd::gradcheck([](const TensorList& in) { return LinearFunction::apply(in[0], in[1], in[2]); }, {x, w, b}));

  // More defined gradients than inputs stays an error.
  Tensor z = tensor({1.0}, kFloat64).requires_grad_();
  CHECK_THROWS_WITH(ExtraDefinedGradient::apply(z).sum().backward(), Contains("returned 2 gradients"));
}

TEST_CASE("every in-place op on a non-leaf keeps the graph correct (gradcheck)", "[engine][inplace]") {
  std::function<Tensor(const TensorList&)> f = [](const TensorList& in) {
    Tensor t = in[0] * 1.0;
    t.mul_(in[1]);
    t.add_(in[0], 2.0);
    t.div_(in[1] + 3.0);
    t.sub_(in[1]);
    t.mul_(2.0);
    t.div_(4.0);
    t.add_(1.0);
    return t;
  };
  Tensor a = tensor({0.5, -1.0, 2.0}, kFloat64).requires_grad_();
  Tensor b = tensor({1.5, 0.25, -0.5}, kFloat64).requires_grad_();
  CHECK(autograd::gradcheck(f, {a, b}));
  // t = ((a b + 2a) / (b + 3) - b) / 2 + 1: dt/da = (b + 2) / (2 (b + 3)).
  TensorList g = autograd::grad({f({a, b}).sum()}, {a});
  CHECK(value_at(g[0], 0) == Approx(3.5 / 9.0));
  // The in-place rule is reported under the op that was called.
  CHECK_THROWS_WITH(a.div_(2.0), Contains("div_") && Contains("leaf"));
}

TEST_CASE("a clamping hook on an LSTM's recurrent weight runs once and bounds the gradient", "[engine][hooks]") {
  manual_seed(13);
  nn::LSTM lstm(nn::LSTMOptions(3, 4));
  Tensor input = randn({5, 2, 3});  // 5 steps: weight_hh_l0 is used at every step
  Tensor w = lstm->named_parameters()["weight_hh_l0"];
  std::get<0>(lstm->forward(input)).pow(2.0).sum().backward();
  Tensor reference = clamp(w.grad(), -0.01, 0.01);  // PyTorch: the hook sees the summed gradient
  REQUIRE(w.grad().abs().max().item<double>() > 0.02);  // the clamp matters
  w.set_grad(Tensor());
  int calls = 0;
  w.register_hook([&](const Tensor& g) {
    ++calls;
    return clamp(g, -0.01, 0.01);
  });
  std::get<0>(lstm->forward(input)).pow(2.0).sum().backward();
  CHECK(calls == 1);
  CHECK(w.grad().abs().max().item<double>() <= 0.01 + 1e-7);
  CHECK(allclose(w.grad(), reference));
}

TEST_CASE("InferenceMode: no recording in its scope, restored after; InferenceMode(false) changes nothing", "[autograd]") {
  Tensor w = xg::ones({2}, xg::kFloat64).requires_grad_();
  CHECK_FALSE(xg::InferenceMode::is_enabled());
  {
    xg::InferenceMode guard;
    CHECK(xg::InferenceMode::is_enabled());
    CHECK_FALSE(xg::autograd::GradMode::is_enabled());
    Tensor y = w * 2.0;
    CHECK_FALSE(y.requires_grad());
    {
      xg::InferenceMode off(false);
      CHECK(xg::InferenceMode::is_enabled());  // still inside the outer guard
      CHECK_FALSE(xg::autograd::GradMode::is_enabled());
    }
  }
  CHECK_FALSE(xg::InferenceMode::is_enabled());
  CHECK(xg::autograd::GradMode::is_enabled());
  {
    xg::InferenceMode off(false);
    CHECK_FALSE(xg::InferenceMode::is_enabled());
    CHECK((w * 2.0).requires_grad());
  }
  // A tensor made in inference mode is an ordinary tensor afterwards: usable in a recorded graph.
  Tensor c;
  {
    xg::InferenceMode guard;
    c = xg::full({2}, 3.0, xg::kFloat64);
  }
  (w * c).sum().backward();
  CHECK(w.grad().data_ptr<double>()[0] == 3.0);
}

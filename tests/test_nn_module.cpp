// The module system: registration by name, dotted names, containers, train/eval, zero_grad,
// freezing, dtype conversion, state dicts, printing.
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
// A minimal affine layer written only with register_* and forward, as a user would.
struct AffineImpl : nn::Module {
  AffineImpl(int64_t in, int64_t out) {
    weight = register_parameter("weight", randn({out, in}, kFloat64));
    bias = register_parameter("bias", zeros({out}, kFloat64));
    register_buffer("calls", zeros({1}, kFloat64));
  }
  Tensor forward(const Tensor& x) { return linear(x, weight, bias); }
  Tensor weight, bias;
};
XG_MODULE(Affine);

struct Net : nn::Module {
  Net() {
    features = register_module("features", nn::Sequential(Affine(4, 3), nn::Functional(xg::tanh), Affine(3, 2)));
    head = register_module("head", Affine(2, 1));
  }
  Tensor forward(const Tensor& x) { return head(features(x)); }
  nn::Sequential features{nullptr};
  Affine head{nullptr};
};
}  // namespace

TEST_CASE("parameters are found by dotted name through containers", "[nn][module]") {
  auto net = std::make_shared<Net>();
  auto names = net->named_parameters().keys();
  std::vector<std::string> expected{"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias", "head.weight", "head.bias"};
  CHECK(names == expected);
  CHECK(net->parameters().size() == 6);
  CHECK(net->named_buffers().keys() == std::vector<std::string>{"features.0.calls", "features.2.calls", "head.calls"});
  CHECK(net->num_parameters() == 4 * 3 + 3 + 3 * 2 + 2 + 2 + 1);
  CHECK(net->children().size() == 2);
  CHECK(net->named_modules().keys() == std::vector<std::string>{"", "features", "features.0", "features.1", "features.2", "head"});
  CHECK(net->name() == "Net");
  CHECK(net->features->name() == "Sequential");
}

TEST_CASE("a module's forward records the tape; zero_grad clears", "[nn][module]") {
  auto net = std::make_shared<Net>();
  Tensor x = randn({5, 4}, kFloat64);
  net->forward(x).sum().backward();
  for (const auto& [name, p] : net->named_parameters()) CHECK(p.grad().defined());
  net->zero_grad(false);
  for (const Tensor& p : net->parameters()) CHECK(p.grad().sum().item<double>() == 0.0);
  net->zero_grad();
  for (const Tensor& p : net->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("gradcheck through a module tree with respect to the input and parameters", "[nn][module]") {
  manual_seed(3);
  auto net = std::make_shared<Net>();
  Tensor x = randn({3, 4}, kFloat64).requires_grad_();
  TensorList inputs{x};
  for (const Tensor& p : net->parameters()) inputs.push_back(p);
  std::function<Tensor(const TensorList&)> f = [&](const TensorList& in) { return net->forward(in[0]); };
  CHECK(autograd::gradcheck(f, inputs));
}

TEST_CASE("train/eval propagate; requires_grad_ freezes", "[nn][module]") {
  auto net = std::make_shared<Net>();
  CHECK(net->features[1]->is_training());
  net->eval();
  CHECK_FALSE(net->is_training());
  CHECK_FALSE(net->features[1]->is_training());
  net->train();
  CHECK(net->head->is_training());
  net->features->requires_grad_(false);
  CHECK(net->num_parameters(true) == 3);
  Tensor out = net->forward(randn({2, 4}, kFloat64)).sum();
  out.backward();
  CHECK_FALSE(net->features->parameters()[0].grad().defined());
  CHECK(net->head->weight.grad().defined());
}

TEST_CASE("to(dtype) converts in place so held handles stay valid", "[nn][module]") {
  auto affine = Affine(3, 2);
  Tensor handle = affine->weight;
  affine->to(kFloat32);
  CHECK(handle.dtype() == kFloat32);
  CHECK(affine->named_buffers()["calls"].dtype() == kFloat32);
  CHECK(affine(randn({4, 3})).dtype() == kFloat32);
}

TEST_CASE("state_dict round trip and load errors name the key", "[nn][module]") {
  manual_seed(1);
  auto a = std::make_shared<Net>();
  auto b = std::make_shared<Net>();
  b->load_state_dict(a->state_dict());
  for (const auto& [name, t] : a->state_dict()) CHECK(equal(t, b->state_dict()[name]));

  nn::OrderedDict<Tensor> wrong = a->state_dict();
  wrong["head.weight"] = zeros({5, 5}, kFloat64);
  Tensor before = b->head->bias.clone();
  CHECK_THROWS_WITH(b->load_state_dict(wrong), Contains("head.weight") && Contains("[5, 5]") && Contains("[1, 2]"));

  nn::OrderedDict<Tensor> partial;
  partial.insert("head.bias", ones({1}, kFloat64));
  partial.insert("extra", ones({1}, kFloat64));
  CHECK_THROWS_WITH(b->load_state_dict(partial), Contains("missing keys") && Contains("features.0.weight") && Contains("extra"));
  CHECK(equal(b->head->bias, before));  // nothing was copied
  b->load_state_dict(partial, /*strict=*/false);
  CHECK(b->head->bias.item<double>() == 1.0);
}

TEST_CASE("registration errors and printing", "[nn][module]") {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  CHECK_THROWS_WITH(m.register_parameter("w", zeros({2})), Contains("already registered"));
  CHECK_THROWS_WITH(m.register_buffer("a.b", zeros({2})), Contains("'.'"));
  CHECK_THROWS_WITH(m.register_parameter("i", zeros({2}, kInt64)), Contains("int64"));
  auto net = std::make_shared<Net>();
  std::string text = net->to_string();
  CHECK_THAT(text, Contains("Net(") && Contains("(features): Sequential(") && Contains("(0): Affine(") && Contains("weight [3, 4]"));
  nn::Sequential empty;
  CHECK_THROWS_WITH(empty(zeros({1})), Contains("empty"));
  CHECK_THROWS_WITH(net->features[7], Contains("out of range"));
}

TEST_CASE("ModuleList and ModuleDict register their entries", "[nn][module]") {
  nn::ModuleList list(Affine(2, 2), Affine(2, 3));
  list->push_back(Affine(3, 1));
  CHECK(list->size() == 3);
  CHECK(list->named_parameters().contains("2.weight"));
  CHECK(list->ptr<AffineImpl>(1)->weight.shape() == Shape{3, 2});
  nn::ModuleDict dict;
  dict->insert("encoder", Affine(2, 2));
  CHECK(dict->named_parameters().contains("encoder.bias"));
  CHECK_THROWS_WITH((*dict)["decoder"], Contains("decoder"));
}

TEST_CASE("modules() on a module on the stack is an error saying to use make_shared", "[nn][module][errors]") {
  AffineImpl on_stack(2, 3);
  CHECK_THROWS_AS(on_stack.modules(), xg::Error);
  CHECK_THROWS_WITH(on_stack.modules(), Contains("modules") && Contains("make_shared") && Contains("include_self"));
  CHECK_THROWS_WITH(on_stack.named_modules(), Contains("named_modules") && Contains("make_shared"));
  // Without itself the walk needs no shared_ptr of the root.
  Net net;
  CHECK(net.modules(/*include_self=*/false).size() == 5);  // features, its three entries, head
  // A module owned by a shared_ptr lists itself first.
  auto owned = std::make_shared<AffineImpl>(2, 3);
  REQUIRE(owned->modules().size() == 1);
  CHECK(owned->modules()[0].get() == owned.get());
}

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

TEST_CASE("apply visits the module and every descendant, parents first, in each of libtorch's forms", "[nn][module]") {
  auto net = std::make_shared<Net>();
  const std::vector<std::string> names{"", "features", "features.0", "features.1", "features.2", "head"};
  const std::vector<std::string> types{"Net", "Sequential", "Affine", "Functional", "Affine", "Affine"};

  std::vector<std::string> seen;
  net->apply([&](nn::Module& m) { seen.push_back(m.name()); });
  CHECK(seen == types);
  seen.clear();
  std::as_const(*net).apply([&](const nn::Module& m) { seen.push_back(m.name()); });
  CHECK(seen == types);

  seen.clear();
  net->apply([&](const std::string& name, nn::Module&) { seen.push_back(name); });
  CHECK(seen == names);
  seen.clear();
  net->apply([&](const std::string& name, nn::Module&) { seen.push_back(name); }, "net");
  CHECK(seen == std::vector<std::string>{"net", "net.features", "net.features.0", "net.features.1", "net.features.2",
                                         "net.head"});
  seen.clear();
  std::as_const(*net).apply([&](const std::string& name, const nn::Module&) { seen.push_back(name); });
  CHECK(seen == names);

  std::vector<std::shared_ptr<nn::Module>> pointers;
  net->apply([&](const std::shared_ptr<nn::Module>& m) { pointers.push_back(m); });
  REQUIRE(pointers.size() == 6);
  CHECK(pointers[0] == net);
  CHECK(pointers[5] == net->head.ptr());
  seen.clear();
  net->apply([&](const std::string& name, const std::shared_ptr<nn::Module>& m) {
    seen.push_back(name);
    CHECK(m != nullptr);
  });
  CHECK(seen == names);

  // The common use: initialise every Affine's weight.
  net->apply([](nn::Module& m) {
    if (auto* affine = m.as<Affine>()) nn::init::constant_(affine->weight, 0.5);
  });
  for (const auto& [name, p] : net->named_parameters())
    if (name.find("weight") != std::string::npos) CHECK(p.max().item<double>() == 0.5);

  // The pointer forms need the module to be owned by a shared_ptr.
  AffineImpl on_stack(2, 2);
  CHECK_THROWS_WITH(on_stack.apply([](const std::shared_ptr<nn::Module>&) {}), Contains("apply") && Contains("shared_ptr"));
  int count = 0;
  on_stack.apply([&](nn::Module&) { ++count; });
  CHECK(count == 1);
}

TEST_CASE("as<T>() casts to a module class or a holder's class, nullptr otherwise; ptr() is the owner", "[nn][module]") {
  nn::Linear fc(3, 2);
  nn::Module& base = *fc;
  CHECK(base.as<nn::Linear>() == fc.get());
  CHECK(base.as<nn::LinearImpl>() == fc.get());
  CHECK(base.as<nn::Conv2d>() == nullptr);
  CHECK(std::as_const(base).as<nn::Linear>() == fc.get());
  CHECK(base.ptr() == fc.ptr());
  AffineImpl on_stack(2, 2);
  CHECK_THROWS_WITH(on_stack.ptr(), Contains("ptr") && Contains("shared_ptr"));
}

TEST_CASE("Sequential: indexing, typed access, range-for, push_back, extend", "[nn][module]") {
  nn::Sequential seq(nn::Linear(4, 3), nn::Functional(xg::relu));
  seq->push_back(nn::Linear(3, 2));
  CHECK(seq->size() == 3);
  CHECK(seq[0]->name() == "Linear");
  CHECK(seq->ptr(1)->name() == "Functional");
  CHECK(seq->ptr<nn::Linear>(2)->weight.shape() == Shape{2, 3});
  CHECK(seq->ptr<nn::LinearImpl>(0)->weight.shape() == Shape{3, 4});
  CHECK(seq->at<nn::LinearImpl>(0).options.out_features() == 3);
  CHECK_THROWS_WITH(seq->ptr<nn::Linear>(1), Contains("Sequential: entry 1 is a Functional"));
  CHECK_THROWS_WITH(seq->ptr(7), Contains("out of range"));
  std::vector<std::string> kinds;
  for (const auto& module : *seq) kinds.push_back(module.ptr()->name());
  CHECK(kinds == std::vector<std::string>{"Linear", "Functional", "Linear"});
  CHECK(seq->begin()->get<nn::Linear>().weight.shape() == Shape{3, 4});
  CHECK(seq->begin()->forward<Tensor>(ones({1, 4})).shape() == Shape{1, 3});
  nn::Sequential more(nn::Functional(xg::tanh));
  seq->extend(*more);
  CHECK(seq->size() == 4);
  CHECK(seq->named_children().keys() == std::vector<std::string>{"0", "1", "2", "3"});
  CHECK(seq->ptr() != nullptr);
  CHECK(nn::AnyModule().is_empty());
  CHECK_THROWS_WITH(nn::AnyModule().forward(ones({1})), Contains("empty"));
}

TEST_CASE("libtorch's enum constants spell the options' strings", "[nn][module]") {
  CHECK(std::string(xg::kSum) == "sum");
  CHECK(std::string(xg::kFanOut) == "fan_out");
  CHECK(std::string(xg::kConvTranspose2D) == "conv_transpose2d");
  CHECK(std::string(xg::kNearestExact) == "nearest-exact");
  CHECK(nn::MSELossOptions().reduction(xg::kSum).reduction() == "sum");
  // The constants are accepted where the strings are: the same values out.
  Tensor x = tensor({1.0, 2.0, 3.0}, kFloat64), y = tensor({0.0, 0.0, 1.0}, kFloat64);
  CHECK(nn::MSELoss(nn::MSELossOptions(xg::kSum))(x, y).item<double>() == Approx(1 + 4 + 4));
  CHECK(nn::init::calculate_gain(xg::kReLU) == Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain(xg::kLeakyReLU, 0.2) == Approx(std::sqrt(2.0 / (1 + 0.04))));
  manual_seed(3);
  Tensor w = empty({400, 100}, kFloat64);
  nn::init::kaiming_normal_(w, 0, xg::kFanOut, xg::kReLU);  // std = sqrt(2 / fan_out) = sqrt(2 / 400)
  CHECK(w.std().item<double>() == Approx(std::sqrt(2.0 / 400)).epsilon(0.02));
}

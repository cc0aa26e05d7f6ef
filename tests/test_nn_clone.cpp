// Module::clone (libtorch's deep copy) and nn::Cloneable. A clone must equal the original in values,
// dtype, requires_grad flags and training mode, and share no storage with it.
#include <catch2/catch.hpp>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
/// Same names, values and dtypes; no shared storage.
void check_deep_copy(const nn::Module& original, const nn::Module& copy) {
  const auto a = original.state_dict(), b = copy.state_dict();
  REQUIRE(a.keys() == b.keys());
  for (const auto& [key, tensor] : a) {
    const Tensor& other = b[key];
    if (!tensor.defined()) {
      CHECK(!other.defined());
      continue;
    }
    INFO(original.name() << " " << key);
    CHECK(other.dtype() == tensor.dtype());
    CHECK(equal(other, tensor));
    CHECK(!other.is_alias_of(tensor));
  }
  CHECK(copy.name() == original.name());
  CHECK(copy.is_training() == original.is_training());
}

/// Default-constructible: its constructor alone builds the structure.
struct TwoLayerImpl : nn::Module {
  TwoLayerImpl() {
    first = register_module("first", nn::Linear(3, 4));
    second = register_module("second", nn::Linear(4, 2));
  }
  Tensor forward(const Tensor& x) { return second(xg::relu(first(x))); }
  nn::Linear first{nullptr}, second{nullptr};
};
XG_MODULE(TwoLayer);

/// Needs a constructor argument and has no options member: not cloneable unless Cloneable.
struct SizedImpl : nn::Module {
  explicit SizedImpl(int64_t n) { w = register_parameter("w", ones({n})); }
  Tensor forward(const Tensor& x) { return x * w; }
  Tensor w;
};
XG_MODULE(Sized);

/// libtorch's way: Cloneable and reset().
struct ScaledImpl : nn::Cloneable<ScaledImpl> {
  explicit ScaledImpl(int64_t n) : n(n) { reset(); }
  void reset() override {
    scale = register_parameter("scale", full({n}, 2.0));
    inner = register_module("inner", nn::Linear(n, n));
  }
  Tensor forward(const Tensor& x) { return inner(x) * scale; }
  int64_t n;
  Tensor scale;
  nn::Linear inner{nullptr};
};
XG_MODULE(Scaled);
}  // namespace

TEST_CASE("clone is a deep copy: values, dtype, requires_grad, training mode; no gradients", "[nn][clone]") {
  nn::Linear fc(3, 2);
  fc->to(kFloat64);
  fc->bias.requires_grad_(false);
  fc->eval();
  (fc(ones({1, 3}, kFloat64)).sum()).backward();
  auto copy = std::dynamic_pointer_cast<nn::LinearImpl>(fc->clone());
  REQUIRE(copy != nullptr);
  check_deep_copy(*fc, *copy);
  CHECK(copy->weight.requires_grad());
  CHECK(!copy->bias.requires_grad());
  CHECK(!copy->weight.grad().defined());  // gradients are not copied (as libtorch)
  CHECK(copy->options.in_features() == 3);
  // The member handles point at the copy's own parameters.
  CHECK(copy->weight.is_same(copy->named_parameters()["weight"]));
  NoGradGuard no_grad;
  copy->weight.fill_(7.0);
  CHECK(!equal(fc->weight, copy->weight));
}

TEST_CASE("every built-in layer and container clones", "[nn][clone]") {
  std::vector<std::shared_ptr<nn::Module>> modules = {
      nn::Linear(3, 2).ptr(), nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1)).ptr(), nn::Conv1d(2, 2, 3).ptr(),
      nn::BatchNorm1d(4).ptr(), nn::BatchNorm2d(3).ptr(), nn::LayerNorm(nn::LayerNormOptions({4})).ptr(),
      nn::GroupNorm(2, 4).ptr(), nn::Embedding(5, 3).ptr(), nn::LSTM(nn::LSTMOptions(3, 4).num_layers(2)).ptr(),
      nn::GRU(3, 4).ptr(), nn::RNN(3, 4).ptr(), nn::LSTMCell(3, 4).ptr(), nn::GRUCell(3, 4).ptr(), nn::RNNCell(3, 4).ptr(),
      nn::Dropout(0.3).ptr(), nn::Dropout2d(0.2).ptr(), nn::ReLU().ptr(), nn::LeakyReLU().ptr(), nn::Tanh().ptr(),
      nn::Sigmoid().ptr(), nn::GELU().ptr(), nn::Softmax(1).ptr(), nn::Flatten().ptr(), nn::Identity().ptr(),
      nn::MaxPool2d(2).ptr(), nn::AvgPool2d(2).ptr(), nn::AdaptiveAvgPool2d(1).ptr(), nn::CrossEntropyLoss().ptr(),
      nn::MSELoss().ptr(), nn::Functional(xg::relu).ptr(),
      nn::Sequential(nn::Linear(2, 3), nn::ReLU(), nn::BatchNorm1d(3)).ptr(),
      nn::ModuleList(nn::Linear(2, 2), nn::Tanh()).ptr(), TwoLayer().ptr()};
  for (const auto& module : modules) {
    INFO(module->name());
    std::shared_ptr<nn::Module> copy = module->clone();
    REQUIRE(copy != nullptr);
    CHECK(copy.get() != module.get());
    CHECK(typeid(*copy) == typeid(*module));
    check_deep_copy(*module, *copy);
    CHECK(copy->parameters().size() == module->parameters().size());
  }
  nn::ModuleDict dict;
  dict->insert("enc", nn::Linear(2, 2));
  auto dict_copy = std::dynamic_pointer_cast<nn::ModuleDictImpl>(dict->clone());
  REQUIRE(dict_copy != nullptr);
  check_deep_copy(*dict, *dict_copy);
}

TEST_CASE("a cloned Sequential computes the same and trains apart", "[nn][clone]") {
  nn::Sequential seq(nn::Linear(3, 4), nn::ReLU(), nn::Linear(4, 2));
  seq[0]->eval();  // a per-module mode survives
  auto copy = std::dynamic_pointer_cast<nn::SequentialImpl>(seq->clone());
  REQUIRE(copy != nullptr);
  Tensor x = randn({5, 3});
  CHECK(equal(copy->forward(x), seq->forward(x)));
  CHECK(!copy->ptr(0)->is_training());
  CHECK(copy->ptr(1)->is_training());
  CHECK(copy->ptr<nn::Linear>(2)->options.out_features() == 2);  // typed entries survive
  optim::SGD sgd(copy->parameters(), optim::SGDOptions(0.1));
  copy->forward(x).sum().backward();
  sgd.step();
  CHECK(!equal(copy->forward(x), seq->forward(x)));
  CHECK(!seq->ptr<nn::Linear>(0)->weight.grad().defined());
}

TEST_CASE("modules of your own: default-constructible, Cloneable with reset(), and the error otherwise", "[nn][clone]") {
  TwoLayer two;
  auto two_copy = std::dynamic_pointer_cast<TwoLayerImpl>(two->clone());
  REQUIRE(two_copy != nullptr);
  check_deep_copy(*two, *two_copy);
  CHECK(!two_copy->first->weight.is_alias_of(two->first->weight));  // members rebound by the constructor

  Scaled scaled(3);
  {
    NoGradGuard no_grad;
    scaled->scale.fill_(5.0);
  }
  auto scaled_copy = std::dynamic_pointer_cast<ScaledImpl>(scaled->clone());
  REQUIRE(scaled_copy != nullptr);
  check_deep_copy(*scaled, *scaled_copy);
  CHECK(scaled_copy->n == 3);
  CHECK(!scaled_copy->inner->weight.is_alias_of(scaled->inner->weight));
  CHECK(scaled_copy->scale.is_same(scaled_copy->named_parameters()["scale"]));
  Tensor x = randn({2, 3});
  CHECK(equal(scaled_copy->forward(x), scaled->forward(x)));

  Sized sized(4);
  CHECK_THROWS_WITH(sized->clone(), Contains("Sized") && Contains("Cloneable"));
  nn::Sequential holding(nn::Linear(2, 2), Sized(2));
  CHECK_THROWS_WITH(holding->clone(), Contains("Cloneable"));

  // A module changed after construction no longer matches what its constructor builds.
  TwoLayer changed;
  changed->replace_module("second", nn::Linear(4, 5).ptr());
  CHECK_THROWS_WITH(changed->clone(), Contains("clone") && Contains("structure"));
}

// Bad input raises xg::Error with a message that names what went wrong: shapes, dims, dtypes,
// indices, autograd misuse (non-scalar backward, released graphs, stale saved tensors, in-place on
// leaves), and gradcheck's report for a custom Function with a wrong backward.
#include <catch2/catch.hpp>

#include <string>

#include "xgrad/xgrad.hpp"

using xg::Shape;
using xg::Tensor;
using xg::TensorList;
namespace ag = xg::autograd;
using Catch::Matchers::Contains;

namespace {

const char* const kNoThrow = "<<no exception was thrown>>";
const char* const kWrongType = "<<an exception that is not xg::Error was thrown>>";

/// The message of the xg::Error that f throws (or a marker that no / another exception was thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const xg::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string(kWrongType) + " " + e.what();
  } catch (...) {
    return kWrongType;
  }
  return kNoThrow;
}

}  // namespace

/// Asserts that `expr` throws xg::Error whose message satisfies `matcher`.
#define CHECK_XG_ERROR(expr, matcher)                                          \
  do {                                                                         \
    const std::string xg_message_ = error_of([&] { (void)(expr); });           \
    CHECK_THAT(xg_message_, !Contains(kNoThrow) && !Contains(kWrongType));     \
    CHECK_THAT(xg_message_, matcher);                                          \
  } while (0)

TEST_CASE("errors: shape mismatches name both shapes", "[errors]") {
  Tensor a = xg::zeros({2, 3}), b = xg::zeros({4});
  CHECK_XG_ERROR(xg::add(a, b), Contains("[2, 3]") && Contains("[4]") && Contains("broadcast"));
  CHECK_XG_ERROR(a + b, Contains("[2, 3]") && Contains("[4]"));
  CHECK_XG_ERROR(xg::mul(xg::zeros({2, 3}), xg::zeros({3, 2})), Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_XG_ERROR(xg::where(xg::ones({2}), xg::zeros({3}), xg::zeros({3})), Contains("[2]") && Contains("[3]"));
  // matmul family
  CHECK_XG_ERROR(xg::matmul(xg::zeros({3, 4}), xg::zeros({5, 6})), Contains("inner dimensions 4 and 5 differ"));
  CHECK_XG_ERROR(xg::matmul(xg::zeros({3, 4}), xg::zeros({5, 6})), Contains("[3, 4]") && Contains("[5, 6]"));
  CHECK_XG_ERROR(xg::mm(xg::zeros({3, 4}), xg::zeros({5, 6})), Contains("inner dimensions 4 and 5 differ"));
  CHECK_XG_ERROR(xg::matmul(xg::zeros({2, 3, 4}), xg::zeros({2, 5, 6})), Contains("inner dimensions 4 and 5 differ"));
  CHECK_XG_ERROR(xg::matmul(xg::zeros({4}), xg::zeros({5})), Contains("4") && Contains("5"));
  CHECK_XG_ERROR(xg::matmul(xg::zeros({2, 3, 4}), xg::zeros({3, 4, 2})), Contains("[2, 3, 4]") && Contains("[3, 4, 2]"));
  CHECK_XG_ERROR(xg::mm(xg::zeros({3}), xg::zeros({3, 2})), Contains("2-D") && Contains("[3]"));
  CHECK_XG_ERROR(xg::bmm(xg::zeros({2, 3, 4}), xg::zeros({3, 4, 5})), Contains("batch") && Contains("2") && Contains("3"));
  CHECK_XG_ERROR(xg::dot(xg::zeros({3}), xg::zeros({4})), Contains("3") && Contains("4"));
  CHECK_XG_ERROR(xg::gemm(xg::zeros({3, 4}), xg::zeros({3, 4}), false, false), Contains("inner dimensions 4 and 3 differ"));
  CHECK_XG_ERROR(xg::t(xg::zeros({2, 3, 4})), Contains("[2, 3, 4]"));
  // linear with the wrong in_features
  CHECK_XG_ERROR(xg::linear(xg::zeros({2, 3}), xg::zeros({4, 5})), Contains("[2, 3]") && Contains("[4, 5]") && Contains("in_features"));
  CHECK_XG_ERROR(xg::linear(xg::zeros({2, 5}), xg::zeros({4, 5}), xg::zeros({3})), Contains("bias") && Contains("[3]"));
}

TEST_CASE("errors: dims out of range", "[errors]") {
  Tensor x = xg::zeros({2, 3});
  CHECK_XG_ERROR(xg::sum(x, {5}), Contains("sum") && Contains("dimension out of range") && Contains("5"));
  CHECK_XG_ERROR(xg::sum(x, {-3}), Contains("dimension out of range") && Contains("-3"));
  CHECK_XG_ERROR(xg::mean(x, {2}), Contains("mean") && Contains("out of range"));
  CHECK_XG_ERROR(xg::sum(x, {1, 1}), Contains("more than once"));
  CHECK_XG_ERROR(xg::softmax(x, 2), Contains("softmax") && Contains("out of range") && Contains("2"));
  CHECK_XG_ERROR(xg::log_softmax(x, -3), Contains("log_softmax") && Contains("out of range"));
  CHECK_XG_ERROR(xg::squeeze(x, 3), Contains("squeeze") && Contains("out of range"));
  CHECK_XG_ERROR(xg::unsqueeze(x, 4), Contains("unsqueeze") && Contains("out of range"));
  CHECK_XG_ERROR(xg::unsqueeze(x, -4), Contains("unsqueeze") && Contains("out of range"));
  CHECK_XG_ERROR(xg::transpose(x, 0, 2), Contains("transpose") && Contains("out of range"));
  CHECK_XG_ERROR(xg::permute(x, {0, 2}), Contains("permute") && Contains("out of range"));
  CHECK_XG_ERROR(xg::permute(x, {0}), Contains("permute") && Contains("[2, 3]"));
  CHECK_XG_ERROR(xg::permute(x, {1, 1}), Contains("permute") && Contains("repeats"));
  CHECK_XG_ERROR(xg::max(x, 2), Contains("max") && Contains("out of range"));
  CHECK_XG_ERROR(xg::argmax(x, -5), Contains("argmax") && Contains("out of range"));
  CHECK_XG_ERROR(xg::cat({x, x}, 2), Contains("cat") && Contains("out of range"));
  CHECK_XG_ERROR(xg::stack({x, x}, 4), Contains("stack") && Contains("out of range"));
  CHECK_XG_ERROR(xg::flatten(x, 1, 0), Contains("flatten"));
  CHECK_XG_ERROR(xg::var(x, {3}), Contains("var") && Contains("out of range"));
  CHECK_XG_ERROR(xg::logsumexp(x, {2}), Contains("logsumexp") && Contains("out of range"));
  CHECK_XG_ERROR(xg::norm(x, 2, {7}), Contains("norm") && Contains("out of range"));
  CHECK_XG_ERROR(xg::narrow(x, 2, 0, 1), Contains("narrow") && Contains("out of range"));
  CHECK_XG_ERROR(xg::index_select(x, 2, xg::tensor({0}, {1}, xg::kInt64)), Contains("index_select") && Contains("out of range"));
  CHECK_XG_ERROR(x.size(2), Contains("out of range"));
  // a 0-D tensor accepts only dims 0 and -1
  Tensor s = xg::scalar_tensor(1.0);
  CHECK_XG_ERROR(xg::squeeze(s, 5), Contains("squeeze") && Contains("out of range") && Contains("5"));
  CHECK_XG_ERROR(xg::transpose(s, 0, 3), Contains("transpose") && Contains("out of range") && Contains("3"));
  CHECK_XG_ERROR(xg::unsqueeze(s, 2), Contains("unsqueeze") && Contains("out of range"));
  CHECK_XG_ERROR(xg::sum(s, {1}), Contains("sum") && Contains("out of range"));
  CHECK_XG_ERROR(xg::softmax(s, 1), Contains("softmax") && Contains("out of range"));
}

TEST_CASE("errors: dtype mismatches name the dtypes", "[errors]") {
  Tensor f32 = xg::ones({2}), f64 = xg::ones({2}, xg::kFloat64), i64 = xg::ones({2}, xg::kInt64);
  CHECK_XG_ERROR(xg::add(f32, f64), Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(f32 * f64, Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(xg::sub(f64, i64), Contains("float64") && Contains("int64"));
  CHECK_XG_ERROR(xg::matmul(xg::ones({2, 2}), xg::ones({2, 2}, xg::kFloat64)), Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(xg::where(f32, f32, f64), Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(xg::exp(i64), Contains("exp") && Contains("int64"));
  CHECK_XG_ERROR(xg::log(i64), Contains("log") && Contains("int64"));
  CHECK_XG_ERROR(xg::sigmoid(i64), Contains("sigmoid") && Contains("int64"));
  CHECK_XG_ERROR(xg::softmax(i64, 0), Contains("softmax") && Contains("int64"));
  CHECK_XG_ERROR(xg::mean(i64), Contains("mean") && Contains("int64"));
  CHECK_XG_ERROR(xg::div(i64, i64), Contains("div") && Contains("int64"));
  CHECK_XG_ERROR(xg::matmul(xg::ones({2, 2}, xg::kInt64), xg::ones({2, 2}, xg::kInt64)), Contains("int64"));
  CHECK_XG_ERROR(i64.requires_grad_(), Contains("requires_grad_") && Contains("int64"));
  CHECK_XG_ERROR(xg::index_select(f32, 0, xg::tensor({0.0})), Contains("int64") && Contains("float32"));
  CHECK_XG_ERROR(xg::gather(f32, 0, xg::tensor({0.0})), Contains("int64"));
  CHECK_XG_ERROR(xg::one_hot(xg::tensor({0.0, 1.0})), Contains("int64"));
  CHECK_XG_ERROR(f32.data_ptr<double>(), Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(xg::allclose(f32, f64), Contains("float32") && Contains("float64"));
}

TEST_CASE("errors: reductions over no elements", "[errors]") {
  Tensor empty = xg::zeros({0});
  CHECK_XG_ERROR(xg::max(empty), Contains("max") && Contains("empty"));
  CHECK_XG_ERROR(xg::min(empty), Contains("min") && Contains("empty"));
  CHECK_XG_ERROR(xg::argmax(empty), Contains("argmax") && Contains("empty"));
  CHECK_XG_ERROR(xg::argmin(empty), Contains("argmin") && Contains("empty"));
  CHECK_XG_ERROR(xg::max(xg::zeros({2, 0}), 1), Contains("max") && Contains("empty"));
  CHECK_XG_ERROR(xg::logsumexp(empty, {0}), Contains("logsumexp") && Contains("zero elements"));
  // (mean over no elements and var without degrees of freedom are NaN, as PyTorch: tests/test_reliability_numerics.cpp)
  // sums over nothing are fine (the identity 0)
  CHECK(xg::sum(empty).item<float>() == 0.0f);
}

TEST_CASE("errors: indices out of range", "[errors]") {
  Tensor x = xg::zeros({3, 2});
  CHECK_XG_ERROR(xg::index_select(x, 0, xg::tensor({0, 3}, {2}, xg::kInt64)), Contains("index_select") && Contains("index 3 is out of range"));
  CHECK_XG_ERROR(xg::index_select(x, 1, xg::tensor({-1}, {1}, xg::kInt64)), Contains("index_select") && Contains("-1"));
  CHECK_XG_ERROR(xg::index_add(x, 0, xg::tensor({5}, {1}, xg::kInt64), xg::zeros({1, 2})), Contains("index_add") && Contains("5"));
  CHECK_XG_ERROR(xg::gather(x, 1, xg::tensor({0, 2}, {1, 2}, xg::kInt64)), Contains("gather") && Contains("index 2 is out of bounds"));
  CHECK_XG_ERROR(xg::gather(x, 0, xg::tensor({0, 1}, {2}, xg::kInt64)), Contains("gather") && Contains("dimensions"));
  CHECK_XG_ERROR(xg::scatter_add(x, 0, xg::tensor({3, 0}, {1, 2}, xg::kInt64), xg::ones({1, 2})),
                 Contains("scatter_add") && Contains("index 3 is out of bounds"));
  CHECK_XG_ERROR(xg::scatter_add(x, 0, xg::tensor({0, 0, 0}, {1, 3}, xg::kInt64), xg::ones({1, 3})), Contains("scatter_add") && Contains("[1, 3]"));
  CHECK_XG_ERROR(xg::one_hot(xg::tensor({0, 3}, {2}, xg::kInt64), 3), Contains("one_hot") && Contains("3") && Contains("out of range"));
  CHECK_XG_ERROR(xg::one_hot(xg::tensor({-1}, {1}, xg::kInt64)), Contains("one_hot") && Contains("non-negative"));
  CHECK_XG_ERROR(xg::narrow(x, 0, 2, 5), Contains("narrow") && Contains("exceeds"));
  // a 0-D tensor has exactly one slot
  Tensor s = xg::scalar_tensor(3.0);
  CHECK_XG_ERROR(xg::index_select(s, 0, xg::tensor({0, 0}, {2}, xg::kInt64)), Contains("index_select") && Contains("only 1 value"));
  CHECK_XG_ERROR(xg::index_add(s, 0, xg::tensor({0, 0}, {2}, xg::kInt64), xg::scalar_tensor(1.0)), Contains("index_add") && Contains("only 1 value"));
  CHECK_XG_ERROR(xg::index_select(s, 0, xg::tensor({1}, {1}, xg::kInt64)), Contains("index_select") && Contains("out of range"));
  CHECK_XG_ERROR(xg::gather(s, 0, xg::ones({}, xg::kInt64)), Contains("gather") && Contains("out of bounds"));
  CHECK_XG_ERROR(xg::narrow(x, 0, 4, 0), Contains("narrow") && Contains("out of range"));
  CHECK_XG_ERROR(xg::split_with_sizes(x, {1, 1}), Contains("split_with_sizes") && Contains("3"));
  CHECK_XG_ERROR(xg::slice(x, 0, 0, 2, 0), Contains("slice") && Contains("step"));
  CHECK_XG_ERROR(xg::pad(x, {1, 2, 3}), Contains("pad") && Contains("even"));
  CHECK_XG_ERROR(xg::pad(x, {0, 0, 0, 0, 1, 1}), Contains("pad") && Contains("[3, 2]"));
  CHECK_XG_ERROR(xg::pad(x, {-2, -1}), Contains("pad") && Contains("negative"));
}

TEST_CASE("errors: reshape, expand, cat, stack with incompatible shapes", "[errors]") {
  Tensor x = xg::zeros({2, 3});
  CHECK_XG_ERROR(xg::reshape(x, {4, 2}), Contains("reshape") && Contains("[4, 2]") && Contains("[2, 3]") && Contains("invalid"));
  CHECK_XG_ERROR(xg::view(x, {4, -1}), Contains("[4, -1]") && Contains("invalid"));
  CHECK_XG_ERROR(xg::reshape(x, {-1, -1}), Contains("only one dimension can be inferred"));
  CHECK_XG_ERROR(x.view({7}), Contains("[7]"));
  CHECK_XG_ERROR(xg::expand(xg::zeros({3}), {2, 4}), Contains("expand") && Contains("[2, 4]") && Contains("[3]"));
  CHECK_XG_ERROR(xg::expand(x, {3}), Contains("expand"));
  CHECK_XG_ERROR(xg::expand(xg::zeros({2, 1}), {3, 4}), Contains("expand") && Contains("(3)") && Contains("(2)"));
  CHECK_XG_ERROR(xg::expand(xg::zeros({1}), {-2}), Contains("expand") && Contains("-2"));
  CHECK_XG_ERROR(xg::expand(xg::zeros({2}), {-1, 2}), Contains("expand") && Contains("-1"));
  CHECK_XG_ERROR(xg::cat({x, xg::zeros({2, 4})}, 0), Contains("cat") && Contains("sizes of tensors must match") && Contains("dimension 1"));
  CHECK_XG_ERROR(xg::cat({x, xg::zeros({3})}, 0), Contains("cat") && Contains("same number of dimensions"));
  CHECK_XG_ERROR(xg::cat({x, xg::zeros({2, 3}, xg::kFloat64)}, 0), Contains("cat") && Contains("float32") && Contains("float64"));
  CHECK_XG_ERROR(xg::cat({}, 0), Contains("cat") && Contains("non-empty"));
  CHECK_XG_ERROR(xg::cat({xg::scalar_tensor(1.0)}, 0), Contains("cat") && Contains("zero-dimensional"));
  CHECK_XG_ERROR(xg::stack({x, xg::zeros({3, 2})}, 0), Contains("stack") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_XG_ERROR(xg::index_add(x, 0, xg::tensor({0}, {1}, xg::kInt64), xg::zeros({2, 3})), Contains("index_add") && Contains("[1, 3]"));
  CHECK_XG_ERROR(xg::masked_fill(xg::zeros({3}), xg::ones({2, 3}), 1.0), Contains("masked_fill") && Contains("[2, 3]"));
  CHECK_XG_ERROR(xg::sum_to(xg::zeros({3}), {2, 3}), Contains("sum_to") && Contains("[3]") && Contains("[2, 3]"));
  CHECK_XG_ERROR(xg::tensor({1.0, 2.0, 3.0}, {2, 2}), Contains("3 values") && Contains("[2, 2]"));
  CHECK_XG_ERROR(xg::zeros({2, -1}), Contains("negative"));
  CHECK_XG_ERROR(x.item<float>(), Contains("item") && Contains("[2, 3]"));
}

TEST_CASE("errors: bad scalar arguments", "[errors]") {
  Tensor x = xg::ones({2});
  CHECK_XG_ERROR(xg::gelu(x, "fast"), Contains("gelu") && Contains("fast"));
  CHECK_XG_ERROR(xg::clamp(x, std::nullopt, std::nullopt), Contains("clamp"));
  CHECK_XG_ERROR(xg::norm(x, -1), Contains("norm") && Contains("p > 0"));
  CHECK_XG_ERROR(xg::softplus(x, 0.0), Contains("softplus") && Contains("beta"));
  CHECK_XG_ERROR(xg::arange(0, 5, 0), Contains("arange") && Contains("step"));
  CHECK_XG_ERROR(xg::arange(5, 0, 1), Contains("arange"));
  CHECK_XG_ERROR(xg::randint(5, 5, {2}), Contains("randint") && Contains("low"));
  CHECK_XG_ERROR(xg::split(x, 0), Contains("split") && Contains("positive"));
  CHECK_XG_ERROR(xg::chunk(x, 0), Contains("chunk") && Contains("positive"));
}

TEST_CASE("errors: backward on a non-scalar output without a gradient", "[errors]") {
  Tensor x = xg::ones({2, 3}, xg::kFloat64).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_XG_ERROR(y.backward(), Contains("implicitly created only for outputs with one element") && Contains("[2, 3]"));
  CHECK_XG_ERROR(ag::grad({y}, {x}), Contains("implicitly created only for outputs with one element"));
  // a gradient of the wrong shape / dtype
  CHECK_XG_ERROR(y.backward(xg::ones({3, 2}, xg::kFloat64)), Contains("[3, 2]") && Contains("[2, 3]"));
  CHECK_XG_ERROR(y.backward(xg::ones({2, 3})), Contains("float32") && Contains("float64"));
  // with a proper gradient it works
  y.backward(xg::ones({2, 3}, xg::kFloat64));
  CHECK(x.grad().defined());
  // an output that does not require grad
  CHECK_XG_ERROR(xg::ones({1}).backward(), Contains("does not require grad"));
  // grad() of an input the output does not depend on
  Tensor unused = xg::ones({2}, xg::kFloat64).requires_grad_();
  CHECK_XG_ERROR(ag::grad({(x * x).sum()}, {unused}), Contains("not used") && Contains("allow_unused"));
}

TEST_CASE("errors: a second backward through a released graph mentions retain_graph", "[errors]") {
  Tensor a = xg::tensor({1.0, 2.0}, xg::kFloat64).requires_grad_();
  Tensor b = xg::tensor({3.0, 4.0}, xg::kFloat64).requires_grad_();
  Tensor loss = (a * b).sum();
  loss.backward();
  CHECK_XG_ERROR(loss.backward(), Contains("second time") && Contains("retain_graph") && Contains("MulBackward"));
  // retain_graph keeps it usable
  Tensor loss2 = (a * b).sum();
  loss2.backward({}, true);
  CHECK_NOTHROW(loss2.backward());
  CHECK_XG_ERROR(loss2.backward(), Contains("retain_graph"));
  // the gradients from the successful passes are right: 3 passes of d(a.b)/da = b
  CHECK(a.grad().data_ptr<double>()[0] == Approx(3 * 3.0));
  CHECK(a.grad().data_ptr<double>()[1] == Approx(3 * 4.0));
}

TEST_CASE("errors: a saved tensor modified in place is reported with its versions", "[errors]") {
  SECTION("exp saves its output; changing the output in place breaks backward") {
    Tensor a = xg::tensor({0.5, -1.0}, xg::kFloat64).requires_grad_();
    Tensor b = a * 2.0;  // non-leaf
    Tensor c = b.exp();
    c.add_(1.0);
    CHECK_XG_ERROR(c.sum().backward(),
                   Contains("modified by an in-place operation") && Contains("version 1") && Contains("expected version 0"));
  }
  SECTION("the same under NoGradGuard") {
    Tensor a = xg::tensor({0.5, -1.0}, xg::kFloat64).requires_grad_();
    Tensor c = (a * 2.0).exp();
    {
      xg::NoGradGuard no_grad;
      c.mul_(3.0);
    }
    CHECK_XG_ERROR(c.sum().backward(), Contains("modified by an in-place operation") && Contains("ExpBackward"));
  }
  SECTION("mul saves its inputs; changing an input in place breaks backward") {
    Tensor a = xg::tensor({0.5, -1.0}, xg::kFloat64).requires_grad_();
    Tensor b = a * 2.0;
    Tensor y = b * b;
    b.sub_(1.0);
    b.sub_(1.0);
    CHECK_XG_ERROR(y.sum().backward(), Contains("modified by an in-place operation") && Contains("version 2") &&
                                           Contains("expected version 0") && Contains("MulBackward"));
  }
  SECTION("an in-place change that nothing saved is fine and its gradient is right") {
    Tensor a = xg::tensor({0.5, -1.0}, xg::kFloat64).requires_grad_();
    Tensor b = a * 2.0;  // MulBackward with a scalar saves nothing
    b.mul_(3.0);
    b.sum().backward();
    CHECK(a.grad().data_ptr<double>()[0] == Approx(6.0));
    CHECK(a.grad().data_ptr<double>()[1] == Approx(6.0));
  }
}

TEST_CASE("errors: in-place on a leaf that requires grad", "[errors]") {
  Tensor w = xg::ones({2}, xg::kFloat64).requires_grad_();
  CHECK_XG_ERROR(w.add_(1.0), Contains("add_") && Contains("leaf"));
  CHECK_XG_ERROR(w.mul_(2.0), Contains("mul_") && Contains("leaf"));
  CHECK_XG_ERROR(w.sub_(xg::ones({2}, xg::kFloat64)), Contains("leaf"));
  CHECK_XG_ERROR(w.div_(xg::ones({2}, xg::kFloat64)), Contains("leaf"));
  CHECK_XG_ERROR(w.zero_(), Contains("leaf"));
  CHECK_XG_ERROR(w.fill_(3.0), Contains("leaf"));
  CHECK_XG_ERROR(w.copy_(xg::zeros({2}, xg::kFloat64)), Contains("leaf"));
  CHECK_XG_ERROR(w += 1.0, Contains("leaf"));
  // nothing was changed
  CHECK(w.data_ptr<double>()[0] == 1.0);
  CHECK(w._version() == 0);
  // allowed under NoGradGuard (parameter updates)
  {
    xg::NoGradGuard no_grad;
    w.add_(1.0);
  }
  CHECK(w.data_ptr<double>()[0] == 2.0);
  CHECK(w._version() == 1);
  // in-place that would change the shape
  Tensor v = xg::ones({2}, xg::kFloat64);
  CHECK_XG_ERROR(v.add_(xg::ones({3, 2}, xg::kFloat64)), Contains("[3, 2]") && Contains("[2]"));
  CHECK_XG_ERROR(v.mul_(xg::ones({2})), Contains("float64") && Contains("float32"));
}

namespace {

/// y = x^2 with the correct backward 2 x g.
struct Square : ag::Function<Square> {
  static Tensor forward(ag::AutogradContext* ctx, Tensor x) {
    ctx->save_for_backward({x});
    return xg::mul(x, x);
  }
  static TensorList backward(ag::AutogradContext* ctx, TensorList grad_outputs) {
    Tensor x = ctx->get_saved_variables()[0];
    return {xg::mul(xg::mul(grad_outputs[0], x), 2.0)};
  }
};

/// y = x^2 with a deliberately wrong backward 3 x g.
struct WrongSquare : ag::Function<WrongSquare> {
  static Tensor forward(ag::AutogradContext* ctx, Tensor x) {
    ctx->save_for_backward({x});
    return xg::mul(x, x);
  }
  static TensorList backward(ag::AutogradContext* ctx, TensorList grad_outputs) {
    Tensor x = ctx->get_saved_variables()[0];
    return {xg::mul(xg::mul(grad_outputs[0], x), 3.0)};
  }
};

/// y = a * sin(b) * c with a double c; correct gradients for both tensors.
struct ScaledSinProduct : ag::Function<ScaledSinProduct> {
  static Tensor forward(ag::AutogradContext* ctx, Tensor a, Tensor b, double c) {
    ctx->save_for_backward({a, b});
    ctx->saved_data["c"] = c;
    return xg::mul(xg::mul(a, xg::sin(b)), c);
  }
  static TensorList backward(ag::AutogradContext* ctx, TensorList grad_outputs) {
    TensorList saved = ctx->get_saved_variables();
    const double c = ctx->saved_data["c"].toDouble();
    Tensor g = xg::mul(grad_outputs[0], c);
    return {xg::mul(g, xg::sin(saved[1])), xg::mul(xg::mul(g, saved[0]), xg::cos(saved[1])), Tensor()};
  }
};

/// The second derivative is wrong: backward uses a constant (detached) copy of x, so gradcheck
/// passes but gradgradcheck must fail.
struct DetachedSquare : ag::Function<DetachedSquare> {
  static Tensor forward(ag::AutogradContext* ctx, Tensor x) {
    ctx->save_for_backward({x});
    return xg::mul(x, x);
  }
  static TensorList backward(ag::AutogradContext* ctx, TensorList grad_outputs) {
    Tensor x = ctx->get_saved_variables()[0].detach();
    return {xg::mul(xg::mul(grad_outputs[0], x), 2.0)};
  }
};

}  // namespace

TEST_CASE("errors: gradcheck reports a wrong custom Function backward; a correct one passes", "[errors][function]") {
  Tensor x = xg::tensor({0.5, -1.5, 2.0}, xg::kFloat64).requires_grad_();
  std::function<Tensor(const TensorList&)> wrong = [](const TensorList& in) { return WrongSquare::apply(in[0]); };
  std::function<Tensor(const TensorList&)> right = [](const TensorList& in) { return Square::apply(in[0]); };

  // The worst element is x = 2: numerical d(x^2)/dx = 4, analytical 3 x = 6.
  const std::string report = error_of([&] { ag::gradcheck(wrong, {x}); });
  CHECK_THAT(report, Contains("gradcheck") && Contains("input 0") && Contains("output 0") && Contains("input element 2") &&
                         Contains("output element 2") && Contains("analytical = 6"));
  // the central difference of x^2 at 2 is 4 up to rounding (printed with 10 significant digits)
  CHECK_THAT(report, Contains("numerical = 4") || Contains("numerical = 3.99999999"));
  CHECK_THAT(report, !Contains(kNoThrow) && !Contains(kWrongType));
  CHECK_FALSE(ag::gradcheck(wrong, {x}, ag::GradcheckOptions().set_raise_exception(false)));

  CHECK(ag::gradcheck(right, {x}));
  CHECK(ag::gradgradcheck(right, {x}));
  // forward value and gradient of the correct one by hand
  Tensor y = Square::apply(x);
  CHECK(y.data_ptr<double>()[2] == 4.0);
  y.sum().backward();
  CHECK(x.grad().data_ptr<double>()[0] == Approx(1.0));
  CHECK(x.grad().data_ptr<double>()[1] == Approx(-3.0));
  CHECK(x.grad().data_ptr<double>()[2] == Approx(4.0));

  // Two tensor arguments and a double.
  Tensor a = xg::tensor({0.3, -0.7, 1.1, 0.4}, {2, 2}, xg::kFloat64).requires_grad_();
  Tensor b = xg::tensor({0.9, 0.2, -1.3, 0.6}, {2, 2}, xg::kFloat64).requires_grad_();
  std::function<Tensor(const TensorList&)> product = [](const TensorList& in) { return ScaledSinProduct::apply(in[0], in[1], 1.5); };
  CHECK(ag::gradcheck(product, {a, b}));
  CHECK(ag::gradgradcheck(product, {a, b}));
  // ... also with one input not requiring grad
  Tensor b_const = xg::tensor({0.9, 0.2, -1.3, 0.6}, {2, 2}, xg::kFloat64);
  CHECK(ag::gradcheck(product, {a, b_const}));

  // A backward that is right to first order but not differentiable itself: only gradgradcheck sees it.
  std::function<Tensor(const TensorList&)> detached = [](const TensorList& in) { return DetachedSquare::apply(in[0]); };
  CHECK(ag::gradcheck(detached, {x}));
  CHECK_XG_ERROR(ag::gradgradcheck(detached, {x}), Contains("gradcheck") && Contains("numerical") && Contains("analytical"));
}

TEST_CASE("errors: gradcheck rejects unusable inputs and outputs", "[errors]") {
  Tensor f32 = xg::ones({2}).requires_grad_();
  std::function<Tensor(const TensorList&)> ident = [](const TensorList& in) { return xg::mul(in[0], 2.0); };
  CHECK_XG_ERROR(ag::gradcheck(ident, {f32}), Contains("float64") && Contains("float32"));
  CHECK_XG_ERROR(ag::gradcheck(ident, {xg::ones({2}, xg::kFloat64)}), Contains("no input requires grad"));
  Tensor x = xg::ones({2}, xg::kFloat64).requires_grad_();
  CHECK_XG_ERROR(ag::gradcheck(ident, {x * 1.0}), Contains("leaf"));
  std::function<Tensor(const TensorList&)> to32 = [](const TensorList& in) { return xg::to_dtype(in[0], xg::kFloat32); };
  CHECK_XG_ERROR(ag::gradcheck(to32, {x}), Contains("output 0") && Contains("float32"));
}

TEST_CASE("XG_CHECK: with a message it formats it; alone it names the condition, as TORCH_CHECK", "[errors]") {
  const int batch = 3;
  // XG_CHECK is a statement; each use is wrapped in a lambda to be an expression for Catch.
  CHECK_THROWS_MATCHES([&] { XG_CHECK(batch == 4, "my_op: expected a batch of 4, got {}", batch); }(), xg::Error,
                       Catch::Matchers::Message("my_op: expected a batch of 4, got 3"));
  CHECK_THROWS_MATCHES([&] { XG_CHECK(batch > 5); }(), xg::Error,
                       Catch::Matchers::Message("Expected batch > 5 to be true, but got false"));
  CHECK_NOTHROW([&] { XG_CHECK(batch == 3); }());
  CHECK_NOTHROW([&] { XG_CHECK(batch == 3, "never formatted {}", batch); }());
}

// nn::init: gains, fans, and the statistics of every initialiser on tensors large enough that the
// tolerances below are several standard errors wide.
#include <catch2/catch.hpp>

#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
struct Moments {
  double mean = 0, std = 0, max_abs = 0;
};
Moments moments_of(const Tensor& t) {
  Tensor d = t.to(kFloat64);
  const double* p = d.data_ptr<double>();
  const int64_t n = d.numel();
  Moments m;
  for (int64_t i = 0; i < n; ++i) m.mean += p[i];
  m.mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    m.std += (p[i] - m.mean) * (p[i] - m.mean);
    m.max_abs = std::max(m.max_abs, std::abs(p[i]));
  }
  m.std = std::sqrt(m.std / static_cast<double>(n - 1));
  return m;
}
}  // namespace

TEST_CASE("calculate_gain matches PyTorch's table", "[nn][layers][init]") {
  CHECK(nn::init::calculate_gain("linear") == 1.0);
  CHECK(nn::init::calculate_gain("conv2d") == 1.0);
  CHECK(nn::init::calculate_gain("sigmoid") == 1.0);
  CHECK(nn::init::calculate_gain("tanh") == Approx(5.0 / 3.0));
  CHECK(nn::init::calculate_gain("relu") == Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain("leaky_relu") == Approx(std::sqrt(2.0 / (1.0 + 0.01 * 0.01))));
  CHECK(nn::init::calculate_gain("leaky_relu", 0.2) == Approx(std::sqrt(2.0 / 1.04)));
  CHECK(nn::init::calculate_gain("selu") == 0.75);
  CHECK_THROWS_WITH(nn::init::calculate_gain("swish"), Contains("calculate_gain") && Contains("swish"));
}

TEST_CASE("fan in and fan out include the receptive field; 1-D tensors are rejected", "[nn][layers][init]") {
  auto [fan_in, fan_out] = nn::init::_calculate_fan_in_and_fan_out(empty({32, 16, 5, 3}));
  CHECK(fan_in == 16 * 15);
  CHECK(fan_out == 32 * 15);
  CHECK(nn::init::_calculate_fan_in_and_fan_out(empty({10, 784})) == std::pair<int64_t, int64_t>{784, 10});
  CHECK_THROWS_WITH(nn::init::_calculate_fan_in_and_fan_out(empty({7})), Contains("fewer than 2 dimensions") && Contains("[7]"));
  CHECK_THROWS_WITH(nn::init::kaiming_uniform_(empty({7})), Contains("kaiming_uniform_") && Contains("fewer than 2 dimensions"));
  CHECK_THROWS_WITH(nn::init::xavier_normal_(empty({7})), Contains("xavier_normal_"));
  CHECK_THROWS_WITH(nn::init::orthogonal_(empty({7})), Contains("orthogonal_") && Contains("2 or more dimensions"));
  CHECK_THROWS_WITH(nn::init::kaiming_normal_(empty({3, 3}), 0, "fan_avg"), Contains("fan_in") && Contains("fan_avg"));
  CHECK_THROWS_WITH(nn::init::uniform_(empty({3}, kInt64)), Contains("int64"));
}

TEST_CASE("uniform_, normal_, constant_, zeros_, ones_, eye_", "[nn][layers][init]") {
  manual_seed(1);
  Tensor t = empty({200, 500});
  Tensor same = nn::init::uniform_(t, -2.0, 3.0);
  CHECK(same.is_same(t));  // modifies in place and returns the tensor
  Moments u = moments_of(t);
  CHECK(u.mean == Approx(0.5).margin(0.02));
  CHECK(u.std == Approx(5.0 / std::sqrt(12.0)).epsilon(0.01));
  CHECK(min(t).item<double>() >= -2.0);
  CHECK(max(t).item<double>() < 3.0);

  nn::init::normal_(t, 1.5, 0.5);
  Moments n = moments_of(t);
  CHECK(n.mean == Approx(1.5).margin(0.005));
  CHECK(n.std == Approx(0.5).epsilon(0.01));

  Tensor small = empty({2, 3}, kFloat64);
  nn::init::constant_(small, 0.25);
  CHECK(equal(small, full({2, 3}, 0.25, kFloat64)));
  nn::init::ones_(small);
  CHECK(equal(small, ones({2, 3}, kFloat64)));
  nn::init::zeros_(small);
  CHECK(equal(small, zeros({2, 3}, kFloat64)));
  nn::init::eye_(small);
  CHECK(equal(small, tensor({1, 0, 0, 0, 1, 0}, {2, 3}, kFloat64)));
  CHECK_THROWS_WITH(nn::init::eye_(empty({2, 2, 2})), Contains("eye_") && Contains("2-D"));
}

TEST_CASE("initialisers write into a parameter in place without recording and bump its version", "[nn][layers][init]") {
  Tensor w = zeros({4, 5}).requires_grad_();
  const uint64_t before = w._version();
  nn::init::kaiming_uniform_(w);
  CHECK(w.is_leaf());
  CHECK(w.requires_grad());
  CHECK(w._version() > before);
  CHECK(sum(abs(w)).item<double>() > 0);
  manual_seed(5);
  Tensor a = nn::init::xavier_normal_(empty({6, 7}));
  manual_seed(5);
  Tensor b = nn::init::xavier_normal_(empty({6, 7}));
  CHECK(equal(a, b));  // reproducible from the global seed
}

TEST_CASE("kaiming_uniform_ bounds and kaiming_normal_ std follow the gain and the fan mode", "[nn][layers][init]") {
  manual_seed(2);
  Tensor w = empty({300, 400});
  nn::init::kaiming_uniform_(w, 0.0, "fan_in", "relu");
  const double bound = std::sqrt(2.0) * std::sqrt(3.0 / 400.0);
  Moments u = moments_of(w);
  CHECK(u.max_abs <= bound);
  CHECK(u.max_abs > 0.99 * bound);
  CHECK(u.std == Approx(bound / std::sqrt(3.0)).epsilon(0.01));

  // The default (a = 0, leaky_relu) uses gain sqrt(2 / (1 + 0)) = sqrt(2) as well; a = sqrt(5) gives 1/sqrt(fan_in).
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));
  CHECK(moments_of(w).max_abs <= 1.0 / std::sqrt(400.0));
  CHECK(moments_of(w).max_abs > 0.99 / std::sqrt(400.0));

  nn::init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  Moments n = moments_of(w);
  CHECK(n.mean == Approx(0.0).margin(0.002));
  CHECK(n.std == Approx(std::sqrt(2.0) / std::sqrt(300.0)).epsilon(0.01));
}

TEST_CASE("xavier std and normal_fan_in_ (Nielsen's N(0, 1/n_in)) on large tensors", "[nn][layers][init]") {
  manual_seed(3);
  Tensor w = empty({500, 300}, kFloat64);
  nn::init::xavier_uniform_(w, 2.0);
  Moments u = moments_of(w);
  const double std = 2.0 * std::sqrt(2.0 / 800.0);
  CHECK(u.std == Approx(std).epsilon(0.01));
  CHECK(u.max_abs <= std::sqrt(3.0) * std);
  nn::init::xavier_normal_(w);
  CHECK(moments_of(w).std == Approx(std::sqrt(2.0 / 800.0)).epsilon(0.01));
  nn::init::normal_fan_in_(w);
  Moments n = moments_of(w);
  CHECK(n.mean == Approx(0.0).margin(0.001));
  CHECK(n.std == Approx(1.0 / std::sqrt(300.0)).epsilon(0.01));
}

TEST_CASE("orthogonal_ gives orthonormal rows or columns, scaled by gain", "[nn][layers][init]") {
  manual_seed(4);
  Tensor wide = empty({20, 50}, kFloat64);  // rows orthonormal: W W^T = I
  nn::init::orthogonal_(wide);
  CHECK(allclose(matmul(wide, wide.t()), eye(20, std::nullopt, kFloat64), 0, 1e-12));
  Tensor tall = empty({50, 20}, kFloat64);  // columns orthonormal: W^T W = I
  nn::init::orthogonal_(tall, 2.0);
  CHECK(allclose(matmul(tall.t(), tall), mul(eye(20, std::nullopt, kFloat64), 4.0), 0, 1e-12));
  Tensor conv = empty({8, 2, 3, 3});  // seen as [8, 18]
  nn::init::orthogonal_(conv);
  Tensor flat = reshape(conv, {8, 18});
  CHECK(allclose(matmul(flat, flat.t()), eye(8), 0, 1e-5));
  // Q of a Gaussian matrix is Haar-distributed: its entries are not all of one sign or magnitude.
  CHECK(moments_of(wide).mean == Approx(0.0).margin(0.03));
}

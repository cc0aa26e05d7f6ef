// The intra-op thread pool (xgrad/autograd/parallel.hpp) and the kernels that use it. Each threaded
// kernel is run on inputs large enough to be split and compared with a reference computed here
// (naive loops in double precision), so a wrong chunk boundary or a lost chunk shows up as a wrong
// value, not just as a difference between thread counts.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/parallel.hpp"
#include "xgrad/autograd/random.hpp"
#include "xgrad/autograd/tensor.hpp"

using namespace xg;
using Catch::Matchers::Contains;

namespace {

/// Sets the thread count for a scope.
struct ThreadCount {
  int saved;
  explicit ThreadCount(int n) : saved(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
};

std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.to(Dtype::Float64).contiguous();
  const double* p = d.data_ptr<double>();
  return std::vector<double>(p, p + d.numel());
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("set_num_threads / get_num_threads follow PyTorch and reject bad counts", "[parallel]") {
  ThreadCount guard(3);
  CHECK(get_num_threads() == 3);
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  CHECK_THROWS_AS(set_num_threads(0), Error);
  CHECK_THROWS_WITH(set_num_threads(-2), Contains("set_num_threads") && Contains("-2"));
  CHECK(get_num_threads() == 1);
  CHECK(get_thread_num() == 0);
  CHECK_FALSE(in_parallel_region());
}

TEST_CASE("parallel_for visits every index exactly once, for any range, grain and thread count", "[parallel]") {
  for (int threads : {1, 2, 3, 5}) {
    ThreadCount guard(threads);
    for (int64_t size : {0, 1, 7, 100, 1000, 4097}) {
      for (int64_t grain : {1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> visits(static_cast<size_t>(size) + 10);
        for (auto& v : visits) v = 0;
        std::atomic<int> calls{0}, in_region{0}, empty_pieces{0};
        // Catch's assertions are not thread-safe: workers count, the test thread checks.
        parallel_for(10, 10 + size, grain, [&](int64_t b, int64_t e) {
          empty_pieces += b < e ? 0 : 1;
          ++calls;
          in_region += in_parallel_region() ? 1 : 0;
          for (int64_t i = b; i < e; ++i) ++visits[static_cast<size_t>(i - 10)];
        });
        int wrong = 0;
        for (int64_t i = 0; i < size; ++i) wrong += visits[static_cast<size_t>(i)] != 1;
        CHECK(wrong == 0);
        CHECK(empty_pieces.load() == 0);
        // No more pieces than threads, none smaller than a grain unless the whole range is.
        CHECK(calls.load() <= std::max<int64_t>(1, threads));
        if (size > 0 && size / std::max<int64_t>(grain, 1) < 2) CHECK(calls.load() == 1);
        if (threads > 1 && size / grain >= 2) CHECK(calls.load() == std::min<int64_t>(threads, size / grain));
        // A range split over threads runs as a parallel region; a single piece runs as a plain call.
        CHECK(in_region.load() == (calls.load() > 1 ? calls.load() : 0));
      }
    }
  }
}

TEST_CASE("parallel_for splits work over the threads, runs nested loops serially, and rethrows", "[parallel]") {
  ThreadCount guard(2);
  std::atomic<int> pieces{0}, bad_thread_num{0}, nested_calls{0}, outside_region{0};
  std::atomic<bool> nested_in_region{true};
  parallel_for(0, 2, 1, [&](int64_t b, int64_t e) {
    outside_region += in_parallel_region() ? 0 : 1;
    ++pieces;
    if (get_thread_num() < 0 || get_thread_num() >= get_num_threads()) ++bad_thread_num;
    for (int64_t i = b; i < e; ++i) {
      parallel_for(0, 1000, 1, [&](int64_t, int64_t) {
        ++nested_calls;
        nested_in_region = nested_in_region && in_parallel_region();
      });
    }
  });
  CHECK_FALSE(in_parallel_region());
  CHECK(outside_region.load() == 0);
  CHECK(nested_calls.load() == 2);  // each nested loop ran as one piece on its own thread
  CHECK(nested_in_region.load());
  // Two pieces, each run once, on threads numbered 0 .. n-1 (which thread takes which is up to timing:
  // the caller takes any piece no worker has claimed yet).
  CHECK(pieces.load() == 2);
  CHECK(bad_thread_num.load() == 0);

  CHECK_THROWS_WITH(parallel_for(0, 1000, 1,
                                 [&](int64_t b, int64_t) {
                                   if (b == 0) throw std::runtime_error("chunk zero failed");
                                 }),
                    Contains("chunk zero failed"));
  CHECK_THROWS_WITH(parallel_for(0, 1000, 1,
                                 [&](int64_t b, int64_t) {
                                   if (b != 0) throw std::runtime_error("second chunk failed");
                                 }),
                    Contains("second chunk failed"));
  CHECK_THROWS_AS(parallel_for(0, 1000, 1, [&](int64_t, int64_t) { set_num_threads(1); }), Error);
  // The pool still works after the failures.
  std::atomic<int64_t> total{0};
  parallel_for(0, 100000, 1000, [&](int64_t b, int64_t e) { total += e - b; });
  CHECK(total.load() == 100000);
}

TEST_CASE("threaded matrix products (row, column and inner-dimension splits) match naive products", "[parallel][linalg]") {
  ThreadCount guard(2);
  manual_seed(11);
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
  };
  // Tall C (row blocks), wide C (column blocks), small C with a long inner dimension (k slices),
  // each with every transpose combination; sizes not multiples of the block size.
  const std::vector<Case> cases = {{301, 40, 97, false, false}, {301, 40, 97, true, false}, {301, 40, 97, false, true},
                                   {300, 40, 97, true, true},   {33, 517, 70, false, false}, {33, 517, 70, true, true},
                                   {9, 8, 20011, false, true},  {9, 8, 20011, true, false},  {9, 8, 20011, true, true}};
  for (const auto& c : cases) {
    CAPTURE(c.m, c.n, c.k, c.ta, c.tb);
    for (Dtype dtype : {Dtype::Float32, Dtype::Float64}) {
      Tensor a = randn(c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, dtype);
      Tensor b = randn(c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, dtype);
      Tensor product = gemm(a, b, c.ta, c.tb);
      const auto va = values_of(a), vb = values_of(b), vc = values_of(product);
      std::vector<double> expected(static_cast<size_t>(c.m * c.n));
      for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
          double s = 0;
          for (int64_t p = 0; p < c.k; ++p) s += va[c.ta ? p * c.m + i : i * c.k + p] * vb[c.tb ? j * c.k + p : p * c.n + j];
          expected[i * c.n + j] = s;
        }
      const double tolerance = dtype == Dtype::Float32 ? 2e-3 * std::sqrt(double(c.k)) : 1e-9 * std::sqrt(double(c.k));
      CHECK(max_abs_diff(vc, expected) < tolerance);
    }
  }
}

TEST_CASE("linear with bias is exact across thread counts and matches a naive product", "[parallel][linalg]") {
  manual_seed(12);
  Tensor x = randn({700, 64}, Dtype::Float64), w = randn({50, 64}, Dtype::Float64), bias = randn({50}, Dtype::Float64);
  std::vector<double> serial, threaded;
  {
    ThreadCount one(1);
    serial = values_of(linear(x, w, bias));
  }
  {
    ThreadCount two(2);
    threaded = values_of(linear(x, w, bias));
  }
  const auto vx = values_of(x), vw = values_of(w), vb = values_of(bias);
  std::vector<double> expected(700 * 50);
  for (int64_t r = 0; r < 700; ++r)
    for (int64_t o = 0; o < 50; ++o) {
      double s = vb[o];
      for (int64_t i = 0; i < 64; ++i) s += vx[r * 64 + i] * vw[o * 64 + i];
      expected[r * 50 + o] = s;
    }
  CHECK(max_abs_diff(threaded, expected) < 1e-10);
  CHECK(max_abs_diff(serial, expected) < 1e-10);
}

TEST_CASE("threaded broadcasting binary ops match the index formula", "[parallel][elementwise]") {
  ThreadCount guard(2);
  manual_seed(13);
  // [5, 7, 1, 1000] op [7, 13, 1] -> [5, 7, 13, 1000]: several coalesced outer dimensions, so every
  // piece has to start its counters in the middle of the index space.
  Tensor a = randn({5, 7, 1, 1000}, Dtype::Float64), b = randn({7, 13, 1}, Dtype::Float64);
  const auto va = values_of(a), vb = values_of(b);
  const auto sum = values_of(add(a, b)), product = values_of(mul(a, b));
  REQUIRE(sum.size() == size_t(5 * 7 * 13 * 1000));
  // Exact equality (an elementwise op is one rounding, like the expression here); counted rather than
  // subtracted, so the compiler cannot contract the check into an fma.
  int64_t wrong_sum = 0, wrong_product = 0;
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 7; ++j)
      for (int64_t k = 0; k < 13; ++k)
        for (int64_t l = 0; l < 1000; ++l) {
          const size_t o = static_cast<size_t>(((i * 7 + j) * 13 + k) * 1000 + l);
          const double x = va[(i * 7 + j) * 1000 + l], y = vb[j * 13 + k];
          wrong_sum += sum[o] != x + y;
          wrong_product += product[o] != x * y;
        }
  CHECK(wrong_sum == 0);
  CHECK(wrong_product == 0);
  // Same shapes, and a scalar-like broadcast, in float32.
  Tensor c = randn({300, 400}), d = randn({300, 400}), row = randn({400});
  const auto vc = values_of(c), vd = values_of(d), vrow = values_of(row);
  const auto diff = values_of(sub(c, d)), shifted = values_of(add(c, row));
  int64_t wrong = 0;
  for (size_t i = 0; i < vc.size(); ++i) {
    wrong += diff[i] != double(float(vc[i]) - float(vd[i]));
    wrong += shifted[i] != double(float(vc[i]) + float(vrow[i % 400]));
  }
  CHECK(wrong == 0);
}

TEST_CASE("threaded unary kernels match std:: functions element by element", "[parallel][elementwise]") {
  ThreadCount guard(2);
  manual_seed(14);
  Tensor x = randn({1000, 131}, Dtype::Float64);
  const auto vx = values_of(x), vt = values_of(tanh(x)), ve = values_of(exp(x)), vs = values_of(sigmoid(x)), vr = values_of(relu(x));
  double worst = 0;
  for (size_t i = 0; i < vx.size(); ++i) {
    worst = std::max(worst, std::abs(vt[i] - std::tanh(vx[i])));
    worst = std::max(worst, std::abs(ve[i] - std::exp(vx[i])) / std::exp(vx[i]));
    worst = std::max(worst, std::abs(vs[i] - 1.0 / (1.0 + std::exp(-vx[i]))));
    worst = std::max(worst, std::abs(vr[i] - std::max(vx[i], 0.0)));
  }
  CHECK(worst < 1e-14);
}

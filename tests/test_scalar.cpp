// xg::Scalar (c10::Scalar's kinds and conversions), xg::ArrayRef / IntArrayRef, dtype aliases.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;

namespace {
int64_t sum_of(IntArrayRef sizes) {
  int64_t total = 0;
  for (int64_t v : sizes) total += v;
  return total;
}
}  // namespace

TEST_CASE("Scalar keeps its kind and converts like c10::Scalar", "[scalar]") {
  Scalar f = 2.5, i = 7, b = true, u = uint8_t{200}, def;
  CHECK(f.isFloatingPoint());
  CHECK(!f.isIntegral(true));
  CHECK(i.isIntegral(false));
  CHECK(!b.isIntegral(false));
  CHECK(b.isIntegral(true));
  CHECK(b.isBoolean());
  CHECK(u.toLong() == 200);
  CHECK(def.toLong() == 0);
  CHECK(f.type() == kFloat64);
  CHECK(i.type() == kInt64);
  CHECK(f.to<double>() == 2.5);
  CHECK(f.toLong() == 2);  // truncation toward zero, as a C++ cast
  CHECK(Scalar(-2.5).toLong() == -2);
  CHECK(i.toDouble() == 7.0);
  CHECK(i.to<int>() == 7);
  CHECK(b.toDouble() == 1.0);
  CHECK(Scalar(0.0).toBool() == false);
  CHECK((-i).toLong() == -7);
  CHECK((-b).isIntegral(false));
  CHECK(fmt::format("{} {} {}", f, i, b) == "2.5 7 true");
  CHECK_THROWS_WITH(Scalar(1e300).toLong(), Contains("not representable as int64"));
  CHECK_THROWS_WITH(Scalar(std::nan("")).toLong(), Contains("not representable"));
  CHECK_THROWS_WITH(Scalar(int64_t{1} << 40).toInt(), Contains("out of int's range"));
  CHECK_THROWS_WITH(Scalar(uint64_t{1} << 63), Contains("out of int64's range"));
  CHECK_THROWS_WITH(-Scalar(std::numeric_limits<int64_t>::min()), Contains("overflows"));
}

TEST_CASE("IntArrayRef takes braces, a vector, an array or one value", "[scalar][arrayref]") {
  CHECK(sum_of({1, 2, 3}) == 6);
  std::vector<int64_t> v = {4, 5};
  CHECK(sum_of(v) == 9);
  std::array<int64_t, 3> a = {1, 1, 1};
  CHECK(sum_of(a) == 3);
  CHECK(sum_of(int64_t{8}) == 8);
  CHECK(sum_of({}) == 0);
  IntArrayRef r(v);
  CHECK(r.size() == 2);
  CHECK(r.back() == 5);
  CHECK(r.vec() == v);
  CHECK(r.slice(1).vec() == std::vector<int64_t>{5});
  CHECK(r == IntArrayRef(v));
  CHECK_THROWS_WITH(r.at(2), Contains("index 2") && Contains("2 elements"));
  CHECK_THROWS_WITH(r.slice(1, 5), Contains("out of range"));
  CHECK_THROWS_AS(IntArrayRef().back(), Error);
}

TEST_CASE("dtype aliases name the same dtypes", "[scalar][dtype]") {
  CHECK(kF32 == kFloat32);
  CHECK(kFloat == kFloat32);
  CHECK(kF64 == kDouble);
  CHECK(kI64 == kLong);
  CHECK(zeros({1}, kF64).dtype() == kFloat64);
}

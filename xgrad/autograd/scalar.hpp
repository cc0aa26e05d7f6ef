#pragma once
/// xg::Scalar: one number and its kind -- floating, integral or boolean -- as c10::Scalar. The kind is what
/// PyTorch's type promotion looks at (an int64 tensor times a floating scalar is floating; times an
/// integral scalar stays integral), so a Scalar keeps it rather than turning everything into a double.
#include <cstdint>
#include <limits>
#include <type_traits>

#include "xgrad/autograd/dtype.hpp"
#include "xgrad/autograd/error.hpp"

namespace xg {

class Scalar {
 public:
  Scalar() : Scalar(int64_t{0}) {}
  /* implicit */ Scalar(double v) : kind_(Kind::Floating), d_(v) {}
  /* implicit */ Scalar(float v) : kind_(Kind::Floating), d_(v) {}
  /* implicit */ Scalar(bool v) : kind_(Kind::Boolean), i_(v ? 1 : 0) {}
  /// Any integer type but bool.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  /* implicit */ Scalar(T v) : kind_(Kind::Integral), i_(checked_integer(v)) {}

  bool isFloatingPoint() const { return kind_ == Kind::Floating; }
  bool isIntegral(bool includeBool) const { return kind_ == Kind::Integral || (includeBool && kind_ == Kind::Boolean); }
  bool isBoolean() const { return kind_ == Kind::Boolean; }
  /// The dtype PyTorch gives a tensor made from this number: float64 here for a floating one (xgrad keeps
  /// the double), int64 for an integral or boolean one (xgrad has no bool dtype yet).
  Dtype type() const { return kind_ == Kind::Floating ? kFloat64 : kInt64; }

  double toDouble() const { return kind_ == Kind::Floating ? d_ : static_cast<double>(i_); }
  float toFloat() const { return static_cast<float>(toDouble()); }
  /// The integer value; xg::Error for a floating value that is not finite or outside int64's range
  /// (converting it would be undefined behaviour). A finite floating value truncates toward zero, as in C++.
  int64_t toLong() const {
    if (kind_ != Kind::Floating) return i_;
    XG_CHECK(d_ >= -9223372036854775808.0 && d_ < 9223372036854775808.0, "Scalar::toLong: {} is not representable as int64", d_);
    return static_cast<int64_t>(d_);
  }
  int toInt() const {
    const int64_t v = toLong();
    XG_CHECK(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max(), "Scalar::toInt: {} is out of int's range", v);
    return static_cast<int>(v);
  }
  bool toBool() const { return kind_ == Kind::Floating ? d_ != 0.0 : i_ != 0; }
  /// to<double>(), to<float>(), to<int64_t>(), to<int>(), to<bool>().
  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, double>) return toDouble();
    else if constexpr (std::is_same_v<T, float>) return toFloat();
    else if constexpr (std::is_same_v<T, bool>) return toBool();
    else if constexpr (std::is_same_v<T, int>) return toInt();
    else {
      static_assert(std::is_same_v<T, int64_t>, "Scalar::to<T>: T is double, float, int64_t, int or bool");
      return toLong();
    }
  }
  /// The same number with the opposite sign (and kind; a boolean becomes integral, as in PyTorch).
  Scalar operator-() const {
    if (kind_ == Kind::Floating) return Scalar(-d_);
    XG_CHECK(i_ != std::numeric_limits<int64_t>::min(), "Scalar: negating {} overflows int64", i_);
    return Scalar(-i_);
  }

 private:
  enum class Kind : uint8_t { Floating, Integral, Boolean };
  template <class T>
  static int64_t checked_integer(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t))
      XG_CHECK(v <= static_cast<T>(std::numeric_limits<int64_t>::max()), "Scalar: {} is out of int64's range", v);
    return static_cast<int64_t>(v);
  }
  Kind kind_;
  double d_ = 0;
  int64_t i_ = 0;
};

}  // namespace xg

template <>
struct fmt::formatter<xg::Scalar> : fmt::formatter<double> {
  template <class Context>
  auto format(const xg::Scalar& s, Context& ctx) const {
    if (s.isBoolean()) return fmt::format_to(ctx.out(), "{}", s.toBool());
    if (s.isIntegral(false)) return fmt::format_to(ctx.out(), "{}", s.toLong());
    return fmt::formatter<double>::format(s.toDouble(), ctx);
  }
};

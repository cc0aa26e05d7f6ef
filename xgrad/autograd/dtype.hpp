#pragma once
/// Element types: float32 (default) and float64 are differentiable; int64 holds indices and labels.
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

namespace xg {

enum class Dtype : uint8_t { Float32, Float64, Int64 };

inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;
inline constexpr Dtype kDouble = Dtype::Float64;
inline constexpr Dtype kInt64 = Dtype::Int64;
inline constexpr Dtype kLong = Dtype::Int64;
// c10's short spellings.
inline constexpr Dtype kF32 = Dtype::Float32;
inline constexpr Dtype kF64 = Dtype::Float64;
inline constexpr Dtype kI64 = Dtype::Int64;

/// "float32", "float64" or "int64".
constexpr std::string_view dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::Float32: return "float32";
    case Dtype::Float64: return "float64";
    case Dtype::Int64: return "int64";
  }
  return "unknown";
}

constexpr bool is_floating(Dtype dtype) { return dtype != Dtype::Int64; }

/// The Dtype of a C++ element type: dtype_of<float>() == kFloat32.
template <class T>
constexpr Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return Dtype::Float32;
  else if constexpr (std::is_same_v<T, double>) return Dtype::Float64;
  else {
    static_assert(std::is_same_v<T, int64_t>, "xgrad supports float, double and int64_t elements");
    return Dtype::Int64;
  }
}

}  // namespace xg

template <>
struct fmt::formatter<xg::Dtype> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(xg::Dtype dtype, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(xg::dtype_name(dtype), ctx);
  }
};

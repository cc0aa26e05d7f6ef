#pragma once
/// Checked integer arithmetic for sizes, strides and element counts. Every product or sum of sizes a
/// user can choose goes through these: an overflow is an xg::Error naming the op, never a wrapped count
/// (a buffer too small for the shape, then out-of-bounds access) or signed-overflow undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "xgrad/autograd/error.hpp"

namespace xg::detail {

/// a * b, or xg::Error "<op>: <what> overflows int64 (a * b)".
inline int64_t checked_mul(const char* op, int64_t a, int64_t b, const char* what = "size") {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) XG_ERROR("{}: {} overflows int64 ({} * {})", op, what, a, b);
  return product;
}

/// a + b, or xg::Error "<op>: <what> overflows int64 (a + b)".
inline int64_t checked_add(const char* op, int64_t a, int64_t b, const char* what = "size") {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) XG_ERROR("{}: {} overflows int64 ({} + {})", op, what, a, b);
  return sum;
}

/// The element count of a shape a user asked for. Every size must be >= 0; the product of the sizes
/// with a 0 counted as 1 must fit in int64 (so that the row-major strides of an empty tensor fit too,
/// as PyTorch's "Stride calculation overflowed" check requires); the element count times `itemsize`
/// bytes must fit in ptrdiff_t. Otherwise xg::Error naming the op and the shape.
inline int64_t checked_numel(const char* op, const std::vector<int64_t>& shape, std::size_t itemsize = 1) {
  int64_t numel = 1, extent = 1;  // extent: the product with zeros counted as 1
  for (int64_t size : shape) {
    XG_CHECK(size >= 0, "{}: negative dimension {} in shape [{}]", op, size, fmt::join(shape, ", "));
    if (size == 0) numel = 0;
    else if (__builtin_mul_overflow(extent, size, &extent))
      XG_ERROR("{}: shape [{}] is too large: the product of its sizes overflows int64", op, fmt::join(shape, ", "));
  }
  if (numel != 0) numel = extent;
  const auto max_elements = std::numeric_limits<std::ptrdiff_t>::max() / static_cast<int64_t>(itemsize == 0 ? 1 : itemsize);
  XG_CHECK(numel <= max_elements, "{}: shape [{}] is too large: {} elements of {} bytes exceed the largest possible buffer", op,
           fmt::join(shape, ", "), numel, itemsize);
  return numel;
}

}  // namespace xg::detail

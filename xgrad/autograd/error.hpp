#pragma once
/// The library's single error type and the check macro every op uses on user input.
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace xg {

/// Thrown for every kind of bad input; the message names the op, what was expected and what was given.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xg

namespace xg::detail {
/// XG_CHECK(cond) without a message: libtorch's TORCH_CHECK(cond) wording.
inline std::string check_message(const char* condition) {
  return fmt::format("Expected {} to be true, but got false", condition);
}
template <class... Args>
std::string check_message(const char* /*condition*/, fmt::format_string<Args...> format, Args&&... args) {
  return fmt::format(format, std::forward<Args>(args)...);
}
}  // namespace xg::detail

/// XG_CHECK(cond, "op: expected ..., got {}", value): throws xg::Error with the formatted message.
/// XG_CHECK(cond) alone (as libtorch's TORCH_CHECK) says "Expected <cond> to be true, but got false";
/// the library's own checks always name the op, what was expected and what was given.
#define XG_CHECK(cond, ...)                                                                          \
  do {                                                                                               \
    if (!(cond)) throw ::xg::Error(::xg::detail::check_message(#cond __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)

/// Unconditionally throws xg::Error with the formatted message.
#define XG_ERROR(...) throw ::xg::Error(fmt::format(__VA_ARGS__))

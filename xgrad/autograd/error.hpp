#pragma once
/// The library's single error type and the check macro every op uses on user input.
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace xg {

/// Thrown for every kind of bad input; the message names the op, what was expected and what was given.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xg

/// XG_CHECK(cond, "op: expected ..., got {}", value): throws xg::Error with the formatted message.
#define XG_CHECK(cond, ...)                                 \
  do {                                                      \
    if (!(cond)) throw ::xg::Error(fmt::format(__VA_ARGS__)); \
  } while (0)

/// Unconditionally throws xg::Error with the formatted message.
#define XG_ERROR(...) throw ::xg::Error(fmt::format(__VA_ARGS__))

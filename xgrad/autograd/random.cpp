#include "xgrad/autograd/random.hpp"

#include <sstream>

#include "xgrad/autograd/error.hpp"

namespace xg::random {
namespace {
std::mutex generator_mutex;
std::mt19937_64 global_generator(5489u);
}  // namespace

std::mt19937_64& generator() { return global_generator; }
std::unique_lock<std::mutex> lock_generator() { return std::unique_lock<std::mutex>(generator_mutex); }

void seed(uint64_t value) {
  auto lock = lock_generator();
  global_generator.seed(value);
}

std::string get_state() {
  auto lock = lock_generator();
  std::ostringstream out;
  out << global_generator;
  return out.str();
}

void set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  XG_CHECK(!in.fail(), "random::set_state: the state string is not a valid generator state");
  auto lock = lock_generator();
  global_generator = restored;
}

}  // namespace xg::random

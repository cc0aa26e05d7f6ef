#include "xgrad/data/batch_generator.hpp"

#include "xgrad/autograd/random.hpp"

namespace xg::data {

namespace {
thread_local std::mt19937_64* current_batch_generator = nullptr;
}

std::mt19937_64& batch_generator() {
  if (current_batch_generator) return *current_batch_generator;
  thread_local std::mt19937_64 fallback = [] {
    auto lock = random::lock_generator();
    return std::mt19937_64(random::generator()());
  }();
  return fallback;
}

detail::BatchGeneratorScope::BatchGeneratorScope(uint64_t seed) : generator_(seed), previous_(current_batch_generator) {
  current_batch_generator = &generator_;
}

detail::BatchGeneratorScope::~BatchGeneratorScope() { current_batch_generator = previous_; }

}  // namespace xg::data

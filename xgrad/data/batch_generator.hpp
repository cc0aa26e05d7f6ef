#pragma once
/// The random generator that data transforms draw from while a batch is being loaded.
#include <cstdint>
#include <random>

namespace xg::data {

/// While a loader made by make_data_loader prepares a batch (on a worker or on the calling thread), a
/// generator seeded for that batch from the loader's own generator (itself seeded by
/// DataLoaderOptions::seed or from xg's global generator), so random transforms give the same batches
/// for any number of workers and any completion order. Outside a loader: a per-thread generator
/// seeded once from xg's global generator.
std::mt19937_64& batch_generator();

namespace detail {
/// Makes batch_generator() a generator seeded with `seed` on this thread for the scope's lifetime.
class BatchGeneratorScope {
 public:
  explicit BatchGeneratorScope(uint64_t seed);
  ~BatchGeneratorScope();
  BatchGeneratorScope(const BatchGeneratorScope&) = delete;
  BatchGeneratorScope& operator=(const BatchGeneratorScope&) = delete;

 private:
  std::mt19937_64 generator_;
  std::mt19937_64* previous_;
};
}  // namespace detail

}  // namespace xg::data

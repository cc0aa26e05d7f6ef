#pragma once
/// DataLoaderOptions: the options of both loaders, libtorch's (batch_size, workers, max_jobs, timeout,
/// enforce_ordering, drop_last, which the classic xg::data::DataLoader takes too) and the classic
/// loader's own (shuffle, prefetch, sampler: with make_data_loader the sampler is a template argument). Each option has a setter, options.batch_size(64), and a getter, options.batch_size().
/// Implicit from a batch size, so make_data_loader(dataset, 64) reads as in libtorch.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace xg::data {

class Sampler;

struct DataLoaderOptions {
  int64_t batch_size_ = 1;
  bool drop_last_ = false;
  // How batches are made (both loaders)
  size_t workers_ = 0;
  std::optional<size_t> max_jobs_;
  std::optional<std::chrono::milliseconds> timeout_;
  bool enforce_ordering_ = true;
  // Both loaders': the seed of the loader's generator (transforms' randomness; the classic loader's shuffle).
  std::optional<uint64_t> seed_;
  // The classic DataLoader's
  bool shuffle_ = false;
  bool prefetch_ = true;
  std::shared_ptr<Sampler> sampler_;

  DataLoaderOptions() = default;
  /* implicit */ DataLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}

  DataLoaderOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  int64_t batch_size() const { return batch_size_; }
  /// Leave out the last batch when it is smaller than batch_size.
  DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  bool drop_last() const { return drop_last_; }
  /// Threads preparing batches in parallel (0: make_data_loader makes each batch on the calling thread when
  /// asked; the classic DataLoader prefetches on one background thread unless prefetch(false)).
  DataLoaderOptions& workers(size_t v) { workers_ = v; return *this; }
  size_t workers() const { return workers_; }
  /// With workers: batches in preparation or waiting at most (default 2 * workers).
  DataLoaderOptions& max_jobs(size_t v) { max_jobs_ = v; return *this; }
  const std::optional<size_t>& max_jobs() const { return max_jobs_; }
  /// How long to wait for a worker's batch before xg::Error (default: forever).
  DataLoaderOptions& timeout(std::chrono::milliseconds v) { timeout_ = v; return *this; }
  const std::optional<std::chrono::milliseconds>& timeout() const { return timeout_; }
  /// Hand out batches in the sampler's order (default); false: as workers finish them.
  DataLoaderOptions& enforce_ordering(bool v) { enforce_ordering_ = v; return *this; }
  bool enforce_ordering() const { return enforce_ordering_; }
  /// Seed of the loader's generator; without one it is drawn from xg's global generator (so
  /// xg::manual_seed makes the run reproducible).
  DataLoaderOptions& seed(uint64_t v) { seed_ = v; return *this; }
  const std::optional<uint64_t>& seed() const { return seed_; }
  /// DataLoader: reshuffle the examples every epoch (make_data_loader: choose samplers::RandomSampler).
  DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  bool shuffle() const { return shuffle_; }
  /// DataLoader without workers: prepare the next batch on a background thread (default on).
  DataLoaderOptions& prefetch(bool v) { prefetch_ = v; return *this; }
  bool prefetch() const { return prefetch_; }
  /// DataLoader: take each epoch's indices from a sampler (e.g. DistributedSampler) instead of 0..N-1
  /// or a shuffle; excludes shuffle (the sampler shuffles), as in PyTorch.
  DataLoaderOptions& sampler(std::shared_ptr<Sampler> v) { sampler_ = std::move(v); return *this; }
  const std::shared_ptr<Sampler>& sampler() const { return sampler_; }
};

}  // namespace xg::data

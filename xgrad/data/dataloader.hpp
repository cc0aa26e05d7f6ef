#pragma once
/// DataLoader: batches of a dataset, optionally shuffled with its own seeded generator, with the
/// next batch prepared on a background thread while the current one trains. Randomness (order and
/// transforms) comes from the loader's generator, drawn on the calling thread, so a run is
/// reproducible with or without prefetching.
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "xgrad/data/dataset.hpp"

namespace xg::data {

/// A batch transform: (data [N, ...], generator) -> transformed data.
using BatchTransform = std::function<Tensor(const Tensor&, std::mt19937_64&)>;

/// Chooses the dataset indices an epoch visits, in order (torch.utils.data.Sampler); the DataLoader
/// asks for them each time an epoch begins. DistributedSampler gives each process its shard.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// The indices of the epoch that is beginning (each in [0, dataset size)).
  virtual std::vector<int64_t> indices() = 0;
  /// How many indices each epoch has.
  virtual int64_t size() const = 0;
};

struct DataLoaderOptions {
  int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  bool prefetch_ = true;
  std::optional<uint64_t> seed_;
  std::shared_ptr<Sampler> sampler_;
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}
  DataLoaderOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  /// Prepare the next batch on a background thread (default on).
  DataLoaderOptions& prefetch(bool v) { prefetch_ = v; return *this; }
  /// Seed of the loader's generator; without one it is drawn from xg's global generator (so
  /// xg::manual_seed makes the run reproducible).
  DataLoaderOptions& seed(uint64_t v) { seed_ = v; return *this; }
  /// Take each epoch's indices from a sampler (e.g. DistributedSampler) instead of 0..N-1 or a
  /// shuffle; excludes shuffle (the sampler shuffles), as in PyTorch.
  DataLoaderOptions& sampler(std::shared_ptr<Sampler> v) { sampler_ = std::move(v); return *this; }
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {}, BatchTransform transform = {});

  class Iterator;
  /// Starts an epoch (a new shuffle when shuffling).
  Iterator begin();
  Iterator end();
  /// Batches per epoch.
  int64_t size() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  /// The generator's state, to checkpoint and resume the exact sequence of epochs.
  std::string generator_state() const;
  void set_generator_state(const std::string& state);

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using pointer = const Example*;
    using reference = const Example&;
    const Example& operator*() const { return current_; }
    const Example* operator->() const { return &current_; }
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return position_ == other.position_; }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    friend class DataLoader;
    struct Plan {
      std::vector<int64_t> order;
      std::vector<uint64_t> transform_seeds;  // one per batch, drawn on the caller's thread
    };
    Iterator(const DataLoader* loader, std::shared_ptr<Plan> plan, int64_t position);
    void load_current();
    std::future<Example> launch(int64_t batch) const;
    const DataLoader* loader_ = nullptr;
    std::shared_ptr<Plan> plan_;
    int64_t position_ = 0;
    Example current_;
    std::shared_ptr<std::future<Example>> next_;
  };

 private:
  Example make_batch(const std::vector<int64_t>& order, int64_t batch, uint64_t transform_seed) const;
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  BatchTransform transform_;
  std::mt19937_64 generator_;
};

}  // namespace xg::data

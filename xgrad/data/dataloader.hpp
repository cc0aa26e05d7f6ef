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

#include "xgrad/data/data_loader_options.hpp"
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
    using value_type = Example<>;
    using difference_type = std::ptrdiff_t;
    using pointer = const Example<>*;
    using reference = const Example<>&;
    const Example<>& operator*() const { return current_; }
    const Example<>* operator->() const { return &current_; }
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
    std::future<Example<>> launch(int64_t batch) const;
    const DataLoader* loader_ = nullptr;
    std::shared_ptr<Plan> plan_;
    int64_t position_ = 0;
    Example<> current_;
    std::shared_ptr<std::future<Example<>>> next_;
  };

 private:
  Example<> make_batch(const std::vector<int64_t>& order, int64_t batch, uint64_t transform_seed) const;
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  BatchTransform transform_;
  std::mt19937_64 generator_;
};

}  // namespace xg::data

#pragma once
/// DataLoader: PyTorch's DataLoader(dataset, batch_size, shuffle, sampler, drop_last, num_workers) spelled
/// over make_data_loader's machinery (StatelessDataLoader): batches of a classic xg::data::Dataset,
/// optionally shuffled with the loader's own seeded generator, made on the calling thread, on one
/// background thread one batch ahead (prefetch, the default) or on `workers` threads. All randomness (the
/// order and each batch's transform seed) is drawn on the calling thread when an epoch begins, so a run is
/// the same with or without prefetching and for any number of workers, and generator_state() at an epoch
/// boundary resumes it exactly. With workers(n > 1) the dataset's get_batch/get and the transform run on
/// several threads at once (one shared dataset object), so they must be safe to call concurrently (the
/// ready-made datasets and transforms are); a dataset or transform error reaches the loop as xg::Error.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "xgrad/data/data_loader_options.hpp"
#include "xgrad/data/dataset.hpp"
#include "xgrad/data/datasets.hpp"
#include "xgrad/data/samplers.hpp"
#include "xgrad/data/stateless_data_loader.hpp"

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

namespace detail {

/// One batch of a DataLoader epoch: the dataset indices and the seed of its transform's generator.
struct PlannedBatch {
  std::vector<int64_t> indices;
  uint64_t transform_seed = 0;
  size_t size() const noexcept { return indices.size(); }
};

/// The DataLoader's sampler: when an epoch begins it draws the whole epoch from the loader's generator
/// (the sampler's indices or 0..N-1, shuffled on request, then one transform seed per batch) and hands
/// it out batch by batch.
class EpochPlanSampler : public samplers::Sampler<PlannedBatch> {
 public:
  EpochPlanSampler(std::shared_ptr<const Dataset> dataset, const DataLoaderOptions& options, bool draws_transform_seeds);
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<PlannedBatch> next(size_t batch_size) override;
  /// Batches per epoch.
  int64_t batches() const;
  std::mt19937_64& generator() noexcept { return generator_; }
  const std::mt19937_64& generator() const noexcept { return generator_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<data::Sampler> sampler_;  // the classic sampler of DataLoaderOptions
  int64_t batch_size_;
  bool shuffle_, drop_last_, draws_transform_seeds_;
  std::mt19937_64 generator_;
  std::vector<int64_t> order_;
  std::vector<uint64_t> transform_seeds_;
  size_t position_ = 0, batch_ = 0;
};

/// The DataLoader's dataset: a classic Dataset's get_batch followed by the batch transform, whose
/// generator (data::batch_generator() while it runs) is seeded with the batch's planned seed.
class PlannedBatchDataset : public datasets::BatchDataset<PlannedBatchDataset, Example<>, PlannedBatch> {
 public:
  PlannedBatchDataset(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const BatchTransform> transform)
      : dataset_(std::move(dataset)), transform_(std::move(transform)) {}
  Example<> get_batch(PlannedBatch request) override;
  std::optional<size_t> size() const override { return static_cast<size_t>(dataset_->size()); }

 private:
  std::shared_ptr<const Dataset> dataset_;
  std::shared_ptr<const BatchTransform> transform_;
};

}  // namespace detail

class DataLoader {
  using Loader = StatelessDataLoader<detail::PlannedBatchDataset, detail::EpochPlanSampler>;

 public:
  /// options: batch_size, shuffle, sampler, drop_last, seed, and how batches are made: workers(n) threads
  /// (max_jobs, timeout, enforce_ordering as in make_data_loader), else prefetch (one background thread,
  /// one batch ahead; default on), else on the calling thread.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {}, BatchTransform transform = {});

  using Iterator = Loader::Iterator;
  /// Starts an epoch (a new shuffle when shuffling); the previous epoch's iteration ends.
  Iterator begin();
  Iterator end();
  /// Batches per epoch.
  int64_t size() const;
  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  /// The generator's state, to checkpoint at an epoch boundary and resume the exact sequence of epochs.
  std::string generator_state() const;
  void set_generator_state(const std::string& state);

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  std::unique_ptr<Loader> loader_;
};

}  // namespace xg::data

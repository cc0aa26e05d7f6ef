#include "xgrad/data/dataloader.hpp"

#include <numeric>

#include "xgrad/autograd/random.hpp"
#include "xgrad/data/batch_generator.hpp"

namespace xg::data {

namespace detail {

EpochPlanSampler::EpochPlanSampler(std::shared_ptr<const Dataset> dataset, const DataLoaderOptions& options, bool draws_transform_seeds)
    : dataset_(std::move(dataset)),
      sampler_(options.sampler_),
      batch_size_(options.batch_size_),
      shuffle_(options.shuffle_),
      drop_last_(options.drop_last_),
      draws_transform_seeds_(draws_transform_seeds) {
  if (options.seed_) {
    generator_.seed(*options.seed_);
  } else {
    auto lock = random::lock_generator();
    generator_.seed(random::generator()());
  }
}

int64_t EpochPlanSampler::batches() const {
  const int64_t n = sampler_ ? sampler_->size() : dataset_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void EpochPlanSampler::reset(std::optional<size_t> /*new_size: the dataset's own size() is read*/) {
  if (sampler_) {
    order_ = sampler_->indices();
    XG_CHECK(static_cast<int64_t>(order_.size()) == sampler_->size(), "DataLoader: the sampler gave {} indices but its size() is {}",
             order_.size(), sampler_->size());
    for (int64_t index : order_)
      XG_CHECK(index >= 0 && index < dataset_->size(), "DataLoader: the sampler gave index {} for a dataset of size {}", index,
               dataset_->size());
  } else {
    order_.resize(static_cast<size_t>(dataset_->size()));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
  if (shuffle_) {
    for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i)
      std::swap(order_[i], order_[generator_() % static_cast<uint64_t>(i + 1)]);
  }
  // Drawn now, for every batch of the epoch, so the stream of draws does not depend on how far the
  // epoch is iterated or on which thread makes a batch.
  transform_seeds_.assign(static_cast<size_t>(batches()), 0);
  if (draws_transform_seeds_)
    for (uint64_t& seed : transform_seeds_) seed = generator_();
  position_ = 0;
  batch_ = 0;
}

std::optional<PlannedBatch> EpochPlanSampler::next(size_t batch_size) {
  if (position_ >= order_.size()) return std::nullopt;
  const size_t end = std::min(order_.size(), position_ + batch_size);
  PlannedBatch batch;
  batch.indices.assign(order_.begin() + static_cast<std::ptrdiff_t>(position_), order_.begin() + static_cast<std::ptrdiff_t>(end));
  batch.transform_seed = batch_ < transform_seeds_.size() ? transform_seeds_[batch_] : 0;  // a dropped last batch has none
  position_ = end;
  ++batch_;
  return batch;
}

Example<> PlannedBatchDataset::get_batch(PlannedBatch request) {
  Example<> example = dataset_->get_batch(request.indices);
  if (transform_ && *transform_) {
    BatchGeneratorScope generator(request.transform_seed);
    example.data = (*transform_)(example.data, batch_generator());
  }
  return example;
}

}  // namespace detail

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options, BatchTransform transform)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  XG_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  XG_CHECK(options_.batch_size_ > 0, "DataLoader: batch_size must be positive, got {}", options_.batch_size_);
  XG_CHECK(!(options_.sampler_ && options_.shuffle_),
           "DataLoader: sampler and shuffle=true are mutually exclusive (let the sampler shuffle)");
  XG_CHECK(!options_.max_jobs_ || options_.workers_ > 0,
           "DataLoader: max_jobs needs workers (without workers, prefetch makes one batch ahead)");
  XG_CHECK(!options_.max_jobs_ || *options_.max_jobs_ > 0, "DataLoader: max_jobs must be positive, got 0");
  XG_CHECK(!options_.timeout_ || options_.timeout_->count() > 0, "DataLoader: timeout must be positive, got {} ms",
           options_.timeout_ ? options_.timeout_->count() : 0);
  XG_CHECK(options_.workers_ > 0 || options_.prefetch_ || (!options_.timeout_ && options_.enforce_ordering_),
           "DataLoader: timeout and enforce_ordering(false) apply to background threads; with prefetch(false) and no workers "
           "each batch is made on the calling thread");
  const bool has_transform = static_cast<bool>(transform);
  // How batches are made is make_data_loader's business; the order and the seeds are the sampler's.
  DataLoaderOptions loading = DataLoaderOptions(options_.batch_size_).drop_last(options_.drop_last_).seed(0);
  if (options_.workers_ > 0) {
    loading.workers(options_.workers_).enforce_ordering(options_.enforce_ordering_);
    if (options_.max_jobs_) loading.max_jobs(*options_.max_jobs_);
  } else if (options_.prefetch_) {
    loading.workers(1).max_jobs(1);
  }
  if (options_.timeout_) loading.timeout(*options_.timeout_);
  loader_ = std::make_unique<Loader>(
      detail::PlannedBatchDataset(dataset_, has_transform ? std::make_shared<const BatchTransform>(std::move(transform)) : nullptr),
      detail::EpochPlanSampler(dataset_, options_, has_transform), std::move(loading));
}

int64_t DataLoader::size() const { return loader_->sampler().batches(); }

std::string DataLoader::generator_state() const { return detail::generator_to_string(loader_->sampler().generator()); }

void DataLoader::set_generator_state(const std::string& state) {
  loader_->sampler().generator() = detail::generator_from_string(state, "DataLoader");
}

DataLoader::Iterator DataLoader::begin() { return loader_->begin(); }

DataLoader::Iterator DataLoader::end() { return loader_->end(); }

}  // namespace xg::data

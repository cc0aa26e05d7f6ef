#include "xgrad/data/distributed_sampler.hpp"

#include <numeric>
#include <random>

#include "xgrad/autograd/error.hpp"

namespace xg::data {

DistributedSampler::DistributedSampler(int64_t dataset_size, DistributedSamplerOptions options)
    : dataset_size_(dataset_size), options_(options) {
  XG_CHECK(dataset_size_ >= 0, "DistributedSampler: expected a dataset size >= 0, got {}", dataset_size_);
  XG_CHECK(options_.num_replicas_ > 0, "DistributedSampler: expected num_replicas > 0, got {}", options_.num_replicas_);
  XG_CHECK(options_.rank_ >= 0 && options_.rank_ < options_.num_replicas_,
           "DistributedSampler: expected a rank in [0, {}), got {}", options_.num_replicas_, options_.rank_);
  const int64_t replicas = options_.num_replicas_;
  // PyTorch: drop_last keeps floor(N / replicas) per rank (when N is not a multiple), otherwise
  // ceil(N / replicas), the shortfall filled with repeated indices.
  num_samples_ = options_.drop_last_ ? dataset_size_ / replicas : (dataset_size_ + replicas - 1) / replicas;
}

void DistributedSampler::set_epoch(int64_t epoch) {
  XG_CHECK(epoch >= 0, "DistributedSampler::set_epoch: expected an epoch >= 0, got {}", epoch);
  epoch_ = epoch;
}

std::vector<int64_t> DistributedSampler::indices() {
  std::vector<int64_t> order(static_cast<size_t>(dataset_size_));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle_) {
    // The same generator state on every rank: one permutation of the whole dataset per epoch.
    std::mt19937_64 generator(options_.seed_ + static_cast<uint64_t>(epoch_));
    for (int64_t i = dataset_size_ - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[generator() % static_cast<uint64_t>(i + 1)]);
  }
  const int64_t total = total_size();
  // Padding repeats the permutation from its start (as often as needed when N < replicas).
  for (int64_t i = dataset_size_; i < total; ++i) order.push_back(order[static_cast<size_t>(i % dataset_size_)]);
  std::vector<int64_t> shard;
  shard.reserve(static_cast<size_t>(num_samples_));
  for (int64_t i = options_.rank_; i < total; i += options_.num_replicas_) shard.push_back(order[static_cast<size_t>(i)]);
  return shard;
}

}  // namespace xg::data

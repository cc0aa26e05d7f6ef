#include "xgrad/data/samplers.hpp"

#include <algorithm>
#include <random>

#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg::data::samplers {

namespace {
/// The request of min(batch_size, end - index) positions from `index` on, each mapped to its dataset
/// index by index_at; nullopt at the end.
template <class IndexAt>
std::optional<std::vector<size_t>> take(const char* sampler, size_t& index, size_t end, size_t batch_size, IndexAt index_at) {
  XG_CHECK(batch_size > 0, "{}::next: batch_size must be positive, got 0", sampler);
  if (index >= end) return std::nullopt;
  std::vector<size_t> batch(std::min(batch_size, end - index));
  for (size_t i = 0; i < batch.size(); ++i) batch[i] = index_at(index + i);
  index += batch.size();
  return batch;
}

std::vector<size_t> random_permutation(size_t n) {
  Tensor perm = randperm(static_cast<int64_t>(n));  // xg's global generator, as torch::randperm
  const int64_t* p = perm.contiguous_data<int64_t>();
  return std::vector<size_t>(p, p + n);
}
}  // namespace

void detail::check_distributed(const char* sampler, size_t num_replicas, size_t rank) {
  XG_CHECK(num_replicas >= 1, "{}: num_replicas must be at least 1, got 0", sampler);
  XG_CHECK(rank < num_replicas, "{}: rank must be in [0, num_replicas = {}), got {}", sampler, num_replicas, rank);
}

RandomSampler::RandomSampler(int64_t size, Dtype index_dtype) {
  XG_CHECK(size >= 0, "RandomSampler: size must be non-negative, got {}", size);
  XG_CHECK(!is_floating(index_dtype), "RandomSampler: index_dtype must be an integer type, got {}", index_dtype);
  indices_ = random_permutation(static_cast<size_t>(size));
}

void RandomSampler::reset(std::optional<size_t> new_size) {
  indices_ = random_permutation(new_size.value_or(indices_.size()));
  index_ = 0;
}

std::optional<std::vector<size_t>> RandomSampler::next(size_t batch_size) {
  return take("RandomSampler", index_, indices_.size(), batch_size, [&](size_t i) { return indices_[i]; });
}

SequentialSampler::SequentialSampler(size_t size) : size_(size) {}

void SequentialSampler::reset(std::optional<size_t> new_size) {
  if (new_size) size_ = *new_size;
  index_ = 0;
}

std::optional<std::vector<size_t>> SequentialSampler::next(size_t batch_size) {
  return take("SequentialSampler", index_, size_, batch_size, [](size_t i) { return i; });
}

DistributedRandomSampler::DistributedRandomSampler(size_t size, size_t num_replicas, size_t rank, bool allow_duplicates)
    : DistributedSampler(size, num_replicas, rank, allow_duplicates) {
  populate_indices();
}

void DistributedRandomSampler::populate_indices() {
  const size_t local = local_sample_count();
  const size_t count = num_replicas_ == 1 ? size_ : local * num_replicas_;
  all_indices_.resize(count);
  // With duplicates allowed the list is longer than the dataset; its tail wraps around to the start.
  for (size_t i = 0; i < count; ++i) all_indices_[i] = size_ == 0 ? 0 : i % size_;
  begin_index_ = rank_ * local;
  end_index_ = begin_index_ + local;
  sample_index_ = begin_index_;
}

void DistributedRandomSampler::reset(std::optional<size_t> new_size) {
  size_ = new_size.value_or(size_);
  populate_indices();
  // Every rank draws the same permutation from the epoch (libtorch: std::mt19937(epoch) and std::shuffle).
  std::mt19937 generator(static_cast<std::mt19937::result_type>(epoch_));
  std::shuffle(all_indices_.begin(), all_indices_.end(), generator);
  sample_index_ = begin_index_;
}

std::optional<std::vector<size_t>> DistributedRandomSampler::next(size_t batch_size) {
  return take("DistributedRandomSampler", sample_index_, end_index_, batch_size, [&](size_t i) { return all_indices_[i]; });
}

DistributedSequentialSampler::DistributedSequentialSampler(size_t size, size_t num_replicas, size_t rank, bool allow_duplicates)
    : DistributedSampler(size, num_replicas, rank, allow_duplicates) {
  populate_indices();
}

void DistributedSequentialSampler::populate_indices() {
  begin_index_ = rank_ * local_sample_count();
  end_index_ = begin_index_ + local_sample_count();
  sample_index_ = begin_index_;
}

void DistributedSequentialSampler::reset(std::optional<size_t> new_size) {
  size_ = new_size.value_or(size_);
  populate_indices();
}

std::optional<std::vector<size_t>> DistributedSequentialSampler::next(size_t batch_size) {
  // Past the dataset's end (padding with duplicates) the indices wrap around to its start.
  return take("DistributedSequentialSampler", sample_index_, end_index_, batch_size, [&](size_t i) { return i % size_; });
}

void StreamSampler::reset(std::optional<size_t> new_size) {
  if (new_size) epoch_size_ = *new_size;
  examples_retrieved_so_far_ = 0;
}

std::optional<BatchSize> StreamSampler::next(size_t batch_size) {
  XG_CHECK(batch_size > 0, "StreamSampler::next: batch_size must be positive, got 0");
  if (examples_retrieved_so_far_ >= epoch_size_) return std::nullopt;
  batch_size = std::min(batch_size, epoch_size_ - examples_retrieved_so_far_);
  examples_retrieved_so_far_ += batch_size;
  return BatchSize(batch_size);
}

}  // namespace xg::data::samplers

#pragma once
/// Samplers in libtorch's design (torch::data::samplers), for make_data_loader: a loader calls reset()
/// when an epoch begins and next(batch_size) for each batch's request until it returns nullopt.
///   RandomSampler                  a new random permutation each epoch (xg's global generator: xg::manual_seed)
///   SequentialSampler              0, 1, ..., size - 1
///   DistributedRandomSampler       this rank's share of a permutation drawn from the epoch (set_epoch)
///   DistributedSequentialSampler   this rank's contiguous share
///   StreamSampler                  BatchSize requests for a StreamDataset, epoch_size examples an epoch
/// The distributed samplers follow libtorch's: the ranks' shares are contiguous ranges of the (shuffled)
/// index list; allow_duplicates pads it by wrapping around so every rank gets ceil(size / replicas)
/// indices, else each gets floor(size / replicas) and the remainder is left out.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "xgrad/autograd/dtype.hpp"
#include "xgrad/autograd/error.hpp"

namespace xg::data::samplers {

template <class BatchRequest = std::vector<size_t>>
class Sampler {
 public:
  using BatchRequestType = BatchRequest;
  virtual ~Sampler() = default;
  /// Starts a new epoch; new_size (when given) is the dataset's size from now on.
  virtual void reset(std::optional<size_t> new_size) = 0;
  /// The next request of at most batch_size examples, or nullopt when the epoch is over.
  virtual std::optional<BatchRequest> next(size_t batch_size) = 0;
};

class RandomSampler : public Sampler<> {
 public:
  /// size >= 0; index_dtype must be an integer type (libtorch's signature; indices are size_t).
  explicit RandomSampler(int64_t size, Dtype index_dtype = kInt64);
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<std::vector<size_t>> next(size_t batch_size) override;
  /// How many indices of this epoch have been returned.
  size_t index() const noexcept { return index_; }

 private:
  std::vector<size_t> indices_;
  size_t index_ = 0;
};

class SequentialSampler : public Sampler<> {
 public:
  explicit SequentialSampler(size_t size);
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<std::vector<size_t>> next(size_t batch_size) override;
  size_t index() const noexcept { return index_; }

 private:
  size_t size_;
  size_t index_ = 0;
};

namespace detail {
void check_distributed(const char* sampler, size_t num_replicas, size_t rank);
}

/// What the distributed samplers share: the dataset size, this rank's place, the epoch.
template <class BatchRequest = std::vector<size_t>>
class DistributedSampler : public Sampler<BatchRequest> {
 public:
  /// num_replicas >= 1, rank < num_replicas.
  DistributedSampler(size_t size, size_t num_replicas = 1, size_t rank = 0, bool allow_duplicates = true)
      : size_(size), num_replicas_(num_replicas), rank_(rank), allow_duplicates_(allow_duplicates) {
    detail::check_distributed("DistributedSampler", num_replicas, rank);
  }
  /// Selects the permutation the next reset() draws (DistributedRandomSampler); call it before each epoch.
  void set_epoch(size_t epoch) { epoch_ = epoch; }
  size_t epoch() const noexcept { return epoch_; }
  size_t num_replicas() const noexcept { return num_replicas_; }
  size_t rank() const noexcept { return rank_; }
  /// Indices this rank visits per epoch.
  size_t local_sample_count() const {
    return allow_duplicates_ ? (size_ + num_replicas_ - 1) / num_replicas_ : size_ / num_replicas_;
  }

 protected:
  size_t size_, num_replicas_, rank_, epoch_ = 0;
  bool allow_duplicates_;
};

class DistributedRandomSampler : public DistributedSampler<> {
 public:
  DistributedRandomSampler(size_t size, size_t num_replicas = 1, size_t rank = 0, bool allow_duplicates = true);
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<std::vector<size_t>> next(size_t batch_size) override;
  size_t index() const noexcept { return sample_index_ - begin_index_; }

 private:
  void populate_indices();
  std::vector<size_t> all_indices_;
  size_t begin_index_ = 0, end_index_ = 0, sample_index_ = 0;
};

class DistributedSequentialSampler : public DistributedSampler<> {
 public:
  DistributedSequentialSampler(size_t size, size_t num_replicas = 1, size_t rank = 0, bool allow_duplicates = true);
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<std::vector<size_t>> next(size_t batch_size) override;
  size_t index() const noexcept { return sample_index_ - begin_index_; }

 private:
  void populate_indices();
  size_t begin_index_ = 0, end_index_ = 0, sample_index_ = 0;
};

/// A StreamSampler's request: how many examples the stream dataset should produce next.
struct BatchSize {
  /* implicit */ BatchSize(size_t size) : size_(size) {}
  size_t size() const noexcept { return size_; }
  operator size_t() const noexcept { return size_; }
  size_t size_;
};

class StreamSampler : public Sampler<BatchSize> {
 public:
  /// epoch_size: examples per epoch.
  explicit StreamSampler(size_t epoch_size) : epoch_size_(epoch_size) {}
  void reset(std::optional<size_t> new_size = std::nullopt) override;
  std::optional<BatchSize> next(size_t batch_size) override;

 private:
  size_t examples_retrieved_so_far_ = 0;
  size_t epoch_size_;
};

}  // namespace xg::data::samplers

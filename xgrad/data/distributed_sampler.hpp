#pragma once
/// DistributedSampler: each of num_replicas processes visits its own shard of the dataset, as
/// torch.utils.data.distributed.DistributedSampler. With shuffle, every rank draws the same
/// permutation of the whole dataset from seed + epoch (call set_epoch at the start of each epoch, or
/// every epoch repeats one order) and takes every num_replicas-th index starting at its rank. Without
/// drop_last the permutation is padded by repeating its start so every rank gets ceil(N / replicas)
/// indices; with drop_last its tail is cut so every rank gets floor(N / replicas).
/// It needs no MPI: pass xg::distributed::get_world_size() and get_rank().
#include <cstdint>
#include <vector>

#include "xgrad/data/dataloader.hpp"

namespace xg::data {

struct DistributedSamplerOptions {
  int64_t num_replicas_;
  int64_t rank_;
  bool shuffle_ = true;
  uint64_t seed_ = 0;
  bool drop_last_ = false;
  DistributedSamplerOptions(int64_t num_replicas, int64_t rank) : num_replicas_(num_replicas), rank_(rank) {}
  DistributedSamplerOptions& num_replicas(int64_t v) { num_replicas_ = v; return *this; }
  DistributedSamplerOptions& rank(int64_t v) { rank_ = v; return *this; }
  DistributedSamplerOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  /// Must be the same on every rank.
  DistributedSamplerOptions& seed(uint64_t v) { seed_ = v; return *this; }
  DistributedSamplerOptions& drop_last(bool v) { drop_last_ = v; return *this; }
};

class DistributedSampler : public Sampler {
 public:
  /// dataset_size: the number of examples to shard (dataset->size()).
  DistributedSampler(int64_t dataset_size, DistributedSamplerOptions options);
  /// Selects the permutation of the next epochs (seed + epoch); epoch >= 0.
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }
  /// This rank's indices for the current epoch.
  std::vector<int64_t> indices() override;
  /// Indices per rank and epoch (num_samples in PyTorch).
  int64_t size() const override { return num_samples_; }
  /// Indices over all ranks per epoch: size() * num_replicas.
  int64_t total_size() const { return num_samples_ * options_.num_replicas_; }
  const DistributedSamplerOptions& options() const { return options_; }

 private:
  int64_t dataset_size_;
  DistributedSamplerOptions options_;
  int64_t num_samples_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace xg::data

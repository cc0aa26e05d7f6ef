#pragma once
/// Data-parallel training: every rank holds a full copy of the model, trains on its own shard of
/// each batch, and averages gradients with the others before the optimizer step, as PyTorch's
/// DistributedDataParallel. Gradients travel in buckets (bucket_cap_mb): a bucket's all-reduce
/// starts, non-blocking, as soon as backward has produced every gradient in it, so communication
/// overlaps the rest of backward; finalize_backward() waits for all of them before optimizer.step().
///
///   xg::distributed::DistributedDataParallel ddp(model);        // broadcasts rank 0's weights
///   for (auto& batch : loader) {                                 // loader with a DistributedSampler
///     optimizer.zero_grad();
///     Tensor loss = xg::nn::functional::cross_entropy(model->forward(batch.data), batch.target);
///     ddp.backward(loss);                                        // backward + averaged gradients
///     optimizer.step();
///   }
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "xgrad/distributed/process_group.hpp"
#include "xgrad/nn/module.hpp"

namespace xg::distributed {

/// Broadcasts every parameter and buffer of `module` from `root` (so all ranks start from root's
/// weights). Every rank must pass a module with the same parameter and buffer names, shapes and
/// dtypes; a mismatch is an xg::Error on every rank, naming the first difference on this rank.
void broadcast_parameters(nn::Module& module, int root = 0);

/// The synchronous way to data-parallel training: after backward, replaces every parameter's .grad
/// with its sum or mean (the default) over the ranks, in one all-reduce per dtype. A parameter
/// without a gradient counts as zeros; it keeps no gradient only if no rank has one.
void all_reduce_gradients(nn::Module& module, ReduceOp op = ReduceOp::kMean);

/// Options of DistributedDataParallel.
struct DistributedDataParallelOptions {
  double bucket_cap_mb_ = 25;  // PyTorch's default
  bool overlap_communication_ = true;
  bool broadcast_buffers_ = true;
  /// Largest bucket in MiB (a parameter larger than this gets a bucket of its own).
  DistributedDataParallelOptions& bucket_cap_mb(double value) { bucket_cap_mb_ = value; return *this; }
  /// true: each bucket's all-reduce starts during backward, when its gradients are ready (tensor hooks);
  /// false: the synchronous fallback, all buckets are all-reduced after backward.
  DistributedDataParallelOptions& overlap_communication(bool value) { overlap_communication_ = value; return *this; }
  /// After each synchronised step, copy rank 0's buffers (BatchNorm running statistics) to every rank.
  DistributedDataParallelOptions& broadcast_buffers(bool value) { broadcast_buffers_ = value; return *this; }
};

/// What the last synchronised backward did (for benchmarks and tests).
struct DistributedDataParallelStats {
  int64_t buckets = 0;                   ///< buckets all-reduced
  int64_t buckets_launched_in_backward = 0;  ///< of those, started by a gradient hook during backward
  double finalize_wait_seconds = 0;      ///< time finalize_backward() spent waiting for communication
};

class DistributedDataParallel {
 public:
  /// Wraps `module` (kept alive by the wrapper): checks that every rank has the same parameters,
  /// broadcasts rank 0's parameters and buffers, groups the gradients into buckets (parameters in
  /// reverse registration order, which is roughly the order backward produces their gradients) and
  /// registers a gradient hook on every parameter. Construct it after module->to(dtype).
  explicit DistributedDataParallel(std::shared_ptr<nn::Module> module, DistributedDataParallelOptions options = {});
  /// From a module holder (nn::Sequential, XG_MODULE types).
  template <class Holder, class = decltype(std::declval<Holder>().ptr())>
  explicit DistributedDataParallel(const Holder& holder, DistributedDataParallelOptions options = {})
      : DistributedDataParallel(std::static_pointer_cast<nn::Module>(holder.ptr()), options) {}
  /// Removes the gradient hooks.
  ~DistributedDataParallel();
  DistributedDataParallel(DistributedDataParallel&&) noexcept;
  DistributedDataParallel& operator=(DistributedDataParallel&&) noexcept;

  nn::Module& module() const;
  const DistributedDataParallelOptions& options() const;

  /// prepare_for_backward(loss); loss.backward(); finalize_backward(). Afterwards every parameter's
  /// .grad is the mean over the ranks of its .grad as this rank's backward left it.
  void backward(const Tensor& loss);
  /// Arms the gradient hooks for the next backward of `loss`: counts how many gradient
  /// contributions each parameter will receive (the edges of loss's graph that reach it), so a
  /// parameter's gradient is known to be complete, and its bucket ready, at its last contribution.
  void prepare_for_backward(const Tensor& loss);
  /// Waits for every bucket's all-reduce (starting those that were not started during backward),
  /// writes the averaged gradients into .grad and, with broadcast_buffers, copies rank 0's buffers.
  /// Without a prepare_for_backward() before the backward it is the synchronous fallback: all buckets
  /// are all-reduced now. Every rank must call it once per step, before optimizer.step().
  void finalize_backward();

  /// Gradient accumulation: backward() through this wrapper only on the last micro-batch; call
  /// plain loss.backward() on the others. Their gradients accumulate locally in .grad, and the
  /// synchronised backward averages the whole accumulated gradient once.

  int64_t num_buckets() const;
  /// Dotted parameter names in each bucket, in the order the buckets are all-reduced.
  std::vector<std::vector<std::string>> bucket_parameter_names() const;
  const DistributedDataParallelStats& last_stats() const;

  class Reducer;

 private:
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace xg::distributed

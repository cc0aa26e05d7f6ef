#pragma once
/// Training checkpoints: everything a run needs to continue exactly where it stopped -- model(s), optimizer(s),
/// LR scheduler(s), the epoch, named numbers, tensors and strings, and the global random generator -- in ONE
/// safetensors file (xg::nn::save_tensors: an atomic write, a fully validated read).
///
///     xg::optim::Checkpoint checkpoint;
///     checkpoint.add("model", *model).add("optimizer", optimizer).add("scheduler", scheduler);
///     xg::optim::CheckpointState state;
///     state.epoch = epoch;
///     checkpoint.save("run/checkpoint.safetensors", state);                 // after each epoch
///     state = checkpoint.load("run/checkpoint.safetensors");                // --resume
///
/// File layout (readable from Python with safetensors.torch.load_file):
///   "<module name>.<state dict key>"       the module's parameters and buffers ("model.fc1.weight")
///   "<optimizer name>.<flat key>"          OptimizerStateDict::to_tensors() ("optimizer.state.0.exp_avg")
///   "<scheduler name>.<key>"               the scheduler's state dict as float64 0-D tensors
///   "scalars.<name>" (float64 0-D), "tensors.<name>"   the caller's numbers and tensors
///   __metadata__: "format" = "xgrad.checkpoint", "version" = "1", "epoch", "rng_state" (the global
///   generator, xg::random::get_state), "text.<name>" for the caller's strings, and "crc32": the checksum
///   every file nn::save_tensors writes carries (serialize.hpp documents it), required in a checkpoint. It
///   turns a flipped bit anywhere in the file into an error instead of a silently wrong weight.
///
/// Loading reads and validates the whole file (format, checksum, every entry), then restores every registered object; if any of them
/// rejects its part (a missing key, a shape that does not match), the ones already restored are rolled back,
/// so a failed load leaves models, optimizers, schedulers and the generator exactly as they were.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/autograd/tensor.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/lr_scheduler.hpp"
#include "xgrad/optim/optimizer.hpp"

namespace xg::optim {

/// The caller's part of a checkpoint: the epoch and anything else the loop needs to resume.
struct CheckpointState {
  /// Epochs completed (or steps, for a loop counted in steps).
  int64_t epoch = 0;
  /// Named numbers, stored exactly (float64): best validation loss, initial loss, ...
  std::map<std::string, double> scalars;
  /// Named tensors of any shape and dtype: metric histories, EMA weights, ...
  std::map<std::string, Tensor> tensors;
  /// Named strings (e.g. DataLoader::generator_state()).
  std::map<std::string, std::string> text;
};

/// Which objects a checkpoint saves and restores, each under a name that prefixes its keys in the file.
/// The objects are held by reference: they must outlive the Checkpoint.
class Checkpoint {
 public:
  /// A model (parameters and buffers through state_dict / load_state_dict, strict).
  Checkpoint& add(const std::string& name, nn::Module& module);
  /// A model held by a module holder or shared_ptr (nn::Sequential, std::make_shared<Net>()).
  template <class Holder, class = decltype(std::declval<Holder>().get())>
  Checkpoint& add(const std::string& name, const Holder& holder) {
    XG_CHECK(holder.get() != nullptr, "Checkpoint::add: '{}': the module pointer is null", name);
    return add(name, static_cast<nn::Module&>(*holder.get()));
  }
  /// An optimizer (state and group options).
  Checkpoint& add(const std::string& name, Optimizer& optimizer);
  /// An epoch-based or per-batch LR scheduler.
  Checkpoint& add(const std::string& name, LRScheduler& scheduler);
  /// A ReduceLROnPlateau scheduler.
  Checkpoint& add(const std::string& name, ReduceLROnPlateau& scheduler);
  /// Whether save/load include the global random generator (default true: dropout masks and shuffles
  /// continue as in an uninterrupted run).
  Checkpoint& include_rng_state(bool include) {
    include_rng_ = include;
    return *this;
  }

  /// Writes the registered objects, `state` and (by default) the generator state to `path`, atomically:
  /// the previous file at `path` survives a failed write.
  void save(const std::string& path, const CheckpointState& state = {}) const;
  /// Validates `path` completely, restores every registered object (and the generator), returns the
  /// caller's state. Any defect -- truncated or corrupt file, missing or unexpected key, wrong shape -- is
  /// an xg::Error naming the file, and nothing has changed.
  CheckpointState load(const std::string& path) const;

 private:
  enum class Kind { Module, Optimizer, Scheduler, Plateau };
  struct Target {
    Kind kind;
    std::string name;
    void* object;
  };
  void add_target(Kind kind, const std::string& name, void* object);
  std::vector<Target> targets_;
  bool include_rng_ = true;
};

}  // namespace xg::optim

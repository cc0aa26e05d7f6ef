#include "xgrad/optim/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/random.hpp"
#include "xgrad/nn/serialize.hpp"

namespace xg::optim {

namespace {

constexpr const char* kFormatKey = "format";
constexpr const char* kFormatValue = "xgrad.checkpoint";
constexpr const char* kVersionKey = "version";
constexpr const char* kVersionValue = "1";
constexpr const char* kEpochKey = "epoch";
constexpr const char* kRngKey = "rng_state";
constexpr const char* kTextPrefix = "text.";
constexpr const char* kScalarsName = "scalars";
constexpr const char* kTensorsName = "tensors";

bool starts_with(const std::string& text, const std::string& prefix) { return text.compare(0, prefix.size(), prefix) == 0; }

Tensor float64_scalar(double value) { return scalar_tensor(value, kFloat64); }

/// A 0-D (or one-element) floating tensor's value; an error naming the key otherwise.
double read_scalar(const std::string& path, const std::string& key, const Tensor& tensor) {
  XG_CHECK(tensor.numel() == 1 && tensor.dim() == 0 && tensor.dtype() != kInt64,
           "Checkpoint::load: '{}': '{}' must be a 0-D float tensor, got {} of shape {}", path, key, dtype_name(tensor.dtype()),
           shape_string(tensor.shape()));
  return tensor.to(kFloat64).item<double>();
}

/// Parses a non-negative decimal integer that fits in int64 (no sign, no spaces, no trailing text).
bool parse_count(const std::string& text, int64_t& value) {
  if (text.empty() || text.size() > 18) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  value = std::stoll(text);
  return true;
}

/// Whether `state` is a complete std::mt19937_64 state as xg::random::get_state writes it.
bool valid_rng_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 generator;
  in >> generator;
  if (in.fail()) return false;
  in >> std::ws;
  return in.eof();
}

/// A deep copy (a module's state dict shares its tensors with the module).
nn::OrderedDict<Tensor> clone_state(const nn::OrderedDict<Tensor>& state) {
  NoGradGuard no_grad;
  nn::OrderedDict<Tensor> copy;
  for (const auto& [key, tensor] : state) copy.insert(key, tensor.defined() ? tensor.detach().clone() : tensor);
  return copy;
}

}  // namespace

// ---- registration ---------------------------------------------------------------------------------

void Checkpoint::add_target(Kind kind, const std::string& name, void* object) {
  XG_CHECK(!name.empty(), "Checkpoint::add: the name is empty");
  XG_CHECK(name.find('.') == std::string::npos, "Checkpoint::add: '{}': a name cannot contain '.' (it separates the name from its keys)",
           name);
  XG_CHECK(name != kScalarsName && name != kTensorsName, "Checkpoint::add: '{}' is reserved for the caller's state", name);
  for (const Target& target : targets_) XG_CHECK(target.name != name, "Checkpoint::add: the name '{}' is already taken", name);
  targets_.push_back({kind, name, object});
}

Checkpoint& Checkpoint::add(const std::string& name, nn::Module& module) {
  add_target(Kind::Module, name, &module);
  return *this;
}
Checkpoint& Checkpoint::add(const std::string& name, Optimizer& optimizer) {
  add_target(Kind::Optimizer, name, &optimizer);
  return *this;
}
Checkpoint& Checkpoint::add(const std::string& name, LRScheduler& scheduler) {
  add_target(Kind::Scheduler, name, &scheduler);
  return *this;
}
Checkpoint& Checkpoint::add(const std::string& name, ReduceLROnPlateau& scheduler) {
  add_target(Kind::Plateau, name, &scheduler);
  return *this;
}

// ---- save -----------------------------------------------------------------------------------------

void Checkpoint::save(const std::string& path, const CheckpointState& state) const {
  XG_CHECK(state.epoch >= 0, "Checkpoint::save: '{}': the epoch must be non-negative, got {}", path, state.epoch);
  std::map<std::string, Tensor> flat;
  auto put = [&](const std::string& key, Tensor tensor) {
    XG_CHECK(tensor.defined(), "Checkpoint::save: '{}': '{}' is undefined", path, key);
    XG_CHECK(flat.emplace(key, std::move(tensor)).second, "Checkpoint::save: '{}': two entries are named '{}'", path, key);
  };
  auto put_scheduler_state = [&](const std::string& name, const SchedulerStateDict& scheduler_state) {
    for (const auto& [key, value] : scheduler_state) put(name + "." + key, float64_scalar(value));
  };

  for (const Target& target : targets_) {
    switch (target.kind) {
      case Kind::Module:
        for (const auto& [key, tensor] : static_cast<nn::Module*>(target.object)->state_dict()) put(target.name + "." + key, tensor);
        break;
      case Kind::Optimizer:
        for (auto& [key, tensor] : static_cast<Optimizer*>(target.object)->state_dict().to_tensors()) put(target.name + "." + key, tensor);
        break;
      case Kind::Scheduler: put_scheduler_state(target.name, static_cast<LRScheduler*>(target.object)->state_dict()); break;
      case Kind::Plateau: put_scheduler_state(target.name, static_cast<ReduceLROnPlateau*>(target.object)->state_dict()); break;
    }
  }
  for (const auto& [name, value] : state.scalars) put(std::string(kScalarsName) + "." + name, float64_scalar(value));
  for (const auto& [name, tensor] : state.tensors) put(std::string(kTensorsName) + "." + name, tensor);

  std::map<std::string, std::string> metadata{
      {kFormatKey, kFormatValue}, {kVersionKey, kVersionValue}, {kEpochKey, std::to_string(state.epoch)}};
  if (include_rng_) metadata[kRngKey] = xg::random::get_state();
  for (const auto& [name, value] : state.text) metadata[kTextPrefix + name] = value;
  nn::save_tensors(flat, path, metadata);  // adds the "crc32" checksum
}

// ---- load -----------------------------------------------------------------------------------------

CheckpointState Checkpoint::load(const std::string& path) const {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> flat = nn::load_tensors(path, &metadata);  // validates the file and its checksum

  // 1. Parse and validate everything without touching any registered object.
  auto meta = [&](const char* key) -> const std::string& {
    auto it = metadata.find(key);
    XG_CHECK(it != metadata.end(), "Checkpoint::load: '{}': not an xgrad checkpoint (its metadata has no \"{}\")", path, key);
    return it->second;
  };
  XG_CHECK(meta(kFormatKey) == kFormatValue, "Checkpoint::load: '{}': the format is '{}', expected '{}'", path, meta(kFormatKey),
           kFormatValue);
  XG_CHECK(meta(kVersionKey) == kVersionValue, "Checkpoint::load: '{}': checkpoint version '{}' is not supported (this build reads {})",
           path, meta(kVersionKey), kVersionValue);
  // load_tensors verified the checksum if there is one; a checkpoint must have one.
  (void)meta(nn::kChecksumMetadataKey);
  CheckpointState state;
  XG_CHECK(parse_count(meta(kEpochKey), state.epoch), "Checkpoint::load: '{}': the epoch '{}' is not a non-negative integer", path,
           meta(kEpochKey));
  std::string rng_state;
  if (include_rng_) {
    XG_CHECK(metadata.count(kRngKey) != 0,
             "Checkpoint::load: '{}': the file has no generator state \"{}\" (saved with include_rng_state(false)?)", path, kRngKey);
    rng_state = metadata.at(kRngKey);
    XG_CHECK(valid_rng_state(rng_state), "Checkpoint::load: '{}': \"{}\" is not a valid generator state", path, kRngKey);
  }
  for (const auto& [key, value] : metadata)
    if (starts_with(key, kTextPrefix)) state.text[key.substr(std::string(kTextPrefix).size())] = value;

  // Each tensor belongs to one registered object (by its name prefix) or to the caller's state.
  std::vector<std::map<std::string, Tensor>> parts(targets_.size());
  for (const auto& [key, tensor] : flat) {
    const size_t dot = key.find('.');
    XG_CHECK(dot != std::string::npos && dot + 1 < key.size(), "Checkpoint::load: '{}': unexpected entry '{}' (expected <name>.<key>)",
             path, key);
    const std::string owner = key.substr(0, dot), rest = key.substr(dot + 1);
    if (owner == kScalarsName) {
      state.scalars[rest] = read_scalar(path, key, tensor);
      continue;
    }
    if (owner == kTensorsName) {
      state.tensors[rest] = tensor;
      continue;
    }
    bool claimed = false;
    for (size_t t = 0; t < targets_.size() && !claimed; ++t) {
      if (targets_[t].name != owner) continue;
      parts[t][rest] = tensor;
      claimed = true;
    }
    XG_CHECK(claimed, "Checkpoint::load: '{}': entry '{}' belongs to '{}', which was not added to this Checkpoint", path, key, owner);
  }

  // Convert each part to what its object's load_state_dict takes (still no object changed).
  std::vector<nn::OrderedDict<Tensor>> module_states(targets_.size());
  std::vector<OptimizerStateDict> optimizer_states(targets_.size());
  std::vector<SchedulerStateDict> scheduler_states(targets_.size());
  for (size_t t = 0; t < targets_.size(); ++t) {
    const Target& target = targets_[t];
    switch (target.kind) {
      case Kind::Module:
        for (auto& [key, tensor] : parts[t]) module_states[t].insert(key, tensor);
        break;
      case Kind::Optimizer:
        try {
          optimizer_states[t] = OptimizerStateDict::from_tensors(parts[t]);
        } catch (const Error& error) {
          XG_ERROR("Checkpoint::load: '{}': optimizer '{}': {}", path, target.name, error.what());
        }
        break;
      case Kind::Scheduler:
      case Kind::Plateau:
        for (const auto& [key, tensor] : parts[t]) scheduler_states[t][key] = read_scalar(path, target.name + "." + key, tensor);
        break;
    }
    XG_CHECK(!parts[t].empty() || target.kind == Kind::Module, "Checkpoint::load: '{}': the file has no entries for '{}'", path,
             target.name);
  }

  // 2. Snapshot every object, restore them one by one, and roll all of them back if one refuses its part.
  std::vector<std::function<void()>> rollbacks;
  auto restore_all = [&](size_t t) {
    const Target& target = targets_[t];
    switch (target.kind) {
      case Kind::Module: {
        auto& module = *static_cast<nn::Module*>(target.object);
        auto snapshot = clone_state(module.state_dict());
        rollbacks.push_back([&module, snapshot] { module.load_state_dict(snapshot, true); });
        module.load_state_dict(module_states[t], /*strict=*/true);
        break;
      }
      case Kind::Optimizer: {
        auto& optimizer = *static_cast<Optimizer*>(target.object);
        auto snapshot = optimizer.state_dict();
        rollbacks.push_back([&optimizer, snapshot] { optimizer.load_state_dict(snapshot); });
        optimizer.load_state_dict(optimizer_states[t]);
        break;
      }
      case Kind::Scheduler: {
        auto& scheduler = *static_cast<LRScheduler*>(target.object);
        auto snapshot = scheduler.state_dict();
        rollbacks.push_back([&scheduler, snapshot] { scheduler.load_state_dict(snapshot); });
        scheduler.load_state_dict(scheduler_states[t]);
        break;
      }
      case Kind::Plateau: {
        auto& scheduler = *static_cast<ReduceLROnPlateau*>(target.object);
        auto snapshot = scheduler.state_dict();
        rollbacks.push_back([&scheduler, snapshot] { scheduler.load_state_dict(snapshot); });
        scheduler.load_state_dict(scheduler_states[t]);
        break;
      }
    }
  };
  for (size_t t = 0; t < targets_.size(); ++t) {
    try {
      restore_all(t);
    } catch (const Error& error) {
      // Each load_state_dict is all-or-nothing itself; undo the objects restored before this one.
      for (auto it = rollbacks.rbegin(); it != rollbacks.rend(); ++it) (*it)();
      XG_ERROR("Checkpoint::load: '{}': '{}' does not match the checkpoint: {}", path, targets_[t].name, error.what());
    }
  }
  if (include_rng_) xg::random::set_state(rng_state);  // validated above: cannot fail
  return state;
}

}  // namespace xg::optim

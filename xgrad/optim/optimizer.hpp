#pragma once
/// The optimizer base: parameter groups with their own options, lazily created per-parameter state keyed
/// by the parameter's identity, zero_grad, and state save/load (in memory, or flat for checkpoints).
/// Mirrors torch::optim::Optimizer (C++ frontend) with torch.optim's Python semantics.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "xgrad/autograd/tensor.hpp"

/// XG_OPTIM_ARG(double, lr) = 1e-3; declares the option `lr_` with the chained setter `lr(value)` and the
/// getters `lr()`, as TORCH_ARG does in PyTorch's C++ frontend (T must not contain a comma: use an alias).
#define XG_OPTIM_ARG(T, name)                                                    \
 public:                                                                        \
  inline auto name(const T& new_##name)->decltype(*this) { /* NOLINT */         \
    this->name##_ = new_##name;                                                 \
    return *this;                                                               \
  }                                                                             \
  inline const T& name() const noexcept { return this->name##_; }               \
  inline T& name() noexcept { return this->name##_; }                           \
                                                                                \
 private:                                                                       \
  T name##_ /* NOLINT */

namespace xg::optim {

/// Re-evaluates the model and returns the loss (LBFGS calls it several times per step).
using LossClosure = std::function<Tensor()>;

/// One option of a parameter group as saved in a state dict: numbers (bool and integers as int64),
/// pairs such as betas (as a list), and strings such as LBFGS's line_search_fn.
using OptionValue = std::variant<double, int64_t, std::vector<double>, std::string>;
/// Option name -> value.
using OptionMap = std::map<std::string, OptionValue>;

namespace detail {
/// Writes each visited option into an OptionMap.
struct OptionWriter {
  OptionMap& out;
  void operator()(const char* name, const double& value) { out[name] = value; }
  void operator()(const char* name, const bool& value) { out[name] = static_cast<int64_t>(value); }
  void operator()(const char* name, const int64_t& value) { out[name] = value; }
  void operator()(const char* name, const std::tuple<double, double>& value) {
    out[name] = std::vector<double>{std::get<0>(value), std::get<1>(value)};
  }
  void operator()(const char* name, const std::optional<int64_t>& value) {
    if (value) out[name] = *value;
  }
  void operator()(const char* name, const std::optional<std::string>& value) {
    if (value) out[name] = *value;
  }
};

/// Reads each visited option from an OptionMap; errors name the flat key (prefix + name).
struct OptionReader {
  const OptionMap& in;
  std::string prefix;
  std::set<std::string> consumed;
  const OptionValue* find(const char* name, bool required);
  void operator()(const char* name, double& value);
  void operator()(const char* name, bool& value);
  void operator()(const char* name, int64_t& value);
  void operator()(const char* name, std::tuple<double, double>& value);
  void operator()(const char* name, std::optional<int64_t>& value);
  void operator()(const char* name, std::optional<std::string>& value);
  /// Throws naming the first key the options did not consume.
  void check_all_consumed() const;
};
}  // namespace detail

/// The options of one parameter group (lr and friends). Concrete options derive from
/// OptimizerCloneableOptions<Derived>.
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;
  /// The learning rate, whatever the optimizer (what schedulers read and write).
  virtual double get_lr() const = 0;
  virtual void set_lr(double lr) = 0;
  /// The momentum OneCycleLR cycles: `momentum` (SGD, RMSprop) or betas[0] (Adam, AdamW); nullopt when none.
  virtual std::optional<double> get_momentum() const { return std::nullopt; }
  /// Sets that momentum (an error for optimizers without one).
  virtual void set_momentum(double momentum);
  /// Every option by its PyTorch name ("lr", "betas", "weight_decay", ...).
  virtual OptionMap to_map() const = 0;
  /// Reads every option from `values`; missing or unknown entries are errors naming `key_prefix` + name.
  virtual void from_map(const OptionMap& values, const std::string& key_prefix) = 0;
};

/// Implements clone, get_lr/set_lr and the option maps from Derived's lr() and visit_options(visitor).
template <class Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
  double get_lr() const override { return static_cast<const Derived&>(*this).lr(); }
  void set_lr(double lr) override { static_cast<Derived&>(*this).lr(lr); }
  OptionMap to_map() const override {
    OptionMap out;
    detail::OptionWriter writer{out};
    const_cast<Derived&>(static_cast<const Derived&>(*this)).visit_options(writer);
    return out;
  }
  void from_map(const OptionMap& values, const std::string& key_prefix) override {
    Derived loaded = static_cast<const Derived&>(*this);  // all or nothing
    detail::OptionReader reader{values, key_prefix, {}};
    loaded.visit_options(reader);
    reader.check_all_consumed();
    static_cast<Derived&>(*this) = loaded;
  }
};

/// A list of parameters optimized with the same options (e.g. weights with weight decay, biases without).
class OptimizerParamGroup {
 public:
  /// A group that takes the optimizer's default options.
  OptimizerParamGroup(TensorList params);  // NOLINT: implicit, as torch::optim::OptimizerParamGroup
  /// A group with its own options.
  OptimizerParamGroup(TensorList params, std::unique_ptr<OptimizerOptions> options);
  /// A group with its own options (copied): OptimizerParamGroup(biases, AdamOptions(1e-3).weight_decay(0)).
  OptimizerParamGroup(TensorList params, const OptimizerOptions& options);
  OptimizerParamGroup(const OptimizerParamGroup& other);
  OptimizerParamGroup& operator=(const OptimizerParamGroup& other);
  OptimizerParamGroup(OptimizerParamGroup&&) noexcept = default;
  OptimizerParamGroup& operator=(OptimizerParamGroup&&) noexcept = default;

  bool has_options() const { return options_ != nullptr; }
  /// The group's options; cast to the optimizer's type to change them: static_cast<AdamOptions&>(g.options()).
  OptimizerOptions& options();
  const OptimizerOptions& options() const;
  void set_options(std::unique_ptr<OptimizerOptions> options) { options_ = std::move(options); }
  TensorList& params() { return params_; }
  const TensorList& params() const { return params_; }
  /// The group's learning rate (shorthand for options().get_lr()).
  double lr() const { return options().get_lr(); }
  void set_lr(double lr) { options().set_lr(lr); }

 private:
  TensorList params_;
  std::unique_ptr<OptimizerOptions> options_;
};

/// Lists a state struct's fields by name, once to save them and once to load them (the same code).
class StateFields {
 public:
  virtual ~StateFields() = default;
  virtual bool loading() const = 0;
  /// An integer such as the step count.
  virtual void counter(const std::string& name, int64_t& value) = 0;
  /// A real number such as LBFGS's step length.
  virtual void scalar(const std::string& name, double& value) = 0;
  /// A tensor shaped and typed like the parameter unless `shape` (-1 = any size) / `dtype` say otherwise.
  /// An optional field may be absent (undefined).
  virtual void tensor(const std::string& name, Tensor& value, bool required = true,
                      const std::optional<Shape>& shape = std::nullopt,
                      std::optional<Dtype> dtype = std::nullopt) = 0;
};

/// Per-parameter optimizer state (momentum buffers, moment estimates, step count).
struct OptimizerParamState {
  virtual ~OptimizerParamState() = default;
  /// Names the fields for state dicts.
  virtual void fields(StateFields& fields) = 0;
};

/// One parameter's saved state: counters ("step"), reals and tensors ("exp_avg"), by field name.
struct ParamStateDict {
  std::map<std::string, int64_t> counters;
  std::map<std::string, double> scalars;
  std::map<std::string, Tensor> tensors;
};

/// One parameter group's saved options and size.
struct ParamGroupDict {
  int64_t num_params = 0;
  OptionMap options;
};

/// An optimizer's complete state, keyed by parameter position (group index, index within the group), so
/// it can be loaded into a freshly constructed optimizer over a freshly constructed model.
struct OptimizerStateDict {
  std::map<std::pair<size_t, size_t>, ParamStateDict> state;
  std::vector<ParamGroupDict> param_groups;

  /// The flat form for tensor checkpoints (safetensors): "state.<i>.<field>" where i counts parameters across
  /// groups (counters as int64 0-D, reals as float64 0-D), "param_groups.<g>.<option>" (reals as float64
  /// 0-D, bools/integers as int64 0-D, betas as float64 [2], strings as int64 character codes) and
  /// "param_groups.<g>.params" (int64 [n]: the indices i of the group's parameters).
  std::map<std::string, Tensor> to_tensors() const;
  /// Parses the flat form back; malformed entries are errors naming the key.
  static OptimizerStateDict from_tensors(const std::map<std::string, Tensor>& flat);
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Adds a group (its options default to the optimizer's); a parameter may be in only one group.
  void add_param_group(const OptimizerParamGroup& param_group);
  /// Clears the parameters' gradients: set_to_none drops them (PyTorch 2's default), otherwise zero-fills.
  void zero_grad(bool set_to_none = true);
  /// One optimization step over every parameter that has a gradient. With a closure, evaluates it first
  /// (with gradients enabled) and returns its loss; otherwise returns an undefined tensor.
  virtual Tensor step(LossClosure closure = nullptr) = 0;

  std::vector<OptimizerParamGroup>& param_groups() { return param_groups_; }
  const std::vector<OptimizerParamGroup>& param_groups() const { return param_groups_; }
  /// The options new groups start from.
  OptimizerOptions& defaults() { return *defaults_; }
  const OptimizerOptions& defaults() const { return *defaults_; }
  /// Every parameter, group by group.
  TensorList parameters() const;
  /// Number of parameters over all groups.
  size_t size() const;
  /// "Adam", "SGD", ... (used in error messages).
  const std::string& name() const { return name_; }

  /// True once a step has created state for this parameter.
  bool has_state(const Tensor& param) const;
  /// The state of one parameter (cast to e.g. AdamParamState); an error when it has none yet.
  OptimizerParamState& state(const Tensor& param);

  /// A deep copy of the state and the group options.
  OptimizerStateDict state_dict() const;
  /// Restores state and group options. Everything is validated (group sizes, field names, tensor shapes,
  /// errors naming the flat key) before anything changes; tensors are copied into the parameters' dtype.
  void load_state_dict(const OptimizerStateDict& state_dict);

 protected:
  Optimizer(std::unique_ptr<OptimizerOptions> defaults, std::string name);
  /// Adds the groups; called by derived constructors, once their option checks are in place.
  void add_param_groups(const std::vector<OptimizerParamGroup>& param_groups);
  /// Throws xg::Error when options are invalid (negative lr, ...).
  virtual void check_options(const OptimizerOptions& options) const = 0;
  /// A fresh, empty state struct for `param` (filled by a step, or by load_state_dict).
  virtual std::unique_ptr<OptimizerParamState> make_param_state(const Tensor& param) const = 0;
  /// The state of `param`, created empty on first use.
  template <class State>
  State& param_state(const Tensor& param) {
    auto& slot = state_[param.impl()];
    if (!slot) slot = make_param_state(param);
    return static_cast<State&>(*slot);
  }
  /// Calls the closure with gradients enabled (an undefined tensor when there is no closure).
  static Tensor evaluate_closure(const LossClosure& closure);
  /// Checks that a gradient matches its parameter (shape, dtype); names the optimizer.
  void check_grad(const Tensor& param, const Tensor& grad) const;

  std::string name_;
  std::unique_ptr<OptimizerOptions> defaults_;
  std::vector<OptimizerParamGroup> param_groups_;
  /// Keyed by the parameter's TensorImpl; the shared_ptr in the key keeps the address from being reused.
  std::unordered_map<std::shared_ptr<TensorImpl>, std::unique_ptr<OptimizerParamState>> state_;
};

namespace detail {
/// Bumps the version counter of a tensor written through raw pointers (autograd's in-place check).
inline void bump_version(const Tensor& t) { ++t.impl()->storage->version; }

/// Calls f(float{}) or f(double{}) for a floating-point tensor.
template <class F>
decltype(auto) dispatch_float(const Tensor& t, F&& f) {
  if (t.dtype() == kFloat64) return f(double{});
  return f(float{});
}

/// A state tensor in its parameter's dtype: zeros (or `fill`) when undefined, converted when the parameter
/// changed dtype since (Module::to).
inline void ensure_state_tensor(Tensor& state, const Tensor& param, double fill = 0.0) {
  if (!state.defined()) state = full(param.shape(), fill, param.dtype());
  else if (state.dtype() != param.dtype()) state = state.to(param.dtype());
}
}  // namespace detail

}  // namespace xg::optim

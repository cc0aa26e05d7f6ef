#include "xgrad/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xg::optim {

// ---- options ----------------------------------------------------------------------------------
void OptimizerOptions::set_momentum(double) {
  XG_ERROR("set_momentum: this optimizer has no momentum (OneCycleLR's cycle_momentum needs momentum or betas)");
}

namespace detail {
namespace {
std::string describe(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, double>) return fmt::format("the real {}", v);
        else if constexpr (std::is_same_v<V, int64_t>) return fmt::format("the integer {}", v);
        else if constexpr (std::is_same_v<V, std::string>) return fmt::format("the string '{}'", v);
        else return fmt::format("a list of {} reals", v.size());
      },
      value);
}
}  // namespace

const OptionValue* OptionReader::find(const char* name, bool required) {
  auto it = in.find(name);
  if (it == in.end()) {
    XG_CHECK(!required, "load_state_dict: the option {}{} is missing from the state dict", prefix, name);
    return nullptr;
  }
  consumed.insert(name);
  return &it->second;
}

void OptionReader::operator()(const char* name, double& value) {
  const OptionValue* v = find(name, true);
  if (auto* d = std::get_if<double>(v)) value = *d;
  else if (auto* i = std::get_if<int64_t>(v)) value = static_cast<double>(*i);
  else XG_ERROR("load_state_dict: the option {}{} should be a real number, got {}", prefix, name, describe(*v));
}

void OptionReader::operator()(const char* name, bool& value) {
  const OptionValue* v = find(name, true);
  if (auto* i = std::get_if<int64_t>(v)) value = *i != 0;
  else if (auto* d = std::get_if<double>(v)) value = *d != 0;
  else XG_ERROR("load_state_dict: the option {}{} should be a bool (0 or 1), got {}", prefix, name, describe(*v));
}

void OptionReader::operator()(const char* name, int64_t& value) {
  const OptionValue* v = find(name, true);
  if (auto* i = std::get_if<int64_t>(v)) value = *i;
  else if (auto* d = std::get_if<double>(v); d && std::floor(*d) == *d) value = static_cast<int64_t>(*d);
  else XG_ERROR("load_state_dict: the option {}{} should be an integer, got {}", prefix, name, describe(*v));
}

void OptionReader::operator()(const char* name, std::tuple<double, double>& value) {
  const OptionValue* v = find(name, true);
  auto* list = std::get_if<std::vector<double>>(v);
  XG_CHECK(list && list->size() == 2, "load_state_dict: the option {}{} should be a pair of reals, got {}", prefix,
           name, describe(*v));
  value = {(*list)[0], (*list)[1]};
}

void OptionReader::operator()(const char* name, std::optional<int64_t>& value) {
  const OptionValue* v = find(name, false);
  if (v == nullptr) {
    value.reset();
    return;
  }
  int64_t loaded = 0;
  (*this)(name, loaded);
  value = loaded;
}

void OptionReader::operator()(const char* name, std::optional<std::string>& value) {
  const OptionValue* v = find(name, false);
  if (v == nullptr) {
    value.reset();
    return;
  }
  auto* text = std::get_if<std::string>(v);
  XG_CHECK(text, "load_state_dict: the option {}{} should be a string, got {}", prefix, name, describe(*v));
  value = *text;
}

void OptionReader::check_all_consumed() const {
  for (const auto& entry : in)
    XG_CHECK(consumed.count(entry.first) != 0, "load_state_dict: unexpected option {}{} in the state dict", prefix,
             entry.first);
}
}  // namespace detail

// ---- parameter groups ---------------------------------------------------------------------------
OptimizerParamGroup::OptimizerParamGroup(TensorList params) : params_(std::move(params)) {}

OptimizerParamGroup::OptimizerParamGroup(TensorList params, std::unique_ptr<OptimizerOptions> options)
    : params_(std::move(params)), options_(std::move(options)) {}

OptimizerParamGroup::OptimizerParamGroup(TensorList params, const OptimizerOptions& options)
    : params_(std::move(params)), options_(options.clone()) {}

OptimizerParamGroup::OptimizerParamGroup(const OptimizerParamGroup& other)
    : params_(other.params_), options_(other.options_ ? other.options_->clone() : nullptr) {}

OptimizerParamGroup& OptimizerParamGroup::operator=(const OptimizerParamGroup& other) {
  if (this != &other) {
    params_ = other.params_;
    options_ = other.options_ ? other.options_->clone() : nullptr;
  }
  return *this;
}

OptimizerOptions& OptimizerParamGroup::options() {
  XG_CHECK(options_ != nullptr, "OptimizerParamGroup: this group has no options (add it to an optimizer first)");
  return *options_;
}

const OptimizerOptions& OptimizerParamGroup::options() const {
  XG_CHECK(options_ != nullptr, "OptimizerParamGroup: this group has no options (add it to an optimizer first)");
  return *options_;
}

// ---- optimizer ------------------------------------------------------------------------------------
Optimizer::Optimizer(std::unique_ptr<OptimizerOptions> defaults, std::string name)
    : name_(std::move(name)), defaults_(std::move(defaults)) {}

void Optimizer::add_param_groups(const std::vector<OptimizerParamGroup>& param_groups) {
  check_options(*defaults_);
  // PyTorch rejects an empty list; here SGD(TensorList{}) arrives as one empty group, so count the
  // parameters. (PyTorch accepts [{'params': []}]; an optimizer that can never update anything is
  // rejected here all the same: it is almost always model->parameters() of the wrong module.)
  size_t count = 0;
  for (const auto& group : param_groups) count += group.params().size();
  XG_CHECK(count > 0, "{}: optimizer got an empty parameter list (in {} parameter group(s))", name_, param_groups.size());
  for (const auto& group : param_groups) add_param_group(group);
}

void Optimizer::add_param_group(const OptimizerParamGroup& param_group) {
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& group : param_groups_)
    for (const Tensor& p : group.params()) seen.insert(p.impl().get());
  const auto& params = param_group.params();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    XG_CHECK(p.defined(), "{}: parameter {} of the new parameter group is undefined", name_, i);
    XG_CHECK(p.is_floating_point(), "{}: can only optimize floating-point tensors, parameter {} of the new group is {}",
             name_, i, p.dtype());
    XG_CHECK(p.is_leaf(), "{}: can't optimize a non-leaf tensor (parameter {} of the new group has a grad_fn)", name_, i);
    XG_CHECK(seen.insert(p.impl().get()).second,
             "{}: some parameters appear in more than one parameter group (parameter {} of the new group, shape {})",
             name_, i, shape_string(p.shape()));
  }
  OptimizerParamGroup group(params, param_group.has_options() ? param_group.options().clone() : defaults_->clone());
  check_options(group.options());
  param_groups_.push_back(std::move(group));
}

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    for (const Tensor& p : group.params()) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        p.set_grad({});
      } else {
        if (grad.grad_fn()) grad.detach_();  // a create_graph gradient leaves its graph, as in PyTorch
        grad.zero_();
      }
    }
  }
}

TensorList Optimizer::parameters() const {
  TensorList all;
  for (const auto& group : param_groups_) all.insert(all.end(), group.params().begin(), group.params().end());
  return all;
}

size_t Optimizer::size() const {
  size_t n = 0;
  for (const auto& group : param_groups_) n += group.params().size();
  return n;
}

bool Optimizer::has_state(const Tensor& param) const {
  return param.defined() && state_.count(param.impl()) != 0;
}

OptimizerParamState& Optimizer::state(const Tensor& param) {
  XG_CHECK(param.defined(), "{}: state: the parameter is undefined", name_);
  auto it = state_.find(param.impl());
  XG_CHECK(it != state_.end(), "{}: state: this parameter (shape {}) has no state yet (no step has updated it)", name_,
           shape_string(param.shape()));
  return *it->second;
}

Tensor Optimizer::evaluate_closure(const LossClosure& closure) {
  if (!closure) return {};
  AutoGradMode enable_grad(true);
  return closure();
}

void Optimizer::check_grad(const Tensor& param, const Tensor& grad) const {
  XG_CHECK(grad.shape() == param.shape() && grad.dtype() == param.dtype(),
           "{}: a parameter of shape {} and dtype {} has a gradient of shape {} and dtype {}", name_,
           shape_string(param.shape()), param.dtype(), shape_string(grad.shape()), grad.dtype());
  // The fused update loops write the parameter as one flat array. A non-contiguous parameter (a
  // registered view, a strided from_blob) would need a scratch copy keyed apart from its state; until
  // then it is refused here rather than updated wrongly.
  XG_CHECK(param.is_contiguous(),
           "{}: a parameter of shape {} is not contiguous (strides {}); optimizers update contiguous parameters only "
           "(register a contiguous tensor, e.g. param.contiguous(), as the parameter)",
           name_, shape_string(param.shape()), shape_string(param.strides()));
}

// ---- state dicts ----------------------------------------------------------------------------------
namespace {

/// Copies a state struct's fields into a ParamStateDict (tensors deep-copied).
class StateSaver final : public StateFields {
 public:
  explicit StateSaver(ParamStateDict& out) : out_(out) {}
  bool loading() const override { return false; }
  void counter(const std::string& name, int64_t& value) override { out_.counters[name] = value; }
  void scalar(const std::string& name, double& value) override { out_.scalars[name] = value; }
  void tensor(const std::string& name, Tensor& value, bool, const std::optional<Shape>&, std::optional<Dtype>) override {
    if (value.defined()) out_.tensors[name] = value.detach().clone();
  }

 private:
  ParamStateDict& out_;
};

/// Fills a fresh state struct from a ParamStateDict, validating names, shapes and dtypes.
class StateLoader final : public StateFields {
 public:
  StateLoader(const ParamStateDict& in, const Tensor& param, std::string prefix, const std::string& optimizer)
      : in_(in), param_(param), prefix_(std::move(prefix)), optimizer_(optimizer) {}
  bool loading() const override { return true; }

  void counter(const std::string& name, int64_t& value) override {
    if (auto it = in_.counters.find(name); it != in_.counters.end()) {
      value = it->second;
    } else if (auto t = in_.tensors.find(name); t != in_.tensors.end() && t->second.numel() == 1 &&
                                                 t->second.dim() == 0) {
      value = t->second.item<int64_t>();
    } else {
      XG_ERROR("{}: load_state_dict: {}{} (an integer) is missing from the state dict", optimizer_, prefix_, name);
    }
    consumed_.insert(name);
  }

  void scalar(const std::string& name, double& value) override {
    if (auto it = in_.scalars.find(name); it != in_.scalars.end()) {
      value = it->second;
    } else if (auto t = in_.tensors.find(name); t != in_.tensors.end() && t->second.dim() == 0) {
      value = t->second.item<double>();  // the flat form cannot tell a 0-D state tensor from a real
    } else {
      XG_ERROR("{}: load_state_dict: {}{} (a real number) is missing from the state dict", optimizer_, prefix_, name);
    }
    consumed_.insert(name);
  }

  void tensor(const std::string& name, Tensor& value, bool required, const std::optional<Shape>& shape,
              std::optional<Dtype> dtype) override {
    auto it = in_.tensors.find(name);
    if (it == in_.tensors.end()) {
      XG_CHECK(!required, "{}: load_state_dict: {}{} is missing from the state dict", optimizer_, prefix_, name);
      value = Tensor();
      return;
    }
    consumed_.insert(name);
    const Tensor& src = it->second;
    XG_CHECK(src.defined(), "{}: load_state_dict: {}{} is undefined", optimizer_, prefix_, name);
    const Shape expected = shape.value_or(param_.shape());
    bool matches = src.dim() == static_cast<int64_t>(expected.size());
    for (size_t d = 0; matches && d < expected.size(); ++d) matches = expected[d] < 0 || expected[d] == src.size(d);
    XG_CHECK(matches, "{}: load_state_dict: {}{} has shape {}, expected {}", optimizer_, prefix_, name,
             shape_string(src.shape()), shape_string(expected));
    XG_CHECK(src.is_floating_point(), "{}: load_state_dict: {}{} should be a floating-point tensor, got {}",
             optimizer_, prefix_, name, src.dtype());
    NoGradGuard no_grad;
    const Dtype target = dtype.value_or(param_.dtype());
    value = src.detach().to(target);
    if (value.impl()->storage == src.impl()->storage) value = value.clone();  // never alias the dict
  }

  void check_all_consumed() const {
    auto check = [&](const auto& entries) {
      for (const auto& entry : entries)
        XG_CHECK(consumed_.count(entry.first) != 0, "{}: load_state_dict: unexpected key {}{} in the state dict",
                 optimizer_, prefix_, entry.first);
    };
    check(in_.counters);
    check(in_.scalars);
    check(in_.tensors);
  }

 private:
  const ParamStateDict& in_;
  const Tensor& param_;
  std::string prefix_;
  const std::string& optimizer_;
  std::set<std::string> consumed_;
};

}  // namespace

OptimizerStateDict Optimizer::state_dict() const {
  OptimizerStateDict out;
  NoGradGuard no_grad;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto& params = param_groups_[g].params();
    out.param_groups.push_back({static_cast<int64_t>(params.size()), param_groups_[g].options().to_map()});
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = state_.find(params[i].impl());
      if (it == state_.end()) continue;
      ParamStateDict& entry = out.state[{g, i}];
      StateSaver saver(entry);
      it->second->fields(saver);
    }
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerStateDict& state_dict) {
  XG_CHECK(state_dict.param_groups.size() == param_groups_.size(),
           "{}: load_state_dict: the state dict has {} parameter groups, the optimizer has {}", name_,
           state_dict.param_groups.size(), param_groups_.size());
  std::vector<size_t> offsets;
  size_t offset = 0;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    const auto saved = state_dict.param_groups[g].num_params;
    const auto have = param_groups_[g].params().size();
    XG_CHECK(saved == static_cast<int64_t>(have),
             "{}: load_state_dict: parameter group {} has {} parameters in the state dict and {} in the optimizer",
             name_, g, saved, have);
    offsets.push_back(offset);
    offset += have;
  }
  // Build everything first: a failed load leaves the optimizer unchanged.
  std::vector<std::unique_ptr<OptimizerOptions>> options;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    auto loaded = param_groups_[g].options().clone();
    loaded->from_map(state_dict.param_groups[g].options, fmt::format("param_groups.{}.", g));
    check_options(*loaded);
    options.push_back(std::move(loaded));
  }
  std::unordered_map<std::shared_ptr<TensorImpl>, std::unique_ptr<OptimizerParamState>> state;
  for (const auto& [position, entry] : state_dict.state) {
    const auto [g, i] = position;
    XG_CHECK(g < param_groups_.size() && i < param_groups_[g].params().size(),
             "{}: load_state_dict: the state dict has state for parameter {} of group {}, which does not exist", name_,
             i, g);
    const Tensor& param = param_groups_[g].params()[i];
    auto fresh = make_param_state(param);
    StateLoader loader(entry, param, fmt::format("state.{}.", offsets[g] + i), name_);
    fresh->fields(loader);
    loader.check_all_consumed();
    state[param.impl()] = std::move(fresh);
  }
  for (size_t g = 0; g < param_groups_.size(); ++g) param_groups_[g].set_options(std::move(options[g]));
  state_ = std::move(state);
}

// ---- flat form ------------------------------------------------------------------------------------
namespace {
Tensor int64_scalar(int64_t value) {
  Tensor t = scalar_tensor(0, kInt64);
  t.contiguous_data<int64_t>()[0] = value;
  return t;
}

Tensor int64_vector(const std::vector<int64_t>& values) {
  Tensor t = zeros({static_cast<int64_t>(values.size())}, kInt64);
  std::copy(values.begin(), values.end(), t.contiguous_data<int64_t>());
  return t;
}

/// Parses "<prefix>.<index>.<rest>" into index and rest; false when the key does not start with prefix.
bool split_key(const std::string& key, const std::string& prefix, int64_t& index, std::string& rest) {
  if (key.compare(0, prefix.size() + 1, prefix + ".") != 0) return false;
  const size_t start = prefix.size() + 1;
  const size_t dot = key.find('.', start);
  XG_CHECK(dot != std::string::npos && dot > start && dot + 1 < key.size(),
           "optimizer state dict: malformed key '{}' (expected {}.<index>.<name>)", key, prefix);
  const std::string number = key.substr(start, dot - start);
  XG_CHECK(std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }),
           "optimizer state dict: malformed key '{}' ('{}' is not an index)", key, number);
  index = std::stoll(number);
  rest = key.substr(dot + 1);
  return true;
}
}  // namespace

std::map<std::string, Tensor> OptimizerStateDict::to_tensors() const {
  std::map<std::string, Tensor> flat;
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (size_t g = 0; g < param_groups.size(); ++g) {
    const auto& group = param_groups[g];
    offsets.push_back(offset);
    std::vector<int64_t> indices(static_cast<size_t>(group.num_params));
    for (int64_t i = 0; i < group.num_params; ++i) indices[static_cast<size_t>(i)] = offset + i;
    offset += group.num_params;
    const std::string prefix = fmt::format("param_groups.{}.", g);
    flat[prefix + "params"] = int64_vector(indices);
    for (const auto& [name, value] : group.options) {
      Tensor t = std::visit(
          [](const auto& v) -> Tensor {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, double>) return scalar_tensor(v, kFloat64);
            else if constexpr (std::is_same_v<V, int64_t>) return int64_scalar(v);
            else if constexpr (std::is_same_v<V, std::string>) return int64_vector(std::vector<int64_t>(v.begin(), v.end()));
            else return tensor(v, {static_cast<int64_t>(v.size())}, kFloat64);
          },
          value);
      flat[prefix + name] = t;
    }
  }
  for (const auto& [position, entry] : state) {
    const auto [g, i] = position;
    XG_CHECK(g < param_groups.size(), "OptimizerStateDict::to_tensors: state for group {} but only {} groups", g,
             param_groups.size());
    const std::string prefix = fmt::format("state.{}.", offsets[g] + static_cast<int64_t>(i));
    for (const auto& [name, value] : entry.counters) flat[prefix + name] = int64_scalar(value);
    for (const auto& [name, value] : entry.scalars) flat[prefix + name] = scalar_tensor(value, kFloat64);
    for (const auto& [name, value] : entry.tensors) flat[prefix + name] = value;
  }
  return flat;
}

OptimizerStateDict OptimizerStateDict::from_tensors(const std::map<std::string, Tensor>& flat) {
  OptimizerStateDict out;
  std::map<int64_t, std::vector<int64_t>> group_params;
  std::map<int64_t, OptionMap> group_options;
  std::map<int64_t, ParamStateDict> state_by_index;
  for (const auto& [key, value] : flat) {
    int64_t index = 0;
    std::string rest;
    XG_CHECK(value.defined(), "optimizer state dict: {} is undefined", key);
    if (split_key(key, "param_groups", index, rest)) {
      if (rest == "params") {
        XG_CHECK(value.dtype() == kInt64 && value.dim() == 1,
                 "optimizer state dict: {} should be a 1-D int64 tensor of parameter indices, got {} {}", key,
                 value.dtype(), shape_string(value.shape()));
        const Tensor data_dense = xg::detail::dense(value);
        const int64_t* data = data_dense.contiguous_data<int64_t>();
        group_params[index] = std::vector<int64_t>(data, data + value.numel());
      } else if (value.dim() == 0) {
        if (value.dtype() == kInt64) group_options[index][rest] = value.item<int64_t>();
        else group_options[index][rest] = value.item<double>();
      } else {
        XG_CHECK(value.dim() == 1, "optimizer state dict: {} should be 0-D or 1-D, got shape {}", key,
                 shape_string(value.shape()));
        if (value.dtype() == kInt64) {
          const Tensor data_dense = xg::detail::dense(value);
          const int64_t* data = data_dense.contiguous_data<int64_t>();
          std::string text;
          for (int64_t c = 0; c < value.numel(); ++c) text.push_back(static_cast<char>(data[c]));
          group_options[index][rest] = text;
        } else {
          Tensor as_double = value.detach().to(kFloat64);
          const Tensor data_dense = xg::detail::dense(as_double);
          const double* data = data_dense.contiguous_data<double>();
          group_options[index][rest] = std::vector<double>(data, data + value.numel());
        }
      }
    } else if (split_key(key, "state", index, rest)) {
      ParamStateDict& entry = state_by_index[index];
      if (value.dtype() == kInt64 && value.dim() == 0) entry.counters[rest] = value.item<int64_t>();
      else entry.tensors[rest] = value;
    } else {
      XG_ERROR("optimizer state dict: unexpected key '{}' (expected state.<i>.<name> or param_groups.<g>.<name>)", key);
    }
  }
  // Groups must be numbered 0..G-1 and list their parameters.
  std::map<int64_t, std::pair<size_t, size_t>> position_of;
  for (const auto& [g, options] : group_options)
    XG_CHECK(group_params.count(g) != 0, "optimizer state dict: param_groups.{}.params is missing", g);
  for (const auto& [g, indices] : group_params) {
    XG_CHECK(g == static_cast<int64_t>(out.param_groups.size()),
             "optimizer state dict: parameter groups must be numbered from 0 without gaps, found param_groups.{} "
             "after {} groups",
             g, out.param_groups.size());
    ParamGroupDict group;
    group.num_params = static_cast<int64_t>(indices.size());
    if (auto it = group_options.find(g); it != group_options.end()) group.options = it->second;
    for (size_t i = 0; i < indices.size(); ++i) {
      XG_CHECK(position_of.emplace(indices[i], std::make_pair(static_cast<size_t>(g), i)).second,
               "optimizer state dict: parameter index {} appears in more than one group (param_groups.{}.params)",
               indices[i], g);
    }
    out.param_groups.push_back(std::move(group));
  }
  for (auto& [index, entry] : state_by_index) {
    auto it = position_of.find(index);
    XG_CHECK(it != position_of.end(),
             "optimizer state dict: state.{}.* belongs to no parameter group (no param_groups.<g>.params lists {})",
             index, index);
    out.state[it->second] = std::move(entry);
  }
  return out;
}

}  // namespace xg::optim

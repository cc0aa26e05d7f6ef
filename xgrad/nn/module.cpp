#include "xgrad/nn/module.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <sstream>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>

#include "xgrad/autograd/grad_mode.hpp"

namespace xg::nn {

namespace {
void check_name(const char* what, const std::string& name) {
  XG_CHECK(!name.empty(), "{}: the name must not be empty", what);
  XG_CHECK(name.find('.') == std::string::npos, "{}: the name '{}' must not contain '.'", what, name);
}
}  // namespace

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

const std::string& Module::name() const {
  if (type_name_.empty()) {
    // The dynamic type's name, as PyTorch prints a module's class: "Net", "ResidualBlock".
    int status = 0;
    char* demangled = abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status);
    std::string full = status == 0 && demangled ? demangled : typeid(*this).name();
    std::free(demangled);
    size_t colon = full.rfind("::");
    if (colon != std::string::npos) full = full.substr(colon + 2);
    if (full.size() > 4 && full.compare(full.size() - 4, 4, "Impl") == 0) full.resize(full.size() - 4);
    type_name_ = full;
  }
  return type_name_;
}

Tensor& Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_name("register_parameter", name);
  XG_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
           "register_parameter: '{}' is already registered in {}", name, this->name());
  if (tensor.defined()) {
    XG_CHECK(tensor.is_floating_point(), "register_parameter: parameter '{}' must be float32 or float64, got {}", name, tensor.dtype());
    // A parameter is a leaf of its own: cut any history it was computed with.
    tensor = tensor.detach();
    tensor.requires_grad_(requires_grad);
  }
  return parameters_.insert(name, std::move(tensor));
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor) {
  check_name("register_buffer", name);
  XG_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
           "register_buffer: '{}' is already registered in {}", name, this->name());
  return buffers_.insert(name, tensor.defined() ? tensor.detach() : tensor);
}

void Module::register_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name("register_module", name);
  XG_CHECK(module != nullptr, "register_module: submodule '{}' is null", name);
  XG_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name),
           "register_module: '{}' is already registered in {}", name, this->name());
  children_.insert(name, std::move(module));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  XG_CHECK(module != nullptr, "replace_module: submodule '{}' is null", name);
  children_[name] = std::move(module);
}

void Module::unregister(const std::string& name) {
  if (parameters_.contains(name)) parameters_.erase(name);
  else if (buffers_.contains(name)) buffers_.erase(name);
  else if (children_.contains(name)) children_.erase(name);
  else XG_ERROR("unregister: {} has no parameter, buffer or submodule named '{}'", this->name(), name);
}

void Module::collect_named(OrderedDict<Tensor>& out, const std::string& prefix, bool parameters, bool recurse) const {
  for (const auto& [name, tensor] : parameters ? parameters_ : buffers_)
    if (tensor.defined()) out.insert(prefix + name, tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect_named(out, prefix + name + ".", parameters, true);
}

OrderedDict<Tensor> Module::named_parameters(bool recurse) const {
  OrderedDict<Tensor> out;
  collect_named(out, "", true, recurse);
  return out;
}

TensorList Module::parameters(bool recurse) const { return named_parameters(recurse).values(); }

OrderedDict<Tensor> Module::named_buffers(bool recurse) const {
  OrderedDict<Tensor> out;
  collect_named(out, "", false, recurse);
  return out;
}

TensorList Module::buffers(bool recurse) const { return named_buffers(recurse).values(); }

std::vector<std::shared_ptr<Module>> Module::children() const { return children_.values(); }

OrderedDict<std::shared_ptr<Module>> Module::named_children() const { return children_; }

std::shared_ptr<Module> Module::shared_self(const char* op) const {
  // The const forms of libtorch's apply hand out a mutable shared_ptr (as libtorch does), so the owner's
  // pointer is returned without const here, in one place.
  std::shared_ptr<Module> self = std::const_pointer_cast<Module>(weak_from_this().lock());
  // shared_from_this would throw a bare std::bad_weak_ptr; say what to do instead (as libtorch does).
  XG_CHECK(self != nullptr,
           "{}: this {} module is not owned by a std::shared_ptr (it was created on the stack or as a plain "
           "member), so it cannot list itself; create it with std::make_shared<...>(...) or through its "
           "ModuleHolder (as nn::Linear(...) does) (modules/named_modules: or pass include_self=false)",
           op, name());
  return self;
}

std::vector<std::shared_ptr<Module>> Module::modules(bool include_self) {
  if (include_self) shared_self("modules");
  return named_modules("", include_self).values();
}

OrderedDict<std::shared_ptr<Module>> Module::named_modules(const std::string& prefix, bool include_self) {
  OrderedDict<std::shared_ptr<Module>> out;
  // Iterative depth-first walk (a deep Sequential must not recurse).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> stack;
  if (include_self) out.insert(prefix, shared_self("named_modules"));
  for (auto it = children_.items().rbegin(); it != children_.items().rend(); ++it)
    stack.emplace_back(prefix.empty() ? it->first : prefix + "." + it->first, it->second);
  while (!stack.empty()) {
    auto [name, module] = std::move(stack.back());
    stack.pop_back();
    out.insert(name, module);
    const auto& items = module->children_.items();
    for (auto it = items.rbegin(); it != items.rend(); ++it) stack.emplace_back(name + "." + it->first, it->second);
  }
  return out;
}

void Module::walk_descendants(const std::string& prefix,
                              const std::function<void(const std::string&, const std::shared_ptr<Module>&)>& fn) const {
  // Iterative (a deep Sequential must not recurse); a module's children are read after fn saw it.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> stack;
  auto push_children = [&](const std::string& name, const Module& module) {
    const auto& items = module.children_.items();
    for (auto it = items.rbegin(); it != items.rend(); ++it)
      stack.emplace_back(name.empty() ? it->first : name + "." + it->first, it->second);
  };
  push_children(prefix, *this);
  while (!stack.empty()) {
    auto [name, module] = std::move(stack.back());
    stack.pop_back();
    fn(name, module);
    push_children(name, *module);
  }
}

void Module::apply(const ModuleApplyFunction& fn) {
  fn(*this);
  walk_descendants("", [&](const std::string&, const std::shared_ptr<Module>& m) { fn(*m); });
}

void Module::apply(const ConstModuleApplyFunction& fn) const {
  fn(*this);
  walk_descendants("", [&](const std::string&, const std::shared_ptr<Module>& m) { fn(*m); });
}

void Module::apply(const NamedModuleApplyFunction& fn, const std::string& name_prefix) {
  fn(name_prefix, *this);
  walk_descendants(name_prefix, [&](const std::string& name, const std::shared_ptr<Module>& m) { fn(name, *m); });
}

void Module::apply(const ConstNamedModuleApplyFunction& fn, const std::string& name_prefix) const {
  fn(name_prefix, *this);
  walk_descendants(name_prefix, [&](const std::string& name, const std::shared_ptr<Module>& m) { fn(name, *m); });
}

void Module::apply(const ModulePointerApplyFunction& fn) const {
  fn(shared_self("apply"));
  walk_descendants("", [&](const std::string&, const std::shared_ptr<Module>& m) { fn(m); });
}

void Module::apply(const NamedModulePointerApplyFunction& fn, const std::string& name_prefix) const {
  fn(name_prefix, shared_self("apply"));
  walk_descendants(name_prefix, fn);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (const Tensor& p : parameters()) {
    if (!p.grad().defined()) continue;
    if (set_to_none) {
      p.set_grad(Tensor());
    } else {
      NoGradGuard no_grad;
      Tensor g = p.grad();
      g.detach_();
      g.zero_();
    }
  }
}

void Module::requires_grad_(bool requires) {
  for (const Tensor& p : parameters()) {
    Tensor handle = p;
    handle.requires_grad_(requires);
  }
}

void Module::to(Dtype dtype) {
  XG_CHECK(is_floating(dtype), "Module::to: parameters and buffers can only be converted to float32 or float64, got {}", dtype);
  NoGradGuard no_grad;
  auto convert = [dtype](const Tensor& t) {
    if (!t.defined() || !t.is_floating_point() || t.dtype() == dtype) return;
    Tensor converted = t.to(dtype);
    // Same handle, new data (PyTorch's set_data): views taken before keep the old storage.
    TensorImpl& impl = *t.impl();
    impl.storage = converted.impl()->storage;
    xg::detail::set_geometry(impl, converted.impl()->sizes, converted.impl()->strides, converted.impl()->storage_offset);
    if (t.impl()->grad) t.impl()->grad = Tensor(t.impl()->grad).to(dtype).impl();
  };
  for (const Tensor& p : parameters()) convert(p);
  for (const Tensor& b : buffers()) convert(b);
}

int64_t Module::num_parameters(bool only_trainable) const {
  int64_t total = 0;
  for (const Tensor& p : parameters())
    if (!only_trainable || p.requires_grad()) total += p.numel();
  return total;
}

OrderedDict<Tensor> Module::state_dict() const {
  OrderedDict<Tensor> out;
  for (const auto& [name, t] : named_parameters()) out.insert(name, t);
  for (const auto& [name, t] : named_buffers()) out.insert(name, t);
  return out;
}

void Module::load_state_dict(const OrderedDict<Tensor>& state, bool strict) {
  OrderedDict<Tensor> own = state_dict();
  std::vector<std::string> missing, unexpected;
  for (const auto& [name, tensor] : own) {
    const Tensor* incoming = state.find(name);
    if (incoming == nullptr) {
      missing.push_back(name);
      continue;
    }
    XG_CHECK(incoming->defined(), "load_state_dict: the value for '{}' is undefined", name);
    XG_CHECK(incoming->shape() == tensor.shape(),
             "load_state_dict: size mismatch for {}: copying a tensor of shape {} from the state dict, the shape in the current "
             "model is {}",
             name, shape_string(incoming->shape()), shape_string(tensor.shape()));
    XG_CHECK(incoming->is_floating_point() == tensor.is_floating_point(),
             "load_state_dict: dtype mismatch for {}: the state dict holds {}, the model holds {}", name, incoming->dtype(), tensor.dtype());
  }
  for (const auto& [name, tensor] : state)
    if (!own.contains(name)) unexpected.push_back(name);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    XG_ERROR("load_state_dict: error(s) in loading the state dict for {}: missing keys: [{}]; unexpected keys: [{}]", name(),
             fmt::join(missing, ", "), fmt::join(unexpected, ", "));
  }
  NoGradGuard no_grad;
  for (auto& [name, tensor] : own) {
    const Tensor* incoming = state.find(name);
    if (incoming == nullptr) continue;
    Tensor target = tensor;
    target.copy_(*incoming);
  }
}

void Module::pretty_print(std::ostream& out, int indent) const {
  out << name() << "(" << extra_repr();
  if (children_.empty()) {
    out << ")";
  } else {
    out << "\n";
    for (const auto& [name, child] : children_) {
      out << std::string(indent + 2, ' ') << "(" << name << "): ";
      child->pretty_print(out, indent + 2);
      out << "\n";
    }
    out << std::string(indent, ' ') << ")";
  }
  if (!parameters_.empty()) {
    std::vector<std::string> shapes;
    int64_t count = 0;
    for (const auto& [name, p] : parameters_) {
      if (!p.defined()) continue;
      shapes.push_back(name + " " + shape_string(p.shape()));
      count += p.numel();
    }
    out << "  # " << fmt::format("{}", fmt::join(shapes, ", ")) << "; " << count << " parameters";
  }
}

std::string Module::to_string() const {
  std::ostringstream out;
  pretty_print(out);
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Module& module) {
  module.pretty_print(out);
  return out;
}

}  // namespace xg::nn

// ---- clone ------------------------------------------------------------------------------------------
namespace xg::nn {

namespace {
std::unordered_map<std::type_index, module_detail::Cloner>& cloners() {
  static std::unordered_map<std::type_index, module_detail::Cloner> registry;  // filled during static initialisation
  return registry;
}
}  // namespace

bool module_detail::register_cloner(const std::type_info& type, Cloner cloner) {
  cloners()[std::type_index(type)] = cloner;
  return true;
}

std::shared_ptr<Module> Module::clone() const {
  auto found = cloners().find(std::type_index(typeid(*this)));
  XG_CHECK(found != cloners().end(),
           "clone: {} cannot be cloned: its constructor needs arguments that xgrad cannot recover (no `options` member "
           "to construct it from). Derive it from nn::Cloneable<{}Impl> instead of nn::Module and define reset(), as in "
           "libtorch",
           name(), name());
  return found->second(*this);
}

void Module::copy_state_from(const Module& source) {
  NoGradGuard no_grad;
  // Match dtypes first: load_state_dict would silently cast the values to this module's dtype.
  const OrderedDict<Tensor> theirs = source.state_dict();
  std::optional<Dtype> floating;
  for (const auto& [key, tensor] : theirs) {
    if (!tensor.defined() || !tensor.is_floating_point()) continue;
    XG_CHECK(!floating || *floating == tensor.dtype(), "clone: {} holds floating tensors of two dtypes ({} and {}, at '{}'); cannot copy",
             source.name(), *floating, tensor.dtype(), key);
    floating = tensor.dtype();
  }
  if (floating) to(*floating);
  try {
    load_state_dict(theirs, /*strict=*/true);
  } catch (const Error& e) {
    XG_ERROR("clone: the copy of {} does not have the original's structure (was it changed after construction?): {}", source.name(),
             e.what());
  }
  const OrderedDict<Tensor> own_parameters = named_parameters();
  for (const auto& [key, tensor] : source.named_parameters())
    if (const Tensor* mine = own_parameters.find(key); mine != nullptr && mine->defined() && tensor.defined()) {
      Tensor handle = *mine;  // shares the parameter
      handle.requires_grad_(tensor.requires_grad());
    }
  // Training mode, module by module (a frozen BatchNorm in eval inside a training model stays so).
  std::function<void(Module&, const Module&)> copy_modes = [&](Module& mine, const Module& other) {
    mine.training_ = other.training_;
    for (const auto& [key, child] : other.children_)
      if (auto* own_child = mine.children_.find(key)) copy_modes(**own_child, *child);
  };
  copy_modes(*this, source);
}

}  // namespace xg::nn

#pragma once
/// nn::Module: parameters, buffers and submodules registered by name, so that everything a model
/// needs besides its forward pass (parameters(), named_parameters(), train()/eval(), zero_grad(),
/// to(dtype), state_dict(), printing) is written once, here. A layer is its constructor and forward.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/autograd/tensor.hpp"

namespace xg::nn {

/// An insertion-ordered name -> value list (PyTorch's OrderedDict), with a hash index so that lookups and
/// inserts take constant time (a file of 100,000 tensors loaded in quadratic time without it).
template <class V>
class OrderedDict {
 public:
  using Item = std::pair<std::string, V>;
  V& insert(const std::string& key, V value);
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  V* find(const std::string& key);
  const V* find(const std::string& key) const;
  /// The value for key; throws xg::Error naming the key when absent.
  V& operator[](const std::string& key);
  const V& operator[](const std::string& key) const;
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<std::string> keys() const;
  std::vector<V> values() const;
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }
  void erase(const std::string& key);

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;  // key -> position in items_
};

class Module;

namespace module_detail {
struct ModuleHooks;
}

/// What register_*_hook returns: remove() unregisters the hook (a no-op when already removed or when the
/// module is gone), as torch.utils.hooks.RemovableHandle.
class RemovableHandle {
 public:
  RemovableHandle() = default;
  void remove();
  /// Whether the hook is still registered.
  bool active() const;

 private:
  friend class Module;
  RemovableHandle(std::weak_ptr<module_detail::ModuleHooks> hooks, uint64_t id) : hooks_(std::move(hooks)), id_(id) {}
  std::weak_ptr<module_detail::ModuleHooks> hooks_;
  uint64_t id_ = 0;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  /// `type_name` is what printing shows ("Linear"); by default the C++ class name without "Impl".
  explicit Module(std::string type_name = "");
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& name() const;

  /// Registers a learnable tensor (requires_grad set unless told otherwise); returns the handle to keep.
  Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  /// Registers state that is saved and converted with the module but not learned (running stats).
  Tensor& register_buffer(const std::string& name, Tensor tensor);
  /// Registers a submodule; its parameters appear as "name.param".
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module needs an nn::Module");
    register_child(name, module);
    return module;
  }
  /// Holder overload: register_module("fc", nn::Linear(3, 4)) returns the same holder.
  template <class Holder, class = decltype(std::declval<Holder>().ptr())>
  Holder register_module(const std::string& name, Holder holder) {
    register_child(name, holder.ptr());
    return holder;
  }
  /// Replaces a registered submodule (e.g. a new classifier head for transfer learning).
  template <class M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    replace_child(name, module);
    return module;
  }
  /// Drops a registered parameter or buffer (keeps nothing behind).
  void unregister(const std::string& name);

  /// Parameters (of this module and, with recurse, all submodules), in registration order.
  TensorList parameters(bool recurse = true) const;
  /// ("features.0.weight", tensor) pairs.
  OrderedDict<Tensor> named_parameters(bool recurse = true) const;
  TensorList buffers(bool recurse = true) const;
  OrderedDict<Tensor> named_buffers(bool recurse = true) const;
  /// Direct submodules.
  std::vector<std::shared_ptr<Module>> children() const;
  OrderedDict<std::shared_ptr<Module>> named_children() const;
  /// This module and all descendants, depth first.
  std::vector<std::shared_ptr<Module>> modules(bool include_self = true);
  OrderedDict<std::shared_ptr<Module>> named_modules(const std::string& prefix = "", bool include_self = true);

  /// Calls fn on this module, then on every descendant, depth first (libtorch's apply). The named
  /// forms pass dotted names ("features.0"; this module gets name_prefix); the pointer forms pass the
  /// shared_ptr (this module must be owned by one). A module fn adds below the one it visits is visited.
  using ModuleApplyFunction = std::function<void(Module&)>;
  using ConstModuleApplyFunction = std::function<void(const Module&)>;
  using NamedModuleApplyFunction = std::function<void(const std::string&, Module&)>;
  using ConstNamedModuleApplyFunction = std::function<void(const std::string&, const Module&)>;
  using ModulePointerApplyFunction = std::function<void(const std::shared_ptr<Module>&)>;
  using NamedModulePointerApplyFunction = std::function<void(const std::string&, const std::shared_ptr<Module>&)>;
  void apply(const ModuleApplyFunction& fn);
  void apply(const ConstModuleApplyFunction& fn) const;
  void apply(const NamedModuleApplyFunction& fn, const std::string& name_prefix = std::string());
  void apply(const ConstNamedModuleApplyFunction& fn, const std::string& name_prefix = std::string()) const;
  void apply(const ModulePointerApplyFunction& fn) const;
  void apply(const NamedModulePointerApplyFunction& fn, const std::string& name_prefix = std::string()) const;

  /// This module as a T, or nullptr when it is not one (libtorch's as<T>()): T is a module class
  /// (`as<nn::LinearImpl>()`) or a holder (`as<nn::Linear>()`, giving a LinearImpl*).
  template <class T>
  auto* as() noexcept {
    if constexpr (detail_is_module_holder<T>(0)) return dynamic_cast<typename T::ContainedType*>(this);
    else return dynamic_cast<T*>(this);
  }
  template <class T>
  const auto* as() const noexcept {
    if constexpr (detail_is_module_holder<T>(0)) return dynamic_cast<const typename T::ContainedType*>(this);
    else return dynamic_cast<const T*>(this);
  }
  /// The shared_ptr that owns this module (libtorch's ptr()); xg::Error when none does (a module
  /// constructed on the stack).
  std::shared_ptr<Module> ptr() { return shared_self("ptr"); }
  std::shared_ptr<const Module> ptr() const { return shared_self("ptr"); }

  /// Module hooks, as PyTorch's nn.Module hooks. They run when the module is called -- through its holder
  /// (`fc(x)`), a Sequential or an AnyModule -- and not when forward() is called directly (PyTorch's
  /// module(x) versus module.forward(x)). They need a forward taking tensors and returning one tensor;
  /// calling a module with hooks whose forward is otherwise is an xg::Error. Hooks run in registration order.
  ///   pre-hook(module, inputs)               -> nullopt, or the inputs to use instead (same count)
  ///   forward hook(module, inputs, output)   -> nullopt, or the output to use instead
  ///   full backward hook(module, grad_input, grad_output) -> nullopt, or grad_input to use instead.
  ///     grad_input: the gradients w.r.t. the forward's tensor inputs (undefined for an input that does not
  ///     require grad), grad_output w.r.t. its output; it runs once both are known. As in PyTorch, the
  ///     forward's inputs and output then pass through an identity node, and modifying them in place is
  ///     an error (they are views made inside a custom function).
  using ForwardPreHook = std::function<std::optional<TensorList>(Module&, const TensorList& inputs)>;
  using ForwardHook = std::function<std::optional<Tensor>(Module&, const TensorList& inputs, const Tensor& output)>;
  using BackwardHook =
      std::function<std::optional<TensorList>(Module&, const TensorList& grad_input, const TensorList& grad_output)>;
  RemovableHandle register_forward_pre_hook(ForwardPreHook hook);
  RemovableHandle register_forward_hook(ForwardHook hook);
  RemovableHandle register_full_backward_hook(BackwardHook hook);
  /// Whether any hook is registered on this module (not its children).
  bool has_hooks() const;
  /// Runs forward(inputs) with this module's hooks around it (used by module_detail::call_forward).
  Tensor forward_with_hooks(TensorList inputs, const std::function<Tensor(const TensorList&)>& forward);
  /// xg::Error: this module has hooks but its forward is not tensors -> tensor.
  [[noreturn]] void reject_hooks(const char* why) const;

  /// A deep copy, as libtorch's clone(): the same configuration with parameters and buffers of its own
  /// holding copies of this module's values (and their dtype and requires_grad flags), submodules cloned
  /// likewise, the same training mode; gradients and hooks are not copied. Built-in layers and
  /// containers clone, and so does a module of your own that is default-constructible or constructible
  /// from its `options` member (its constructor builds the same structure); otherwise derive from
  /// nn::Cloneable<YourImpl> and define reset(), as in libtorch. Else xg::Error.
  virtual std::shared_ptr<Module> clone() const;
  /// Copies the values, dtype and requires_grad flags of `source`'s parameters and buffers and the
  /// training mode of it and its submodules into this module, which must have the same structure
  /// (names and shapes); xg::Error naming the difference otherwise. clone() uses it.
  void copy_state_from(const Module& source);

  /// Training mode on/off for this module and all descendants (Dropout, BatchNorm look at it).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Clears gradients: set_to_none drops them (PyTorch 2's default), otherwise fills with zeros.
  void zero_grad(bool set_to_none = true);
  /// Freezes (false) or unfreezes every parameter, e.g. for transfer learning.
  void requires_grad_(bool requires = true);
  /// Converts every parameter and buffer of floating type to dtype, in place: handles kept by
  /// layers and optimizers stay valid.
  void to(Dtype dtype);
  /// Number of parameter elements (trainable only when asked).
  int64_t num_parameters(bool only_trainable = false) const;

  /// Parameters and buffers by dotted name (the checkpoint content).
  OrderedDict<Tensor> state_dict() const;
  /// Copies values from a state dict. strict: missing and unexpected keys are errors. Everything is
  /// validated before anything is copied: a failed load leaves the module unchanged.
  void load_state_dict(const OrderedDict<Tensor>& state, bool strict = true);

  /// One line describing this module's own configuration ("in_features=784, out_features=10").
  virtual std::string extra_repr() const { return ""; }
  /// The module tree as PyTorch prints it, with parameter shapes and counts.
  virtual void pretty_print(std::ostream& out, int indent = 0) const;
  std::string to_string() const;

 protected:
  struct CloneTag {};
  /// For Cloneable: copies the type name and training mode only; reset() registers everything anew.
  Module(const Module& other, CloneTag) : std::enable_shared_from_this<Module>(), training_(other.training_), type_name_(other.type_name_) {}
  bool training_ = true;

 private:
  void register_child(const std::string& name, std::shared_ptr<Module> module);
  /// This module's shared_ptr; xg::Error naming `op` when it is not owned by one.
  std::shared_ptr<Module> shared_self(const char* op) const;
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  void collect_named(OrderedDict<Tensor>& out, const std::string& prefix, bool parameters, bool recurse) const;

  template <class T>
  static constexpr bool detail_is_module_holder(decltype(sizeof(typename T::ContainedType))) { return true; }
  template <class T>
  static constexpr bool detail_is_module_holder(...) { return false; }
  /// fn(dotted name, module) for every descendant, depth first, parents before children.
  void walk_descendants(const std::string& prefix,
                        const std::function<void(const std::string&, const std::shared_ptr<Module>&)>& fn) const;

  mutable std::string type_name_;
  std::shared_ptr<module_detail::ModuleHooks> hooks_;  // made on the first registration
  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  OrderedDict<std::shared_ptr<Module>> children_;
};

std::ostream& operator<<(std::ostream& out, const Module& module);

namespace module_detail {
template <class M, class... Args, size_t... I>
Tensor forward_unpacked(M& module, const TensorList& inputs, std::index_sequence<I...>) {
  return module.forward(inputs[I]...);
}

/// Calls module.forward(args...) as a call of the module: with its hooks, when it has any.
template <class M, class... Args>
decltype(auto) call_forward(M& module, Args&&... args) {
  using Result = decltype(module.forward(std::forward<Args>(args)...));
  constexpr bool tensors_to_tensor = (std::is_same_v<std::decay_t<Args>, Tensor> && ...) && std::is_same_v<Result, Tensor>;
  if constexpr (tensors_to_tensor) {
    if (!module.has_hooks()) return module.forward(std::forward<Args>(args)...);
    return module.forward_with_hooks(TensorList{Tensor(args)...}, [&module](const TensorList& inputs) {
      return forward_unpacked<M, Args...>(module, inputs, std::index_sequence_for<Args...>{});
    });
  } else {
    if (module.has_hooks()) module.reject_hooks("its forward does not take only tensors and return one tensor");
    return module.forward(std::forward<Args>(args)...);
  }
}
}  // namespace module_detail

/// Owns a shared_ptr<Impl> and forwards calls, as torch::nn::ModuleHolder: `nn::Linear fc(784, 10);
/// fc->weight; fc(x);`. Construct with nullptr to declare an empty member and register it later.
template <class Impl>
class ModuleHolder {
 public:
  using ContainedType = Impl;
  /// Default construction makes the module with its default arguments (when it has them).
  ModuleHolder() : impl_(make_default()) {}
  ModuleHolder(std::nullptr_t) {}  // NOLINT
  ModuleHolder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}  // NOLINT
  template <class First, class... Rest,
            class = std::enable_if_t<!std::is_same_v<std::decay_t<First>, std::nullptr_t> &&
                                     !std::is_same_v<std::decay_t<First>, std::shared_ptr<Impl>> &&
                                     !std::is_base_of_v<ModuleHolder, std::decay_t<First>>>>
  explicit ModuleHolder(First&& first, Rest&&... rest)
      : impl_(std::make_shared<Impl>(std::forward<First>(first), std::forward<Rest>(rest)...)) {}

  Impl* operator->() const { return &checked(); }
  Impl& operator*() const { return checked(); }
  const std::shared_ptr<Impl>& ptr() const { return impl_; }
  Impl* get() const { return impl_.get(); }
  bool is_empty() const { return impl_ == nullptr; }
  explicit operator bool() const { return impl_ != nullptr; }
  /// Indexes containers: seq[0], dict["encoder"].
  template <class Key>
  decltype(auto) operator[](Key&& key) const {
    return checked()[std::forward<Key>(key)];
  }
  /// Calls the module: forward with its hooks.
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    return module_detail::call_forward(checked(), std::forward<Args>(args)...);
  }

 private:
  static std::shared_ptr<Impl> make_default() {
    if constexpr (std::is_default_constructible_v<Impl>) return std::make_shared<Impl>();
    else return nullptr;
  }
  Impl& checked() const {
    XG_CHECK(impl_ != nullptr, "nn: accessing an empty module holder (constructed with nullptr and never assigned)");
    return *impl_;
  }
  std::shared_ptr<Impl> impl_;
};

template <class Impl>
std::ostream& operator<<(std::ostream& out, const ModuleHolder<Impl>& holder) {
  return out << *holder;
}

/// libtorch's Cloneable: derive a module from nn::Cloneable<Self> (instead of nn::Module) and define
/// reset(), which registers every parameter, buffer and submodule (call it from the constructor too);
/// clone() copy-constructs Self (plain members such as sizes are copied), calls reset() on the copy and
/// copies the values over. reset() must also reassign the holders it keeps (`fc = register_module(...)`),
/// or the copy's members would still point at the original's submodules -- as in libtorch.
template <class Derived>
class Cloneable : public Module {
 public:
  using Module::Module;
  virtual void reset() = 0;
  std::shared_ptr<Module> clone() const override {
    auto copy = std::make_shared<Derived>(static_cast<const Derived&>(*this));
    copy->reset();
    copy->copy_state_from(*this);
    return copy;
  }

 protected:
  Cloneable(const Cloneable& other) : Module(other, CloneTag{}) {}
};

namespace module_detail {
using Cloner = std::shared_ptr<Module> (*)(const Module&);
/// Records how to clone modules of dynamic type `type` (Module::clone() looks it up).
bool register_cloner(const std::type_info& type, Cloner cloner);

template <class Impl, class = void>
struct has_options : std::false_type {};
template <class Impl>
struct has_options<Impl, std::void_t<decltype(std::declval<const Impl&>().options)>>
    : std::is_constructible<Impl, const decltype(std::declval<const Impl&>().options)&> {};

/// A cloner for Impl when its constructor alone rebuilds its structure: from its options member, or by
/// default construction; nothing is registered otherwise (clone() then asks for Cloneable).
template <class Impl>
bool register_cloner_for() {
  if constexpr (has_options<Impl>::value) {
    return register_cloner(typeid(Impl), [](const Module& self) -> std::shared_ptr<Module> {
      auto copy = std::make_shared<Impl>(static_cast<const Impl&>(self).options);
      copy->copy_state_from(self);
      return copy;
    });
  } else if constexpr (std::is_default_constructible_v<Impl>) {
    return register_cloner(typeid(Impl), [](const Module& self) -> std::shared_ptr<Module> {
      auto copy = std::make_shared<Impl>();
      copy->copy_state_from(self);
      return copy;
    });
  } else {
    return false;
  }
}
}  // namespace module_detail

/// XG_MODULE(Linear) defines the holder `Linear` for `LinearImpl`, like TORCH_MODULE (at namespace scope),
/// and records how LinearImpl clones (see Module::clone).
#define XG_MODULE(Name)                                                                              \
  class Name : public ::xg::nn::ModuleHolder<Name##Impl> {                                             \
   public:                                                                                           \
    using ::xg::nn::ModuleHolder<Name##Impl>::ModuleHolder;                                            \
  };                                                                                                 \
  [[maybe_unused]] inline const bool xg_module_cloner_registered_##Name = ::xg::nn::module_detail::register_cloner_for<Name##Impl>()

// ---- OrderedDict definitions ------------------------------------------------------------------
template <class V>
V& OrderedDict<V>::insert(const std::string& key, V value) {
  XG_CHECK(index_.find(key) == index_.end(), "OrderedDict: key '{}' already exists", key);
  items_.emplace_back(key, std::move(value));
  try {
    index_.emplace(key, items_.size() - 1);
  } catch (...) {  // out of memory: keep the two in step
    items_.pop_back();
    throw;
  }
  return items_.back().second;
}
template <class V>
V* OrderedDict<V>::find(const std::string& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}
template <class V>
const V* OrderedDict<V>::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}
template <class V>
V& OrderedDict<V>::operator[](const std::string& key) {
  V* value = find(key);
  XG_CHECK(value != nullptr, "OrderedDict: no key '{}'", key);
  return *value;
}
template <class V>
const V& OrderedDict<V>::operator[](const std::string& key) const {
  const V* value = find(key);
  XG_CHECK(value != nullptr, "OrderedDict: no key '{}'", key);
  return *value;
}
template <class V>
std::vector<std::string> OrderedDict<V>::keys() const {
  std::vector<std::string> out;
  for (const auto& item : items_) out.push_back(item.first);
  return out;
}
template <class V>
std::vector<V> OrderedDict<V>::values() const {
  std::vector<V> out;
  for (const auto& item : items_) out.push_back(item.second);
  return out;
}
template <class V>
void OrderedDict<V>::erase(const std::string& key) {
  auto it = index_.find(key);
  XG_CHECK(it != index_.end(), "OrderedDict: no key '{}'", key);
  const size_t position = it->second;
  index_.erase(it);
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(position));
  for (size_t i = position; i < items_.size(); ++i) index_[items_[i].first] = i;  // the later items moved up by one
}

}  // namespace xg::nn

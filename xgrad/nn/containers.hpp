#pragma once
/// Module containers: Sequential (heterogeneous modules, including user-defined ones), ModuleList,
/// ModuleDict, and Functional (a plain function as a module).
#include <functional>
#include <string>
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xg::nn {

/// Any module with `Tensor forward(const Tensor&)` (or by value), type-erased for Sequential.
class AnyModule {
 public:
  AnyModule() = default;
  template <class M, class = std::enable_if_t<std::is_base_of_v<Module, M>>>
  AnyModule(std::shared_ptr<M> module)  // NOLINT: implicit, as torch::nn::AnyModule
      : module_(module),
        forward_([raw = module.get()](const Tensor& x) { return Tensor(module_detail::call_forward(*raw, x)); }),
        rebind_([](const std::shared_ptr<Module>& m) { return AnyModule(std::static_pointer_cast<M>(m)); }) {}
  template <class Impl>
  AnyModule(const ModuleHolder<Impl>& holder) : AnyModule(holder.ptr()) {}  // NOLINT
  Tensor forward(const Tensor& x) const {
    XG_CHECK(module_ != nullptr, "AnyModule::forward: the AnyModule is empty");
    return forward_(x);
  }
  /// libtorch's forward<ReturnType>(...): every module in xgrad's containers returns a Tensor.
  template <class ReturnType>
  ReturnType forward(const Tensor& x) const {
    static_assert(std::is_same_v<ReturnType, Tensor>, "AnyModule::forward<T>: modules held here return a Tensor");
    return forward(x);
  }
  const std::shared_ptr<Module>& ptr() const { return module_; }
  /// The held module as a T (a module class, or a holder type for the module class it holds).
  template <class T>
  auto ptr() const {
    auto cast = try_ptr<T>();
    XG_CHECK(cast != nullptr, "AnyModule::ptr<T>: the held module is {}, not the requested type",
             module_ ? module_->name() : std::string("empty"));
    return cast;
  }
  /// The held module as a T, or nullptr when it is not one.
  template <class T>
  auto try_ptr() const {
    using Impl = std::remove_pointer_t<decltype(std::declval<Module&>().template as<T>())>;
    return std::dynamic_pointer_cast<Impl>(module_);
  }
  template <class T>
  auto& get() const {
    return *ptr<T>();
  }
  bool is_empty() const { return module_ == nullptr; }
  /// An AnyModule holding a clone of the held module (libtorch's AnyModule::clone).
  AnyModule clone() const {
    XG_CHECK(module_ != nullptr, "AnyModule::clone: the AnyModule is empty");
    return rebind_(module_->clone());
  }

 private:
  std::shared_ptr<Module> module_;
  std::function<Tensor(const Tensor&)> forward_;
  std::function<AnyModule(const std::shared_ptr<Module>&)> rebind_;  // the typed constructor, for clone()
};

/// A function of one tensor as a module: Functional(xg::relu), Functional([](Tensor x) { ... }).
class FunctionalImpl : public Module {
 public:
  explicit FunctionalImpl(std::function<Tensor(const Tensor&)> function);
  /// For ops with extra arguments: Functional(xg::leaky_relu, 0.2) binds them after the tensor.
  template <class F, class... Bound, class = std::enable_if_t<(sizeof...(Bound) > 0)>>
  FunctionalImpl(F function, Bound... bound)
      : FunctionalImpl(std::function<Tensor(const Tensor&)>([function, bound...](const Tensor& x) { return function(x, bound...); })) {}
  Tensor forward(const Tensor& x) { return function_(x); }
  std::shared_ptr<Module> clone() const override;

 private:
  std::function<Tensor(const Tensor&)> function_;
};
XG_MODULE(Functional);

/// Modules applied in order; children are named "0", "1", ... (or as given).
class SequentialImpl : public Module {
 public:
  SequentialImpl() : Module("Sequential") {}
  /// Clones every entry (each its own deep copy), keeping names and order.
  std::shared_ptr<Module> clone() const override;
  template <class... Modules, class = std::enable_if_t<(sizeof...(Modules) > 0)>>
  explicit SequentialImpl(Modules&&... modules) : Module("Sequential") {
    (push_back(AnyModule(std::forward<Modules>(modules))), ...);
  }
  /// Named entries: Sequential({{"conv", Conv2d(...)}, {"act", Functional(relu)}}).
  explicit SequentialImpl(std::vector<std::pair<std::string, AnyModule>> named);
  void push_back(AnyModule module);
  void push_back(const std::string& name, AnyModule module);
  Tensor forward(const Tensor& x);
  size_t size() const { return entries_.size(); }
  bool is_empty() const { return entries_.empty(); }
  /// The i-th module.
  std::shared_ptr<Module> operator[](size_t index) const;
  using Module::ptr;
  std::shared_ptr<Module> ptr(size_t index) const { return (*this)[index]; }
  /// The i-th module as an M (a module class, or a holder type for the class it holds).
  template <class M>
  auto ptr(size_t index) const {
    const AnyModule& held = entry(index);
    auto cast = held.try_ptr<M>();
    XG_CHECK(cast != nullptr, "Sequential: entry {} is a {}, not the requested type", index, held.ptr()->name());
    return cast;
  }
  template <class M>
  auto& at(size_t index) const {
    return *ptr<M>(index);
  }
  /// Range-for over the entries (AnyModule), as libtorch's Sequential.
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  /// Appends every entry of another Sequential (libtorch's extend).
  void extend(const SequentialImpl& other) {
    for (const AnyModule& module : other) push_back(module);
  }

 private:
  const AnyModule& entry(size_t index) const {
    XG_CHECK(index < entries_.size(), "Sequential: index {} is out of range for a Sequential of {} modules", index, entries_.size());
    return entries_[index];
  }
  std::vector<AnyModule> entries_;
};
XG_MODULE(Sequential);

/// A list of submodules registered as "0", "1", ...; the owner decides how to call them.
class ModuleListImpl : public Module {
 public:
  ModuleListImpl() : Module("ModuleList") {}
  /// Clones every entry (each its own deep copy), keeping names and order.
  std::shared_ptr<Module> clone() const override;
  template <class... Modules, class = std::enable_if_t<(sizeof...(Modules) > 0)>>
  explicit ModuleListImpl(Modules&&... modules) : Module("ModuleList") {
    (push_back(as_module(std::forward<Modules>(modules))), ...);
  }
  void push_back(std::shared_ptr<Module> module);
  template <class Impl>
  void push_back(const ModuleHolder<Impl>& holder) {
    push_back(std::static_pointer_cast<Module>(holder.ptr()));
  }
  size_t size() const { return modules_.size(); }
  bool is_empty() const { return modules_.empty(); }
  std::shared_ptr<Module> operator[](size_t index) const;
  template <class M>
  std::shared_ptr<M> ptr(size_t index) const {
    auto cast = std::dynamic_pointer_cast<M>((*this)[index]);
    XG_CHECK(cast != nullptr, "ModuleList: entry {} is a {}, not the requested type", index, (*this)[index]->name());
    return cast;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  template <class M>
  static std::shared_ptr<Module> as_module(M&& m) {
    if constexpr (std::is_convertible_v<std::decay_t<M>, std::shared_ptr<Module>>) return m;
    else return std::static_pointer_cast<Module>(m.ptr());
  }
  std::vector<std::shared_ptr<Module>> modules_;
};
XG_MODULE(ModuleList);

/// Submodules by name, in insertion order.
class ModuleDictImpl : public Module {
 public:
  ModuleDictImpl() : Module("ModuleDict") {}
  /// Clones every entry (each its own deep copy), keeping names and order.
  std::shared_ptr<Module> clone() const override;
  void insert(const std::string& key, std::shared_ptr<Module> module);
  template <class Impl>
  void insert(const std::string& key, const ModuleHolder<Impl>& holder) {
    insert(key, std::static_pointer_cast<Module>(holder.ptr()));
  }
  bool contains(const std::string& key) const { return modules_.contains(key); }
  std::shared_ptr<Module> operator[](const std::string& key) const;
  template <class M>
  std::shared_ptr<M> ptr(const std::string& key) const {
    auto cast = std::dynamic_pointer_cast<M>((*this)[key]);
    XG_CHECK(cast != nullptr, "ModuleDict: entry '{}' is a {}, not the requested type", key, (*this)[key]->name());
    return cast;
  }
  std::vector<std::string> keys() const { return modules_.keys(); }
  size_t size() const { return modules_.size(); }

 private:
  OrderedDict<std::shared_ptr<Module>> modules_;
};
XG_MODULE(ModuleDict);

}  // namespace xg::nn

#include "xgrad/nn/containers.hpp"

namespace xg::nn {

FunctionalImpl::FunctionalImpl(std::function<Tensor(const Tensor&)> function) : Module("Functional"), function_(std::move(function)) {
  XG_CHECK(static_cast<bool>(function_), "Functional: the function is empty");
}

SequentialImpl::SequentialImpl(std::vector<std::pair<std::string, AnyModule>> named) : Module("Sequential") {
  for (auto& [name, module] : named) push_back(name, std::move(module));
}

void SequentialImpl::push_back(AnyModule module) { push_back(std::to_string(entries_.size()), std::move(module)); }

void SequentialImpl::push_back(const std::string& name, AnyModule module) {
  XG_CHECK(module.ptr() != nullptr, "Sequential: cannot add an empty module");
  register_module(name, module.ptr());
  entries_.push_back(std::move(module));
}

Tensor SequentialImpl::forward(const Tensor& x) {
  XG_CHECK(!entries_.empty(), "Sequential: forward called on an empty Sequential");
  Tensor h = x;
  for (const AnyModule& module : entries_) h = module.forward(h);
  return h;
}

std::shared_ptr<Module> SequentialImpl::operator[](size_t index) const { return entry(index).ptr(); }

void ModuleListImpl::push_back(std::shared_ptr<Module> module) {
  XG_CHECK(module != nullptr, "ModuleList: cannot add an empty module");
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

std::shared_ptr<Module> ModuleListImpl::operator[](size_t index) const {
  XG_CHECK(index < modules_.size(), "ModuleList: index {} is out of range for a list of {} modules", index, modules_.size());
  return modules_[index];
}

void ModuleDictImpl::insert(const std::string& key, std::shared_ptr<Module> module) {
  XG_CHECK(module != nullptr, "ModuleDict: cannot add an empty module for key '{}'", key);
  register_module(key, module);
  modules_.insert(key, std::move(module));
}

std::shared_ptr<Module> ModuleDictImpl::operator[](const std::string& key) const {
  const auto* found = modules_.find(key);
  XG_CHECK(found != nullptr, "ModuleDict: no module named '{}' (keys: {})", key, fmt::join(modules_.keys(), ", "));
  return *found;
}

}  // namespace xg::nn

namespace xg::nn {

std::shared_ptr<Module> FunctionalImpl::clone() const {
  auto copy = std::make_shared<FunctionalImpl>(function_);
  copy->training_ = training_;
  return copy;
}

std::shared_ptr<Module> SequentialImpl::clone() const {
  auto copy = std::make_shared<SequentialImpl>();
  const std::vector<std::string> names = named_children().keys();  // in entry order
  for (size_t i = 0; i < entries_.size(); ++i) copy->push_back(names[i], entries_[i].clone());
  copy->training_ = training_;
  return copy;
}

std::shared_ptr<Module> ModuleListImpl::clone() const {
  auto copy = std::make_shared<ModuleListImpl>();
  for (const std::shared_ptr<Module>& module : modules_) copy->push_back(module->clone());
  copy->training_ = training_;
  return copy;
}

std::shared_ptr<Module> ModuleDictImpl::clone() const {
  auto copy = std::make_shared<ModuleDictImpl>();
  for (const auto& [key, module] : modules_) copy->insert(key, module->clone());
  copy->training_ = training_;
  return copy;
}

}  // namespace xg::nn
